// The fixed-rate figures as the reports show them: one line per (path, connection count, control plane) in
// Istio's units, beside Istio's published figures with the version each is for (reference/istio.md §4). Pure:
// results.json's `loadRuns` in, rows out; summary.md (report/markdown.ts) and report.html (report/html.ts) render them.
import type { LoadRunRecord, WithLoadRuns } from './report.ts';
import { ISTIO_PUBLISHED, ISTIO_PUBLISHED_SOURCE, RATE_SPREAD_MAX, type RatePathFigures } from './rate-summary.ts';

export { ISTIO_PUBLISHED, ISTIO_PUBLISHED_SOURCE, RATE_SPREAD_MAX };

export interface IstioUnitsRow {
  path: string;
  letter: string;
  /** `istiod 1.28.2`, `emulated`, `rendered:cf-tcp-router`, `none`. */
  controlPlane: string;
  connections: number;
  rate: number;
  payloadBytes: number;
  achievedRps: number;
  rounds: string;
  added: RatePathFigures['latencyAddedMs'];
  /** `client-sidecar 0.171 · server-sidecar 0.165` */
  vcpu: { role: string; value: number; spread: number; workers: number | null }[];
  rss: { role: string; value: number }[];
  p90Spread: number | null;
  /** The Istio figures this row is read beside (Istio paths only). */
  istio: string | null;
}

/** Every fixed-rate row of the run's throughput-budget runs. */
export function istioUnitsRows(file: WithLoadRuns): IstioUnitsRow[] {
  return (file.loadRuns ?? []).flatMap((run: LoadRunRecord) =>
    run.rows.map((r) => ({
      path: r.path,
      letter: r.letter,
      controlPlane: `${r.controlPlane}${r.istioVersion ? ` ${r.istioVersion}` : ''}`,
      connections: r.connections,
      rate: r.rate,
      payloadBytes: r.payloadBytes,
      achievedRps: r.achievedRps,
      rounds: `${r.validRounds}/${r.rounds.length}`,
      added: r.latencyAddedMs,
      vcpu: Object.entries(r.vcpuPer1kRps).map(([role, value]) => ({ role, value, spread: r.spread.vcpuPer1kRps[role] ?? NaN, workers: r.processes.find((p) => p.role === role)?.workers ?? null })),
      rss: Object.entries(r.rssMiB).map(([role, value]) => ({ role, value })),
      p90Spread: r.spread.latencyAddedMs?.p90 ?? null,
      istio: r.path === 'istio-mtls' ? 'Istio 1.20: +0.228 ms p90, +0.298 ms p99; Istio 1.24: ~0.20 vCPU, ~60 MB per sidecar' : r.path.startsWith('istio-') ? 'Istio publishes mTLS figures only' : null,
    })),
  );
}
