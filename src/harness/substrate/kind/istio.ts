// Real Istio on a real kind cluster (issue 14): the images a real kubelet runs built offline (docker/images.ts:
// proxyv2 and pilot equivalents per Istio version, meshproof's workload image), loaded into the nodes, Istio installed
// with the kube layer's own code (istioctl manifest generate with those images, installIstio), the user's YAML applied
// with only its images rewritten to the offline builds, then the same waits as the kube layer's mesh: rollouts done and
// every sidecar ACKed in istiod's /debug/syncz. It lives with the substrate because it starts one (DESIGN.md seam 3
// keeps controlplane/ off substrate implementations); every Kubernetes step is the kube layer's.
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, type KubernetesObject, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { resolveEnvoy } from '../../cli/doctor.ts';
import { resolveIstio } from '../../controlplane/provision.ts';
import { assertIstioVersion, DEFAULT_ISTIO_VERSION } from '../../controlplane/versions.ts';
import { generateIstioManifest, installIstio, type IstioInstall } from '../../controlplane/istiod/install.ts';
import { objectsOf, waitAcked, waitRolledOut, type SyncStatus } from '../../controlplane/istiod/mesh.ts';
import { applyObjects } from '../../kube/apply.ts';
import { programsOf, UnmappedImage } from '../../kube/pods.ts';
import { UserError } from '../../model/errors.ts';
import { deployments, isInjected, type IstioModel } from '../../profiles/istio/resources.ts';
import { ensureKubeletImages, type KubeletImages } from '../docker/images.ts';
import { createKindCluster, type CreateKindOptions, type KindCluster } from './cluster.ts';
import { openExternalCluster, type ExternalSpec } from './external.ts';
import type { Log } from '../../controlplane/provision.ts';

/** The injected sidecar's container name (Istio's injection template). */
export const SIDECAR = 'istio-proxy';

/** `Never` for images loaded into kind's nodes; `IfNotPresent` where the kubelet pulls them from a registry (an existing cluster). */
export type PullPolicy = 'Never' | 'IfNotPresent';

interface PodTemplateOwner { kind?: string; spec?: { template?: { spec?: { containers?: V1Container[]; initContainers?: V1Container[] } } } }

/**
 * The user's objects with every container the node agent's image table maps to a meshproof program (kube/pods.ts
 * programsOf: the workshop app, Istio's echo app, curl/sleep clients) running it from the workload image instead:
 * a workload as the image's entrypoint arguments (`node <bundle> <workload> <args>`), an idle client as `sleep
 * infinity`. Pure; `rewritten` names each container changed (`<kind>/<name>/<container>: <from> → <program>`), for the
 * report. An image the table does not know is left as written (kubelet then reports it as ErrImageNeverPull/pull errors).
 */
