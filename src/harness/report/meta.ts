// What a run directory's results.json holds beside the records (DESIGN.md result-record
// contract), and the small helpers every renderer shares. Pure: no files, no processes.
import { UserError } from '../model/errors.ts';
import type { ResultRecord, Verdict } from '../model/verdict.ts';

export interface MachineInfo {
  hostname: string;
  cpus: number;
  memMiB: number;
  /** `os.release()`, e.g. `6.8.0-45-generic`. */
  kernel: string;
  /** Distribution or platform, e.g. `Debian GNU/Linux 12 (bookworm)` or `linux x64`. */
  os: string;
}

/**
 * A result record as results.json holds it: the DESIGN.md contract, plus the Envoy version the
 * cell was probed with. `meshproof run` stamps `envoyVersion` on every record when the run
 * ends, so files from several versions (a matrix run, or merged shards) keep their cells apart.
 */
export type CellRecord = ResultRecord & { envoyVersion?: string; controlPlane?: string; istioVersion?: string };

/** One mocha test of a suite (an `it`, or a hook that failed), as `meshproof run` saw it. */
export interface TestResult {
  /** Suite name: the spec file's name without `.spec.ts` (the records' `suite`). */
  suite: string;
  profile: string;
  /** Full title: the describe titles and the test's, joined with spaces. */
  title: string;
  state: 'passed' | 'failed' | 'pending';
  ms?: number;
  /** The failure: the error's message (and the first lines of its stack). */
  error?: string;
  /** The failure was a UserError (bad input: a config file, a fixture): `meshproof run` exits 2. */
  userError?: boolean;
  envoyVersion?: string;
  /** The Istio release its suite ran on (a suite on istiod; stamped by `meshproof run`). */
  istioVersion?: string;
}

/** One run: where it ran, on what, with which data-plane versions. */
export interface RunMetadata {
  run: string;
  substrate: string;
  profiles: string[];
  /** ISO-8601 instants. */
  started: string;
  finished: string;
  machine: MachineInfo;
  /** Tool → version: `envoy`, `haproxy`, `node`, `istio`, `kernel`, `meshproof`, ... */
  versions: Record<string, string>;
  /** Every Envoy version the run exercised (nightly runs go over several). */
  envoyVersions?: string[];
  /** Set by mergeResults: the metadata of each shard that went into a merged file. */
  shards?: RunMetadata[];
  /** `i/n` when the run was one shard of a matrix (`meshproof run --shard i/n`). */
  shard?: string;
  /** The suites this run (or shard) selected. */
  suites?: string[];
  /** What programmed the Istio suites' sidecars (DESIGN.md `controlPlane`), the Istio release, and how it differs from a default install. */
  controlPlane?: string;
  istioVersion?: string;
  istioDeviations?: { setting: string; why: string }[];
  /** Module, version, Go version and sha256 of every control-plane binary the run used. */
  provenance?: unknown[];
  /** Every Istio release a run over several (`--istio-version a,b`) exercised; `istioVersion` is then absent. */
  istioVersions?: string[];
  /** A run over several versions: each version's own run directory (relative to this one) and what it ran on. */
  passes?: RunPass[];
}

/** One version's own run inside a run over several versions (`envoy-<v>/`, `istio-<v>/`). */
export interface RunPass {
  /** Relative to the run directory, e.g. `istio-1.29.2`. */
  dir: string;
  controlPlane: string;
  envoyVersion: string;
  istioVersion?: string;
}

/** A throughput/latency budget measured by the load suites; `pass` is decided by whoever measured it. */
export interface BudgetResult {
  /** What was measured, e.g. `sentences→age:5000 mtls`. */
  path: string;
  /** e.g. `rps`, `p99`. */
  metric: string;
  value: number;
  limit: number;
  unit: string;
  pass: boolean;
  /** Per-round values, when the budget was measured over several rounds. */
  rounds?: number[];
  /** The Envoy version it was measured with (stamped like CellRecord.envoyVersion). */
  envoyVersion?: string;
  /** The Istio release of the run's istiod, when it ran on one. */
  istioVersion?: string;
}

