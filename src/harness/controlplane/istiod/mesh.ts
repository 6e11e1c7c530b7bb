// A mesh programmed by Istio's own istiod: a netns run whose node namespace holds etcd, a real
// kube-apiserver and kube-controller-manager; meshproof's node agent runs every Pod the API
// schedules; Istio is installed from `istioctl manifest generate`; the user's YAML is applied as
// `kubectl apply` would; sidecars are injected by istiod's webhook and get their certificates from
// istiod's CA over SDS. After any apply it waits until every sidecar has ACKed istiod's config.
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type { Cluster } from '../../substrate/types.ts';
import { substrateOfRun, upCluster, type UpOptions } from '../../substrate/index.ts';
import { UserError } from '../../model/errors.ts';
import { pollUntil } from '../../substrate/poll.ts';
import { onTeardown } from '../../substrate/lifecycle.ts';
import { keepUntilRunEnd } from '../shared.ts';
import { RESULTS_DIR_ENV } from '../../report/results.ts';
import { PkiStore } from '../../pki/index.ts';
import { GatewayCredentials } from './credentials.ts';
import { startKubeApi, type KubeApi } from '../../kube/apiserver.ts';
import { NodeAgent } from '../../kube/node-agent.ts';
import { kubeNode } from '../../kube/node-netns.ts';
import { applyObjects, deleteObjects, inNamespace } from '../../kube/apply.ts';
import { envoyBinary, envoyStat } from '../../profiles/envoy.ts';
import { deployments, isInjected, services, type IstioModel, type Resource } from '../../profiles/istio/resources.ts';
import { portProtocol } from '../../profiles/istio/policy.ts';
import type { GatewayCredential, Mesh } from '../../profiles/istio/mesh.ts';
import { resolveIstio, resolveKube } from '../provision.ts';
import { assertIstioVersion, DEFAULT_ISTIO_VERSION } from '../versions.ts';
import { generateIstioManifest, installIstio, type IstioInstall } from './install.ts';
import { INJECT_LABEL } from '../../profiles/istio/resources.ts';

const SIDECAR = 'istio-proxy';
/** pilot-agent's Envoy admin port inside the pod (Istio's ports.md). */
const ENVOY_ADMIN = 15000;

export interface IstiodMeshOptions extends UpOptions {
  istioVersion?: string;
  envoyVersion?: string;
  /**
   * Share the control plane with the run's next suites: down() keeps it instead of stopping it, the next start() of
   * the same version and Envoy reuses it (resetting what this suite applied), and it stops when the run ends (shared.ts).
   */
  share?: boolean;
}

/** One proxy's xDS state as istiod reports it (/debug/syncz). */
export interface SyncStatus {
  proxy: string;
  cluster_sent?: string;
  cluster_acked?: string;
  listener_sent?: string;
  listener_acked?: string;
  route_sent?: string;
  route_acked?: string;
  endpoint_sent?: string;
  endpoint_acked?: string;
}

export class IstiodMesh implements Mesh {
  readonly controlPlane = 'istiod' as const;
  readonly pkiStore: PkiStore;
  private applied = new Map<string, KubernetesObject>();
  /** What applyExtra applied and deleteExtra did not delete: a reset deletes it too. */
  private readonly extras = new Map<string, KubernetesObject>();
  private readonly credentials: GatewayCredentials;
  /**
   * From start(): the API server (etcd, kube-apiserver, kcm) ready; istiod ready with its injector armed; every pod
   * Ready and every sidecar ACKed. A reused control plane has 0 for the first two and `reused` set.
   */
  timings = { kubeApiMs: 0, controlPlaneMs: 0, meshReadyMs: 0, reused: false };
  /** Set when shared: the pool key down() returns it under. */
  private shareKey: string | undefined;
  private static readonly idle = new Map<string, IstiodMesh>();
  private constructor(
    readonly cluster: Cluster,
    readonly api: KubeApi,
    readonly agent: NodeAgent,
    readonly istioVersion: string,
    readonly install: IstioInstall,
    private model: IstioModel,
    private log: (l: string) => void,
  ) {
    this.pkiStore = new PkiStore(join(cluster.stateDir, 'pki'));
    this.credentials = new GatewayCredentials(this.pkiStore);
  }

