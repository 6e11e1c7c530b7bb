// A run over two Istio versions (`meshproof run --istio-version 1.28.2,1.29.2`) as the reports draw it: the same
// version-matrix machinery as for Envoy versions, with a column per Istio release (and the Envoy it ran with when
// that changed too), scenarios and tests named per column, diff keys by release, each release's own run (and its
// ConformanceReport) named in the top-level summary, and merged shards keeping the Istio-units load table.
// Two hand-made releases' records; every expected cell below is written out by hand.

import { expect } from 'chai';
import type { Evidence, Observed, Verdict } from '../src/harness/model/verdict.ts';
import type { LoadRunRecord, WithLoadRuns } from '../src/harness/load/report.ts';
import type { RatePathFigures } from '../src/harness/load/rate-summary.ts';
import { completeness, incompleteLine } from '../src/harness/report/completeness.ts';
import { conformanceReport } from '../src/harness/report/conformance.ts';
import { renderHtml } from '../src/harness/report/html.ts';
import { renderJUnit } from '../src/harness/report/junit.ts';
import { renderMarkdown } from '../src/harness/report/markdown.ts';
import { versionMatrix } from '../src/harness/report/matrix.ts';
import type { CellRecord, ResultsFile, RunMetadata, RunPass, TestResult } from '../src/harness/report/meta.ts';
import { diffRuns, mergeResults, regressions } from '../src/harness/report/render.ts';

const ev = (e: Partial<Evidence> = {}): Evidence => ({ peer: null, alpn: null, xfcc: null, status: null, error: null, wire: null, ms: 3, ...e });

function rec(istio: string, envoy: string, from: string, to: string, expected: Observed, verdict: Verdict): CellRecord {
  const observed: Observed = verdict.startsWith('allowed') ? 'allowed' : 'denied';
  return {
    run: `r-istio-${istio}`, substrate: 'netns', profile: 'istio', suite: 'istio-strict-denial', scenario: 'namespace STRICT', from, to, port: 5000, protocol: 'http',
    expected, observed, verdict, pass: observed === expected, evidence: ev(), controlPlane: 'istiod', istioVersion: istio, envoyVersion: envoy,
  };
}
const test = (istio: string, envoy: string, state: TestResult['state'], error?: string): TestResult => ({
  suite: 'istio-strict-denial', profile: 'istio', title: 'every cell', state, ms: 7, envoyVersion: envoy, istioVersion: istio, ...(error ? { error } : {}),
});

// Each release with its own Envoy (versions.ts: 1.28.2 → 1.36.4, 1.29.2 → 1.37.0); on 1.29.2 the naked client gets through.
const I1 = [rec('1.28.2', '1.36.4', 'sleep', 'name-v1', 'allowed', 'allowed:mtls'), rec('1.28.2', '1.36.4', 'sleep-naked', 'name-v1', 'denied', 'denied:reset'), rec('1.28.2', '1.36.4', 'sleep', 'age', 'allowed', 'allowed:mtls')];
const I2 = [rec('1.29.2', '1.37.0', 'sleep', 'name-v1', 'allowed', 'allowed:mtls'), rec('1.29.2', '1.37.0', 'sleep-naked', 'name-v1', 'denied', 'allowed:plaintext'), rec('1.29.2', '1.37.0', 'sleep', 'age', 'allowed', 'allowed:tls')];
const PASSES: RunPass[] = [
  { dir: 'istio-1.28.2', controlPlane: 'istiod', envoyVersion: '1.36.4', istioVersion: '1.28.2' },
  { dir: 'istio-1.29.2', controlPlane: 'istiod', envoyVersion: '1.37.0', istioVersion: '1.29.2' },
];
const META: RunMetadata = {
  run: 'r', substrate: 'netns', profiles: ['istio'], started: '2026-12-01T10:00:00.000Z', finished: '2026-12-01T10:04:00.000Z',
  machine: { hostname: 'ci', cpus: 2, memMiB: 4096, kernel: '6.1.0', os: 'Debian GNU/Linux 12 (bookworm)' },
  versions: { meshproof: '0.1.0', envoy: '1.36.4, 1.37.0', istio: '1.28.2, 1.29.2' }, envoyVersions: ['1.36.4', '1.37.0'],
  controlPlane: 'istiod', istioVersions: ['1.28.2', '1.29.2'], passes: PASSES,
};
const PAIRED: ResultsFile = {
  meta: META,
  records: [...I1, ...I2],
  tests: [test('1.28.2', '1.36.4', 'passed'), test('1.29.2', '1.37.0', 'failed', 'AssertionError: sleep-naked → name-v1')],
};
// `--istio-version 1.28.2,1.29.2 --envoy-version 1.36.4`: only the release differs.
const SAME_ENVOY: ResultsFile = {
  records: [...I1, ...I2.map((r) => ({ ...r, envoyVersion: '1.36.4' }))],
  tests: [test('1.28.2', '1.36.4', 'passed'), test('1.29.2', '1.36.4', 'failed', 'AssertionError: sleep-naked → name-v1')],
};

