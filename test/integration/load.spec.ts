// The load machinery on this machine: ProcWatch reading /proc for this very process (it asks getconf
// for USER_HZ); the `load` workload running autocannon against an in-process echo on loopback, directly
// and through a forward proxy; and the closed-loop runner (runAutocannon) starting the workload as a
// "container" through a port-shaped host that runs it as a process here, its window bounded by the
// workload's armed line and figures line. Nothing here is a speed target (those live in `npm run
// bench`): CPU is burnt until node itself says it was, so a loaded machine only makes it slower.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { runCapture } from '../../src/harness/substrate/sh.ts';
import { ProcWatch, sampleMachine, sampleTree } from '../../src/harness/substrate/netns/proc.ts';
import type { ContainerSpec } from '../../src/harness/substrate/types.ts';
import { startEcho } from '../../src/harness/workloads/echo.ts';
import { parseLoadArgs, runLoadOnce } from '../../src/harness/workloads/load.ts';
import type { WorkloadHandle } from '../../src/harness/workloads/common.ts';
import { ARMED_LINE, DONE_LINE } from '../../src/harness/load/figures.ts';
import type { LoadHost, LoadPath } from '../../src/harness/load/path.ts';
import { DEFAULT_SETTINGS, runAutocannon } from '../../src/harness/load/runner.ts';
import { startForwardProxy } from '../lib/forward-proxy.ts';

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

  it('runs autocannon (warm-up, then measured, bounded by --max-requests) and prints its figures and the warm-up count', async () => {
    const line = await runLoadOnce(parseLoadArgs(['--url', `http://127.0.0.1:${echo.port}/bytes/1024`, '--connections', '2', '--duration', '1', '--warmup', '1', '--max-requests', '300']));
    expect(line.tool).to.equal('autocannon');
    expect(line.errors).to.equal(0);
    expect(line.warmupRequests).to.be.within(2, 300);
    expect(line.requests).to.be.within(2, 300);
    expect(line.latencyMs.p99).to.be.above(0);
    expect(line.bytesPerS).to.be.above(0);
    expect(line.clientCpuS).to.be.above(0);
  });

  it('goes through a plain HTTP proxy with --proxy: every request absolute-form, Host the target', async () => {
    const proxy = await startForwardProxy(echo.port);
    try {
      const line = await runLoadOnce(parseLoadArgs(['--url', 'http://backend.apps.internal:62443/bytes/1024', '--proxy', `127.0.0.1:${proxy.port}`, '--connections', '2', '--duration', '1', '--max-requests', '200']));
      expect(line.errors, proxy.errors.join(' | ')).to.equal(0);
      expect(line.requests).to.be.within(2, 200);
      expect(line.bytesPerS).to.be.above(0);
      expect([...proxy.seen]).to.deep.equal(['GET http://backend.apps.internal:62443/bytes/1024 host=backend.apps.internal:62443']);
    } finally {
      await proxy.close();
    }
  });
});

