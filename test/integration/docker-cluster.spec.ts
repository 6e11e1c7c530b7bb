// The docker substrate's refusals (issue 12, bad input): a user's DOCKER_HOST, pod images not built — one line naming
// the fix, exit code 2, and nothing of the run left (no state directory, namespace, engine or process). Needs root.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftovers, ownerAlive, readRecords } from '../../src/harness/substrate/state.ts';

const cli = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/meshproof.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });

/** What appeared meanwhile that belongs to no live run (a suite running beside this one keeps its own). */
async function newLeftovers(before: string[]): Promise<string[]> {
  const live = new Set(readRecords().filter(ownerAlive).map((r) => r.short));
  return (await leftovers()).filter((x) => !before.includes(x) && !live.has(/mp([0-9a-f]{4})/.exec(x)?.[1] ?? /meshproof\/([0-9a-f]{4})/.exec(x)?.[1] ?? ''));
}

describe('docker substrate: bad input is one line naming the fix, exit 2, nothing left', function () {
  this.timeout(120_000);

  it("a user's DOCKER_HOST is refused before anything starts: the run programs the engine's own namespace", async () => {
    const before = await leftovers();
    const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground'], { DOCKER_HOST: 'unix:///nowhere/docker.sock' });
    expect(r.code).to.equal(2);
    expect(r.err.trim()).to.equal(
      "meshproof: --substrate docker runs on meshproof's own engine (it programs service VIPs and the wire capture in the engine's network namespace, which on DOCKER_HOST=unix:///nowhere/docker.sock would be that engine's host): unset DOCKER_HOST",
    );
    expect(await newLeftovers(before)).to.deep.equal([]);
  });

  it('pod images not built (an empty cache) name meshproof doctor --fix --substrate docker, and no engine starts', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'mp-empty-cache-'));
    try {
      const before = await leftovers();
      // Envoy is found through ENVOY_BIN (the cache is empty); the images' inputs are not there
      const { resolveEnvoy } = await import('../../src/harness/cli/doctor.ts');
      const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground'], { XDG_CACHE_HOME: cache, ENVOY_BIN: resolveEnvoy().bin });
      expect(r.code).to.equal(2);
      const lines = r.err.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.equal('meshproof: the docker pod images are not built (the .debs of the pod packages): run meshproof doctor --fix --substrate docker');
      expect(await newLeftovers(before)).to.deep.equal([]);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
