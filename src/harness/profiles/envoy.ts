// What every profile does with a rendered Envoy config: run it in a pod, and read its counters.
// The process itself is started by the substrate; this only describes it.
import { resolveEnvoy } from '../cli/doctor.ts';
import type { Cluster } from '../substrate/types.ts';
import type { ContainerSpec } from '../substrate/types.ts';

/** The Envoy binary of `version`, else of MESHPROOF_ENVOY_VERSION (set by `meshproof run`), else the default; throws naming the fix when missing. */
export function envoyBinary(version?: string): string {
  return resolveEnvoy(version ?? process.env.MESHPROOF_ENVOY_VERSION ?? undefined).bin;
}

/**
 * The container running Envoy on `configFile` in a pod: one worker, no hot restart (several
 * Envoys share a host), ready when its admin API answers /ready on `adminPort`.
 */
export function envoyContainer(bin: string, configFile: string, adminPort: number, o: { name: string; uid?: number; gid?: number }): ContainerSpec {
  const spec: ContainerSpec = {
    name: o.name,
    command: [bin, '-c', configFile, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warning'],
    ready: { kind: 'http', port: adminPort, path: '/ready' },
  };
  if (o.uid !== undefined) spec.uid = o.uid;
  if (o.gid !== undefined) spec.gid = o.gid;
  return spec;
}

/** The sum of the counters whose name matches, from the admin API of the Envoy in `pod` (read from inside the pod). */
export async function envoyStat(cluster: Cluster, pod: string, adminPort: number, name: RegExp): Promise<number> {
  const r = await cluster.probe(pod, { protocol: 'http', host: '127.0.0.1', port: adminPort, path: '/stats?format=json', bodyLimit: 1 << 20 }, { wire: false });
  const stats = (JSON.parse(r.evidence.body ?? '{"stats":[]}') as { stats: { name: string; value?: number }[] }).stats;
  return stats.filter((s) => name.test(s.name)).reduce((n, s) => n + (s.value ?? 0), 0);
}
