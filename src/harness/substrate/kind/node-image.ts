// kind's node image, assembled offline (real-control-planes.md §4) in meshproof's own docker engine and cached by a
// content hash of its inputs, as the pod images are (docker/images.ts, whose base rootfs and Debian-packages layer it
// reuses): bookworm + the node's Debian packages (.debs fetched beforehand, dpkg in a `--network none` build), kind's
// base files from the kind module zip, the containerd config, the binaries, and the images `kubeadm config images
// list` names, built as tiny images from the cached binaries and preloaded into the node's containerd the way kind
// does (`ctr images import --no-unpack` in a build container, then `docker commit`). The result is also saved as a
// tarball named by its hash, which an engine without the image (a data root of its own) loads instead of rebuilding.
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { Check } from '../../cli/doctor.ts';
import { resolveKube, runLogged, stepFailed, type Log } from '../../controlplane/provision.ts';
import { UserError } from '../../model/errors.ts';
import { run, runCapture } from '../sh.ts';
import { dockerCapture, type DockerEngine } from '../docker/engine.ts';
import { baseRootfsTar, contentHash, currentInputs, DEBIAN_SUITE, fetchDebs, fileSha256, imageTag, layerHash } from '../docker/images.ts';
import { meshproofCache } from '../docker/layout.ts';
import { KIND_FIX, kindBinary, needsRuncWrapper } from './provision.ts';
import {
  KIND_NODE_PACKAGES, KIND_VERSION, KUBEADM_IMAGES, NODE_ENTRYPOINT_CHANGES, NODE_RUNC_WRAPPER, containerdConfig, kindPackagesDockerfile, nodeDockerfile,
  preloadScript, runcWrapperScript, type KubeadmImage, type NodeFile,
} from './versions.ts';
import { KUBERNETES } from '../../controlplane/versions.ts';

/** `~/.cache/meshproof/kind/images`: a record per built image, and the build logs. */
export const kindImagesDir = (): string => join(meshproofCache(), 'kind', 'images');
const recordOf = (tag: string): string => join(kindImagesDir(), `${tag.replace(/^meshproof\//, '').replace(':', '-')}.json`);
/**
 * The node image saved by its content hash (`docker save`): an engine without it loads it in seconds instead of a
 * rebuild, e.g. when another run holds the shared image cache and this engine gets a data root of its own.
 */
export const nodeImageTar = (tag: string): string => recordOf(tag).replace(/\.json$/, '.tar');
/** kind's base files inside the module (images/base/files). */
const KIND_BASE_FILES = 'images/base/files';
/** The node's real runc under the wrapper (Debian's runc package). */
const NODE_REAL_RUNC = '/usr/sbin/runc';

/** A binary with its content hash, where it is on the host. */
interface Bin { name: string; src: string; sha256: string }

export interface PreloadPlan { image: KubeadmImage; tag: string; hash: string; bin: Bin; parent: string | null }

export interface NodeImagePlan {
  /** `meshproof/kind-node:<hash>`: the node image kind runs. */
  tag: string;
  hash: string;
  /** The node's Debian layer (.debs fetched by docker/images.ts; iptables under kube-proxy's image too), and the base under it. */
  packages: { tag: string; dockerfile: string; debs: { name: string; src: string }[] };
  base: { tag: string; rootfsTar: string };
  /** The node layer before the preload. */
  layerTag: string;
  dockerfile: string;
  /** Build context: kind's base files (relative to the module dir) and the node files. */
  baseFiles: { rel: string; src: string; sha256: string; mode: number }[];
  files: (NodeFile & { src?: string; text?: string; sha256: string })[];
  preload: PreloadPlan[];
  runcWrapper: boolean;
}

/** Modes of kind's base files as its Dockerfile's `COPY --chmod` sets them. */
export function baseFileMode(rel: string): number {
  return rel.startsWith('usr/local/bin/') || rel.startsWith('kind/bin/') ? 0o755 : 0o644;
}

function walk(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), root) : [relative(root, join(dir, e.name))])).sort();
}

const sha = (text: string): string => contentHash({ text });

