// From measured runs to what a reader (and a budget) needs: per path and per round the figures,
// ratios against the baseline measured in the same round, the cost per 1000 requests of each
// process, then the median and the spread over the rounds, and the warnings that say what the
// figures mean (the load generator was the limit, the machine was shared, the rounds disagree).
// Pure: samples in, summary out.
import { BASELINE, type CatalogPath, type LoadPath } from './path.ts';
import { foreignCpus } from './machine.ts';
import type { LoadSettings, RoundsResult, RunSample } from './runner.ts';
import { median, round, spread } from './stats.ts';

/** One figure over the rounds. `spread` is (max − min) / median, a fraction. */
export interface Series {
  rounds: number[];
  median: number;
  spread: number;
}

export function series(xs: number[], digits = 3): Series {
  return { rounds: xs.map((x) => round(x, digits)), median: round(median(xs), digits), spread: round(spread(xs), 4) };
}

/**
 * Names of the per-path series:
 *   rps, p50_ms, p90_ms, p99_ms, errors, bytes_per_s           what the load generator saw
 *   rps_ratio, p99_added_ms                                     against the baseline of the same round
 *   cpu_per_1k_req, rss_mb                                      data plane: vCPU-seconds per 1000 requests (all
 *                                                               its processes), largest resident set of one process (MiB)
 *   app_cpu_per_1k_req, client_cpu_per_1k_req, client_cpu_util the app answering, the load generator (CPUs used)
 *   machine_cpu_util                                            busy + irq of the whole machine, CPUs
 *   foreign_cpus                                                CPUs used by processes outside the run
 */
export type MetricName =
  | 'rps'
  | 'p50_ms'
  | 'p90_ms'
  | 'p99_ms'
  | 'errors'
  | 'bytes_per_s'
  | 'rps_ratio'
  | 'p99_added_ms'
  | 'cpu_per_1k_req'
  | 'rss_mb'
  | 'app_cpu_per_1k_req'
  | 'client_cpu_per_1k_req'
  | 'client_cpu_util'
  | 'machine_cpu_util'
  | 'foreign_cpus';

export interface RoleSummary {
  role: string;
  kind: 'dataplane' | 'app';
  pod: string;
  container: string;
  comm: string;
  /** vCPU-seconds per 1000 requests (= vCPUs per 1000 req/s, the unit of Istio's published sidecar figures). */
  cpu_per_1k_req: Series;
  /** CPUs used on average during the run. */
  cpu_util: Series;
  rss_mb: Series;
}

export type Bottleneck = 'client' | 'dataplane' | 'app' | 'machine' | 'latency';

export interface PathSummary {
  id: string;
  letter: string;
  description: string;
  client: string;
  target: string;
  url: string;
  /** What verify() proved before the load. */
  verified: string;
  metrics: Record<MetricName, Series>;
  roles: RoleSummary[];
  /** What most likely capped the requests/s (medians): see bottleneckOf. */
  limitedBy: Bottleneck;
  /** Rounds during which processes outside the run used more than foreignCpuMax CPUs. */
  disturbedRounds: number[];
}

export interface CeilingSummary {
  /** wrk's requests/s and p99 on the baseline path, and autocannon/wrk per round. */
  wrk_rps: Series;
  wrk_p99_ms: Series;
  autocannon_rps: Series;
  ratio: Series;
  wrk_client_cpu_util: Series;
}

export interface SkippedPath {
  id: string;
  letter: string;
  description: string;
  profile: string;
  reason: string;
}

export interface LoadSummary {
  settings: LoadSettings;
  paths: PathSummary[];
  ceiling?: CeilingSummary;
  skipped: SkippedPath[];
  warnings: string[];
  /** Runs measured again because another job used the machine meanwhile. */
  discarded: number;
  /** Seconds spent waiting for other processes to calm down before runs. */
  waitedS: number;
  /** Seconds of the measuring (verify + rounds). */
  seconds: number;
}

/** A load generator or proxy this busy (CPUs) is saturated: Node's event loop and an Envoy worker each run on one core. */
export const SATURATED_CPU = 0.85;
/** autocannon below this fraction of wrk on the baseline means autocannon, not the path, caps the baseline. */
export const CEILING_RATIO = 0.9;
/** A spread of a ratio above this is reported (the repeatability target). */
export const SPREAD_MAX = 0.1;

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * The bottleneck from medians: the client at a core, else a data-plane process at a core, else
 * the app at a core, else a full machine; `latency`: nothing is at its limit, the closed loop of
 * `connections` requests is bound by the latency of the path's hops.
 */
