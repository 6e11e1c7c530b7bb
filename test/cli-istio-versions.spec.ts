// `meshproof run --istio-version a,b` as planned, before anything runs: one pass per Istio release into
// istio-<version>/ with the release's own Envoy (versions.ts: 1.28.2 → 1.36.4, 1.29.2 → 1.37.0) or the one
// --envoy-version, only the suites on istiod, and the combinations that would make the matrix ambiguous refused
// in one line (exit 2, nothing created). No spawning, no root: planRun only reads the suites directory. Whether
// each release is built is the machine's (test/integration/run-istio-versions.spec.ts).

import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/harness/model/errors.ts';
import { planRun, type RunFlags } from '../src/harness/cli/run.ts';
import { cli } from './lib/cli.ts';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));


describe('run --istio-version a,b: the plan', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-istio-versions-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const plan = (flags: RunFlags) => planRun({ controlPlane: 'istiod', out: join(dir, 'out'), ...flags }, REPO);

  it('one pass per release into istio-<version>/, each with its own Envoy; every suite once per release', () => {
    const p = plan({ istioVersion: '1.28.2,1.29.2', suite: 'istio-strict-denial,istio-port-level' });
    expect(p.istioVersions).to.deep.equal(['1.28.2', '1.29.2']);
    expect(p.passes).to.deep.equal([
      { dir: 'istio-1.28.2', controlPlane: 'istiod', envoyVersion: '1.36.4', istioVersion: '1.28.2' },
      { dir: 'istio-1.29.2', controlPlane: 'istiod', envoyVersion: '1.37.0', istioVersion: '1.29.2' },
    ]);
    expect(p.units.map((u) => `${u.istioVersion} ${u.envoyVersion} ${u.suite.name}`)).to.deep.equal([
      '1.28.2 1.36.4 istio-port-level',
      '1.28.2 1.36.4 istio-strict-denial',
      '1.29.2 1.37.0 istio-port-level',
      '1.29.2 1.37.0 istio-strict-denial',
    ]);
    expect(p.envoyVersions).to.deep.equal(['1.36.4', '1.37.0']);
    expect(existsSync(join(dir, 'out')), 'planning creates nothing').to.equal(false);
  });

  it('one --envoy-version: every release runs with it', () => {
    const p = plan({ istioVersion: '1.28.2,1.29.2', envoyVersion: '1.36.4', suite: 'istio-strict-denial' });
    expect(p.passes.map((x) => [x.dir, x.envoyVersion])).to.deep.equal([['istio-1.28.2', '1.36.4'], ['istio-1.29.2', '1.36.4']]);
    expect(p.units.map((u) => `${u.istioVersion} ${u.envoyVersion}`)).to.deep.equal(['1.28.2 1.36.4', '1.29.2 1.36.4']);
  });

  it('by default only the suites on istiod, and the run names the profiles it leaves out', () => {
    const p = plan({ istioVersion: '1.28.2,1.29.2' });
    expect([...new Set(p.suites.map((s) => s.profile))].sort()).to.deep.equal(['cf-for-k8s', 'istio', 'load']);
    expect([...p.leftOut].sort()).to.deep.equal(['c2c', 'cf', 'contrast', 'substrate']);
    expect(p.units).to.have.length(2 * p.suites.length);
  });

  it('one release (or the same one twice) runs in this process, as before', () => {
    for (const istioVersion of ['1.28.2', '1.28.2,1.28.2']) {
      const p = plan({ istioVersion, suite: 'istio-strict-denial' });
      expect(p.istioVersions, istioVersion).to.deep.equal(['1.28.2']);
      expect(p.passes, istioVersion).to.deep.equal([]);
      expect(p.units.map((u) => `${u.envoyVersion} ${u.suite.name}`), istioVersion).to.deep.equal(['1.36.4 istio-strict-denial']);
    }
  });

  it("one release other than the default runs with that release's own Envoy, as it does among several", () => {
    const p = plan({ istioVersion: '1.29.2', suite: 'istio-strict-denial' });
    expect([p.istioVersions, p.units.map((u) => u.envoyVersion)]).to.deep.equal([['1.29.2'], ['1.37.0']]);
    expect(plan({ istioVersion: '1.29.2', envoyVersion: '1.36.4', suite: 'istio-strict-denial' }).units.map((u) => u.envoyVersion)).to.deep.equal(['1.36.4']);
    expect(plan({ controlPlane: 'emulated', suite: 'istio-strict-denial' }).units.map((u) => u.envoyVersion)).to.deep.equal(['1.36.4']);
  });

  it('several Envoy versions: a pass per Envoy version that names the run\'s control plane (the emulation: no Istio version)', () => {
    expect(plan({ envoyVersion: '1.36.4,1.37.0', suite: 'istio-strict-denial' }).passes).to.deep.equal([
      { dir: 'envoy-1.36.4', controlPlane: 'istiod', envoyVersion: '1.36.4', istioVersion: '1.28.2' },
      { dir: 'envoy-1.37.0', controlPlane: 'istiod', envoyVersion: '1.37.0', istioVersion: '1.28.2' },
    ]);
    expect(plan({ controlPlane: 'emulated', envoyVersion: '1.36.4,1.37.0', suite: 'istio-strict-denial' }).passes).to.deep.equal([
      { dir: 'envoy-1.36.4', controlPlane: 'emulated', envoyVersion: '1.36.4' },
      { dir: 'envoy-1.37.0', controlPlane: 'emulated', envoyVersion: '1.37.0' },
    ]);
  });

  describe('refused in one line, exit 2, nothing created', () => {
    const cases: [string, string[], string][] = [
      ['several Envoy and several Istio versions', ['--istio-version', '1.28.2,1.29.2', '--envoy-version', '1.36.4,1.37.0', '--profile', 'istio'],
        'meshproof: --istio-version 1.28.2,1.29.2 with --envoy-version 1.36.4,1.37.0: vary one of them per run (one --envoy-version for every Istio version, or none for each release\'s own: 1.28.2 → 1.36.4, 1.29.2 → 1.37.0)'],
      ['--control-plane both', ['--control-plane', 'both', '--istio-version', '1.28.2,1.29.2', '--profile', 'istio'],
        'meshproof: --control-plane both compares the emulation with one istiod: give one --istio-version, or run --control-plane istiod --istio-version 1.28.2,1.29.2'],
      ['--control-plane emulated', ['--control-plane', 'emulated', '--istio-version', '1.28.2,1.29.2', '--profile', 'istio'],
        'meshproof: --istio-version 1.28.2,1.29.2 runs each release\'s istiod: use --control-plane istiod (the emulation has no Istio version)'],
      ['--shard', ['--istio-version', '1.28.2,1.29.2', '--shard', '1/2', '--profile', 'istio'],
        'meshproof: --shard splits a run over one Istio version: run --shard once per --istio-version (e.g. --istio-version 1.28.2 --envoy-version 1.36.4 --shard 1/2) and join them with meshproof merge'],
      ['a profile not on istiod', ['--istio-version', '1.28.2,1.29.2', '--profile', 'istio,cf'],
        'meshproof: --istio-version 1.28.2,1.29.2 runs only the suites on istiod (profiles istio, cf-for-k8s, load), not profile cf: use --profile istio (or --suite istio-...), and run the others without --istio-version'],
      ['a suite not on istiod', ['--istio-version', '1.28.2,1.29.2', '--suite', 'istio-strict-denial,substrate'],
        'meshproof: --istio-version 1.28.2,1.29.2 runs only the suites on istiod (profiles istio, cf-for-k8s, load), not profile substrate: use --profile istio (or --suite istio-...), and run the others without --istio-version'],
      ['an unknown release', ['--istio-version', '1.28.2,1.30.0', '--profile', 'istio'],
        'meshproof: unknown Istio version "1.30.0": supported are 1.28.2, 1.29.2 (--istio-version)'],
    ];
    for (const [what, args, line] of cases) {
      it(what, async () => {
        const out = join(dir, 'refused');
        const r = await cli('run', ...args, '--out', out);
        expect(r.code).to.equal(2);
        expect(r.err).to.equal(`${line}\n`);
        expect(r.out).to.equal('');
        expect(existsSync(out)).to.equal(false);
      });
    }

    it('planRun throws the UserError itself (before root or provisioning)', () => {
      expect(() => plan({ istioVersion: '1.28.2,1.29.2', controlPlane: 'emulated', suite: 'istio-strict-denial' })).to.throw(UserError, 'use --control-plane istiod');
    });
  });
});
