// results.json: one record per probed cell (DESIGN.md result-record contract), plus a
// Cyclonus-style truth table for the console.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { observedOf, type Observed, type ResultRecord } from '../model/verdict.ts';
import type { ProbeResult } from '../probe/types.ts';

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

/** Appends records to <runDir>/results.json (read, extend, write: a run has one writer). */
export function appendResults(runDir: string, records: ResultRecord[]): void {
  mkdirSync(runDir, { recursive: true });
  const file = join(runDir, 'results.json');
  const prior: { records: ResultRecord[] } = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { records: [] };
  prior.records.push(...records);
  writeFileSync(file, JSON.stringify(prior, null, 2));
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
