// The control planes side by side (issue 13's figures): istiod on the kube layer vs the emulation —
// control plane up (etcd + API server + controller-manager + istiod ready), the sentences mesh with
// every sidecar ACKed, control-plane memory at idle, and the wall time of the whole Istio profile.
// Figures, never assertions: each target is recorded beside its measurement with `met`.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { IstiodMesh } from '../src/harness/controlplane/istiod/mesh.ts';
import { IstioMesh } from '../src/harness/profiles/istio/index.ts';
import { scenarioModel } from '../src/harness/matrix/istio.ts';
import { loadTruthTable } from '../src/harness/profiles/istio/truth.ts';
import type { NetnsCluster } from '../src/harness/substrate/netns/index.ts';
import { netnsCluster } from '../src/harness/substrate/index.ts';

const TARGETS = { controlPlaneMs: 15_000, meshReadyMs: 30_000, istioProfileMs: 120_000 };

/** RSS of the node namespace's processes (etcd, kube-apiserver, kube-controller-manager) and of istiod's pod, by name. */
function controlPlaneRss(cluster: NetnsCluster): Record<string, number> {
  const out: Record<string, number> = {};
  const read = (name: string, pid: number | undefined) => {
    if (pid === undefined) return;
    try {
      out[name] = Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
    } catch {
      // exited
    }
  };
  for (const p of cluster.supervisor.procs) if (p.spec.pod === 'node' && p.exitCode === undefined) read(p.spec.name, p.child.pid);
  for (const pod of cluster.pods.values()) if (pod.spec.labels?.app === 'istiod') for (const [name, pid] of Object.entries(cluster.pids(pod.key))) if (name !== 'mp-agent') read(`istiod (${name})`, pid);
  return out;
}

/** The Istio suites on one control plane, as npm test runs them; wall time in ms and mocha's exit code. */
function istioProfile(controlPlane: 'istiod' | 'emulated'): { ms: number; exit: number | null } {
  const t0 = performance.now();
  const r = spawnSync('npx', ['mocha', 'suites/istio-*.spec.ts'], { env: { ...process.env, MESHPROOF_CONTROL_PLANE: controlPlane }, stdio: 'ignore' });
  return { ms: Math.round(performance.now() - t0), exit: r.status };
}

export async function benchControlPlanes(log: (s: string) => void): Promise<Record<string, unknown>> {
  const model = scenarioModel(loadTruthTable('fixtures/istio/truth/strict.yaml'));
  const istiod = await IstiodMesh.start(model, { wire: false });
  const idle = controlPlaneRss(netnsCluster(istiod.cluster, 'the control-plane bench (host pids of the node processes)'));
  const t = istiod.timings;
  await istiod.down();
  const t0 = performance.now();
  const emulated = await IstioMesh.start(model, { wire: false });
  const emulatedMs = Math.round(performance.now() - t0);
  await emulated.down();
  log(`istiod: control plane ${t.controlPlaneMs} ms (API ${t.kubeApiMs} ms), sentences mesh ACKed ${t.meshReadyMs} ms; emulated mesh ${emulatedMs} ms; idle RSS ${JSON.stringify(idle)}`);
  const profile = { istiod: istioProfile('istiod'), emulated: istioProfile('emulated') };
  log(`Istio profile: istiod ${profile.istiod.ms} ms (exit ${profile.istiod.exit}), emulated ${profile.emulated.ms} ms (exit ${profile.emulated.exit})`);
  return {
    istiod: {
      kubeApiMs: t.kubeApiMs,
      controlPlaneMs: { value: t.controlPlaneMs, target: TARGETS.controlPlaneMs, met: t.controlPlaneMs <= TARGETS.controlPlaneMs },
      meshReadyMs: { value: t.meshReadyMs, target: TARGETS.meshReadyMs, met: t.meshReadyMs <= TARGETS.meshReadyMs },
      idleRssMiB: idle,
      istioProfileMs: { value: profile.istiod.ms, target: TARGETS.istioProfileMs, met: profile.istiod.ms <= TARGETS.istioProfileMs, exit: profile.istiod.exit },
    },
    emulated: { meshReadyMs: emulatedMs, istioProfileMs: { value: profile.emulated.ms, exit: profile.emulated.exit } },
  };
}