/** A test (suite, or one scenario of it) that a run decided not to probe, and why. */
export interface SkippedTest {
  profile: string;
  suite: string;
  /** Absent: the whole suite was skipped. */
  scenario?: string;
  reason: string;
}

/** One unit of a run's plan: a suite under one Envoy version (cli/suites.ts Unit, by name). */
export interface PlannedUnit {
  suite: string;
  profile: string;
  envoyVersion?: string;
  /** A suite on istiod: the Istio release it runs on. */
  istioVersion?: string;
}

/** results.json schema: 2 added `planned`, `completed` and `stopped`. */
export const SCHEMA_VERSION = 2;

/**
 * reports/<run>/results.json. Only `records` is required: files written before the metadata
 * existed ({records} only) stay valid. A file without `planned` (written before schema 2) does not
 * say whether its run finished (report/completeness.ts).
 */
export interface ResultsFile {
  schemaVersion?: number;
  /** Every (suite, Envoy version) unit the run (or shard) set out to run. */
  planned?: PlannedUnit[];
  /** The units whose every test ran to its end (passed or not), in the order they finished. */
  completed?: PlannedUnit[];
  /** Why the run stopped before its plan was done: `SIGINT`, `SIGTERM`, or the error that ended it. */
  stopped?: string;
  meta?: RunMetadata;
  records: CellRecord[];
  budgets?: BudgetResult[];
  skipped?: SkippedTest[];
  /** Every mocha test of the run with its outcome (written by `meshproof run`). */
  tests?: TestResult[];
}

/** Parses and checks results.json text; `source` names the file in errors. */
export function parseResultsFile(text: string, source = 'results.json'): ResultsFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc) || !Array.isArray(doc.records)) throw new UserError(`${source}: expected an object with a "records" array`);
  doc.records.forEach((r: unknown, i: number) => {
    if (!isObject(r)) throw new UserError(`${source}: records[${i}] is not an object`);
    for (const k of ['suite', 'scenario', 'from', 'to', 'verdict', 'expected', 'observed'] as const) {
      if (typeof r[k] !== 'string') throw new UserError(`${source}: records[${i}].${k} must be a string`);
    }
    if (typeof r.port !== 'number') throw new UserError(`${source}: records[${i}].port must be a number`);
    if (typeof r.pass !== 'boolean') throw new UserError(`${source}: records[${i}].pass must be a boolean`);
  });
  for (const k of ['budgets', 'skipped', 'tests', 'planned', 'completed'] as const) {
    if (doc[k] !== undefined && !Array.isArray(doc[k])) throw new UserError(`${source}: "${k}" must be an array`);
  }
  for (const k of ['planned', 'completed'] as const) {
    (doc[k] as unknown[] | undefined)?.forEach((u: unknown, i: number) => {
      if (!isObject(u) || typeof u.suite !== 'string') throw new UserError(`${source}: ${k}[${i}] needs a suite (and its profile and envoyVersion)`);
    });
  }
  if (doc.stopped !== undefined && typeof doc.stopped !== 'string') throw new UserError(`${source}: "stopped" must be a string`);
  (doc.tests as unknown[] | undefined)?.forEach((t: unknown, i: number) => {
    if (!isObject(t) || typeof t.suite !== 'string' || typeof t.title !== 'string' || !['passed', 'failed', 'pending'].includes(t.state as string)) {
      throw new UserError(`${source}: tests[${i}] needs a suite, a title and a state (passed, failed or pending)`);
    }
  });
  if (doc.meta !== undefined && !isObject(doc.meta)) throw new UserError(`${source}: "meta" must be an object`);
  return doc as unknown as ResultsFile;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

// ---- shared by the renderers ----------------------------------------------------------

/** How a cell's traffic looked on the wire: the class of its edge and table cell. */
export type EdgeKind = 'mtls' | 'tls' | 'plaintext' | 'denied';

