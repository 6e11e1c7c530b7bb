// Istio's way of measuring a data plane: fortio (istio/tools perf/benchmark: `fortio load -c <conn> -qps <qps>
// -t <duration>s -r <r> -httpbufferkb=128`, configs `qps: [1000]`, `conn: [2,4,8,16,32,64]`, `jitter: true`) at a
// fixed rate, inside the path's client pod (cluster.exec, like wrk), its `-json -` result read for the percentiles
// and ActualQPS; the path's containers are sampled over the run through the substrate (watch.ts ContainerWatch). A path through a
// plain HTTP proxy (C2C's egress proxy) runs fortio's Go net/http client (`-stdclient`, which honours HTTP_PROXY
// as an app's Go client does), and its added latency is taken against the baseline measured with the same client.
//
// runFixedRate: every path per round and connection count (a b c d e a b c d e …, so a drift of the machine lands
// on every path alike), on the one step scheduler (steps.ts): a disturbed run (other processes busy) or a void one
// (the generator fell below minRateRatio × the rate) measured again while the bounded retries and the deadline allow.
import type { FortioProvenance } from '../cli/provision-fortio.ts';
import { envoyWorkers, foreignCpuS, foreignCpus, machineBetween, othersBetween, type MachineReading, type OtherProcess } from './machine.ts';
import type { LoadPath } from './path.ts';
import type { ProcCost } from './runner.ts';
import { round } from './stats.ts';
import { runSteps, type Step } from './steps.ts';
import { watched } from './watch.ts';

export interface FixedRateSettings {
  /** Requests per second over all connections (fortio -qps). */
  rate: number;
  /** fortio -c, each measured in every round (Istio's list: 2, 4, 8, 16, 32, 64). */
  connections: number[];
  /** Response body bytes (GET /bytes/<n>; Istio's echo?size=1024). */
  payloadBytes: number;
  /** Seconds of each measured run (fortio -t). */
  durationS: number;
  rounds: number;
  /** Seconds of one unmeasured run per path before round 1 (servers' JIT, pools, TLS sessions). */
  prewarmS: number;
  /** fortio -r: the histogram's lowest bucket, seconds (istio/tools runner: 0.00005). */
  resolutionS: number;
  /** fortio -jitter (istio/tools configs: `jitter: true`). */
  jitter: boolean;
  /** A run whose ActualQPS is below this fraction of the rate is void. */
  minRateRatio: number;
  deadlineS: number;
  /** A run during which processes outside the run used more CPUs than this is measured again. */
  foreignCpuMax: number;
  quietWaitS: number;
  /** Runs measured again (disturbed or void), at most, in the whole run. */
  retries: number;
}

export const DEFAULT_FIXED_RATE: FixedRateSettings = {
  rate: 1000,
  connections: [4],
  payloadBytes: 1024,
  durationS: 5,
  rounds: 5,
  prewarmS: 2,
  resolutionS: 0.00005,
  jitter: true,
  minRateRatio: 0.95,
  deadlineS: 300,
  foreignCpuMax: 0.3,
  quietWaitS: 3,
  retries: 6,
};

/** fortio's client: the fast HTTP/1.1 client (Istio's), or Go's net/http one through the path's proxy. */
export type FortioClient = 'fast' | 'std';

/** The part of fortio's `-json` result read here (periodic/periodic.go RunnerResults, stats/stats.go, fhttp/httprunner.go). */
export interface FortioJson {
  RunType?: string;
  Version?: string;
  URL?: string;
  RequestedQPS: string | number;
  ActualQPS: number;
  /** Nanoseconds. */
  ActualDuration: number;
  NumThreads: number;
  DurationHistogram: { Count: number; Avg: number; Max?: number; Percentiles?: { Percentile: number; Value: number }[] };
  ErrorsDurationHistogram?: { Count: number };
  RetCodes?: Record<string, number>;
  Sizes?: { Avg?: number };
}

/** One fortio run as figures, milliseconds. */
export interface FortioFigures {
  tool: 'fortio';
  version: string;
  client: FortioClient;
  url: string;
  connections: number;
  requestedRps: number;
  achievedRps: number;
  durationS: number;
  /** Completed calls (the histogram's count). */
  requests: number;
  latencyMs: { p50: number; p90: number; p99: number; avg: number; max: number };
  /** Calls that did not answer 2xx (RetCodes; -1 is a socket error). */
  errors: number;
  retCodes: Record<string, number>;
  /** Average response size, bytes (headers and body). */
  responseBytes: number;
}

