// The `meshproof` command without root: --help everywhere, argument errors (one line, exit 2,
// nothing provisioned), the suite → profile mapping, the --shard split, and report / diff / merge
// (with a baseline gate) on hand-written run directories in a temp dir, all in this process; the real process is
// test/integration/cli.spec.ts.

import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import { matrixUnits, parseList, parseShard, profileOf, selectSuites, suiteName, type SuiteFile } from '../src/harness/cli/suites.ts';
import type { ResultsFile } from '../src/harness/report/meta.ts';
import { diffRuns, regressions, REPORT_FILES } from '../src/harness/report/render.ts';
import { rec, SHARD1, SHARD2 } from './lib/runs.ts';
import { cli } from './lib/cli.ts';


const SUITES: SuiteFile[] = ['c2c-xfcc', 'cf-route-integrity', 'istio-permissive-fallback', 'istio-strict-denial', 'substrate'].map((name) => ({ name, file: `/x/suites/${name}.spec.ts`, profile: profileOf(name) }));

describe('cli: --help and usage errors', () => {
  it('prints help for the program and every command, exit 0', async () => {
    for (const args of [['--help'], ...['run', 'report', 'diff', 'merge', 'doctor', 'up', 'exec', 'down', 'ls', 'janitor'].map((c) => [c, '--help'])]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).to.equal(EXIT.ok);
      expect(r.out, args.join(' ')).to.match(/^Usage: meshproof/);
    }
    const run = await cli('run', '--help');
    for (const flag of ['--substrate', '--profile', '--suite', '--envoy-version', '--out', '--baseline', '--gate', '--shard']) expect(run.out).to.include(flag);
    expect(run.out).to.not.include('--run-id'); // internal, hidden
    expect(run.out).to.include('Exit codes: 0 all pass; 1');
  });

  it('exits 2 on an unknown command or option', async () => {
    expect((await cli('nope')).code).to.equal(EXIT.usage);
    const r = await cli('run', '--bogus');
    expect(r.code).to.equal(EXIT.usage);
    expect(r.err).to.include("unknown option '--bogus'");
    expect((await cli('diff', 'only-one')).code).to.equal(EXIT.usage);
  });

  describe('run: a bad flag is one line on stderr, exit 2, before anything is provisioned', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'meshproof-cli-'));
      mkdirSync(join(dir, 'used'));
      writeFileSync(join(dir, 'used', 'results.json'), JSON.stringify({ records: [] }));
      writeFileSync(join(dir, 'not-results.json'), '{"cells": []}');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const cases: [string, string[], RegExp][] = [
      ['unknown profile', ['--profile', 'istio,nope'], /^meshproof: unknown profile "nope": known profiles are .*\bistio\b.*\bsubstrate\b/],
      ['unknown suite', ['--suite', 'istio-strict-denial,nope'], /^meshproof: unknown suite "nope": known suites are .*istio-strict-denial.*substrate/],
      ['suite outside the profile', ['--suite', 'substrate', '--profile', 'istio'], /^meshproof: no suite is both in --suite substrate and in --profile istio/],
      ['bad shard', ['--shard', '0/3'], /^meshproof: invalid --shard "0\/3": expected i\/n/],
      ['shard past n', ['--shard', '4/3'], /invalid --shard/],
      ['gate without baseline', ['--gate'], /^meshproof: --gate needs --baseline/],
      ['unknown substrate', ['--substrate', 'lxc'], /^meshproof: --substrate lxc: unknown substrate; the substrates are netns, docker, kind: use --substrate netns, docker, kind$/m],
      ['the emulation on kind', ['--substrate', 'kind', '--control-plane', 'emulated'], /^meshproof: --control-plane emulated on kind: the kind substrate runs Istio's own istiod/m],
      ['--kubeconfig without kind', ['--kubeconfig', '/nonexistent/kubeconfig', '--image-registry', 'localhost:5001'], /^meshproof: --kubeconfig and --image-registry run the kind substrate's suites on a cluster you already have: add --substrate kind$/m],
      ['--kubeconfig without a registry', ['--substrate', 'kind', '--kubeconfig', '/nonexistent/kubeconfig'], /^meshproof: --kubeconfig \/nonexistent\/kubeconfig needs --image-registry localhost:<port>/m],
      ['a registry not on loopback', ['--substrate', 'kind', '--kubeconfig', '/nonexistent/kubeconfig', '--image-registry', 'registry.example.com:5000'], /^meshproof: --image-registry registry\.example\.com:5000: meshproof pushes from its own engine/m],
      ['a profile kind does not run', ['--substrate', 'kind', '--profile', 'cf'], /^meshproof: --substrate kind runs only the suites of profile istio \(on istiod\), not profile cf: /m],
      ['bad envoy version', ['--envoy-version', '1.36.4,latest'], /^meshproof: invalid envoy version "latest"/],
      ['missing baseline', ['--baseline', '/nonexistent/results.json'], /does not exist/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const r = await cli('run', ...args, '--out', join(dir, 'out'));
        expect(r.code).to.equal(EXIT.usage);
        expect(r.err).to.match(message);
        expect(r.err.trim().split('\n'), 'one line').to.have.length(1);
        expect(r.out).to.equal('');
        expect(existsSync(join(dir, 'out'))).to.equal(false);
      });
    }

    it('a baseline that is not a results file, and an --out that already holds results', async () => {
      const r = await cli('run', '--baseline', join(dir, 'not-results.json'));
      expect(r.code).to.equal(EXIT.usage);
      expect(r.err).to.match(/not-results\.json: expected an object with a "records" array/);
      const u = await cli('run', '--out', join(dir, 'used'));
      expect(u.code).to.equal(EXIT.usage);
      expect(u.err).to.match(/results\.json already exists: choose another --out/);
    });
  });
});