export function forKubelet(objs: KubernetesObject[], workloadImage: string, pullPolicy: PullPolicy = 'Never'): { objects: KubernetesObject[]; rewritten: string[] } {
  const rewritten: string[] = [];
  const objects = objs.map((o) => {
    const spec = (o as PodTemplateOwner).spec?.template?.spec;
    if (!spec) return o;
    const copy = structuredClone(o) as PodTemplateOwner & KubernetesObject;
    const pod = copy.spec!.template!.spec!;
    // the id a workload reports itself by: the Deployment's name, as the node agent's ownerAppName gives it
    const id = o.kind === 'Deployment' ? o.metadata?.name : undefined;
    const extra: V1Container[] = [];
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      const env = Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      // Istio's gateway injection fills `image: auto`; the API server defaults a tagless image to imagePullPolicy
      // Always (Kubernetes images.md), and a pull cannot work offline: the injected image is on the nodes already
      if (c.image === 'auto') {
        if (c.imagePullPolicy !== pullPolicy) rewritten.push(`${o.kind}/${o.metadata?.name}/${c.name}: image auto, imagePullPolicy ${c.imagePullPolicy ?? 'Always (defaulted)'} → ${pullPolicy}`);
        c.imagePullPolicy = pullPolicy;
        continue;
      }
      let programs;
      try {
        programs = programsOf(c, env, { pilotAgent: '', pilotDiscovery: '', envoy: '' }, id);
      } catch (e) {
        if (e instanceof UnmappedImage) continue;
        throw e;
      }
      const isInit = (pod.initContainers ?? []).includes(c);
      // Istio's echo app serves every port from one process; here each port's workload is a container of its own in
      // the pod (one network namespace, so the same ports answer), the first in the container as written
      if (programs.length === 0 || programs.some((p) => p.kind === 'binary') || (programs.length > 1 && (isInit || programs.some((p) => p.kind !== 'workload')))) {
        throw new UserError(`${o.kind} ${o.metadata?.name}: container ${c.name} (${c.image}) runs ${programs.length} programs; the kind substrate runs one per container: split it into containers`);
      }
      const from = c.image;
      programs.forEach((p, i) => {
        const target = i === 0 ? c : (structuredClone(c) as V1Container);
        target.image = workloadImage;
        target.imagePullPolicy = pullPolicy;
        if (p.kind === 'workload') {
          delete target.command;
          target.args = [p.workload, ...p.args];
        } else {
          target.command = ['sleep', 'infinity'];
          delete target.args;
        }
        if (i > 0) {
          // the pod's ports and probes stay declared once, on the container as written
          target.name = `${c.name}-${i}`;
          delete target.ports;
          delete target.readinessProbe;
          delete target.livenessProbe;
          delete target.startupProbe;
          extra.push(target);
        }
        rewritten.push(`${o.kind}/${o.metadata?.name}/${target.name}: ${from} → ${p.what}`);
      });
    }
    if (extra.length) pod.containers = [...(pod.containers ?? []), ...extra];
    return copy;
  });
  return { objects, rewritten };
}

/** kubeadm's taint on the control-plane node (kept beside a worker). */
const CONTROL_PLANE_TAINT = 'node-role.kubernetes.io/control-plane';

/**
 * The named Deployments' pods pinned to `node` (a nodeSelector on its hostname label, and a toleration of kubeadm's
 * control-plane taint), so that their calls to the others cross the link between nodes. Pure; `placed` names each one.
 */
export function placeOn(objs: KubernetesObject[], deploymentNames: readonly string[], node: string): { objects: KubernetesObject[]; placed: string[] } {
  const placed: string[] = [];
  const objects = objs.map((o) => {
    if (o.kind !== 'Deployment' || !deploymentNames.includes(o.metadata?.name ?? '')) return o;
    const copy = structuredClone(o) as KubernetesObject & { spec: { template: { spec: { nodeSelector?: Record<string, string>; tolerations?: object[] } } } };
    const pod = copy.spec.template.spec;
    pod.nodeSelector = { ...pod.nodeSelector, 'kubernetes.io/hostname': node };
    pod.tolerations = [...(pod.tolerations ?? []), { key: CONTROL_PLANE_TAINT, operator: 'Exists', effect: 'NoSchedule' }];
    placed.push(`Deployment/${o.metadata?.name} → node ${node}`);
    return copy;
  });
  const missing = deploymentNames.filter((n) => !objs.some((o) => o.kind === 'Deployment' && o.metadata?.name === n));
  if (missing.length) throw new UserError(`no Deployment ${missing.join(', ')} to place on ${node} (Deployments: ${objs.filter((o) => o.kind === 'Deployment').map((o) => o.metadata?.name).join(', ')})`);
  return { objects, placed };
}

/** `<pod>.<namespace>` (istiod's proxy id) of every pod that carries the sidecar, native (init) or plain. */
export function sidecarProxies(pods: V1Pod[]): string[] {
  return pods
    .filter((p) => !p.metadata?.deletionTimestamp && [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].some((c) => c.name === SIDECAR))
    .map((p) => `${p.metadata?.name}.${p.metadata?.namespace}`);
}

export interface KindIstioTimings {
  /** Engine, node image, kind create, every node Ready, the loopback relay (and the images, built alongside). */
  clusterMs: number;
  /** ensureKubeletImages (a hit when cached), while kind creates the nodes: part of clusterMs, not after it. */
  imagesMs: number;
  /** kind load docker-image of proxyv2, pilot and workload into every schedulable node. */
  loadMs: number;
  /** installIstio: the manifest applied, istiod Ready, its injector armed. */
  istioMs: number;
  /** The model applied, every Deployment rolled out, every sidecar ACKed. */
  meshMs: number;
}

