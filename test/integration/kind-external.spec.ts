// The existing-cluster path (issue 14: `--kubeconfig <file>` with `--image-registry <registry>`), tested as the issue
// says: against kind's own kubeconfig (the loopback one) and a local registry on loopback, set up as kind's docs do
// (https://kind.sigs.k8s.io/docs/user/local-registry/: the nodes' containerd reads /etc/containerd/certs.d, where
// `localhost:<port>` maps to the registry on the kind network). meshproof creates the cluster and distribution's
// registry first; then KindMesh.start with MESHPROOF_KUBECONFIG and MESHPROOF_IMAGE_REGISTRY builds the images on an
// engine of its own, pushes them, installs Istio and the workshop's sentences mesh from them (pulled by the kubelet),
// and probes with every record's wire null and saying why. Its stop removes what it applied and leaves the cluster;
// then the test deletes cluster and registry and checks nothing is left. Needs root, `meshproof doctor --fix
// --substrate kind` (the registry too) and Istio 1.28.2 (skipped, saying so, without them).
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/harness/model/errors.ts';
import { loadIstio } from '../../src/harness/profiles/istio/resources.ts';
import { createKindCluster, type KindCluster } from '../../src/harness/substrate/kind/cluster.ts';
import { checkExternal, IMAGE_REGISTRY_ENV, KUBECONFIG_ENV } from '../../src/harness/substrate/kind/external.ts';
import { KindMesh } from '../../src/harness/substrate/kind/mesh.ts';
import { REGISTRY_CONTAINERD_PATCH, startKindRegistry, type KindRegistry } from '../../src/harness/substrate/kind/registry.ts';
import { runCapture } from '../../src/harness/substrate/sh.ts';
import { stateDirOf } from '../../src/harness/substrate/state.ts';
import type { ProbeResult } from '../../src/harness/probe/types.ts';
import { iptablesSave, kindSentencesModel, netnsList, processesNaming, SENTENCES_DIR, skipUnlessKindIstio } from './lib/kind.ts';

const log = (l: string) => process.stdout.write(`      ${l}\n`);
const SENTENCES_FILES = ['namespace.yaml', 'sentences.yaml', 'age.yaml', 'name.yaml', 'sleep.yaml', 'sleep-naked.yaml'];
const INJECT = ['sentences', 'age', 'name', 'name-v2', 'sleep'];

