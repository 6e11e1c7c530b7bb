// fortio, Istio's load generator (istio/tools perf/benchmark runs it at a fixed rate), built from its Go module
// into `${XDG_CACHE_HOME or ~/.cache}/meshproof/fortio/<version>/bin/fortio` with `go install` and recorded in a
// provenance.json beside it (module, version, Go, sha256, size, mtime). `meshproof doctor` checks it without
// spawning (the binary's size and mtime must still be the ones recorded right after the build); `doctor --fix`
// builds it. The throughput budgets run it inside the client pods (load/fortio.ts).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { goVersionAtLeast, parseGoVersion } from '../controlplane/versions.ts';
import { runCapture } from '../substrate/sh.ts';
import { DEFAULT_ENVOY_VERSION, envoyCacheDir, type Check } from './doctor.ts';
import { UserError } from '../model/errors.ts';
import { findOnPath } from './tools.ts';

/**
 * The pinned fortio. v1.68.2 is the newest the Go module proxy can build here: from v1.69.0 on fortio requires
 * grol.io/grol, which the proxy does not serve (`go install fortio.org/fortio@v1.75.3`: 403 on grol.io/grol@v0.101.4).
 */
export const FORTIO = Object.freeze({
  module: 'fortio.org/fortio',
  version: 'v1.68.2',
  /** The module's go.mod `go` line. */
  go: '1.23.8',
  expected: '~1 min cold (about 20 modules downloaded), a few seconds with a warm Go module and build cache',
});

