// The existing-cluster path's pure parts (substrate/kind/external.ts, registry.ts): which environment means which
// cluster, what a registry address must be, distribution's config and containerd's hosts.toml as written, and the
// pull policy the model's containers get where the kubelet pulls from a registry.
import { expect } from 'chai';
import { parse } from 'yaml';
import { UserError } from '../src/harness/model/errors.ts';
import { externalFromEnv, parseRegistry } from '../src/harness/substrate/kind/external.ts';
import { hostsToml, registryConfig } from '../src/harness/substrate/kind/registry.ts';
import { forKubelet } from '../src/harness/substrate/kind/istio.ts';

const oneLine = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(UserError);
    expect((e as Error).message).to.not.include('\n');
    return (e as Error).message;
  }
  throw new Error('no error');
};

describe('kind substrate: an existing cluster (--kubeconfig, --image-registry)', () => {
  it('reads MESHPROOF_KUBECONFIG and MESHPROOF_IMAGE_REGISTRY: neither → a new kind cluster, both → that cluster', () => {
    expect(externalFromEnv({})).to.equal(undefined);
    expect(externalFromEnv({ MESHPROOF_KUBECONFIG: '/k/config', MESHPROOF_IMAGE_REGISTRY: 'localhost:5001' })).to.deep.equal({ kubeconfig: '/k/config', registry: 'localhost:5001' });
  });

  it('refuses one without the other in one line naming the missing flag', () => {
    expect(oneLine(() => externalFromEnv({ MESHPROOF_KUBECONFIG: '/k/config' }))).to.include('needs --image-registry');
    expect(oneLine(() => externalFromEnv({ MESHPROOF_IMAGE_REGISTRY: 'localhost:5001' }))).to.include('add --kubeconfig');
  });

  it('takes a registry on this host\'s loopback only (the engine reaches it through a relay), any other in one line', () => {
    expect(parseRegistry('localhost:5001')).to.deep.equal({ address: 'localhost:5001', port: 5001 });
    expect(parseRegistry('127.0.0.1:41000').port).to.equal(41000);
    for (const bad of ['registry.example.com:5000', 'localhost', 'localhost:0', 'localhost:70000', 'http://localhost:5001']) {
      expect(oneLine(() => parseRegistry(bad)), bad).to.include("this host's loopback");
    }
  });

  it('writes distribution\'s config (filesystem storage, plain HTTP on the address) and containerd\'s hosts.toml as kind\'s docs do', () => {
    expect(parse(registryConfig('/data', '0.0.0.0:5000'))).to.deep.equal({
      version: 0.1, log: { level: 'warn' }, storage: { filesystem: { rootdirectory: '/data' }, delete: { enabled: true } }, http: { addr: '0.0.0.0:5000' },
    });
    expect(hostsToml('http://172.18.0.1:5000')).to.equal('[host."http://172.18.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n');
  });

  it('gives the rewritten containers imagePullPolicy IfNotPresent where the kubelet pulls from the registry, Never by default', () => {
    const dep = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'sleep' },
      spec: { template: { spec: { containers: [{ name: 'sleep', image: 'curlimages/curl', command: ['/bin/sleep', 'infinity'] }] } } },
    };
    type Dep = { spec: { template: { spec: { containers: { image: string; imagePullPolicy?: string }[] } } } };
    const pulled = forKubelet([dep], 'localhost:5001/meshproof/workload:abc', 'IfNotPresent').objects[0] as unknown as Dep;
    expect(pulled.spec.template.spec.containers.map((c) => [c.image, c.imagePullPolicy])).to.deep.equal([['localhost:5001/meshproof/workload:abc', 'IfNotPresent']]);
    const loaded = forKubelet([dep], 'meshproof/workload:abc').objects[0] as unknown as Dep;
    expect(loaded.spec.template.spec.containers[0]!.imagePullPolicy).to.equal('Never');
  });
});
