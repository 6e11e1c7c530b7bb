// The node agent's pure translation of a Pod: image → program, the environment kubelet builds,
// probes, identity. Expected values are written by hand from Kubernetes' and Istio's behaviour.
import { expect } from 'chai';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import {
  containerEnv, expand, fieldRef, formatMap, identityOf, ownerAppName, probeCheck, programsOf, resourceRef, serviceEnv, UnmappedImage, withEnvoyBinary,
} from '../src/harness/kube/pods.ts';
import { sortForApply } from '../src/harness/kube/apply.ts';

const bins = { pilotAgent: '/c/pilot-agent', pilotDiscovery: '/c/pilot-discovery', envoy: '/c/envoy' };
const node = { nodeName: 'meshproof-ab12', hostIP: '10.244.0.1', cpu: 2, memory: 8 * 1024 ** 3 };

const pod: V1Pod = {
  metadata: { name: 'age-5d8f6c7b9-x2x9z', generateName: 'age-5d8f6c7b9-', namespace: 'default', uid: 'u-1', labels: { app: 'sentences-age', 'pod-template-hash': '5d8f6c7b9' }, annotations: { 'b': '2', 'a': 'x"y' } },
  spec: { serviceAccountName: 'age', nodeName: 'meshproof-ab12', containers: [], securityContext: { fsGroup: 1337 } },
};

describe('kube pods: $(VAR) expansion (Kubernetes expansion.go)', () => {
  it('expands known names, keeps unknown ones, and $$ escapes', () => {
    expect(expand('--domain $(POD_NAMESPACE).svc.cluster.local', { POD_NAMESPACE: 'default' })).to.equal('--domain default.svc.cluster.local');
    expect(expand('$(NOPE) and $$(POD_NAMESPACE)', { POD_NAMESPACE: 'default' })).to.equal('$(NOPE) and $(POD_NAMESPACE)');
  });
});

describe('kube pods: the downward API', () => {
  it('resolves the fieldRef paths injected sidecars use', () => {
    expect(fieldRef('metadata.name', pod, '10.244.0.7', node)).to.equal('age-5d8f6c7b9-x2x9z');
    expect(fieldRef('metadata.namespace', pod, '10.244.0.7', node)).to.equal('default');
    expect(fieldRef('spec.serviceAccountName', pod, '10.244.0.7', node)).to.equal('age');
    expect(fieldRef('status.podIP', pod, '10.244.0.7', node)).to.equal('10.244.0.7');
    expect(fieldRef('status.hostIP', pod, '10.244.0.7', node)).to.equal('10.244.0.1');
    expect(fieldRef('spec.nodeName', pod, '10.244.0.7', node)).to.equal('meshproof-ab12');
    expect(fieldRef("metadata.labels['app']", pod, '10.244.0.7', node)).to.equal('sentences-age');
  });

  it('formats label and annotation files as sorted key="value" lines', () => {
    expect(formatMap(pod.metadata!.annotations)).to.equal('a="x\\"y"\nb="2"');
  });

  it('builds env in order, later values expanding earlier ones, after the service env', () => {
    const c: V1Container = {
      name: 'istio-proxy',
      env: [
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'DOMAIN', value: '$(POD_NAMESPACE).svc' },
        { name: 'INSTANCE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
      ],
    };
    expect(containerEnv(c, pod, '10.244.0.7', node, { KUBERNETES_SERVICE_HOST: '10.96.0.1' })).to.deep.equal({
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      POD_NAMESPACE: 'default',
      DOMAIN: 'default.svc',
      INSTANCE_IP: '10.244.0.7',
      GOMAXPROCS: '2',
    });
  });

  it('resourceFieldRef: the limit when set, else the node allocatable, divided and rounded up', () => {
    const limited: V1Container = { name: 'x', resources: { limits: { cpu: '500m', memory: '1Gi' } } };
    expect(resourceRef('limits.cpu', limited, node, '1')).to.equal('1');
    expect(resourceRef('limits.memory', limited, node, '1')).to.equal(String(1024 ** 3));
    expect(resourceRef('limits.memory', { name: 'y' }, node, '1Mi')).to.equal('8192');
  });

  it('service env: <NAME>_SERVICE_HOST/_PORT for the namespace, plus kubernetes', () => {
    const env = serviceEnv(
      [
        { name: 'kubernetes', namespace: 'default', clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443 }] },
        { name: 'name-v2', namespace: 'default', clusterIP: '10.96.0.12', ports: [{ name: 'api', port: 5000 }] },
        { name: 'istiod', namespace: 'istio-system', clusterIP: '10.96.0.20', ports: [{ port: 443 }] },
      ],
      'default',
    );
    expect(env).to.deep.equal({
      KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBERNETES_SERVICE_PORT_HTTPS: '443',
      NAME_V2_SERVICE_HOST: '10.96.0.12', NAME_V2_SERVICE_PORT: '5000', NAME_V2_SERVICE_PORT_API: '5000',
    });
  });
});

