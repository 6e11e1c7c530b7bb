// From fixed-rate runs to figures in Istio's units, per path and connection count: the achieved rate, latency
// p50/p90/p99 and what the path adds over the baseline measured in the same round at the same rate, connections
// and client; vCPU per 1000 req/s (= vCPU-seconds per 1000 requests) and RSS of each data-plane process (per
// sidecar, per router); medians over the rounds that held the rate, and their spread. Pure: samples in, figures out.
import { BASELINE, type LoadPath } from './path.ts';
import type { FixedRateResult, FixedRateSettings, FortioClient, RateSample } from './fortio.ts';
import { clientOf } from './fortio.ts';
import { foreignCpus, type OtherProcess } from './machine.ts';
import { median, round, spread } from './stats.ts';

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface RateRound {
  round: number;
  achievedRps: number;
  latencyMs: Percentiles;
  /** Over the baseline of the same round, connections and client; null on the baseline itself. */
  latencyAddedMs: Percentiles | null;
  /** role → vCPU per 1000 req/s, every sampled process (data plane and app). */
  vcpuPer1kRps: Record<string, number>;
  rssMiB: Record<string, number>;
  errors: number;
  /** CPUs used by processes outside the run, and the busiest of them. */
  foreignCpus: number;
  others: OtherProcess[];
  disturbed: boolean;
  /** Why the round does not count (the generator did not hold the rate). */
  void?: string;
}

export interface RateProcess {
  role: string;
  kind: 'dataplane' | 'app';
  pod: string;
  container: string;
  comm: string;
  /** Envoy's --concurrency (Istio's published figures are for 2 workers); null for HAProxy and apps. */
  workers: number | null;
}

/** One path at one connection count: what reports/<run>/load.json and reports/bench.json carry. */
export interface RatePathFigures {
  path: string;
  letter: string;
  description: string;
  /** Where the path's config came from: `istiod`, `emulated`, `rendered:cf-tcp-router`, `rendered:c2c`, `none`. */
  controlPlane: string;
  /** Where the path's pods ran (`netns`, `docker`): a figure is the data plane's cost on that substrate. */
  substrate: string;
  istioVersion?: string;
  generator: string;
  rate: number;
  connections: number;
  payloadBytes: number;
  /** Medians over the rounds that held the rate. */
  achievedRps: number;
  latencyMs: Percentiles;
  latencyAddedMs: Percentiles | null;
  /** Data-plane processes only, role → median. */
  vcpuPer1kRps: Record<string, number>;
  rssMiB: Record<string, number>;
  /** The whole data plane of the path (every data-plane process), vCPU per 1000 req/s. */
  dataplaneVcpuPer1kRps: number;
  /** The app answering, role → median (not the mesh's cost). */
  appVcpuPer1kRps: Record<string, number>;
  processes: RateProcess[];
  errors: number;
  rounds: RateRound[];
  /** Rounds that held the rate (the medians' inputs). */
  validRounds: number;
  voidRounds: number[];
  disturbedRounds: number[];
  /** (max − min) / median over the valid rounds, a fraction. */
  spread: {
    achievedRps: number;
    latencyAddedMs: Percentiles | null;
    vcpuPer1kRps: Record<string, number>;
    dataplaneVcpuPer1kRps: number;
    rssMiB: Record<string, number>;
  };
}

export interface RateSummary {
  settings: FixedRateSettings;
  fortio: FixedRateResult['fortio'];
  rows: RatePathFigures[];
  warnings: string[];
  discarded: number;
  waitedS: number;
  seconds: number;
}

/** The repeatability target of the issue: spread ≤ 10% on vCPU per 1000 req/s and on p90 added. */
export const RATE_SPREAD_MAX = 0.1;

const finite = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x));
const med = (xs: number[], d: number): number => round(median(finite(xs)), d);
const spr = (xs: number[]): number => round(spread(finite(xs)), 4);
const sub = (a: Percentiles, b: Percentiles): Percentiles => ({ p50: round(a.p50 - b.p50, 4), p90: round(a.p90 - b.p90, 4), p99: round(a.p99 - b.p99, 4) });
const pick = (l: { p50: number; p90: number; p99: number }): Percentiles => ({ p50: l.p50, p90: l.p90, p99: l.p99 });

/** Where a path's config came from (the row names it). */
export type PathOrigin = Pick<LoadPath, 'id'> & { controlPlane?: string; istioVersion?: string; host?: Pick<LoadPath['host'], 'substrate'> };