/** fortio's `-json -` output (the first `{` to the last `}` of stdout) as figures; throws naming what is missing. */
export function parseFortio(stdout: string, client: FortioClient = 'fast'): FortioFigures {
  const a = stdout.indexOf('{');
  const b = stdout.lastIndexOf('}');
  if (a < 0 || b < a) throw new Error(`fortio: no JSON result in its output: ${JSON.stringify(stdout.slice(-300))}`);
  let j: FortioJson;
  try {
    j = JSON.parse(stdout.slice(a, b + 1)) as FortioJson;
  } catch (e) {
    throw new Error(`fortio: its JSON result does not parse (${(e as Error).message})`, { cause: e });
  }
  const h = j.DurationHistogram;
  if (typeof j.ActualQPS !== 'number' || !h || typeof h.Count !== 'number') throw new Error(`fortio: no ActualQPS or DurationHistogram in its result`);
  const pct = (p: number): number => {
    const x = h.Percentiles?.find((q) => q.Percentile === p);
    if (!x) throw new Error(`fortio: no p${p} in DurationHistogram.Percentiles (run it with -p 50,90,99)`);
    return x.Value * 1000;
  };
  const retCodes = j.RetCodes ?? {};
  const ok = Object.entries(retCodes).filter(([code]) => /^2\d\d$/.test(code)).reduce((n, [, c]) => n + c, 0);
  return {
    tool: 'fortio',
    version: j.Version ?? '',
    client,
    url: j.URL ?? '',
    connections: j.NumThreads,
    requestedRps: Number(j.RequestedQPS),
    achievedRps: round(j.ActualQPS, 1),
    durationS: round(j.ActualDuration / 1e9),
    requests: h.Count,
    latencyMs: { p50: round(pct(50), 4), p90: round(pct(90), 4), p99: round(pct(99), 4), avg: round(h.Avg * 1000, 4), max: round((h.Max ?? NaN) * 1000, 4) },
    errors: h.Count - ok,
    retCodes,
    responseBytes: Math.round(j.Sizes?.Avg ?? 0),
  };
}

/** Why a run does not count: the generator fell below minRateRatio × the rate. Undefined when it held the rate. */
export function rateNotHeld(f: Pick<FortioFigures, 'achievedRps' | 'requestedRps'>, minRateRatio: number): string | undefined {
  if (f.achievedRps >= minRateRatio * f.requestedRps) return undefined;
  return `fortio reached ${f.achievedRps.toFixed(0)} of ${f.requestedRps} req/s (< ${minRateRatio} × the rate): the generator could not hold the rate`;
}

/** fortio's command line (after the binary) for one run. */
export function fortioArgs(s: Pick<FixedRateSettings, 'rate' | 'resolutionS' | 'jitter'>, url: string, connections: number, durationS: number, client: FortioClient): string[] {
  return [
    'load',
    '-qps', String(s.rate),
    '-c', String(connections),
    '-t', `${durationS}s`,
    '-r', String(s.resolutionS),
    '-p', '50,90,99',
    '-httpbufferkb', '128',
    '-timeout', '5s',
    ...(s.jitter ? ['-jitter'] : []),
    ...(client === 'std' ? ['-stdclient'] : []),
    '-loglevel', 'Warning',
    '-json', '-',
    url,
  ];
}

/** One measured fortio run. `void` says why it does not count; `others` who else used the CPU meanwhile. */
export interface RateSample {
  path: string;
  round: number;
  connections: number;
  client: FortioClient;
  figures: FortioFigures;
  costs: (ProcCost & { workers: number | null })[];
  machine: MachineReading;
  others: OtherProcess[];
  void?: string;
}

export const rateUrl = (p: LoadPath, s: Pick<FixedRateSettings, 'payloadBytes'>): string => `${p.target}/bytes/${s.payloadBytes}`;

/** The client a path's runs use: Go's net/http client through the path's proxy, else fortio's fast client. */
export const clientOf = (p: Pick<LoadPath, 'proxy'>): FortioClient => (p.proxy === undefined ? 'fast' : 'std');

/**
 * One fortio run from the path's client pod, the path's containers watched over it (on netns fortio is exec'd by
 * `ip netns exec`: once reaped its CPU is among the harness's reaped children). `client` std without a proxy: the
 * same client straight to the target (the baseline a proxied path is compared with).
 */
