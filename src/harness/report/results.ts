// results.json: one record per probed cell (DESIGN.md result-record contract), plus a
// Cyclonus-style truth table for the console.
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { observedOf, type Observed, type ResultRecord } from '../model/verdict.ts';
import type { ProbeResult } from '../probe/types.ts';
import type { BudgetResult, SkippedTest } from './meta.ts';

export type CellRef = Pick<ResultRecord, 'suite' | 'scenario' | 'from' | 'to' | 'port' | 'protocol'>;

export type RunMeta = Pick<ResultRecord, 'run' | 'substrate' | 'profile'>;

export function toRecord(meta: RunMeta, cell: CellRef, expected: Observed, result: ProbeResult, pass?: boolean): ResultRecord {
  const observed = observedOf(result.verdict);
  return {
    run: meta.run,
    substrate: meta.substrate,
    profile: meta.profile,
    ...cell,
    expected,
    observed,
    verdict: result.verdict,
    pass: pass ?? observed === expected,
    evidence: result.evidence,
  };
}

/**
 * `meshproof run` sets this to its run directory (`--out`): every suite's records then also
 * land in <that dir>/results.json, beside the per-cluster reports/<cluster run>/results.json.
 */
export const RESULTS_DIR_ENV = 'MESHPROOF_RESULTS_DIR';

/** <runDir>, and the directory of the enclosing `meshproof run` when there is one (each once). */
function resultDirs(runDir: string): string[] {
  const outer = process.env[RESULTS_DIR_ENV];
  const dirs = [resolve(runDir)];
  if (outer && !dirs.includes(resolve(outer))) dirs.push(resolve(outer));
  return dirs;
}

/** Read, extend, write <dir>/results.json, keeping whatever else it holds (meta, tests, ...). A run has one writer. */
function extendResults(dir: string, add: Partial<Record<'records' | 'budgets' | 'skipped' | 'imageRewrites', unknown[]>>): void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'results.json');
  const prior: Record<string, unknown> & { records: unknown[] } = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { records: [] };
  prior.records ??= [];
  for (const [key, items] of Object.entries(add)) {
    if (items.length || key === 'records') prior[key] = [...((prior[key] as unknown[] | undefined) ?? []), ...items];
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(prior, null, 2));
  renameSync(tmp, file);
}

/** Appends records to <runDir>/results.json, and to $MESHPROOF_RESULTS_DIR/results.json when `meshproof run` set it. */
export function appendResults(runDir: string, records: ResultRecord[]): void {
  for (const dir of resultDirs(runDir)) extendResults(dir, { records });
}

/** Appends throughput/latency budgets, and tests skipped (report/meta.ts), like appendResults appends records. */
export function appendBudgets(runDir: string, budgets: BudgetResult[], skipped: SkippedTest[] = []): void {
  for (const dir of resultDirs(runDir)) extendResults(dir, { budgets, skipped });
}

/**
 * The user's images a substrate replaced with its offline builds (kind: `<kind>/<name>/<container>: <from> → <to>`),
 * kept in results.json for the run's report; readImageRewrites lists each once.
 */
export function appendImageRewrites(runDir: string, lines: string[]): void {
  if (lines.length) for (const dir of resultDirs(runDir)) extendResults(dir, { imageRewrites: lines });
}

export function readImageRewrites(dir: string): string[] {
  const file = join(dir, 'results.json');
  if (!existsSync(file)) return [];
  return [...new Set(((JSON.parse(readFileSync(file, 'utf8')) as { imageRewrites?: string[] }).imageRewrites ?? []))];
}

/**
 * A from × to table: `.` allowed, `X` denied, and for actual-vs-expected a `!` marks a
 * wrong cell; ends with the "N wrong, N correct" tally.
 */
export function truthTable(title: string, records: ResultRecord[]): string {
  const froms = [...new Set(records.map((r) => r.from))];
  const tos = [...new Set(records.map((r) => `${r.to}:${r.port}`))];
  const w = Math.max(6, ...froms.map((f) => f.length));
  const cw = Math.max(4, ...tos.map((t) => t.length));
  const lines = [title, `${''.padEnd(w)} | ${tos.map((t) => t.padEnd(cw)).join(' | ')}`];
  for (const f of froms) {
    const cells = tos.map((t) => {
      const r = records.find((x) => x.from === f && `${x.to}:${x.port}` === t);
      if (!r) return ''.padEnd(cw);
      const mark = (r.observed === 'allowed' ? '.' : 'X') + (r.pass ? '' : '!');
      return mark.padEnd(cw);
    });
    lines.push(`${f.padEnd(w)} | ${cells.join(' | ')}`);
  }
  const wrong = records.filter((r) => !r.pass).length;
  lines.push(`${wrong} wrong, ${records.length - wrong} correct`);
  return lines.join('\n');
}