describe('cli: suites, profiles and shards', () => {
  it('maps suite files to profiles by name prefix', () => {
    expect(['substrate', 'istio-strict-denial', 'cf-tcp-routes-tls', 'c2c-xfcc', 'contrast-tproxy', 'throughput-budget', 'other-thing'].map(profileOf))
      .to.deep.equal(['substrate', 'istio', 'cf', 'c2c', 'contrast', 'load', 'other']);
    expect(suiteName('suites/istio-port-level.spec.ts')).to.equal('istio-port-level');
    expect(suiteName('istio-port-level.spec.ts')).to.equal('istio-port-level');
    expect(parseList(' a, b,,a ')).to.deep.equal(['a', 'b']);
    expect(parseList(' , ')).to.equal(undefined);
  });

  it('selects by --suite and --profile, in name order', () => {
    expect(selectSuites(SUITES, {}).map((s) => s.name)).to.deep.equal(SUITES.map((s) => s.name));
    expect(selectSuites(SUITES, { profiles: ['istio', 'c2c'] }).map((s) => s.name)).to.deep.equal(['c2c-xfcc', 'istio-permissive-fallback', 'istio-strict-denial']);
    expect(selectSuites(SUITES, { suites: ['substrate', 'suites/istio-strict-denial.spec.ts'] }).map((s) => s.name)).to.deep.equal(['istio-strict-denial', 'substrate']);
    expect(() => selectSuites(SUITES, { profiles: ['load'] })).to.throw(UserError, 'unknown profile "load": known profiles are c2c, cf, istio, substrate');
    expect(() => selectSuites([], {})).to.throw(UserError, /no suites/);
  });

  it('parses i/n', () => {
    expect(parseShard('2/4')).to.deep.equal({ index: 2, total: 4 });
    expect(parseShard('1/1')).to.deep.equal({ index: 1, total: 1 });
    for (const bad of ['0/2', '3/2', '1/0', '1', 'a/b', '-1/2', '1/2/3']) expect(() => parseShard(bad), bad).to.throw(UserError, /invalid --shard/);
  });

  it('deals the (version × suite) units round-robin: every unit in exactly one shard, sizes within one, deterministic', () => {
    const versions = ['1.36.4', '1.37.0'];
    const all = matrixUnits(versions, SUITES).map((u) => `${u.envoyVersion} ${u.suite.name}`);
    expect(all).to.have.length(10);
    expect(all.slice(0, 3)).to.deep.equal(['1.36.4 c2c-xfcc', '1.36.4 cf-route-integrity', '1.36.4 istio-permissive-fallback']);
    for (const n of [1, 2, 3, 4, 10, 11]) {
      const shards = Array.from({ length: n }, (_, i) => matrixUnits(versions, SUITES, { index: i + 1, total: n }).map((u) => `${u.envoyVersion} ${u.suite.name}`));
      expect(shards.flat().sort(), `n=${n}`).to.deep.equal([...all].sort());
      const sizes = shards.map((s) => s.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `n=${n}`).to.be.at.most(1);
    }
    expect(matrixUnits(versions, SUITES, { index: 2, total: 3 }).map((u) => `${u.envoyVersion} ${u.suite.name}`))
      .to.deep.equal(['1.36.4 cf-route-integrity', '1.36.4 substrate', '1.37.0 istio-permissive-fallback']);
    expect(matrixUnits(['1.36.4'], SUITES, { index: 1, total: 2 }).map((u) => u.suite.name)).to.deep.equal(['c2c-xfcc', 'istio-permissive-fallback', 'substrate']);
  });
});

