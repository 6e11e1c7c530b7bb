// pollUntil: the one poll-until helper. Counted attempts, not clocks, decide these tests.
import { expect } from 'chai';
import { pollUntil } from '../src/harness/substrate/poll.ts';

describe('pollUntil', function () {
  it('resolves with the first value that is not undefined, after asking exactly that often', async function () {
    let calls = 0;
    const v = await pollUntil(() => (++calls === 3 ? 'ready' : undefined), { timeoutMs: 60_000, intervalMs: 1, what: 'x' });
    expect(v).to.equal('ready');
    expect(calls).to.equal(3);
  });

  it('false and 0 are answers, not "not yet"', async function () {
    expect(await pollUntil(() => false, { timeoutMs: 0, what: 'x' })).to.equal(false);
    expect(await pollUntil(async () => 0, { timeoutMs: 0, what: 'x' })).to.equal(0);
  });

  it('out of time: asks at least once, then names what it waited for and the latest detail', async function () {
    let calls = 0;
    const err = await pollUntil(
      () => {
        calls++;
        return undefined;
      },
      { timeoutMs: 0, what: 'kube-apiserver /readyz', detail: () => 'HTTP 500 [-]etcd failed' },
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(calls).to.equal(1);
    expect(err?.message).to.equal('kube-apiserver /readyz: not ready after 0 ms: HTTP 500 [-]etcd failed');
  });

  it('an error thrown by the check ends the poll at once with that error', async function () {
    let calls = 0;
    const err = await pollUntil(
      () => {
        if (++calls === 2) throw new Error('etcd exited (code 1)');
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1, what: 'etcd' },
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.equal('etcd exited (code 1)');
    expect(calls).to.equal(2);
  });
});