  static async start(model: IstioModel, opts: IstiodMeshOptions = {}): Promise<IstiodMesh> {
    const version = opts.istioVersion ?? process.env.MESHPROOF_ISTIO_VERSION ?? DEFAULT_ISTIO_VERSION;
    const release = assertIstioVersion(version);
    // the kube layer's node-level half (the API server's processes, the kubelet API's relay) lives in the netns node
    // namespace (kube/apiserver.ts, kube/node-netns.ts): another substrate is refused before anything starts
    const substrate = substrateOfRun();
    if (substrate !== 'netns') throw new UserError(`the istiod control plane runs its kube layer on the netns substrate only (the API server and the kubelet API live in its node namespace); this run is on ${substrate}: use --substrate netns, or --control-plane emulated`);
    // everything this needs is resolved before anything is created: a missing build is one line naming the fix
    const istio = resolveIstio(version);
    const kube = resolveKube();
    const envoy = envoyBinary(opts.envoyVersion ?? process.env.MESHPROOF_ENVOY_VERSION ?? release.envoyVersion);
    const log = opts.log ?? (() => undefined);
    const shareKey = `${version}|${envoy}|${opts.wire ?? true}`;
    const idle = opts.share ? IstiodMesh.idle.get(shareKey) : undefined;
    if (idle) {
      IstiodMesh.idle.delete(shareKey);
      return idle.reuse(model, log);
    }
    // a kept control plane no suite will reuse (another version, or a suite that runs its own) would only compete for the cores
    for (const m of [...IstiodMesh.idle.values()]) await m.stop();
    const t0 = Date.now();
    // a shared control plane's logs and capture belong to no one suite: `meshproof run` keeps them in <out>/control-plane
    const runOut = process.env[RESULTS_DIR_ENV];
    const reportsDir = opts.share && runOut && !opts.reportsDir ? join(runOut, 'control-plane') : opts.reportsDir;
    const cluster = await upCluster({ name: `istiod-${version}`, pods: [] }, { ...opts, ...(reportsDir ? { reportsDir } : {}), dynamic: true });
    let api: KubeApi | undefined;
    let agent: NodeAgent | undefined;
    // istioctl needs no API server: its manifest is generated while etcd, kube-apiserver and kcm start
    const manifest = generateIstioManifest(istio.istioctl, version, join(cluster.stateDir, 'istio'));
    manifest.catch(() => undefined); // awaited below; a failure before that point must not be an unhandled rejection
    try {
      api = await startKubeApi(cluster, { kubeApiserver: kube.kubeApiserver, kubeControllerManager: kube.kubeControllerManager, etcd: kube.etcd }, { log });
      const kubeApiMs = Date.now() - t0;
      agent = new NodeAgent(cluster, api.kc, { node: kubeNode(cluster), bins: { pilotAgent: istio.pilotAgent, pilotDiscovery: istio.pilotDiscovery, envoy, bootstrapTemplate: istio.bootstrapTemplate }, apiServer: api.podServer, log });
      await agent.start();
      const install = await installIstio(api.kc, version, await manifest, log);
      const controlPlaneMs = Date.now() - t0;
      const mesh = new IstiodMesh(cluster, api, agent, version, install, model, log);
      await mesh.converge(model);
      mesh.timings = { kubeApiMs, controlPlaneMs, meshReadyMs: Date.now() - t0, reused: false };
      // Ctrl-C or SIGTERM: the node agent and the API server's relay stop too (the cluster registers its own teardown)
      mesh.unregister = onTeardown(() => mesh.stop());
      if (opts.share) {
        mesh.shareKey = shareKey;
        mesh.unkeep = keepUntilRunEnd(() => mesh.stop());
      }
      log(`istiod ${version}: mesh ready in ${Date.now() - t0} ms (export KUBECONFIG=${api.kubeconfigPath})`);
      return mesh;
    } catch (e) {
      // istioctl, if still running, is done before the run's state directory goes
      await manifest.catch(() => undefined);
      await agent?.stop();
      await api?.stop();
      await cluster.down();
      throw e;
    }
  }

