// What one load run measured, from either load generator: autocannon's result object (as the
// in-pod `load` workload prints it) or wrk's text output. Pure: text and objects in, figures out.
import { percentileSorted, round } from './stats.ts';

export type LoadTool = 'autocannon' | 'wrk';

export interface LatencyFigures {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Figures of one load run (one path, one round). */
export interface LoadFigures {
  tool: LoadTool;
  url: string;
  connections: number;
  pipelining: number;
  /** Measured wall time of the load, seconds. */
  durationS: number;
  /** Completed requests (any status). */
  requests: number;
  /** Completed requests per second over durationS. */
  rps: number;
  /** Milliseconds. */
  latencyMs: LatencyFigures;
  /** Failed requests: socket errors and timeouts, non-2xx answers, body mismatches. */
  errors: number;
  /** The errors by kind (`errors`, `timeouts`, `non2xx`, `mismatches`, `resets`; wrk: `connect`, `read`, `write`, `timeout`, `non2xx`). */
  errorDetail: Record<string, number>;
  /** Response bytes read per second (headers and body). */
  bytesPerS: number;
  /** CPU seconds the load generator itself used during the load (autocannon: process.cpuUsage). */
  clientCpuS?: number;
}

/** What the in-pod `load` workload prints: the figures of its measured run (the path's costs are sampled by the harness). */
export interface LoadLine extends LoadFigures {
  /** Requests of the unmeasured warm-up run before (same process, so autocannon's JIT is warm). */
  warmupRequests: number;
}

/** The line the `load` workload prints once warm with --await-signal, before it waits for SIGUSR2 to start the measured run. */
export const ARMED_LINE = 'load: armed, waiting for SIGUSR2';
/** ... and the line it prints (with --await-signal) the moment the measured run has ended, before it summarizes it. */
export const DONE_LINE = 'load: measured run done';

/** The part of autocannon's Result this reads (autocannon 8: lib/aggregateResult.js). */
export interface AutocannonResultLike {
  url: string | string[];
  connections: number;
  pipelining: number;
  duration: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  resets: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  requests: { total: number };
  throughput: { total: number };
}

/**
 * autocannon's result as figures. autocannon's own latency histogram has 1 ms resolution
 * (integers in an HDR histogram); when the workload recorded each 2xx response time itself
 * (`latenciesMs`, from the tracker's `response` events) the percentiles come from those instead.
 */
export function summarizeAutocannon(r: AutocannonResultLike, extra: { latenciesMs?: readonly number[]; clientCpuS?: number } = {}): LoadFigures {
  const durationS = r.duration > 0 ? r.duration : NaN;
  const lat = extra.latenciesMs;
  let latencyMs: LatencyFigures;
  if (lat && lat.length > 0) {
    const s = [...lat].sort((a, b) => a - b);
    latencyMs = { p50: percentileSorted(s, 50), p90: percentileSorted(s, 90), p99: percentileSorted(s, 99), max: s[s.length - 1]! };
  } else {
    latencyMs = { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max };
  }
  const out: LoadFigures = {
    tool: 'autocannon',
    url: Array.isArray(r.url) ? r.url.join(',') : r.url,
    connections: r.connections,
    pipelining: r.pipelining,
    durationS,
    requests: r.requests.total,
    rps: round(r.requests.total / durationS, 1),
    latencyMs: { p50: round(latencyMs.p50), p90: round(latencyMs.p90), p99: round(latencyMs.p99), max: round(latencyMs.max) },
    // autocannon counts a timeout in `errors` too
    errors: r.errors + r.non2xx + r.mismatches,
    errorDetail: { errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, mismatches: r.mismatches, resets: r.resets },
    bytesPerS: Math.round(r.throughput.total / durationS),
  };
  if (extra.clientCpuS !== undefined) out.clientCpuS = round(extra.clientCpuS);
  return out;
}

/** The one JSON line the `load` workload prints (the last line of its output that parses as figures), if there is one yet. */
export function findLoadLine(stdout: string): LoadLine | undefined {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as Partial<LoadLine>;
      if (v.tool === 'autocannon' && typeof v.rps === 'number' && typeof v.requests === 'number' && v.latencyMs && typeof v.warmupRequests === 'number') return v as LoadLine;
    } catch {
      // not the figures line (or one still being written)
    }
  }
  return undefined;
}

/** The figures line of the `load` workload's output; throws when there is none. */
export function parseLoadLine(stdout: string): LoadLine {
  const line = findLoadLine(stdout);
  if (!line) throw new Error(`load workload: no figures line in its output: ${JSON.stringify(stdout.slice(-400))}`);
  return line;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// wrk's format_binary divides by 1024 (src/units.c)
const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function timeMs(v: string, u: string): number {
  const f = TIME_UNITS[u];
  if (f === undefined) throw new Error(`wrk: unknown time unit ${u}`);
  return Number(v) * f;
}

/**
 * wrk's text output (with --latency) as figures: `Requests/sec`, `Transfer/sec`, the latency
 * distribution (50/75/90/99%), `N requests in Ts, X read`, socket errors and non-2xx answers.
 */
export function parseWrk(text: string, meta: { url: string; connections: number }): LoadFigures {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(text);
    if (!m) throw new Error(`wrk: no ${what} in its output: ${JSON.stringify(text.slice(-400))}`);
    return m;
  };
  const total = need(/^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read/m, "'N requests in T' line");
  const requests = Number(total[1]);
  const durationS = timeMs(total[2]!, total[3]!) / 1000;
  const rps = Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]);
  const tr = need(/^Transfer\/sec:\s+([\d.]+)([KMGT]?B)/m, 'Transfer/sec');
  const bytesPerS = Math.round(Number(tr[1]) * BYTE_UNITS[tr[2]!]!);
  const pct = (p: number): number => {
    const m = need(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm'), `${p}% latency (run wrk with --latency)`);
    return timeMs(m[1]!, m[2]!);
  };
  const maxM = need(/^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)/m, 'Latency thread stats');
  const errorDetail: Record<string, number> = { connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock) [errorDetail.connect, errorDetail.read, errorDetail.write, errorDetail.timeout] = sock.slice(1).map(Number) as [number, number, number, number];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx) errorDetail.non2xx = Number(non2xx[1]);
  // wrk counts a read error on a kept-alive connection the server closed; it is an error all the same
  const errors = Object.values(errorDetail).reduce((a, b) => a + b, 0);
  return {
    tool: 'wrk',
    url: meta.url,
    connections: meta.connections,
    pipelining: 1,
    durationS: round(durationS),
    requests,
    rps: round(rps, 1),
    latencyMs: { p50: round(pct(50)), p90: round(pct(90)), p99: round(pct(99)), max: round(timeMs(maxM[1]!, maxM[2]!)) },
    errors,
    errorDetail,
    bytesPerS,
  };
}