describe('load: the closed-loop run through the port (runAutocannon: the workload as a container, its window)', function () {
  this.timeout(60_000);
  // the "app": a server that counts the requests it received; its "CPU seconds" as the host samples it are that
  // count, so the watch's figure for it is exactly the requests that arrived inside the window
  let received = 0;
  let app: Server;
  let port: number;
  const children = new Map<string, { child: ChildProcess; log: string; exited: Promise<number | null> }>();
  const entry = join(process.cwd(), 'src/harness/workloads/main.ts');
  const started: string[] = [];
  const host: LoadHost = {
    runId: 'x',
    runDir: '/tmp',
    substrate: 'netns',
    exec: (_pod, argv, o) => runCapture(argv, { timeoutMs: o?.timeoutMs }),
    startContainer: async (_pod, c: ContainerSpec) => {
      expect(c.workload).to.equal('load');
      started.push(c.name);
      const child = spawn(process.execPath, ['--import', 'tsx', entry, c.workload!, ...(c.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
      const x = { child, log: '', exited: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
      child.stdout!.on('data', (d: Buffer) => (x.log += d.toString('utf8')));
      child.stderr!.on('data', (d: Buffer) => (x.log += d.toString('utf8')));
      children.set(c.name, x);
    },
    stopContainer: async (_pod, name) => {
      const x = children.get(name);
      if (x && x.child.exitCode === null && x.child.signalCode === null) {
        const gone = new Promise((r) => x.child.once('exit', r));
        x.child.kill('SIGTERM');
        await gone;
      }
    },
    signalContainer: (_pod, name, signal) => {
      children.get(name)!.child.kill(signal);
    },
    containerLog: async (_pod, name) => children.get(name)!.log,
    containerStatus: (_pod, name) => {
      const x = children.get(name);
      if (!x) return undefined;
      const exited = x.child.exitCode !== null || x.child.signalCode !== null;
      return { exitCode: exited ? x.child.exitCode : undefined, exited: x.exited };
    },
    sample: async (_pod, container) => {
      expect(container).to.equal('app');
      return { cpuSeconds: received, rssBytes: 2 ** 20, commands: [['node', 'counting-app']] };
    },
    machine: async () => sampleMachine([]),
  };
  const path = (proxy?: string): LoadPath => ({
    id: 'baseline',
    letter: 'a',
    description: 'loopback',
    host,
    client: 'here',
    target: `http://127.0.0.1:${port}`,
    ...(proxy ? { proxy } : {}),
    procs: [{ role: 'server-app', kind: 'app', pod: 'here', container: 'app' }],
    verify: async () => 'ok',
  });
  before(async () => {
    app = createServer((req, res) => {
      received++;
      const n = Number(/^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1] ?? NaN);
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(Number.isFinite(n) ? n : 0));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    port = (app.address() as AddressInfo).port;
  });
  after(async () => {
    for (const name of children.keys()) await host.stopContainer('here', name);
    app.closeAllConnections();
    await new Promise((r) => app.close(r));
  });

  it('samples the path over the measured run only: every measured request inside the window, none of the warm-up', async () => {
    const s = { ...DEFAULT_SETTINGS, connections: 2, durationS: 1, warmupS: 1, maxRequests: 400 };
    const before = received;
    const r = await runAutocannon(path(), s);
    const f = r.figures;
    expect(f.tool).to.equal('autocannon');
    expect(f.errors).to.equal(0);
    expect(f.requests).to.be.within(2, 400);
    // the warm-up's requests arrived before the window opened (the workload waited, armed, for the signal)
    const warmup = received - before - (r.costs[0]!.cpuS as number);
    expect(warmup, `received ${received - before} in all, ${r.costs[0]!.cpuS} in the window, ${f.requests} measured`).to.be.at.least(2);
    // inside the window: the measured requests, and at most one more in flight per connection when autocannon stopped
    expect(r.costs[0]!.cpuS).to.be.within(f.requests, f.requests + s.connections);
    expect(r.costs.map((c) => [c.role, c.comm, c.rssMiB])).to.deep.equal([['server-app', 'node', 1]]);
    expect(r.machine.wallS).to.be.above(0);
    expect(started).to.have.length(1);
    const log = children.get(started[0]!)!.log;
    // armed after the warm-up, done as the measured run ended, then the figures
    expect(log.split('\n').slice(0, 2)).to.deep.equal([ARMED_LINE, DONE_LINE]);
    expect(JSON.parse(log.split('\n')[2]!)).to.include({ tool: 'autocannon', requests: f.requests });
  });

  it('names the workload error from its log when the run fails, and stops the container', async () => {
    const s = { ...DEFAULT_SETTINGS, connections: 2, durationS: 1, warmupS: 0, maxRequests: 100 };
    // a proxy for an https:// target is a usage error of the workload
    const bad: LoadPath = { ...path('127.0.0.1:1'), target: `https://127.0.0.1:${port}` };
    const err = await runAutocannon(bad, s).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/^path baseline: the load workload in here failed: meshproof workload: load --proxy: only http:\/\/ targets/);
    const x = children.get(started[started.length - 1]!)!;
    expect(x.child.exitCode ?? x.child.signalCode).to.not.equal(null);
  });
});
