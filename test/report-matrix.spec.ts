// What `meshproof run` adds to results.json and how the reports read it: records stamped with
// their Envoy version (a column per version), the run's mocha tests (JUnit test cases, failed
// tests in the conformance report and the summaries), the release-gate regressions, and
// appendResults also writing into the enclosing run's directory (MESHPROOF_RESULTS_DIR).

import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Evidence, Observed, Verdict } from '../src/harness/model/verdict.ts';
import { conformanceReport } from '../src/harness/report/conformance.ts';
import { renderHtml } from '../src/harness/report/html.ts';
import { renderJUnit } from '../src/harness/report/junit.ts';
import { renderMarkdown } from '../src/harness/report/markdown.ts';
import { versionMatrix } from '../src/harness/report/matrix.ts';
import { cellKey, envoyVersionsOf, perVersionView, type CellRecord, type ResultsFile, type TestResult } from '../src/harness/report/meta.ts';
import { diffRuns, mergeResults, regressions } from '../src/harness/report/render.ts';
import { appendBudgets, appendResults, RESULTS_DIR_ENV } from '../src/harness/report/results.ts';

const ev = (e: Partial<Evidence> = {}): Evidence => ({ peer: null, alpn: null, xfcc: null, status: null, error: null, wire: null, ms: 3, ...e });

function rec(v: string, from: string, to: string, expected: Observed, verdict: Verdict, suite = 'istio-strict-denial'): CellRecord {
  const observed: Observed = verdict.startsWith('allowed') ? 'allowed' : 'denied';
  return { run: `r-${v}`, substrate: 'netns', profile: 'istio', suite, scenario: 'STRICT', from, to, port: 5000, protocol: 'http', expected, observed, verdict, pass: observed === expected, evidence: ev(), envoyVersion: v };
}

// The same three cells on two Envoy versions; on 1.37.0 the naked client gets through.
const V1 = [rec('1.36.4', 'sleep', 'age', 'allowed', 'allowed:mtls'), rec('1.36.4', 'sleep-naked', 'age', 'denied', 'denied:reset'), rec('1.36.4', 'sleep', 'name', 'allowed', 'allowed:mtls')];
const V2 = [rec('1.37.0', 'sleep', 'age', 'allowed', 'allowed:mtls'), rec('1.37.0', 'sleep-naked', 'age', 'denied', 'allowed:plaintext'), rec('1.37.0', 'sleep', 'name', 'allowed', 'allowed:mtls')];
const test = (v: string, title: string, state: TestResult['state'], error?: string, suite = 'istio-strict-denial'): TestResult => ({
  suite, profile: 'istio', title, state, ms: 5, envoyVersion: v, ...(error ? { error } : {}),
});
const MATRIX: ResultsFile = {
  records: [...V1, ...V2],
  tests: [test('1.36.4', 'every cell', 'passed'), test('1.37.0', 'every cell', 'failed', 'AssertionError: sleep-naked → age')],
};

const count = (hay: string, needle: string): number => hay.split(needle).length - 1;

