// The kube layer's API on the netns substrate (issue 13): etcd, kube-apiserver and
// kube-controller-manager in a run's node namespace, reached from the host on loopback only (kubectl,
// @kubernetes/client-node) and from a pod at 10.244.0.1:6443. Needs root and the binaries
// `meshproof doctor --fix` provisions (skipped, with that line, when they are absent);
// KUBE_APISERVER_BIN / KUBE_CONTROLLER_MANAGER_BIN / ETCD_BIN point this test at other builds.
import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, AuthenticationV1Api, CoreV1Api, type V1TokenReview } from '@kubernetes/client-node';
import { UserError } from '../../src/harness/model/errors.ts';
import { resolveKube } from '../../src/harness/controlplane/provision.ts';
import { startKubeApi, type KubeApi, type KubeBins } from '../../src/harness/kube/apiserver.ts';
import { parseStatusRssKiB } from '../../src/harness/substrate/netns/proc.ts';
import { upNetns, type NetnsCluster } from '../../src/harness/substrate/netns/index.ts';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { leftovers, pidsInNetns } from '../../src/harness/substrate/state.ts';

const execFileAsync = promisify(execFile);
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** The provisioned binaries, each overridable by its env var; a string is why they are missing. */
function kubeBins(): KubeBins | string {
  const env = { kubeApiserver: process.env.KUBE_APISERVER_BIN, kubeControllerManager: process.env.KUBE_CONTROLLER_MANAGER_BIN, etcd: process.env.ETCD_BIN };
  if (env.kubeApiserver && env.kubeControllerManager && env.etcd) return env as KubeBins;
  try {
    const r = resolveKube();
    return { kubeApiserver: env.kubeApiserver || r.kubeApiserver, kubeControllerManager: env.kubeControllerManager || r.kubeControllerManager, etcd: env.etcd || r.etcd };
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
}

/** Asynchronous on purpose: the host end of the relay is this process's event loop (execFileSync would stall it). */
async function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  return (await execFileAsync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 })).stdout;
}

function netnsInode(path: string): string {
  return String(statSync(path).ino);
}

function jwtPart(jwt: string, i: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString()) as Record<string, unknown>;
}

function rssMiB(pid: number): number {
  return Math.round(parseStatusRssKiB(readFileSync(`/proc/${pid}/status`, 'utf8')) / 1024);
}

