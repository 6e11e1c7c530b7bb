// The kind substrate's Mesh and Cluster inputs, pure: which of the workshop's Deployments are clients (placed on the
// control-plane node, so their calls cross the link the wire canary captures) and a Pod's Deployment name (its alias).
import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { loadIstio } from '../src/harness/profiles/istio/resources.ts';
import { clientsOf } from '../src/harness/substrate/kind/mesh.ts';
import { deploymentOfPod } from '../src/harness/substrate/kind/pods-cluster.ts';

describe('kind substrate: mesh placement and pod aliases', () => {
  it('the workshop\'s clients are the two sleep Deployments, which no Service selects', () => {
    // fixtures/istio/sentences: Services sentences, age, name (selecting name and name-v2); sleep and sleep-naked are curl clients
    expect(clientsOf(loadIstio('fixtures/istio/sentences')).sort()).to.deep.equal(['sleep', 'sleep-naked']);
  });

  it('a Pod owned by ReplicaSet <deployment>-<pod-template-hash> is its Deployment\'s; any other Pod has no alias', () => {
    const pod = (rs: string | undefined, hash: string | undefined): V1Pod => ({
      metadata: { name: 'x', labels: hash ? { 'pod-template-hash': hash } : {}, ownerReferences: rs ? [{ kind: 'ReplicaSet', name: rs, apiVersion: 'apps/v1', uid: 'u' }] : [] },
    });
    expect(deploymentOfPod(pod('name-v2-7c9d8f6b5', '7c9d8f6b5'))).to.equal('name-v2');
    expect(deploymentOfPod(pod('name-v2-7c9d8f6b5', 'other'))).to.equal(undefined);
    expect(deploymentOfPod(pod(undefined, '7c9d8f6b5'))).to.equal(undefined);
  });
});