/** The build's environment (the project's Go build rules: no sumdb, no toolchain download, static binary). */
export const FORTIO_BUILD_ENV: Readonly<Record<string, string>> = Object.freeze({ GOFLAGS: '-mod=mod', GOSUMDB: 'off', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' });

const FIX = 'run meshproof doctor --fix';

export interface FortioPaths {
  dir: string;
  /** GOBIN of the build. */
  binDir: string;
  bin: string;
  provenance: string;
  log: string;
}

export function fortioPaths(version: string = FORTIO.version): FortioPaths {
  // the same cache root as Envoy's venvs and the control planes' builds
  const dir = join(dirname(dirname(envoyCacheDir(DEFAULT_ENVOY_VERSION))), 'fortio', version);
  return { dir, binDir: join(dir, 'bin'), bin: join(dir, 'bin', 'fortio'), provenance: join(dir, 'provenance.json'), log: join(dir, 'build.log') };
}

export interface FortioProvenance {
  schemaVersion: 1;
  tool: 'fortio';
  name: 'fortio';
  path: string;
  origin: 'go install';
  module: string;
  moduleVersion: string;
  goVersion: string;
  env: Record<string, string>;
  sha256: string;
  size: number;
  mtimeMs: number;
  builtAt: string;
  buildSeconds: number;
}

function readProvenance(file: string): FortioProvenance | null {
  try {
    const p = JSON.parse(readFileSync(file, 'utf8')) as FortioProvenance;
    return p.schemaVersion === 1 && p.tool === 'fortio' ? p : null;
  } catch {
    return null;
  }
}

/** Why the pinned fortio is not usable, or its provenance (spawn-free: stat and one small JSON file). */
function presence(): { ok: true; prov: FortioProvenance } | { ok: false; why: string } {
  const p = fortioPaths();
  let size: number;
  let mtimeMs: number;
  try {
    ({ size, mtimeMs } = statSync(p.bin));
  } catch {
    return { ok: false, why: 'not built' };
  }
  const prov = readProvenance(p.provenance);
  if (!prov || prov.path !== p.bin) return { ok: false, why: 'present without provenance' };
  if (prov.module !== FORTIO.module || prov.moduleVersion !== FORTIO.version) return { ok: false, why: `built from ${prov.module}@${prov.moduleVersion}, not ${FORTIO.module}@${FORTIO.version}` };
  if (prov.size !== size || prov.mtimeMs !== mtimeMs) return { ok: false, why: 'changed since it was built (size or mtime differ from provenance.json)' };
  return { ok: true, prov };
}

/** The doctor line: spawn-free. */
export function checkFortio(): Check {
  const p = presence();
  if (p.ok) return { name: 'fortio', ok: true, version: FORTIO.version.replace(/^v/, ''), detail: fortioPaths().bin };
  return { name: 'fortio', ok: false, detail: `${FORTIO.version} ${p.why}`, fix: FIX };
}

/** The fortio binary and its provenance (for load.json); a one-line UserError naming the fix when it is missing. */
export function resolveFortio(): FortioProvenance {
  const p = presence();
  if (!p.ok) throw new UserError(`fortio ${FORTIO.version} ${p.why}: ${FIX}`);
  return p.prov;
}

/** The last non-empty line of a build log, for a one-line error. */
function lastLine(text: string): string {
  return (text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).at(-1) ?? '').slice(0, 200);
}

/**
 * `go install fortio.org/fortio@<version>` with GOBIN in the cache, announced with its expected duration, a
 * progress line every 15 s, the build's output in build.log (named on failure). Idempotent: present → nothing.
 */
export async function provisionFortio(log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<{ built: boolean; seconds: number }> {
  const t0 = Date.now();
  if (presence().ok) return { built: false, seconds: 0 };
  const p = fortioPaths();
  const spec = `${FORTIO.module}@${FORTIO.version}`;
  const install = `install Go >= ${FORTIO.go} (the go.dev tarball in /usr/local/go, with /usr/local/go/bin on PATH), then ${FIX}`;
  const go = findOnPath('go');
  if (!go) throw new UserError(`go not found on PATH, needed to build ${spec}: ${install}`);
  const env = { ...process.env, ...FORTIO_BUILD_ENV, GOBIN: p.binDir };
  const v = parseGoVersion((await runCapture([go, 'version'], { env, timeoutMs: 20_000 })).stdout);
  if (!v) throw new UserError(`\`go version\` printed no version: ${install}`);
  if (!goVersionAtLeast(v, FORTIO.go)) throw new UserError(`go ${v} is older than ${spec}'s \`go ${FORTIO.go}\`: ${install}`);
  mkdirSync(p.binDir, { recursive: true });
  const shown = Object.entries(FORTIO_BUILD_ENV).map(([k, x]) => `${k}=${x}`).join(' ');
  const command = `${shown} GOBIN=${p.binDir} go install ${spec}`;
  log(`fix  fortio: ${command} (expected ${FORTIO.expected}; log ${p.log})`);
  const tick = setInterval(() => log(`     building fortio … ${Math.round((Date.now() - t0) / 1000)} s elapsed`), 15_000);
  let r;
  try {
    r = await runCapture([go, 'install', spec], { env, timeoutMs: 20 * 60_000 });
  } finally {
    clearInterval(tick);
  }
  writeFileSync(p.log, `# ${command}\n${r.stdout}${r.stderr}`);
  if (r.code !== 0) throw new UserError(`building ${spec} failed (exit ${r.code}: ${lastLine(r.stderr || r.stdout)}); log ${p.log}: fix what it shows, then ${FIX}`);
  const body = readFileSync(p.bin);
  const st = statSync(p.bin);
  const prov: FortioProvenance = {
    schemaVersion: 1, tool: 'fortio', name: 'fortio', path: p.bin, origin: 'go install', module: FORTIO.module, moduleVersion: FORTIO.version,
    goVersion: `go${v}`, env: { ...FORTIO_BUILD_ENV }, sha256: createHash('sha256').update(body).digest('hex'), size: st.size, mtimeMs: st.mtimeMs,
    builtAt: new Date().toISOString(), buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  const tmp = `${p.provenance}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(prov, null, 2)}\n`);
  renameSync(tmp, p.provenance);
  log(`     built fortio ${FORTIO.version} in ${prov.buildSeconds} s (${Math.round(st.size / 1e6)} MB, sha256 ${prov.sha256.slice(0, 12)})`);
  return { built: true, seconds: prov.buildSeconds };
}