export interface KindIstio {
  cluster: KindCluster;
  kc: KubeConfig;
  version: string;
  envoyVersion: string;
  images: KubeletImages;
  install: IstioInstall;
  /** Which containers of the user's YAML run the offline builds (forKubelet), and which pods were placed (placeOn). */
  rewritten: string[];
  timings: KindIstioTimings;
  /** istiod's /debug/syncz, from its own pod (`pilot-discovery request`, localhost: no token needed). */
  syncz(): Promise<SyncStatus[]>;
  /** The name of the one Running pod whose label `app` is `app` in `namespace`. */
  podOf(app: string, namespace?: string): Promise<string>;
  /** applyObjects, then until istiod has pushed the change and every sidecar ACKed it. */
  applyAndSettle(objs: KubernetesObject[], source: string): Promise<number>;
  /** `Never` on kind (images loaded into the nodes), `IfNotPresent` on an existing cluster (pulled from its registry). */
  pullPolicy: PullPolicy;
  /** Deletes the cluster: nodes, network, engine, namespace, relays (an existing cluster: only what meshproof applied). */
  down(): Promise<void>;
}

export interface KindIstioOptions {
  istioVersion?: string;
  log?: Log;
  /** Deployments whose pods run on the control-plane node (placeOn), the others staying on the worker: their calls cross nodes. */
  onControlPlane?: string[];
  /** A cluster the user already has (external.ts): used instead of creating a kind cluster, images pushed to its registry. */
  external?: ExternalSpec;
  /** Load the images into the control-plane node even when `onControlPlane` is empty (a cluster later models reuse). */
  imagesOnControlPlane?: boolean;
}

/**
 * A kind cluster with Istio installed and `model` applied (sentences: the workshop's YAML), every phase timed and
 * logged. Everything it made goes when any step fails.
 */