export function edgeKind(verdict: Verdict | string): EdgeKind {
  if (verdict === 'allowed:mtls') return 'mtls';
  if (verdict === 'allowed:tls') return 'tls';
  if (verdict === 'allowed:plaintext') return 'plaintext';
  return 'denied';
}

type Versioned = { envoyVersion?: string; istioVersion?: string };
type CellId = Pick<ResultRecord, 'suite' | 'scenario' | 'from' | 'to' | 'port' | 'protocol'> & Versioned;

// ---- version axes -----------------------------------------------------------------------
// A run over several versions of one thing (`--envoy-version a,b`, `--istio-version a,b`) gets a column per
// value. The axes are the version fields records, tests, budgets and planned units carry; a file's columns are
// the combinations of the axes that vary in it (an Istio pass may also change Envoy: each release's own).

export type VersionAxis = 'istio' | 'envoy';
/** Column order: Istio first (the control plane), then Envoy. */
export const VERSION_AXES: readonly VersionAxis[] = ['istio', 'envoy'];

export const axisValue = (x: Versioned, axis: VersionAxis): string | undefined => (axis === 'istio' ? x.istioVersion : x.envoyVersion) || undefined;

type VersionedFile = { records: Versioned[]; budgets?: Versioned[]; tests?: Versioned[] };

/** The distinct values of one axis on a file's records, budgets and tests, in order of appearance. */
export function axisValuesOf(file: VersionedFile, axis: VersionAxis): string[] {
  const all = [...file.records, ...(file.budgets ?? []), ...(file.tests ?? [])].map((x) => axisValue(x, axis));
  return unique(all.filter((v): v is string => !!v));
}

/** The axes with two or more values in the file (or in any of the files): what its columns are made of. */
export function varyingAxes(...files: VersionedFile[]): VersionAxis[] {
  return VERSION_AXES.filter((a) => files.some((f) => axisValuesOf(f, a).length > 1));
}

/** `istio 1.29.2 · envoy 1.37.0`: the column of a record (test, budget) over the given axes; undefined when it has none of them. */
export function columnLabel(x: Versioned, axes: readonly VersionAxis[]): string | undefined {
  const parts = axes.map((a) => [a, axisValue(x, a)] as const).filter(([, v]) => !!v).map(([a, v]) => `${a} ${v}`);
  return parts.length ? parts.join(' · ') : undefined;
}

/** The identity of a cell across runs: suite / scenario / from → to:port/protocol, and ` @ envoy <v>` when stamped. */
export function cellKey(r: CellId): string {
  return axisCellKey(r, ['envoy']);
}

/** The cell and its value on each of `axes` that it carries: `… @ istio 1.29.2 @ envoy 1.37.0`. */
export function axisCellKey(r: CellId, axes: readonly VersionAxis[]): string {
  return `${baseCellKey(r)}${axes.map((a) => (axisValue(r, a) ? ` @ ${a} ${axisValue(r, a)}` : '')).join('')}`;
}

/** cellKey without the Envoy version: the same cell across versions. */
export function baseCellKey(r: CellId): string {
  return `${r.suite} / ${r.scenario} / ${r.from} → ${r.to}:${r.port}/${r.protocol}`;
}

/** The distinct Envoy versions stamped on a file's records, budgets and tests, in order of appearance. */
export function envoyVersionsOf(file: Pick<ResultsFile, 'records' | 'budgets' | 'tests'>): string[] {
  return axisValuesOf(file, 'envoy');
}

/** The distinct Istio versions on a file's records, budgets and tests, in order of appearance. */
export function istioVersionsOf(file: Pick<ResultsFile, 'records' | 'budgets' | 'tests'>): string[] {
  return axisValuesOf(file, 'istio');
}

/** `scenario · envoy 1.36.4`: how a scenario is named in its column (columnLabel) when a file holds several. */
export function versionedName(name: string, column: string | undefined): string {
  return column ? `${name} · ${column}` : name;
}

/**
 * The file the renderers draw: with two or more values on a version axis, each scenario (and mocha test)
 * is named per column (versionedName), so truth tables, graphs, JUnit test cases and conformance tests
 * stay one per version. With one version or none the file is returned as is. Idempotent.
 */
