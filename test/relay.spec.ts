// The relay workload (host 127.0.0.1 port → Unix socket → a server in the node namespace), on
// loopback and a temp dir: bytes both ways, a client's half-close, a refused target, cleanup. The relay as the
// pod runs it (a process from the pod bundle) is test/integration/relay.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay } from '../src/harness/workloads/relay.ts';

import { countingServer, exchange } from './lib/sockets.ts';

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

});
