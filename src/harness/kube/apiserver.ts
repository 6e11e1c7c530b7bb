// The per-run Kubernetes API of the kube layer on the netns substrate: etcd, kube-apiserver and
// kube-controller-manager (Kubernetes' own binaries from the cache) inside the run's private node
// namespace, with a per-run CA, serving certificate, service-account key and static tokens from
// meshproof's PKI. Pods reach the API server at the node's address (10.244.0.1:6443); the host
// namespace reaches it only on 127.0.0.1, through a relay over a Unix socket into the node.
import { accessSync, constants, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../model/errors.ts';
import { CertificateAuthority, newSigningKeyPair, PkiStore } from '../pki/index.ts';
import type { Cluster } from '../substrate/types.ts';
// node-level: etcd, kube-apiserver and kube-controller-manager run in the netns run's node namespace, at its address
import { GATEWAY, SERVICE_CIDR } from '../substrate/netns/index.ts';
import { netnsCluster } from '../substrate/index.ts';
import { nodeName } from './node-netns.ts';
import { pollUntil } from '../substrate/poll.ts';
import { runCapture } from '../substrate/sh.ts';
import { Supervisor, type Proc } from '../substrate/supervisor.ts';
import { startRelay, type RelayHandle } from '../workloads/relay.ts';

/** Ports bound inside the node namespace (kube-apiserver --secure-port, etcd client/peer, kcm --secure-port, the node agent's kubelet API: kubelet's --port). */
export const KUBE_PORTS = { 'kube-apiserver': 6443, 'etcd client': 2379, 'etcd peer': 2380, 'kube-controller-manager': 10257, kubelet: 10250 } as const;
/** CN of the API server's client certificate toward the kubelet API (kubeadm's apiserver-kubelet-client), the only user the node agent serves. */
export const KUBELET_CLIENT_USER = 'kube-apiserver-kubelet-client';
/** The issuer every service-account token carries (what a cluster made by kubeadm uses). */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** First address of --service-cluster-ip-range: the `kubernetes` Service's ClusterIP. */
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
/** Names pods and hosts reach the API server by (kubeadm's apiserver certificate SANs, plus the node and loopback). */
export const SERVING_SANS = {
  dns: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
  ips: ['127.0.0.1', GATEWAY, KUBERNETES_SERVICE_IP],
} as const;
/** kube-controller-manager's controllers (names from cmd/kube-controller-manager/names/controller_names.go, v1.34). */
export const CONTROLLERS = [
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'endpoints-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'root-ca-certificate-publisher-controller',
  'deployment-controller',
  'replicaset-controller',
] as const;

export const ADMIN_USER = 'meshproof-admin';
export const CONTROLLER_MANAGER_USER = 'system:kube-controller-manager';

/** The files the three processes read, all under <stateDir>/kube. */
export interface KubeFiles {
  etcdDataDir: string;
  caCert: string;
  servingCert: string;
  servingKey: string;
  /** ECDSA P-256 private key (PKCS#8): kube-apiserver signs tokens with it, kcm legacy token Secrets. */
  serviceAccountKey: string;
  /** Its public key (SPKI): kube-apiserver verifies tokens with it. */
  serviceAccountPublicKey: string;
  tokenFile: string;
  controllerManagerKubeconfig: string;
  /** The API server's client certificate and key toward the kubelet API (CN KUBELET_CLIENT_USER, clientAuth). */
  kubeletClientCert: string;
  kubeletClientKey: string;
}

/**
 * Where startKubeApi leaves the kubelet API's TLS material for the node agent: its serving certificate and key (IP SAN
 * the node's InternalIP, the address the API server dials) and the cluster CA that signs both it and the API server's
 * client certificate.
 */
export function kubeletTlsFiles(stateDir: string): { ca: string; cert: string; key: string } {
  const dir = join(stateDir, 'kube');
  return { ca: join(dir, 'kube-ca.crt'), cert: join(dir, 'kubelet-serving.crt'), key: join(dir, 'kubelet-serving.key') };
}

export function etcdArgs(f: Pick<KubeFiles, 'etcdDataDir'>): string[] {
  const client = `http://127.0.0.1:${KUBE_PORTS['etcd client']}`;
  const peer = `http://127.0.0.1:${KUBE_PORTS['etcd peer']}`;
  return [
    '--name=meshproof',
    `--data-dir=${f.etcdDataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=meshproof=${peer}`,
    '--initial-cluster-state=new',
  ];
}

export function apiserverArgs(f: KubeFiles): string[] {
  return [
    '--bind-address=0.0.0.0',
    `--secure-port=${KUBE_PORTS['kube-apiserver']}`,
    // the node namespace has no default route: without it the API server finds no address to advertise
    `--advertise-address=${GATEWAY}`,
    `--etcd-servers=http://127.0.0.1:${KUBE_PORTS['etcd client']}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${f.tokenFile}`,
    `--tls-cert-file=${f.servingCert}`,
    `--tls-private-key-file=${f.servingKey}`,
    // --api-audiences stays at its default (the issuer): TokenReview checks a token against the
    // audiences the review names (pkg/registry/authentication/tokenreview/storage.go), so istiod's
    // review of an `istio-ca` token works without listing istio-ca here
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${f.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${f.serviceAccountKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // no lease reconciler writing the node's address into the `kubernetes` Endpoints (reference §2)
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    // webhooks are reached through the Service's endpoint IP: there is no cluster DNS (reference §2b)
    '--enable-aggregator-routing=true',
    // the kubelet API (logs, exec, port-forward): dialled at the Node's InternalIP (the node name resolves nowhere),
    // its serving certificate checked against the cluster CA, the API server authenticated by its client certificate
    '--kubelet-preferred-address-types=InternalIP',
    `--kubelet-certificate-authority=${f.caCert}`,
    `--kubelet-client-certificate=${f.kubeletClientCert}`,
    `--kubelet-client-key=${f.kubeletClientKey}`,
  ];
}

export function controllerManagerArgs(f: KubeFiles): string[] {
  return [
    `--kubeconfig=${f.controllerManagerKubeconfig}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    `--service-account-private-key-file=${f.serviceAccountKey}`,
    `--root-ca-file=${f.caCert}`,
    '--leader-elect=false',
    // every controller acts as kcm's own user (which is therefore in system:masters, see tokenFileCsv)
    '--use-service-account-credentials=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${KUBE_PORTS['kube-controller-manager']}`,
  ];
}

export interface StaticToken {
  token: string;
  user: string;
  uid: string;
  groups: string[];
}

/**
 * kube-apiserver --token-auth-file: CSV `token,user,uid,"group1,group2"`
 * (k8s.io/apiserver pkg/authentication/token/tokenfile/tokenfile.go; the groups column is split on ',').
 */
export function tokenFileCsv(tokens: readonly StaticToken[]): string {
  const plain = /^[A-Za-z0-9:._@-]+$/;
  return tokens
    .map((t) => {
      for (const v of [t.token, t.user, t.uid, ...t.groups]) {
        if (!plain.test(v)) throw new Error(`kube: token file value ${JSON.stringify(v)} must match ${plain}`);
      }
      return `${t.token},${t.user},${t.uid},"${t.groups.join(',')}"\n`;
    })
    .join('');
}

/** A kubeconfig with one cluster (CA inline), one token user and one context named after both. */
export function renderKubeconfig(o: { name: string; server: string; caPem: string; user: string; token: string }): string {
  for (const [k, v] of Object.entries({ name: o.name, user: o.user, token: o.token })) {
    if (!/^[A-Za-z0-9:._@-]+$/.test(v)) throw new Error(`kube: kubeconfig ${k} ${JSON.stringify(v)} has characters YAML would need quoted`);
  }
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${o.name}`,
    '  cluster:',
    `    server: ${o.server}`,
    `    certificate-authority-data: ${Buffer.from(o.caPem).toString('base64')}`,
    'users:',
    `- name: ${o.user}`,
    '  user:',
    `    token: ${o.token}`,
    'contexts:',
    `- name: ${o.name}`,
    '  context:',
    `    cluster: ${o.name}`,
    `    user: ${o.user}`,
    `current-context: ${o.name}`,
    '',
  ].join('\n');
}

/** Ports of `ss -Htln` output (Local Address:Port is the 4th column: `127.0.0.1:2379`, `*:6443`, `[::]:6443`). */
export function listeningPorts(ssOutput: string): Set<number> {
  const ports = new Set<number>();
  for (const line of ssOutput.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const m = local === undefined ? null : /:(\d+)$/.exec(local);
    if (m) ports.add(Number(m[1]));
  }
  return ports;
}

export interface KubeBins {
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
}

/** Each binary must be an executable file; else one line naming `meshproof doctor --fix`. */
export function checkBins(bins: KubeBins): void {
  const names: Record<keyof KubeBins, string> = { kubeApiserver: 'kube-apiserver', kubeControllerManager: 'kube-controller-manager', etcd: 'etcd' };
  for (const key of Object.keys(names) as (keyof KubeBins)[]) {
    const path = bins[key];
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      // missing
    }
    if (!isFile) throw new UserError(`${names[key]} not found at ${path}: run meshproof doctor --fix`);
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new UserError(`${names[key]} at ${path} is not executable: run meshproof doctor --fix`);
    }
  }
}

export interface KubeApi {
  /** https://127.0.0.1:<port>: the host side, through the relay. */
  server: string;
  /** What pods use: 10.244.0.1:6443, the node namespace's address. */
  podServer: { host: string; port: number };
  /** <stateDir>/kube/kubeconfig (0600): the admin token and the cluster CA. */
  kubeconfigPath: string;
  caPem: string;
  caPath: string;
  /** The admin's bearer token (user meshproof-admin, group system:masters). */
  token: string;
  kc: KubeConfig;
  serviceAccountIssuer: string;
  /** The node-namespace processes (for their logs, pids and RSS). */
  procs: { etcd: Proc; apiserver: Proc; controllerManager: Proc; relay: Proc };
  /** Milliseconds from startKubeApi() to: etcd serving, /readyz 200, kcm's `default` ServiceAccount. */
  timings: { etcdMs: number; apiserverMs: number; controllerManagerMs: number };
  /** Stops kcm, the API server, etcd and both relay ends; removes <stateDir>/kube (keys, tokens, etcd data). Idempotent. */
  stop(): Promise<void>;
}

export interface KubeApiOptions {
  log?: (line: string) => void;
  /** Budget of each phase: etcd serving, /readyz, kcm's first ServiceAccount (default 60 s). */
  readyTimeoutMs?: number;
}

function diedBeforeReady(proc: Proc): Error {
  return new Error(`${proc.spec.name} exited (code ${proc.exitCode}) before it was ready; log ${proc.logFile}:\n${Supervisor.tail(proc, 15)}`);
}

/** Throws when any of `procs` has exited: a process that dies while another is awaited. */
function assertAlive(procs: (Proc | undefined)[]): void {
  for (const p of procs) if (p && p.exitCode !== undefined) throw diedBeforeReady(p);
}

/** One HTTPS GET through the host relay: status and body, or the error code. */
function get(url: string, caPem: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager in `cluster`'s node namespace and the
 * host relay; resolves when /readyz answers 200 and kcm has created `default/default`'s
 * ServiceAccount (so Pods can be created). Bad input (a binary missing, a port taken) is a
 * UserError before anything starts; on any other failure everything started is stopped.
 */
export async function startKubeApi(on: Cluster, bins: KubeBins, opts: KubeApiOptions = {}): Promise<KubeApi> {
  const t0 = Date.now();
  const cluster = netnsCluster(on, 'the kube API (etcd, kube-apiserver and kube-controller-manager run in the node namespace)');
  const log = opts.log ?? (() => undefined);
  const budget = opts.readyTimeoutMs ?? 60_000;
  checkBins(bins);
  if (!cluster.bundle) throw new Error('kube: the cluster has no pod bundle yet (start it with upNetns first)');
  const ss = await runCapture(['ip', 'netns', 'exec', cluster.nodeNetns, 'ss', '-Htln']);
  if (ss.code !== 0) throw new Error(`kube: ss in ${cluster.nodeNetns} failed: ${ss.stderr.trim()}`);
  const taken = listeningPorts(ss.stdout);
  for (const [what, port] of Object.entries(KUBE_PORTS)) {
    if (taken.has(port)) {
      throw new UserError(
        `port ${port} (${what}) is already taken in the node namespace ${cluster.nodeNetns}: stop what listens there (ip netns exec ${cluster.nodeNetns} ss -tlnp 'sport = :${port}' names it); the kube API starts once per run`,
      );
    }
  }

  const dir = join(cluster.stateDir, 'kube');
  const store = new PkiStore(dir);
  const procs: Partial<KubeApi['procs']> = {};
  let hostRelay: RelayHandle | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const sup = cluster.supervisor;
      await Promise.all([procs.controllerManager, procs.apiserver, procs.relay].map((p) => (p ? sup.stop(p) : undefined)));
      if (procs.etcd) await sup.stop(procs.etcd);
      await hostRelay?.close();
      store.removeKeys();
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    // PKI: the cluster CA, the serving certificate, the service-account key, two static tokens
    const ca = await CertificateAuthority.create('kube', { cn: `meshproof kube ${cluster.short} CA` });
    const serving = await ca.issue('apiserver', { subject: { CN: 'kube-apiserver' }, dns: [...SERVING_SANS.dns], ips: [...SERVING_SANS.ips], eku: ['serverAuth'] });
    const caPath = store.writeCa(ca);
    const servingPaths = store.writeIdentity(serving);
    // the kubelet API's pair: what kubeadm issues as apiserver-kubelet-client, and a kubelet serving certificate
    const kubeletClient = await ca.issue('apiserver-kubelet-client', { subject: { CN: KUBELET_CLIENT_USER, O: ['system:masters'] }, eku: ['clientAuth'] });
    const kubeletServing = await ca.issue('kubelet-serving', { subject: { CN: `system:node:${nodeName(cluster)}`, O: ['system:nodes'] }, ips: [GATEWAY], eku: ['serverAuth'] });
    const kubeletClientPaths = store.writeIdentity(kubeletClient);
    const kubeletServingPaths = store.writeIdentity(kubeletServing);
    const expectTls = kubeletTlsFiles(cluster.stateDir);
    if (kubeletServingPaths.cert !== expectTls.cert || kubeletServingPaths.key !== expectTls.key || caPath !== expectTls.ca) {
      throw new Error(`kube: the kubelet API's files are not where kubeletTlsFiles says (${kubeletServingPaths.cert})`);
    }
    const adminToken = randomBytes(32).toString('hex');
    const kcmToken = randomBytes(32).toString('hex');
    const saKeys = await newSigningKeyPair();
    const files: KubeFiles = {
      etcdDataDir: join(dir, 'etcd'),
      caCert: caPath,
      servingCert: servingPaths.cert,
      servingKey: servingPaths.key,
      serviceAccountKey: store.writeSecret('sa.key', saKeys.keyPem),
      serviceAccountPublicKey: store.writePublicKey('sa.pub', saKeys.publicKeyPem),
      tokenFile: store.writeSecret(
        'tokens.csv',
        tokenFileCsv([
          { token: adminToken, user: ADMIN_USER, uid: ADMIN_USER, groups: ['system:masters'] },
          // with --use-service-account-credentials=false every controller acts as this user, and the
          // bootstrap ClusterRole system:kube-controller-manager only covers kcm's own needs
          { token: kcmToken, user: CONTROLLER_MANAGER_USER, uid: CONTROLLER_MANAGER_USER, groups: ['system:masters'] },
        ]),
      ),
      controllerManagerKubeconfig: store.writeSecret(
        'controller-manager.kubeconfig',
        renderKubeconfig({ name: 'meshproof', server: `https://127.0.0.1:${KUBE_PORTS['kube-apiserver']}`, caPem: ca.certPem, user: CONTROLLER_MANAGER_USER, token: kcmToken }),
      ),
      kubeletClientCert: kubeletClientPaths.cert,
      kubeletClientKey: kubeletClientPaths.key,
    };
    mkdirSync(files.etcdDataDir, { mode: 0o700 });

    // the host end: 127.0.0.1:<ephemeral> → the Unix socket the node end listens on
    const socket = join(dir, 'apiserver.sock');
    hostRelay = await startRelay({ listen: { host: '127.0.0.1', port: 0 }, connect: { path: socket }, log: () => undefined });
    const server = `https://127.0.0.1:${hostRelay.port}`;
    const kubeconfigPath = store.writeSecret('kubeconfig', renderKubeconfig({ name: `meshproof-${cluster.short}`, server, caPem: ca.certPem, user: ADMIN_USER, token: adminToken }));

    const start = (name: string, argv: string[]): Proc => cluster.supervisor.start({ pod: 'node', name, netns: cluster.nodeNetns, argv });
    procs.etcd = start('etcd', [bins.etcd, ...etcdArgs(files)]);
    procs.relay = start('kube-relay', [process.execPath, cluster.bundle, 'relay', '--listen', socket, '--connect', `127.0.0.1:${KUBE_PORTS['kube-apiserver']}`]);
    const relay = hostRelay;
    void procs.relay.exited.then(() => relay.close()); // cluster.down() stops the node end: the host end goes with it

    // etcd logs this once its server serves, after ReadyNotify (leader elected, member published): etcd server/embed/serve.go
    await pollUntil(
      () => {
        assertAlive([procs.etcd, procs.relay]);
        return readFileSync(procs.etcd!.logFile, 'utf8').includes('serving client traffic insecurely') ? true : undefined;
      },
      { timeoutMs: budget, intervalMs: 20, what: 'etcd', detail: () => Supervisor.tail(procs.etcd!, 3) },
    );
    const etcdMs = Date.now() - t0;
    log(`kube: etcd serving in ${etcdMs} ms`);

    procs.apiserver = start('kube-apiserver', [bins.kubeApiserver, ...apiserverArgs(files)]);
    let last = '';
    await pollUntil(
      async () => {
        assertAlive([procs.etcd, procs.relay, procs.apiserver]);
        try {
          const r = await get(`${server}/readyz?verbose`, ca.certPem, adminToken);
          last = `HTTP ${r.status} ${r.body.split('\n').filter((l) => l.startsWith('[-]')).join(' ')}`;
          return r.status === 200 ? true : undefined;
        } catch (e) {
          last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          return undefined;
        }
      },
      { timeoutMs: budget, intervalMs: 100, what: 'kube-apiserver /readyz', detail: () => `${last}; log ${procs.apiserver!.logFile}:\n${Supervisor.tail(procs.apiserver!)}` },
    );
    const apiserverMs = Date.now() - t0;
    log(`kube: kube-apiserver ready in ${apiserverMs} ms at ${server}`);

    // kcm waits at most 10 s for a healthy API server (controllermanager.go WaitForAPIServer): start it now
    procs.controllerManager = start('kube-controller-manager', [bins.kubeControllerManager, ...controllerManagerArgs(files)]);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await pollUntil(
      async () => {
        assertAlive([procs.etcd, procs.relay, procs.apiserver, procs.controllerManager]);
        try {
          return await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        } catch (e) {
          last = (e as Error).message.split('\n')[0]!;
          return undefined;
        }
      },
      { timeoutMs: budget, intervalMs: 100, what: 'kube-controller-manager (ServiceAccount default/default)', detail: () => `${last}; log ${procs.controllerManager!.logFile}:\n${Supervisor.tail(procs.controllerManager!)}` },
    );
    const controllerManagerMs = Date.now() - t0;
    log(`kube: kube-controller-manager up in ${controllerManagerMs} ms`);

    return {
      server,
      podServer: { host: GATEWAY, port: KUBE_PORTS['kube-apiserver'] },
      kubeconfigPath,
      caPem: ca.certPem,
      caPath,
      token: adminToken,
      kc,
      serviceAccountIssuer: SERVICE_ACCOUNT_ISSUER,
      procs: procs as KubeApi['procs'],
      timings: { etcdMs, apiserverMs, controllerManagerMs },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
