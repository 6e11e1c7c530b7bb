// The kind substrate's pure parts: the tables (Go modules, images kubeadm names, Debian packages) against
// real-control-planes.md §4 written out by hand, the CAP_SYS_RESOURCE test on CapBnd, the rendered containerd config
// and node Dockerfile, and doctor's kind entries. The runc wrapper runs in test/integration/kind-runc-wrapper.spec.ts.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UserError } from '../src/harness/model/errors.ts';
import { bridgeConflist, clusterNameOf, daemonConfigWithRuntime, nodeRoutes, renderKindConfig } from '../src/harness/substrate/kind/config.ts';
import { checkNames, parseDoctorSubstrates } from '../src/harness/cli/doctor.ts';
import {
  KIND_GO_TOOLS, KIND_NODE_PACKAGES, KUBEADM_IMAGES, containerdConfig, diffImages, hasCapSysResource, nodeDockerfile, parseImagesList,
  preloadScript,
} from '../src/harness/substrate/kind/versions.ts';
import { baseFileMode } from '../src/harness/substrate/kind/node-image.ts';

// `kubeadm config images list --kubernetes-version v1.34.4`, as kubeadm v1.34.4 prints it (constants.go: etcd
// 3.6.5-0, pause 3.10.1, CoreDNS v1.12.1; §4 lists the same seven).
const KUBEADM_LIST = `registry.k8s.io/kube-apiserver:v1.34.4
registry.k8s.io/kube-controller-manager:v1.34.4
registry.k8s.io/kube-scheduler:v1.34.4
registry.k8s.io/kube-proxy:v1.34.4
registry.k8s.io/coredns/coredns:v1.12.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.5-0
`;

describe('kind substrate: tables (real-control-planes.md §4)', () => {
  it('builds kind v0.30.0, crictl v1.34.0 (the sigs.k8s.io path), coredns v1.12.1, the four node binaries of Kubernetes v1.34.4 and distribution\'s registry v3.1.2', () => {
    const rows = KIND_GO_TOOLS.flatMap((t) => t.binaries.map((b) => `${b.name} ${t.module}@${t.moduleVersion} ${b.pkg || '.'}`));
    expect(rows).to.have.members([
      'kind sigs.k8s.io/kind@v0.30.0 .',
      'crictl sigs.k8s.io/cri-tools@v1.34.0 cmd/crictl',
      'kubeadm k8s.io/kubernetes@v1.34.4 cmd/kubeadm',
      'kubelet k8s.io/kubernetes@v1.34.4 cmd/kubelet',
      'kube-scheduler k8s.io/kubernetes@v1.34.4 cmd/kube-scheduler',
      'kube-proxy k8s.io/kubernetes@v1.34.4 cmd/kube-proxy',
      'etcd go.etcd.io/etcd/server/v3@v3.6.8 .',
      'coredns github.com/coredns/coredns@v1.12.1 .',
      'registry github.com/distribution/distribution/v3@v3.1.2 cmd/registry',
    ]);
    expect(rows).to.have.length(9);
  });

  it('builds the Kubernetes node binaries with the control plane\'s 31 staging replaces and version ldflags (Go\'s build cache hits)', () => {
    const node = KIND_GO_TOOLS.find((t) => t.tool === 'kubernetes-node')!;
    expect(node.replaces).to.have.length(31);
    expect(node.replaces.find((r) => r.path === 'k8s.io/kubelet')?.version).to.equal('v0.34.4');
    expect(node.ldflags).to.include('-X k8s.io/component-base/version.gitVersion=v1.34.4');
    expect(node.ldflags).to.include('gitMinor=34');
  });

  it('keeps its cache directories off the control plane\'s (kubernetes/, etcd/)', () => {
    expect(KIND_GO_TOOLS.map((t) => t.dir)).to.have.members(['kind', 'crictl', 'kubernetes-node', 'etcd-server', 'coredns', 'registry']);
  });

  it('builds the registry with distribution\'s own version ldflags and its go.mod\'s go 1.26.0', () => {
    const reg = KIND_GO_TOOLS.find((t) => t.tool === 'registry')!;
    expect(reg.ldflags).to.include('-X github.com/distribution/distribution/v3/version.version=v3.1.2');
    expect(reg.go).to.equal('1.26.0');
  });

  it('installs §4\'s Debian packages into the node, systemd first', () => {
    expect([...KIND_NODE_PACKAGES]).to.deep.equal([
      'systemd', 'containerd', 'runc', 'iptables', 'iproute2', 'ethtool', 'socat', 'conntrack', 'util-linux', 'mount',
      'ca-certificates', 'kmod', 'containernetworking-plugins',
    ]);
  });

  it('builds exactly the images kubeadm v1.34.4 lists', () => {
    const listed = parseImagesList(KUBEADM_LIST);
    expect(listed).to.have.length(7);
    expect(diffImages(listed)).to.deep.equal({ unbuilt: [], extra: [] });
  });

  it('names what kubeadm lists that the table lacks, and what the table builds that kubeadm no longer lists', () => {
    const listed = parseImagesList(KUBEADM_LIST.replace('etcd:3.6.5-0', 'etcd:3.6.6-0'));
    expect(diffImages(listed)).to.deep.equal({ unbuilt: ['registry.k8s.io/etcd:3.6.6-0'], extra: ['registry.k8s.io/etcd:3.6.5-0'] });
  });

  it('ignores kubeadm\'s log lines around the list', () => {
    expect(parseImagesList(`W1201 14:00:00.000 warning: something\n${KUBEADM_LIST}\n`)).to.have.length(7);
  });

  it('puts each binary where kubeadm\'s manifests call it; kube-proxy gets iptables, coredns and pause their entrypoints', () => {
    const rows = KUBEADM_IMAGES.map((i) => `${i.binary} ${i.path} ${i.entrypoint?.join(' ') ?? '-'} ${i.withIptables ? 'iptables' : '-'}`);
    expect(rows).to.deep.equal([
      'kube-apiserver /usr/local/bin/kube-apiserver - -',
      'kube-controller-manager /usr/local/bin/kube-controller-manager - -',
      'kube-scheduler /usr/local/bin/kube-scheduler - -',
      'kube-proxy /usr/local/bin/kube-proxy - iptables',
      'coredns /coredns /coredns -',
      'pause /pause /pause -',
      'etcd /usr/local/bin/etcd - -',
    ]);
  });
});

