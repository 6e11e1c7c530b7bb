// A load path: one way a request goes from a client pod to the app, through whatever data plane
// the path is about. A bed (a profile on a substrate) starts the pods and hands its paths back;
// the runner only needs what is here, so a new profile adds its paths by adding a bed.
//
// To add a path (e.g. CF (d)): write a LoadBed in load/beds/<profile>.ts whose start() brings
// the profile up and returns LoadPaths (client pod, target URL, the processes to sample, a
// verify() that proves the path is what it claims), and list the bed in load/beds/index.ts.
// The catalog below already names the path, so budgets.yaml may give it budgets.
import type { Cluster } from '../substrate/types.ts';

/**
 * What the runner needs of the substrate a path's pods run on, all of it the substrate port: exec a generator in the
 * client pod (fortio, wrk), start the `load` workload there as a container, signal it, read its log and status (autocannon),
 * sample the path's containers and the machine. No host pid, path or netns: a path runs on any substrate.
 */
export type LoadHost = Pick<Cluster, 'runId' | 'runDir' | 'substrate' | 'exec' | 'startContainer' | 'stopContainer' | 'signalContainer' | 'containerLog' | 'containerStatus' | 'sample' | 'machine'>;

/** A container whose cost is sampled during the load (Cluster.sample). */
export interface ProcRef {
  /** Its role on the path, e.g. `client-sidecar`, `server-sidecar`, `tcp-router`, `server-app`. */
  role: string;
  /** `dataplane`: a proxy on the path (the mesh's cost, what budgets constrain); `app`: the workload serving the load. */
  kind: 'dataplane' | 'app';
  pod: string;
  container: string;
}

export interface LoadPath {
  /** Stable id: the budgets.yaml key, the results' path, file names (budget-<id>.svg). */
  id: string;
  /** The letter: (a) … (e). */
  letter: string;
  description: string;
  host: LoadHost;
  /** Pod whose network namespace the load generator runs in. */
  client: string;
  /** Base URL requested from inside the client pod (no path): `/bytes/<payload>` is appended. */
  target: string;
  /**
   * A plain HTTP proxy inside the client pod (`host:port`, e.g. the C2C egress proxy 127.0.0.1:61445): the generator
   * connects to it and sends the target in absolute-form. Only for http:// targets; wrk is never run through it.
   */
  proxy?: string;
  /** Where the path's data-plane config came from (a results axis): `istiod`, `emulated`, `rendered:cf-tcp-router`, `none`. */
  controlPlane?: string;
  /** The Istio release whose istiod programmed the path (istiod only). */
  istioVersion?: string;
  /** Processes to sample: every data-plane process on the path, and the app that answers. */
  procs: ProcRef[];
  /** One request before any load, proving the path is what it claims; resolves with the evidence, rejects when it is not. */
  verify(): Promise<string>;
}

/** Starts what some paths need (a profile on a substrate) and hands the paths back. */
export interface LoadBed {
  /** The profile, e.g. `istio`, `cf`. */
  profile: string;
  /** Ids of the catalog paths it provides. */
  provides: readonly string[];
  start(opts: { log?: (line: string) => void; reportsDir?: string }): Promise<StartedBed>;
}

export interface StartedBed {
  profile: string;
  paths: LoadPath[];
  /** The substrate run the paths live in (results go to its runDir). */
  runId: string;
  runDir: string;
  down(): Promise<void>;
}

export interface CatalogPath {
  id: string;
  letter: string;
  description: string;
  /** The profile whose bed provides it. */
  profile: string;
}

/** Id of the path every ratio is taken against. */
export const BASELINE = 'baseline';

/** Every path of the throughput-budget issue, in report order. A path no bed provides is reported as skipped. */
export const PATH_CATALOG: readonly CatalogPath[] = [
  { id: BASELINE, letter: 'a', description: 'direct plaintext pod → pod (no data plane)', profile: 'istio' },
  { id: 'istio-mtls', letter: 'b', description: 'Istio sidecar pair, STRICT: mTLS between the sidecars', profile: 'istio' },
  { id: 'istio-permissive-plaintext', letter: 'c', description: 'Istio sidecar pair, PERMISSIVE + DestinationRule DISABLE: plaintext through both sidecars', profile: 'istio' },
  { id: 'cf-tcp-router', letter: 'd', description: 'CF client → tcp-router (HAProxy TLS, verifyhost) → Diego Envoy → app', profile: 'cf' },
  { id: 'c2c-egress', letter: 'e', description: 'CF egress proxy → 62443 (C2C mTLS)', profile: 'c2c' },
];

export function catalogPath(id: string): CatalogPath | undefined {
  return PATH_CATALOG.find((p) => p.id === id);
}
