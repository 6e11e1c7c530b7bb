// Paths (a), (b), (c) on one Istio mesh (fixtures/istio/load): every pod runs at once, so
// switching paths between rounds restarts nothing. The mesh runs on the run's control plane
// (controlplane/index.ts startMesh: MESHPROOF_CONTROL_PLANE=istiod programs the sidecars with Istio's own
// istiod, else meshproof's emulation); each path names it, and the Istio version on istiod.
//   (a) baseline                    sleep-naked → echo-naked          no data plane
//   (b) istio-mtls                  sleep → echo                      both sidecars, STRICT: mTLS
//   (c) istio-permissive-plaintext  sleep → echo-permissive           both sidecars, PERMISSIVE + DR DISABLE
import { startMesh } from '../../controlplane/index.ts';
import { SIDECAR } from '../../profiles/istio/index.ts';
import { deployments, loadIstio } from '../../profiles/istio/resources.ts';
import type { Verdict } from '../../model/verdict.ts';
import { BASELINE, catalogPath, type LoadBed, type LoadPath, type ProcRef, type StartedBed } from '../path.ts';

export const ISTIO_LOAD_FIXTURE = 'fixtures/istio/load';
const PORT = 8080;

export const istioBed: LoadBed = {
  profile: 'istio',
  provides: [BASELINE, 'istio-mtls', 'istio-permissive-plaintext'],
  async start(opts): Promise<StartedBed> {
    // no wire capture: tcpdump copying every loaded packet would be the largest cost on the machine
    const model = loadIstio(ISTIO_LOAD_FIXTURE);
    const mesh = await startMesh(model, { wire: false, log: opts.log, reportsDir: opts.reportsDir });
    try {
      const cluster = mesh.cluster;
      // the app: the emulation's topology lists it (`app-<port>`); on istiod the node agent starts the Pod's
      // containers under the names the user's Deployment gives them (and a probe agent beside them)
      const app = (pod: string): ProcRef => {
        const listed = cluster.pod(pod).spec.containers?.map((c) => c.name).filter((n) => n !== SIDECAR) ?? [];
        const name = listed[0] ?? deployments(model).find((x) => `${x.namespace}/${x.name}` === pod)?.containerName;
        if (!name) throw new Error(`${ISTIO_LOAD_FIXTURE}: pod ${pod} runs no app`);
        return { role: 'server-app', kind: 'app', pod, container: name };
      };
      const sidecar = (pod: string, role: string): ProcRef => ({ role, kind: 'dataplane', pod, container: SIDECAR });
      const verify = async (id: string, from: string, to: string, want: Verdict): Promise<string> => {
        const r = await cluster.probe(from, { protocol: 'http', host: to, port: PORT, path: '/echo', timeoutMs: 2000 }, { wire: false });
        const uri = /URI=([^;,]+)/.exec(r.evidence.xfcc ?? '')?.[1];
        const evidence = `${r.verdict}${uri ? ` xfcc URI=${uri}` : ''} served by ${r.evidence.servedBy ?? '?'}`;
        if (r.verdict !== want) throw new Error(`path ${id}: ${from} → ${to}:${PORT} should be ${want}, got ${evidence} (${JSON.stringify(r.evidence)})`);
        return evidence;
      };
      const origin = mesh.istioVersion ? { controlPlane: mesh.controlPlane, istioVersion: mesh.istioVersion } : { controlPlane: mesh.controlPlane };
      const path = (id: string, client: string, server: string, procs: ProcRef[], want: Verdict): LoadPath => {
        const c = catalogPath(id)!;
        return {
          id,
          letter: c.letter,
          description: c.description,
          host: cluster,
          client: `default/${client}`,
          target: `http://${server}:${PORT}`,
          ...(id === BASELINE ? { controlPlane: 'none' } : origin),
          procs,
          verify: () => verify(id, `default/${client}`, server, want),
        };
      };
      const paths = [
        path(BASELINE, 'sleep-naked', 'echo-naked', [app('default/echo-naked')], 'allowed:plaintext'),
        path('istio-mtls', 'sleep', 'echo', [sidecar('default/sleep', 'client-sidecar'), sidecar('default/echo', 'server-sidecar'), app('default/echo')], 'allowed:mtls'),
        path(
          'istio-permissive-plaintext',
          'sleep',
          'echo-permissive',
          [sidecar('default/sleep', 'client-sidecar'), sidecar('default/echo-permissive', 'server-sidecar'), app('default/echo-permissive')],
          'allowed:plaintext',
        ),
      ];
      return { profile: 'istio', paths, runId: cluster.runId, runDir: cluster.runDir, down: () => mesh.down() };
    } catch (e) {
      await mesh.down();
      throw e;
    }
  },
};
