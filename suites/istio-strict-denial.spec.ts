// istio-strict-denial: under a namespace STRICT PeerAuthentication, a client without a sidecar is
// denied at connection level (the inbound listener has no raw_buffer chain: reset, and Envoy's
// no_filter_chain_match grows); a sidecar client gets mTLS, the server sees the caller's SPIFFE
// URI in XFCC and the wire canary sees no plaintext; a sidecar sending plaintext (DestinationRule
// DISABLE) fails at the client sidecar with 503. Rows: fixtures/istio/truth/strict*.yaml.
import { expect } from 'chai';
import type { IstioMesh } from '../src/harness/profiles/istio/index.ts';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { checkTable, find, startMesh, table, useMesh } from './lib/istio.ts';

const SUITE = 'istio-strict-denial';

describe(`${SUITE}: STRICT denies plaintext, sidecars get mTLS (real Envoy)`, function () {
  this.timeout(120_000);
  let mesh: IstioMesh;
  let outcomes: RowOutcome[];
  let noChainBefore = 0;
  const strict = table('strict');

  before(async () => {
    mesh = await startMesh(strict);
    noChainBefore = await mesh.stat('default/age', /^listener\..*no_filter_chain_match$/);
    outcomes = await checkTable(mesh, strict, SUITE);
  });
  after(async () => mesh?.down());

  it('every cell matches the hand-written table and the oracle', () => {
    expect(outcomes.filter((o) => o.result.verdict !== o.row.verdict)).to.deep.equal([]);
  });

  it('naked → STRICT is reset at connection level, fast, and counted as no_filter_chain_match by the server', async () => {
    const o = find(outcomes, 'sleep-naked', 'age');
    expect(o.result.verdict).to.equal('denied:reset');
    expect(o.result.evidence.status).to.equal(null);
    expect(o.result.evidence.ms).to.be.below(500);
    expect(await mesh.stat('default/age', /^listener\..*no_filter_chain_match$/)).to.be.above(noChainBefore);
  });

  it('sidecar → STRICT: the server sees the caller\'s SPIFFE URI in XFCC and no plaintext crosses the wire', () => {
    const o = find(outcomes, 'sleep', 'age');
    expect(o.result.verdict).to.equal('allowed:mtls');
    expect(o.result.evidence.peer).to.equal('spiffe://cluster.local/ns/default/sa/sleep');
    expect(o.result.evidence.xfcc).to.match(/URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep/);
    expect(o.result.evidence.wire).to.equal('no-plaintext');
  });
});

describe(`${SUITE}: a sidecar sending plaintext (DestinationRule DISABLE) to STRICT gets 503 from its own sidecar`, function () {
  this.timeout(120_000);
  const t = table('dest-rule-strict');
  const mesh = useMesh(t);

  it('every cell matches the hand-written table and the oracle', async () => {
    const outcomes = await checkTable(mesh(), t, SUITE);
    expect(find(outcomes, 'sleep', 'name', 'name-v1').result.evidence.status).to.equal(503);
  });
});