  /**
   * The run's control plane for the next suite: the previous suite's objects it does not declare deleted, its own
   * applied, rolled out and ACKed as a fresh start's would be. A failure stops the control plane (the next suite starts a new one).
   */
  private async reuse(model: IstioModel, log: (l: string) => void): Promise<IstiodMesh> {
    const t0 = Date.now();
    this.log = log;
    try {
      this.model = model;
      await this.converge(model);
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.timings = { kubeApiMs: 0, controlPlaneMs: 0, meshReadyMs: Date.now() - t0, reused: true };
    log(`istiod ${this.istioVersion}: the run's control plane reused; mesh ready in ${Date.now() - t0} ms (export KUBECONFIG=${this.api.kubeconfigPath})`);
    return this;
  }

  get current(): IstioModel {
    return this.model;
  }

  async update(model: IstioModel): Promise<void> {
    this.model = model;
    await this.converge(model);
  }

  /**
   * `kubectl apply` of objects outside the model — what the emulation cannot read (AuthorizationPolicy, Sidecar,
   * NetworkPolicy, ...) is simply given to the API server and istiod, which decide — then the same waits as update().
   * A refused object fails with the API server's or istiod's own message.
   */
  async applyExtra(objs: KubernetesObject[], source = 'extra objects'): Promise<void> {
    const before = await this.syncz().catch(() => [] as SyncStatus[]);
    for (const o of objs) this.extras.set(objKey(inDefault(o)), inDefault(o));
    await applyObjects(this.api.kc, objs, { namespace: 'default', source });
    await this.settleAfter(objs, before, phases());
  }

  /** Deletes objects applied with applyExtra (absent ones are fine), then the same waits. */
  async deleteExtra(objs: KubernetesObject[]): Promise<void> {
    const before = await this.syncz().catch(() => [] as SyncStatus[]);
    await deleteObjects(this.api.kc, objs.map(inDefault));
    for (const o of objs) this.extras.delete(objKey(inDefault(o)));
    await this.settleAfter(objs, before, phases());
  }

  /** Rollouts done, then istiod's push ACKed and settled; after Istio config (anything but the workloads), old connections retired. */
  private async settleAfter(objs: KubernetesObject[], before: SyncStatus[], phase: Phases): Promise<void> {
    await this.waitRollouts(this.model);
    phase.mark('rollouts');
    const configChanged = objs.some((o) => !WORKLOAD_KINDS.has(o.kind ?? ''));
    await this.waitSynced(before, configChanged, phase);
    if (configChanged) await this.retireOldConnections(this.model);
    phase.mark('retire');
    this.log(`istiod: ${objs.length} objects changed; settled in ${phase.total()} ms (${phase.text()})`);
  }

  /** Applies the model's objects, deletes the ones it no longer has, then waits for rollouts and xDS ACKs. */
  private async converge(model: IstioModel): Promise<void> {
    const before = await this.syncz().catch(() => [] as SyncStatus[]);
    const want = new Map(objectsOf(model).map((o) => [objKey(o), o]));
    const gone = [...this.applied.entries()].filter(([k]) => !want.has(k)).map(([, o]) => o);
    const changed = [...want.entries()].filter(([k, o]) => JSON.stringify(this.applied.get(k)) !== JSON.stringify(o)).map(([, o]) => o);
    if (changed.length === 0 && gone.length === 0) return;
    const phase = phases();
    await this.credentials.ensure(this.api.kc, model);
    phase.mark('credentials');
    // what goes and what comes have different names (objKey): the deleted pods stop while the new ones start
    await Promise.all([
      applyObjects(this.api.kc, changed, { namespace: 'default', source: 'istio model' }).then(() => phase.mark('apply')),
      deleteObjects(this.api.kc, gone.map(inDefault), { wait: true }).then(() => phase.mark('delete')),
    ]);
    this.applied = want;
    this.log(`istiod: applied ${changed.length} (${changed.map((o) => o.kind).join(' ')}), deleted ${gone.length} (${gone.map((o) => o.kind).join(' ')})`);
    await this.settleAfter([...changed, ...gone], before, phase);
  }

  /** Every Deployment of the model rolled out (waitRolledOut), then the node agent's pods settled. */
  private async waitRollouts(model: IstioModel): Promise<void> {
    await waitRolledOut(this.api.kc, model);
    await this.agent.settle();
  }

  /**
   * istiod's own view of every proxy's xDS state: /debug/syncz on its debug port, asked from inside its pod
   * (istiod answers debug requests from localhost without a token: pilot/pkg/xds/debug.go allowAuthenticatedOrLocalhost).
   */
  private async syncz(): Promise<SyncStatus[]> {
    const pod = [...this.cluster.pods.values()].find((p) => p.spec.namespace === 'istio-system' && p.spec.labels?.app === 'istiod');
    if (!pod) return [];
    const r = await this.cluster.probe(pod.key, { protocol: 'http', host: '127.0.0.1', port: 8080, path: '/debug/syncz', bodyLimit: 1 << 22, timeoutMs: 3000 }, { wire: false });
    if (r.evidence.status !== 200) throw new Error(`istiod /debug/syncz answered ${r.verdict}: ${r.evidence.body ?? ''}`);
    return JSON.parse(r.evidence.body ?? '[]') as SyncStatus[];
  }

  /**
   * Waits until every injected pod's proxy is connected and has ACKed what istiod last sent it, istiod has pushed
   * something made after the change, and nothing more is being sent. istiod's nonces are `<push version><uuid>`, the
   * version `<RFC 3339 time>/<counter>` with the counter growing with every push context (pilot/pkg/xds); a change
   * is pushed only to the proxies and types it affects (a Gateway change reaches the gateway's listeners alone), so
   * "pushed" is some proxy ACKing a newer version (a config change) or new endpoints (a rollout), and "settled" is the
   * same nonces in two polls a debounce apart.
   */
  private async waitSynced(before: SyncStatus[], configChanged: boolean, phase: Phases): Promise<void> {
    const expected = [...this.cluster.pods.values()].filter((p) => this.cluster.containerStatus(p.key, SIDECAR) !== undefined).map((p) => `${p.spec.name}.${p.spec.namespace}`);
    await waitAcked(() => this.syncz(), expected, before, configChanged);
    phase.mark('ACKs');
    await waitNoListenerWarming([...this.cluster.pods.values()].filter((p) => this.cluster.containerStatus(p.key, SIDECAR) !== undefined).map((p) => p.key), (k, f) => this.adminStats(k, f));
    phase.mark('warming');
  }

  /**
   * A client sidecar keeps its pooled upstream HTTP connections across a config change, and the server sidecar
   * drains a connection accepted under its old filter chains only after that connection's next response
   * (`--drain-strategy immediate`; drain time 45 s). So the first call after a change may still travel under the old
   * policy. Unrecorded calls per (sidecar, HTTP Service port) retire those connections, as Istio's own echo
   * framework retries each call until it converges (pkg/test/framework/components/echo: callConverge). Which pairs
   * hold connections, and when they are gone, the client's Envoy says: its clusters `outbound|<port>|<subset>|<host>`
   * count the connections open (upstream_cx_active) and closed (upstream_cx_destroy). A pair is done once as many
   * have closed as were open when the change was ACKed (a connection opened since was accepted under the new
   * policy), or after RETIRE_CALLS calls (a server without a sidecar never drains its connections).
   */
  private async retireOldConnections(model: IstioModel): Promise<void> {
    const clients = [...this.cluster.pods.values()].filter((p) => this.cluster.containerStatus(p.key, SIDECAR) !== undefined).map((p) => p.key);
    await retireOldConnections(this.cluster, clients, model);
  }

  private adminStats(pod: string, filter: string): Promise<{ name?: string; value?: number }[]> {
    return adminStats(this.cluster, pod, filter);
  }

  stat(podRef: string, name: RegExp): Promise<number> {
    return envoyStat(this.cluster, this.cluster.pod(podRef).key, ENVOY_ADMIN, name);
  }

  hasSidecar(podRef: string): boolean {
    return this.cluster.containerStatus(this.cluster.pod(podRef).key, SIDECAR) !== undefined;
  }

  gatewayCredential(namespace: string, name: string): GatewayCredential {
    return this.credentials.get(namespace, name);
  }

  get kubeconfig(): string {
    return this.api.kubeconfigPath;
  }

  private unregister: () => void = () => undefined;
  private unkeep: () => void = () => undefined;

  /**
   * A shared control plane is kept for the run's next suite, which resets it: its converge() deletes every object this
   * suite applied (policy, workloads and what applyExtra added) that the next model lacks and applies what differs,
   * then waits as after any change — one apply and one wait instead of a reset and a start. Otherwise: stopped.
   */
  async down(): Promise<void> {
    if (this.shareKey && !IstiodMesh.idle.has(this.shareKey)) {
      for (const [k, o] of this.extras) this.applied.set(k, o);
      this.extras.clear();
      IstiodMesh.idle.set(this.shareKey, this);
      return;
    }
    await this.stop();
  }

  /** Stops the control plane: the node agent, the API server and the run's namespaces. */
  async stop(): Promise<void> {
    this.unregister();
    this.unkeep();
    if (this.shareKey && IstiodMesh.idle.get(this.shareKey) === this) IstiodMesh.idle.delete(this.shareKey);
    this.shareKey = undefined;
    this.pkiStore.removeKeys();
    await this.agent.stop();
    await this.api.stop();
    await this.cluster.down();
  }
}

/** Every Deployment of the model rolled out: its new pods Ready, its old ones gone (any API server: the kube layer's, kind's). */
export async function waitRolledOut(kc: KubeConfig, model: IstioModel): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  let last = '';
  await pollUntil(
    async () => {
      const pending: string[] = [];
      // one listing each: the API server is on the same two cores as the pods it is starting
      const [deps, podList] = await Promise.all([apps.listDeploymentForAllNamespaces({}), core.listPodForAllNamespaces({})]);
      for (const d of deployments(model)) {
        const dep = deps.items.find((x) => x.metadata?.namespace === d.namespace && x.metadata?.name === d.name);
        if (!dep) {
          pending.push(`${d.namespace}/${d.name} (no Deployment)`);
          continue;
        }
        const s = dep.status ?? {};
        const want = dep.spec?.replicas ?? 1;
        const done = (s.observedGeneration ?? 0) >= (dep.metadata?.generation ?? 1) && s.updatedReplicas === want && s.readyReplicas === want && (s.replicas ?? 0) === want;
        if (!done) pending.push(`${d.namespace}/${d.name} (${s.readyReplicas ?? 0}/${want} ready, ${s.replicas ?? 0} pods)`);
      }
      const pods = podList.items;
      const failed = pods.find((p) => p.status?.phase === 'Failed' && !p.metadata?.deletionTimestamp);
      if (failed) throw new Error(`pod ${failed.metadata?.namespace}/${failed.metadata?.name}: ${failed.status?.reason}: ${failed.status?.message}`);
      // a Deployment's status stops counting a replaced pod once it is terminating, but its sidecar runs until the
      // node agent confirms the deletion: probing through it then would hit a pod being torn down
      for (const p of pods) if (p.metadata?.deletionTimestamp) pending.push(`${p.metadata.namespace}/${p.metadata.name} terminating`);
      last = pending.join(', ');
      return pending.length === 0 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200, what: 'Deployments rolled out', detail: () => last },
  );
}

