// The relay workload as a pod runs it: a process started from the pod bundle (esbuild), its usage errors (one
// line, exit 2) and its life (listening line, bytes across, SIGTERM → exit 0, socket removed).
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPodBundle } from '../../src/harness/substrate/bundle.ts';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { parseHostPort } from '../../src/harness/workloads/relay.ts';
import { countingServer, exchange } from '../lib/sockets.ts';

describe('relay as a pod runs it: node <pod bundle> relay ...', function () {
  this.timeout(60_000);
  let dir: string;
  let target: { server: Server; port: number };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mp-relay-'));
    target = await countingServer();
  });
  after(() => {
    target.server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let bundle: string;
  before(async () => (bundle = await buildPodBundle(join(dir, 'pod.mjs'))));

  it('both flags are required, --connect is host:port: one line, exit 2', function () {
    const run = (...args: string[]) => spawnSync(process.execPath, [bundle, 'relay', ...args], { encoding: 'utf8' });
    const a = run('--listen', join(dir, 'e.sock'));
    expect([a.status, a.stderr]).to.deep.equal([2, 'meshproof workload: relay: --connect <host>:<port> is required\n']);
    const b = run('--connect', '127.0.0.1:6443');
    expect([b.status, b.stderr]).to.deep.equal([2, 'meshproof workload: relay: --listen <unix socket path> is required\n']);
    const c = run('--listen', join(dir, 'e.sock'), '--connect', '6443');
    expect([c.status, c.stderr]).to.deep.equal([2, "meshproof workload: relay --connect must be host:port, got '6443'\n"]);
    expect(parseHostPort('x', '[::1]:6443')).to.deep.equal({ host: '::1', port: 6443 });
    expect(parseHostPort('x', '127.0.0.1:6443')).to.deep.equal({ host: '127.0.0.1', port: 6443 });
  });

  it('serves until SIGTERM, then exits 0 and removes its socket', async function () {
    const path = join(dir, 'f.sock');
    const child = spawn(process.execPath, [bundle, 'relay', '--listen', path, '--connect', `127.0.0.1:${target.port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await pollUntil(() => (out.includes('listening') ? true : undefined), { timeoutMs: 20_000, intervalMs: 10, what: 'relay workload' });
    expect(out).to.equal(`relay listening on ${path} -> 127.0.0.1:${target.port}\n`);
    expect(await exchange({ path }, Buffer.alloc(5000))).to.equal('got 5000 bytes');
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    expect(() => statSync(path)).to.throw(/ENOENT/);
  });
});
