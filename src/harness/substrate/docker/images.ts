// The pods' images, built offline and cached by a content hash of their inputs (package list, file hashes, Dockerfile
// text): a Debian bookworm base from `debootstrap --variant=minbase` + `docker import`, a layer of Debian packages
// (iptables, iproute2, tcpdump, HAProxy) installed from .debs fetched beforehand, a layer with the host's own node, and
// per Envoy version a layer with the cached Envoy binary. Only debootstrap and the .deb download reach a mirror (from the
// host, while provisioning); every build runs with `--network none`. A second run with the same inputs builds nothing.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../../model/errors.ts';
import { findOnPath } from '../../cli/tools.ts';
import { run, runCapture } from '../sh.ts';
import { processStart } from '../state.ts';
import { mountsUnder } from './janitor.ts';
import { docker, dockerCapture, type DockerEngine } from './engine.ts';
import { meshproofCache } from './layout.ts';

/** `~/.cache/meshproof/images`: the base rootfs tarball, the fetched .debs, a record per built image. */
export const imagesCacheDir = (): string => join(meshproofCache(), 'images');

export const DEBIAN_SUITE = 'bookworm';
/** The mirror debootstrap and apt use (MESHPROOF_DEBIAN_MIRROR overrides; the security archive lives beside it). */
export const debianMirror = (): string => process.env.MESHPROOF_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const securityMirror = (mirror: string): string => mirror.replace(/\/debian\/?$/, '/debian-security');

/** What every pod image carries from Debian (DESIGN.md: HAProxy is Debian's; iptables rules are real kernel rules; curl for `meshproof exec <pod> -- curl`, as the workshop's sleep pod). */
export const POD_PACKAGES = ['iptables', 'iproute2', 'tcpdump', 'haproxy', 'curl'] as const;

/** sha256 of canonical JSON (keys sorted at every level): the same inputs always give the same hash. */
export function contentHash(inputs: unknown): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]));
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canon(inputs))).digest('hex');
}

/** A tag names its inputs: `meshproof/<name>:<first 16 hex of the hash>`. */
export const imageTag = (name: string, hash: string): string => `meshproof/${name}:${hash.slice(0, 16)}`;

/** The apt sources of the images: bookworm, its updates and its security archive (as the host's own sources). */
export function sourcesList(mirror: string): string {
  return [
    `deb ${mirror} ${DEBIAN_SUITE} main`,
    `deb ${mirror} ${DEBIAN_SUITE}-updates main`,
    `deb ${securityMirror(mirror)} ${DEBIAN_SUITE}-security main`,
    '',
  ].join('\n');
}

export function debootstrapArgv(rootfs: string, mirror: string): string[] {
  return ['debootstrap', '--variant=minbase', DEBIAN_SUITE, rootfs, mirror];
}

export interface BasePlan { tag: string; hash: string; mirror: string; sources: string }

export function basePlan(mirror: string = debianMirror()): BasePlan {
  const sources = sourcesList(mirror);
  const hash = contentHash({ debootstrap: debootstrapArgv('<rootfs>', mirror), sources, arch: process.arch });
  return { tag: imageTag('base', hash), hash, mirror, sources };
}

/** Where the .debs of `packages` on top of `base` are kept: keyed by the base and the package list. */
export function debsKey(base: BasePlan, packages: readonly string[]): string {
  return contentHash({ base: base.hash, packages: [...packages].sort() });
}

/** A file copied into an image: where from, where to, and its sha256 (part of the layer's hash). */
export interface LayerFile { src: string; dest: string; sha256: string; mode?: number }

export interface LayerPlan {
  name: string;
  tag: string;
  hash: string;
  parent: string;
  dockerfile: string;
  /** Files of the build context, by their name there. */
  context: { name: string; src: string }[];
}

const COPIED_DEBS = '/var/cache/meshproof-debs';

