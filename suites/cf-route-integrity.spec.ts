// cf-route-integrity: routers dial app instances over TLS and check the instance guid, so a stale
// route (the instance replaced at the same IP:port by another guid) delivers no byte to the wrong
// app; the right guid is answered by that instance (dora /id echoes it); a backend certificate from
// another CA is refused; a backend that requires client certificates refuses a router without one.
// The same for tcp-router (real HAProxy) and the HTTP front router (Envoy with gorouter semantics).
// Rows: fixtures/cf/truth/route-integrity.yaml.
import { expect } from 'chai';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { cfTruth, record, report, routedVerdict, routerProps, startCf, tcpRoute } from './lib/cf.ts';

const SUITE = 'cf-route-integrity';
const HOST = 'dora.example.com';
interface Row {
  router: 'tcp-router' | 'gorouter';
  case: string;
  config?: string;
  ca?: 'identity' | 'other';
  client_cert?: boolean;
  cells: 'default' | 'require-client-cert';
  route: 'right' | 'stale';
  verdict: Verdict;
}
interface Outcome { row: Row; result: ProbeResult; verdict: Verdict; wrongAppReached: boolean; namedAppReached: boolean; target: string }
const rows = cfTruth<{ rows: Row[] }>('route-integrity').rows;

describe(`${SUITE}: routers only deliver to the instance they expect (real HAProxy, real Envoy)`, function () {
  this.timeout(180_000);
  const outcomes: Outcome[] = [];

  before(async () => {
    const records: ResultRecord[] = [];
    for (const cells of ['default', 'require-client-cert'] as const) {
      const cf = await startCf({ cell: { requireAndVerifyClientCertificates: cells === 'require-client-cert' } });
      try {
        const dora0 = cf.instance('dora', 0);
        const dora1 = cf.instance('dora', 1);
        // the app behind the cell port each route names: stale routes point at dora/1's cell with dora/0's guid
        const at = (route: Row['route']) => (route === 'right' ? dora0 : dora1);
        // bytes each instance's Envoy wrote to its app (tcp_proxy may open the upstream connection before the
        // downstream TLS handshake ends, so connections are not the measure; bytes are)
        const TO_APP = /^cluster\.service-cluster-8080\.upstream_cx_tx_bytes_total$/;
        const upstreamCx = async () => ({ d0: await cf.envoyStat(dora0, TO_APP), d1: await cf.envoyStat(dora1, TO_APP) });
        for (const row of rows.filter((r) => r.cells === cells)) {
          const cell = at(row.route);
          const before = await upstreamCx();
          let result: ProbeResult;
          if (row.router === 'tcp-router') {
            await cf.configureTcpRouter(routerProps(cf, row.config!), [tcpRoute(cf, 1024, 'dora', cell.index, { instance_id: dora0.guid })]);
            result = await cf.cluster.probe('cf/client', { protocol: 'http', host: cf.tcpRouterIp, port: 1024, path: '/id' });
          } else {
            await cf.configureGorouter([{ host: HOST, endpoints: [{ host: cell.cellIp, tlsPort: 61001, serverCertDomainSan: dora0.guid }] }], { ca: row.ca, clientCert: row.client_cert });
            result = await cf.cluster.probe('cf/client', { protocol: 'http', host: cf.gorouterIp, port: 80, path: '/id', headers: { host: HOST } });
          }
          const after = await upstreamCx();
          const verdict = routedVerdict(cf, result, row.router === 'tcp-router' ? cf.tcpRouterIp : cf.gorouterIp);
          // the instance the route did not name must never get a byte from its Envoy
          const wrongAppReached = row.route === 'stale' ? after.d1 > before.d1 : false;
          outcomes.push({ row, result, verdict, wrongAppReached, namedAppReached: after.d0 > before.d0, target: dora0.guid });
          const scenario = `${cells} cells`;
          records.push(record(cf, { suite: SUITE, scenario, from: row.router, to: `${row.case}`, port: row.router === 'tcp-router' ? 1024 : 80, protocol: row.router === 'tcp-router' ? 'tcp' : 'http' }, row.verdict.startsWith('allowed') ? 'allowed' : 'denied', verdict, result, verdict === row.verdict && !wrongAppReached));
        }
        report(cf, SUITE, `${cells} cells`, records.splice(0));
      } finally {
        await cf.down();
      }
    }
  });

  it('every row has the hand-written verdict', () => {
    // route-integrity.yaml: 5 tcp-router rows, 5 gorouter rows
    expect(outcomes.map((o) => `${o.row.router} ${o.row.case}`)).to.have.length(10);
    const wrong = outcomes.filter((o) => o.verdict !== o.row.verdict).map((o) => `${o.row.router} ${o.row.case} (${o.row.cells}): want ${o.row.verdict}, got ${o.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('the right guid is answered by that instance: dora /id echoes it, and its Envoy counts the bytes it sent to the app', () => {
    const allowed = outcomes.filter((x) => x.row.verdict.startsWith('allowed'));
    // route-integrity.yaml: "right instance" and "client cert required, router presents one", for each router
    expect(allowed.map((o) => `${o.row.router} ${o.row.case}`)).to.have.members([
      'tcp-router right instance', 'tcp-router client cert required, router presents one', 'gorouter right instance', 'gorouter client cert required, router presents one',
    ]);
    for (const o of allowed) {
      expect(o.namedAppReached, `${o.row.router} ${o.row.case}: the counter that proves "no byte" must see this one`).to.equal(true);
      expect(o.result.evidence.status, `${o.row.router} ${o.row.case}`).to.equal(200);
      expect(o.result.evidence.body, `${o.row.router} ${o.row.case}`).to.equal(o.target);
    }
  });

  it('a stale route delivers no byte to the app now at that IP:port', () => {
    const stale = outcomes.filter((o) => o.row.route === 'stale');
    expect(stale.length).to.equal(2);
    for (const o of stale) {
      expect(o.wrongAppReached, `${o.row.router}: dora/1's Envoy sent bytes to its app`).to.equal(false);
      expect(o.result.evidence.body ?? '', o.row.router).to.not.include('0f3e9d2c-7a41-4c1b-8e5d-000000000002');
    }
  });

  it('the front router marks endpoint failures with X-Cf-RouterError: endpoint_failure', () => {
    const failures = outcomes.filter((x) => x.row.router === 'gorouter' && x.row.verdict.startsWith('denied'));
    expect(failures.map((o) => o.row.case), 'route-integrity.yaml: the three gorouter denials').to.have.members(['stale route', 'backend cert from another CA', 'client cert required, router has none']);
    for (const o of failures) {
      expect(o.result.headers?.['x-cf-routererror'] ?? '', o.row.case).to.match(/^endpoint_failure/);
    }
  });
});
