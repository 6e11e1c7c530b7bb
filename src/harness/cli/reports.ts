// `meshproof report RUN_DIR`, `meshproof diff RUN_A RUN_B`, `meshproof merge OUT RUN_DIR...`:
// the reports of finished runs. No root, no processes: files in, files and lines out.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EXIT, UserError } from '../model/errors.ts';
import { completeness, incompleteLine } from '../report/completeness.ts';
import { envoyVersionsOf, parseResultsFile, tally, type ResultsFile } from '../report/meta.ts';
import { diffRuns, mergeResults, regressions, renderRunReports, RESULTS_FILE, writeResultsFile, type BudgetMove, type RunDiff } from '../report/render.ts';

type Print = (line: string) => void;

/** A results.json path, or a run directory holding one. */
export function resolveResultsPath(p: string): string {
  const abs = resolve(p);
  try {
    if (statSync(abs).isDirectory()) return join(abs, RESULTS_FILE);
  } catch {
    throw new UserError(`${p} does not exist: name a results.json or a run directory`);
  }
  return abs;
}

export function readResultsPath(p: string): ResultsFile {
  const file = resolveResultsPath(p);
  if (!existsSync(file)) throw new UserError(`${file} does not exist: name a results.json or a run directory`);
  return parseResultsFile(readFileSync(file, 'utf8'), file);
}

/** Did the run fail conformance: a failed mocha test or hook, a wrong cell, a missed budget. */
export function conformanceFailures(file: ResultsFile): { tests: number; cells: number; budgets: number } {
  return {
    tests: (file.tests ?? []).filter((t) => t.state === 'failed').length,
    cells: file.records.filter((r) => !r.pass).length,
    budgets: (file.budgets ?? []).filter((b) => !b.pass).length,
  };
}


/**
 * Prints the INCOMPLETE line of a run that did not finish what it planned (the missing suites
 * named), with `what` naming the run; returns whether it was incomplete. A file written before
 * results.json recorded its plan gets a note, and counts as complete.
 */
export function printIncomplete(file: ResultsFile, print: Print, what = '', indent = ''): boolean {
  const c = completeness(file);
  const line = incompleteLine(c);
  if (line) print(`${indent}${what}${line}`);
  else if (!c.recorded) print(`${indent}${what}note: this results.json does not record what its run planned (written before schema 2), so it cannot say whether the run finished`);
  return !!line;
}

/** At most this many added or removed cells are listed one by one. */
const LIST_MAX = 50;

const pf = (pass: boolean) => (pass ? 'pass' : 'FAIL');

function budgetLine(m: BudgetMove): string {
  const unit = m.after?.unit ?? m.before?.unit ?? '';
  if (!m.before) return `${m.key}: new, ${m.after!.value} ${unit} (limit ${m.after!.limit}, ${pf(m.after!.pass)})`;
  if (!m.after) return `${m.key}: gone (was ${m.before.value} ${unit}, ${pf(m.before.pass)})`;
  const pct = m.ratio === undefined ? '' : ` (${m.ratio >= 1 ? '+' : ''}${((m.ratio - 1) * 100).toFixed(1)} %)`;
  return `${m.key}: ${m.before.value} → ${m.after.value} ${unit}${pct}, limit ${m.after.limit}, ${pf(m.before.pass)} → ${pf(m.after.pass)}`;
}

/** The diff as lines: changed cells (verdict before → after), added and removed cells, moved budgets. */
export function printDiff(d: RunDiff, print: Print, indent = ''): void {
  print(`${indent}${d.changed.length} cells changed verdict, ${d.added.length} added, ${d.removed.length} removed; ${d.budgetsMoved.length} budgets moved`);
  for (const c of d.changed) {
    print(`${indent}  changed ${c.key}: ${c.before.verdict} (${pf(c.before.pass)}) → ${c.after.verdict} (${pf(c.after.pass)}), expected ${c.after.expected}`);
  }
  const list = (what: string, recs: RunDiff['added']) => {
    for (const r of recs.slice(0, LIST_MAX)) print(`${indent}  ${what} ${r.suite} / ${r.scenario} / ${r.from} → ${r.to}:${r.port}/${r.protocol}${r.envoyVersion ? ` @ envoy ${r.envoyVersion}` : ''}: ${r.verdict} (${pf(r.pass)})`);
    if (recs.length > LIST_MAX) print(`${indent}  … and ${recs.length - LIST_MAX} more ${what}`);
  };
  list('added', d.added);
  list('removed', d.removed);
  for (const m of d.budgetsMoved) print(`${indent}  budget ${budgetLine(m)}`);
}

