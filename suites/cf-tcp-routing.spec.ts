// cf-tcp-routing: the CATS tcp_routing tests (cf-acceptance-tests tcp_routing/tcp_routing.go) on
// real HAProxy behind TLS routes: one port reaches `server1`; two apps mapped to one port are both
// seen within 10 connections (GetNServerResponses(10)); two ports reach the same app. The CATS
// client (SendAndReceive) writes `Time is <ns>` and reads the tcp-listener's `<serverId>:<bytes>`.
// Routing table: fixtures/cf/routes/cats-tcp-routing.json (routing-api JSON).
import { expect } from 'chai';
import type { CfFoundation } from '../src/harness/profiles/cf/index.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { record, report, routedVerdict, routerProps, routeTable, startCf } from './lib/cf.ts';

const SUITE = 'cf-tcp-routing';

describe(`${SUITE}: CATS tcp_routing over TLS routes (real HAProxy, real Envoy)`, function () {
  this.timeout(120_000);
  let cf: CfFoundation;
  const calls = new Map<number, ProbeResult[]>();

  before(async () => {
    cf = await startCf();
    await cf.configureTcpRouter(routerProps(cf, 'tls-mtls'), routeTable(cf, 'fixtures/cf/routes/cats-tcp-routing.json'));
    const plan: [number, number][] = [[1024, 1], [1025, 10], [1026, 1], [1027, 1]];
    for (const [port, n] of plan) {
      // one connection per call, like SendAndReceive's net.Dial
      const results = await cf.cluster.probeMany(Array.from({ length: n }, () => ({ from: 'cf/client', req: { protocol: 'tcp' as const, host: cf.tcpRouterIp, port } })), { concurrency: 1 });
      calls.set(port, results);
    }
    const records = [...calls.entries()].flatMap(([port, rs]) =>
      rs.slice(0, 1).map((r) => record(cf, { suite: SUITE, scenario: 'CATS tcp_routing', from: 'client', to: 'tcp-router', port, protocol: 'tcp' }, 'allowed', routedVerdict(cf, r), r, routedVerdict(cf, r) === 'allowed:tls')),
    );
    report(cf, SUITE, 'CATS tcp_routing', records);
  });
  after(async () => cf?.down());

  const servers = (port: number) => (calls.get(port) ?? []).map((r) => (r.evidence.body ?? '').split(':')[0]);

  it('maps a single external port to an app: the response names server1', () => {
    expect(calls.get(1024)![0]!.evidence.body).to.match(/^server1:Time is /);
  });

  it('maps two apps to one external port: both are seen within 10 connections', () => {
    expect(new Set(servers(1025))).to.deep.equal(new Set(['server1', 'server2']));
  });

  it('maps two external ports to the same app', () => {
    expect([...servers(1026), ...servers(1027)]).to.deep.equal(['server1', 'server1']);
  });

  it('every call travels router → cell over TLS (no plaintext on that leg)', () => {
    // 1 + 10 + 1 + 1 connections on ports 1024-1027
    expect([...calls.values()].flat()).to.have.length(13);
    for (const [port, rs] of calls) for (const r of rs) expect(routedVerdict(cf, r), `port ${port}`).to.equal('allowed:tls');
  });
});