describe('report: Envoy versions', () => {
  it('stamps the version into the cell key, and names scenarios per version only when there are several', () => {
    expect(cellKey(V1[0]!)).to.equal('istio-strict-denial / STRICT / sleep → age:5000/http @ envoy 1.36.4');
    expect(envoyVersionsOf(MATRIX)).to.deep.equal(['1.36.4', '1.37.0']);
    const view = perVersionView(MATRIX);
    expect(view.records.map((r) => r.scenario)).to.deep.equal([...Array(3).fill('STRICT · envoy 1.36.4'), ...Array(3).fill('STRICT · envoy 1.37.0')]);
    expect(view.tests!.map((t) => t.title)).to.deep.equal(['every cell · envoy 1.36.4', 'every cell · envoy 1.37.0']);
    expect(perVersionView(view)).to.deep.equal(view);
    const one: ResultsFile = { records: V1 };
    expect(perVersionView(one)).to.equal(one);
  });

  it('builds the cell × version matrix', () => {
    const m = versionMatrix(MATRIX)!;
    expect(m.versions).to.deep.equal(['1.36.4', '1.37.0']);
    expect(m.rows.map((r) => [r.cell, r.byVersion.map((x) => x?.record.verdict), r.differs, r.wrong])).to.deep.equal([
      ['sleep→age:5000/http', ['allowed:mtls', 'allowed:mtls'], false, false],
      ['sleep-naked→age:5000/http', ['denied:reset', 'allowed:plaintext'], true, true],
      ['sleep→name:5000/http', ['allowed:mtls', 'allowed:mtls'], false, false],
    ]);
    expect(m.rows[1]!.byVersion.map((x) => x?.idx)).to.deep.equal([1, 4]);
    expect(versionMatrix({ records: [...V1, V2[0]!] })!.rows[1]!.byVersion[1]).to.equal(null);
    expect(versionMatrix({ records: V1 })).to.equal(null);
  });

  it('summary.md has a column per version', () => {
    const md = renderMarkdown(MATRIX);
    expect(md).to.include('## Envoy version matrix');
    expect(md).to.include('| suite / scenario | cell | envoy `1.36.4` | envoy `1.37.0` |');
    expect(md).to.include('| istio-strict-denial / STRICT | `sleep-naked→age:5000/http` | ✅ `denied:reset` | ❌ `allowed:plaintext` |');
    expect(md).to.include('3 cells × 2 versions: 1 differ between versions or are wrong.');
    expect(md).to.include('#### ❌ STRICT · envoy 1.37.0');
    expect(renderMarkdown({ records: V1 })).to.not.include('version matrix');
  });

  it('report.html has the matrix (one clickable cell per record) and one truth table per version; its data keeps the records as written', () => {
    const html = renderHtml(MATRIX);
    expect(html).to.include('<section id="version-matrix" data-versions="2" data-differing="1">');
    expect(count(html, 'data-vcell="')).to.equal(6);
    expect(count(html, 'data-cell="')).to.equal(6);
    expect(count(html, 'data-edge="')).to.equal(6);
    expect(count(html, '<article class="scenario"')).to.equal(2);
    expect(html).to.include('data-scenario="STRICT · envoy 1.37.0"');
    expect(html).to.include('"scenario":"STRICT","from":"sleep"');
    expect(renderHtml({ records: V1 })).to.not.include('id="version-matrix"');
  });

  it('junit and the conformance report keep a test per version', () => {
    const x = renderJUnit(MATRIX);
    expect(x).to.include('name="every cell · envoy 1.36.4"');
    expect(x).to.match(/name="every cell · envoy 1.37.0" time="0.005">\s*<failure message="AssertionError: sleep-naked → age — 1 wrong cells: sleep-naked→age:5000\/http allowed:plaintext/);
    const c = conformanceReport(MATRIX);
    expect(c.profiles[0]!.core.failedTests).to.deep.equal(['istio-strict-denial/STRICT · envoy 1.37.0']);
    expect(c.profiles[0]!.core.statistics).to.deep.equal({ Passed: 1, Failed: 1, Skipped: 0 });
  });

  it('diffs a matrix by version; gates pass→fail, transport downgrades and missed budgets', () => {
    const before: ResultsFile = { records: [...V1, ...V1.map((r) => ({ ...r, envoyVersion: '1.37.0' }))] };
    const d = diffRuns(before, MATRIX);
    expect(d.changed.map((c) => c.key)).to.deep.equal(['istio-strict-denial / STRICT / sleep-naked → age:5000/http @ envoy 1.37.0']);
    expect(regressions(d).cells.map((c) => c.why)).to.deep.equal(['pass→fail']);

    const b = { path: 'sleep→age', metric: 'rps', value: 1000, limit: 500, unit: 'req/s', pass: true };
    const a1: ResultsFile = { records: V1, budgets: [b] };
    const a2: ResultsFile = {
      records: [{ ...V1[0]!, verdict: 'allowed:tls' }, { ...V1[1]!, verdict: 'denied:timeout' }, { ...V1[2]!, verdict: 'allowed:plaintext' }],
      budgets: [{ ...b, value: 400, pass: false }],
    };
    const r = regressions(diffRuns(a1, a2));
    expect(r.cells.map((c) => [c.after.from, c.after.to, c.why])).to.deep.equal([['sleep', 'age', 'downgrade'], ['sleep', 'name', 'downgrade']]);
    expect(r.budgets.map((m) => m.key)).to.deep.equal(['sleep→age rps']);
    // Upgrades, and budgets that moved but are still met, are no regression.
    expect(regressions(diffRuns(a2, a1))).to.deep.equal({ cells: [], budgets: [] });
  });
});

describe('report: the mocha tests of a run', () => {
  const RECS = [rec('1.36.4', 'sleep', 'age', 'allowed', 'allowed:mtls'), rec('1.36.4', 'sleep', 'name', 'allowed', 'allowed:mtls', 'istio-port-level')];
  const FILE: ResultsFile = {
    records: [...RECS, rec('1.36.4', 'a', 'b', 'denied', 'allowed:plaintext', 'istio-migration')],
    tests: [
      test('1.36.4', 'every cell', 'passed'),
      test('1.36.4', 'counts no_filter_chain_match', 'failed', 'AssertionError: expected 3 to be above 3\nsuites/istio-strict-denial.spec.ts:33:7'),
      test('1.36.4', '"before all" hook for "every cell"', 'failed', 'Error: pod default/age: container envoy not ready', 'istio-ingress-gateway'),
      test('1.36.4', 'plaintext to 18081', 'pending', undefined, 'istio-port-level'),
      test('1.36.4', 'records only', 'passed', undefined, 'istio-migration'),
    ],
  };

  it('junit: one test case per mocha test; a failed hook is a failure; a pending test is skipped; wrong cells no test explains get their own case', () => {
    const x = renderJUnit(FILE);
    expect(x).to.match(/<testsuites name="meshproof r-1.36.4" tests="6" failures="3" errors="0" skipped="1"/);
    expect(x).to.match(/name="counts no_filter_chain_match" time="0.005">\s*<failure message="AssertionError: expected 3 to be above 3" type="meshproof.TestFailure">AssertionError: expected 3 to be above 3\nsuites\/istio-strict-denial.spec.ts:33:7<\/failure>/);
    expect(x).to.match(/<testsuite name="istio-ingress-gateway"[^>]* tests="1" failures="1"/);
    expect(x).to.include('name="&quot;before all&quot; hook for &quot;every cell&quot;"');
    expect(x).to.match(/name="plaintext to 18081" time="0.005">\s*<skipped message="pending/);
    expect(x).to.match(/<testsuite name="istio-migration"[^>]* tests="2" failures="1"/);
    expect(x).to.match(/<testcase classname="istio-migration" name="probed cells" [^>]*>\s*<failure message="1 of 1 cells wrong/);
  });

  it('the conformance report counts failed tests that no wrong cell explains, and pending ones as skipped, with reasons', () => {
    const c = conformanceReport(FILE);
    expect(c.profiles).to.have.length(1);
    const core = c.profiles[0]!.core;
    expect(core.failedTests).to.deep.equal(['istio-migration/STRICT', 'istio-strict-denial/counts no_filter_chain_match', 'istio-ingress-gateway/"before all" hook for "every cell"']);
    expect(core.failedTestReasons!['istio-ingress-gateway/"before all" hook for "every cell"']).to.equal('Error: pod default/age: container envoy not ready');
    expect(core.skippedTests).to.deep.equal(['istio-port-level/plaintext to 18081']);
    expect(core.skippedTestReasons).to.deep.equal({ 'istio-port-level/plaintext to 18081': 'pending (it.skip, or this.skip() in the test)' });
    expect(core.statistics).to.deep.equal({ Passed: 2, Failed: 3, Skipped: 1 });
  });

  it('a failed test fails the run in summary.md and report.html even when every cell is right', () => {
    const hookOnly: ResultsFile = { records: RECS, tests: [test('1.36.4', '"before all" hook', 'failed', 'Error: boom', 'istio-ingress-gateway')] };
    const md = renderMarkdown(hookOnly);
    expect(md.split('\n')[0]).to.match(/— ❌ failed$/);
    expect(md).to.include('## Failed tests');
    expect(md).to.include('- **istio-ingress-gateway** — "before all" hook: `Error: boom`');
    expect(md).to.include('| ❌ | istio-ingress-gateway | istio | 0 | 0 | 0 | 1 |');
    const html = renderHtml(hookOnly);
    expect(html).to.include('data-result="fail"');
    expect(html).to.include('data-tests="1" data-tests-failed="1"');
    expect(html).to.include('<li data-failed-test="istio-ingress-gateway">');
  });

  it('mergeResults keeps the tests of every shard', () => {
    expect(mergeResults([FILE, { records: [], tests: [test('1.36.4', 'x', 'passed', undefined, 'substrate')] }]).tests).to.have.length(6);
  });
});

describe('report: appendResults into the enclosing run (MESHPROOF_RESULTS_DIR)', () => {
  let dir: string;
  const saved = process.env[RESULTS_DIR_ENV];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-append-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[RESULTS_DIR_ENV];
    else process.env[RESULTS_DIR_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  const read = (d: string) => JSON.parse(readFileSync(join(dir, d, 'results.json'), 'utf8')) as ResultsFile;

  it('appends to the cluster run and to the enclosing run, keeping what each holds', () => {
    delete process.env[RESULTS_DIR_ENV];
    appendResults(join(dir, 'cluster-a'), [V1[0]!]);
    expect(read('cluster-a').records).to.have.length(1);
    process.env[RESULTS_DIR_ENV] = join(dir, 'run');
    appendResults(join(dir, 'cluster-a'), [V1[1]!]);
    appendResults(join(dir, 'cluster-b'), [V1[2]!]);
    appendBudgets(join(dir, 'cluster-b'), [{ path: 'p', metric: 'rps', value: 1, limit: 1, unit: 'req/s', pass: true }], [{ profile: 'cf', suite: 'throughput-budget', scenario: '(c) cf', reason: 'no cf bed yet' }]);
    expect(read('cluster-a').records.map((r) => r.from)).to.deep.equal(['sleep', 'sleep-naked']);
    expect(read('cluster-b').budgets).to.have.length(1);
    const run = read('run');
    expect(run.records.map((r) => `${r.from}→${r.to}`)).to.deep.equal(['sleep-naked→age', 'sleep→name']);
    expect(run.budgets).to.have.length(1);
    expect(run.skipped).to.deep.equal([{ profile: 'cf', suite: 'throughput-budget', scenario: '(c) cf', reason: 'no cf bed yet' }]);
  });

  it('writes once when the cluster run is the enclosing run', () => {
    process.env[RESULTS_DIR_ENV] = join(dir, 'same');
    appendResults(join(dir, 'same'), V1);
    expect(read('same').records).to.have.length(3);
  });
});