/** The Debian packages layer: dpkg installs the fetched closure in one call, no network. */
export function packagesDockerfile(parent: string): string {
  return [`FROM ${parent}`, `COPY debs/ ${COPIED_DEBS}/`, `RUN dpkg -i ${COPIED_DEBS}/*.deb && rm -rf ${COPIED_DEBS}`, ''].join('\n');
}

export function fileLayerDockerfile(parent: string, files: { name: string; dest: string }[], labels: Record<string, string> = {}): string {
  const lines = [`FROM ${parent}`, ...files.map((f) => `COPY ${f.name} ${f.dest}`)];
  for (const [k, v] of Object.entries(labels).sort()) lines.push(`LABEL ${k}=${JSON.stringify(v)}`);
  return [...lines, ''].join('\n');
}

/** The hash of a built layer: its Dockerfile text (which names the parent by its own hashed tag) and its files' hashes. */
export function layerHash(dockerfile: string, files: { name: string; sha256: string }[]): string {
  return contentHash({ dockerfile, files: [...files].sort((a, b) => a.name.localeCompare(b.name)) });
}

export interface PodImageInputs {
  base: BasePlan;
  /** The fetched .debs (file name → sha256). */
  debs: { name: string; src: string; sha256: string }[];
  node: { src: string; sha256: string; version: string };
  envoys: { version: string; src: string; sha256: string }[];
}

/** Every layer above the base, in build order; the last ones are the pod images, one per Envoy version. */
export function planLayers(i: PodImageInputs): LayerPlan[] {
  const pkgFile = packagesDockerfile(i.base.tag);
  const pkgHash = layerHash(pkgFile, i.debs.map((d) => ({ name: `debs/${d.name}`, sha256: d.sha256 })));
  const packages: LayerPlan = {
    name: 'packages', tag: imageTag('packages', pkgHash), hash: pkgHash, parent: i.base.tag, dockerfile: pkgFile,
    context: i.debs.map((d) => ({ name: `debs/${d.name}`, src: d.src })),
  };
  const nodeFile = fileLayerDockerfile(packages.tag, [{ name: 'node', dest: '/usr/local/bin/node' }], { 'meshproof.node-version': i.node.version });
  const nodeHash = layerHash(nodeFile, [{ name: 'node', sha256: i.node.sha256 }]);
  const node: LayerPlan = { name: 'node', tag: imageTag('node', nodeHash), hash: nodeHash, parent: packages.tag, dockerfile: nodeFile, context: [{ name: 'node', src: i.node.src }] };
  const envoys = i.envoys.map((e): LayerPlan => {
    const file = fileLayerDockerfile(node.tag, [{ name: 'envoy', dest: '/usr/local/bin/envoy' }], { 'meshproof.envoy-version': e.version });
    const hash = layerHash(file, [{ name: 'envoy', sha256: e.sha256 }]);
    return { name: `envoy-${e.version}`, tag: imageTag(`envoy-${e.version}`, hash), hash, parent: node.tag, dockerfile: file, context: [{ name: 'envoy', src: e.src }] };
  });
  return [packages, node, ...envoys];
}

/** The pod image of an Envoy version: the last layer, `meshproof/envoy-<v>:<hash>`. */
export const podImageOf = (layers: LayerPlan[], envoyVersion: string): string | undefined => layers.find((l) => l.name === `envoy-${envoyVersion}`)?.tag;

// ---------------------------------------------------------------------------------------------
// I/O: hashing, fetching, building.

interface HashCacheEntry { size: number; mtimeMs: number; ino: number; sha256: string }

/** sha256 of a file, remembered by (size, mtime, inode) so a second doctor run does not read 200 MB again. */
export async function fileSha256(path: string): Promise<string> {
  const st = statSync(path);
  const cacheFile = join(imagesCacheDir(), 'file-hashes.json');
  let cache: Record<string, HashCacheEntry> = {};
  try {
    cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, HashCacheEntry>;
  } catch {
    // first run
  }
  const hit = cache[path];
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino) return hit.sha256;
  const sha256 = await new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (b) => h.update(b)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
  cache[path] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
  mkdirSync(imagesCacheDir(), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify(cache, null, 2));
  return sha256;
}