export function perVersionView(file: ResultsFile): ResultsFile {
  const axes = varyingAxes(file);
  if (!axes.length) return file;
  const name = (n: string, x: Versioned) => {
    const col = columnLabel(x, axes);
    return col && n.endsWith(` · ${col}`) ? n : versionedName(n, col);
  };
  return {
    ...file,
    records: file.records.map((r) => ({ ...r, scenario: name(r.scenario, r) })),
    ...(file.tests ? { tests: file.tests.map((t) => ({ ...t, title: name(t.title, t) })) } : {}),
  };
}

/** `from→to:port/protocol`, the short name of a cell inside one scenario. */
export function cellName(r: Pick<ResultRecord, 'from' | 'to' | 'port' | 'protocol'>): string {
  return `${r.from}→${r.to}:${r.port}/${r.protocol}`;
}

/** The evidence of a failed or notable cell as one line: the cell, its verdict, and evidenceFields. */
export function evidenceLine(r: ResultRecord): string {
  const ev = evidenceFields(r);
  return `${cellName(r)} verdict=${r.verdict} expected=${r.expected} observed=${r.observed}${ev ? ` ${ev}` : ''}`;
}

/** The evidence as `key=value` pairs, nulls left out. */
export function evidenceFields(r: ResultRecord): string {
  const e: Partial<ResultRecord['evidence']> = r.evidence ?? {};
  const fields: [string, unknown][] = [
    ['error', e.error],
    ['status', e.status],
    ['wire', e.wire],
    ['peer', e.peer],
    ['serverIdentity', e.serverIdentity],
    ['servedBy', e.servedBy],
    ['alpn', e.alpn],
    ['xfcc', e.xfcc],
    ['ms', e.ms],
  ];
  return fields
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** Groups preserving first-appearance order (suites and scenarios render in the order they ran). */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

export function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** What the renderers say about the run, from meta when present, else from the records. */
export interface RunHeader {
  run: string;
  substrate: string;
  profiles: string[];
  meta?: RunMetadata;
}

export function runHeader(file: ResultsFile): RunHeader {
  const m = file.meta;
  const recs = file.records;
  return {
    run: m?.run ?? (joinRuns(recs.map((r) => r.run)) || 'unknown'),
    substrate: m?.substrate ?? (unique(recs.map((r) => r.substrate)).join(',') || 'unknown'),
    profiles: m?.profiles ?? unique(recs.map((r) => r.profile)),
    meta: m,
  };
}

/** Run ids as one name: `a+b+c`, or `first+…+last (N runs)` past three. */
export function joinRuns(runs: readonly string[]): string {
  const u = unique(runs);
  return u.length > 3 ? `${u[0]}+…+${u[u.length - 1]} (${u.length} runs)` : u.join('+');
}

export interface Tally {
  cells: number;
  passed: number;
  failed: number;
  mtls: number;
  tls: number;
  plaintext: number;
  denied: number;
}

export function tally(records: readonly ResultRecord[]): Tally {
  const t: Tally = { cells: records.length, passed: 0, failed: 0, mtls: 0, tls: 0, plaintext: 0, denied: 0 };
  for (const r of records) {
    if (r.pass) t.passed++;
    else t.failed++;
    t[edgeKind(r.verdict)]++;
  }
  return t;
}

/** Characters XML 1.0 cannot carry at all (control bytes from a response body, lone surrogates). */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes text for XML/HTML element content and double- or single-quoted attributes. */
export function escapeXml(s: unknown): string {
  return String(s ?? '')
    .replace(XML_INVALID, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** escapeXml, and line breaks kept as character references so attribute values survive normalisation. */
export function escapeXmlAttr(s: unknown): string {
  return escapeXml(s).replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** Milliseconds between two ISO instants, when both parse. */
export function durationMs(started?: string, finished?: string): number | undefined {
  if (!started || !finished) return undefined;
  const a = Date.parse(started);
  const b = Date.parse(finished);
  return Number.isFinite(a) && Number.isFinite(b) ? b - a : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}