export async function runFortio(fortio: Pick<FortioProvenance, 'path'>, path: LoadPath, s: FixedRateSettings, connections: number, durationS: number, client: FortioClient = clientOf(path)): Promise<Omit<RateSample, 'round'>> {
  const env = path.proxy !== undefined ? ['env', `HTTP_PROXY=http://${path.proxy}`, 'NO_PROXY='] : [];
  const argv = [...env, fortio.path, ...fortioArgs(s, rateUrl(path, s), connections, durationS, client)];
  // the window is fortio's exec: its start and exit (an idle path) are inside it, beside the -t seconds of load
  const { value: r, reading } = await watched(path, () => path.host.exec(path.client, argv, { timeoutMs: (durationS + 20) * 1000 }));
  if (r.code !== 0) throw new Error(`path ${path.id}: fortio in ${path.client} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-4).join(' | ')}`);
  const figures = parseFortio(r.stdout, client);
  const [m0, m1] = reading.machine;
  const clientCpuS = m1.reapedS - m0.reapedS;
  const accounted = reading.procs.reduce((n, p) => n + p.cpuS, 0) + clientCpuS + (m1.harnessS - m0.harnessS);
  const costs = path.procs.map((ref, i) => {
    const x = reading.procs[i]!;
    return { ...ref, ...x, cpuS: round(x.cpuS), rssMiB: round(x.rssMiB, 1), workers: ref.kind === 'dataplane' ? envoyWorkers(reading.commands[i]!) : null };
  });
  const m = machineBetween(m0, m1);
  const machine: MachineReading = { cpus: m.cpus, wallS: round(m.wallS), busyS: round(m.busyS), irqS: round(m.irqS), idleS: round(m.idleS), stealS: round(m.stealS), foreignS: round(foreignCpuS(m, accounted)) };
  // the run's own pods are not among the others; fortio itself is gone by the second reading (reaped)
  return { path: path.id, connections, client, figures, costs, machine, others: othersBetween(m0, m1) };
}

export interface FixedRateResult {
  fortio: Pick<FortioProvenance, 'path' | 'module' | 'moduleVersion' | 'sha256'>;
  samples: RateSample[];
  /** Runs measured again: disturbed by other processes, or void (the rate not held). */
  discarded: (RateSample & { why: string })[];
  waitedS: number;
  seconds: number;
}

/** The rounds, on paths already verified (baseline first). Bounded: rounds × connections × paths runs, the retries, the deadline. */
export async function runFixedRate(fortio: FixedRateResult['fortio'], paths: LoadPath[], s: FixedRateSettings, log: (line: string) => void = () => undefined): Promise<FixedRateResult> {
  const baseline = paths[0]!;
  // a proxied path compares with the baseline measured by the same client
  const stdBaseline = paths.some((p) => clientOf(p) === 'std') && clientOf(baseline) === 'fast';
  const samples: RateSample[] = [];
  const steps: Step<RateSample>[] = [];
  const at = (round: number, p: LoadPath, c: number, durationS: number, client?: FortioClient) => async (): Promise<RateSample> => {
    const r: RateSample = { round, ...(await runFortio(fortio, p, s, c, durationS, client)) };
    const notHeld = rateNotHeld(r.figures, s.minRateRatio);
    if (notHeld && round > 0) r.void = notHeld;
    return r;
  };
  const keep = (r: RateSample): number => samples.push(r);
  if (s.prewarmS > 0) {
    for (const p of paths) steps.push({ what: `fixed-rate pre-warm ${p.id}`, round: 0, needS: s.prewarmS + 0.5, run: at(0, p, s.connections[0]!, s.prewarmS) });
  }
  for (let round = 1; round <= s.rounds; round++) {
    for (const c of s.connections) {
      for (const p of paths) {
        steps.push({ what: `round ${round} c=${c} ${p.id}`, round, needS: s.durationS + 0.6, run: at(round, p, c, s.durationS), keep });
        if (p === baseline && stdBaseline) steps.push({ what: `round ${round} c=${c} ${p.id} (net/http client)`, round, needS: s.durationS + 0.6, run: at(round, p, c, s.durationS, 'std'), keep });
      }
    }
  }
  const res = await runSteps(steps, s, baseline.host, {
    name: 'fixed-rate load',
    fewer: 'fewer paths, rounds, connection counts or seconds per run',
    line: ({ figures: f }) => `${f.achievedRps.toFixed(0)}/${f.requestedRps} req/s, p50 ${f.latencyMs.p50.toFixed(3)} p90 ${f.latencyMs.p90.toFixed(3)} p99 ${f.latencyMs.p99.toFixed(3)} ms, ${f.errors} errors`,
    reject: (r) => {
      const foreign = foreignCpus(r.machine);
      const others = r.others.map((o) => `${o.comm}[${o.pid}] ${o.cpuS.toFixed(2)} s`).join(', ');
      return r.void ?? (foreign > s.foreignCpuMax ? `other processes used ${foreign.toFixed(2)} CPUs meanwhile (${others || 'short-lived ones'})` : undefined);
    },
  }, log);
  return { fortio, samples, discarded: res.discarded.map(({ r, why }) => ({ ...r, why })), waitedS: round(res.waitedS, 1), seconds: round(res.seconds, 1) };
}
