// conformance-report.yaml, modeled on the Gateway API ConformanceReport
// (kubernetes-sigs/gateway-api conformance/apis/v1): a meshproof profile is a report
// profile, a suite is a feature (core or extended), a (suite, scenario) is a test whose
// ShortName is `suite/scenario`. A mocha test of the run (results.json `tests`) that failed
// without a wrong cell of its suite to explain it (e.g. a hook that could not start the mesh, or
// an assertion on a counter) is a failed test `suite/<test title>`; a pending one is skipped.
// meshproof adds failedTestReasons/skippedTestReasons (test → why). Pure: data in, YAML out.
import { Document, isMap, isScalar, Scalar } from 'yaml';
import type { ResultRecord } from '../model/verdict.ts';
import { cellName, columnLabel, groupBy, perVersionView, runHeader, unique, varyingAxes, type ResultsFile, type SkippedTest, type TestResult } from './meta.ts';

export type Tier = 'core' | 'extended';
export type ConformanceResult = 'success' | 'partial' | 'failure';

export interface Implementation {
  organization: string;
  project: string;
  url: string;
  version: string;
  contact: string[];
  /** meshproof addition: the data-plane versions the run used (envoy, haproxy, istio; several Envoy versions joined with ", "). */
  versions?: Record<string, string>;
  /** meshproof addition: what programmed the Istio sidecars (`istiod`, `emulated`), and how the install differs from a default one. */
  controlPlane?: string;
  deviations?: { setting: string; why: string }[];
}

export interface ConformanceOptions {
  /**
   * Suite → tier; a suite not named is core. A key `<profile>/<suite>` applies to that profile
   * only and wins over a bare `<suite>`. Extended suites that apply to a profile but have no
   * records (nor skips) in it are listed as its unsupportedFeatures.
   */
  tiers?: Record<string, Tier>;
  implementation?: Partial<Implementation>;
  /** Gateway API's `mode` (e.g. `default`, `ambient`); default `default`. */
  mode?: string;
  /** The harness version, written as `meshproofVersion`; default meta.versions.meshproof, else `unknown`. */
  meshproofVersion?: string;
  /** Report date; default meta.finished, else now. */
  date?: string;
}

export interface Statistics {
  Passed: number;
  Failed: number;
  Skipped: number;
}

export interface Status {
  result: ConformanceResult;
  statistics: Statistics;
  failedTests?: string[];
  skippedTests?: string[];
  /** meshproof addition: why each failed test failed (its wrong cells, or the test's error). */
  failedTestReasons?: Record<string, string>;
  /** meshproof addition: why each skipped test was skipped. */
  skippedTestReasons?: Record<string, string>;
}

export interface ExtendedStatus extends Status {
  supportedFeatures?: string[];
  unsupportedFeatures?: string[];
}

export interface ProfileReport {
  name: string;
  summary: string;
  core: Status;
  extended?: ExtendedStatus;
}

export interface ConformanceReport {
  apiVersion: 'gateway.networking.k8s.io/v1';
  kind: 'ConformanceReport';
  date: string;
  meshproofVersion: string;
  mode: string;
  run: string;
  substrate: string;
  implementation: Implementation;
  profiles: ProfileReport[];
}

/** Test ShortName of a (suite, scenario). */
export const testName = (suite: string, scenario: string): string => `${suite}/${scenario}`;

