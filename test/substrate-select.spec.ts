// The substrate a run's suites start their clusters on (substrate/index.ts): MESHPROOF_SUBSTRATE, set by
// `meshproof run --substrate`, else netns; a substrate that cannot run suites yet, or an unknown one, is one line
// naming the fix (exit 2) — never a silent netns. Pure: every refusal comes before anything starts.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import { planRun } from '../src/harness/cli/run.ts';
import { cli } from './lib/cli.ts';
import { assertSubstrate, netnsCluster, substrateOfRun, upCluster } from '../src/harness/substrate/index.ts';
import type { Cluster } from '../src/harness/substrate/types.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

// The lines a user sees (hand-written: the issue that adds kind is 14; docker runs suites since issue 12).
const KIND_FLAG = '--substrate kind: the kind substrate cannot run suites yet, issue 14 adds it: use --substrate netns, docker';
const UNKNOWN_FLAG = '--substrate lxc: unknown substrate; the substrates are netns, docker, kind: use --substrate netns, docker';
const KIND_ENV = 'MESHPROOF_SUBSTRATE=kind: the kind substrate cannot run suites yet, issue 14 adds it: set MESHPROOF_SUBSTRATE=netns, docker or unset it';
const UNKNOWN_ENV = 'MESHPROOF_SUBSTRATE=Netns: unknown substrate; the substrates are netns, docker, kind: set MESHPROOF_SUBSTRATE=netns, docker or unset it';

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
  it('no MESHPROOF_SUBSTRATE (or an empty one) is netns; netns is netns, docker is docker', () => {
    expect(substrateOfRun({})).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: '' })).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: 'netns' })).to.equal('netns');
    expect(substrateOfRun({ MESHPROOF_SUBSTRATE: 'docker' })).to.equal('docker');
    expect(assertSubstrate('netns')).to.equal('netns');
    expect(assertSubstrate('docker')).to.equal('docker');
  });

  it('--substrate kind is known but refused in one line naming the issue that adds it', async () => {
    expectLine(await refusal(() => assertSubstrate('kind')), KIND_FLAG);
  });

  it('an unknown --substrate lists the substrates', async () => {
    expectLine(await refusal(() => assertSubstrate('lxc')), UNKNOWN_FLAG);
  });

  it('MESHPROOF_SUBSTRATE is refused the same way, naming the variable (a name is exact: Netns is not netns)', async () => {
    expectLine(await refusal(() => substrateOfRun({ MESHPROOF_SUBSTRATE: 'kind' })), KIND_ENV);
    expectLine(await refusal(() => substrateOfRun({ MESHPROOF_SUBSTRATE: 'Netns' })), UNKNOWN_ENV);
  });

  it('upCluster on kind rejects with that line before starting anything (no fallback to netns)', async () => {
    const topology = { name: 'never-started', pods: [] };
    let logged = 0;
    const opts = { wire: false, log: () => void logged++ };
    expectLine(await refusal(() => upCluster(topology, opts, { MESHPROOF_SUBSTRATE: 'kind' })), KIND_ENV);
    expect(logged, 'no substrate phase ran').to.equal(0);
  });

  it('meshproof run plans netns by default, docker when asked, and refuses kind before anything is provisioned', async () => {
    expect(planRun({ suite: 'substrate' }, REPO).substrate).to.equal('netns');
    expect(planRun({ suite: 'substrate', substrate: 'netns' }, REPO).substrate).to.equal('netns');
    expect(planRun({ suite: 'substrate', substrate: 'docker' }, REPO).substrate).to.equal('docker');
    // the kube layer is netns's: docker's Istio suites run on the emulation, and istiod on docker is refused
    expect(planRun({ suite: 'istio-strict-denial', substrate: 'docker' }, REPO).controlPlane).to.equal('emulated');
    expectLine(
      await refusal(() => planRun({ suite: 'istio-strict-denial', substrate: 'docker', controlPlane: 'istiod' }, REPO)),
      '--control-plane istiod needs the kube layer, which runs on the netns substrate only: use --substrate netns, or --control-plane emulated on docker',
    );
    expectLine(await refusal(() => planRun({ suite: 'substrate', substrate: 'kind' }, REPO)), KIND_FLAG);
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