const count = (hay: string, needle: string): number => hay.split(needle).length - 1;

describe('report: a column per Istio version', () => {
  it('the matrix has one column per release, in run order, and one row per cell', () => {
    const m = versionMatrix(SAME_ENVOY)!;
    expect(m.axes).to.deep.equal(['istio']);
    expect(m.versions).to.deep.equal(['1.28.2', '1.29.2']);
    expect(m.columns.map((c) => c.label)).to.deep.equal(['istio 1.28.2', 'istio 1.29.2']);
    expect(m.rows.map((r) => [r.cell, r.byVersion.map((x) => x?.record.verdict), r.differs, r.wrong])).to.deep.equal([
      ['sleep→name-v1:5000/http', ['allowed:mtls', 'allowed:mtls'], false, false],
      ['sleep-naked→name-v1:5000/http', ['denied:reset', 'allowed:plaintext'], true, true],
      ['sleep→age:5000/http', ['allowed:mtls', 'allowed:tls'], true, false],
    ]);
    // a release paired with its own Envoy: the column says both
    const p = versionMatrix(PAIRED)!;
    expect(p.axes).to.deep.equal(['istio', 'envoy']);
    expect(p.columns.map((c) => c.label)).to.deep.equal(['istio 1.28.2 · envoy 1.36.4', 'istio 1.29.2 · envoy 1.37.0']);
    expect(p.versions).to.deep.equal(['1.28.2 · 1.36.4', '1.29.2 · 1.37.0']);
    // one release only: no matrix
    expect(versionMatrix({ records: I1 })).to.equal(null);
  });

  it('summary.md: the Istio version matrix with a column per release, scenarios per release, and each release\'s own run with its ConformanceReport', () => {
    const md = renderMarkdown(SAME_ENVOY);
    expect(md).to.include('## Istio version matrix');
    expect(md).to.not.include('## Envoy version matrix');
    expect(md).to.include('| suite / scenario | cell | istio `1.28.2` | istio `1.29.2` |');
    expect(md).to.include('| istio-strict-denial / namespace STRICT | `sleep→name-v1:5000/http` | ✅ `allowed:mtls` | ✅ `allowed:mtls` |');
    expect(md).to.include('| istio-strict-denial / namespace STRICT | `sleep-naked→name-v1:5000/http` | ✅ `denied:reset` | ❌ `allowed:plaintext` |');
    expect(md).to.include('| istio-strict-denial / namespace STRICT | `sleep→age:5000/http` | ✅ `allowed:mtls` | ✅ `allowed:tls` |');
    expect(md).to.include('3 cells × 2 versions: 2 differ between versions or are wrong.');
    expect(md).to.include('#### ✅ namespace STRICT · istio 1.28.2');
    expect(md).to.include('#### ❌ namespace STRICT · istio 1.29.2');

    const paired = renderMarkdown(PAIRED);
    expect(paired).to.include('## Istio × Envoy version matrix');
    expect(paired).to.include('| suite / scenario | cell | istio `1.28.2` · envoy `1.36.4` | istio `1.29.2` · envoy `1.37.0` |');
    expect(paired).to.include('| istio-strict-denial / namespace STRICT | `sleep-naked→name-v1:5000/http` | ✅ `denied:reset` | ❌ `allowed:plaintext` |');
    expect(paired).to.include('| istio versions | `1.28.2`, `1.29.2` |');
    expect(paired).to.include("## Each version's own run");
    expect(paired).to.include('| istio `1.28.2` · envoy `1.36.4` | istiod | `istio-1.28.2/` | [istio-1.28.2/conformance-report.yaml](istio-1.28.2/conformance-report.yaml) | [summary.md](istio-1.28.2/summary.md) |');
    expect(paired).to.include('| istio `1.29.2` · envoy `1.37.0` | istiod | `istio-1.29.2/` | [istio-1.29.2/conformance-report.yaml](istio-1.29.2/conformance-report.yaml) | [summary.md](istio-1.29.2/summary.md) |');
    expect(renderMarkdown({ records: I2 })).to.not.include('version matrix');
  });

  it('report.html: a clickable cell per record in a column per release, a truth table per release, and links to each release\'s reports', () => {
    const html = renderHtml(SAME_ENVOY);
    expect(html).to.include('<section id="version-matrix" data-versions="2" data-differing="2"><h2 data-axes="istio">Istio version matrix</h2>');
    expect(html).to.include('<th scope="col">istio 1.28.2</th><th scope="col">istio 1.29.2</th>');
    expect(count(html, 'data-vcell="')).to.equal(6);
    expect(count(html, 'data-version="1.28.2"')).to.equal(3);
    expect(count(html, 'data-version="1.29.2"')).to.equal(3);
    expect(html).to.include('data-vcell="plaintext" data-idx="4" data-pass="false" data-version="1.29.2"');
    expect(html).to.include('data-vcell="denied" data-idx="1" data-pass="true" data-version="1.28.2"');
    expect(count(html, '<article class="scenario"')).to.equal(2);
    expect(html).to.include('data-scenario="namespace STRICT · istio 1.28.2"');
    expect(html).to.include('data-scenario="namespace STRICT · istio 1.29.2"');

    const paired = renderHtml(PAIRED);
    expect(paired).to.include('<h2 data-axes="istio,envoy">Istio × Envoy version matrix</h2>');
    expect(paired).to.include('<th scope="col">istio 1.28.2 · envoy 1.36.4</th><th scope="col">istio 1.29.2 · envoy 1.37.0</th>');
    expect(count(paired, '<li data-pass-dir="')).to.equal(2);
    expect(paired).to.include('<a href="istio-1.29.2/conformance-report.yaml" data-conformance>conformance-report.yaml</a>');
    expect(paired).to.include('<a href="istio-1.28.2/report.html">istio-1.28.2/</a>');
    expect(renderHtml({ records: I1 })).to.not.include('id="version-matrix"');
  });

  it('junit and the conformance report keep a test per release; the conformance report names both releases', () => {
    const x = renderJUnit(SAME_ENVOY);
    expect(x).to.include('name="every cell · istio 1.28.2"');
    expect(x).to.match(/name="every cell · istio 1.29.2" time="0.007">\s*<failure message="AssertionError: sleep-naked → name-v1 — 1 wrong cells: sleep-naked→name-v1:5000\/http allowed:plaintext/);
    const c = conformanceReport(SAME_ENVOY);
    expect(c.profiles[0]!.core.failedTests).to.deep.equal(['istio-strict-denial/namespace STRICT · istio 1.29.2']);
    expect(c.profiles[0]!.core.statistics).to.deep.equal({ Passed: 1, Failed: 1, Skipped: 0 });
    const p = conformanceReport(PAIRED);
    expect(p.profiles[0]!.core.failedTests).to.deep.equal(['istio-strict-denial/namespace STRICT · istio 1.29.2 · envoy 1.37.0']);
    expect(p.implementation.versions).to.deep.equal({ envoy: '1.36.4, 1.37.0', istio: '1.28.2, 1.29.2' });
    expect(p.implementation.controlPlane).to.equal('istiod');
  });

  it('diffs by release when a run covers several; the gate sees the cell that failed and the one that lost mTLS on 1.29.2', () => {
    const before: ResultsFile = { records: [...I1, ...I1.map((r) => ({ ...r, istioVersion: '1.29.2' }))] };
    const d = diffRuns(before, SAME_ENVOY);
    expect(d.changed.map((ch) => ch.key)).to.deep.equal([
      'istio-strict-denial / namespace STRICT / sleep-naked → name-v1:5000/http @ istio 1.29.2',
      'istio-strict-denial / namespace STRICT / sleep → age:5000/http @ istio 1.29.2',
    ]);
    expect(regressions(d).cells.map((ch) => ch.why)).to.deep.equal(['pass→fail', 'downgrade']);
    expect(d.added).to.deep.equal([]);
    expect(d.removed).to.deep.equal([]);
  });

  it('a unit that did not finish is named with its release', () => {
    const file: ResultsFile = {
      records: I1,
      planned: [
        { suite: 'istio-strict-denial', profile: 'istio', envoyVersion: '1.36.4', istioVersion: '1.28.2' },
        { suite: 'istio-strict-denial', profile: 'istio', envoyVersion: '1.37.0', istioVersion: '1.29.2' },
      ],
      completed: [{ suite: 'istio-strict-denial', profile: 'istio', envoyVersion: '1.36.4', istioVersion: '1.28.2' }],
    };
    expect(incompleteLine(completeness(file))).to.equal('INCOMPLETE: 1 of 2 planned suites did not finish: istio-strict-denial @ istio 1.29.2 · envoy 1.37.0');
  });

  it('shards of two releases\' runs merged: a shard missing from one release\'s split is named with its release, even with the same Envoy', () => {
    const unit = (suite: string, istio: string) => ({ suite, profile: 'istio', envoyVersion: '1.36.4', istioVersion: istio });
    const shard = (istio: string, i: number): ResultsFile => ({
      schemaVersion: 2, meta: { ...META, run: `${istio}-${i}`, shard: `${i}/2`, envoyVersions: ['1.36.4'], istioVersion: istio, istioVersions: undefined, passes: undefined },
      planned: [unit(`istio-suite-${i}`, istio)], completed: [unit(`istio-suite-${i}`, istio)], records: [],
    });
    const merged = mergeResults([shard('1.28.2', 1), shard('1.28.2', 2), shard('1.29.2', 1)]);
    expect(completeness(merged).missingShards).to.deep.equal(['2/2 (istio 1.29.2 · envoy 1.36.4)']);
    expect(merged.meta?.istioVersions).to.deep.equal(['1.28.2', '1.29.2']);
    expect(merged.meta?.controlPlane).to.equal('istiod');
  });
});

describe('report: merging keeps the throughput figures in Istio\'s units', () => {
  const row = (istio: string): RatePathFigures => ({
    path: 'istio-mtls', letter: 'b', description: 'sidecar pair under STRICT', controlPlane: 'istiod', substrate: 'netns', istioVersion: istio, generator: 'fortio',
    rate: 1000, connections: 2, payloadBytes: 1024, achievedRps: 999.6, latencyMs: { p50: 0.5, p90: 0.8, p99: 1.2 }, latencyAddedMs: { p50: 0.2, p90: 0.25, p99: 0.4 },
    vcpuPer1kRps: { 'client-sidecar': 0.171 }, rssMiB: { 'client-sidecar': 48.5 }, dataplaneVcpuPer1kRps: 0.336, appVcpuPer1kRps: {},
    processes: [{ role: 'client-sidecar', kind: 'dataplane', pod: 'sleep', container: 'istio-proxy', comm: 'envoy', workers: 2 }],
    errors: 0, rounds: [1, 2, 3].map((round) => ({ round, achievedRps: 999.6, latencyMs: { p50: 0.5, p90: 0.8, p99: 1.2 }, latencyAddedMs: { p50: 0.2, p90: 0.25, p99: 0.4 }, vcpuPer1kRps: { 'client-sidecar': 0.171 }, rssMiB: { 'client-sidecar': 48.5 }, errors: 0, foreignCpus: 0, others: [], disturbed: false })), validRounds: 3, voidRounds: [], disturbedRounds: [],
    spread: { achievedRps: 0.001, latencyAddedMs: { p50: 0.01, p90: 0.04, p99: 0.05 }, vcpuPer1kRps: { 'client-sidecar': 0.03 }, dataplaneVcpuPer1kRps: 0.03, rssMiB: { 'client-sidecar': 0.01 } },
  });
  const loadRun = (istio: string): LoadRunRecord => ({
    suite: 'throughput-budget', runDir: `/r/istio-${istio}`, rate: 1000, payloadBytes: 1024, connections: [2], rounds: 3, durationS: 10,
    fortio: { path: '/cache/fortio', module: 'fortio.org/fortio', moduleVersion: 'v1.68.2', sha256: 'ab12' }, rows: [row(istio)], warnings: [],
  });
  const shard = (istio: string): ResultsFile & WithLoadRuns => ({ records: [], loadRuns: [loadRun(istio)] });

  it('mergeResults carries every shard\'s loadRuns, and summary.md and report.html draw a row per release', () => {
    const merged = mergeResults([shard('1.28.2'), shard('1.29.2')]) as ResultsFile & WithLoadRuns;
    expect(merged.loadRuns?.map((l) => l.runDir)).to.deep.equal(['/r/istio-1.28.2', '/r/istio-1.29.2']);
    const md = renderMarkdown(merged);
    expect(md).to.include("## Throughput in Istio's units");
    expect(md).to.include('| (b) istio-mtls | istiod 1.28.2 | 2 | 1000/1000 | 3/3 |');
    expect(md).to.include('| (b) istio-mtls | istiod 1.29.2 | 2 | 1000/1000 | 3/3 |');
    expect(count(md, '| (b) istio-mtls |')).to.equal(2);
    const html = renderHtml(merged);
    expect(count(html, '<tr data-load-row="istio-mtls">')).to.equal(2);
    expect(html).to.include('<td>(b) istio-mtls c=2 · istiod 1.29.2</td>');
  });
});
