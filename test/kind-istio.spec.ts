// The kind substrate's Istio inputs, pure: the images istiod is told to use, the user's containers rewritten to the
// workload image, the proxies the ACK wait expects, the loopback kubeconfig, and the offline images' Dockerfiles and
// content-hashed tags.
import { expect } from 'chai';
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { istioOperator } from '../src/harness/controlplane/istiod/install.ts';
import { forKubelet, placeOn, sidecarProxies } from '../src/harness/substrate/kind/istio.ts';
import { kubeconfigWithServer, parseMemUsage, schedulable } from '../src/harness/substrate/kind/cluster.ts';
import { planKubeletLayers, type KubeletImageInputs } from '../src/harness/substrate/docker/images.ts';

const deployment = (name: string, containers: object[]): KubernetesObject =>
  ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec: { template: { spec: { containers } } } }) as KubernetesObject;
const containersOf = (o: KubernetesObject): Record<string, unknown>[] => (o as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } }).spec.template.spec.containers;

describe('kind substrate: Istio inputs', () => {
  it('istioOperator with images sets istiod\'s image and the injected proxy and init images, as written', () => {
    const spec = istioOperator('1.28.2', { pilot: 'meshproof/istio-pilot:1.28.2-aaaa', proxyv2: 'meshproof/istio-proxyv2:1.28.2-bbbb' }).spec as Record<string, Record<string, Record<string, unknown>>>;
    expect(spec.values!.pilot!.image).to.equal('meshproof/istio-pilot:1.28.2-aaaa');
    expect(spec.values!.pilot!.env).to.deep.equal({ PILOT_ENABLE_METADATA_EXCHANGE: 'false', PILOT_ENABLE_ALPN_FILTER: 'false' });
    expect(spec.values!.global).to.deep.equal({ proxy: { image: 'meshproof/istio-proxyv2:1.28.2-bbbb' }, proxy_init: { image: 'meshproof/istio-proxyv2:1.28.2-bbbb' } });
  });

  it('istioOperator without images leaves Istio\'s own image names (the kube layer maps them)', () => {
    const spec = istioOperator('1.28.2').spec as Record<string, Record<string, Record<string, unknown>>>;
    expect(spec.values!.pilot).to.not.have.property('image');
    expect(spec.values).to.not.have.property('global');
    expect(spec.hub).to.equal('docker.io/istio');
  });

  it('forKubelet runs the workshop app and the curl client from the workload image, and names what it rewrote', () => {
    const objs = [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'age' } } as KubernetesObject,
      deployment('age', [{ name: 'age', image: 'ghcr.io/michaelvl/istio-katas@sha256:9ec2', env: [{ name: 'SENTENCE_MODE', value: 'age' }] }]),
      deployment('sleep', [{ name: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', '3650d'] }]),
      deployment('other', [{ name: 'x', image: 'example.com/unknown:1' }]),
    ];
    const { objects, rewritten } = forKubelet(objs, 'meshproof/workload:abc');
    expect(objects[0]).to.deep.equal(objs[0]);
    expect(containersOf(objects[1]!)).to.deep.equal([{ name: 'age', image: 'meshproof/workload:abc', imagePullPolicy: 'Never', args: ['sentences', '--port', '5000'], env: [{ name: 'SENTENCE_MODE', value: 'age' }] }]);
    expect(containersOf(objects[2]!)).to.deep.equal([{ name: 'sleep', image: 'meshproof/workload:abc', imagePullPolicy: 'Never', command: ['sleep', 'infinity'] }]);
    expect(containersOf(objects[3]!)).to.deep.equal([{ name: 'x', image: 'example.com/unknown:1' }]);
    expect(rewritten).to.deep.equal([
      'Deployment/age/age: ghcr.io/michaelvl/istio-katas@sha256:9ec2 → sentences',
      'Deployment/sleep/sleep: curlimages/curl → idle client',
    ]);
    // the input is not changed
    expect(containersOf(objs[1]!)[0]!.image).to.equal('ghcr.io/michaelvl/istio-katas@sha256:9ec2');
  });

  it('placeOn pins the named Deployments to a node and tolerates kubeadm\'s control-plane taint; a name that is not there is one line', () => {
    const objs = [deployment('sleep', [{ name: 'sleep', image: 'curlimages/curl' }]), deployment('age', [{ name: 'age', image: 'x' }])];
    const { objects, placed } = placeOn(objs, ['sleep'], 'm-control-plane');
    const spec = (objects[0] as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec;
    expect(spec.nodeSelector).to.deep.equal({ 'kubernetes.io/hostname': 'm-control-plane' });
    expect(spec.tolerations).to.deep.equal([{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(objects[1]).to.deep.equal(objs[1]);
    expect(placed).to.deep.equal(['Deployment/sleep → node m-control-plane']);
    expect(() => placeOn(objs, ['nope'], 'm-control-plane')).to.throw('no Deployment nope to place on m-control-plane (Deployments: sleep, age)');
  });

  it('sidecarProxies names pods with istio-proxy as a native (init) or plain container, not terminating ones', () => {
    const pod = (name: string, init: string[], containers: string[], deleting = false): V1Pod => ({
      metadata: { name, namespace: 'default', ...(deleting ? { deletionTimestamp: new Date() } : {}) },
      spec: { initContainers: init.map((n) => ({ name: n })), containers: containers.map((n) => ({ name: n })) },
    });
    expect(sidecarProxies([pod('a-1', ['istio-init', 'istio-proxy'], ['app']), pod('b-1', [], ['app', 'istio-proxy']), pod('c-1', [], ['app']), pod('d-1', ['istio-proxy'], ['app'], true)]))
      .to.deep.equal(['a-1.default', 'b-1.default']);
  });

  it('kubeconfigWithServer points every cluster at the loopback relay and keeps the credentials', () => {
    const text = 'apiVersion: v1\nkind: Config\nclusters:\n- name: kind-x\n  cluster:\n    server: https://127.0.0.1:40123\n    certificate-authority-data: Q0E=\nusers:\n- name: kind-x\n  user:\n    client-certificate-data: Q0VSVA==\n';
    const out = parse(kubeconfigWithServer(text, 'https://127.0.0.1:5555')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    expect(out.clusters[0]!.cluster).to.deep.equal({ server: 'https://127.0.0.1:5555', 'certificate-authority-data': 'Q0E=' });
    expect(out.users[0]!.user).to.deep.equal({ 'client-certificate-data': 'Q0VSVA==' });
  });

  it('schedulable leaves out nodes tainted NoSchedule or NoExecute (kubeadm\'s control-plane taint), keeps PreferNoSchedule', () => {
    const lines = 'm-control-plane NoSchedule,\nm-worker \nm-worker2 PreferNoSchedule,\nm-worker3 PreferNoSchedule,NoExecute,\n';
    expect(schedulable(lines)).to.deep.equal(['m-worker', 'm-worker2']);
  });

  it('parseMemUsage reads docker stats\' memory column in MiB, and refuses a line it cannot read', () => {
    expect(parseMemUsage('m-control-plane 812.4MiB / 23.54GiB\nm-worker 1.5GiB / 23.54GiB\n')).to.deep.equal({ 'm-control-plane': 812, 'm-worker': 1536 });
    expect(() => parseMemUsage('m-worker -- / --')).to.throw('docker stats: cannot read "m-worker -- / --"');
  });

  describe('planKubeletLayers', () => {
    const inputs: KubeletImageInputs = {
      istioVersion: '1.28.2', envoyVersion: '1.36.4',
      pilotAgent: { src: '/c/pilot-agent', sha256: 'a'.repeat(64) },
      pilotDiscovery: { src: '/c/pilot-discovery', sha256: 'b'.repeat(64) },
      bootstrapTemplate: { src: '/c/envoy_bootstrap_tmpl.json', sha256: 'c'.repeat(64) },
      bundle: { src: '/s/pod-bundle.js', sha256: 'd'.repeat(64) },
    };
    const parents = { base: 'meshproof/base:1', node: 'meshproof/node:2', envoy: 'meshproof/envoy-1.36.4:3' };

    it('builds proxyv2 on the Envoy layer as Istio\'s Dockerfile.proxyv2 does: pilot-agent entrypoint, bootstrap template, user 1337', () => {
      const { proxyv2 } = planKubeletLayers(parents, inputs);
      expect(proxyv2.tag).to.match(/^meshproof\/istio-proxyv2:1\.28\.2-[0-9a-f]{16}$/);
      const lines = proxyv2.dockerfile.split('\n');
      expect(lines[0]).to.equal('FROM meshproof/envoy-1.36.4:3');
      expect(lines).to.include('COPY pilot-agent /usr/local/bin/pilot-agent');
      expect(lines).to.include('COPY envoy_bootstrap_tmpl.json /var/lib/istio/envoy/envoy_bootstrap_tmpl.json');
      expect(lines).to.include('USER 1337:1337');
      expect(lines).to.include('ENTRYPOINT ["/usr/local/bin/pilot-agent"]');
      expect(proxyv2.context.map((c) => c.src)).to.deep.equal(['/c/pilot-agent', '/c/envoy_bootstrap_tmpl.json']);
    });

    it('builds pilot on the base with pilot-discovery as its entrypoint, and the workload image on the node layer', () => {
      const { pilot, workload } = planKubeletLayers(parents, inputs);
      expect(pilot.tag).to.match(/^meshproof\/istio-pilot:1\.28\.2-[0-9a-f]{16}$/);
      expect(pilot.dockerfile.split('\n')[0]).to.equal('FROM meshproof/base:1');
      expect(pilot.dockerfile).to.include('ENTRYPOINT ["/usr/local/bin/pilot-discovery"]');
      expect(workload.tag).to.match(/^meshproof\/workload:[0-9a-f]{16}$/);
      expect(workload.dockerfile.split('\n')[0]).to.equal('FROM meshproof/node:2');
      expect(workload.dockerfile).to.include('ENTRYPOINT ["/usr/local/bin/node", "/opt/meshproof/pod-bundle.js"]');
    });

    it('changes a tag when one of its inputs changes, and only that one', () => {
      const a = planKubeletLayers(parents, inputs);
      const b = planKubeletLayers(parents, { ...inputs, pilotAgent: { src: '/c/pilot-agent', sha256: 'e'.repeat(64) } });
      expect(b.proxyv2.tag).to.not.equal(a.proxyv2.tag);
      expect(b.pilot.tag).to.equal(a.pilot.tag);
      expect(b.workload.tag).to.equal(a.workload.tag);
      const c = planKubeletLayers({ ...parents, node: 'meshproof/node:9' }, inputs);
      expect(c.workload.tag).to.not.equal(a.workload.tag);
      expect(c.proxyv2.tag).to.equal(a.proxyv2.tag);
    });
  });
});
