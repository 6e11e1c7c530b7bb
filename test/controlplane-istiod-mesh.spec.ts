// The pure parts of the istiod mesh: how it names an API object when it diffs one suite's objects against the
// next one's (a wrong key once deleted the STRICT PeerAuthentication it had just kept), and istiod's push counter.
import { expect } from 'chai';
import { objKey, pushCounter } from '../src/harness/controlplane/istiod/mesh.ts';

describe('istiod mesh: object identity and push counter', () => {
  it('keys an object by group, kind, namespace and name: v1beta1 and v1 of one PeerAuthentication are the same object', () => {
    const beta = { apiVersion: 'security.istio.io/v1beta1', kind: 'PeerAuthentication', metadata: { name: 'default' } };
    const v1 = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' } };
    expect(objKey(beta)).to.equal('security.istio.io/PeerAuthentication/default/default');
    expect(objKey(v1)).to.equal(objKey(beta));
  });

  it('keeps namespaces, kinds and the core group apart, and gives a cluster-scoped object no namespace', () => {
    expect(objKey({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' } })).to.equal('security.istio.io/PeerAuthentication/istio-system/default');
    expect(objKey({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'name' } })).to.equal('/Service/default/name');
    expect(objKey({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cf-system' } })).to.equal('/Namespace//cf-system');
  });

  it("reads the push counter from istiod's nonce `<time>/<counter><uuid>` (pilot/pkg/xds)", () => {
    expect(pushCounter('2026-12-01T11:57:25Z/17' + '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0')).to.equal(17);
    expect(pushCounter(undefined)).to.equal(0);
    expect(pushCounter('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0')).to.equal(0);
  });
});