export function bottleneckOf(p: Pick<PathSummary, 'metrics' | 'roles'>, cpus: number): Bottleneck {
  if (p.metrics.client_cpu_util.median >= SATURATED_CPU) return 'client';
  if (p.roles.some((r) => r.kind === 'dataplane' && r.cpu_util.median >= SATURATED_CPU)) return 'dataplane';
  if (p.roles.some((r) => r.kind === 'app' && r.cpu_util.median >= SATURATED_CPU)) return 'app';
  if (p.metrics.machine_cpu_util.median >= 0.9 * cpus) return 'machine';
  return 'latency';
}

function perRoundSeries(rows: RunSample[], f: (r: RunSample) => number, digits = 3): Series {
  return series(rows.map(f), digits);
}

export function summarize(paths: readonly LoadPath[], res: RoundsResult, settings: LoadSettings, skipped: SkippedPath[], urlOf: (p: LoadPath) => string): LoadSummary {
  const base = res.samples.filter((s) => s.path === BASELINE);
  const baseOf = (round: number): RunSample => {
    const b = base.find((s) => s.round === round);
    if (!b) throw new Error(`no baseline sample in round ${round}`);
    return b;
  };
  const cpus = res.samples[0]?.machine.cpus ?? 1;
  const out: PathSummary[] = paths.map((p) => {
    const rows = res.samples.filter((s) => s.path === p.id).sort((a, b) => a.round - b.round);
    const per1k = (cpuS: number, r: RunSample) => (r.figures.requests > 0 ? (cpuS / r.figures.requests) * 1000 : NaN);
    const dp = (r: RunSample) => r.costs.filter((c) => c.kind === 'dataplane');
    const metrics: Record<MetricName, Series> = {
      rps: perRoundSeries(rows, (r) => r.figures.rps, 1),
      p50_ms: perRoundSeries(rows, (r) => r.figures.latencyMs.p50),
      p90_ms: perRoundSeries(rows, (r) => r.figures.latencyMs.p90),
      p99_ms: perRoundSeries(rows, (r) => r.figures.latencyMs.p99),
      errors: perRoundSeries(rows, (r) => r.figures.errors, 0),
      bytes_per_s: perRoundSeries(rows, (r) => r.figures.bytesPerS, 0),
      rps_ratio: perRoundSeries(rows, (r) => r.figures.rps / baseOf(r.round).figures.rps, 4),
      p99_added_ms: perRoundSeries(rows, (r) => r.figures.latencyMs.p99 - baseOf(r.round).figures.latencyMs.p99),
      cpu_per_1k_req: perRoundSeries(rows, (r) => per1k(sum(dp(r).map((c) => c.cpuS)), r), 4),
      rss_mb: perRoundSeries(rows, (r) => Math.max(0, ...dp(r).map((c) => c.rssMiB)), 1),
      app_cpu_per_1k_req: perRoundSeries(rows, (r) => per1k(sum(r.costs.filter((c) => c.kind === 'app').map((c) => c.cpuS)), r), 4),
      client_cpu_per_1k_req: perRoundSeries(rows, (r) => per1k(r.figures.clientCpuS ?? NaN, r), 4),
      client_cpu_util: perRoundSeries(rows, (r) => (r.figures.clientCpuS ?? NaN) / r.figures.durationS, 3),
      machine_cpu_util: perRoundSeries(rows, (r) => (r.machine.busyS + r.machine.irqS) / r.machine.wallS, 3),
      foreign_cpus: perRoundSeries(rows, (r) => foreignCpus(r.machine), 3),
    };
    const roles: RoleSummary[] = p.procs.map((ref) => {
      const costs = rows.map((r) => ({ r, c: r.costs.find((c) => c.role === ref.role && c.pod === ref.pod)! }));
      return {
        ...ref,
        comm: costs[0]?.c.comm ?? '',
        cpu_per_1k_req: series(costs.map(({ r, c }) => per1k(c.cpuS, r)), 4),
        cpu_util: series(costs.map(({ r, c }) => c.cpuS / r.machine.wallS), 3),
        rss_mb: series(costs.map(({ c }) => c.rssMiB), 1),
      };
    });
    const summary = { metrics, roles };
    return {
      id: p.id,
      letter: p.letter,
      description: p.description,
      client: p.client,
      target: p.target,
      url: urlOf(p),
      verified: res.verified[p.id] ?? '',
      metrics,
      roles,
      limitedBy: bottleneckOf(summary, cpus),
      disturbedRounds: rows.filter((r) => foreignCpus(r.machine) > settings.foreignCpuMax).map((r) => r.round),
    };
  });
  let ceiling: CeilingSummary | undefined;
  if (res.wrk.length > 0) {
    const w = [...res.wrk].sort((a, b) => a.round - b.round);
    ceiling = {
      wrk_rps: perRoundSeries(w, (r) => r.figures.rps, 1),
      wrk_p99_ms: perRoundSeries(w, (r) => r.figures.latencyMs.p99),
      autocannon_rps: perRoundSeries(w, (r) => baseOf(r.round).figures.rps, 1),
      ratio: perRoundSeries(w, (r) => baseOf(r.round).figures.rps / r.figures.rps, 4),
      wrk_client_cpu_util: perRoundSeries(w, (r) => (r.figures.clientCpuS ?? NaN) / r.figures.durationS, 3),
    };
  }
  const summary: LoadSummary = { settings, paths: out, skipped, warnings: [], discarded: res.discarded.length, waitedS: round(res.waitedS, 1), seconds: round(res.seconds, 1) };
  if (ceiling) summary.ceiling = ceiling;
  summary.warnings = warningsOf(summary);
  return summary;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** What a reader must know before trusting the figures. */
export function warningsOf(s: Pick<LoadSummary, 'paths' | 'ceiling' | 'settings' | 'discarded'>): string[] {
  const w: string[] = [];
  const c = s.ceiling;
  if (c && c.ratio.median < CEILING_RATIO) {
    w.push(
      `load-generator ceiling: on the baseline autocannon reached ${c.autocannon_rps.median.toFixed(0)} req/s where wrk reached ${c.wrk_rps.median.toFixed(0)} (autocannon/wrk ${c.ratio.median.toFixed(2)}): ` +
        `the baseline is capped by the client, not the path, so the rps ratios of the other paths are optimistic`,
    );
  }
  for (const p of s.paths) {
    if (p.limitedBy === 'client') {
      w.push(`${p.id}: the client is saturated (autocannon used ${p.metrics.client_cpu_util.median.toFixed(2)} CPU): ${p.metrics.rps.median.toFixed(0)} req/s is the load generator's limit, not the data plane's`);
    }
    if (p.metrics.errors.rounds.some((e) => e > 0)) w.push(`${p.id}: ${p.metrics.errors.rounds.join('/')} failed requests per round`);
    if (p.id !== BASELINE && Number.isFinite(p.metrics.rps_ratio.spread) && p.metrics.rps_ratio.spread > SPREAD_MAX) {
      w.push(`${p.id}: the rps ratio spreads ${pct(p.metrics.rps_ratio.spread)} over its rounds (${p.metrics.rps_ratio.rounds.join(', ')}; target ≤ ${pct(SPREAD_MAX)}): the verdict uses the median`);
    }
    if (p.disturbedRounds.length > 0) {
      const used = p.disturbedRounds.map((r) => p.metrics.foreign_cpus.rounds[r - 1]!.toFixed(2));
      w.push(`${p.id}: other processes on the machine used ${used.join('/')} CPUs during round(s) ${p.disturbedRounds.join(', ')}: those figures are disturbed`);
    }
  }
  if (c && Number.isFinite(c.ratio.spread) && c.ratio.spread > SPREAD_MAX) {
    w.push(`autocannon/wrk spreads ${pct(c.ratio.spread)} over its rounds (${c.ratio.rounds.join(', ')}; target ≤ ${pct(SPREAD_MAX)})`);
  }
  if (s.discarded > 0) w.push(`${s.discarded} run(s) were measured again: other processes used more than ${s.settings.foreignCpuMax} CPUs meanwhile`);
  return w;
}

/** The catalog paths no started bed provides, reported as skipped. */
export function skippedPaths(catalog: readonly CatalogPath[], provided: ReadonlySet<string>, reason = 'no load bed for this profile yet'): SkippedPath[] {
  return catalog.filter((c) => !provided.has(c.id)).map((c) => ({ ...c, reason: `${c.profile}: ${reason}` }));
}