const baseDir = (b: BasePlan): string => join(imagesCacheDir(), `base-${b.hash.slice(0, 16)}`);
export const baseRootfsTar = (b: BasePlan): string => join(baseDir(b), 'rootfs.tar');
const debsDir = (b: BasePlan, packages: readonly string[]): string => join(imagesCacheDir(), `debs-${debsKey(b, packages).slice(0, 16)}`);
/** The record of a built image (`builtLayers` reads whether it exists). */
export const recordOf = (tag: string): string => join(imagesCacheDir(), `${tag.replace(/^meshproof\//, '').replace(':', '-')}.json`);
/**
 * A pod image saved with its parents (`docker save` of base, packages, node and envoy-<v>), named by its tag: an engine
 * that lacks it (a data root of its own while another run holds the shared one, a user's engine) loads it instead of
 * building (as kind/node-image.ts does for the node image).
 */
export const savedImageOf = (tag: string): string => recordOf(tag).replace(/\.json$/, '.tar');
/** Where a layer's `docker build` output is kept, for a build that failed to be read after its run is gone. */
export const buildLogOf = (l: LayerPlan): string => join(imagesCacheDir(), 'build-logs', `${l.name}-${l.hash.slice(0, 16)}.log`);

/** A layer whose `docker build` failed: its tag and the file holding the build's whole output. */
export class ImageBuildError extends Error {
  constructor(readonly layer: LayerPlan, readonly log: string, code: number, tail: string) {
    super(`docker build ${layer.tag} (${layer.name}) failed (exit ${code}): ${tail} (the whole output: ${log})`);
    this.name = 'ImageBuildError';
  }
}