describe('kind substrate: an existing cluster through --kubeconfig and --image-registry (kind\'s own, a local registry)', function () {
  this.timeout(25 * 60_000);
  let cluster: KindCluster | undefined;
  let registry: KindRegistry | undefined;
  let mesh: KindMesh | undefined;
  let iptablesBefore = '';
  const records: ProbeResult[] = [];
  const env = { k: process.env[KUBECONFIG_ENV], r: process.env[IMAGE_REGISTRY_ENV] };

  before(async function () {
    await skipUnlessKindIstio(this);
    iptablesBefore = iptablesSave();
  });

  after(async () => {
    if (env.k === undefined) delete process.env[KUBECONFIG_ENV]; else process.env[KUBECONFIG_ENV] = env.k;
    if (env.r === undefined) delete process.env[IMAGE_REGISTRY_ENV]; else process.env[IMAGE_REGISTRY_ENV] = env.r;
    await mesh?.stop().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    await cluster?.delete();
  });

  it('creates a kind cluster whose nodes pull localhost:<port> from distribution\'s registry on the kind network', async () => {
    cluster = await createKindCluster({ log, containerdConfigPatches: [REGISTRY_CONTAINERD_PATCH] });
    registry = await startKindRegistry(cluster, { log });
    expect(registry.address).to.match(/^localhost:\d+$/);
    // the registry answers on the host's loopback (distribution's /v2/ check; async: the relay runs in this process)
    const v2 = await runCapture(['curl', '-sS', '--max-time', '10', '-D', '-', '-o', '/dev/null', `http://${registry.address}/v2/`]);
    expect(v2.stdout, v2.stderr).to.match(/^HTTP\/1\.1 200/);
    expect(v2.stdout.toLowerCase()).to.include('docker-distribution-api-version: registry/2.0');
    // and from a node, at the address its containerd was given (the node image has bash, not curl)
    const { hostname, port } = new URL(registry.nodeEndpoint);
    const fromNode = await runCapture(['docker', 'exec', cluster.nodes[1]!.name, 'bash', '-c', `exec 3<>/dev/tcp/${hostname}/${port}; printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' >&3; head -1 <&3`], { env: cluster.engine.env(), timeoutMs: 20_000 });
    expect(fromNode.stdout.trim(), fromNode.stderr).to.match(/^HTTP\/1\.[01] 200/);
    const hosts = await runCapture(['docker', 'exec', cluster.nodes[1]!.name, 'cat', `/etc/containerd/certs.d/${registry.address}/hosts.toml`], { env: cluster.engine.env() });
    expect(hosts.stdout).to.include(`[host."${registry.nodeEndpoint}"]`);
  });

  it('refuses an unreadable kubeconfig, an API server that does not answer and a registry that does not, each in one line', async () => {
    expect(cluster, 'no cluster').to.not.equal(undefined);
    const dir = mkdtempSync(join(tmpdir(), 'mp-h26-'));
    try {
      const dead = join(dir, 'dead.kubeconfig');
      writeFileSync(dead, ['apiVersion: v1', 'kind: Config', 'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]', 'users: [{name: u, user: {}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n'));
      const cases: [string, string, RegExp][] = [
        [join(dir, 'missing'), registry!.address, /cannot read it \(ENOENT\)/],
        [dead, registry!.address, /the API server https:\/\/127\.0\.0\.1:1 does not answer/],
        [cluster!.loopback.kubeconfig, 'localhost:1', /no registry answers http:\/\/localhost:1\/v2\//],
      ];
      const netnsBefore = netnsList();
      for (const [kubeconfig, reg, want] of cases) {
        const e = await checkExternal({ kubeconfig, registry: reg }).then(() => null, (x: Error) => x);
        expect(e, `${kubeconfig} ${reg}`).to.be.instanceOf(UserError);
        expect(e!.message).to.match(want);
        expect(e!.message).to.not.include('\n');
      }
      expect(netnsList()).to.deep.equal(netnsBefore);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('installs Istio and the sentences mesh on it from the images it pushed to the registry (imagePullPolicy IfNotPresent)', async () => {
    expect(registry, 'no registry').to.not.equal(undefined);
    process.env[KUBECONFIG_ENV] = cluster!.loopback.kubeconfig;
    process.env[IMAGE_REGISTRY_ENV] = registry!.address;
    mesh = await KindMesh.start(kindSentencesModel(), { log, reportsDir: join(cluster!.stateDir, 'reports') });
    const ki = mesh.ki;
    expect(ki.cluster.external?.registry).to.equal(registry!.address);
    // not the kind cluster's engine: the path builds on an engine of its own, as for a cluster meshproof never made
    expect(ki.cluster.engine.layout?.netns).to.not.equal(cluster!.netns);
    for (const ref of [ki.images.proxyv2, ki.images.pilot, ki.images.workload]) expect(ref.startsWith(`${registry!.address}/meshproof/`), ref).to.equal(true);
    const catalog = await runCapture(['curl', '-sS', '--max-time', '10', `http://${registry!.address}/v2/_catalog`]);
    expect((JSON.parse(catalog.stdout) as { repositories: string[] }).repositories.sort()).to.deep.equal(['meshproof/istio-pilot', 'meshproof/istio-proxyv2', 'meshproof/workload']);
    // istiod and every app container run the pushed references, pulled by the kubelet
    const istiod = await cluster!.kubectl(['-n', 'istio-system', 'get', 'pods', '-l', 'app=istiod', '-o', 'jsonpath={.items[*].spec.containers[*].image}']);
    expect(istiod.trim()).to.equal(ki.images.pilot);
    const rows = (await cluster!.kubectl(['get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.labels.app} {.status.phase} {range .spec.containers[*]}{.image}={.imagePullPolicy},{end}{"\\n"}{end}'])).trim().split('\n').sort();
    expect(rows).to.have.length(6);
    for (const r of rows) {
      expect(r.split(' ')[1], r).to.equal('Running');
      expect(r, r).to.include(`${ki.images.workload}=IfNotPresent`);
    }
    // pulled, not loaded: the node's containerd has the image under the registry's name
    const node = cluster!.nodes[1]!.name;
    const crictl = await runCapture(['docker', 'exec', node, 'crictl', 'images', '-o', 'json'], { env: cluster!.engine.env() });
    expect(crictl.stdout).to.include(ki.images.workload);
  });

  it('answers a meshed client\'s call over mTLS (the server sidecar\'s handshake counter grows), every record\'s wire null with a reason', async () => {
    expect(mesh, 'no mesh').to.not.equal(undefined);
    const m = mesh!;
    const handshakes = /^listener\.0\.0\.0\.0_15006\.ssl\.handshake$/;
    const before = await m.stat('sentences', handshakes);
    const r = await m.cluster.probe('sleep', { protocol: 'http', host: 'sentences', port: 5000, timeoutMs: 10_000 });
    records.push(r);
    expect(r.observed, JSON.stringify(r.evidence)).to.equal('allowed');
    expect(r.evidence.body).to.match(/ is \d+ years/);
    expect(await m.stat('sentences', handshakes) - before, 'TLS handshakes on sentences\' inbound listener').to.be.at.least(1);
  });

  it('after PeerAuthentication STRICT refuses the naked client and still answers the meshed one', async () => {
    expect(mesh, 'no mesh').to.not.equal(undefined);
    const m = mesh!;
    const strict = loadIstio([...SENTENCES_FILES, 'peer-auth/strict.yaml'].map((f) => join(SENTENCES_DIR, f)), { inject: INJECT });
    await m.update(strict);
    const [naked, meshed] = await m.cluster.probeMany([
      { from: 'sleep-naked', req: { protocol: 'http', host: 'age', port: 5000, timeoutMs: 10_000 } },
      { from: 'sleep', req: { protocol: 'http', host: 'age', port: 5000, timeoutMs: 10_000 } },
    ]);
    records.push(naked!, meshed!);
    expect(naked!.observed, JSON.stringify(naked!.evidence)).to.equal('denied');
    expect(naked!.verdict).to.equal('denied:reset');
    expect(meshed!.observed, JSON.stringify(meshed!.evidence)).to.equal('allowed');
    // no wire verdict on a cluster meshproof cannot capture on: null and why, on every record
    expect(records).to.have.length(3);
    for (const rec of records) {
      expect(rec.evidence.wire).to.equal(null);
      expect((rec.evidence as { wireUnchecked?: string }).wireUnchecked).to.match(/no access to its node links/);
    }
  });

  it('at the end leaves the cluster with Istio\'s objects and the model\'s gone, then cluster and registry go and nothing is left', async () => {
    expect(mesh, 'no mesh').to.not.equal(undefined);
    const ownEngine = mesh!.ki.cluster.engine.layout!;
    await mesh!.stop();
    mesh = undefined;
    // meshproof's own engine for the images is gone
    expect(netnsList()).to.not.include(ownEngine.netns);
    expect(processesNaming(ownEngine.socket)).to.deep.equal([]);
    // the cluster is still there; what meshproof applied is not
    const nodes = await cluster!.kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}']);
    expect(nodes.trim().split(' ')).to.deep.equal(['True', 'True']);
    const ns = (await cluster!.kubectl(['get', 'ns', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ');
    expect(ns).to.include('default').and.not.include('istio-system');
    expect((await cluster!.kubectl(['get', 'ns', 'default', '-o', 'jsonpath={.metadata.labels.istio-injection}'])).trim()).to.equal('');
    expect((await cluster!.kubectl(['get', 'deploy,svc,sa', '-n', 'default', '-o', 'name'])).trim().split('\n').sort()).to.deep.equal(['service/kubernetes', 'serviceaccount/default']);
    expect((await cluster!.kubectl(['get', 'crd', '-o', 'name'])).trim()).to.not.match(/istio\.io/);
    expect((await cluster!.kubectl(['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'name'])).trim()).to.not.match(/istio/);
    expect((await cluster!.kubectl(['-n', 'kube-system', 'get', 'pods', '-o', 'jsonpath={range .items[*]}{.status.phase} {end}'])).trim().split(' ').every((p) => p === 'Running')).to.equal(true);

    const c = cluster!;
    const dataDir = registry!.dataDir;
    await registry!.stop();
    registry = undefined;
    await c.delete();
    cluster = undefined;
    expect(existsSync(dataDir), dataDir).to.equal(false);
    expect(netnsList()).to.not.include(c.netns);
    const short = c.engine.layout!.short;
    expect(existsSync(stateDirOf(short)), stateDirOf(short)).to.equal(false);
    expect(processesNaming(c.engine.layout!.socket)).to.deep.equal([]);
    expect(processesNaming(c.stateDir)).to.deep.equal([]);
    expect(iptablesSave()).to.equal(iptablesBefore);
  });
});