/** The kind module's directory in Go's module cache (prepared by the kind build). */
function kindModuleDir(): string {
  const gomodcache = process.env.GOMODCACHE || join(process.env.GOPATH || join(process.env.HOME ?? '/root', 'go'), 'pkg', 'mod');
  const dir = join(gomodcache, 'sigs.k8s.io', `kind@${KIND_VERSION}`);
  if (!existsSync(join(dir, KIND_BASE_FILES))) throw new UserError(`kind substrate: ${join(dir, KIND_BASE_FILES)} is missing (Go's module cache): run ${KIND_FIX}`);
  return dir;
}

/**
 * The node image's plan from what is on disk now: null when the Debian packages are not fetched yet. Throws the
 * one-line UserError of a missing binary. Spawn-free (hashes come from the cache of docker/images.ts).
 */
export async function planNodeImage(): Promise<NodeImagePlan | null> {
  const kindInputs = await currentInputs({ envoys: [], packages: KIND_NODE_PACKAGES });
  if (!kindInputs) return null;
  const pkgFile = kindPackagesDockerfile(kindInputs.base.tag);
  const pkgHash = layerHash(pkgFile, kindInputs.debs.map((d) => ({ name: `debs/${d.name}`, sha256: d.sha256 })));
  const packages = { tag: imageTag('kind-packages', pkgHash), dockerfile: pkgFile, debs: kindInputs.debs.map((d) => ({ name: d.name, src: d.src })) };
  const kube = resolveKube();
  const hostBin = async (name: string, src: string): Promise<Bin> => ({ name, src, sha256: await fileSha256(src) });
  const cached = (name: string): Bin => { const r = kindBinary(name); return { name, src: r.path, sha256: r.sha256 }; };
  const bins: Record<string, Bin> = {
    'kube-apiserver': await hostBin('kube-apiserver', kube.kubeApiserver),
    'kube-controller-manager': await hostBin('kube-controller-manager', kube.kubeControllerManager),
    kubectl: await hostBin('kubectl', kube.kubectl),
  };
  for (const n of ['kubelet', 'kubeadm', 'kube-scheduler', 'kube-proxy', 'crictl', 'etcd', 'coredns', 'pause']) bins[n] = cached(n);

  const preload = KUBEADM_IMAGES.map((image): PreloadPlan => {
    const bin = bins[image.binary]!;
    const parent = image.withIptables ? packages.tag : null;
    const hash = contentHash({ ref: image.ref, path: image.path, entrypoint: image.entrypoint ?? null, parent, sha256: bin.sha256 });
    return { image, tag: imageTag(`kind-${image.binary}`, hash), hash, bin, parent };
  });

  const moduleDir = kindModuleDir();
  const baseRoot = join(moduleDir, KIND_BASE_FILES);
  const config = containerdConfig();
  const baseFiles = await Promise.all(walk(baseRoot).filter((rel) => rel !== 'etc/containerd/config.toml').map(async (rel) => ({
    rel, src: join(baseRoot, rel), sha256: await fileSha256(join(baseRoot, rel)), mode: baseFileMode(rel),
  })));
  const { needed } = needsRuncWrapper();
  const files: NodeImagePlan['files'] = [
    { name: 'containerd-config.toml', dest: '/etc/containerd/config.toml', mode: 0o644, text: config, sha256: sha(config) },
    { name: 'version', dest: '/kind/version', mode: 0o644, text: `${KUBERNETES.version}\n`, sha256: sha(`${KUBERNETES.version}\n`) },
    ...(['kubelet', 'kubeadm', 'kubectl'] as const).map((n) => ({ name: n, dest: `/usr/bin/${n}`, mode: 0o755, src: bins[n]!.src, sha256: bins[n]!.sha256 })),
    { name: 'crictl', dest: '/usr/local/bin/crictl', mode: 0o755, src: bins.crictl!.src, sha256: bins.crictl!.sha256 },
  ];
  if (needed) {
    const w = runcWrapperScript(NODE_REAL_RUNC);
    files.push({ name: 'runc-wrapper', dest: NODE_RUNC_WRAPPER, mode: 0o755, text: w, sha256: sha(w) });
  }
  const dockerfile = nodeDockerfile(packages.tag, files, { 'meshproof.kind-version': KIND_VERSION, 'meshproof.kubernetes-version': KUBERNETES.version });
  const nodeLayerHash = contentHash({ dockerfile, base: baseFiles.map((f) => [f.rel, f.sha256, f.mode]), files: files.map((f) => [f.name, f.sha256, f.mode]) });
  const layerTag = imageTag('kind-node-layer', nodeLayerHash);
  const hash = contentHash({ layer: nodeLayerHash, preload: preload.map((p) => p.hash), script: preloadScript('/kind/preload'), changes: NODE_ENTRYPOINT_CHANGES });
  return { tag: imageTag('kind-node', hash), hash, packages, base: { tag: kindInputs.base.tag, rootfsTar: baseRootfsTar(kindInputs.base) }, layerTag, dockerfile, baseFiles, files, preload, runcWrapper: needed };
}

