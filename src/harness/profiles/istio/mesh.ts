// What an Istio suite probes, whichever control plane programs the sidecars: meshproof's emulation
// (IstioMesh, profiles/istio/index.ts) or Istio's own istiod on a real API server (IstiodMesh,
// controlplane/istiod/mesh.ts). Suites and the truth-table runner see only this.
import type { Cluster } from '../../substrate/types.ts';
import type { CertificateStore } from '../../pki/index.ts';
import type { IstioModel } from './resources.ts';

export type ControlPlaneKind = 'emulated' | 'istiod';

export interface GatewayCredential {
  cert: string;
  key: string;
  cacert: string;
  client: { cert: string; key: string };
}

export interface Mesh {
  readonly controlPlane: ControlPlaneKind;
  /** The Istio release whose istiod programs the mesh (istiod only). */
  readonly istioVersion?: string;
  readonly cluster: Cluster;
  /** The model the oracle reads: the same YAML the control plane was given. */
  readonly current: IstioModel;
  /** `kubectl apply` of a new model (resources removed from it are deleted); resolves once every sidecar has the new config. */
  update(model: IstioModel): Promise<void>;
  /** A counter from a sidecar's Envoy admin API, summed over the names that match. */
  stat(podRef: string, name: RegExp): Promise<number>;
  hasSidecar(podRef: string): boolean;
  /** Where this run keeps its keys (gone at teardown), for a suite's extra identities: await what it writes. */
  readonly pkiStore: CertificateStore;
  gatewayCredential(namespace: string, name: string): GatewayCredential;
  /** The kubeconfig of the mesh's API server on this host's loopback (istiod's meshes; the emulation has none). */
  readonly kubeconfig?: string;
  down(): Promise<void>;
}
