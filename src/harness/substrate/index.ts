// The substrate port (DESIGN.md seam 1): the run chooses where pods run (`meshproof run --substrate`,
// passed to the suites it runs as MESHPROOF_SUBSTRATE), and everything above this file starts a
// Cluster through upCluster — no profile, suite or bench names a substrate.
import { UserError } from '../model/errors.ts';
import type { Cluster, Topology } from './types.ts';
import { NetnsCluster, upNetns, type UpOptions } from './netns/index.ts';
import type { Mesh } from '../profiles/istio/mesh.ts';
import type { IstioModel } from '../profiles/istio/resources.ts';
import type { KindMeshOptions } from './kind/mesh.ts';

/** The options every substrate takes (defined with netns until the port's types carry them). */
export type { UpOptions };

/** Set by `meshproof run --substrate` for the suites it runs. */
export const SUBSTRATE_ENV = 'MESHPROOF_SUBSTRATE';

/** Every substrate DESIGN.md names. */
export const SUBSTRATES = ['netns', 'docker', 'kind'] as const;
export type SubstrateName = (typeof SUBSTRATES)[number];
/** What a run without --substrate (or a plain `mocha suites/x`) runs on: the fastest. */
export const DEFAULT_SUBSTRATE: SubstrateName = 'netns';
/**
 * kind runs Istio's own istiod and sidecars as pods on real kubelets, so only the suites of the Istio profile on the
 * istiod control plane run there: the emulation and the CF, C2C and Contrast topologies need pods the harness runs
 * itself (netns, docker). Checked by `meshproof run` before anything starts, and by upCluster.
 */
export const KIND_SCOPE = { profiles: ['istio'], controlPlane: 'istiod' } as const;

/**
 * A substrate name as given (`from`: the `--substrate` flag or the MESHPROOF_SUBSTRATE variable, named in the line): a
 * known one is returned; an unknown one is one line naming the fix (exit 2) — never netns instead.
 */
export function assertSubstrate(name: string, from: 'flag' | 'env' = 'flag'): SubstrateName {
  const given = from === 'flag' ? `--substrate ${name}` : `${SUBSTRATE_ENV}=${name}`;
  const fix = from === 'flag' ? `use --substrate ${SUBSTRATES.join(', ')}` : `set ${SUBSTRATE_ENV}=${SUBSTRATES.join(', ')} or unset it`;
  if (!(SUBSTRATES as readonly string[]).includes(name)) {
    throw new UserError(`${given}: unknown substrate; the substrates are ${SUBSTRATES.join(', ')}: ${fix}`);
  }
  return name as SubstrateName;
}

/** The run's substrate: the environment's, else the default (what a plain `mocha suites/x` runs on). */
export function substrateOfRun(env: NodeJS.ProcessEnv = process.env): SubstrateName {
  const v = env[SUBSTRATE_ENV];
  if (v === undefined || v === '') return DEFAULT_SUBSTRATE;
  return assertSubstrate(v, 'env');
}

/** Starts `topology` on the run's substrate (`env`: where the choice is read, the process's by default). */
export async function upCluster(topology: Topology, opts: UpOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Cluster> {
  const substrate = substrateOfRun(env);
  switch (substrate) {
    case 'netns':
      return upNetns(topology, opts);
    case 'docker':
      // loaded only when asked for: testcontainers and dockerode are not a netns run's cost
      return (await import('./docker/cluster.ts')).upDocker(topology, opts);
    case 'kind':
      // kind's pods are the API's (KindPodsCluster, through startKindMesh): a topology of the harness's own has no kind form
      throw new UserError(`topology ${topology.name}: the kind substrate runs only the ${KIND_SCOPE.profiles.join(', ')} profile on the ${KIND_SCOPE.controlPlane} control plane (its pods are a real cluster's): use --substrate netns or docker`);
  }
}

/** Whether the run is on kind (MESHPROOF_SUBSTRATE=kind): the Istio suites on istiod then start startKindMesh. */
export function kindRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return substrateOfRun(env) === 'kind';
}

/**
 * `--kubeconfig <file> --image-registry localhost:<port>`: the kind substrate's code path against a cluster the user
 * already has (kind/external.ts). Both or neither; the kubeconfig read, its API server and the registry asked once,
 * each failure one line before anything starts; then set for the suites (and a run's child runs) in the environment.
 */
export async function useExistingCluster(substrate: SubstrateName, kubeconfig: string | undefined, registry: string | undefined): Promise<void> {
  if (kubeconfig === undefined && registry === undefined) return;
  if (substrate !== 'kind') throw new UserError(`--kubeconfig and --image-registry run the kind substrate's suites on a cluster you already have: add --substrate kind`);
  const ext = await import('./kind/external.ts');
  const spec = ext.externalFromEnv({ [ext.KUBECONFIG_ENV]: kubeconfig, [ext.IMAGE_REGISTRY_ENV]: registry })!;
  await ext.checkExternal(spec);
  process.env[ext.KUBECONFIG_ENV] = spec.kubeconfig;
  process.env[ext.IMAGE_REGISTRY_ENV] = spec.registry;
}

/** An Istio mesh on a real kind cluster with Istio's own istiod (loaded only when asked for, as docker's cluster is). */
export async function startKindMesh(model: IstioModel, opts: KindMeshOptions = {}): Promise<Mesh> {
  return (await import('./kind/mesh.ts')).KindMesh.start(model, opts);
}

/**
 * `cluster` as the netns substrate's, for code that still uses members the Cluster port does not offer yet (`who` names
 * that code and the members): on another substrate this is one line naming the fix, not a missing method mid-run.
 */
export function netnsCluster(cluster: Cluster, who: string): NetnsCluster {
  if (cluster instanceof NetnsCluster) return cluster;
  throw new UserError(`${who} needs the netns substrate (members the Cluster port does not offer yet); this run is on ${cluster.substrate}: use --substrate netns`);
}