/** Diffs current against the baseline, prints it and the regressions (regressions()); returns how many. */
export function printGate(baseline: ResultsFile, current: ResultsFile, gate: boolean, print: Print, indent = ''): number {
  const d = diffRuns(baseline, current);
  const reg = regressions(d);
  const n = reg.cells.length + reg.budgets.length;
  printDiff(d, print, indent);
  print(`${indent}${n} regression(s) against the baseline${n && !gate ? ' (not gating: no --gate)' : ''}`);
  // An incomplete run cannot pass a gate: its missing cells are not regressions, only absent.
  const now = incompleteLine(completeness(current));
  const before = incompleteLine(completeness(baseline));
  if (now) print(`${indent}gate: this run cannot pass, it is ${now}`);
  if (before) print(`${indent}note: the baseline is ${before}`);
  for (const c of reg.cells) {
    const why = c.why === 'downgrade' ? 'still passes, over a weaker transport' : `now wrong: expected ${c.after.expected}`;
    print(`${indent}REGRESSION ${c.key}: ${c.before.verdict} → ${c.after.verdict} (${why})`);
  }
  for (const m of reg.budgets) print(`${indent}REGRESSION budget ${budgetLine(m)}`);
  return n;
}

function summaryLine(f: ResultsFile): string {
  const t = tally(f.records);
  const tests = f.tests ?? [];
  const failedTests = tests.filter((x) => x.state === 'failed').length;
  const budgets = f.budgets ?? [];
  const versions = envoyVersionsOf(f);
  return (
    `${t.cells} cells (${t.passed} correct, ${t.failed} wrong)` +
    (tests.length ? `, ${tests.length} tests (${failedTests} failed)` : '') +
    (budgets.length ? `, ${budgets.filter((b) => b.pass).length}/${budgets.length} budgets met` : '') +
    (versions.length ? `, envoy ${versions.join(', ')}` : '')
  );
}

/**
 * `meshproof report RUN_DIR`: re-renders the reports from <RUN_DIR>/results.json; exit 0 once
 * written, 1 when the run is incomplete (the reports say so too).
 */
export function reportCommand(runDir: string, print: Print): number {
  const dir = resolve(runDir);
  const file = readResultsPath(dir);
  const { files } = renderRunReports(dir);
  print(`${dir}: ${summaryLine(file)}`);
  for (const f of files) print(`  ${f}`);
  return printIncomplete(file, print) ? EXIT.failure : EXIT.ok;
}

/**
 * `meshproof diff RUN_A RUN_B`: cells that changed verdict and budgets that moved from A to B;
 * exit 0, or 1 when either run is incomplete (its missing cells would read as removed or added).
 */
export function diffCommand(a: string, b: string, print: Print, opts: { budgetTolerance?: number } = {}): number {
  const before = readResultsPath(a);
  const after = readResultsPath(b);
  print(`${resolveResultsPath(a)} → ${resolveResultsPath(b)}`);
  printDiff(diffRuns(before, after, opts), print);
  const incompleteA = printIncomplete(before, print, 'run A: ');
  const incompleteB = printIncomplete(after, print, 'run B: ');
  return incompleteA || incompleteB ? EXIT.failure : EXIT.ok;
}

export interface MergeFlags {
  baseline?: string;
  gate?: boolean;
}

/**
 * `meshproof merge OUT RUN_DIR...`: joins the results.json of shards (or of runs) into
 * <OUT>/results.json (report/render.ts mergeResults) and renders the reports there. The exit code
 * is the merged run's, like `meshproof run`: 1 on a failed test, wrong cell or missed budget, or
 * with --gate a regression against --baseline; else 0.
 */
export function mergeCommand(out: string, inputs: string[], print: Print, flags: MergeFlags = {}): number {
  if (!inputs.length) throw new UserError('nothing to merge: meshproof merge OUT RUN_DIR...');
  if (flags.gate && !flags.baseline) throw new UserError('--gate needs --baseline <results.json or run directory> to gate against');
  const baseline = flags.baseline ? readResultsPath(flags.baseline) : undefined;
  const files = inputs.map(readResultsPath);
  const dir = resolve(out);
  if (existsSync(join(dir, RESULTS_FILE)) && !inputs.map(resolveResultsPath).includes(join(dir, RESULTS_FILE))) {
    throw new UserError(`${join(dir, RESULTS_FILE)} already exists: merge into a new directory`);
  }
  const merged = mergeResults(files);
  writeResultsFile(dir, merged);
  const { files: written } = renderRunReports(dir);
  print(`merged ${files.length} results into ${dir}: ${summaryLine(merged)}`);
  for (const f of [join(dir, RESULTS_FILE), ...written]) print(`  ${f}`);

  let regressed = 0;
  if (baseline) {
    print(`against the baseline ${resolveResultsPath(flags.baseline!)}${flags.gate ? ' (gate)' : ''}:`);
    regressed = printGate(baseline, merged, !!flags.gate, print, '  ');
  }
  // The union of what the shards planned against the union of what they finished.
  const incomplete = printIncomplete(merged, print);
  const f = conformanceFailures(merged);
  if (incomplete || f.tests || f.cells || f.budgets) return EXIT.failure;
  return flags.gate && regressed ? EXIT.failure : EXIT.ok;
}