/** Connects once to 127.0.0.1:<port>: `connected` or the error code. */
function refusedOrConnected(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('kube API in a netns run (integration)', function () {
  this.timeout(240_000);
  let bins: KubeBins;
  let cluster: NetnsCluster | undefined;
  let kube: KubeApi | undefined;
  let scratch: string;
  const lines: string[] = [];
  const log = (l: string): void => void lines.push(l);

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    const b = kubeBins();
    if (typeof b === 'string') {
      console.log(`      skipped: ${b}`);
      this.skip();
    }
    bins = b;
    scratch = mkdtempSync(join(tmpdir(), 'mp-kube-it-'));
    cluster = await upNetns({ name: 'kube-api', pods: [{ name: 'client', namespace: 'default' }] }, { wire: false, log });
  });

  after(async () => {
    await kube?.stop();
    await cluster?.down();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const nodeProcs = (): string[] => cluster!.supervisor.procs.filter((p) => p.spec.pod === 'node' && p.exitCode === undefined).map((p) => p.spec.name);

  describe('bad input: one line naming the fix, nothing left behind', function () {
    it('a missing binary', async function () {
      const missing = join(scratch, 'kube-controller-manager');
      const e = await rejection(startKubeApi(cluster!, { ...bins, kubeControllerManager: missing }));
      expect(e).to.be.instanceOf(UserError);
      expect(e.message).to.equal(`kube-controller-manager not found at ${missing}: run meshproof doctor --fix`);
      expect(existsSync(join(cluster!.stateDir, 'kube'))).to.equal(false);
      expect(nodeProcs()).to.deep.equal([]);
    });

    it('port 6443 already taken in the node namespace', async function () {
      const squatter = cluster!.supervisor.start({ pod: 'node', name: 'squatter', netns: cluster!.nodeNetns, argv: [process.execPath, cluster!.bundle, 'tcp-listener', '--port', '6443'] });
      try {
        await pollUntil(() => (readFileSync(squatter.logFile, 'utf8').includes('listening on') ? true : undefined), { timeoutMs: 20_000, what: 'squatter' });
        const e = await rejection(startKubeApi(cluster!, bins));
        expect(e).to.be.instanceOf(UserError);
        const ns = cluster!.nodeNetns;
        expect(e.message).to.equal(`port 6443 (kube-apiserver) is already taken in the node namespace ${ns}: stop what listens there (ip netns exec ${ns} ss -tlnp 'sport = :6443' names it); the kube API starts once per run`);
        expect(existsSync(join(cluster!.stateDir, 'kube'))).to.equal(false);
        expect(nodeProcs()).to.deep.equal(['squatter']);
      } finally {
        await cluster!.supervisor.stop(squatter);
      }
    });

    it('an API server that dies before it is ready: its name and log tail; etcd and the relays are stopped', async function () {
      const fake = join(scratch, 'kube-apiserver');
      writeFileSync(fake, '#!/bin/sh\necho "E1201 run.go:72] fake kube-apiserver: unknown flag: --bogus" >&2\nexit 3\n');
      chmodSync(fake, 0o755);
      const e = await rejection(startKubeApi(cluster!, { ...bins, kubeApiserver: fake }));
      expect(e).not.to.be.instanceOf(UserError);
      expect(e.message).to.match(/^kube-apiserver exited \(code 3\) before it was ready; log \S+\/logs\/node\/kube-apiserver\.log:\n/);
      expect(e.message).to.include('fake kube-apiserver: unknown flag: --bogus');
      expect(nodeProcs()).to.deep.equal([]);
      expect(existsSync(join(cluster!.stateDir, 'kube'))).to.equal(false);
    });
  });

  describe('started for real', function () {
    before(async function () {
      const t0 = Date.now();
      kube = await startKubeApi(cluster!, bins, { log });
      const { etcd, apiserver, controllerManager } = kube.procs;
      const rss = [etcd, apiserver, controllerManager].map((p) => `${p.spec.name} ${rssMiB(p.child.pid!)} MiB`).join(', ');
      const t = kube.timings;
      console.log(`      measured: etcd serving ${t.etcdMs} ms, /readyz ${t.apiserverMs} ms, kcm's first ServiceAccount ${t.controllerManagerMs} ms (call ${Date.now() - t0} ms); RSS ${rss}`);
    });

    it('the three processes run inside the node namespace, as the binaries asked for', function () {
      const node = netnsInode(`/run/netns/${cluster!.nodeNetns}`);
      const { etcd, apiserver, controllerManager } = kube!.procs;
      for (const [p, bin] of [
        [etcd, bins.etcd],
        [apiserver, bins.kubeApiserver],
        [controllerManager, bins.kubeControllerManager],
      ] as const) {
        expect(readlinkSync(`/proc/${p.child.pid}/ns/net`), p.spec.name).to.equal(`net:[${node}]`);
        expect(readlinkSync(`/proc/${p.child.pid}/exe`), p.spec.name).to.equal(realpathSync(bin));
      }
    });

    it('the host reaches it on 127.0.0.1 only, through the relay; kubectl reads /readyz and the namespaces', async function () {
      expect(kube!.server).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(new URL(kube!.server).port);
      // the host listener is the harness's own, on loopback
      const ss = execFileSync('ss', ['-Htlnp', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n');
      expect(ss).to.have.length(1);
      expect(ss[0]).to.match(new RegExp(`^LISTEN\\s+\\d+\\s+\\d+\\s+127\\.0\\.0\\.1:${port}\\s.*pid=${process.pid},`));
      expect(await kubectl(kube!.kubeconfigPath, 'get', '--raw', '/readyz')).to.equal('ok');
      const ns = (await kubectl(kube!.kubeconfigPath, 'get', 'ns', '-o', 'jsonpath={.items[*].metadata.name}')).split(' ').sort();
      expect(ns).to.deep.equal(['default', 'kube-node-lease', 'kube-public', 'kube-system']);
      expect(await kubectl(kube!.kubeconfigPath, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.groups}')).to.equal(
        'meshproof-admin ["system:masters","system:authenticated"]',
      );
    });

    it('the kubeconfig and every key are 0600 under the run\'s state directory', function () {
      const dir = join(cluster!.stateDir, 'kube');
      expect(kube!.kubeconfigPath).to.equal(join(dir, 'kubeconfig'));
      for (const f of ['kubeconfig', 'controller-manager.kubeconfig', 'tokens.csv', 'sa.key', 'apiserver.key', 'apiserver.pem']) {
        expect(statSync(join(dir, f)).mode & 0o777, f).to.equal(0o600);
      }
      expect(statSync(join(dir, 'etcd')).mode & 0o777).to.equal(0o700);
      expect(statSync(join(dir, 'apiserver.sock')).mode & 0o777).to.equal(0o600);
      expect(kube!.caPath).to.equal(join(dir, 'kube-ca.crt'));
      expect(readFileSync(kube!.caPath, 'utf8')).to.equal(kube!.caPem);
    });

    it('a pod reaches it at 10.244.0.1:6443, by IP and as kubernetes.default.svc, verified against the run CA', async function () {
      expect(kube!.podServer).to.deep.equal({ host: '10.244.0.1', port: 6443 });
      for (const args of [
        ['https://10.244.0.1:6443/version'],
        ['--resolve', 'kubernetes.default.svc.cluster.local:6443:10.244.0.1', 'https://kubernetes.default.svc.cluster.local:6443/version'],
      ]) {
        const r = await cluster!.exec('client', ['curl', '-sS', '--max-time', '10', '--cacert', kube!.caPath, ...args]);
        expect(r.code, r.stderr).to.equal(0);
        expect((JSON.parse(r.stdout) as { gitVersion: string }).gitVersion).to.equal('v1.34.4');
      }
      const bad = await cluster!.exec('client', ['curl', '-sS', '--max-time', '10', '--cacert', kube!.caPath, '--resolve', 'evil.example:6443:10.244.0.1', 'https://evil.example:6443/version']);
      expect(bad.code).to.equal(60); // curl: peer certificate cannot be authenticated (no such SAN)
    });

    it('a TokenRequest with audience istio-ca: an ES256 JWT from the issuer, valid for istio-ca only (TokenReview)', async function () {
      const core = kube!.kc.makeApiClient(CoreV1Api);
      await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'sleep' } } });
      const tr = await core.createNamespacedServiceAccountToken({ name: 'sleep', namespace: 'default', body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } } });
      const jwt = tr.status!.token;
      const [header, claims] = [jwtPart(jwt, 0), jwtPart(jwt, 1)];
      expect(header.alg).to.equal('ES256');
      expect(claims.iss).to.equal(ISSUER);
      expect(claims.aud).to.deep.equal(['istio-ca']);
      expect(claims.sub).to.equal('system:serviceaccount:default:sleep');
      // the signature checks out against the key the API server publishes (OIDC discovery)
      const jwks = JSON.parse(await kubectl(kube!.kubeconfigPath, 'get', '--raw', '/openid/v1/jwks')) as { keys: (JsonWebKey & { kid: string })[] };
      const jwk = jwks.keys.find((k) => k.kid === header.kid);
      expect(jwk, 'jwks has the token kid').to.not.equal(undefined);
      const [h, p, s] = jwt.split('.') as [string, string, string];
      expect(verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk!, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).to.equal(true);
      const review = async (audiences?: string[]): Promise<V1TokenReview> =>
        kube!.kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: jwt, ...(audiences ? { audiences } : {}) } } });
      const ok = await review(['istio-ca']);
      expect([ok.status?.authenticated, ok.status?.user?.username, ok.status?.audiences]).to.deep.equal([true, 'system:serviceaccount:default:sleep', ['istio-ca']]);
      expect((await review(['wrong-aud'])).status?.authenticated).to.not.equal(true);
      // without audiences the API server's own (the issuer) apply: an istio-ca token is not an API credential
      expect((await review()).status?.authenticated).to.not.equal(true);
    });

    it('kube-controller-manager: each namespace gets its default ServiceAccount and kube-root-ca.crt (the run CA)', async function () {
      const core = kube!.kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: 'kcm-check' } } });
      for (const namespace of ['default', 'kcm-check']) {
        const sa = await pollUntil(() => core.readNamespacedServiceAccount({ name: 'default', namespace }).catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100, what: `${namespace}/default ServiceAccount` });
        expect(sa.metadata?.namespace).to.equal(namespace);
        const cm = await pollUntil(() => core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace }).catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100, what: `${namespace}/kube-root-ca.crt` });
        expect(cm.data?.['ca.crt']).to.equal(kube!.caPem);
      }
    });

    it('kube-controller-manager: a Deployment gets its ReplicaSet and two Pods (no scheduler: Pending)', async function () {
      const apps = kube!.kc.makeApiClient(AppsV1Api);
      const labels = { app: 'web' };
      await apps.createNamespacedDeployment({
        namespace: 'default',
        body: { metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'example/web:1' }] } } } },
      });
      const core = kube!.kc.makeApiClient(CoreV1Api);
      const pods = await pollUntil(
        async () => {
          const l = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' });
          return l.items.length === 2 ? l.items : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'two web pods' },
      );
      expect(pods.map((p) => p.status?.phase)).to.deep.equal(['Pending', 'Pending']);
      const rs = await apps.listNamespacedReplicaSet({ namespace: 'default', labelSelector: 'app=web' });
      expect(rs.items.map((r) => [r.metadata?.ownerReferences?.[0]?.name, r.spec?.replicas])).to.deep.equal([['web', 2]]);
    });

    it('stop() alone: the three processes and both relay ends gone, the ports free, the keys removed; the pods stay', async function () {
      const { etcd, apiserver, controllerManager, relay } = kube!.procs;
      const port = Number(new URL(kube!.server).port);
      await kube!.stop();
      for (const p of [etcd, apiserver, controllerManager, relay]) expect(p.exitCode, p.spec.name).to.not.equal(undefined);
      expect(await refusedOrConnected(port)).to.equal('ECONNREFUSED');
      expect((await cluster!.exec('client', ['true'])).code, 'the pod still runs').to.equal(0);
      const node = execFileSync('ip', ['netns', 'exec', cluster!.nodeNetns, 'ss', '-Htln'], { encoding: 'utf8' });
      expect(node.trim()).to.equal('');
      expect(existsSync(join(cluster!.stateDir, 'kube'))).to.equal(false);
      await kube!.stop(); // idempotent
    });

    it('down() leaves nothing: no process, no namespace, no state', async function () {
      const short = cluster!.short;
      const names = [cluster!.nodeNetns, cluster!.pod('client').netns];
      await cluster!.down();
      expect(pidsInNetns(names)).to.deep.equal([]);
      expect(await leftovers(short)).to.deep.equal([]);
    });
  });
});
