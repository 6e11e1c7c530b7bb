// cf-unproxied-ports: with enable_unproxied_port_mappings off, a router VM cannot reach the app's
// own ports (8080, 2222) on the cell, only the Envoy ports (TLS with the instance identity); on, both
// work; 61443 is never exposed. Through tcp-router, a TLS route with backend_port 0 works either way
// and a route without TLS information breaks once unproxied ports are off (routing-release#406).
// Rows: fixtures/cf/truth/unproxied-ports.yaml.
import { expect } from 'chai';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { cfTruth, record, report, routedVerdict, routerProps, startCf, tcpRoute } from './lib/cf.ts';

const SUITE = 'cf-unproxied-ports';
interface Row { unproxied: boolean; call: string; port: number; verdict: Verdict }
const rows = cfTruth<{ rows: Row[] }>('unproxied-ports').rows;

describe(`${SUITE}: enable_unproxied_port_mappings on a Diego cell (real Envoy, real HAProxy)`, function () {
  this.timeout(180_000);
  const outcomes: { row: Row; verdict: Verdict; result: ProbeResult }[] = [];

  before(async () => {
    for (const unproxied of [false, true]) {
      const cf = await startCf({ cell: { unproxiedPortMappings: unproxied } });
      try {
        const dora = cf.instance('dora', 0);
        await cf.configureTcpRouter(routerProps(cf, 'tls-mtls'), [
          tcpRoute(cf, 1024, 'dora', 0, { backend_port: 0 }),
          tcpRoute(cf, 1025, 'dora', 0, { backend_tls_port: -1, instance_id: '' }),
        ]);
        const records: ResultRecord[] = [];
        for (const row of rows.filter((r) => r.unproxied === unproxied)) {
          let result: ProbeResult;
          let verdict: Verdict;
          if (row.call === 'direct') {
            const tls = row.port > 60000;
            result = await cf.cluster.probe('cf/tcp-router', tls
              ? { protocol: 'tls', host: dora.cellIp, port: row.port, tls: { ca: cf.caFiles.identity, servername: dora.guid } }
              : { protocol: 'tcp', host: dora.cellIp, port: row.port });
            verdict = result.verdict;
          } else {
            result = await cf.cluster.probe('cf/client', { protocol: 'http', host: cf.tcpRouterIp, port: row.port, path: '/id' });
            verdict = routedVerdict(cf, result);
          }
          outcomes.push({ row, verdict, result });
          records.push(record(cf, { suite: SUITE, scenario: `unproxied port mappings ${unproxied ? 'on' : 'off'}`, from: row.call === 'direct' ? 'tcp-router' : 'client via tcp-router', to: row.call === 'direct' ? `cell dora/0` : row.call, port: row.port, protocol: row.call === 'direct' ? (row.port > 60000 ? 'tls' : 'tcp') : 'http' }, row.verdict.startsWith('allowed') ? 'allowed' : 'denied', verdict, result, verdict === row.verdict));
        }
        report(cf, SUITE, `unproxied port mappings ${unproxied ? 'on' : 'off'}`, records);
      } finally {
        await cf.down();
      }
    }
  });

  it('every row has the hand-written verdict', () => {
    // unproxied-ports.yaml: 7 rows with unproxied port mappings off, 7 with them on
    expect(outcomes).to.have.length(14);
    const wrong = outcomes.filter((o) => o.verdict !== o.row.verdict).map((o) => `unproxied=${o.row.unproxied} ${o.row.call}:${o.row.port}: want ${o.row.verdict}, got ${o.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('off: 8080 and 2222 are unreachable from the router and the Envoy ports present the instance identity', () => {
    const off = outcomes.filter((o) => !o.row.unproxied && o.row.call === 'direct');
    const appPorts = off.filter((x) => x.row.port === 8080 || x.row.port === 2222);
    const envoyPorts = off.filter((x) => x.row.port === 61001 || x.row.port === 61002);
    expect(appPorts.map((o) => o.row.port), 'unproxied-ports.yaml: 8080 and 2222, off').to.deep.equal([8080, 2222]);
    expect(envoyPorts.map((o) => o.row.port), 'unproxied-ports.yaml: 61001 and 61002, off').to.deep.equal([61001, 61002]);
    for (const o of appPorts) expect(o.result.observed, String(o.row.port)).to.equal('denied');
    for (const o of envoyPorts) expect(o.result.evidence.serverIdentity, String(o.row.port)).to.equal('0f3e9d2c-7a41-4c1b-8e5d-000000000001');
  });

  it('a TLS route with backend_port 0 reaches the instance whether or not unproxied ports exist', () => {
    const tlsRoute = outcomes.filter((x) => x.row.port === 1024);
    expect(tlsRoute.map((o) => o.row.unproxied), 'unproxied-ports.yaml: the 1024 route, off and on').to.deep.equal([false, true]);
    for (const o of tlsRoute) expect(o.result.evidence.body, `unproxied=${o.row.unproxied}`).to.equal('0f3e9d2c-7a41-4c1b-8e5d-000000000001');
  });
});
