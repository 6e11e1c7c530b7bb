// Loaded by mocha before the run (.mocharc.yml `require`): an error that escapes after a test has passed
// (an emitter's 'error' nobody listened to, a late throw in a callback) fails that test by name and the run goes
// on. Mocha itself fails the test and then aborts the whole run ("we cannot recover gracefully", lib/runner.js
// Runner#_uncaught), which once stopped the unit tests after 296 of 489 with a summary of "2 failing".
// Errors while a test or hook runs are left to mocha: they already fail that test or hook.
import Mocha from 'mocha';

interface RunnerInternals {
  _uncaught(err: unknown): void;
  stats?: { passes: number };
  currentRunnable?: Mocha.Runnable;
  fail(runnable: Mocha.Runnable, err: unknown): void;
}

const proto = Mocha.Runner.prototype as unknown as RunnerInternals;
const mochas = proto._uncaught;
if (typeof mochas !== 'function') throw new Error('test/lib/uncaught.ts: mocha has no Runner#_uncaught any more; see how it handles uncaught errors now');

proto._uncaught = function (this: RunnerInternals, err: unknown): void {
  const done = this.currentRunnable;
  if (done && done.isPassed()) {
    const e = err instanceof Error ? err : new Error(String(err));
    e.message = `uncaught after the test had passed: ${e.message}`;
    this.fail(done, e);
    if (this.stats) this.stats.passes--; // it was counted when it passed; now it is a failure
    return;
  }
  mochas.call(this, err);
};