/**
 * Until every proxy in `expected` (`<pod>.<namespace>`, as istiod names them) is connected and has ACKed what istiod
 * last sent it, istiod has pushed something made after the change, and nothing more is being sent (the doc of
 * IstiodMesh.waitSynced). `syncz` reads istiod's /debug/syncz however the substrate reaches istiod's pod.
 */
export async function waitAcked(syncz: () => Promise<SyncStatus[]>, expected: string[], before: SyncStatus[], configChanged: boolean, timeoutMs = 30_000): Promise<void> {
  const prior = new Map(before.map((s) => [s.proxy, s]));
  const v0 = Math.max(0, ...before.flatMap((s) => TYPES.map((t) => pushCounter(s[`${t}_sent`]))));
  const newProxies = expected.some((id) => !prior.has(id));
  let last = '';
  let seen = '';
  await pollUntil(
    async () => {
      const now = await syncz();
      const byProxy = new Map(now.map((s) => [s.proxy, s]));
      const waiting: string[] = [];
      for (const id of expected) {
        const s = byProxy.get(id);
        if (!s) waiting.push(`${id} (not connected)`);
        // every type sent is ACKed (a gateway without a Gateway may never be sent routes), clusters and listeners at least
        else if (!TYPES.every((t) => (s[`${t}_sent`] ?? '') === (s[`${t}_acked`] ?? '')) || !s.cluster_acked || !s.listener_acked) waiting.push(`${id} (not ACKed)`);
      }
      // no sidecar at all: nothing to wait for
      const pushed = expected.length === 0 || newProxies || now.some((s) => {
        const p = prior.get(s.proxy);
        return configChanged ? TYPES.some((t) => pushCounter(s[`${t}_acked`]) > v0) : !p || TYPES.some((t) => s[`${t}_acked`] !== p[`${t}_acked`]);
      });
      if (!pushed) waiting.push('istiod has pushed nothing since the change');
      last = waiting.join(', ');
      const nonces = JSON.stringify(now.map((s) => TYPES.map((t) => s[`${t}_sent`])));
      const settled = waiting.length === 0 && nonces === seen;
      seen = waiting.length === 0 ? nonces : '';
      return settled ? true : undefined;
    },
    // 300 ms between polls: longer than istiod's push debounce (PILOT_DEBOUNCE_AFTER, 100 ms). Measured: polling every
    // 100 ms for a 300 ms unchanged window made this wait longer on a loaded machine (istiod answers each poll)
    { timeoutMs, intervalMs: 300, what: "every sidecar ACKing istiod's config", detail: () => last },
  );
}

