// The throughput-budget run: read fixtures/budgets.yaml, start the beds that provide the
// catalog's paths (the others are reported as skipped), verify each path, run the interleaved
// rounds, summarize, check the budgets on the medians, write the results, tear everything down.
// Used by suites/throughput-budget.spec.ts and bench/run.ts.
import { UserError } from '../cli/errors.ts';
import type { BudgetResult } from '../report/meta.ts';
import { LOAD_BEDS } from './beds/index.ts';
import { checkBudgets, loadBudgets, BUDGETS_FILE, type BudgetsFile } from './budgets.ts';
import { BASELINE, PATH_CATALOG, type LoadBed, type LoadPath, type StartedBed } from './path.ts';
import { writeLoadReport, type LoadReportFiles } from './report.ts';
import { runRounds, targetUrl, type LoadSettings } from './runner.ts';
import { skippedPaths, summarize, type LoadSummary } from './summary.ts';

export interface BudgetRunOptions {
  /** Default fixtures/budgets.yaml. */
  budgetsFile?: string;
  /** Overrides of the file's `load:` settings. */
  settings?: Partial<LoadSettings>;
  /** Only these path ids (the baseline is always measured). */
  only?: string[];
  beds?: readonly LoadBed[];
  reportsDir?: string;
  log?: (line: string) => void;
}

export interface BudgetRun {
  runId: string;
  runDir: string;
  budgetsFile: BudgetsFile;
  summary: LoadSummary;
  budgets: BudgetResult[];
  failures: BudgetResult[];
  files: LoadReportFiles;
  /** Wall time of everything, bed start and teardown included. */
  seconds: number;
  /** Of which: starting the beds, measuring, tearing down. */
  phases: { startS: number; measureS: number; downS: number };
}

export async function runBudgets(opts: BudgetRunOptions = {}): Promise<BudgetRun> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const file = loadBudgets(opts.budgetsFile ?? BUDGETS_FILE);
  const settings: LoadSettings = { ...file.load, ...opts.settings };
  const wanted = new Set(opts.only ? [BASELINE, ...opts.only] : PATH_CATALOG.map((c) => c.id));
  for (const id of wanted) if (!PATH_CATALOG.some((c) => c.id === id)) throw new UserError(`no load path '${id}' (paths: ${PATH_CATALOG.map((c) => c.id).join(', ')})`);
  const beds = (opts.beds ?? LOAD_BEDS).filter((b) => b.provides.some((id) => wanted.has(id)));
  const provided = new Set(beds.flatMap((b) => [...b.provides]));
  if (!provided.has(BASELINE)) throw new UserError(`no load bed provides the baseline path`);
  const skipped = skippedPaths(
    PATH_CATALOG.filter((c) => wanted.has(c.id)),
    provided,
  );
  for (const s of skipped) log(`(${s.letter}) ${s.id}: skipped (${s.reason})`);

  const started: StartedBed[] = [];
  try {
    // the beds are independent substrate runs: started side by side (most of a start is waiting
    // for readiness), every one that came up is torn down below when another failed
    const starts = await Promise.allSettled(beds.map((bed) => bed.start({ log, reportsDir: opts.reportsDir })));
    for (const s of starts) if (s.status === 'fulfilled') started.push(s.value);
    const failed = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const startS = (performance.now() - t0) / 1000;
    // catalog order, baseline first: a round measures the baseline before the paths compared with it
    const all = started.flatMap((b) => b.paths);
    const paths: LoadPath[] = PATH_CATALOG.map((c) => all.find((p) => p.id === c.id)).filter((p): p is LoadPath => p !== undefined && wanted.has(p.id));
    const home = started.find((b) => b.paths.some((p) => p.id === BASELINE))!;
    const t1 = performance.now();
    const res = await runRounds(paths, settings, log);
    const measureS = (performance.now() - t1) / 1000;
    const summary = summarize(paths, res, settings, skipped, (p) => (p.proxy === undefined ? targetUrl(p, settings) : `${targetUrl(p, settings)} via proxy ${p.proxy}`));
    const budgets = checkBudgets(file.paths, summary);
    const files = writeLoadReport(home.runDir, summary, budgets, res);
    const t2 = performance.now();
    await downAll(started);
    const downS = (performance.now() - t2) / 1000;
    return {
      runId: home.runId,
      runDir: home.runDir,
      budgetsFile: file,
      summary,
      budgets,
      failures: budgets.filter((b) => !b.pass),
      files,
      seconds: (performance.now() - t0) / 1000,
      phases: { startS, measureS, downS },
    };
  } finally {
    await downAll(started);
  }
}

/** Tears every started bed down, each even when another fails; idempotent (a bed's down() is). */
async function downAll(beds: StartedBed[]): Promise<void> {
  const errors: unknown[] = [];
  for (const b of beds.splice(0)) {
    try {
      await b.down();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}