export async function startKindIstio(model: IstioModel, opts: KindIstioOptions = {}): Promise<KindIstio> {
  const log = opts.log ?? (() => undefined);
  const version = opts.istioVersion ?? process.env.MESHPROOF_ISTIO_VERSION ?? DEFAULT_ISTIO_VERSION;
  const release = assertIstioVersion(version);
  // what is missing is one line naming the fix, before anything starts
  const istio = resolveIstio(version);
  const envoy = resolveEnvoy(release.envoyVersion);
  const phase = (() => {
    let at = Date.now();
    return (what: string): number => {
      const ms = Date.now() - at;
      log(`kind-istio: ${what} in ${(ms / 1000).toFixed(1)} s`);
      at = Date.now();
      return ms;
    };
  })();
  // the images are built (or found) on the cluster's engine while kind creates the nodes
  let built: KubeletImages | undefined;
  let imagesMs = 0;
  const open = opts.external ? (o: CreateKindOptions) => openExternalCluster(opts.external!, o) : createKindCluster;
  const cluster = await open({
    log,
    alongside: async (engine, bundle) => {
      const t0 = Date.now();
      built = await ensureKubeletImages(engine, {
        istioVersion: version, envoy: { version: release.envoyVersion, bin: envoy.bin },
        pilotAgent: istio.pilotAgent, pilotDiscovery: istio.pilotDiscovery, bootstrapTemplate: istio.bootstrapTemplate, bundle: await bundle, log,
      });
      imagesMs = Date.now() - t0;
      log(`kind-istio: images ${built.proxyv2}, ${built.pilot}, ${built.workload} (${built.images.filter((i) => i.status === 'built').length} built) in ${(imagesMs / 1000).toFixed(1)} s, alongside the create`);
    },
  });
  let images = built!;
  try {
    const clusterMs = phase(cluster.external ? 'existing cluster checked (engine, registry relay, images built alongside)' : 'cluster created (engine, nodes Ready, API server on loopback, images built alongside)');
    // only where istiod and the pods can run: the control plane keeps its NoSchedule taint beside a worker (and gets
    // the images too when pods are placed there)
    const controlPlane = cluster.nodes[0]!.name;
    const pullPolicy: PullPolicy = cluster.external ? 'IfNotPresent' : 'Never';
    let loadMs: number;
    if (cluster.external) {
      const [proxyv2, pilot, workload] = await cluster.external.pushImages([images.proxyv2, images.pilot, images.workload]);
      images = { ...images, proxyv2: proxyv2!, pilot: pilot!, workload: workload! };
      loadMs = phase(`images pushed to ${cluster.external.registry}`);
    } else {
    const schedulable = await cluster.schedulableNodes();
    const nodes = (opts.onControlPlane?.length || opts.imagesOnControlPlane) && !schedulable.includes(controlPlane) ? [controlPlane, ...schedulable] : schedulable;
    if (nodes.length === 0) throw new Error(`no schedulable node in ${cluster.name} (every node is tainted NoSchedule or NoExecute)`);
    await cluster.loadImages([images.proxyv2, images.pilot, images.workload], nodes);
    loadMs = phase(`images loaded into ${nodes.join(', ')}`);
    }
    // after the push on an existing cluster: the manifest names the images by the references the kubelet pulls
    const manifest = await generateIstioManifest(istio.istioctl, version, join(cluster.stateDir, 'istio'), { pilot: images.pilot, proxyv2: images.proxyv2 });
    const kc = cluster.loopback.kc;
    cluster.external?.track([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } }, ...manifest.objects]);
    const install = await installIstio(kc, version, manifest, log);
    const istioMs = phase(`Istio ${version} installed, istiod Ready`);

    const syncz = async (): Promise<SyncStatus[]> => {
      const out = await cluster.kubectl(['-n', 'istio-system', 'exec', 'deploy/istiod', '-c', 'discovery', '--', 'pilot-discovery', 'request', 'GET', '/debug/syncz'], { timeoutMs: 20_000 });
      return JSON.parse(out.slice(out.indexOf('['))) as SyncStatus[];
    };
    const core = kc.makeApiClient(CoreV1Api);
    const appPods = async (): Promise<V1Pod[]> => (await core.listPodForAllNamespaces({})).items.filter((p) => p.metadata?.namespace !== 'istio-system' && p.metadata?.namespace !== 'kube-system');
    // on an existing cluster nothing is pinned: no wire canary looks at its node links, and its nodes are not ours to pick
    const onControlPlane = cluster.external ? [] : opts.onControlPlane ?? [];
    const renderModel = (m: IstioModel) => {
      const rewrite = forKubelet(objectsOf(m), images.workload, pullPolicy);
      const { objects, placed } = placeOn(rewrite.objects, onControlPlane, controlPlane);
      return { objects, rewritten: [...rewrite.rewritten, ...placed] };
    };
    const { objects, rewritten } = renderModel(model);
    for (const r of rewritten) log(`kind-istio: ${r}`);
    cluster.external?.track(objects);
    await applyObjects(kc, objects, { namespace: 'default', source: 'istio model' });
    await waitRolledOut(kc, model);
    // every Deployment the model injects has its sidecar: the webhook ran for each pod
    const injected = deployments(model).filter((d) => isInjected(model, d)).length;
    const proxies = sidecarProxies(await appPods());
    if (proxies.length !== injected) throw new Error(`${proxies.length} pods carry ${SIDECAR} (${proxies.join(', ')}), the model injects ${injected} Deployments`);
    await waitAcked(syncz, proxies, [], false, 120_000);
    const meshMs = phase(`sentences mesh ready: ${proxies.length} sidecars ACKed`);

    return {
      cluster, kc, version, envoyVersion: release.envoyVersion, images, install, rewritten, pullPolicy,
      timings: { clusterMs, imagesMs, loadMs, istioMs, meshMs },
      syncz,
      async podOf(app, namespace = 'default') {
        const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
        if (pods.length !== 1) throw new Error(`${pods.length} Running pods with app=${app} in ${namespace}`);
        return pods[0]!.metadata!.name!;
      },
      async applyAndSettle(objs, source) {
        const t0 = Date.now();
        const before = await syncz();
        cluster.external?.track(objs);
        await applyObjects(kc, objs, { namespace: 'default', source });
        await waitAcked(syncz, sidecarProxies(await appPods()), before, true);
        return Date.now() - t0;
      },
      down: () => cluster.delete(),
    };
  } catch (e) {
    await cluster.delete();
    throw e;
  }
}
