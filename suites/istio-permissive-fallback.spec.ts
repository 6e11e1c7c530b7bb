// istio-permissive-fallback: under PERMISSIVE a client without a sidecar still gets through in
// plaintext, and a sidecar client gets mTLS (no plaintext on the wire).
// Rows: fixtures/istio/truth/permissive.yaml.
import { expect } from 'chai';
import type { IstioMesh } from '../src/harness/profiles/istio/index.ts';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { checkTable, startMesh, table } from './lib/istio.ts';

const SUITE = 'istio-permissive-fallback';

describe(`${SUITE}: PERMISSIVE falls back to plaintext for naked clients (real Envoy)`, function () {
  this.timeout(120_000);
  let mesh: IstioMesh;
  let outcomes: RowOutcome[];
  const t = table('permissive');
  before(async () => {
    mesh = await startMesh(t);
    outcomes = await checkTable(mesh, t, SUITE);
  });
  after(async () => mesh?.down());

  it('naked → PERMISSIVE is allowed:plaintext without XFCC, and the plaintext is seen on the wire', () => {
    const naked = outcomes.filter((o) => o.row.from === 'sleep-naked');
    expect(naked.length).to.be.above(0);
    for (const o of naked) {
      expect(o.result.verdict).to.equal('allowed:plaintext');
      expect(o.result.evidence.xfcc).to.equal(null);
      expect(o.result.evidence.wire, `${o.row.from} → ${o.row.to}`).to.equal('plaintext-seen');
    }
  });

  it('sidecar → PERMISSIVE is allowed:mtls with the caller identity and no plaintext on the wire', () => {
    const meshed = outcomes.filter((o) => o.row.from !== 'sleep-naked');
    for (const o of meshed) {
      expect(o.result.verdict).to.equal('allowed:mtls');
      expect(o.result.evidence.peer).to.match(/^spiffe:\/\/cluster\.local\/ns\/default\/sa\//);
      expect(o.result.evidence.wire, `${o.row.from} → ${o.row.to}`).to.equal('no-plaintext');
    }
  });
});
