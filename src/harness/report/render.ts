// Entry point of the reports: reads reports/<run>/results.json and writes junit.xml,
// conformance-report.yaml, summary.md and report.html beside it. The only module of
// report/ that touches files; diffRuns and mergeResults are pure (future `meshproof diff`
// and `meshproof merge`). Also runnable: `npx tsx src/harness/report/render.ts reports/<run>...`.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, release, totalmem, platform, arch } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../model/errors.ts';
import { renderConformanceYaml, type ConformanceOptions } from './conformance.ts';
import { renderHtml, type HtmlOptions } from './html.ts';
import { renderJUnit } from './junit.ts';
import { renderMarkdown, type MarkdownOptions } from './markdown.ts';
import { mergePlans, withUnfinishedAsFailures } from './completeness.ts';
import { axisCellKey, axisValue, edgeKind, joinRuns, parseResultsFile, SCHEMA_VERSION, unique, varyingAxes, VERSION_AXES, type BudgetResult, type CellRecord, type MachineInfo, type ResultsFile, type RunMetadata, type VersionAxis } from './meta.ts';
import type { WithLoadRuns } from '../load/report.ts';

export const RESULTS_FILE = 'results.json';

/** The files renderRunReports writes, by renderer. */
export const REPORT_FILES = {
  junit: 'junit.xml',
  conformance: 'conformance-report.yaml',
  markdown: 'summary.md',
  html: 'report.html',
} as const;

export interface RenderOptions {
  conformance?: ConformanceOptions;
  markdown?: MarkdownOptions;
  html?: HtmlOptions;
  /** Write the reports here instead of into runDir. */
  outDir?: string;
}

/** Reads and checks <runDir>/results.json. */
export function loadResults(runDir: string): ResultsFile {
  const file = join(runDir, RESULTS_FILE);
  if (!existsSync(file)) throw new UserError(`${file} does not exist: run a suite first, or name a run directory under reports/`);
  return parseResultsFile(readFileSync(file, 'utf8'), file);
}

/** Every report as file name → text; a planned suite that did not finish is a failed test in each. Pure. */
export function renderReports(input: ResultsFile, opts: RenderOptions = {}): Record<string, string> {
  const results = withUnfinishedAsFailures(input);
  return {
    [REPORT_FILES.junit]: renderJUnit(results),
    [REPORT_FILES.conformance]: renderConformanceYaml(results, opts.conformance),
    [REPORT_FILES.markdown]: renderMarkdown(results, opts.markdown),
    [REPORT_FILES.html]: renderHtml(results, opts.html),
  };
}

/** Renders every report of a run directory; returns the paths written. */
export function renderRunReports(runDir: string, opts: RenderOptions = {}): { files: string[] } {
  const texts = renderReports(loadResults(runDir), opts);
  const out = opts.outDir ?? runDir;
  const files = Object.entries(texts).map(([name, text]) => {
    const path = join(out, name);
    writeAtomically(path, text);
    return path;
  });
  return { files };
}

/**
 * Sets the run metadata of <runDir>/results.json, keeping its records, budgets and skips
 * (a run has one writer: call it from the same process that appends the records).
 */
export function writeRunMetadata(runDir: string, meta: RunMetadata, fields: Pick<ResultsFile, 'planned' | 'completed' | 'stopped'> = {}): void {
  patchResultsFile(runDir, { meta, ...fields });
}

/**
 * Sets top-level fields of <runDir>/results.json (meta, planned, completed, stopped, tests),
 * keeping the rest; synchronous, so a run's own process can call it between suites and on exit.
 */
export function patchResultsFile(runDir: string, fields: Partial<Omit<ResultsFile, 'records'>>): ResultsFile {
  const file = join(runDir, RESULTS_FILE);
  const prior: ResultsFile = existsSync(file) ? parseResultsFile(readFileSync(file, 'utf8'), file) : { records: [] };
  const next: ResultsFile = { schemaVersion: SCHEMA_VERSION, ...prior, ...fields };
  mkdirSync(runDir, { recursive: true });
  writeAtomically(file, JSON.stringify(next, null, 2));
  return next;
}

/** Writes <dir>/results.json (atomically). */
export function writeResultsFile(dir: string, file: ResultsFile): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, RESULTS_FILE);
  writeAtomically(path, JSON.stringify(file, null, 2));
  return path;
}