export function conformanceReport(input: ResultsFile, opts: ConformanceOptions = {}): ConformanceReport {
  const file = perVersionView(input);
  const axes = varyingAxes(input);
  const head = runHeader(file);
  const tiers = opts.tiers ?? {};
  const skips = file.skipped ?? [];
  const mocha = file.tests ?? [];
  const profiles = unique([...head.profiles, ...file.records.map((r) => r.profile), ...skips.map((s) => s.profile), ...mocha.filter((t) => t.state !== 'passed').map((t) => t.profile)]);
  const scopeOf = (key: string) => profiles.find((p) => key.startsWith(`${p}/`));

  const reports = profiles.map((profile): ProfileReport => {
    const tierOf = (suite: string): Tier => tiers[`${profile}/${suite}`] ?? tiers[suite] ?? 'core';
    const recs = file.records.filter((r) => r.profile === profile);
    const skipped = skips.filter((s) => s.profile === profile);
    // A failed mocha test counts only when no wrong cell of its suite (and version column) explains it.
    const explained = new Set(file.records.filter((r) => !r.pass).map((r) => `${r.suite}\u0000${columnLabel(r, axes) ?? ''}`));
    const tests = mocha.filter((t) => t.profile === profile && (t.state === 'pending' || (t.state === 'failed' && !explained.has(`${t.suite}\u0000${columnLabel(t, axes) ?? ''}`))));
    const core = status(recs.filter((r) => tierOf(r.suite) === 'core'), skipped.filter((s) => tierOf(s.suite) === 'core'), tests.filter((t) => tierOf(t.suite) === 'core'));
    const seen = new Set([...recs.map((r) => r.suite), ...skipped.map((s) => s.suite), ...tests.map((t) => t.suite)]);
    const extRecs = recs.filter((r) => tierOf(r.suite) === 'extended');
    const extSkips = skipped.filter((s) => tierOf(s.suite) === 'extended');
    const extTests = tests.filter((t) => tierOf(t.suite) === 'extended');
    const supported = unique([...extRecs.map((r) => r.suite), ...extSkips.map((s) => s.suite), ...extTests.map((t) => t.suite)]);
    const unsupported = unique(
      Object.keys(tiers)
        .map((key) => {
          const scope = scopeOf(key);
          if (scope !== undefined && scope !== profile) return undefined;
          const suite = scope === undefined ? key : key.slice(scope.length + 1);
          return tierOf(suite) === 'extended' && !seen.has(suite) ? suite : undefined;
        })
        .filter((x): x is string => x !== undefined),
    );
    const report: ProfileReport = { name: profile, summary: '', core };
    if (supported.length || unsupported.length) {
      const ext: ExtendedStatus = status(extRecs, extSkips, extTests);
      if (supported.length) ext.supportedFeatures = supported;
      if (unsupported.length) ext.unsupportedFeatures = unsupported;
      report.extended = ext;
    }
    report.summary = summary(report);
    return report;
  });

  const versions = head.meta?.versions ?? {};
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'ConformanceReport',
    date: opts.date ?? head.meta?.finished ?? new Date().toISOString(),
    meshproofVersion: opts.meshproofVersion ?? versions.meshproof ?? 'unknown',
    mode: opts.mode ?? 'default',
    run: head.run,
    substrate: head.substrate,
    implementation: {
      organization: opts.implementation?.organization ?? 'meshproof',
      project: opts.implementation?.project ?? (head.profiles.join('+') || 'unknown'),
      url: opts.implementation?.url ?? '',
      version: opts.implementation?.version ?? versions.envoy ?? 'unknown',
      contact: opts.implementation?.contact ?? [],
      ...dataPlaneVersions(head.meta?.versions ?? {}, head.meta?.envoyVersions, head.meta?.istioVersions),
      ...(head.meta?.controlPlane ? { controlPlane: head.meta.controlPlane } : {}),
      ...(head.meta?.istioDeviations?.length ? { deviations: head.meta.istioDeviations } : {}),
    },
    profiles: reports,
  };
}

/** The data planes' versions from the run metadata, when it has any. */
function dataPlaneVersions(versions: Record<string, string>, envoyVersions?: string[], istioVersions?: string[]): { versions?: Record<string, string> } {
  const out: Record<string, string> = {};
  for (const k of ['envoy', 'haproxy', 'istio']) if (versions[k]) out[k] = versions[k];
  if (envoyVersions && envoyVersions.length > 1) out.envoy = envoyVersions.join(', ');
  if (istioVersions && istioVersions.length > 1) out.istio = istioVersions.join(', ');
  return Object.keys(out).length ? { versions: out } : {};
}

/** At most this many wrong cells are named in a failed test's reason. */
const REASON_CELLS = 5;

