// The kind substrate's Mesh and Cluster inputs, pure: which of the workshop's Deployments are clients (placed on the
// control-plane node, so their calls cross the link the wire canary captures) and a Pod's Deployment name (its alias).
import { expect } from 'chai';
import type { KubernetesObject, V1Container, V1Pod } from '@kubernetes/client-node';
import { forKubelet } from '../src/harness/substrate/kind/istio.ts';
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

  it('Istio\'s echo app serving two ports becomes one container per port\'s workload, the ports declared once, the id the Deployment\'s', () => {
    // fixtures/istio/reachability/b.yaml: one container app, ports 18080 (http) and 19090 (tcp)
    const b = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'b' }, spec: { template: { spec: { containers: [
      { name: 'app', image: 'gcr.io/istio-testing/app:latest', ports: [{ containerPort: 18080, name: 'http' }, { containerPort: 19090, name: 'tcp' }] },
    ] } } } } as KubernetesObject;
    const { objects, rewritten } = forKubelet([b], 'meshproof/workload:x');
    const cs = (objects[0] as unknown as { spec: { template: { spec: { containers: V1Container[] } } } }).spec.template.spec.containers;
    expect(cs.map((c) => c.name)).to.deep.equal(['app', 'app-1']);
    expect(cs.map((c) => c.image)).to.deep.equal(['meshproof/workload:x', 'meshproof/workload:x']);
    expect(cs[0]!.args![0]).to.equal('echo');
    expect(cs[0]!.ports).to.have.length(2);
    expect(cs[1]!.args).to.deep.equal(['tcp-listener', '--port', '19090', '--id', 'b']);
    expect(cs[1]!.ports).to.equal(undefined);
    expect(rewritten).to.deep.equal(['Deployment/b/app: gcr.io/istio-testing/app:latest → echo :18080', 'Deployment/b/app-1: gcr.io/istio-testing/app:latest → tcp echo :19090']);
  });
});
