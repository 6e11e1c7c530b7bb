// istio-permissive-fallback: under PERMISSIVE a client without a sidecar still gets through in
// plaintext, and a sidecar client gets mTLS (no plaintext on the wire).
// Rows: fixtures/istio/truth/permissive.yaml. The before() only probes and records.
import { expect } from 'chai';
import type { Mesh } from '../src/harness/profiles/istio/mesh.ts';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { assertTable, probeTable, startMesh, table } from './lib/istio.ts';

const SUITE = 'istio-permissive-fallback';

describe(`${SUITE}: PERMISSIVE falls back to plaintext for naked clients (real Envoy)`, function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let outcomes: RowOutcome[];
  const t = table('permissive');
  before(async () => {
    mesh = await startMesh(t);
    outcomes = await probeTable(mesh, t, SUITE);
  });
  after(async () => mesh?.down());

  it('every cell matches the hand-written table and the oracle', () => assertTable(t, outcomes));

  it('naked → PERMISSIVE is allowed:plaintext without XFCC, and the plaintext is seen on the wire', () => {
    const naked = outcomes.filter((o) => o.row.from === 'sleep-naked');
    // permissive.yaml: sleep-naked → age, name, sentences
    expect(naked.map((o) => o.row.to)).to.have.members(['age', 'name', 'sentences']);
    for (const o of naked) {
      expect(o.result.verdict).to.equal('allowed:plaintext');
      expect(o.result.evidence.xfcc).to.equal(null);
      expect(o.result.evidence.wire, `${o.row.from} → ${o.row.to}`).to.equal('plaintext-seen');
    }
  });

  it('sidecar → PERMISSIVE is allowed:mtls with the caller identity and no plaintext on the wire', () => {
    const meshed = outcomes.filter((o) => o.row.from !== 'sleep-naked');
    // permissive.yaml: sleep → age, name, sentences; sentences → name
    expect(meshed.map((o) => `${o.row.from} → ${o.row.to}`)).to.have.members(['sleep → age', 'sleep → name', 'sleep → sentences', 'sentences → name']);
    for (const o of meshed) {
      expect(o.result.verdict).to.equal('allowed:mtls');
      expect(o.result.evidence.peer).to.match(/^spiffe:\/\/cluster\.local\/ns\/default\/sa\//);
      expect(o.result.evidence.wire, `${o.row.from} → ${o.row.to}`).to.equal('no-plaintext');
    }
  });
});
