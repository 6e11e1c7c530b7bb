// istio-destination-rule: under PERMISSIVE, the workshop's DestinationRule sends subset v1 in
// plaintext (DISABLE) and v2 in mTLS (ISTIO_MUTUAL); the VirtualService splits 50/50 and each
// request's subset is identified from who answered. Rows: fixtures/istio/truth/dest-rule*.yaml.
import { expect } from 'chai';
import { checkTable, deploymentOf, find, table, useMesh } from './lib/istio.ts';

const SUITE = 'istio-destination-rule';

for (const name of ['dest-rule', 'dest-rule-legacy']) {
  describe(`${SUITE}: ${table(name).scenario} (real Envoy)`, function () {
    this.timeout(120_000);
    const t = table(name);
    const mesh = useMesh(t);

    it('every cell matches the hand-written table and the oracle', async () => {
      const outcomes = await checkTable(mesh(), t, SUITE);
      if (name === 'dest-rule') {
        const v1 = find(outcomes, 'sleep', 'name', 'name-v1').result;
        const v2 = find(outcomes, 'sleep', 'name', 'name-v2').result;
        expect(deploymentOf(mesh(), v1.evidence.servedBy)).to.equal('name');
        expect(v1.evidence.wire, 'v1 (DISABLE) travels in plaintext').to.equal('plaintext-seen');
        expect(deploymentOf(mesh(), v2.evidence.servedBy)).to.equal('name-v2');
        expect(v2.evidence.wire, 'v2 (ISTIO_MUTUAL) travels in mTLS').to.equal('no-plaintext');
      }
    });

    it('the VirtualService spreads requests over both subsets', async () => {
      const calls = await mesh().cluster.probeMany(Array.from({ length: 20 }, () => ({ from: 'sleep', req: { protocol: 'http' as const, host: 'name', port: 5000, path: '/' } })), { wire: false });
      const names = calls.filter((c) => c.evidence.body).map((c) => (/\(v2\)/.test(c.evidence.body!) ? 'v2' : 'v1'));
      if (name === 'dest-rule') expect(new Set(names)).to.deep.equal(new Set(['v1', 'v2']));
      else expect(names.length).to.be.above(0);
    });
  });
}
