// Which control plane programs an Istio run's sidecars: Istio's own istiod on a real API server
// (controlplane/istiod) or meshproof's emulation (profiles/istio). `meshproof run --control-plane`
// sets it for the suites it runs; a suite never names one.
import { UserError } from '../model/errors.ts';
import { IstioMesh } from '../profiles/istio/index.ts';
import type { ControlPlaneKind, Mesh } from '../profiles/istio/mesh.ts';
import type { IstioModel } from '../profiles/istio/resources.ts';
import { kindRequested, startKindMesh, type UpOptions } from '../substrate/index.ts';
import { IstiodMesh } from './istiod/mesh.ts';

/** Set by `meshproof run --control-plane` (and npm test's istiod pass) for the suites it runs. */
export const CONTROL_PLANE_ENV = 'MESHPROOF_CONTROL_PLANE';
/** Set by `meshproof run --istio-version` for each pass over the suites. */
export const ISTIO_VERSION_ENV = 'MESHPROOF_ISTIO_VERSION';
export const CONTROL_PLANES: readonly ControlPlaneKind[] = ['istiod', 'emulated'];

/** The run's control plane: the environment's, else the emulation (the fast path a plain `mocha suites/x` takes). */
export function controlPlaneOfRun(env: NodeJS.ProcessEnv = process.env): ControlPlaneKind {
  const v = env[CONTROL_PLANE_ENV];
  if (v === undefined || v === '') return 'emulated';
  if (!(CONTROL_PLANES as readonly string[]).includes(v)) throw new UserError(`${CONTROL_PLANE_ENV}=${v}: the control planes are ${CONTROL_PLANES.join(', ')}`);
  return v as ControlPlaneKind;
}

/**
 * Starts a mesh for the model on the run's control plane. `share`: istiod's control plane is kept for the run's next
 * suite (reset between them, stopped at the run's end: shared.ts); the emulation starts in well under a second and
 * has nothing worth sharing.
 */
export function startMesh(model: IstioModel, opts: UpOptions & { envoyVersion?: string; istioVersion?: string; share?: boolean } = {}): Promise<Mesh> {
  const { share, ...rest } = opts;
  // kind runs the Istio suites on istiod (KIND_SCOPE); the emulation there is refused in one line by upCluster
  if (controlPlaneOfRun() === 'istiod' && kindRequested()) return startKindMesh(model, { ...rest, share });
  return controlPlaneOfRun() === 'istiod' ? IstiodMesh.start(model, { ...rest, share }) : IstioMesh.start(model, rest);
}

/** How long the run's first kind cluster may take to come up with Istio (2 cores: ~70 s, ~100 s under load). */
export const KIND_WARM_TIMEOUT_MS = 10 * 60_000;

/**
 * On kind with istiod, starts the control plane the run's suites share before the first suite (a mocha root
 * beforeAll: suites/lib/root-hooks.ts, and cli/mocha.ts for `meshproof run`), with Istio but none of a suite's
 * objects: creating the cluster takes a minute or more, which is no suite's own before-hook time; the first suite
 * then only applies its model, as every later one does. Elsewhere nothing (a netns control plane starts in seconds).
 */
export async function warmSharedMesh(log: (l: string) => void = (l) => console.log(`    ${l}`)): Promise<void> {
  if (controlPlaneOfRun() !== 'istiod' || !kindRequested()) return;
  log('kind: the run\'s cluster with Istio, shared by its suites');
  const mesh = await startKindMesh({ resources: [] }, { log, share: true });
  await mesh.down();
}
