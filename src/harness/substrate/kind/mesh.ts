// The Istio suites' Mesh (profiles/istio/mesh.ts) on a real kind cluster: Istio's own istiod and sidecars as pods on
// real kubelets (startKindIstio), the pods seen through the Cluster port (KindPodsCluster), the model applied as
// `kubectl apply` would with only its images rewritten to the offline builds (forKubelet) and the clients placed on the
// control-plane node, the servers on the worker (placeOn), so their calls cross nodes as in a cluster (the wire canary
// captures every node's pod links). After any change the kube layer's waits: rollouts done (waitRolledOut), every
// sidecar ACKed in istiod's /debug/syncz (waitAcked), no listener warming; then old pooled connections retired.
// Started by controlplane/index.ts through substrate/index.ts when MESHPROOF_SUBSTRATE=kind (issue 14).
import { join, resolve } from 'node:path';
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { envoyStat } from '../../profiles/envoy.ts';
import { deployments, services, type IstioModel } from '../../profiles/istio/resources.ts';
import { matches } from '../pods.ts';
import type { GatewayCredential, Mesh } from '../../profiles/istio/mesh.ts';
import { adminStats, objectsOf, objKey, retireOldConnections, waitAcked, waitNoListenerWarming, waitRolledOut } from '../../controlplane/istiod/mesh.ts';
import { GatewayCredentials } from '../../controlplane/istiod/credentials.ts';
import { keepUntilRunEnd } from '../../controlplane/shared.ts';
import { applyObjects, deleteObjects, inNamespace } from '../../kube/apply.ts';
import { PkiStore } from '../../pki/index.ts';
import { readRecords, REPORTS_DIR_ENV, writeRecord } from '../state.ts';
import { appendImageRewrites } from '../../report/results.ts';
import { onTeardown } from '../lifecycle.ts';
import { forKubelet, placeOn, sidecarProxies, SIDECAR, startKindIstio, type KindIstio } from './istio.ts';
import { KindPodsCluster } from './pods-cluster.ts';
import { externalFromEnv } from './external.ts';

/** pilot-agent's Envoy admin port inside the pod (Istio's ports.md). */
const ENVOY_ADMIN = 15000;
const WORKLOAD_KINDS = new Set(['Deployment', 'Service', 'ServiceAccount', 'Namespace']);

export interface KindMeshOptions {
  istioVersion?: string;
  log?: (l: string) => void;
  reportsDir?: string;
  wire?: boolean;
  /** Kept for the run's next suite (as IstiodMesh's `share`): down() keeps the cluster, the next start() updates it. */
  share?: boolean;
  /** 'up': kept running for exploration (`meshproof up --substrate kind`): the run's record says so, for ls, exec and down. */
  origin?: 'up' | 'run';
  /** The topology the record names (`meshproof ls`). */
  topology?: string;
}

/** The model's Deployments no Service selects (the workshop's sleep clients): they run on the control-plane node. */
export function clientsOf(model: IstioModel): string[] {
  const svcs = services(model);
  return deployments(model).filter((d) => !svcs.some((s) => s.namespace === d.namespace && Object.keys(s.selector).length > 0 && matches(s.selector, d.labels))).map((d) => d.name);
}

export class KindMesh implements Mesh {
  readonly controlPlane = 'istiod' as const;
  readonly pkiStore: PkiStore;
  private applied = new Map<string, KubernetesObject>();
  private shareKey: string | undefined;
  private unregister: () => void = () => undefined;
  private unkeep: () => void = () => undefined;
  private static readonly idle = new Map<string, KindMesh>();
  private readonly credentials: GatewayCredentials;
  private readonly rewrites = new Set<string>();

  private constructor(
    readonly ki: KindIstio,
    readonly cluster: KindPodsCluster,
    private model: IstioModel,
    private log: (l: string) => void,
  ) {
    this.pkiStore = new PkiStore(join(cluster.stateDir, 'pki'));
    this.credentials = new GatewayCredentials(this.pkiStore);
  }

  get istioVersion(): string {
    return this.ki.version;
  }

  get current(): IstioModel {
    return this.model;
  }

