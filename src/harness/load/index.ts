// The throughput-budget run: read fixtures/budgets.yaml, start the beds that provide the catalog's paths (the
// others are reported as skipped), prove each path on one request, then measure Istio's way (fortio at a fixed
// rate, interleaved rounds per connection count: fortio.ts) and, as a secondary figure, the closed-loop maximum
// (autocannon, runner.ts); summarize, check the budgets on the medians, write the results, tear everything down.
// Used by suites/throughput-budget.spec.ts and bench/run.ts.
import { resolveFortio } from '../cli/provision-fortio.ts';
import { UserError } from '../model/errors.ts';
import type { BudgetResult } from '../report/meta.ts';
import { LOAD_BEDS } from './beds/index.ts';
import { checkBudgets, loadBudgets, BUDGETS_FILE, type BudgetsFile } from './budgets.ts';
import { runFixedRate, type FixedRateResult, type FixedRateSettings } from './fortio.ts';
import { BASELINE, PATH_CATALOG, type LoadBed, type LoadPath, type StartedBed } from './path.ts';
import { summarizeRate, type RateSummary } from './rate-summary.ts';
import { writeLoadReport, type LoadReportFiles } from './report.ts';
import { runRounds, targetUrl, verifyPaths, type LoadSettings, type RoundsResult } from './runner.ts';
import { skippedPaths, summarize, type LoadSummary } from './summary.ts';

export interface BudgetRunOptions {
  /** Default fixtures/budgets.yaml. */
  budgetsFile?: string;
  /** npm test: the file's `smoke:` settings (every path proven and measured, short). */
  smoke?: boolean;
  /** Overrides of the fixed-rate settings. */
  fixedRate?: Partial<FixedRateSettings>;
  /** Overrides of the closed-loop settings; `false` skips the closed-loop maximum. */
  settings?: Partial<LoadSettings> | false;
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
  /** Istio's units: fixed-rate figures per path and connection count. */
  rate: RateSummary;
  /** The closed-loop maximum (secondary), unless skipped. */
  summary?: LoadSummary;
  budgets: BudgetResult[];
  failures: BudgetResult[];
  files: LoadReportFiles;
  /** Evidence of each path's verify(). */
  verified: Record<string, string>;
  /** Wall time of everything, bed start and teardown included. */
  seconds: number;
  /** Of which: starting the beds, fixed rate, closed loop, tearing down. */
  phases: { startS: number; rateS: number; closedS: number; downS: number };
}

export async function runBudgets(opts: BudgetRunOptions = {}): Promise<BudgetRun> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const file = loadBudgets(opts.budgetsFile ?? BUDGETS_FILE);
  const base = opts.smoke ? file.smoke : { fixedRate: file.fixedRate, load: file.load };
  const rateSettings: FixedRateSettings = { ...base.fixedRate, ...opts.fixedRate };
  const closedSettings: LoadSettings | false = opts.settings === false ? false : { ...base.load, ...opts.settings };
  // missing fortio is one line naming the fix, before anything starts
  const fortio = resolveFortio();
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
    const verified = await verifyPaths(paths, log);

    const t1 = performance.now();
    const fixed: FixedRateResult = await runFixedRate({ path: fortio.path, module: fortio.module, moduleVersion: fortio.moduleVersion, sha256: fortio.sha256 }, paths, rateSettings, log);
    const rate = summarizeRate(paths, fixed, rateSettings);
    const rateS = (performance.now() - t1) / 1000;

    const t2 = performance.now();
    let closed: RoundsResult | undefined;
    let summary: LoadSummary | undefined;
    if (closedSettings) {
      closed = await runRounds(paths, closedSettings, (l) => log(`closed loop: ${l}`), verified);
      summary = summarize(paths, closed, closedSettings, skipped, (p) => (p.proxy === undefined ? targetUrl(p, closedSettings) : `${targetUrl(p, closedSettings)} via proxy ${p.proxy}`));
    }
    const closedS = (performance.now() - t2) / 1000;

    const budgets = checkBudgets(file.paths, rate.rows, summary);
    const files = writeLoadReport(home.runDir, { rate, closed: summary, budgets, skipped, verified, raw: { fixedRate: fixed, closedLoop: closed } });
    const t3 = performance.now();
    await downAll(started);
    const downS = (performance.now() - t3) / 1000;
    return {
      runId: home.runId,
      runDir: home.runDir,
      budgetsFile: file,
      rate,
      ...(summary ? { summary } : {}),
      budgets,
      failures: budgets.filter((b) => !b.pass),
      files,
      verified,
      seconds: (performance.now() - t0) / 1000,
      phases: { startS, rateS, closedS, downS },
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
