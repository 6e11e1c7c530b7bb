// A real kind cluster (kind v0.30.0, Kubernetes v1.34.4, one control-plane node and one worker) from the offline node
// image, on meshproof's own docker engine in its private network namespace: both nodes Ready as the cached kubectl
// sees them, every kube-system pod Running (kubeadm's images built offline), a pod on the worker calling a pod on the
// control-plane node over TCP, and after delete no container, network, engine process, cgroup or namespace left and
// the host's iptables unchanged. Needs root and `meshproof doctor --fix --substrate kind` (skipped, saying so, without
// them; the node image itself is built by the create when missing).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { checkKind } from '../../src/harness/substrate/kind/doctor.ts';
import { createKindCluster, type KindCluster } from '../../src/harness/substrate/kind/cluster.ts';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { stateDirOf } from '../../src/harness/substrate/state.ts';
import { iptablesSave, netnsList, processesNaming } from './lib/kind.ts';

describe('kind substrate: a two-node kind cluster on meshproof\'s engine', function () {
  // a cold node image in a fresh data root, then kind create (19-22 s measured, §4) and both nodes Ready
  this.timeout(20 * 60_000);
  let cluster: KindCluster | undefined;
  let iptablesBefore = '';

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    // the node image is not required: the create builds it into its engine when the shared image cache lacks it
    const missing = (await checkKind()).filter((c) => !c.ok && c.name !== 'kind node image');
    if (missing.length) {
      process.stdout.write(`      skipped: ${missing.map((c) => c.name).join(', ')} missing (run meshproof doctor --fix --substrate kind)\n`);
      this.skip();
    }
    iptablesBefore = iptablesSave();
  });

  after(async () => {
    await cluster?.delete();
  });

  it('creates the cluster with a per-run name and both nodes Ready in kubectl get nodes', async () => {
    cluster = await createKindCluster({ log: (l) => process.stdout.write(`      ${l}\n`) });
    expect(cluster.name).to.match(/^meshproof-[0-9a-z]+$/);
    const out = await cluster.kubectl(['get', 'nodes', '--no-headers']);
    const rows = out.trim().split('\n').map((l) => l.split(/\s+/));
    expect(rows, out).to.have.length(2);
    expect(rows.map((r) => r[0])).to.have.members([`${cluster.name}-control-plane`, `${cluster.name}-worker`]);
    expect(rows.map((r) => r[1]), out).to.deep.equal(['Ready', 'Ready']);
    expect(rows.map((r) => r[4]), out).to.deep.equal(['v1.34.4', 'v1.34.4']);
  });

  it('gives each node its own podCIDR', () => {
    expect(cluster, 'no cluster').to.not.equal(undefined);
    const cidrs = cluster!.nodes.map((n) => n.podCIDR);
    expect(cidrs).to.have.length(2);
    expect(new Set(cidrs).size).to.equal(2);
    for (const c of cidrs) expect(c).to.match(/^10\.244\.\d+\.0\/24$/);
  });

  it('runs every kube-system pod from the preloaded images: the static pods, kube-proxy on both nodes, CoreDNS\'s two replicas', async () => {
    expect(cluster, 'no cluster').to.not.equal(undefined);
    const c = cluster!;
    let seen = '';
    // name prefix → count: kubeadm's four static pods on the control plane, kube-proxy per node, CoreDNS's two replicas
    const want: Record<string, number> = { 'etcd-': 1, 'kube-apiserver-': 1, 'kube-controller-manager-': 1, 'kube-scheduler-': 1, 'kube-proxy-': 2, 'coredns-': 2 };
    const got = await pollUntil(async () => {
      seen = await c.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}']);
      const pods = seen.trim().split(' ').filter(Boolean).map((x) => x.split('=') as [string, string]);
      const running = Object.fromEntries(Object.keys(want).map((p) => [p, pods.filter(([n, ph]) => n.startsWith(p) && ph === 'Running').length]));
      return Object.keys(want).every((p) => running[p] === want[p]) && pods.length === 8 ? running : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000, what: 'kube-system pods Running', detail: () => seen });
    expect(got).to.deep.equal(want);
  });

  it('carries a pod\'s TCP call from the worker to a pod on the control-plane node (per-node bridge + routes)', async () => {
    expect(cluster, 'no cluster').to.not.equal(undefined);
    const c = cluster!;
    const [cp, worker] = c.nodes;
    // images preloaded in the node image: etcd serves HTTP (GET /version), kube-proxy's image has Debian's bash
    const pod = (name: string, node: string, image: string, command: string[]) => ({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
      spec: {
        nodeName: node, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }],
        containers: [{ name, image, imagePullPolicy: 'Never', command }],
      },
    });
    const manifests = JSON.stringify({
      apiVersion: 'v1', kind: 'List', items: [
        pod('server', cp!.name, 'registry.k8s.io/etcd:3.6.5-0', ['etcd', '--data-dir=/var/lib/etcd-test', '--listen-client-urls=http://0.0.0.0:2379',
          '--advertise-client-urls=http://127.0.0.1:2379', '--listen-peer-urls=http://127.0.0.1:2380', '--initial-advertise-peer-urls=http://127.0.0.1:2380',
          '--initial-cluster=default=http://127.0.0.1:2380']),
        pod('client', worker!.name, 'registry.k8s.io/kube-proxy:v1.34.4', ['bash', '-c', 'sleep infinity']),
      ],
    });
    // the default ServiceAccount appears a moment after the namespace (kube-controller-manager)
    await pollUntil(async () => ((await c.kubectl(['apply', '-f', '-'], { input: manifests }).catch(() => null)) === null ? undefined : true),
      { timeoutMs: 60_000, intervalMs: 1000, what: 'kubectl apply of the two pods' });
    let seen = '';
    const ips = await pollUntil(async () => {
      seen = await c.kubectl(['get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.phase}={.status.podIP} {end}']);
      const m = Object.fromEntries(seen.trim().split(' ').map((x) => x.split('=')).map(([n, ph, ip]) => [n, ph === 'Running' ? ip : undefined]));
      return m.server && m.client ? { server: m.server as string, client: m.client as string } : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000, what: 'server and client pods Running', detail: () => seen });
    expect(ips.server.startsWith(cp!.podCIDR.replace(/0\/24$/, ''))).to.equal(true);
    expect(ips.client.startsWith(worker!.podCIDR.replace(/0\/24$/, ''))).to.equal(true);
    const out = await pollUntil(async () => {
      const r = await c.kubectl(['exec', 'client', '--', 'bash', '-c',
        `exec 3<>/dev/tcp/${ips.server}/2379 && printf 'GET /version HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 5 cat <&3`]).catch((e: Error) => e.message);
      seen = r;
      return r.includes('etcdserver') ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1000, what: 'GET /version from the client pod', detail: () => seen });
    expect(out).to.include('"etcdserver":"3.6.8"');
  });

  it('deletes it: no node container, no network, no engine process or namespace, host iptables unchanged', async () => {
    expect(cluster, 'no cluster').to.not.equal(undefined);
    const c = cluster!;
    const short = c.engine.layout!.short;
    const socket = c.engine.layout!.socket;
    await c.delete();
    cluster = undefined;
    expect(netnsList()).to.not.include(c.netns);
    expect(processesNaming(stateDirOf(short))).to.deep.equal([]);
    expect(existsSync(socket), socket).to.equal(false);
    // the node containers' cgroups lived under the engine's cgroup parent (cgroupfs driver)
    const cgroups = readdirSync('/sys/fs/cgroup').map((ctl) => `/sys/fs/cgroup/${ctl}/${c.engine.layout!.cgroupParent}`).filter((d) => existsSync(d));
    expect(cgroups).to.deep.equal([]);
    // the node containers and the network lived in that engine; nothing of it answers any more
    const ps = spawnSync('docker', ['ps', '-aq'], { env: { ...process.env, DOCKER_HOST: `unix://${socket}` }, encoding: 'utf8' });
    expect(ps.status).to.not.equal(0);
    expect(iptablesSave()).to.equal(iptablesBefore);
  });
});
