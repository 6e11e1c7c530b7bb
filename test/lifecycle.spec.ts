// substrate/lifecycle.ts on a signal: mocha goes on to the next suite while the teardown runs, so a run started then
// must be refused, and a cleanup registered during the teardown (a start already under way) must still run. A real
// child process gets a real SIGINT; what it prints and its exit code decide.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const CHILD = `
import { onTeardown } from './src/harness/substrate/lifecycle.ts';
import { newRunId } from './src/harness/substrate/state.ts';
onTeardown(async () => {
  // the next suite's start, after the signal: refused before it claims a run
  try { newRunId(); console.log('started a run'); } catch (e) { console.log('refused: ' + e.message); }
  // a start that was already under way registers its cleanup only now
  onTeardown(async () => console.log('late cleanup ran'));
  await new Promise((r) => setTimeout(r, 50));
});
process.kill(process.pid, 'SIGINT');
setInterval(() => undefined, 1000);
`;

describe('lifecycle: a signal tears the process down', function () {
  this.timeout(60_000);

  it('refuses a new run once the teardown began, runs a cleanup registered during it, and exits 130', function () {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).to.equal(130);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.deep.equal(['refused: a new run: not started, the process is tearing down after a signal', 'late cleanup ran']);
  });
});