  static async start(model: IstioModel, opts: KindMeshOptions = {}): Promise<KindMesh> {
    const log = opts.log ?? (() => undefined);
    const key = `${opts.istioVersion ?? process.env.MESHPROOF_ISTIO_VERSION ?? ''}|${opts.wire ?? true}`;
    const idle = opts.share ? KindMesh.idle.get(key) : undefined;
    if (idle) {
      KindMesh.idle.delete(key);
      idle.log = log;
      try {
        await idle.update(model);
      } catch (e) {
        await idle.stop();
        throw e;
      }
      log(`kind: the run's cluster reused for the next suite (export KUBECONFIG=${idle.ki.cluster.loopback.kubeconfig})`);
      return idle;
    }
    for (const m of [...KindMesh.idle.values()]) await m.stop();
    // MESHPROOF_KUBECONFIG + MESHPROOF_IMAGE_REGISTRY (--kubeconfig, --image-registry): the user's cluster, not a new one
    const external = externalFromEnv();
    const ki = await startKindIstio(model, { ...(external ? { external } : {}), ...(opts.istioVersion ? { istioVersion: opts.istioVersion } : {}), log, onControlPlane: clientsOf(model), imagesOnControlPlane: opts.share === true });
    let mesh: KindMesh | undefined;
    try {
      const runDir = resolve(opts.reportsDir ?? process.env[REPORTS_DIR_ENV] ?? 'reports', ki.cluster.name);
      const cluster = new KindPodsCluster(ki.cluster, ki.kc, runDir, ki.images.workload, opts.wire === false ? { wire: false } : {});
      await cluster.refresh();
      mesh = new KindMesh(ki, cluster, model, log);
      for (const o of mesh.render(model)) mesh.applied.set(objKey(o), o);
      mesh.unregister = onTeardown(() => mesh!.stop());
      if (opts.share) {
        mesh.shareKey = key;
        mesh.unkeep = keepUntilRunEnd(() => mesh!.stop());
      }
      if (opts.origin === 'up') mesh.recordUp(opts.topology);
      log(`kind: mesh ready (export KUBECONFIG=${ki.cluster.loopback.kubeconfig})`);
      return mesh;
    } catch (e) {
      if (mesh) await mesh.stop();
      else await ki.down();
      throw e;
    }
  }

  /** Where kubectl reaches the cluster's API server from this host (loopback only). */
  get kubeconfig(): string {
    return this.ki.cluster.loopback.kubeconfig;
  }

  /**
   * The engine's run record as an `up` run's: `meshproof exec <deployment>` resolves `deploy/<name>` when it runs (a
   * rollout renames the pods), a pod no Deployment owns by its name.
   */
  private recordUp(topology: string | undefined): void {
    const short = this.ki.cluster.engine.layout?.short;
    const rec = readRecords().find((r) => r.short === short);
    if (!rec) throw new Error(`kind: no run record for the cluster's engine (${short ?? 'not meshproof\'s own'})`);
    const pods = Object.fromEntries([...this.cluster.pods.values()].map((p) => {
      const deployment = p.spec.aliases?.[0];
      return [`${p.spec.namespace}/${deployment ?? p.spec.name}`, `kind:${p.spec.namespace}/${deployment ? `deploy/${deployment}` : `pod/${p.spec.name}`}`];
    }));
    writeRecord({ ...rec, origin: 'up', pods, ...(topology ? { topology } : {}) });
  }

  /** The model's objects as this cluster applies them: images rewritten to the offline builds, clients on the control plane. */
  private render(model: IstioModel): KubernetesObject[] {
    const rewrite = forKubelet(objectsOf(model), this.ki.images.workload, this.ki.pullPolicy);
    // the report says which images ran from the offline builds instead (results.json imageRewrites)
    const fresh = rewrite.rewritten.filter((l) => !this.rewrites.has(l));
    for (const l of fresh) this.rewrites.add(l);
    appendImageRewrites(this.cluster.runDir, fresh);
    const rewritten = rewrite.objects;
    return placeOn(rewritten, this.ki.cluster.external ? [] : clientsOf(model), this.ki.cluster.nodes[0]!.name).objects;
  }

