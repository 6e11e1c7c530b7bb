// Host tools the harness drives: how to find them, run them briefly, and read their version lines.
// The parsers are pure (text in, version out) so they are unit-tested on sample outputs.

import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Linux capability number of CAP_NET_ADMIN (include/uapi/linux/capability.h). */
export const CAP_NET_ADMIN = 12;

/** The Envoy version of `envoy --version`: `envoy  version: <sha>/1.36.4/Clean/RELEASE/BoringSSL`. */
export function parseEnvoyVersion(out: string): { version: string; build: string } | null {
  // source/common/version/version.cc: "<sha>/<version>/<Clean|Modified>/<RELEASE|DEBUG>/<ssl>"
  const m = /\b([0-9a-f]{7,40})\/(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\/(Clean|Modified)\/(RELEASE|DEBUG)\/([\w.-]+)/.exec(out);
  if (!m) return null;
  return { version: m[2], build: `${m[1]}/${m[3]}/${m[4]}/${m[5]}` };
}

/** `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/` → `2.6.12` (also the old `HA-Proxy` spelling). */
export function parseHaproxyVersion(out: string): string | null {
  return /\bHA-?Proxy version (\d+\.\d+(?:\.\d+)?)/i.exec(out)?.[1] ?? null;
}

/** `ip utility, iproute2-6.1.0, libbpf 1.1.2` → `6.1.0`; the old snapshot form `iproute2-ss200127` → `ss200127`. */
export function parseIpVersion(out: string): string | null {
  return /\biproute2-((?:ss)?\d[\w.]*)/.exec(out)?.[1] ?? null;
}

/** `iptables v1.8.9 (nf_tables)` → `{ version: '1.8.9', backend: 'nf_tables' }`; `(legacy)` likewise. */
export function parseIptablesVersion(out: string): { version: string; backend: 'nf_tables' | 'legacy' } | null {
  const m = /\biptables v(\d+\.\d+(?:\.\d+)?)(?:\s+\((nf_tables|legacy)\))?/.exec(out);
  if (!m) return null;
  // iptables before 1.8 has no backend suffix and is the legacy (x_tables) one.
  return { version: m[1], backend: m[2] === 'nf_tables' ? 'nf_tables' : 'legacy' };
}

/** `tcpdump version 4.99.3` → `4.99.3`. */
export function parseTcpdumpVersion(out: string): string | null {
  return /\btcpdump version (\d[\w.-]*)/.exec(out)?.[1] ?? null;
}

/** `setpriv from util-linux 2.38.1` → `2.38.1`. */
export function parseUtilLinuxVersion(out: string): string | null {
  return /\butil-linux (\d[\w.-]*)/.exec(out)?.[1] ?? null;
}

/** `OpenSSL 3.0.19 27 Jan 2026 (Library: ...)` → `3.0.19`. */
export function parseOpensslVersion(out: string): string | null {
  return /^OpenSSL (\d[\w.-]*)/m.exec(out)?.[1] ?? null;
}

/** `curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 ...` → `7.88.1`. */
export function parseCurlVersion(out: string): string | null {
  return /^curl (\d[\w.-]*)/m.exec(out)?.[1] ?? null;
}

/** `wrk debian/4.1.0-3+b2 [epoll] Copyright ...` → `4.1.0`; upstream prints `wrk 4.2.0 [epoll] ...`. */
export function parseWrkVersion(out: string): string | null {
  return /^wrk (?:[a-z]+\/)?(\d+\.\d+(?:\.\d+)?)/m.exec(out)?.[1] ?? null;
}

/** `Chromium 131.0.6778.204 built on Debian 12.8, running on Debian 12.8` → `131.0.6778.204`. */
export function parseChromiumVersion(out: string): string | null {
  return /^Chromium (\d+(?:\.\d+)+)/m.exec(out)?.[1] ?? null;
}

/** Whether capability `bit` is in the `CapEff:` mask of a /proc/<pid>/status text. */
export function hasEffectiveCap(status: string, bit: number): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

/** Whether `file` is a regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` as a PATH lookup finds it (no process is spawned); null when absent. */
export function findOnPath(name: string, pathEnv: string = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) return isExecutableFile(name) ? name : null;
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const file = join(dir, name);
    if (isExecutableFile(file)) return file;
  }
  return null;
}

export interface ExecResult {
  /** Exit code; null when the process could not start, was killed, or timed out. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why the process failed to run to an exit code (ENOENT, timeout, signal), else null. */
  error: string | null;
}

/** Runs `file args` briefly without a shell and never rejects: a missing tool is an ENOENT result. */
export function execBrief(file: string, args: string[], timeoutMs = 3000, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8', env, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr, error: null });
        const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string | null };
        if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr, error: null });
        const why = e.killed ? `timed out after ${timeoutMs} ms` : e.signal ? `killed by ${e.signal}` : (e.code ?? e.message);
        resolve({ code: null, stdout, stderr, error: String(why) });
      });
  });
}

/** The first non-empty line of a command's stderr (else stdout, else its start error), for one-line details. */
export function firstLine(r: ExecResult): string {
  for (const text of [r.stderr, r.stdout, r.error ?? '']) {
    const line = text.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
    if (line) return line;
  }
  return `exit ${r.code}`;
}