/** A scratch directory in the cache; those of a process that died (killed mid-debootstrap) are removed first. */
async function scratch(): Promise<string> {
  for (const d of readdirSync(imagesCacheDir())) {
    const m = /^\.tmp-(\d+)-/.exec(d);
    if (m && processStart(Number(m[1])) === null) await removeScratch(join(imagesCacheDir(), d));
  }
  const dir = join(imagesCacheDir(), `.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Removes a scratch directory, never through a mount: debootstrap mounts /proc and /sys in its target and, where it
 * believes it runs in a container (/.dockerenv, as here), binds the host's /dev there; a killed one leaves them.
 */
async function removeScratch(dir: string): Promise<void> {
  for (const m of mountsUnder([dir])) await runCapture(['umount', '--lazy', m]);
  const left = mountsUnder([dir]);
  if (left.length) throw new Error(`not removing ${dir}: ${left[0]} is still mounted`);
  rmSync(dir, { recursive: true, force: true });
}

/** debootstrap → rootfs.tar (network: the Debian mirror, from the host), once per base hash. */
async function ensureBaseRootfs(b: BasePlan, log: (l: string) => void): Promise<'hit' | 'built'> {
  if (existsSync(baseRootfsTar(b))) return 'hit';
  if (!findOnPath('debootstrap')) throw new UserError('debootstrap not found: run meshproof doctor --fix --substrate docker');
  const tmp = await scratch();
  try {
    const rootfs = join(tmp, 'rootfs');
    log(`fix  ${debootstrapArgv(rootfs, b.mirror).join(' ')} (about 1-5 min, ~200 MB)`);
    const started = Date.now();
    await run(debootstrapArgv(rootfs, b.mirror), { timeoutMs: 20 * 60_000 });
    writeFileSync(join(rootfs, 'etc/apt/sources.list'), b.sources);
    // the image carries no package lists and no resolver of the build host
    for (const d of ['var/lib/apt/lists', 'var/cache/apt/archives']) {
      for (const e of readdirSync(join(rootfs, d))) if (e !== 'partial' && e !== 'lock') rmSync(join(rootfs, d, e), { recursive: true, force: true });
    }
    rmSync(join(rootfs, 'etc/resolv.conf'), { force: true });
    mkdirSync(baseDir(b), { recursive: true });
    await run(['tar', '--numeric-owner', '-C', rootfs, '-cf', `${baseRootfsTar(b)}.partial`, '.'], { timeoutMs: 10 * 60_000 });
    renameSync(`${baseRootfsTar(b)}.partial`, baseRootfsTar(b));
    writeFileSync(join(baseDir(b), 'inputs.json'), JSON.stringify({ tag: b.tag, hash: b.hash, mirror: b.mirror, sources: b.sources }, null, 2));
    log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 'built';
  } finally {
    await removeScratch(tmp);
  }
}

/** The .debs of `packages` and their dependencies not in the base, fetched by apt in a chroot of the base (network: the mirror). */
async function ensureDebs(b: BasePlan, packages: readonly string[], log: (l: string) => void): Promise<'hit' | 'built'> {
  const dir = debsDir(b, packages);
  if (existsSync(join(dir, 'packages.json'))) return 'hit';
  const tmp = await scratch();
  try {
    const rootfs = join(tmp, 'rootfs');
    mkdirSync(rootfs);
    await run(['tar', '--numeric-owner', '-C', rootfs, '-xf', baseRootfsTar(b)], { timeoutMs: 10 * 60_000 });
    copyFileSync('/etc/resolv.conf', join(rootfs, 'etc/resolv.conf'));
    mkdirSync(join(rootfs, 'tmp/debs/partial'), { recursive: true });
    log(`fix  apt-get install --download-only ${packages.join(' ')} (in a chroot of the base image)`);
    const started = Date.now();
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run(['chroot', rootfs, 'apt-get', '-q', 'update'], { env, timeoutMs: 10 * 60_000 });
    await run(['chroot', rootfs, 'apt-get', '-q', '-y', '--no-install-recommends', '--download-only', '-o', 'Dir::Cache::archives=/tmp/debs', 'install', ...packages], { env, timeoutMs: 15 * 60_000 });
    const debs = readdirSync(join(rootfs, 'tmp/debs')).filter((f) => f.endsWith('.deb'));
    if (!debs.some((d) => d.startsWith(`${packages[0]}_`))) throw new Error(`apt-get fetched no ${packages[0]}_*.deb`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const d of debs) copyFileSync(join(rootfs, 'tmp/debs', d), join(dir, d));
    writeFileSync(join(dir, 'packages.json'), JSON.stringify({ base: b.tag, packages, debs }, null, 2));
    log(`     ${debs.length} .debs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 'built';
  } finally {
    await removeScratch(tmp);
  }
}

/** The layers' inputs as they are now (the .debs must have been fetched: ensureDebs); null when they have not. */
export async function currentInputs(o: { envoys: { version: string; bin: string }[]; packages?: readonly string[]; mirror?: string }): Promise<PodImageInputs | null> {
  const base = basePlan(o.mirror);
  const dir = debsDir(base, o.packages ?? POD_PACKAGES);
  let listed: { debs: string[] };
  try {
    listed = JSON.parse(readFileSync(join(dir, 'packages.json'), 'utf8')) as { debs: string[] };
  } catch {
    return null;
  }
  const debs = await Promise.all(listed.debs.map(async (d) => ({ name: d, src: join(dir, d), sha256: await fileSha256(join(dir, d)) })));
  const node = { src: process.execPath, sha256: await fileSha256(process.execPath), version: process.versions.node };
  const envoys = await Promise.all(o.envoys.map(async (e) => ({ version: e.version, src: e.bin, sha256: await fileSha256(e.bin) })));
  return { base, debs, node, envoys };
}

export interface ImageStatus { tag: string; name: string; status: 'hit' | 'loaded' | 'built' }

