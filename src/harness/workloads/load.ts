// The load generator, run inside the client pod's network namespace (so its traffic takes the
// pod's own path: its sidecar's iptables capture, its routes, its hosts file):
//   load --url U [--connections 8] [--pipelining 1] [--duration 3] [--warmup 1] [--rate R]
//        [--max-requests N] [--timeout 10] [--autocannon /path/autocannon.js] [--proxy host:port]
//        [--await-signal S]
// runs autocannon (HTTP/1.1 keep-alive): an unmeasured warm-up run, then the measured run in the
// same process (autocannon's JIT is warm by then). With --await-signal the workload prints ARMED_LINE after
// the warm-up, starts the measured run only on SIGUSR2 (waiting at most S seconds) and prints DONE_LINE as
// it ends: the harness samples the path's containers through the substrate port (load/runner.ts) between its
// signal and that line, so the window holds the measured run and no warm-up. Prints ONE JSON line (load/figures.ts
// LoadLine) and exits. Bounded in time (--duration, --await-signal, plus a hard stop) and in count
// (--max-requests). With --proxy the connections go to that plain HTTP proxy and every request is sent in
// absolute-form (`GET http://host:port/path`, Host: host:port), as an app's HTTP client does through an
// HTTP_PROXY (autocannon cannot tunnel through CONNECT; it need not here).
// autocannon is CommonJS with its own dependencies; it is not bundled into the pod bundle but
// required at run time from the harness's node_modules (the harness passes --autocannon).
import { createRequire } from 'node:module';
import type autocannonFn from 'autocannon';
import { ARMED_LINE, DONE_LINE, summarizeAutocannon, type LoadLine } from '../load/figures.ts';
import { parseFlags, usage } from './common.ts';

export interface LoadArgs {
  url: string;
  connections: number;
  pipelining: number;
  durationS: number;
  /** Seconds of the unmeasured warm-up run (0: none). */
  warmupS: number;
  /** Requests per second over all connections (autocannon overallRate); undefined = as fast as it goes. */
  rate?: number;
  /** Stop a run after this many requests whatever the duration. */
  maxRequests: number;
  /** Per-request timeout, seconds. */
  timeoutS: number;
  /** After the warm-up, print ARMED_LINE and wait at most this many seconds for SIGUSR2 before the measured run. */
  awaitSignalS?: number;
  autocannon?: string;
  /** A plain HTTP proxy (host:port) the requests go through in absolute-form. */
  proxy?: string;
}

function int(flag: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`load --${flag} must be an integer ${min}-${max}, got '${v}'`);
  return n;
}