  /** Applies what changed, deletes what the model no longer has, then rollouts done and every sidecar ACKed. */
  async update(model: IstioModel): Promise<void> {
    this.model = model;
    const want = new Map(this.render(model).map((o) => [objKey(o), o]));
    const gone = [...this.applied.entries()].filter(([k]) => !want.has(k)).map(([, o]) => o);
    const changed = [...want.entries()].filter(([k, o]) => JSON.stringify(this.applied.get(k)) !== JSON.stringify(o)).map(([, o]) => o);
    if (changed.length === 0 && gone.length === 0) return;
    const t0 = Date.now();
    const before = await this.ki.syncz().catch(() => []);
    await this.credentials.ensure(this.ki.kc, model);
    this.ki.cluster.external?.track(changed);
    await Promise.all([
      applyObjects(this.ki.kc, changed, { namespace: 'default', source: 'istio model' }),
      deleteObjects(this.ki.kc, gone.map((o) => inNamespace(o, 'default')), { wait: true }),
    ]);
    this.applied = want;
    await waitRolledOut(this.ki.kc, model);
    const configChanged = [...changed, ...gone].some((o) => !WORKLOAD_KINDS.has(o.kind ?? ''));
    const core = this.ki.kc.makeApiClient(CoreV1Api);
    const pods = (await core.listPodForAllNamespaces({})).items.filter((p) => p.metadata?.namespace !== 'istio-system' && p.metadata?.namespace !== 'kube-system');
    await waitAcked(() => this.ki.syncz(), sidecarProxies(pods), before, configChanged, 60_000);
    await this.cluster.refresh();
    const sidecars = [...this.cluster.pods.values()].filter((p) => p.containers.includes(SIDECAR));
    await waitNoListenerWarming(sidecars.map((p) => p.key), (k, f) => this.proxyStats(k, f));
    const proxies = sidecars.filter((p) => p.agentContainer).map((p) => p.key);
    // pooled connections opened under the old policy are retired as on netns (IstiodMesh: Istio's callConverge)
    if (configChanged) await retireOldConnections(this.cluster, proxies, model);
    this.log(`kind: applied ${changed.length} (${changed.map((o) => o.kind).join(' ')}), deleted ${gone.length} (${gone.map((o) => o.kind).join(' ')}); settled in ${Date.now() - t0} ms`);
  }

  /**
   * A proxy's Envoy stats: through the probe agent in the pod, or, in a pod without meshproof's workload image (the
   * ingress gateway), by pilot-agent itself in its container (`pilot-agent request`, what istioctl uses for admin calls).
   */
  private async proxyStats(pod: string, filter: string): Promise<{ name?: string; value?: number }[]> {
    if (this.cluster.pods.get(pod)?.agentContainer) return adminStats(this.cluster, pod, filter);
    // Envoy's text form (`name: value` lines), filtered here too: what pilot-agent passes on of the query is not ours to rely on
    const r = await this.cluster.exec(pod, ['pilot-agent', 'request', 'GET', `stats?filter=${encodeURIComponent(filter)}`], { container: SIDECAR, timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`${pod}: pilot-agent request GET stats failed (${r.code}): ${r.stderr.trim()}`);
    const re = new RegExp(filter);
    return r.stdout.split('\n').map((l) => /^(\S+): (\d+)$/.exec(l.trim())).filter((m): m is RegExpExecArray => m !== null && re.test(m[1]!)).map((m) => ({ name: m[1]!, value: Number(m[2]) }));
  }

  /** A counter of the pod's sidecar Envoy, from its admin API (read by the probe agent in the pod's app container). */
  stat(podRef: string, name: RegExp): Promise<number> {
    return envoyStat(this.cluster, this.cluster.pod(podRef).key, ENVOY_ADMIN, name);
  }

  /** The Pod as the API holds it carries Istio's sidecar container (native init container or plain). */
  hasSidecar(podRef: string): boolean {
    return this.cluster.pod(podRef).containers.includes(SIDECAR);
  }

  gatewayCredential(namespace: string, name: string): GatewayCredential {
    return this.credentials.get(namespace, name);
  }

  /** Kept for the run's next suite when shared; otherwise stopped. */
  async down(): Promise<void> {
    if (this.shareKey && !KindMesh.idle.has(this.shareKey)) {
      KindMesh.idle.set(this.shareKey, this);
      return;
    }
    await this.stop();
  }

  /** Deletes the cluster: agents, nodes, network, engine, namespace, relays; the run's keys. */
  async stop(): Promise<void> {
    this.unregister();
    this.unkeep();
    if (this.shareKey && KindMesh.idle.get(this.shareKey) === this) KindMesh.idle.delete(this.shareKey);
    this.shareKey = undefined;
    this.pkiStore.removeKeys();
    await this.cluster.down();
  }
}