/** Whether every layer of these inputs was built (its record is in the cache); no engine needed. */
export function builtLayers(inputs: PodImageInputs): { layer: LayerPlan | BasePlan; built: boolean }[] {
  return [inputs.base, ...planLayers(inputs)].map((layer) => ({ layer, built: existsSync(recordOf(layer.tag)) }));
}

async function hasImage(engine: DockerEngine, tag: string): Promise<boolean> {
  return (await dockerCapture(engine, ['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0;
}

function writeImageRecord(tag: string, inputs: unknown, engine: DockerEngine): void {
  writeFileSync(recordOf(tag), JSON.stringify({ tag, inputs, engine: engine.owned ? 'meshproof' : engine.host, built: new Date().toISOString() }, null, 2));
}

async function buildLayer(engine: DockerEngine, l: LayerPlan, log: (l: string) => void): Promise<void> {
  const ctx = await scratch();
  try {
    for (const f of l.context) {
      mkdirSync(join(ctx, f.name, '..'), { recursive: true });
      copyFileSync(f.src, join(ctx, f.name));
    }
    writeFileSync(join(ctx, 'Dockerfile'), l.dockerfile);
    log(`fix  docker build --network none -t ${l.tag} (${l.name})`);
    const started = Date.now();
    // --force-rm: a failed step's container goes too
    const r = await dockerCapture(engine, ['build', '--network', 'none', '--rm', '--force-rm', '--label', `meshproof.inputs=${l.hash}`, '-t', l.tag, ctx], 10 * 60_000);
    if (r.code !== 0) {
      const file = buildLogOf(l);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${r.stdout}${r.stderr}`);
      throw new ImageBuildError(l, file, r.code, (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | '));
    }
    rmSync(buildLogOf(l), { force: true });
    log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/**
 * Builds what is missing, bottom up, into `engine` (meshproof's own, or DOCKER_HOST's): a layer whose tag (its inputs'
 * hash) the engine has is a hit. Returns each image's status and the pod image per Envoy version.
 */
export async function ensureImages(engine: DockerEngine, o: { envoys: { version: string; bin: string }[]; log?: (l: string) => void; packages?: readonly string[]; mirror?: string }): Promise<{ images: ImageStatus[]; podImages: Record<string, string> }> {
  const log = o.log ?? (() => undefined);
  const packages = o.packages ?? POD_PACKAGES;
  const base = basePlan(o.mirror);
  mkdirSync(imagesCacheDir(), { recursive: true });
  await ensureBaseRootfs(base, log);
  await ensureDebs(base, packages, log);
  const inputs = await currentInputs({ envoys: o.envoys, packages, mirror: o.mirror });
  if (!inputs) throw new Error(`the .debs of ${packages.join(' ')} are missing from ${imagesCacheDir()}`);
  const layers = planLayers(inputs);
  // each pod image with its parents: what `docker save` keeps together and `docker load` brings back
  const chains = o.envoys.map((e) => {
    const top = layers.find((l) => l.name === `envoy-${e.version}`)!;
    return { top: top.tag, tags: [base.tag, ...layers.filter((l) => l.name === 'packages' || l.name === 'node').map((l) => l.tag), top.tag] };
  });
  const loaded = new Set<string>();
  for (const c of chains) {
    if (!(await hasImage(engine, c.top)) && (await loadSaved(engine, c.top, log))) c.tags.forEach((t) => loaded.add(t));
  }
  const hit = (tag: string): ImageStatus['status'] => (loaded.has(tag) ? 'loaded' : 'hit');
  const images: ImageStatus[] = [];
  if (await hasImage(engine, base.tag)) images.push({ tag: base.tag, name: 'base', status: hit(base.tag) });
  else {
    log(`fix  docker import ${basename(baseRootfsTar(base))} ${base.tag}`);
    await docker(engine, ['import', '--message', `debootstrap --variant=minbase ${DEBIAN_SUITE} ${base.mirror}`, baseRootfsTar(base), base.tag]);
    writeImageRecord(base.tag, { hash: base.hash, mirror: base.mirror, sources: base.sources }, engine);
    images.push({ tag: base.tag, name: 'base', status: 'built' });
  }
  images.push(...(await ensureLayers(engine, layers, log)).map((i) => (i.status === 'hit' ? { ...i, status: hit(i.tag) } : i)));
  for (const c of chains) if (!existsSync(savedImageOf(c.top))) await saveImages(engine, c.top, c.tags, log);
  const podImages = Object.fromEntries(o.envoys.map((e) => [e.version, podImageOf(layers, e.version)!]));
  return { images, podImages };
}

/** `docker load` of a saved pod image; false when there is none, or it does not load (it goes, and the layers are built). */
async function loadSaved(engine: DockerEngine, tag: string, log: (l: string) => void): Promise<boolean> {
  const tar = savedImageOf(tag);
  if (!existsSync(tar)) return false;
  log(`fix  docker load -i ${tar}`);
  const started = Date.now();
  const r = await dockerCapture(engine, ['load', '-i', tar], 10 * 60_000);
  if (r.code !== 0 || !(await hasImage(engine, tag))) {
    log(`     docker load failed (${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? `exit ${r.code}`}): building instead`);
    rmSync(tar, { force: true });
    return false;
  }
  log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return true;
}

/** `docker save` of a pod image and its parents to savedImageOf(tag); a saved image of the same name with other inputs goes. */
async function saveImages(engine: DockerEngine, tag: string, tags: string[], log: (l: string) => void): Promise<void> {
  const tar = savedImageOf(tag);
  log(`fix  docker save -o ${tar} ${tags.join(' ')}`);
  const started = Date.now();
  // written in a scratch dir (a killed save's goes with it) and renamed into place whole
  const tmp = await scratch();
  try {
    await docker(engine, ['save', '-o', join(tmp, 'images.tar'), ...tags]);
    renameSync(join(tmp, 'images.tar'), tar);
  } finally {
    await removeScratch(tmp);
  }
  const stale = `${basename(tar).replace(/-[0-9a-f]{16}\.tar$/, '')}-`;
  for (const f of readdirSync(imagesCacheDir())) {
    if (f.startsWith(stale) && /-[0-9a-f]{16}\.tar$/.test(f) && f !== basename(tar)) rmSync(join(imagesCacheDir(), f), { force: true });
  }
  log(`     ${Math.round(statSync(tar).size / 1e6)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Builds each layer the engine lacks, in order (a layer whose tag, its inputs' hash, the engine has is a hit). */
async function ensureLayers(engine: DockerEngine, layers: LayerPlan[], log: (l: string) => void): Promise<ImageStatus[]> {
  const images: ImageStatus[] = [];
  for (const l of layers) {
    if (await hasImage(engine, l.tag)) {
      if (!existsSync(recordOf(l.tag))) writeImageRecord(l.tag, { hash: l.hash, dockerfile: l.dockerfile }, engine);
      images.push({ tag: l.tag, name: l.name, status: 'hit' });
      continue;
    }
    await buildLayer(engine, l, log);
    writeImageRecord(l.tag, { hash: l.hash, dockerfile: l.dockerfile, files: l.context.map((c) => c.name) }, engine);
    images.push({ tag: l.tag, name: l.name, status: 'built' });
  }
  return images;
}

/**
 * The base rootfs and the .debs of `packages` on top of it, fetched once (cached like ensureImages' own), for a layer
 * another substrate builds itself (the kind node: systemd pre-depends on libssl3 from the same closure, which one
 * `dpkg -i` pass refuses). No engine needed.
 */
export async function fetchDebs(packages: readonly string[], log: (l: string) => void = () => undefined, mirror?: string): Promise<{ base: BasePlan; debs: { name: string; src: string; sha256: string }[] }> {
  const base = basePlan(mirror);
  mkdirSync(imagesCacheDir(), { recursive: true });
  await ensureBaseRootfs(base, log);
  await ensureDebs(base, packages, log);
  const inputs = await currentInputs({ envoys: [], packages, mirror });
  if (!inputs) throw new Error(`the .debs of ${packages.join(' ')} are missing from ${imagesCacheDir()}`);
  return { base, debs: inputs.debs };
}

// ---------------------------------------------------------------------------------------------
// The images a real kubelet runs (the kind substrate): per Istio version a proxyv2 and a pilot equivalent, and
// meshproof's workload image. meshproof builds, named as such (`meshproof/istio-proxyv2:<version>-<hash>`), never
// Istio's own image names.

/** Every image's PATH (an imported rootfs carries none; the CRI adds none of its own). */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Istio's sidecar and istiod user (pilot/docker/Dockerfile.proxyv2, Dockerfile.pilot: `USER 1337:1337`). */
export const ISTIO_UID = 1337;
/** Where pilot-agent reads its Envoy bootstrap template (pilot-agent's default, Dockerfile.proxyv2's COPY). */
export const ISTIO_BOOTSTRAP_PATH = '/var/lib/istio/envoy/envoy_bootstrap_tmpl.json';
/** Where the pod bundle sits in the workload image (its entrypoint runs it with the image's node). */
export const WORKLOAD_BUNDLE_PATH = '/opt/meshproof/pod-bundle.js';

export interface FileInput { src: string; sha256: string }
export interface KubeletImageInputs {
  istioVersion: string;
  envoyVersion: string;
  pilotAgent: FileInput;
  pilotDiscovery: FileInput;
  bootstrapTemplate: FileInput;
  bundle: FileInput;
}

const versionedTag = (name: string, version: string, hash: string): string => `meshproof/${name}:${version}-${hash.slice(0, 16)}`;

/**
 * The three images on top of the pod image layers (`parents`: the base, the node layer, the Envoy layer of the
 * version Istio pairs with): Istio's Dockerfile.proxyv2 (pilot-agent as the entrypoint, the Envoy at
 * /usr/local/bin/envoy, the bootstrap template, user 1337, iptables for istio-init from the packages layer),
 * Dockerfile.pilot (pilot-discovery, user 1337), and the workload image (the pod bundle run by node).
 */
export function planKubeletLayers(parents: { base: string; node: string; envoy: string }, i: KubeletImageInputs): { proxyv2: LayerPlan; pilot: LayerPlan; workload: LayerPlan } {
  const proxyFile = [
    `FROM ${parents.envoy}`,
    'COPY pilot-agent /usr/local/bin/pilot-agent',
    `COPY envoy_bootstrap_tmpl.json ${ISTIO_BOOTSTRAP_PATH}`,
    `RUN groupadd --gid ${ISTIO_UID} istio-proxy && useradd -m --uid ${ISTIO_UID} --gid ${ISTIO_UID} istio-proxy && mkdir -p /etc/istio/proxy /var/lib/istio/data && chown -R ${ISTIO_UID}:${ISTIO_UID} /etc/istio /var/lib/istio`,
    `ENV PATH=${IMAGE_PATH}`,
    `LABEL meshproof.istio-version=${JSON.stringify(i.istioVersion)} meshproof.envoy-version=${JSON.stringify(i.envoyVersion)}`,
    `USER ${ISTIO_UID}:${ISTIO_UID}`,
    'ENTRYPOINT ["/usr/local/bin/pilot-agent"]',
    '',
  ].join('\n');
  const proxyHash = layerHash(proxyFile, [{ name: 'pilot-agent', sha256: i.pilotAgent.sha256 }, { name: 'envoy_bootstrap_tmpl.json', sha256: i.bootstrapTemplate.sha256 }]);
  const proxyv2: LayerPlan = {
    name: `istio-proxyv2-${i.istioVersion}`, tag: versionedTag('istio-proxyv2', i.istioVersion, proxyHash), hash: proxyHash, parent: parents.envoy, dockerfile: proxyFile,
    context: [{ name: 'pilot-agent', src: i.pilotAgent.src }, { name: 'envoy_bootstrap_tmpl.json', src: i.bootstrapTemplate.src }],
  };
  const pilotFile = [
    `FROM ${parents.base}`,
    'COPY pilot-discovery /usr/local/bin/pilot-discovery',
    `COPY envoy_bootstrap_tmpl.json ${ISTIO_BOOTSTRAP_PATH}`,
    `ENV PATH=${IMAGE_PATH}`,
    `LABEL meshproof.istio-version=${JSON.stringify(i.istioVersion)}`,
    `USER ${ISTIO_UID}:${ISTIO_UID}`,
    'ENTRYPOINT ["/usr/local/bin/pilot-discovery"]',
    '',
  ].join('\n');
  const pilotHash = layerHash(pilotFile, [{ name: 'pilot-discovery', sha256: i.pilotDiscovery.sha256 }, { name: 'envoy_bootstrap_tmpl.json', sha256: i.bootstrapTemplate.sha256 }]);
  const pilot: LayerPlan = {
    name: `istio-pilot-${i.istioVersion}`, tag: versionedTag('istio-pilot', i.istioVersion, pilotHash), hash: pilotHash, parent: parents.base, dockerfile: pilotFile,
    context: [{ name: 'pilot-discovery', src: i.pilotDiscovery.src }, { name: 'envoy_bootstrap_tmpl.json', src: i.bootstrapTemplate.src }],
  };
  const workloadFile = [
    `FROM ${parents.node}`,
    `COPY pod-bundle.js ${WORKLOAD_BUNDLE_PATH}`,
    `ENV PATH=${IMAGE_PATH}`,
    `ENTRYPOINT ["/usr/local/bin/node", ${JSON.stringify(WORKLOAD_BUNDLE_PATH)}]`,
    '',
  ].join('\n');
  const workloadHash = layerHash(workloadFile, [{ name: 'pod-bundle.js', sha256: i.bundle.sha256 }]);
  const workload: LayerPlan = {
    name: 'workload', tag: imageTag('workload', workloadHash), hash: workloadHash, parent: parents.node, dockerfile: workloadFile,
    context: [{ name: 'pod-bundle.js', src: i.bundle.src }],
  };
  return { proxyv2, pilot, workload };
}

export interface KubeletImages { proxyv2: string; pilot: string; workload: string; images: ImageStatus[] }

/**
 * The pod image layers of `envoy`'s version (ensureImages), then the proxyv2, pilot and workload images of
 * planKubeletLayers, built into `engine` where it lacks them. The same inputs build nothing the second time.
 */
export async function ensureKubeletImages(engine: DockerEngine, o: { istioVersion: string; envoy: { version: string; bin: string }; pilotAgent: string; pilotDiscovery: string; bootstrapTemplate: string; bundle: string; log?: (l: string) => void }): Promise<KubeletImages> {
  const log = o.log ?? (() => undefined);
  const pods = await ensureImages(engine, { envoys: [o.envoy], log });
  const tagOf = (name: string): string => pods.images.find((im) => im.name === name)!.tag;
  const file = async (src: string): Promise<FileInput> => ({ src, sha256: await fileSha256(src) });
  const plan = planKubeletLayers({ base: tagOf('base'), node: tagOf('node'), envoy: pods.podImages[o.envoy.version]! }, {
    istioVersion: o.istioVersion, envoyVersion: o.envoy.version,
    pilotAgent: await file(o.pilotAgent), pilotDiscovery: await file(o.pilotDiscovery), bootstrapTemplate: await file(o.bootstrapTemplate), bundle: await file(o.bundle),
  });
  const built = await ensureLayers(engine, [plan.proxyv2, plan.pilot, plan.workload], log);
  return { proxyv2: plan.proxyv2.tag, pilot: plan.pilot.tag, workload: plan.workload.tag, images: [...pods.images, ...built] };
}
