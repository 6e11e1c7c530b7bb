// istio-ingress-gateway: the workshop's ingress gateway on a real Envoy gateway proxy (a
// Deployment injected with Istio's `gateway` template, in istio-system). SIMPLE serves
// sentences.example.com over TLS; MUTUAL refuses a caller without a client certificate or with
// one from another CA at the handshake, and with the workshop's client certificate answers
// `<name> is <age> years`, the gateway → sentences leg being mesh mTLS under STRICT.
// Rows: fixtures/istio/truth/ingress/gateway.yaml.
import { expect } from 'chai';
import { join } from 'node:path';
import { startModel } from './lib/istio.ts';
import type { Mesh } from '../src/harness/profiles/istio/mesh.ts';
import { apply, loadIstio } from '../src/harness/profiles/istio/resources.ts';
import { scenarioModel, SENTENCES_FIXTURE } from '../src/harness/matrix/istio.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { CertificateAuthority, issueClient } from '../src/harness/pki/index.ts';
import { appendResults, toRecord, truthTable } from '../src/harness/report/results.ts';
import type { Observed, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult, ProbeTls } from '../src/harness/probe/types.ts';

const SUITE = 'istio-ingress-gateway';
const HOST = 'sentences.example.com';
const CREDENTIAL = 'sentences-tls-secret';

interface Row {
  gateway: string;
  client: 'none' | 'workshop' | 'other-ca';
  expected: Observed;
  verdict: Verdict;
  status?: number;
}
const table = parseYamlFile('fixtures/istio/truth/ingress/gateway.yaml') as { scenario: string; apply: string[]; inject: string[]; rows: Row[] };

describe(`${SUITE}: ${table.scenario} (real Envoy)`, function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let otherCa: { cert: string; key: string };
  const outcomes: { row: Row; result: ProbeResult }[] = [];
  const base = scenarioModel({ apply: table.apply, inject: table.inject });
  const withGateway = (file: string) => apply(base, loadIstio(join(SENTENCES_FIXTURE, file)));

  before(async () => {
    mesh = await startModel(withGateway(table.rows[0]!.gateway));
    const other = await CertificateAuthority.create('not-example');
    otherCa = await mesh.pkiStore.writeIdentity({ ...(await issueClient(other, { cn: 'client.example.com', o: 'ACMEorg' })), name: 'other-ca.client' });
    const vip = mesh.cluster.services.get('istio-system/istio-ingressgateway')!.vip;
    let current = '';
    for (const row of table.rows) {
      if (row.gateway !== current) {
        await mesh.update(withGateway(row.gateway));
        current = row.gateway;
      }
      const cred = mesh.gatewayCredential('istio-system', CREDENTIAL);
      const tls: ProbeTls = { ca: cred.cacert, servername: HOST };
      if (row.client === 'workshop') Object.assign(tls, cred.client);
      if (row.client === 'other-ca') Object.assign(tls, otherCa);
      // curl --resolve sentences.example.com:443:<gateway IP> from a pod outside the mesh
      const result = await mesh.cluster.probe('default/sleep-naked', { protocol: 'https', host: vip, port: 443, path: '/', headers: { host: HOST }, tls });
      outcomes.push({ row, result });
    }
    const meta = { run: mesh.cluster.runId, substrate: mesh.cluster.substrate, profile: 'istio' };
    const records = outcomes.map(({ row, result }) =>
      toRecord(meta, { suite: SUITE, scenario: `${row.gateway} client=${row.client}`, from: `sleep-naked ${row.gateway.includes('simple') ? 'SIMPLE' : 'MUTUAL'} cert=${row.client}`, to: 'istio-ingressgateway', port: 443, protocol: 'https' }, row.expected, result, result.verdict === row.verdict),
    );
    appendResults(mesh.cluster.runDir, records);
    console.log(truthTable(`\n    ${SUITE}: ${table.scenario}`, records).replace(/\n/g, '\n    '));
  });
  after(async () => mesh?.down());

  it('every row matches the hand-written table', () => {
    // gateway.yaml: SIMPLE × none, MUTUAL × {none, workshop, other-ca}
    expect(outcomes.map((o) => `${o.row.gateway} ${o.row.client}`)).to.deep.equal(['igw/gateway-simple.yaml none', 'igw/gateway.yaml none', 'igw/gateway.yaml workshop', 'igw/gateway.yaml other-ca']);
    const wrong = outcomes.filter((o) => o.result.verdict !== o.row.verdict).map((o) => `${o.row.gateway} client=${o.row.client}: want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('SIMPLE serves sentences.example.com with the credential\'s server certificate', () => {
    const o = outcomes.find((x) => x.row.gateway.endsWith('gateway-simple.yaml'))!;
    expect(o.result.evidence.status).to.equal(200);
    expect(o.result.evidence.serverIdentity).to.equal(HOST);
    expect(o.result.evidence.body).to.match(/^.+ is \d+ years$/);
  });

  it('MUTUAL with the workshop client certificate answers `<name> is <age> years`; the gateway forwards the caller\'s subject and reaches sentences over mesh mTLS', () => {
    const o = outcomes.find((x) => x.row.client === 'workshop')!;
    expect(o.result.evidence.status).to.equal(200);
    expect(o.result.evidence.body).to.match(/^.+ is \d+ years$/);
    expect(o.result.evidence.xfcc ?? '').to.include('Subject="CN=client.example.com,O=ACMEorg"');
    expect(o.result.evidence.xfcc ?? '').to.include('URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
    expect(o.result.evidence.wire).to.equal('no-plaintext');
  });

  it('MUTUAL refuses a caller without a client certificate and one from another CA at the handshake, before any HTTP', () => {
    const denied = outcomes.filter((x) => x.row.expected === 'denied');
    expect(denied.map((o) => o.row.client), 'gateway.yaml: MUTUAL without a certificate and with another CA\'s').to.deep.equal(['none', 'other-ca']);
    for (const o of denied) {
      expect(o.result.verdict, o.row.client).to.equal('denied:tls-handshake');
      expect(o.result.evidence.status, o.row.client).to.equal(null);
    }
  });
});
