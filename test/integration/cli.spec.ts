// The `meshproof` command as a real process (bin/meshproof.js): its exit codes and the one-line error on stderr.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/harness/model/errors.ts';
import type { ResultsFile } from '../../src/harness/report/meta.ts';
import { SHARD2 } from '../lib/runs.ts';

describe('cli: the real process', () => {
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

  it('exit codes 0 (--help), 2 (bad flag), 1 (merge of a failed run)', function () {
    this.timeout(30_000);
    const bin = (...args: string[]) => spawnSync(process.execPath, ['bin/meshproof.js', ...args], { encoding: 'utf8' });
    expect(bin('merge', '--help').status).to.equal(EXIT.ok);
    const bad = bin('run', '--shard', 'x');
    expect(bad.status).to.equal(EXIT.usage);
    expect(bad.stderr).to.equal('meshproof: invalid --shard "x": expected i/n with 1 ≤ i ≤ n, e.g. 1/4\n');
    expect(bin('merge', join(dir, 'm'), write('s2', SHARD2)).status).to.equal(EXIT.failure);
  });
});
