// istio-secure-naming: a DestinationRule's `subjectAltNames` is what the client sidecar checks
// the server certificate against. A list that does not name the server's identity fails the
// handshake in the client sidecar (503 to the app, the server app never sees the request, the
// sidecar's ssl.fail_verify_san grows); a list that names it is mTLS as usual.
// Rows: fixtures/istio/truth/secure-naming-*.yaml (istio/istio secure_naming_test.go).
import { expect } from 'chai';
import { checkTable, deploymentOf, find, table, useMesh } from './lib/istio.ts';

const SUITE = 'istio-secure-naming';
// istiod's bootstrap ends a cluster's name with `;` in stat names, for its tag extraction (tools/packaging/common/
// envoy_bootstrap.json stats_config): `cluster.outbound|5000||age.default.svc.cluster.local;.ssl.fail_verify_san`
const AGE_CLUSTER_SAN_FAILURES = /^cluster\.outbound\|5000\|\|age\.default\.svc\.cluster\.local;?\.ssl\.fail_verify_san$/;

describe(`${SUITE}: subjectAltNames not matching the destination's identity → denied (real Envoy)`, function () {
  this.timeout(120_000);
  const t = table('secure-naming-mismatch');
  const mesh = useMesh(t);

  it('every cell matches the hand-written table and the oracle; the failure is the SAN check in the client sidecar', async () => {
    const before = await mesh().stat('default/sleep', AGE_CLUSTER_SAN_FAILURES);
    const outcomes = await checkTable(mesh(), t, SUITE);
    const o = find(outcomes, 'sleep', 'age');
    expect(o.result.evidence.status).to.equal(503);
    expect(o.result.evidence.servedBy ?? null, 'age must not answer').to.equal(null);
    expect(await mesh().stat('default/sleep', AGE_CLUSTER_SAN_FAILURES)).to.be.above(before);
    // the rule is scoped to its host: name is still mTLS
    expect(find(outcomes, 'sleep', 'name').result.evidence.peer).to.equal('spiffe://cluster.local/ns/default/sa/sleep');
  });
});

describe(`${SUITE}: subjectAltNames including the destination's identity → allowed:mtls (real Envoy)`, function () {
  this.timeout(120_000);
  const t = table('secure-naming-match');
  const mesh = useMesh(t);

  it('every cell matches the hand-written table and the oracle', async () => {
    const outcomes = await checkTable(mesh(), t, SUITE);
    const o = find(outcomes, 'sleep', 'age');
    expect(deploymentOf(mesh(), o.result.evidence.servedBy)).to.equal('age');
    expect(o.result.evidence.wire).to.equal('no-plaintext');
  });
});