describe('kind substrate: CAP_SYS_RESOURCE (bit 24 of CapBnd)', () => {
  it('says this sandbox\'s bounding set lacks it', () => {
    expect(hasCapSysResource('Name:\tnode\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n')).to.equal(false);
  });
  it('says a full bounding set has it', () => {
    expect(hasCapSysResource('CapBnd:\t000001ffffffffff\n')).to.equal(true);
  });
  it('looks only at bit 24 (0x01000000)', () => {
    expect(hasCapSysResource('CapBnd:\t0000000001000000\n')).to.equal(true);
    expect(hasCapSysResource('CapBnd:\t00000000fe000000\n')).to.equal(false);
  });
  it('returns null without a CapBnd line', () => {
    expect(hasCapSysResource('Name:\tnode\n')).to.equal(null);
  });
});

describe('kind substrate: rendered node files', () => {
  it('containerd: no fuse-overlayfs proxy, no base_runtime_spec, SystemdCgroup, pause 3.10.1, restrict_oom_score_adj', () => {
    const c = containerdConfig();
    expect(c).not.to.include('fuse-overlayfs');
    expect(c).not.to.include('base_runtime_spec');
    expect(c.match(/SystemdCgroup = true/g)).to.have.length(2);
    expect(c).to.include('sandbox_image = "registry.k8s.io/pause:3.10.1"');
    expect(c).to.include('restrict_oom_score_adj = true');
  });

  it('node Dockerfile: parent, kind\'s files, the binaries, units, and kind\'s ENTRYPOINT and STOPSIGNAL', () => {
    const d = nodeDockerfile('meshproof/packages:0123456789abcdef', [{ name: 'kubelet', dest: '/usr/bin/kubelet', mode: 0o755 }]);
    const lines = d.split('\n');
    expect(lines[0]).to.equal('FROM meshproof/packages:0123456789abcdef');
    expect(lines[1]).to.equal('COPY base/ /');
    expect(lines[2]).to.equal('COPY kubelet /usr/bin/kubelet');
    expect(d).to.include('systemctl enable kubelet.service containerd.service undo-mount-hacks.service');
    expect(d).to.include('ln -sf /usr/bin/containerd /usr/local/bin/containerd');
    expect(lines.slice(-4)).to.deep.equal(['ENV container=docker', 'STOPSIGNAL SIGRTMIN+3', 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]', '']);
  });

  it('kind\'s base files keep the modes of its COPY --chmod lines', () => {
    expect(baseFileMode('usr/local/bin/entrypoint')).to.equal(0o755);
    expect(baseFileMode('kind/bin/mount-product-files.sh')).to.equal(0o755);
    expect(baseFileMode('etc/systemd/system/kubelet.service')).to.equal(0o644);
  });

  it('the preload imports every tarball as kind does (k8s.io namespace, no unpack)', () => {
    expect(preloadScript('/kind/preload')).to.include('for f in /kind/preload/*.tar; do ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests "$f"; done');
  });
});

describe('kind substrate: doctor entries', () => {
  it('--substrate kind brings the docker engine\'s entries (kind runs its nodes there)', () => {
    expect(parseDoctorSubstrates('kind')).to.deep.equal(['docker', 'kind']);
    expect(parseDoctorSubstrates('docker,kind')).to.deep.equal(['docker', 'kind']);
  });
  it('adds the kind step only when asked for', () => {
    expect(checkNames('run', ['docker', 'kind'])).to.include('kind');
    expect(checkNames('run', ['docker'])).not.to.include('kind');
  });
});

describe('kind substrate: the cluster\'s rendered inputs', () => {
  const template = readFileSync(new URL('../clusters/kind.yaml', import.meta.url), 'utf8');

  it('clusters/kind.yaml: one control-plane node and one worker, no default CNI, kind\'s pod and service subnets', () => {
    const c = parse(template) as { kind: string; apiVersion: string; networking: Record<string, unknown>; nodes: { role: string }[] };
    expect(c.kind).to.equal('Cluster');
    expect(c.apiVersion).to.equal('kind.x-k8s.io/v1alpha4');
    expect(c.networking).to.deep.equal({ disableDefaultCNI: true, podSubnet: '10.244.0.0/16', serviceSubnet: '10.96.0.0/16' });
    expect(c.nodes.map((n) => n.role)).to.deep.equal(['control-plane', 'worker']);
  });

  it('sets the run\'s name and the node image on every node, keeping the rest', () => {
    const out = parse(renderKindConfig(template, { name: 'meshproof-ab12', image: 'meshproof/kind-node:0123456789abcdef' })) as {
      name: string; networking: { disableDefaultCNI: boolean }; nodes: { role: string; image: string }[];
    };
    expect(out.name).to.equal('meshproof-ab12');
    expect(out.networking.disableDefaultCNI).to.equal(true);
    expect(out.nodes).to.deep.equal([
      { role: 'control-plane', image: 'meshproof/kind-node:0123456789abcdef' },
      { role: 'worker', image: 'meshproof/kind-node:0123456789abcdef' },
    ]);
    expect(clusterNameOf('ab12')).to.equal('meshproof-ab12');
  });

  it('refuses a file that is not a kind Cluster in one line', () => {
    expect(() => renderKindConfig('kind: Pod\n', { name: 'x', image: 'y' })).to.throw(UserError, 'clusters/kind.yaml is not a kind Cluster with nodes: restore it from git');
  });

  it('gives a node a bridge on its own podCIDR, no masquerading', () => {
    const c = JSON.parse(bridgeConflist('10.244.1.0/24')) as { plugins: { type: string; ipMasq?: boolean; ipam?: { ranges: { subnet: string }[][] } }[] };
    expect(c.plugins.map((p) => p.type)).to.deep.equal(['bridge', 'portmap']);
    expect(c.plugins[0]!.ipMasq).to.equal(false);
    expect(c.plugins[0]!.ipam!.ranges).to.deep.equal([[{ subnet: '10.244.1.0/24' }]]);
  });

  it('routes each node to every other node\'s podCIDR through that node', () => {
    const routes = nodeRoutes([
      { name: 'cp', ip: '172.18.0.2', podCIDR: '10.244.0.0/24' },
      { name: 'w1', ip: '172.18.0.3', podCIDR: '10.244.1.0/24' },
      { name: 'w2', ip: '172.18.0.4', podCIDR: '10.244.2.0/24' },
    ]);
    expect(routes).to.deep.equal({
      cp: [['ip', 'route', 'replace', '10.244.1.0/24', 'via', '172.18.0.3'], ['ip', 'route', 'replace', '10.244.2.0/24', 'via', '172.18.0.4']],
      w1: [['ip', 'route', 'replace', '10.244.0.0/24', 'via', '172.18.0.2'], ['ip', 'route', 'replace', '10.244.2.0/24', 'via', '172.18.0.4']],
      w2: [['ip', 'route', 'replace', '10.244.0.0/24', 'via', '172.18.0.2'], ['ip', 'route', 'replace', '10.244.1.0/24', 'via', '172.18.0.3']],
    });
  });

  it('makes the wrapper dockerd\'s default runtime', () => {
    expect(JSON.parse(daemonConfigWithRuntime('meshproof-runc', '/c/runc'))).to.deep.equal({ runtimes: { 'meshproof-runc': { path: '/c/runc' } }, 'default-runtime': 'meshproof-runc' });
  });
});
