// The load machinery on this machine: ProcWatch reading /proc for this very process (it asks getconf
// for USER_HZ), and the `load` workload running autocannon against an in-process echo on loopback,
// directly and through a forward proxy. Nothing here is a speed target (those live in `npm run
// bench`): CPU is burnt until node itself says it was, so a loaded machine only makes it slower.
import { expect } from 'chai';
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ProcWatch, sampleTree } from '../../src/harness/substrate/netns/proc.ts';
import { startEcho } from '../../src/harness/workloads/echo.ts';
import { parseLoadArgs, runLoadOnce } from '../../src/harness/workloads/load.ts';
import type { WorkloadHandle } from '../../src/harness/workloads/common.ts';

/** CPU seconds node reports for this process (user + system, all threads). */
const cpuS = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

describe('load: ProcWatch on this very process', function () {
  this.timeout(60_000);

  it('counts the CPU this process burnt in the window, as node itself counts it, whatever the machine\'s speed', () => {
    const BURN_S = 0.3;
    const outer0 = cpuS();
    const w = new ProcWatch([process.pid], 10);
    const inner0 = cpuS();
    let x = 0;
    // burn until node says BURN_S of CPU went by (a slow or loaded machine takes longer, never less CPU)
    const wallDeadline = Date.now() + 45_000;
    while (cpuS() - inner0 < BURN_S) {
      for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + i);
      if (Date.now() > wallDeadline) throw new Error(`could not burn ${BURN_S} s of CPU in 45 s of wall time`);
    }
    const inner = cpuS() - inner0;
    const { procs, machine } = w.stop();
    const outer = cpuS() - outer0;
    expect(x).to.be.above(0);
    expect(procs.map((p) => p.pid)).to.deep.equal([process.pid]);
    // /proc counts in clock ticks (10 ms): each end of the window may round down by one
    expect(procs[0]!.cpuS, `node counted ${inner.toFixed(3)} s inside the window, ${outer.toFixed(3)} s around it`).to.be.within(inner - 0.02, outer + 0.02);
    expect(procs[0]!.rssMiB).to.be.above(10);
    // the machine was busy at least as long as this process was
    expect(machine.busyS + machine.irqS).to.be.at.least(procs[0]!.cpuS - 0.02 * machine.cpus);
    expect(sampleTree(2 ** 22 + 1)).to.equal(undefined);
    expect(() => new ProcWatch([2 ** 22 + 1])).to.throw(/not running/);
  });
});

describe('load: the load workload against an echo on loopback', function () {
  this.timeout(30_000);
  let echo: WorkloadHandle;
  before(async () => {
    echo = await startEcho({ host: '127.0.0.1', port: 0, log: () => undefined, env: {} });
  });
  after(() => echo.close());

  it('the echo answers GET /bytes/<n> with n bytes', async () => {
    const r = await fetch(`http://127.0.0.1:${echo.port}/bytes/1500`);
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('application/octet-stream');
    expect((await r.arrayBuffer()).byteLength).to.equal(1500);
    expect((await fetch(`http://127.0.0.1:${echo.port}/bytes/999999999`)).status).to.equal(400);
  });

  it('runs autocannon (warm-up, then measured, bounded by --max-requests) and reads /proc over the measured run', async () => {
    const line = await runLoadOnce(parseLoadArgs(['--url', `http://127.0.0.1:${echo.port}/bytes/1024`, '--connections', '2', '--duration', '1', '--warmup', '1', '--max-requests', '300', '--watch', String(process.pid)]));
    expect(line.tool).to.equal('autocannon');
    expect(line.errors).to.equal(0);
    expect(line.warmupRequests).to.be.within(2, 300);
    expect(line.requests).to.be.within(2, 300);
    expect(line.latencyMs.p99).to.be.above(0);
    expect(line.bytesPerS).to.be.above(0);
    expect(line.procs.map((p) => p.pid)).to.deep.equal([process.pid]); // the echo runs in this process
    expect(line.procs[0]!.cpuS).to.be.above(0);
    expect(line.machine.cpus).to.be.at.least(1);
  });

  it('goes through a plain HTTP proxy with --proxy: every request absolute-form, Host the target', async () => {
    const seen = new Set<string>();
    const errors: string[] = [];
    const agent = new Agent({ keepAlive: true });
    // a forward proxy as small as it gets: absolute-form in, origin-form out to the echo. Every stream has an
    // error handler: when autocannon stops it drops its connections mid-request, and an unhandled
    // "socket hang up" on the upstream request would be an uncaught exception (mocha then stops the run).
    const forward = (req: IncomingMessage, res: ServerResponse): void => {
      seen.add(`${req.method} ${req.url} host=${req.headers.host}`);
      const up = request({ host: '127.0.0.1', port: echo.port, path: new URL(req.url!).pathname, agent }, (r) => {
        r.on('error', () => res.destroy());
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => {
        errors.push(e.message);
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      });
      req.on('error', () => up.destroy());
      res.on('error', () => up.destroy());
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      up.end();
    };
    const proxy: Server = createServer(forward);
    proxy.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const port = (proxy.address() as { port: number }).port;
      const line = await runLoadOnce(parseLoadArgs(['--url', 'http://backend.apps.internal:62443/bytes/1024', '--proxy', `127.0.0.1:${port}`, '--connections', '2', '--duration', '1', '--max-requests', '200']));
      expect(line.errors, errors.join(' | ')).to.equal(0);
      expect(line.requests).to.be.within(2, 200);
      expect(line.bytesPerS).to.be.above(0);
      expect([...seen]).to.deep.equal(['GET http://backend.apps.internal:62443/bytes/1024 host=backend.apps.internal:62443']);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      agent.destroy();
    }
  });
});
