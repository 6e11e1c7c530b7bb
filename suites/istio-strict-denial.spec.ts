// istio-strict-denial: under a namespace STRICT PeerAuthentication, a client without a sidecar is
// denied at connection level (the inbound listener has no raw_buffer chain: reset, and Envoy's
// no_filter_chain_match grows); a sidecar client gets mTLS, the server sees the caller's SPIFFE
// URI in XFCC and the wire canary sees no plaintext; a sidecar sending plaintext (DestinationRule
// DISABLE) fails at the client sidecar with 503. Rows: fixtures/istio/truth/strict*.yaml.
// The before() hooks only probe and record; every check is an it(), so a wrong cell fails by name.
import { expect } from 'chai';
import type { Mesh } from '../src/harness/profiles/istio/mesh.ts';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { assertTable, find, probeTable, startMesh, table } from './lib/istio.ts';

const SUITE = 'istio-strict-denial';
const NO_CHAIN = /^listener\..*no_filter_chain_match$/;

describe(`${SUITE}: STRICT denies plaintext, sidecars get mTLS (real Envoy)`, function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let outcomes: RowOutcome[];
  let noChainBefore = 0;
  let noChainAfter = 0;
  const strict = table('strict');

  before(async () => {
    mesh = await startMesh(strict);
    noChainBefore = await mesh.stat('default/age', NO_CHAIN);
    outcomes = await probeTable(mesh, strict, SUITE);
    noChainAfter = await mesh.stat('default/age', NO_CHAIN);
  });
  after(async () => mesh?.down());

  it('every cell matches the hand-written table and the oracle', () => {
    // strict.yaml: 3 naked rows, 5 sidecar rows
    expect(outcomes).to.have.length(8);
    assertTable(strict, outcomes);
  });

  it('naked → STRICT is reset at connection level, fast, and counted as no_filter_chain_match by the server', () => {
    const o = find(outcomes, 'sleep-naked', 'age');
    expect(o.result.verdict).to.equal('denied:reset');
    expect(o.result.evidence.status).to.equal(null);
    expect(o.result.evidence.ms).to.be.below(500);
    expect(noChainAfter, 'age\'s Envoy counted the naked connection').to.be.above(noChainBefore);
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
  let mesh: Mesh;
  let outcomes: RowOutcome[];
  const t = table('dest-rule-strict');

  before(async () => {
    mesh = await startMesh(t);
    outcomes = await probeTable(mesh, t, SUITE);
  });
  after(async () => mesh?.down());

  it('every cell matches the hand-written table and the oracle', () => assertTable(t, outcomes));

  it('the DISABLE subset gets 503 from the client\'s own sidecar', () => {
    expect(find(outcomes, 'sleep', 'name', 'name-v1').result.evidence.status).to.equal(503);
  });
});