/** doctor's line: the node image is built when its inputs' hash has a record (no engine needed). */
export async function checkNodeImage(): Promise<Check> {
  let plan: NodeImagePlan | null;
  try {
    plan = await planNodeImage();
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { name: 'kind node image', ok: false, detail: `needs its binaries first (${err.message.replace(/:[^:]*$/, '')})`, fix: `run ${KIND_FIX}` };
  }
  if (!plan) return { name: 'kind node image', ok: false, detail: `not built (Debian ${KIND_NODE_PACKAGES.join(' ')} not fetched yet)`, fix: `run ${KIND_FIX}` };
  if (!existsSync(recordOf(plan.tag)) || !existsSync(nodeImageTar(plan.tag))) return { name: 'kind node image', ok: false, detail: `${plan.tag} not built`, fix: `run ${KIND_FIX}` };
  return { name: 'kind node image', ok: true, detail: `${plan.tag}${plan.runcWrapper ? ' (runc wrapper inside)' : ''}` };
}

// ---------------------------------------------------------------------------------------------
// Building

async function hasImage(engine: DockerEngine, tag: string): Promise<boolean> {
  return (await dockerCapture(engine, ['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0;
}

function scratch(): string {
  const dir = join(kindImagesDir(), `.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A hard link where the cache and the context share a filesystem (300 MB of binaries), else a copy. */
function place(src: string, dest: string, mode: number): void {
  mkdirSync(join(dest, '..'), { recursive: true });
  const st = statSync(src);
  if ((st.mode & 0o777) === mode) {
    try { linkSync(src, dest); return; } catch { /* another filesystem */ }
  }
  copyFileSync(src, dest);
  chmodSync(dest, mode);
}

/** One docker step with its output in a log; a failure is one line naming the log. */
async function dockerStep(engine: DockerEngine, what: string, args: string[], logFile: string): Promise<string> {
  const r = await runLogged('docker', args, { env: engine.env(), logFile, shownEnv: { DOCKER_HOST: engine.host } });
  if (r.code !== 0) throw stepFailed(what, r, logFile, KIND_FIX);
  return r.stdout;
}

function writeRecord(tag: string, inputs: unknown): void {
  mkdirSync(kindImagesDir(), { recursive: true });
  writeFileSync(recordOf(tag), JSON.stringify({ tag, inputs, built: new Date().toISOString() }, null, 2));
}

/** `docker save` of the node image to its hashed tarball; older kind-node tarballs go (1.4 GB each, §4). */
async function saveNodeImage(engine: DockerEngine, plan: NodeImagePlan, log: Log): Promise<void> {
  const tar = nodeImageTar(plan.tag);
  log(`fix  docker save -o ${tar} ${plan.tag}`);
  const started = Date.now();
  await dockerStep(engine, `saving ${plan.tag}`, ['save', '-o', `${tar}.partial`, plan.tag], join(kindImagesDir(), 'save-node.log'));
  renameSync(`${tar}.partial`, tar);
  for (const f of readdirSync(kindImagesDir())) {
    if (/^kind-node-[0-9a-f]{16}\.tar$/.test(f) && join(kindImagesDir(), f) !== tar) rmSync(join(kindImagesDir(), f), { force: true });
  }
  log(`     ${Math.round(statSync(tar).size / 1e6)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function buildPreloadImage(engine: DockerEngine, p: PreloadPlan, dir: string, log: Log): Promise<void> {
  const logFile = join(kindImagesDir(), `build-${p.image.binary}.log`);
  const ctx = join(dir, `ctx-${p.image.binary}`);
  place(p.bin.src, join(ctx, 'rootfs', p.image.path), 0o755);
  if (p.parent) {
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${p.parent}\nCOPY rootfs/ /\n`);
    await dockerStep(engine, `building ${p.image.ref}`, ['build', '--network', 'none', '--rm', '--force-rm', '-t', p.tag, ctx], logFile);
  } else {
    const tar = join(ctx, 'rootfs.tar');
    await run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', join(ctx, 'rootfs'), '-cf', tar, '.']);
    const changes = p.image.entrypoint ? ['--change', `ENTRYPOINT ${JSON.stringify(p.image.entrypoint)}`] : [];
    await dockerStep(engine, `importing ${p.image.ref}`, ['import', ...changes, '--message', `meshproof: ${p.image.binary} ${p.bin.sha256.slice(0, 12)}`, tar, p.tag], logFile);
  }
  writeRecord(p.tag, { ref: p.image.ref, binary: p.bin.src, sha256: p.bin.sha256, parent: p.parent });
  log(`     built  ${p.tag} (${p.image.ref})`);
}

async function buildPackagesLayer(engine: DockerEngine, plan: NodeImagePlan, dir: string, log: Log): Promise<void> {
  const ctx = join(dir, 'ctx-packages');
  for (const d of plan.packages.debs) place(d.src, join(ctx, 'debs', d.name), statSync(d.src).mode & 0o777);
  writeFileSync(join(ctx, 'Dockerfile'), plan.packages.dockerfile);
  const logFile = join(kindImagesDir(), 'build-node-packages.log');
  log(`fix  docker build --network none -t ${plan.packages.tag} (Debian ${KIND_NODE_PACKAGES.join(' ')}; log ${logFile})`);
  const started = Date.now();
  await dockerStep(engine, 'building the kind node\'s Debian layer', ['build', '--network', 'none', '--rm', '--force-rm', '-t', plan.packages.tag, ctx], logFile);
  writeRecord(plan.packages.tag, { dockerfile: plan.packages.dockerfile, debs: plan.packages.debs.map((d) => d.name) });
  log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function buildNodeLayer(engine: DockerEngine, plan: NodeImagePlan, dir: string, log: Log): Promise<void> {
  const ctx = join(dir, 'ctx-node');
  for (const f of plan.baseFiles) place(f.src, join(ctx, 'base', f.rel), f.mode);
  for (const f of plan.files) {
    if (f.src) place(f.src, join(ctx, f.name), f.mode);
    else { writeFileSync(join(ctx, f.name), f.text ?? ''); chmodSync(join(ctx, f.name), f.mode); }
  }
  // directories of the context are what COPY base/ / makes: 0755
  for (const d of walkDirs(join(ctx, 'base'))) chmodSync(d, 0o755);
  writeFileSync(join(ctx, 'Dockerfile'), plan.dockerfile);
  const logFile = join(kindImagesDir(), 'build-node-layer.log');
  log(`fix  docker build --network none -t ${plan.layerTag} (kind's base files, containerd config, kubelet, kubeadm, kubectl, crictl${plan.runcWrapper ? ', runc wrapper' : ''}; log ${logFile})`);
  const started = Date.now();
  await dockerStep(engine, 'building the kind node layer', ['build', '--network', 'none', '--rm', '--force-rm', '-t', plan.layerTag, ctx], logFile);
  log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function walkDirs(dir: string): string[] {
  return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walkDirs(join(dir, e.name)))];
}

/** The preload: containerd alone in a container of the node layer imports every image tarball, then `docker commit`. */
async function preloadAndCommit(engine: DockerEngine, plan: NodeImagePlan, dir: string, log: Log): Promise<void> {
  const tars = join(dir, 'preload');
  mkdirSync(tars, { recursive: true });
  const logFile = join(kindImagesDir(), 'build-node-preload.log');
  for (const p of plan.preload) {
    await dockerStep(engine, `tagging ${p.image.ref}`, ['tag', p.tag, p.image.ref], logFile);
    await dockerStep(engine, `saving ${p.image.ref}`, ['save', '-o', join(tars, `${p.image.binary}.tar`), p.image.ref], logFile);
  }
  const name = `meshproof-kind-preload-${process.pid}-${randomBytes(3).toString('hex')}`;
  log(`fix  preloading ${plan.preload.length} images into the node's containerd (ctr images import --no-unpack; log ${logFile})`);
  const started = Date.now();
  try {
    await dockerStep(engine, 'preloading the node images', [
      'run', '--name', name, '--network', 'none', '-v', `${tars}:/kind/preload:ro`, '--entrypoint', '/bin/sh', plan.layerTag, '-c', preloadScript('/kind/preload'),
    ], logFile);
    const changes = NODE_ENTRYPOINT_CHANGES.flatMap((c) => ['--change', c]);
    await dockerStep(engine, 'committing the kind node image', ['commit', ...changes, name, plan.tag], logFile);
  } finally {
    await runCapture(['docker', 'rm', '-f', name], { env: engine.env() });
  }
  log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

export interface NodeImageResult { tag: string; status: 'hit' | 'loaded' | 'built'; seconds: number }

/**
 * The node image in `engine` (meshproof's own), built bottom up where missing: the Debian layers (docker/images.ts),
 * the kubeadm images, the node layer, the preload. A second run with the same inputs builds nothing.
 */
export async function ensureNodeImage(engine: DockerEngine, log: Log): Promise<NodeImageResult> {
  const started = Date.now();
  mkdirSync(kindImagesDir(), { recursive: true });
  let plan = await planNodeImage();
  if (plan && await hasImage(engine, plan.tag)) {
    if (!existsSync(nodeImageTar(plan.tag))) await saveNodeImage(engine, plan, log);
    return { tag: plan.tag, status: 'hit', seconds: (Date.now() - started) / 1000 };
  }
  if (plan && existsSync(recordOf(plan.tag)) && existsSync(nodeImageTar(plan.tag))) {
    log(`fix  docker load -i ${nodeImageTar(plan.tag)}`);
    await dockerStep(engine, `loading ${plan.tag}`, ['load', '-i', nodeImageTar(plan.tag)], join(kindImagesDir(), 'load-node.log'));
    return { tag: plan.tag, status: 'loaded', seconds: (Date.now() - started) / 1000 };
  }
  log(`fix  kind node image (offline, cached by content hash in ${kindImagesDir()}): a cold build takes about 1-3 min once the Debian packages are fetched`);
  // the bookworm rootfs and the node's .debs (docker/images.ts fetches and caches both)
  await fetchDebs(KIND_NODE_PACKAGES, (l) => log(`     ${l}`));
  plan = await planNodeImage();
  if (!plan) throw new Error('the Debian packages of the kind node are still not fetched after fetchDebs');
  const dir = scratch();
  try {
    if (!(await hasImage(engine, plan.base.tag))) {
      log(`fix  docker import ${plan.base.rootfsTar} ${plan.base.tag}`);
      await dockerStep(engine, 'importing the bookworm base', ['import', '--message', `debootstrap --variant=minbase ${DEBIAN_SUITE}`, plan.base.rootfsTar, plan.base.tag], join(kindImagesDir(), 'build-base.log'));
    }
    if (!(await hasImage(engine, plan.packages.tag))) await buildPackagesLayer(engine, plan, dir, log);
    for (const p of plan.preload) {
      if (await hasImage(engine, p.tag)) continue;
      await buildPreloadImage(engine, p, dir, log);
    }
    if (!(await hasImage(engine, plan.layerTag))) await buildNodeLayer(engine, plan, dir, log);
    await preloadAndCommit(engine, plan, dir, log);
    await saveNodeImage(engine, plan, log);
    writeRecord(plan.tag, {
      hash: plan.hash, layer: plan.layerTag, packages: plan.packages.tag, runcWrapper: plan.runcWrapper,
      preload: plan.preload.map((p) => ({ ref: p.image.ref, tag: p.tag, sha256: p.bin.sha256 })),
      files: plan.files.map((f) => ({ dest: f.dest, sha256: f.sha256 })),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { tag: plan.tag, status: 'built', seconds: (Date.now() - started) / 1000 };
}

/** What kubeadm itself lists for v1.34.4, checked against the table the images are built from. */
export async function kubeadmImagesList(kubeadm: string): Promise<string> {
  return run([kubeadm, 'config', 'images', 'list', '--kubernetes-version', KUBERNETES.version], { timeoutMs: 60_000 });
}

export const readRecord = (tag: string): unknown => JSON.parse(readFileSync(recordOf(tag), 'utf8'));