describe('cli: report, diff and merge on run directories', () => {
  let dir: string;
  const write = (name: string, f: ResultsFile) => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'results.json'), JSON.stringify(f, null, 2));
    return join(dir, name);
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('report re-renders the four reports, exit 0; a directory without results.json is exit 2', async () => {
    const run = write('run', SHARD2);
    const r = await cli('report', run);
    expect(r.code).to.equal(EXIT.ok);
    for (const f of Object.values(REPORT_FILES)) {
      expect(existsSync(join(run, f)), f).to.equal(true);
      expect(r.out).to.include(join(run, f));
    }
    expect(r.out).to.include('2 cells (1 correct, 1 wrong), 1 tests (1 failed)');
    // The failed mocha test is one JUnit test case, its failure naming the wrong cell and its evidence.
    const junit = readFileSync(join(run, 'junit.xml'), 'utf8');
    expect(junit).to.match(/<testcase classname="cf-route-integrity" name="route integrity every cell" time="0.012">\s*<failure message="AssertionError: router → app-2: expected allowed:plaintext to equal denied:tls-handshake — 1 wrong cells: router→app-2:5000\/http allowed:plaintext expected denied\/observed allowed" type="meshproof.CellMismatch">/);
    expect(junit).to.include('main: router→app-2:5000/http verdict=allowed:plaintext expected=denied observed=allowed');
    const missing = await cli('report', join(dir, 'nope'));
    expect(missing.code).to.equal(EXIT.usage);
    expect(missing.err).to.match(/nope does not exist/);
  });

  it('diff lists the cells that changed verdict and the budgets that moved, exit 0', async () => {
    const a = write('a', SHARD1);
    const b = write('b', {
      ...SHARD1,
      records: [{ ...SHARD1.records[0]!, verdict: 'allowed:plaintext' }, { ...SHARD1.records[1]!, verdict: 'denied:timeout' }, rec('s1', 'istio-strict-denial', 'sleep', 'name', 'allowed', 'allowed:mtls', { envoyVersion: '1.36.4' })],
      budgets: [{ ...SHARD1.budgets![0]!, value: 400, pass: false }],
    });
    const r = await cli('diff', a, join(b, 'results.json'));
    expect(r.code).to.equal(EXIT.ok);
    const lines = r.out.split('\n');
    expect(lines[1]).to.equal('2 cells changed verdict, 1 added, 0 removed; 1 budgets moved');
    expect(r.out).to.include('changed istio-strict-denial / main / sleep → age:5000/http: allowed:mtls (pass) → allowed:plaintext (pass), expected allowed');
    expect(r.out).to.include('changed istio-strict-denial / main / sleep-naked → age:5000/http: denied:reset (pass) → denied:timeout (pass), expected denied');
    expect(r.out).to.include('added istio-strict-denial / main / sleep → name:5000/http @ envoy 1.36.4: allowed:mtls (pass)');
    expect(r.out).to.include('budget sleep→age mtls rps: 1000 → 400 req/s (-60.0 %), limit 500, pass → FAIL');
  });

  it('diff matches cells across Envoy versions when each run has one, and by version in a matrix', () => {
    const on = (f: ResultsFile, v: string): ResultsFile => ({ records: f.records.map((r) => ({ ...r, envoyVersion: v })) });
    const a = on(SHARD1, '1.36.4');
    expect(diffRuns(a, on(SHARD1, '1.37.0'))).to.deep.include({ changed: [], added: [], removed: [] });
    const matrix: ResultsFile = { records: [...a.records, ...on(SHARD1, '1.37.0').records.map((r, i) => (i === 0 ? { ...r, verdict: 'allowed:tls' as const } : r))] };
    const d = diffRuns({ records: [...a.records, ...on(SHARD1, '1.37.0').records] }, matrix);
    expect(d.changed.map((c) => c.key)).to.deep.equal(['istio-strict-denial / main / sleep → age:5000/http @ envoy 1.37.0']);
    expect(regressions(d).cells.map((c) => c.why)).to.deep.equal(['downgrade']);
  });

  it('merge joins shards into OUT, renders there, and exits 1 when the merged run failed', async () => {
    const s1 = write('shard-1', SHARD1);
    const s2 = write('shard-2', SHARD2);
    const out = join(dir, 'merged');
    const r = await cli('merge', out, s1, join(s2, 'results.json'));
    expect(r.code).to.equal(EXIT.failure);
    expect(r.out, r.out).to.include(`merged 2 results into ${out}: 4 cells (3 correct, 1 wrong), 2 tests (1 failed), 1/1 budgets met, envoy 1.36.4`);
    const merged = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ResultsFile;
    expect(merged.records).to.have.length(4);
    expect(merged.tests).to.have.length(2);
    expect(merged.meta!.shards!.map((s) => s.shard)).to.deep.equal(['1/2', '2/2']);
    for (const f of Object.values(REPORT_FILES)) expect(existsSync(join(out, f)), f).to.equal(true);
    const conf = parseYaml(readFileSync(join(out, 'conformance-report.yaml'), 'utf8'));
    expect(conf.profiles.map((p: { name: string; core: { result: string } }) => [p.name, p.core.result])).to.deep.equal([['istio', 'success'], ['cf', 'failure']]);
    expect(conf.profiles[1].core.failedTestReasons).to.deep.equal({ 'cf-route-integrity/main': '1 of 2 cells wrong: router→app-2:5000/http allowed:plaintext (expected denied)' });
    // Merging into a directory that already has results is refused.
    expect((await cli('merge', out, s1)).code).to.equal(EXIT.usage);
    // Passing shards merge to exit 0.
    expect((await cli('merge', join(dir, 'ok'), s1)).code).to.equal(EXIT.ok);
  });

  it('merge --baseline --gate: a cell that lost mTLS but still passes is a regression only with --gate', async () => {
    const base = write('baseline', SHARD1);
    const worse = write('worse', { ...SHARD1, records: [{ ...SHARD1.records[0]!, verdict: 'allowed:plaintext' }, SHARD1.records[1]!] });
    const r = await cli('merge', join(dir, 'm1'), worse, '--baseline', base);
    expect(r.code).to.equal(EXIT.ok);
    expect(r.out).to.include('1 regression(s) against the baseline (not gating: no --gate)');
    const g = await cli('merge', join(dir, 'm2'), worse, '--baseline', join(base, 'results.json'), '--gate');
    expect(g.code).to.equal(EXIT.failure);
    expect(g.out).to.include('REGRESSION istio-strict-denial / main / sleep → age:5000/http: allowed:mtls → allowed:plaintext (still passes, over a weaker transport)');
    const budget = write('budget', { ...SHARD1, budgets: [{ ...SHARD1.budgets![0]!, value: 900 }] });
    expect((await cli('merge', join(dir, 'm3'), budget, '--baseline', base, '--gate')).code).to.equal(EXIT.ok);
    expect((await cli('merge', join(dir, 'm4'), budget, '--gate')).code).to.equal(EXIT.usage);
  });

  it('run with a shard that gets no units writes an empty run and its reports, exit 0, without provisioning', async () => {
    const out = join(dir, 'empty-shard');
    const r = await cli('run', '--suite', 'substrate', '--shard', '2/2', '--out', out);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(EXIT.ok);
    expect(r.out).to.include('nothing to run: this shard has no units');
    expect(r.out).to.not.include('provision');
    const f = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ResultsFile;
    expect(f.records).to.deep.equal([]);
    expect(f.meta!.shard).to.equal('2/2');
    expect(f.meta!.versions.meshproof).to.match(/^\d+\.\d+\.\d+/);
    for (const name of Object.values(REPORT_FILES)) expect(existsSync(join(out, name)), name).to.equal(true);
  });
});
