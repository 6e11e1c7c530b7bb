// An interrupted or partial run is never green: results.json says what was planned and what
// finished, and report / merge / diff / --gate call an incomplete run incomplete (exit 1, the
// missing suites named), as do junit.xml, summary.md, report.html and conformance-report.yaml.
// Hand-written results files only; files go to a temp dir, nothing is spawned.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import { diffCommand, mergeCommand, reportCommand } from '../src/harness/cli/reports.ts';
import { completeness, incompleteLine, withUnfinishedAsFailures } from '../src/harness/report/completeness.ts';
import { parseResultsFile, type CellRecord, type PlannedUnit, type ResultsFile, type RunMetadata } from '../src/harness/report/meta.ts';
import { mergeResults, renderReports } from '../src/harness/report/render.ts';

const unit = (suite: string, profile = 'istio', envoyVersion = '1.36.4'): PlannedUnit => ({ suite, profile, envoyVersion });

const cell = (suite: string, from: string, pass = true): CellRecord => ({
  run: 'r1', substrate: 'netns', profile: 'istio', suite, scenario: 'namespace STRICT', from, to: 'age', port: 5000, protocol: 'http',
  expected: 'denied', observed: pass ? 'denied' : 'allowed', verdict: pass ? 'denied:reset' : 'allowed:plaintext', pass,
  evidence: { peer: null, alpn: null, xfcc: null, status: null, error: pass ? 'ECONNRESET' : null, wire: null, ms: 3 }, envoyVersion: '1.36.4',
});

const meta = (run: string, extra: Partial<RunMetadata> = {}): RunMetadata => ({
  run, substrate: 'netns', profiles: ['istio'], started: '2026-12-01T05:00:00.000Z', finished: '2026-12-01T05:01:00.000Z',
  machine: { hostname: 'ci', cpus: 2, memMiB: 4096, kernel: '6.1.0', os: 'Debian GNU/Linux 12 (bookworm)' }, versions: { envoy: '1.36.4' }, ...extra,
});

// Ctrl-C during the second of three suites: one finished, every cell recorded so far is correct.
const INTERRUPTED: ResultsFile = {
  schemaVersion: 2,
  meta: meta('r1', { shard: '1/2' }),
  planned: [unit('istio-strict-denial'), unit('istio-permissive-fallback'), unit('substrate', 'substrate')],
  completed: [unit('istio-strict-denial')],
  stopped: 'SIGINT',
  records: [cell('istio-strict-denial', 'sleep-naked'), cell('istio-permissive-fallback', 'sleep-naked')],
  tests: [{ suite: 'istio-strict-denial', profile: 'istio', title: 'STRICT every cell', state: 'passed', ms: 10, envoyVersion: '1.36.4' }],
};
// The other shard of the same matrix, cancelled before it planned anything of its own: no units.
const EMPTY_SHARD: ResultsFile = { schemaVersion: 2, meta: meta('r2', { shard: '2/2' }), planned: [], completed: [], records: [] };
const COMPLETE: ResultsFile = { ...INTERRUPTED, meta: meta('r3'), completed: [...INTERRUPTED.planned!].reverse(), stopped: undefined };