export function summarizeRate(paths: readonly (Pick<LoadPath, 'id' | 'letter' | 'description' | 'procs' | 'proxy'> & PathOrigin)[], res: FixedRateResult, s: FixedRateSettings): RateSummary {
  const baseOf = (round: number, connections: number, client: FortioClient): RateSample | undefined =>
    res.samples.find((x) => x.path === BASELINE && x.round === round && x.connections === connections && x.client === client);
  const rows: RatePathFigures[] = [];
  for (const p of paths) {
    const client = clientOf(p);
    for (const c of s.connections) {
      const samples = res.samples.filter((x) => x.path === p.id && x.connections === c && x.client === client).sort((a, b) => a.round - b.round);
      const rounds: RateRound[] = samples.map((x) => {
        const per1k = (cpuS: number) => (x.figures.requests > 0 ? round((cpuS / x.figures.requests) * 1000, 5) : NaN);
        const b = p.id === BASELINE ? undefined : baseOf(x.round, c, client);
        const r: RateRound = {
          round: x.round,
          achievedRps: x.figures.achievedRps,
          latencyMs: pick(x.figures.latencyMs),
          latencyAddedMs: p.id === BASELINE ? null : b && !b.void ? sub(x.figures.latencyMs, b.figures.latencyMs) : { p50: NaN, p90: NaN, p99: NaN },
          vcpuPer1kRps: Object.fromEntries(x.costs.map((k) => [k.role, per1k(k.cpuS)])),
          rssMiB: Object.fromEntries(x.costs.map((k) => [k.role, k.rssMiB])),
          errors: x.figures.errors,
          foreignCpus: round(foreignCpus(x.machine), 3),
          others: x.others,
          disturbed: foreignCpus(x.machine) > s.foreignCpuMax,
        };
        if (x.void) r.void = x.void;
        return r;
      });
      const valid = rounds.filter((r) => !r.void);
      const dp = p.procs.filter((r) => r.kind === 'dataplane');
      const app = p.procs.filter((r) => r.kind === 'app');
      const perRole = (roles: typeof p.procs, f: (r: RateRound, role: string) => number, d: number) => Object.fromEntries(roles.map((ref) => [ref.role, med(valid.map((r) => f(r, ref.role)), d)]));
      const sprRole = (roles: typeof p.procs, f: (r: RateRound, role: string) => number) => Object.fromEntries(roles.map((ref) => [ref.role, spr(valid.map((r) => f(r, ref.role)))]));
      const dpSum = (r: RateRound) => dp.reduce((n, ref) => n + (r.vcpuPer1kRps[ref.role] ?? NaN), 0);
      const added = (k: keyof Percentiles) => valid.map((r) => r.latencyAddedMs?.[k] ?? NaN);
      const first = samples[0];
      rows.push({
        path: p.id,
        letter: p.letter,
        description: p.description,
        controlPlane: p.controlPlane ?? 'none',
        substrate: p.host?.substrate ?? 'netns',
        ...(p.istioVersion ? { istioVersion: p.istioVersion } : {}),
        generator: `fortio ${res.fortio.moduleVersion}${client === 'std' ? ` -stdclient via HTTP_PROXY=http://${p.proxy}` : ''}`,
        rate: s.rate,
        connections: c,
        payloadBytes: s.payloadBytes,
        achievedRps: med(valid.map((r) => r.achievedRps), 1),
        latencyMs: { p50: med(valid.map((r) => r.latencyMs.p50), 4), p90: med(valid.map((r) => r.latencyMs.p90), 4), p99: med(valid.map((r) => r.latencyMs.p99), 4) },
        latencyAddedMs: p.id === BASELINE ? null : { p50: med(added('p50'), 4), p90: med(added('p90'), 4), p99: med(added('p99'), 4) },
        vcpuPer1kRps: perRole(dp, (r, role) => r.vcpuPer1kRps[role] ?? NaN, 4),
        rssMiB: perRole(dp, (r, role) => r.rssMiB[role] ?? NaN, 1),
        dataplaneVcpuPer1kRps: dp.length ? med(valid.map(dpSum), 4) : 0,
        appVcpuPer1kRps: perRole(app, (r, role) => r.vcpuPer1kRps[role] ?? NaN, 4),
        processes: p.procs.map((ref) => {
          const cost = first?.costs.find((k) => k.role === ref.role && k.pod === ref.pod);
          return { role: ref.role, kind: ref.kind, pod: ref.pod, container: ref.container, comm: cost?.comm ?? '', workers: cost?.workers ?? null };
        }),
        errors: valid.reduce((n, r) => n + r.errors, 0),
        rounds,
        validRounds: valid.length,
        voidRounds: rounds.filter((r) => r.void).map((r) => r.round),
        disturbedRounds: rounds.filter((r) => r.disturbed).map((r) => r.round),
        spread: {
          achievedRps: spr(valid.map((r) => r.achievedRps)),
          latencyAddedMs: p.id === BASELINE ? null : { p50: spr(added('p50')), p90: spr(added('p90')), p99: spr(added('p99')) },
          vcpuPer1kRps: sprRole(dp, (r, role) => r.vcpuPer1kRps[role] ?? NaN),
          dataplaneVcpuPer1kRps: dp.length ? spr(valid.map(dpSum)) : 0,
          rssMiB: sprRole(dp, (r, role) => r.rssMiB[role] ?? NaN),
        },
      });
    }
  }
  const summary: RateSummary = { settings: s, fortio: res.fortio, rows, warnings: [], discarded: res.discarded.length, waitedS: res.waitedS, seconds: res.seconds };
  summary.warnings = rateWarnings(summary);
  return summary;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');

/** What a reader must know: void and disturbed rounds, errors, spreads above the target (with ≥ 2 valid rounds). */
export function rateWarnings(s: Pick<RateSummary, 'rows' | 'discarded' | 'settings'>): string[] {
  const w: string[] = [];
  for (const r of s.rows) {
    const at = `${r.path} (c=${r.connections})`;
    if (r.validRounds === 0) w.push(`${at}: no round held ${r.rate} req/s: no figures (${r.rounds.map((x) => x.void).filter(Boolean)[0] ?? 'no rounds'})`);
    else if (r.voidRounds.length) w.push(`${at}: round(s) ${r.voidRounds.join(', ')} void: ${r.rounds.find((x) => x.void)!.void}`);
    if (r.errors > 0) w.push(`${at}: ${r.errors} calls did not answer 2xx`);
    if (r.disturbedRounds.length) w.push(`${at}: other processes used ${r.disturbedRounds.map((n) => r.rounds.find((x) => x.round === n)!.foreignCpus.toFixed(2)).join('/')} CPUs during round(s) ${r.disturbedRounds.join(', ')}`);
    if (r.validRounds >= 2) {
      for (const [role, x] of Object.entries(r.spread.vcpuPer1kRps)) if (!(x <= RATE_SPREAD_MAX)) w.push(`${at}: ${role} vCPU per 1000 req/s spreads ${pct(x)} over ${r.validRounds} rounds (target ≤ ${pct(RATE_SPREAD_MAX)})`);
      const p90 = r.spread.latencyAddedMs?.p90;
      if (p90 !== undefined && !(p90 <= RATE_SPREAD_MAX)) w.push(`${at}: p90 added spreads ${pct(p90)} over ${r.validRounds} rounds (target ≤ ${pct(RATE_SPREAD_MAX)})`);
    }
  }
  if (s.discarded > 0) w.push(`${s.discarded} fixed-rate run(s) were measured again (another job busy, or the rate not held)`);
  return w;
}

/**
 * Istio's published figures, the unit the table is read beside (reference/istio.md §4, istio.io "Performance and
 * Scalability" per release). Each says which Istio version and conditions it is for.
 */
export const ISTIO_PUBLISHED = [
  { istioVersion: '1.24', what: 'vCPU per sidecar at 1000 req/s', value: 0.2, unit: 'vCPU', conditions: '1 KB, http/1.1, 2 workers, mTLS, telemetry; bare metal' },
  { istioVersion: '1.24', what: 'memory per sidecar', value: 60, unit: 'MB', conditions: '1000 req/s, 1 KB, 2 workers' },
  { istioVersion: '1.20', what: 'p90 added (client + server sidecar)', value: 0.228, unit: 'ms', conditions: 'http/1.1, 1 kB, 1000 rps, 2–64 connections, 2 workers, mTLS' },
  { istioVersion: '1.20', what: 'p99 added (client + server sidecar)', value: 0.298, unit: 'ms', conditions: 'http/1.1, 1 kB, 1000 rps, 2–64 connections, 2 workers, mTLS' },
] as const;

export const ISTIO_PUBLISHED_SOURCE = 'istio.io Performance and Scalability (reference/istio.md §4); 1.24 publishes latency only as charts';
