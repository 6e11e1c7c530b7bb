// The relay workload (host 127.0.0.1 port → Unix socket → a server in the node namespace), on
// loopback and a temp dir: bytes both ways, a client's half-close, a refused target, cleanup.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type NetConnectOpts, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPodBundle } from '../src/harness/substrate/bundle.ts';
import { pollUntil } from '../src/harness/substrate/poll.ts';
import { parseHostPort, startRelay } from '../src/harness/workloads/relay.ts';

/** Reads everything until the peer's FIN, then answers `got <n> bytes` and closes: a reply after the client half-closed. */
async function countingServer(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (b: Buffer) => (n += b.length));
    s.on('end', () => s.end(`got ${n} bytes`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Sends `payload`, half-closes, and resolves with what came back before the close (or the error code). */
function exchange(to: NetConnectOpts, payload: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ ...to, allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.on('close', () => resolve(Buffer.concat(got).toString()));
    s.end(payload);
  });
}

describe('relay', function () {
  let dir: string;
  let target: { server: Server; port: number };
  const lines: string[] = [];
  const log = (l: string): void => void lines.push(l);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mp-relay-'));
    target = await countingServer();
  });
  after(() => {
    target.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('Unix socket → TCP: 1 MiB across, the reply after the client FIN arrives whole; the socket is 0600', async function () {
    const path = join(dir, 'a.sock');
    const relay = await startRelay({ listen: { path }, connect: { host: '127.0.0.1', port: target.port }, log });
    expect(relay.port).to.equal(0);
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    expect(await exchange({ path }, Buffer.alloc(1 << 20, 7))).to.equal('got 1048576 bytes');
    await relay.close();
    expect(() => statSync(path)).to.throw(/ENOENT/);
    expect(lines).to.include(`relay listening on ${path} -> 127.0.0.1:${target.port}`);
  });

  it('127.0.0.1:<ephemeral> → Unix socket → TCP: the host path of the kube API, chained', async function () {
    const path = join(dir, 'b.sock');
    const node = await startRelay({ listen: { path }, connect: { host: '127.0.0.1', port: target.port }, log });
    const host = await startRelay({ listen: { host: '127.0.0.1', port: 0 }, connect: { path }, log });
    expect(host.port).to.be.greaterThan(0);
    const answers = await Promise.all([1, 2, 3].map((k) => exchange({ host: '127.0.0.1', port: host.port }, Buffer.alloc(k * 1000))));
    expect(answers).to.deep.equal(['got 1000 bytes', 'got 2000 bytes', 'got 3000 bytes']);
    await host.close();
    await node.close();
  });

  it('a refused target: the client is closed with nothing, the relay logs why and keeps serving', async function () {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const path = join(dir, 'c.sock');
    const relay = await startRelay({ listen: { path }, connect: { host: '127.0.0.1', port }, log });
    const first = await exchange({ path }, Buffer.from('x'));
    expect(['', 'error ECONNRESET', 'error EPIPE']).to.include(first);
    expect(lines).to.include(`relay: 127.0.0.1:${port}: ECONNREFUSED`);
    expect(['', 'error ECONNRESET', 'error EPIPE']).to.include(await exchange({ path }, Buffer.from('y')));
    await relay.close();
  });

  it('close() drops an open connection and is idempotent', async function () {
    const path = join(dir, 'd.sock');
    const relay = await startRelay({ listen: { path }, connect: { host: '127.0.0.1', port: target.port }, log });
    const s = connect({ path });
    await new Promise<void>((r) => s.once('connect', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => undefined);
    await Promise.all([relay.close(), relay.close()]);
    await closed;
  });

  describe('as a pod runs it: node <pod bundle> relay ...', function () {
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
});