describe('report: completeness of a run (planned vs finished)', () => {
  it('names the planned suites that did not finish and why the run stopped', () => {
    const c = completeness(INTERRUPTED);
    expect(c).to.deep.include({ recorded: true, complete: false, planned: 3, stopped: 'SIGINT' });
    expect(c.missing.map((u) => u.suite)).to.deep.equal(['istio-permissive-fallback', 'substrate']);
    expect(incompleteLine(c)).to.equal('INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT): istio-permissive-fallback @ envoy 1.36.4, substrate @ envoy 1.36.4');
  });

  it('a run that finished every planned suite is complete, in whatever order they finished', () => {
    const c = completeness(COMPLETE);
    expect(c).to.deep.include({ recorded: true, complete: true, planned: 3, missing: [] });
    expect(incompleteLine(c)).to.equal(null);
  });

  it('the same suite under another Envoy version is another unit', () => {
    const c = completeness({ planned: [unit('substrate', 'substrate', '1.36.4'), unit('substrate', 'substrate', '1.37.0')], completed: [unit('substrate', 'substrate', '1.36.4')] });
    expect(c.missing).to.deep.equal([unit('substrate', 'substrate', '1.37.0')]);
  });

  it('a file written before schema 2 does not record its plan: not called incomplete, but not recorded either', () => {
    expect(completeness({ records: [] } as ResultsFile)).to.deep.include({ recorded: false, complete: true, missing: [] });
  });

  it('results.json with a malformed plan is a one-line UserError', () => {
    expect(() => parseResultsFile(JSON.stringify({ records: [], planned: {} }), 'x.json')).to.throw(UserError, 'x.json: "planned" must be an array');
    expect(() => parseResultsFile(JSON.stringify({ records: [], completed: [{}] }), 'x.json')).to.throw(UserError, 'x.json: completed[0] needs a suite');
    expect(() => parseResultsFile(JSON.stringify({ records: [], stopped: 3 }), 'x.json')).to.throw(UserError, 'x.json: "stopped" must be a string');
  });

  it('merging shards: the union of planned against the union of finished decides', () => {
    const m = mergeResults([INTERRUPTED, EMPTY_SHARD]);
    expect(m.planned).to.have.length(3);
    expect(m.completed).to.deep.equal([unit('istio-strict-denial')]);
    expect(m.stopped).to.equal('SIGINT');
    expect(completeness(m).missing.map((u) => u.suite)).to.deep.equal(['istio-permissive-fallback', 'substrate']);
    // Both shards complete: the merge is complete.
    const done = mergeResults([COMPLETE, { ...EMPTY_SHARD, meta: meta('r2', { shard: '2/2' }) }]);
    expect(completeness(done)).to.deep.include({ complete: false, missingShards: ['1/2'] }, 'COMPLETE has no shard: 1/2 of the split is absent');
    const both = mergeResults([{ ...COMPLETE, meta: meta('r3', { shard: '1/2' }) }, EMPTY_SHARD]);
    expect(completeness(both)).to.deep.include({ complete: true, missing: [], missingShards: [] });
  });

  it('a shard missing from a merge makes it incomplete, named i/n', () => {
    const shard = (i: number): ResultsFile => ({ schemaVersion: 2, meta: meta(`s${i}`, { shard: `${i}/3` }), planned: [unit(`suite-${i}`)], completed: [unit(`suite-${i}`)], records: [] });
    const m = mergeResults([shard(1), shard(3)]);
    const c = completeness(m);
    expect(c.missing).to.deep.equal([]);
    expect(c.missingShards).to.deep.equal(['2/3']);
    expect(incompleteLine(c)).to.equal('INCOMPLETE: shard 2/3 missing from the merge');
  });

  it('a CI matrix of (Envoy version × shard) jobs: a shard missing for one version is named with it', () => {
    const job = (v: string, i: number): ResultsFile => ({
      schemaVersion: 2, meta: meta(`${v}-${i}`, { shard: `${i}/2`, envoyVersions: [v] }), planned: [unit(`suite-${i}`, 'istio', v)], completed: [unit(`suite-${i}`, 'istio', v)], records: [],
    });
    const c = completeness(mergeResults([job('1.36.4', 1), job('1.36.4', 2), job('1.40.0', 1)]));
    expect(c.missingShards).to.deep.equal(['2/2 (envoy 1.40.0)']);
    expect(completeness(mergeResults([job('1.36.4', 1), job('1.36.4', 2), job('1.40.0', 1), job('1.40.0', 2)])).complete).to.equal(true);
  });
});