describe('kube pods: images map to programs', () => {
  it("Istio's proxyv2 runs the cached pilot-agent with the container's args", () => {
    const c: V1Container = { name: 'istio-init', image: 'docker.io/istio/proxyv2:1.28.2', args: ['istio-iptables', '-p', '15001'] };
    expect(programsOf(c, {}, bins)).to.deep.equal([{ kind: 'binary', argv: ['/c/pilot-agent', 'istio-iptables', '-p', '15001'], what: 'pilot-agent' }]);
  });

  it("istiod's image runs the cached pilot-discovery; a command replaces the entrypoint", () => {
    const c: V1Container = { name: 'discovery', image: 'gcr.io/istio-testing/pilot:latest', command: ['/usr/local/bin/pilot-discovery', 'discovery'], args: ['--domain', 'cluster.local'] };
    expect(programsOf(c, {}, bins)).to.deep.equal([{ kind: 'binary', argv: ['/c/pilot-discovery', 'discovery', '--domain', 'cluster.local'], what: 'pilot-discovery' }]);
  });

  it('the workshop image runs meshproof sentences; the echo image one server per port; curl is idle', () => {
    expect(programsOf({ name: 'age', image: 'ghcr.io/michaelvl/istio-katas@sha256:9ec2' }, {}, bins)).to.deep.equal([{ kind: 'workload', workload: 'sentences', args: ['--port', '5000'], what: 'sentences' }]);
    expect(programsOf({ name: 'app', image: 'gcr.io/istio-testing/app:latest', ports: [{ containerPort: 18080 }, { containerPort: 18081 }] }, {}, bins).map((p) => p.what)).to.deep.equal(['echo :18080', 'echo :18081']);
    // a port named tcp is the echo app's raw TCP echo, naming its workload
    expect(programsOf({ name: 'app', image: 'gcr.io/istio-testing/app:latest', ports: [{ containerPort: 19090, name: 'tcp' }] }, {}, bins, 'b')).to.deep.equal([{ kind: 'workload', workload: 'tcp-listener', args: ['--port', '19090', '--id', 'b'], what: 'tcp echo :19090' }]);
    expect(programsOf({ name: 'sleep', image: 'curlimages/curl' }, {}, bins)).to.deep.equal([{ kind: 'idle', what: 'idle client' }]);
  });

  it('an image that maps to nothing is an UnmappedImage naming it, never a skip', () => {
    expect(() => programsOf({ name: 'db', image: 'mysql:8' }, {}, bins)).to.throw(UnmappedImage, /image "mysql:8" maps to no program/);
  });

  it('PROXY_CONFIG keeps its settings and gains the cached Envoy as binaryPath', () => {
    expect(withEnvoyBinary({ PROXY_CONFIG: '{"discoveryAddress":"istiod.istio-system.svc:15012"}', X: '1' }, '/c/envoy')).to.deep.equal({
      PROXY_CONFIG: '{"discoveryAddress":"istiod.istio-system.svc:15012","binaryPath":"/c/envoy"}',
      X: '1',
    });
  });
});

describe('kube pods: identity, probes, owners', () => {
  it('securityContext: the container over the pod, capabilities lower-cased without cap_', () => {
    const c: V1Container = { name: 'istio-init', securityContext: { runAsUser: 0, runAsGroup: 0, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } } };
    expect(identityOf(c, pod)).to.deep.equal({ uid: 0, gid: 0, caps: ['net_admin', 'net_raw'], fsGroup: 1337 });
    expect(identityOf({ name: 'p', securityContext: { runAsUser: 1337 } }, pod)).to.deep.equal({ uid: 1337, gid: 1337, caps: [], fsGroup: 1337 });
  });

  it('probes: named ports resolve against containerPorts, host defaults to the pod IP', () => {
    const c: V1Container = { name: 'istio-proxy', ports: [{ name: 'http-envoy-prom', containerPort: 15090 }] };
    expect(probeCheck({ httpGet: { path: '/healthz/ready', port: 15021 } }, c, '10.244.0.7')).to.deep.equal({ kind: 'http', host: '10.244.0.7', port: 15021, path: '/healthz/ready' });
    expect(probeCheck({ tcpSocket: { port: 'http-envoy-prom' } }, c, '10.244.0.7')).to.deep.equal({ kind: 'tcp', host: '10.244.0.7', port: 15090 });
    expect(probeCheck(undefined, c, '10.244.0.7')).to.equal(null);
  });

  it("a ReplicaSet pod's Deployment is its generateName without the template hash", () => {
    expect(ownerAppName(pod)).to.equal('age');
    expect(ownerAppName({ metadata: { name: 'standalone' } })).to.equal(undefined);
  });

  it('apply order: Namespaces, CRDs, ServiceAccounts, RBAC, config, Services, then the rest in file order', () => {
    const kinds = ['Deployment', 'Service', 'CustomResourceDefinition', 'PeerAuthentication', 'Namespace', 'ServiceAccount', 'ClusterRole'];
    expect(sortForApply(kinds.map((kind) => ({ kind }))).map((o) => o.kind)).to.deep.equal(['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'Service', 'Deployment', 'PeerAuthentication']);
  });
});