/** Where a change's wait goes: each mark() names the time since the previous one (the istiod log's phase figures). */
interface Phases {
  mark(name: string): void;
  total(): number;
  text(): string;
}

function phases(): Phases {
  const t0 = Date.now();
  let at = t0;
  const parts: string[] = [];
  return {
    mark(name) {
      const now = Date.now();
      parts.push(`${name} ${now - at}`);
      at = now;
    },
    total: () => Date.now() - t0,
    text: () => parts.join(', '),
  };
}

/** An object as `kubectl apply -n default` names it (what applyExtra applies). */
const inDefault = (o: KubernetesObject): KubernetesObject => inNamespace(o, 'default');

const TYPES = ['cluster', 'listener', 'route', 'endpoint'] as const;
/** Calls at most per (sidecar, HTTP port) after a config change: more than any runner makes at once to one service. */
const RETIRE_CALLS = 20;
const WORKLOAD_KINDS = new Set(['Deployment', 'Service', 'ServiceAccount', 'Namespace']);

/** The push counter of an istiod nonce `<time>/<counter><uuid>` (a uuid is 36 characters); 0 for none. */
export function pushCounter(nonce: string | undefined): number {
  if (!nonce || nonce.length <= 36) return 0;
  const m = /\/(\d+)$/.exec(nonce.slice(0, -36));
  return m ? Number(m[1]) : 0;
}