describe('report: the reports of an incomplete run say so', () => {
  const texts = renderReports(INTERRUPTED);

  it('junit.xml has a failing test case for each suite that did not finish', () => {
    const junit = texts['junit.xml']!;
    const cases = [...junit.matchAll(/<testcase classname="([^"]+)" name="([^"]+ did not finish)"[^>]*>\s*<failure message="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    expect(cases).to.deep.equal([
      ['istio-permissive-fallback', 'istio-permissive-fallback did not finish'],
      ['substrate', 'substrate did not finish'],
    ]);
    expect(junit).to.include('the run stopped (SIGINT) before this suite finished');
    expect(/<testsuites [^>]*failures="(\d+)"/.exec(junit)?.[1]).to.equal('2');
  });

  it('summary.md and report.html read incomplete, not passed', () => {
    const md = texts['summary.md']!;
    expect(md.split('\n')[0]).to.equal('# meshproof run `r1` — ❌ incomplete');
    expect(md).to.include('INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT)');
    expect(md).to.not.include('✅ passed');
    const html = texts['report.html']!;
    expect(html).to.match(/<span class="result fail">incomplete<\/span>/);
    expect(html).to.include('data-incomplete="true"');
  });

  it('conformance-report.yaml fails the profiles of the unfinished suites', () => {
    const conf = parseYaml(texts['conformance-report.yaml']!) as { profiles: { name: string; core: { result: string; failedTests?: string[] } }[] };
    const byName = Object.fromEntries(conf.profiles.map((p) => [p.name, p.core]));
    expect(byName.istio!.result).to.equal('failure');
    expect(byName.istio!.failedTests).to.deep.equal(['istio-permissive-fallback/istio-permissive-fallback did not finish']);
    expect(byName.substrate!.result).to.equal('failure');
  });

  it('a complete run renders without the stand-in tests', () => {
    expect(withUnfinishedAsFailures(COMPLETE)).to.equal(COMPLETE);
    expect(renderReports(COMPLETE)['summary.md']!.split('\n')[0]).to.equal('# meshproof run `r3` — ✅ passed');
  });
});

describe('cli: report, merge, diff and --gate on an incomplete run exit 1 naming the missing suites', () => {
  let dir: string;
  let lines: string[];
  const print = (l: string) => lines.push(l);
  const write = (name: string, f: ResultsFile) => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'results.json'), JSON.stringify(f));
    return join(dir, name);
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-incomplete-'));
    lines = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('report', () => {
    const run = write('run', INTERRUPTED);
    expect(reportCommand(run, print)).to.equal(EXIT.failure);
    expect(lines.at(-1)).to.equal('INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT): istio-permissive-fallback @ envoy 1.36.4, substrate @ envoy 1.36.4');
    expect(readFileSync(join(run, 'junit.xml'), 'utf8')).to.include('substrate did not finish');
    lines = [];
    expect(reportCommand(write('done', COMPLETE), print)).to.equal(EXIT.ok);
    expect(lines.join('\n')).to.not.include('INCOMPLETE');
  });

  it('merge of an interrupted shard with an empty one', () => {
    const code = mergeCommand(join(dir, 'merged'), [write('s1', INTERRUPTED), write('s2', EMPTY_SHARD)], print);
    expect(code).to.equal(EXIT.failure);
    expect(lines).to.include('INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT): istio-permissive-fallback @ envoy 1.36.4, substrate @ envoy 1.36.4');
    const merged = JSON.parse(readFileSync(join(dir, 'merged', 'results.json'), 'utf8')) as ResultsFile;
    expect(merged.schemaVersion).to.equal(2);
    expect(merged.completed).to.deep.equal([unit('istio-strict-denial')]);
  });

  it('diff when either side is incomplete', () => {
    const a = write('a', COMPLETE);
    const b = write('b', INTERRUPTED);
    expect(diffCommand(a, b, print)).to.equal(EXIT.failure);
    expect(lines).to.include('run B: INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT): istio-permissive-fallback @ envoy 1.36.4, substrate @ envoy 1.36.4');
    lines = [];
    expect(diffCommand(a, a, print)).to.equal(EXIT.ok);
  });

  it('--gate against a baseline', () => {
    const base = write('base', COMPLETE);
    const code = mergeCommand(join(dir, 'm'), [write('s1', INTERRUPTED)], print, { baseline: base, gate: true });
    expect(code).to.equal(EXIT.failure);
    // merged alone, shard 1/2 also lacks its sibling
    expect(lines).to.include('  gate: this run cannot pass, it is INCOMPLETE: 2 of 3 planned suites did not finish (stopped: SIGINT): istio-permissive-fallback @ envoy 1.36.4, substrate @ envoy 1.36.4; shard 2/2 missing from the merge');
  });
});
