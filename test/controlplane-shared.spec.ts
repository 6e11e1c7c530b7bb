// What a run keeps until its end (a control plane shared by its suites): every kept stop runs once at the end,
// a stop let go of does not, and one failing stop neither hides the others nor is swallowed.
import { expect } from 'chai';
import { endOfRun, keepUntilRunEnd } from '../src/harness/controlplane/shared.ts';

describe('shared: kept until the run ends', () => {
  it('runs every kept stop once, and not one that was let go of', async () => {
    const ran: string[] = [];
    keepUntilRunEnd(async () => void ran.push('a'));
    const letGo = keepUntilRunEnd(async () => void ran.push('b'));
    keepUntilRunEnd(async () => void ran.push('c'));
    letGo();
    await endOfRun();
    await endOfRun();
    expect(ran.sort()).to.deep.equal(['a', 'c']);
  });

  it('runs the other stops when one fails, then throws that failure', async () => {
    const ran: string[] = [];
    keepUntilRunEnd(async () => {
      throw new Error('relay did not stop');
    });
    keepUntilRunEnd(async () => void ran.push('etcd'));
    let err: Error | undefined;
    await endOfRun().catch((e: Error) => (err = e));
    expect(ran).to.deep.equal(['etcd']);
    expect(err?.message).to.equal('relay did not stop');
  });
});