/**
 * One API object's identity: its group (not its version: security.istio.io/v1beta1 and /v1 PeerAuthentication
 * `default` are one object), kind, namespace (`default` when the YAML names none, as applied) and name.
 */
export function objKey(o: KubernetesObject): string {
  const group = o.apiVersion?.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${group}/${o.kind}/${inDefault(o).metadata?.namespace ?? ''}/${o.metadata?.name}`;
}

/**
 * The model's objects as the user's YAML wrote them. The workshop injects with `grep -v inject`: a Deployment
 * the model injects has its lines naming `inject` removed, literally; one it does not inject but whose manifest
 * alone would be (InjectOverride 'none') gets the pod label `sidecar.istio.io/inject: "false"`.
 */
export function objectsOf(model: IstioModel): KubernetesObject[] {
  return model.resources.map((r) => {
    const raw = (r as Resource & { raw?: KubernetesObject }).raw;
    if (!raw) throw new Error(`${r.source}: ${r.kind} ${r.name} carries no document to apply`);
    if (r.kind !== 'Deployment') return raw;
    const injected = isInjected(model, r);
    const manifestAlone = isInjected({ resources: model.resources }, r);
    if (injected && !manifestAlone) return parse(stringify(raw).split('\n').filter((l) => !l.includes('inject')).join('\n')) as KubernetesObject;
    if (!injected && manifestAlone) {
      const d = structuredClone(raw) as KubernetesObject & { spec: { template: { metadata: { labels?: Record<string, string> } } } };
      d.spec.template.metadata.labels = { ...d.spec.template.metadata.labels, [INJECT_LABEL]: 'false' };
      return d;
    }
    return raw;
  });
}

/** IstiodMesh.retireOldConnections on any Cluster (the kind substrate's Mesh too): `clients` are the sidecar pods' keys. */
export async function retireOldConnections(cluster: Cluster, clients: string[], model: IstioModel): Promise<void> {
  const targets = services(model).flatMap((svc) => svc.ports.filter((port) => portProtocol(port) === 'http').map((port) => ({ host: `${svc.name}.${svc.namespace}`, port: port.port, cluster: `${port.port}|${svc.name}.${svc.namespace}.svc.cluster.local` })));
  await Promise.all(
    clients.map(async (from) => {
      const at0 = await upstreamConnections(cluster, from);
      const old = (t: (typeof targets)[number]): number => at0.get(t.cluster)?.active ?? 0;
      let pending = targets.filter((t) => old(t) > 0);
      // the calls of one pair go one after another (each retires one connection), the pairs side by side
      for (let i = 0; i < RETIRE_CALLS && pending.length > 0; i++) {
        const timedOut = await Promise.all(
          pending.map(async (t) => {
            const [r] = await cluster.probeMany([{ from, req: { protocol: 'http' as const, host: t.host, port: t.port, path: '/', timeoutMs: 1000 } }], { wire: false });
            // a call that times out made no connection: the pool's connections lead nowhere, nothing to retire
            return r?.verdict === 'denied:timeout';
          }),
        );
        const now = await upstreamConnections(cluster, from);
        pending = pending.filter((t, j) => !timedOut[j] && (now.get(t.cluster)?.destroyed ?? 0) - (at0.get(t.cluster)?.destroyed ?? 0) < old(t));
      }
    }),
  );
}

/** A sidecar's upstream connections per `<port>|<host>` (its subsets' clusters summed): open now, and closed so far. */
export async function upstreamConnections(cluster: Cluster, pod: string): Promise<Map<string, { active: number; destroyed: number }>> {
  const out = new Map<string, { active: number; destroyed: number }>();
  for (const st of await adminStats(cluster, pod, '^cluster\\.outbound.*\\.upstream_cx_(active|destroy)$')) {
    // cluster.outbound|5000|v1|name.default.svc.cluster.local;.upstream_cx_active (istiod's stats tag delimiter `;`)
    const m = /^cluster\.outbound\|(\d+)\|[^|]*\|(.+?);?\.upstream_cx_(active|destroy)$/.exec(st.name ?? '');
    if (!m) continue;
    const key = `${m[1]}|${m[2]}`;
    const c = out.get(key) ?? { active: 0, destroyed: 0 };
    if (m[3] === 'active') c.active += st.value ?? 0;
    else c.destroyed += st.value ?? 0;
    out.set(key, c);
  }
  return out;
}

/** A sidecar's Envoy stats whose name matches `filter`, however the substrate reaches its admin port. */
export type StatsOf = (pod: string, filter: string) => Promise<{ name?: string; value?: number }[]>;

/**
 * Waits until no listener of the `proxies` (sidecar pods' keys) is warming: an ACKed listener can still wait for its
 * SDS secrets (a gateway's credentialName), and until then it refuses connections.
 */
export async function waitNoListenerWarming(proxies: string[], statsOf: StatsOf): Promise<void> {
  let last = '';
  await pollUntil(
    async () => {
      const warming = await Promise.all(
        proxies.map(async (k) => {
          const st = await statsOf(k, '^listener_manager\\.total_listeners_warming$');
          // a gauge Envoy does not show says nothing: that proxy is not known to be done
          return st.length === 1 ? (st[0]!.value ?? 0) : Infinity;
        }),
      );
      last = proxies.filter((_, i) => warming[i]! > 0).join(', ');
      return warming.every((n) => n === 0) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'no sidecar listener warming', detail: () => last },
  );
}

/** The stats whose name matches `filter` (a regular expression: Envoy's admin /stats?filter=) of a sidecar's Envoy. */
export async function adminStats(cluster: Cluster, pod: string, filter: string): Promise<{ name?: string; value?: number }[]> {
  const r = await cluster.probe(pod, { protocol: 'http', host: '127.0.0.1', port: ENVOY_ADMIN, path: `/stats?format=json&filter=${encodeURIComponent(filter)}`, bodyLimit: 1 << 22, timeoutMs: 3000 }, { wire: false });
  if (r.evidence.status !== 200) throw new Error(`${pod}: Envoy admin /stats answered ${r.verdict}: ${r.evidence.body ?? ''}`);
  return (JSON.parse(r.evidence.body ?? '{"stats":[]}') as { stats: { name?: string; value?: number }[] }).stats;
}
