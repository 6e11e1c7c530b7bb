// Ctrl-C while real Istio is being brought up on kind (issue 14, "Ctrl-C during create"): a process running
// startKindIstio gets SIGINT during kind create (its images building alongside), or once the cluster exists, its API
// server relay runs and the images are being loaded; it exits 130 and leaves no engine namespace, state directory,
// process naming it, or loopback relay, and the host's iptables unchanged. Needs root, `meshproof doctor --fix --substrate kind` and Istio 1.28.2 (skipped, saying so).
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { stateDirOf } from '../../src/harness/substrate/state.ts';
import { iptablesSave, netnsList, processesNaming, skipUnlessKindIstio } from './lib/kind.ts';

const REPO = new URL('../../', import.meta.url).pathname;
/** The child: the workshop's mesh on kind (lib/kind.ts), logging every line, its errors handled as the CLI's are. */
const CHILD = `
const { startKindIstio } = await import(${JSON.stringify(`${REPO}src/harness/substrate/kind/istio.ts`)});
const { kindSentencesModel } = await import(${JSON.stringify(`${REPO}test/integration/lib/kind.ts`)});
const model = kindSentencesModel();
try {
  await startKindIstio(model, { log: (l) => process.stdout.write(l + '\\n') });
  process.stdout.write('UP\\n');
  await new Promise(() => setInterval(() => undefined, 1 << 30));
} catch (e) {
  // as bin/meshproof.js does: the error is one line and an exit code, and a teardown under way finishes (then exits 130)
  process.stderr.write('meshproof: ' + e.message.split('\\n')[0] + '\\n');
  process.exitCode = 2;
}
`;

describe('kind substrate: Ctrl-C while Istio comes up on kind', function () {
  this.timeout(10 * 60_000);
  let iptablesBefore = '';

  before(async function () {
    await skipUnlessKindIstio(this);
    iptablesBefore = iptablesSave();
  });

  /** Starts the child, waits for `after` in its output, sends SIGINT; resolves with its exit code, output and run. */
  async function interruptAfter(after: RegExp, what: string): Promise<{ code: number | null; out: string; short: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      await pollUntil(() => {
        if (child.exitCode !== null) throw new Error(`the child exited (${child.exitCode}) early:\n${out.slice(-2000)}`);
        return after.test(out) ? true : undefined;
      }, { timeoutMs: 8 * 60_000, intervalMs: 200, what, detail: () => out.split('\n').slice(-3).join(' | ') });
    } catch (e) {
      child.kill('SIGINT');
      await exited;
      throw e;
    }
    const short = /network namespace mp([0-9a-z]+)--docker/.exec(out)?.[1];
    expect(short, out).to.be.a('string');
    child.kill('SIGINT');
    return { code: await exited, out, short: short! };
  }

  /** What a run leaves after Ctrl-C: nothing of its own, and the host's iptables as they were. */
  function expectNothingLeft(short: string): void {
    expect(netnsList()).to.not.include(`mp${short}--docker`);
    expect(existsSync(stateDirOf(short)), stateDirOf(short)).to.equal(false);
    expect(processesNaming(stateDirOf(short))).to.deep.equal([]);
    expect(iptablesSave()).to.equal(iptablesBefore);
  }

  it('exits 130 during kind create (the images building alongside) and leaves no engine namespace, state or process; host iptables unchanged', async () => {
    const { code, out, short } = await interruptAfter(/kind: kind create cluster --name/, 'the child running kind create');
    expect(code, out.slice(-1500)).to.equal(130);
    expect(out).to.not.include('kind: created ');
    expectNothingLeft(short);
  });

  it('exits 130 during the image load and leaves no engine namespace, state, process or loopback relay; host iptables unchanged', async () => {
    // the cluster is up, its relay listens on the host's loopback, and the images are on their way into the nodes
    const { code, out, short } = await interruptAfter(/kind-istio: cluster created/, 'the child loading images into the kind nodes');
    const server = /the API server on the host at (https:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(server, out).to.be.a('string');
    expect(code, out.slice(-1500)).to.equal(130);
    expect(out).to.not.include('UP\n');
    expectNothingLeft(short);
    const probe = spawnSync('curl', ['-sk', '--max-time', '3', `${server}/version`], { encoding: 'utf8' });
    expect(probe.status, probe.stdout).to.not.equal(0);
  });
});