/**
 * A test fails when any of its cells is wrong (or it is a failed mocha test, see the header);
 * Gateway API: any failure → failure, else any skip → partial.
 */
function status(recs: ResultRecord[], skipped: SkippedTest[], tests: TestResult[] = []): Status {
  const failed: string[] = [];
  const failedReasons: Record<string, string> = {};
  let passed = 0;
  for (const [key, cells] of groupBy(recs, (r) => testName(r.suite, r.scenario))) {
    const wrong = cells.filter((c) => !c.pass);
    if (!wrong.length) {
      passed++;
      continue;
    }
    failed.push(key);
    const named = wrong.slice(0, REASON_CELLS).map((r) => `${cellName(r)} ${r.verdict} (expected ${r.expected})`);
    failedReasons[key] = `${wrong.length} of ${cells.length} cells wrong: ${named.join('; ')}${wrong.length > REASON_CELLS ? '; …' : ''}`;
  }
  for (const t of tests.filter((x) => x.state === 'failed')) {
    const key = testName(t.suite, t.title);
    if (failedReasons[key] !== undefined) continue;
    failed.push(key);
    failedReasons[key] = (t.error ?? 'failed').split('\n')[0]!;
  }
  const skippedReasons: Record<string, string> = {};
  for (const s of skipped) skippedReasons[s.scenario === undefined ? s.suite : testName(s.suite, s.scenario)] ??= s.reason;
  for (const t of tests.filter((x) => x.state === 'pending')) skippedReasons[testName(t.suite, t.title)] ??= 'pending (it.skip, or this.skip() in the test)';
  const skippedTests = Object.keys(skippedReasons);
  const st: Status = {
    result: failed.length ? 'failure' : skippedTests.length ? 'partial' : 'success',
    statistics: { Passed: passed, Failed: failed.length, Skipped: skippedTests.length },
  };
  if (failed.length) st.failedTests = failed;
  if (skippedTests.length) st.skippedTests = skippedTests;
  if (failed.length) st.failedTestReasons = failedReasons;
  if (skippedTests.length) st.skippedTestReasons = skippedReasons;
  return st;
}

/** Gateway API's ProfileReport.summary wording ("Core tests succeeded. Extended tests failed with 1 test failures."). */
function summary(p: ProfileReport): string {
  const one = (tier: string, s: Status) => {
    if (s.result === 'failure') return `${tier} tests failed with ${s.statistics.Failed} test failures.`;
    if (s.result === 'partial') return `${tier} tests partially succeeded with ${s.statistics.Skipped} test skips.`;
    return `${tier} tests succeeded.`;
  };
  return [one('Core', p.core), p.extended ? one('Extended', p.extended) : ''].filter(Boolean).join(' ');
}

export function renderConformanceYaml(file: ResultsFile, opts: ConformanceOptions = {}): string {
  const report = conformanceReport(file, opts);
  const doc = new Document(report);
  doc.commentBefore =
    ' meshproof ConformanceReport, shaped like the Gateway API ConformanceReport\n' +
    ' (gateway.networking.k8s.io/v1): profiles are meshproof profiles, features are suites,\n' +
    ' tests are `suite/scenario`; a test fails when any of its probed cells is wrong.';
  const note = (key: string, text: string) => {
    if (!isMap(doc.contents)) return;
    const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === key);
    if (pair && isScalar(pair.key)) pair.key.commentBefore = text;
  };
  note(
    'meshproofVersion',
    ' In place of gatewayAPIVersion: meshproof tests a mesh against its own suites, not\n' +
      ' against a Gateway API release, so the version that defines the tests is the harness version.',
  );
  note('run', ' meshproof additions: the run id (reports/<run>/) and the substrate it ran on.');
  // Quoted like Gateway API's reports, so YAML 1.1 readers keep the date a string.
  const date = isMap(doc.contents) ? doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'date') : undefined;
  if (date && isScalar(date.value)) date.value.type = Scalar.QUOTE_DOUBLE;
  return doc.toString({ lineWidth: 0 });
}
