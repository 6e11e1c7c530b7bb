// Where a budget run's results go: results.json gets `budgets` (BudgetResult[]), `skipped` (paths no profile
// provides yet) and `loadRuns` (the fixed-rate figures in Istio's units, for summary.md and report.html), in the
// bed's run directory and in the enclosing `meshproof run`'s (report/results.ts); load.json every figure of every
// round; rate-<path>.svg (fixed rate) and closed-loop-<path>.svg per path. renderRateTable/renderTable are the
// console's view.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BudgetResult, ResultsFile, SkippedTest } from '../report/meta.ts';
import { appendBudgets, RESULTS_DIR_ENV } from '../report/results.ts';
import { patchResultsFile } from '../report/render.ts';
import { renderPathChart, renderRateChart } from './chart.ts';
import type { FixedRateResult } from './fortio.ts';
import { BASELINE } from './path.ts';
import { ISTIO_PUBLISHED, ISTIO_PUBLISHED_SOURCE, type RatePathFigures, type RateSummary } from './rate-summary.ts';
import type { RoundsResult } from './runner.ts';
import type { LoadSummary, SkippedPath } from './summary.ts';

export const SUITE = 'throughput-budget';

/** What one budget run adds to results.json under `loadRuns`. */
export interface LoadRunRecord {
  suite: typeof SUITE;
  /** The bed's run directory, where load.json and the charts are. */
  runDir: string;
  rate: number;
  payloadBytes: number;
  connections: number[];
  rounds: number;
  durationS: number;
  fortio: RateSummary['fortio'];
  rows: RatePathFigures[];
  warnings: string[];
}

/** results.json as the load parts read it: the contract's file plus `loadRuns`. */
export interface WithLoadRuns {
  loadRuns?: LoadRunRecord[];
}

/** The `skipped` entries of results.json for paths no bed provides. */
export function skippedTests(skipped: readonly SkippedPath[]): SkippedTest[] {
  return skipped.map((s) => ({ profile: s.profile, suite: SUITE, scenario: `(${s.letter}) ${s.id}`, reason: s.reason }));
}

export interface LoadReportFiles {
  results: string;
  load: string;
  charts: string[];
}

export function loadRunRecord(runDir: string, rate: RateSummary): LoadRunRecord {
  const s = rate.settings;
  return { suite: SUITE, runDir, rate: s.rate, payloadBytes: s.payloadBytes, connections: s.connections, rounds: s.rounds, durationS: s.durationS, fortio: rate.fortio, rows: rate.rows, warnings: rate.warnings };
}

/** Writes results.json (budgets, skipped, loadRuns), load.json and the charts. */
export function writeLoadReport(
  runDir: string,
  r: { rate: RateSummary; closed?: LoadSummary; budgets: BudgetResult[]; skipped: SkippedPath[]; verified: Record<string, string>; raw: { fixedRate: FixedRateResult; closedLoop?: RoundsResult } },
): LoadReportFiles {
  mkdirSync(runDir, { recursive: true });
  appendBudgets(runDir, r.budgets, skippedTests(r.skipped));
  const record = loadRunRecord(runDir, r.rate);
  // the same directories appendBudgets writes: the bed's run, and the enclosing `meshproof run`'s
  const outer = process.env[RESULTS_DIR_ENV];
  for (const dir of [...new Set([resolve(runDir), ...(outer ? [resolve(outer)] : [])])]) {
    // `loadRuns` is this suite's key beside the contract's (patchResultsFile keeps every key of the file)
    const fields: WithLoadRuns = { loadRuns: [...(readLoadRuns(dir) ?? []), record] };
    patchResultsFile(dir, fields as unknown as Partial<ResultsFile>);
  }
  const load = join(runDir, 'load.json');
  writeFileSync(
    load,
    JSON.stringify({ kind: 'meshproof-load', schemaVersion: 2, verified: r.verified, fixedRate: { ...record, settings: r.rate.settings, discarded: r.rate.discarded, waitedS: r.rate.waitedS, seconds: r.rate.seconds }, closedLoop: r.closed ?? null, budgets: r.budgets, raw: r.raw }, null, 2),
  );
  const charts: string[] = [];
  for (const id of [...new Set(r.rate.rows.map((x) => x.path))]) {
    const file = join(runDir, `rate-${id}.svg`);
    writeFileSync(file, renderRateChart(r.rate.rows.filter((x) => x.path === id), r.budgets));
    charts.push(file);
  }
  const baseline = r.closed?.paths.find((p) => p.id === BASELINE);
  for (const p of r.closed?.paths ?? []) {
    const file = join(runDir, `closed-loop-${p.id}.svg`);
    writeFileSync(file, renderPathChart(p, p.id === BASELINE ? undefined : baseline, r.budgets));
    charts.push(file);
  }
  return { results: join(runDir, 'results.json'), load, charts };
}

function readLoadRuns(dir: string): LoadRunRecord[] | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as WithLoadRuns).loadRuns;
  } catch {
    return undefined; // none yet
  }
}

