// The substrate a run's suites start their clusters on (substrate/index.ts): MESHPROOF_SUBSTRATE, set by
// `meshproof run --substrate`, else netns; an unknown one, or what a substrate cannot run (kind: only the Istio suites
// on istiod), is one line naming the fix (exit 2) — never a silent netns. Pure: every refusal comes before anything starts.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import { planRun } from '../src/harness/cli/run.ts';
import { cli } from './lib/cli.ts';
import { assertSubstrate, netnsCluster, substrateOfRun, upCluster } from '../src/harness/substrate/index.ts';
import type { Cluster } from '../src/harness/substrate/types.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

// The lines a user sees (hand-written: kind runs real Istio's pods, so the Istio profile on istiod alone — issue 14).
const UNKNOWN_FLAG = '--substrate lxc: unknown substrate; the substrates are netns, docker, kind: use --substrate netns, docker, kind';
const UNKNOWN_ENV = 'MESHPROOF_SUBSTRATE=Netns: unknown substrate; the substrates are netns, docker, kind: set MESHPROOF_SUBSTRATE=netns, docker, kind or unset it';
const KIND_TOPOLOGY = 'topology never-started: the kind substrate runs only the istio profile on the istiod control plane (its pods are a real cluster\'s): use --substrate netns or docker';
const KIND_PROFILE = '--substrate kind runs only the suites of profile istio (on istiod), not profile substrate: use --profile istio (or --suite istio-...), and run the others on --substrate netns or docker';
const KIND_EMULATED = '--control-plane emulated on kind: the kind substrate runs Istio\'s own istiod (the emulation needs pods the harness runs itself): use --control-plane istiod, or --substrate netns or docker';

/** The UserError `f` throws (or its promise rejects with). */
async function refusal(f: () => unknown): Promise<UserError> {
  try {
    await f();
  } catch (e) {
    expect(e).to.be.instanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError, nothing was thrown');
}

function expectLine(e: UserError, line: string): void {
  expect(e.message).to.equal(line);
  expect(e.message).to.not.include('\n');
  expect(e.exitCode).to.equal(EXIT.usage);
}

describe('substrate selection: the run chooses, suites never name one', () => {
  it('no MESHPROOF_SUBSTRATE (or an empty one) is netns; netns is netns, docker is docker, kind is kind', () => {
    expect(substrateOfRun({})).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: '' })).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: 'netns' })).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: 'docker' })).to.equal('docker');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: 'kind' })).to.equal('kind');
    expect(assertSubstrate('netns')).to.equal('netns');
    expect(assertSubstrate('docker')).to.equal('docker');
    expect(assertSubstrate('kind')).to.equal('kind');
  });

  it('an unknown --substrate lists the substrates', async () => {
    expectLine(await refusal(() => assertSubstrate('lxc')), UNKNOWN_FLAG);
  });

  it('MESHPROOF_SUBSTRATE is refused the same way, naming the variable (a name is exact: Netns is not netns)', async () => {
    expectLine(await refusal(() => substrateOfRun({ MESHPROOF_SUBSTRATE: 'Netns' })), UNKNOWN_ENV);
  });

  it('upCluster of a harness topology on kind rejects in one line before starting anything (no fallback to netns)', async () => {
    const topology = { name: 'never-started', pods: [] };
    let logged = 0;
    const opts = { wire: false, log: () => void logged++ };
    expectLine(await refusal(() => upCluster(topology, opts, { MESHPROOF_SUBSTRATE: 'kind' })), KIND_TOPOLOGY);
    expect(logged, 'no substrate phase ran').to.equal(0);
  });

  it('meshproof run --substrate kind plans the Istio suites on istiod, leaves the other profiles out, and refuses what kind cannot run', async () => {
    const all = planRun({ substrate: 'kind' }, REPO);
    expect([all.substrate, all.controlPlane]).to.deep.equal(['kind', 'istiod']);
    // suites/istio-*.spec.ts: nine files today (hand-counted), the only profile on kind
    expect(all.suites.map((s) => s.profile)).to.deep.equal(Array(9).fill('istio'));
    expect([...all.leftOut].sort()).to.deep.equal(['c2c', 'cf', 'cf-for-k8s', 'contrast', 'load', 'substrate']);
    expectLine(await refusal(() => planRun({ suite: 'substrate', substrate: 'kind' }, REPO)), KIND_PROFILE);
    expectLine(await refusal(() => planRun({ suite: 'istio-strict-denial', substrate: 'kind', controlPlane: 'emulated' }, REPO)), KIND_EMULATED);
  });

  it('meshproof run plans netns by default, docker when asked', async () => {
    expect(planRun({ suite: 'substrate' }, REPO).substrate).to.equal('netns');
    expect(planRun({ suite: 'substrate', substrate: 'netns' }, REPO).substrate).to.equal('netns');
    expect(planRun({ suite: 'substrate', substrate: 'docker' }, REPO).substrate).to.equal('docker');
    // the kube layer is netns's: docker's Istio suites run on the emulation, and istiod on docker is refused
    expect(planRun({ suite: 'istio-strict-denial', substrate: 'docker' }, REPO).controlPlane).to.equal('emulated');
    expectLine(
      await refusal(() => planRun({ suite: 'istio-strict-denial', substrate: 'docker', controlPlane: 'istiod' }, REPO)),
      '--control-plane istiod needs the kube layer, which runs on the netns substrate only: use --substrate netns, or --control-plane emulated on docker',
    );
    expectLine(await refusal(() => planRun({ suite: 'substrate', substrate: 'lxc' }, REPO)), UNKNOWN_FLAG);
  });

  it('meshproof run --substrate docker without --control-plane is not taken as istiod by the command line', async () => {
    // the command line once defaulted --control-plane to istiod, so every docker run met the refusal above;
    // an unknown suite is the next check planRun makes, so reaching it shows the control plane was left to the plan
    const r = await cli('run', '--substrate', 'docker', '--suite', 'no-such-suite');
    expect([r.code, r.err.split('\n')[0]!.slice(0, 40)]).to.deep.equal([EXIT.usage, 'meshproof: unknown suite "no-such-suite"']);
  });

  it('code that still needs the netns Cluster refuses another substrate in one line naming itself', async () => {
    const other = { substrate: 'docker' } as unknown as Cluster;
    expectLine(
      await refusal(() => netnsCluster(other, 'the cf profile (probeMany)')),
      'the cf profile (probeMany) needs the netns substrate (members the Cluster port does not offer yet); this run is on docker: use --substrate netns',
    );
  });
});
