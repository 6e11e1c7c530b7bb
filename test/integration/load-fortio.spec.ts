// The fixed-rate runner with the real fortio (built by `meshproof doctor --fix`) against an in-process echo on
// loopback: runFortio reads fortio's -json result and /proc over the run, directly with Istio's fast client and,
// for a proxied path (C2C's egress proxy), with Go's net/http client through HTTP_PROXY: every request
// absolute-form with the target's Host, as an app's Go client sends it. Nothing here is a speed target.
import { expect } from 'chai';
import { hostname } from 'node:os';
import { resolveFortio } from '../../src/harness/cli/provision-fortio.ts';
import { DEFAULT_FIXED_RATE, runFortio } from '../../src/harness/load/fortio.ts';
import type { LoadHost, LoadPath } from '../../src/harness/load/path.ts';
import { runCapture } from '../../src/harness/substrate/sh.ts';
import { sampleContainer, sampleMachine } from '../../src/harness/substrate/netns/proc.ts';
import { startEcho } from '../../src/harness/workloads/echo.ts';
import type { WorkloadHandle } from '../../src/harness/workloads/common.ts';
import { startForwardProxy } from '../lib/forward-proxy.ts';

describe('load: fortio at a fixed rate against an echo on loopback', function () {
  this.timeout(60_000);
  let echo: WorkloadHandle;
  // the "pod" is this machine: exec runs the argv here, the echo (and so the "app") is this process; fortio is
  // exec'd, so the members that run a container are never called
  const none = (): never => {
    throw new Error('fortio runs by exec');
  };
  const host: LoadHost = {
    runId: 'x',
    runDir: '/tmp',
    substrate: 'netns',
    exec: (_pod, argv, o) => runCapture(argv, { timeoutMs: o?.timeoutMs }),
    startContainer: async () => none(),
    stopContainer: async () => none(),
    signalContainer: () => none(),
    containerLog: async () => none(),
    containerStatus: () => none(),
    // the netns substrate's own readers, on this process
    sample: async () => sampleContainer(process.pid)!,
    machine: async () => sampleMachine([]),
  };
  const path = (target: string, proxy?: string): LoadPath => ({
    id: 'baseline',
    letter: 'a',
    description: 'loopback',
    host,
    client: 'here',
    target,
    ...(proxy ? { proxy } : {}),
    procs: [{ role: 'server-app', kind: 'app', pod: 'here', container: 'app' }],
    verify: async () => 'ok',
  });
  const settings = { ...DEFAULT_FIXED_RATE, rate: 200, payloadBytes: 1024 };
  before(async () => {
    echo = await startEcho({ host: '127.0.0.1', port: 0, log: () => undefined, env: {} });
  });
  after(() => echo.close());

  it('runs fortio load -json - in the client, reads the rate, percentiles and calls, and /proc of the path over the run', async () => {
    const fortio = resolveFortio();
    const r = await runFortio(fortio, path(`http://127.0.0.1:${echo.port}`), settings, 2, 1);
    const f = r.figures;
    expect([f.tool, f.version, f.client, f.connections, f.requestedRps]).to.deep.equal(['fortio', '1.68.2', 'fast', 2, 200]);
    expect(f.url).to.equal(`http://127.0.0.1:${echo.port}/bytes/1024`);
    expect(f.requests).to.be.above(0);
    expect(f.errors).to.equal(0);
    expect(f.retCodes['200']).to.equal(f.requests);
    expect(f.responseBytes).to.be.above(1024); // the 1 KB body and its headers
    expect(f.latencyMs.p50).to.be.above(0).and.at.most(f.latencyMs.p90);
    expect(f.latencyMs.p90).to.be.at.most(f.latencyMs.p99);
    expect(r.costs.map((c) => [c.role, c.comm, c.workers])).to.deep.equal([['server-app', 'node', null]]);
    expect(r.costs[0]!.cpuS).to.be.above(0); // this process answered every call
    expect(r.machine.cpus).to.be.at.least(1);
    expect(r.others.every((o) => o.pid !== process.pid)).to.equal(true);
  });

  it("a proxied path: Go's net/http client (-stdclient) through HTTP_PROXY, absolute-form with the target's Host", async () => {
    const proxy = await startForwardProxy(echo.port);
    try {
      // fortio looks the target's name up itself even through a proxy (in a C2C pod its hosts file names every
      // app): here the machine's own name stands in, which Go does not exempt from the proxy as it does localhost
      const name = hostname();
      const r = await runFortio(resolveFortio(), path(`http://${name}:62443`, `127.0.0.1:${proxy.port}`), settings, 2, 1);
      expect(r.client).to.equal('std');
      expect(r.figures.errors, proxy.errors.join(' | ')).to.equal(0);
      expect(r.figures.requests).to.be.above(0);
      expect([...proxy.seen]).to.deep.equal([`GET http://${name}:62443/bytes/1024 host=${name}:62443`]);
    } finally {
      await proxy.close();
    }
  });
});
