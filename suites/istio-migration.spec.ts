// istio-migration: the workshop's steps in order on one running mesh (michaelvl/istio-katas
// mutual-tls.md), asserted at each step through the real sentences app: no sidecars + STRICT
// still flows; `age` injected → `sentences` answers 500; PERMISSIVE restores; every app injected
// + STRICT → every edge is mTLS.
import { expect } from 'chai';
import type { Mesh } from '../src/harness/profiles/istio/mesh.ts';
import { scenarioModel } from '../src/harness/matrix/istio.ts';
import { checkTable, table, startModel } from './lib/istio.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';

const SUITE = 'istio-migration';
// The workshop's answer, with the v1 or v2 name list.
const SENTENCE = /^(Peter|Ray|Egon|Athos \(v2\)|Porthos \(v2\)|Aramis \(v2\)|d'Artagnan \(v2\)) is \d+ years$/;

describe(`${SUITE}: the workshop's steps, in order, on one mesh (real Envoy)`, function () {
  this.timeout(180_000);
  let mesh: Mesh;
  const sentence = (): Promise<ProbeResult> => mesh.cluster.probe('sleep-naked', { protocol: 'http', host: 'sentences', port: 5000, path: '/' });

  before(async () => {
    mesh = await startModel(scenarioModel({ apply: ['peer-auth/strict.yaml'], inject: [] }));
  });
  after(async () => mesh?.down());

  it('1. STRICT with no app sidecar still flows: sentences answers "<name> is <age> years" in plaintext', async () => {
    expect(mesh.hasSidecar('default/age')).to.equal(false);
    const r = await sentence();
    expect(r.verdict, JSON.stringify(r.evidence)).to.equal('allowed:plaintext');
    expect(r.evidence.body).to.match(SENTENCE);
  });

  it('2. age gets a sidecar: sentences (no sidecar) can no longer reach it and answers 500', async () => {
    const t = table('strict-age-only');
    await mesh.update(scenarioModel(t));
    expect(mesh.hasSidecar('default/age')).to.equal(true);
    const r = await sentence();
    expect(r.verdict, r.evidence.body ?? '').to.equal('denied:http-500');
    expect(r.evidence.body).to.match(/age/);
    await checkTable(mesh, t, SUITE);
  });

  it('3. PERMISSIVE restores the sentence', async () => {
    await mesh.update(scenarioModel({ apply: ['peer-auth/permissive.yaml'], inject: ['age'] }));
    const r = await sentence();
    expect(r.verdict).to.equal('allowed:plaintext');
    expect(r.evidence.body).to.match(SENTENCE);
  });

  it('4. every app injected + STRICT: every edge is mTLS and the sentence flows through sidecars', async () => {
    const t = table('strict');
    await mesh.update(scenarioModel(t));
    const outcomes = await checkTable(mesh, t, SUITE);
    const meshed = outcomes.filter((x) => x.row.from !== 'sleep-naked');
    expect(meshed, 'strict.yaml: five sidecar → sidecar rows').to.have.length(5);
    for (const o of meshed) expect(o.result.evidence.wire, `${o.row.from} → ${o.row.to}`).to.equal('no-plaintext');
    const viaSidecar = await mesh.cluster.probe('sleep', { protocol: 'http', host: 'sentences', port: 5000, path: '/' });
    expect(viaSidecar.verdict).to.equal('allowed:mtls');
    expect(viaSidecar.evidence.body).to.match(SENTENCE);
    expect(viaSidecar.evidence.wire).to.equal('no-plaintext');
  });
});
