// istio-port-level: PeerAuthentication `portLevelMtls` replaces the workload's mode on the named
// workload port only; the other port of the same workload keeps the workload (or inherited) mode.
// Istio's echo app with two HTTP ports (18080 behind service port 80, 18081 behind 81).
// Rows: fixtures/istio/truth/port-level-*.yaml (reachability "mtls port override").
import { expect } from 'chai';
import { checkTable, find, table, useMesh } from './lib/istio.ts';

const SUITE = 'istio-port-level';

for (const [name, open, closed] of [
  ['port-level-permissive-port', 80, 81],
  ['port-level-strict-port', 80, 81],
] as const) {
  describe(`${SUITE}: ${table(name).scenario} (real Envoy)`, function () {
    this.timeout(120_000);
    const t = table(name);
    const mesh = useMesh(t);

    it('every cell matches the hand-written table and the oracle', async () => {
      const outcomes = await checkTable(mesh(), t, SUITE);
      const plain = find(outcomes, 'sleep-naked', 'echo', undefined, open).result;
      expect(plain.verdict).to.equal('allowed:plaintext');
      expect(plain.evidence.wire, 'the open port carries plaintext').to.equal('plaintext-seen');
      expect(find(outcomes, 'sleep-naked', 'echo', undefined, closed).result.verdict).to.equal('denied:reset');
      for (const port of [open, closed]) expect(find(outcomes, 'sleep', 'echo', undefined, port).result.evidence.wire).to.equal('no-plaintext');
    });
  });
}