const f = (x: number | undefined | null, d = 2): string => (x !== undefined && x !== null && Number.isFinite(x) ? x.toFixed(d) : '–');
const sp = (x: number | undefined | null): string => (x !== undefined && x !== null && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');

function columns(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The fixed-rate table (Istio's units; spread of the rounds in brackets), each data-plane process, Istio's figures. */
export function renderRateTable(rate: Pick<RateSummary, 'rows' | 'warnings'>, budgets: readonly BudgetResult[] = []): string {
  const head = ['path', 'cp', 'c', 'rounds', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', '+p50 ms', '+p90 ms', '+p99 ms', 'data plane vCPU/1k rps', 'err'];
  const rows = rate.rows.map((r) => [
    `(${r.letter}) ${r.path}`,
    `${r.controlPlane}${r.istioVersion ? ` ${r.istioVersion}` : ''}`,
    String(r.connections),
    `${r.validRounds}/${r.rounds.length}`,
    `${f(r.achievedRps, 0)}/${r.rate}`,
    f(r.latencyMs.p50, 3),
    f(r.latencyMs.p90, 3),
    f(r.latencyMs.p99, 3),
    r.latencyAddedMs ? f(r.latencyAddedMs.p50, 3) : '',
    r.latencyAddedMs ? `${f(r.latencyAddedMs.p90, 3)} [${sp(r.spread.latencyAddedMs?.p90)}]` : '',
    r.latencyAddedMs ? f(r.latencyAddedMs.p99, 3) : '',
    Object.keys(r.vcpuPer1kRps).length ? `${f(r.dataplaneVcpuPer1kRps, 3)} [${sp(r.spread.dataplaneVcpuPer1kRps)}]` : '',
    String(r.errors),
  ]);
  const out = columns(head, rows);
  for (const r of rate.rows) {
    for (const p of r.processes.filter((x) => x.kind === 'dataplane')) {
      out.push(`    ${r.path} c=${r.connections} ${p.role} (${p.comm}${p.workers !== null ? `, ${p.workers} worker${p.workers === 1 ? '' : 's'}` : ''}): ${f(r.vcpuPer1kRps[p.role], 3)} vCPU per 1000 req/s [${sp(r.spread.vcpuPer1kRps[p.role])}], ${f(r.rssMiB[p.role], 1)} MiB`);
    }
  }
  out.push(`Istio's published figures (${ISTIO_PUBLISHED_SOURCE}):`);
  for (const x of ISTIO_PUBLISHED) out.push(`    Istio ${x.istioVersion}: ${x.what} ${x.value} ${x.unit} (${x.conditions})`);
  for (const b of budgets) out.push(`${b.pass ? 'met   ' : 'BROKEN'} ${b.path} ${b.metric}: ${b.value} ${b.unit} (limit ${b.limit}; rounds ${(b.rounds ?? []).join(', ')})`);
  for (const w of rate.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}

/** The closed-loop maximum (secondary): medians per path (spread of the rounds in brackets), the ceiling check, warnings. */
export function renderTable(summary: LoadSummary): string {
  const head = ['path', 'req/s', 'x base', 'p50 ms', 'p90 ms', 'p99 ms', '+p99 ms', 'err', 'MB/s', 'dp vCPU-s/1k', 'dp RSS MiB', 'app/1k', 'client/1k', 'limited by'];
  const rows = summary.paths.map((p) => {
    const m = p.metrics;
    return [
      `(${p.letter}) ${p.id}`,
      `${f(m.rps.median, 0)} [${sp(m.rps.spread)}]`,
      p.id === BASELINE ? '1' : `${f(m.rps_ratio.median, 3)} [${sp(m.rps_ratio.spread)}]`,
      f(m.p50_ms.median),
      f(m.p90_ms.median),
      f(m.p99_ms.median),
      p.id === BASELINE ? '' : f(m.p99_added_ms.median),
      f(m.errors.median, 0),
      f(m.bytes_per_s.median / 1e6, 1),
      p.roles.some((r) => r.kind === 'dataplane') ? `${f(m.cpu_per_1k_req.median, 3)} [${sp(m.cpu_per_1k_req.spread)}]` : '',
      p.roles.some((r) => r.kind === 'dataplane') ? f(m.rss_mb.median, 1) : '',
      f(m.app_cpu_per_1k_req.median, 3),
      f(m.client_cpu_per_1k_req.median, 3),
      p.limitedBy,
    ];
  });
  const out = columns(head, rows);
  const c = summary.ceiling;
  if (c) out.push(`load-generator ceiling (baseline): autocannon ${f(c.autocannon_rps.median, 0)} req/s, wrk ${f(c.wrk_rps.median, 0)} req/s, autocannon/wrk ${f(c.ratio.median, 3)} [${sp(c.ratio.spread)}]`);
  for (const s of summary.skipped) out.push(`(${s.letter}) ${s.id}: skipped (${s.reason})`);
  for (const w of summary.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}
