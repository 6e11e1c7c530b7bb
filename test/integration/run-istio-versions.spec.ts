// `meshproof run --control-plane istiod --istio-version 1.28.2,1.29.2` as a real process on this machine: a
// release that is not built (doctor says which are) stops the run before anything starts, in one line naming
// `meshproof doctor --fix --istio-version …`, exit 2, with no run directory, no reports/<run id> and no state
// record left behind. It runs on an empty build cache (XDG_CACHE_HOME), where no release is built.

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { readRecords } from '../../src/harness/substrate/state.ts';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

describe('run --istio-version 1.28.2,1.29.2 with a release not built', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-istio-versions-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 with the one-line fix and leaves nothing behind', function () {
    this.timeout(60_000);
    // an empty cache (XDG_CACHE_HOME) has neither release built, whatever this machine has built
    const cache = join(dir, 'cache');
    const missing = ['1.28.2', '1.29.2'];
    const out = join(dir, 'out');
    const runId = `istio-versions-test-${randomBytes(3).toString('hex')}`;
    const r = spawnSync(process.execPath, ['bin/meshproof.js', 'run', '--control-plane', 'istiod', '--istio-version', '1.28.2,1.29.2', '--out', out, '--run-id', runId], { cwd: REPO, encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cache } });
    expect(r.status, r.stderr).to.equal(2);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines, r.stderr).to.have.length(1);
    const fix = `meshproof doctor --fix --istio-version ${missing.join(',')}`;
    expect(lines[0]).to.match(new RegExp(`^meshproof: --istio-version 1\\.28\\.2,1\\.29\\.2 needs every version built first \\(.*istio 1\\.28\\.2 [^)]*; istio 1\\.29\\.2 [^)]*\\): run ${fix.replace(/\./g, '\\.')}$`));
    expect(r.stdout).to.equal('');
    expect(existsSync(out), 'no run directory').to.equal(false);
    expect(existsSync(join(REPO, 'reports', runId)), 'no reports/<run id>').to.equal(false);
    expect(readRecords().filter((x) => JSON.stringify(x).includes(runId)), 'no state record').to.deep.equal([]);
  });
});