export function parseLoadArgs(args: readonly string[]): LoadArgs {
  const f = parseFlags('load', args, ['url', 'connections', 'pipelining', 'duration', 'warmup', 'rate', 'max-requests', 'timeout', 'await-signal', 'autocannon', 'proxy'] as const);
  if (!f.url || !/^https?:\/\//.test(f.url)) throw usage(`load --url is required (http://host:port/path), got '${f.url ?? ''}'`);
  const out: LoadArgs = {
    url: f.url,
    connections: int('connections', f.connections, 8, 1, 1000),
    pipelining: int('pipelining', f.pipelining, 1, 1, 64),
    durationS: int('duration', f.duration, 3, 1, 600),
    warmupS: int('warmup', f.warmup, 0, 0, 60),
    maxRequests: int('max-requests', f['max-requests'], 5_000_000, 1, 100_000_000),
    timeoutS: int('timeout', f.timeout, 10, 1, 120),
  };
  if (f['await-signal'] !== undefined) out.awaitSignalS = int('await-signal', f['await-signal'], 0, 1, 600);
  if (f.rate !== undefined) out.rate = int('rate', f.rate, 0, 1, 10_000_000);
  if (f.autocannon !== undefined) out.autocannon = f.autocannon;
  if (f.proxy !== undefined) {
    const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(f.proxy);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw usage(`load --proxy takes host:port, got '${f.proxy}'`);
    if (!f.url.startsWith('http://')) throw usage(`load --proxy: only http:// targets go through a plain HTTP proxy (absolute-form), got '${f.url}'`);
    out.proxy = f.proxy;
  }
  return out;
}

function loadAutocannon(path: string | undefined): typeof autocannonFn {
  const require = createRequire(import.meta.url);
  try {
    return require(path ?? 'autocannon') as typeof autocannonFn;
  } catch (e) {
    throw usage(`load: cannot load autocannon from ${path ?? 'node_modules'}: ${(e as Error).message.split('\n')[0]} (pass --autocannon <path of autocannon.js>)`);
  }
}

/** One autocannon run, bounded by a hard stop beyond its own duration; `onResponse` sees each response time (ms). */
/** autocannon's url and requests: the target itself, or the proxy with the target in absolute-form. */
export function cannonTarget(a: Pick<LoadArgs, 'url' | 'proxy'>): Pick<autocannonFn.Options, 'url' | 'requests'> {
  if (a.proxy === undefined) return { url: a.url };
  const u = new URL(a.url);
  return { url: `http://${a.proxy}`, requests: [{ method: 'GET', path: u.href, headers: { host: u.host } }] };
}

function cannon(autocannon: typeof autocannonFn, a: LoadArgs, durationS: number, onResponse?: (status: number, ms: number) => void): Promise<autocannonFn.Result> {
  const opts: autocannonFn.Options = {
    ...cannonTarget(a),
    connections: a.connections,
    pipelining: a.pipelining,
    duration: durationS,
    maxOverallRequests: Math.max(a.maxRequests, a.connections),
    timeout: a.timeoutS,
  };
  if (a.rate !== undefined) opts.overallRate = a.rate;
  const limitS = durationS + a.timeoutS + 5;
  return new Promise<autocannonFn.Result>((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`load: autocannon did not finish within ${limitS} s`)), limitS * 1000);
    const instance = autocannon(opts, (err, r) => {
      clearTimeout(guard);
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(r);
    });
    if (onResponse) instance.on('response', (_client, status, _bytes, ms) => onResponse(status, ms));
  });
}

/** Prints ARMED_LINE, then resolves on SIGUSR2 (node keeps SIGUSR1 for its inspector); rejects after `s` seconds. */
function armed(s: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const go = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      process.off('SIGUSR2', go);
      reject(new Error(`load: no SIGUSR2 within ${s} s of being armed`));
    }, s * 1000);
    // the listener before the line: a SIGUSR2 with none would kill the process
    process.once('SIGUSR2', go);
    process.stdout.write(`${ARMED_LINE}\n`);
  });
}

/** Warm-up, then (on SIGUSR2 with --await-signal) the measured run; resolves with the figures line (not yet printed). */
export async function runLoadOnce(a: LoadArgs): Promise<LoadLine> {
  const autocannon = loadAutocannon(a.autocannon);
  const warmupRequests = a.warmupS > 0 ? (await cannon(autocannon, a, a.warmupS)).requests.total : 0;
  if (a.awaitSignalS !== undefined) await armed(a.awaitSignalS);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const result = await cannon(autocannon, a, a.durationS, (status, ms) => {
    if (status >= 200 && status < 300 && latencies.length < a.maxRequests) latencies.push(ms);
  });
  const cpu = process.cpuUsage(cpu0);
  if (a.awaitSignalS !== undefined) process.stdout.write(`${DONE_LINE}\n`);
  const clientCpuS = (cpu.user + cpu.system) / 1e6;
  return { ...summarizeAutocannon(result, { latenciesMs: latencies, clientCpuS }), warmupRequests };
}

export async function runLoad(args: readonly string[]): Promise<void> {
  const line = await runLoadOnce(parseLoadArgs(args));
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
