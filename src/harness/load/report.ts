// Where a budget run's results go: reports/<run>/results.json gets `budgets` (BudgetResult[]) and
// `skipped` (paths no profile provides yet); reports/<run>/load.json every figure of every round;
// reports/<run>/budget-<path>.svg a chart per path. renderTable is the console's view.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BudgetResult, SkippedTest } from '../report/meta.ts';
import { renderPathChart } from './chart.ts';
import { BASELINE } from './path.ts';
import type { RunSample } from './runner.ts';
import type { LoadSummary } from './summary.ts';

export const SUITE = 'throughput-budget';

/** The `skipped` entries of results.json for paths no bed provides. */
export function skippedTests(summary: Pick<LoadSummary, 'skipped'>): SkippedTest[] {
  return summary.skipped.map((s) => ({ profile: s.profile, suite: SUITE, scenario: `(${s.letter}) ${s.id}`, reason: s.reason }));
}

/** Appends budgets and skipped paths to <runDir>/results.json, keeping whatever else it holds. */
export function appendBudgets(runDir: string, budgets: BudgetResult[], skipped: SkippedTest[]): void {
  mkdirSync(runDir, { recursive: true });
  const file = join(runDir, 'results.json');
  const doc = (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { records: [] }) as { records?: unknown[]; budgets?: BudgetResult[]; skipped?: SkippedTest[] };
  doc.records ??= [];
  doc.budgets = [...(doc.budgets ?? []), ...budgets];
  if (skipped.length > 0) doc.skipped = [...(doc.skipped ?? []), ...skipped];
  writeFileSync(file, JSON.stringify(doc, null, 2));
}

export interface LoadReportFiles {
  results: string;
  load: string;
  charts: string[];
}

/** Writes results.json (budgets, skipped), load.json and one SVG per measured path. */
export function writeLoadReport(runDir: string, summary: LoadSummary, budgets: BudgetResult[], raw: { samples: RunSample[]; wrk: RunSample[]; discarded: RunSample[] }): LoadReportFiles {
  mkdirSync(runDir, { recursive: true });
  appendBudgets(runDir, budgets, skippedTests(summary));
  const load = join(runDir, 'load.json');
  writeFileSync(load, JSON.stringify({ kind: 'meshproof-load', summary, budgets, raw }, null, 2));
  const baseline = summary.paths.find((p) => p.id === BASELINE);
  const charts = summary.paths.map((p) => {
    const file = join(runDir, `budget-${p.id}.svg`);
    writeFileSync(file, renderPathChart(p, p.id === BASELINE ? undefined : baseline, budgets));
    return file;
  });
  return { results: join(runDir, 'results.json'), load, charts };
}

const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
const sp = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');

/** A table of medians per path (spread of the rounds in brackets), the ceiling check, budgets, warnings. */
export function renderTable(summary: LoadSummary, budgets: BudgetResult[]): string {
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(head), ...rows.map(line)];
  for (const p of summary.paths) {
    for (const r of p.roles) out.push(`    ${p.id} ${r.role} (${r.comm}): ${f(r.cpu_per_1k_req.median, 3)} vCPU-s/1k req, ${f(r.cpu_util.median)} CPU, ${f(r.rss_mb.median, 1)} MiB`);
  }
  const c = summary.ceiling;
  if (c) out.push(`load-generator ceiling (baseline): autocannon ${f(c.autocannon_rps.median, 0)} req/s, wrk ${f(c.wrk_rps.median, 0)} req/s, autocannon/wrk ${f(c.ratio.median, 3)} [${sp(c.ratio.spread)}]`);
  for (const s of summary.skipped) out.push(`(${s.letter}) ${s.id}: skipped (${s.reason})`);
  for (const b of budgets) out.push(`${b.pass ? 'met   ' : 'BROKEN'} ${b.path} ${b.metric}: ${b.value} ${b.unit} (limit ${b.limit}; rounds ${(b.rounds ?? []).join(', ')})`);
  for (const w of summary.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}
