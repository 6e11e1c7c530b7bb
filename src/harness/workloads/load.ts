// The load generator, run inside the client pod's network namespace (so its traffic takes the
// pod's own path: its sidecar's iptables capture, its routes, its hosts file):
//   load --url U [--connections 8] [--pipelining 1] [--duration 3] [--warmup 1] [--rate R]
//        [--max-requests N] [--timeout 10] [--watch pid,pid,...] [--autocannon /path/autocannon.js]
//        [--proxy host:port]
// runs autocannon (HTTP/1.1 keep-alive): an unmeasured warm-up run, then the measured run in the
// same process (autocannon's JIT is warm by then), with the --watch processes and the machine read
// from /proc exactly over the measured run (the pod shares the host's /proc). Prints ONE JSON line
// (load/figures.ts LoadLine) and exits. Bounded in time (--duration, plus a hard stop) and in
// count (--max-requests). With --proxy the connections go to that plain HTTP proxy and every
// request is sent in absolute-form (`GET http://host:port/path`, Host: host:port), as an app's HTTP
// client does through an HTTP_PROXY (autocannon cannot tunnel through CONNECT; it need not here).
// autocannon is CommonJS with its own dependencies; it is not bundled into the pod bundle but
// required at run time from the harness's node_modules (the harness passes --autocannon).
import { createRequire } from 'node:module';
import type autocannonFn from 'autocannon';
import { summarizeAutocannon, type LoadLine } from '../load/figures.ts';
import { foreignCpuS } from '../load/machine.ts';
import { ProcWatch } from '../substrate/netns/proc.ts';
import { round } from '../load/stats.ts';
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
  /** Processes read from /proc over the measured run. */
  watch: number[];
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
  const f = parseFlags('load', args, ['url', 'connections', 'pipelining', 'duration', 'warmup', 'rate', 'max-requests', 'timeout', 'watch', 'autocannon', 'proxy'] as const);
  if (!f.url || !/^https?:\/\//.test(f.url)) throw usage(`load --url is required (http://host:port/path), got '${f.url ?? ''}'`);
  const watch = (f.watch ?? '').split(',').filter(Boolean);
  if (watch.some((p) => !/^\d+$/.test(p))) throw usage(`load --watch takes pids separated by commas, got '${f.watch}'`);
  const out: LoadArgs = {
    url: f.url,
    connections: int('connections', f.connections, 8, 1, 1000),
    pipelining: int('pipelining', f.pipelining, 1, 1, 64),
    durationS: int('duration', f.duration, 3, 1, 600),
    warmupS: int('warmup', f.warmup, 0, 0, 60),
    maxRequests: int('max-requests', f['max-requests'], 5_000_000, 1, 100_000_000),
    timeoutS: int('timeout', f.timeout, 10, 1, 120),
    watch: watch.map(Number),
  };
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

/** Warm-up, then the measured run under /proc watch; resolves with the figures line (not yet printed). */
export async function runLoadOnce(a: LoadArgs): Promise<LoadLine> {
  const autocannon = loadAutocannon(a.autocannon);
  const warmupRequests = a.warmupS > 0 ? (await cannon(autocannon, a, a.warmupS)).requests.total : 0;
  const latencies: number[] = [];
  const watch = new ProcWatch(a.watch);
  const cpu0 = process.cpuUsage();
  let result: autocannonFn.Result;
  let reading: ReturnType<ProcWatch['stop']>;
  try {
    result = await cannon(autocannon, a, a.durationS, (status, ms) => {
      if (status >= 200 && status < 300 && latencies.length < a.maxRequests) latencies.push(ms);
    });
  } finally {
    reading = watch.stop();
  }
  const cpu = process.cpuUsage(cpu0);
  const clientCpuS = (cpu.user + cpu.system) / 1e6;
  const figures = summarizeAutocannon(result, { latenciesMs: latencies, clientCpuS });
  const accounted = reading.procs.reduce((n, p) => n + p.cpuS, 0) + clientCpuS;
  const m = reading.machine;
  return {
    ...figures,
    procs: reading.procs.map((p) => ({ ...p, cpuS: round(p.cpuS), rssMiB: round(p.rssMiB, 1) })),
    machine: { cpus: m.cpus, wallS: round(m.wallS), busyS: round(m.busyS), irqS: round(m.irqS), idleS: round(m.idleS), stealS: round(m.stealS), foreignS: round(foreignCpuS(m, accounted)) },
    warmupRequests,
  };
}

export async function runLoad(args: readonly string[]): Promise<void> {
  const line = await runLoadOnce(parseLoadArgs(args));
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