/** This machine, for RunMetadata.machine. */
export function machineInfo(): MachineInfo {
  let os = `${platform()} ${arch()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (pretty?.[1]) os = pretty[1];
  } catch {
    // not Linux, or no os-release: keep platform/arch
  }
  return { hostname: hostname(), cpus: availableParallelism(), memMiB: Math.round(totalmem() / 2 ** 20), kernel: release(), os };
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

// ---- diff and merge -------------------------------------------------------------------

export interface CellChange {
  /** cellKey: `suite / scenario / from → to:port/protocol` (and ` @ istio <v>`, ` @ envoy <v>`, see diffRuns). */
  key: string;
  before: CellRecord;
  after: CellRecord;
}

export interface BudgetMove {
  /** `path metric`. */
  key: string;
  /** Absent: the budget is new in b. */
  before?: BudgetResult;
  /** Absent: the budget is gone from b. */
  after?: BudgetResult;
  /** after.value − before.value, when both exist. */
  delta?: number;
  /** after.value / before.value, when both exist and before.value ≠ 0. */
  ratio?: number;
}

export interface RunDiff {
  /** Cells in both runs whose verdict, expected, observed or pass differ (evidence alone is not a change). */
  changed: CellChange[];
  /** Cells only in b. */
  added: CellRecord[];
  /** Cells only in a. */
  removed: CellRecord[];
  /** Budgets that flipped pass/fail, appeared, disappeared, or moved more than the tolerance. */
  budgetsMoved: BudgetMove[];
}

export interface DiffOptions {
  /** Relative change of a budget value that counts as a move; default 0.05 (5 %). */
  budgetTolerance?: number;
}

/** `path metric`, and its value on each of `axes` it carries (` @ envoy <v>` by default). */
export const budgetKey = (b: Pick<BudgetResult, 'path' | 'metric' | 'envoyVersion' | 'istioVersion'>, axes: readonly VersionAxis[] = ['envoy']): string =>
  `${b.path} ${b.metric}${axes.map((a) => (axisValue(b, a) ? ` @ ${a} ${axisValue(b, a)}` : '')).join('')}`;

/**
 * What changed from run a to run b, cells keyed by suite/scenario/from/to/port/protocol (a
 * re-probed cell: the last record counts). When each run has at most one Envoy (Istio) version, cells
 * are matched whatever their version (so a run on a new Envoy diffs against one on the old);
 * when either holds several (a version matrix), that version is part of the key.
 */
export function diffRuns(a: ResultsFile, b: ResultsFile, opts: DiffOptions = {}): RunDiff {
  const tol = opts.budgetTolerance ?? 0.05;
  const axes = varyingAxes(a, b);
  const cellKeyOf = (r: CellRecord) => axisCellKey(r, axes);
  const budgetKeyOf = (x: BudgetResult) => budgetKey(x, axes);
  const before = keyed(a.records, cellKeyOf);
  const after = keyed(b.records, cellKeyOf);
  const changed: CellChange[] = [];
  const added: CellRecord[] = [];
  for (const [key, r] of after) {
    const old = before.get(key);
    if (!old) added.push(r);
    else if (old.verdict !== r.verdict || old.expected !== r.expected || old.observed !== r.observed || old.pass !== r.pass) changed.push({ key, before: old, after: r });
  }
  const removed = [...before].filter(([k]) => !after.has(k)).map(([, r]) => r);

  const bBefore = keyed(a.budgets ?? [], budgetKeyOf);
  const bAfter = keyed(b.budgets ?? [], budgetKeyOf);
  const budgetsMoved: BudgetMove[] = [];
  for (const key of unique([...bBefore.keys(), ...bAfter.keys()])) {
    const x = bBefore.get(key);
    const y = bAfter.get(key);
    if (!x || !y) {
      budgetsMoved.push({ key, before: x, after: y });
      continue;
    }
    const delta = y.value - x.value;
    const ratio = x.value !== 0 ? y.value / x.value : undefined;
    const moved = ratio === undefined ? y.value !== 0 : Math.abs(ratio - 1) > tol;
    if (moved || x.pass !== y.pass) budgetsMoved.push({ key, before: x, after: y, delta, ...(ratio === undefined ? {} : { ratio }) });
  }
  return { changed, added, removed, budgetsMoved };
}

/** A cell that got worse: from pass to fail, or still allowed but over a weaker transport (mtls → tls → plaintext). */
export interface CellRegression extends CellChange {
  why: 'pass→fail' | 'downgrade';
}

/**
 * What a release gate fails on, beyond plain failures: cells of both runs that went from pass to
 * fail; cells still passing whose allowed traffic lost protection (allowed:mtls → allowed:tls or
 * allowed:plaintext, allowed:tls → allowed:plaintext: `pass` only compares allowed/denied); and
 * budgets of both runs that went from met to missed. A cell or budget new in b that fails is a
 * plain failure of b; one gone from b is listed by diffRuns but is no regression (a shard or a
 * --profile selection runs fewer suites).
 */
export interface Regressions {
  cells: CellRegression[];
  budgets: BudgetMove[];
}

const PROTECTION: Record<string, number> = { mtls: 3, tls: 2, plaintext: 1 };

export function regressions(d: RunDiff): Regressions {
  const cells: CellRegression[] = [];
  for (const c of d.changed) {
    if (c.before.pass && !c.after.pass) cells.push({ ...c, why: 'pass→fail' });
    else if (c.after.pass && c.before.observed === 'allowed' && c.after.observed === 'allowed' && (PROTECTION[edgeKind(c.after.verdict)] ?? 0) < (PROTECTION[edgeKind(c.before.verdict)] ?? 0)) {
      cells.push({ ...c, why: 'downgrade' });
    }
  }
  return {
    cells,
    budgets: d.budgetsMoved.filter((m) => m.before?.pass && m.after && !m.after.pass),
  };
}

function keyed<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const m = new Map<string, T>();
  for (const it of items) m.set(key(it), it);
  return m;
}

/**
 * One file from the shards of a run (or from several runs). Records keep their order; a
 * record with the same run and cell key as an earlier one replaces it in place (a shard
 * re-run wins). Budgets, skips, mocha tests and load runs are concatenated without exact duplicates. Metadata:
 * runs/substrates joined, profiles united, earliest start, latest finish, the first
 * machine, versions merged (differing values joined with ", "), every input meta kept in
 * `shards`.
 */
export function mergeResults(files: ResultsFile[]): ResultsFile {
  const records: CellRecord[] = [];
  const at = new Map<string, number>();
  for (const f of files) {
    for (const r of f.records) {
      const k = `${r.run}\u0000${axisCellKey(r, VERSION_AXES)}`;
      const i = at.get(k);
      if (i === undefined) {
        at.set(k, records.length);
        records.push(r);
      } else records[i] = r;
    }
  }
  const plans = mergePlans(files);
  const out: ResultsFile = { ...(plans.planned ? { schemaVersion: SCHEMA_VERSION } : {}), ...plans, records };
  const budgets = dedupe(files.flatMap((f) => f.budgets ?? []));
  if (budgets.length) out.budgets = budgets;
  const skipped = dedupe(files.flatMap((f) => f.skipped ?? []));
  if (skipped.length) out.skipped = skipped;
  const tests = dedupe(files.flatMap((f) => f.tests ?? []));
  if (tests.length) out.tests = tests;
  // the throughput suite's figures in Istio's units (load/report.ts), which summary.md and report.html draw
  const loadRuns = dedupe(files.flatMap((f) => (f as ResultsFile & WithLoadRuns).loadRuns ?? []));
  if (loadRuns.length) (out as ResultsFile & WithLoadRuns).loadRuns = loadRuns;
  const metas = files.map((f) => f.meta).filter((m): m is RunMetadata => !!m);
  if (metas.length) out.meta = mergeMeta(metas, records);
  return out;
}

function mergeMeta(metas: RunMetadata[], records: CellRecord[]): RunMetadata {
  // One shard merged alone still says it is a shard, so completeness() can name the others missing.
  if (metas.length === 1) return metas[0]!.shard && !metas[0]!.shards ? { ...metas[0]!, shards: [metas[0]!] } : metas[0]!;
  const versions: Record<string, string> = {};
  for (const m of metas) {
    for (const [k, v] of Object.entries(m.versions ?? {})) {
      const have = versions[k]?.split(', ') ?? [];
      if (!have.includes(v)) versions[k] = [...have, v].join(', ');
    }
  }
  const envoy = unique(metas.flatMap((m) => [...(m.envoyVersions ?? []), ...(m.versions?.envoy ? m.versions.envoy.split(', ') : [])]));
  const times = (xs: string[]) => xs.filter((x) => Number.isFinite(Date.parse(x))).sort((p, q) => Date.parse(p) - Date.parse(q));
  const started = times(metas.map((m) => m.started));
  const finished = times(metas.map((m) => m.finished));
  const merged: RunMetadata = {
    run: joinRuns(metas.map((m) => m.run)),
    substrate: unique(metas.map((m) => m.substrate)).join(','),
    profiles: unique([...metas.flatMap((m) => m.profiles ?? []), ...records.map((r) => r.profile)]),
    started: started[0] ?? metas[0]!.started,
    finished: finished[finished.length - 1] ?? metas[metas.length - 1]!.finished,
    machine: metas[0]!.machine,
    versions,
    shards: metas.flatMap((m) => m.shards ?? [m]),
  };
  if (envoy.length) merged.envoyVersions = envoy;
  // the control plane and its Istio releases, install deviations and binaries' provenance (the ConformanceReport names them)
  const controlPlanes = unique(metas.map((m) => m.controlPlane).filter((c): c is string => !!c));
  if (controlPlanes.length) merged.controlPlane = controlPlanes.join(',');
  const istio = unique(metas.flatMap((m) => m.istioVersions ?? (m.istioVersion ? [m.istioVersion] : [])));
  if (istio.length === 1) merged.istioVersion = istio[0];
  if (istio.length > 1) merged.istioVersions = istio;
  const deviations = dedupe(metas.flatMap((m) => m.istioDeviations ?? []));
  if (deviations.length) merged.istioDeviations = deviations;
  const provenance = dedupe(metas.flatMap((m) => m.provenance ?? []));
  if (provenance.length) merged.provenance = provenance;
  return merged;
}

function dedupe<T>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((x) => {
    const k = JSON.stringify(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// `npx tsx src/harness/report/render.ts reports/<run> [...]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dirs = process.argv.slice(2);
  if (!dirs.length) {
    process.stderr.write('usage: render.ts <run directory>...\n');
    process.exitCode = 2;
  }
  for (const dir of dirs) {
    try {
      for (const f of renderRunReports(dir).files) process.stdout.write(`${f}\n`);
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      process.exitCode = e instanceof UserError ? e.exitCode : 1;
    }
  }
}
