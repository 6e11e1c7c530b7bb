// Pure: what the node agent does with a Pod object, as a kubelet would — which program an image
// maps to, the environment (downward API, $(VAR) expansion), uid/gid and capabilities, probes.
// No I/O here: node-agent.ts materialises the result on the substrate.
import type { V1Container, V1EnvVar, V1Pod, V1Probe } from '@kubernetes/client-node';
import { istioEchoPort } from '../workloads/istio-echo.ts';

/** The cached binaries images map to. */
export interface ImageBinaries {
  pilotAgent: string;
  pilotDiscovery: string;
  envoy: string;
}

/** One process a container runs: a binary, a meshproof workload, or nothing to do (a client image: the probe agent calls). */
export type Program =
  | { kind: 'binary'; argv: string[]; what: string }
  | { kind: 'workload'; workload: string; args: string[]; what: string }
  | { kind: 'idle'; what: string };

/** A container that maps to nothing: a Pod status with this reason, never a silent skip. */
export class UnmappedImage extends Error {
  readonly reason = 'ImageNotMapped';
}

const IMAGE = {
  // Istio's proxy image: pilot-agent, which runs Envoy (tools/packaging: /usr/local/bin/pilot-agent is its entrypoint)
  proxyv2: /(^|\/)proxyv2(:|@|$)/,
  // istiod's image: pilot-discovery is its entrypoint
  pilot: /(^|\/)pilot(:|@|$)/,
  // the workshop's app (michaelvl/istio-katas), one image for every SENTENCE_MODE
  sentences: /istio-katas|sentences/,
  // Istio's test echo app (pkg/test/framework/components/echo)
  echo: /(^|\/)istio-testing\/app(:|@|$)/,
  // clients whose only job here is to be a pod the probe agent calls from (samples/sleep)
  client: /(^|\/)(curl|sleep|netshoot|busybox)(:|@|$)|curlimages\/curl/,
};

/** The image table, in one line each, for errors and the README. */
export const IMAGE_TABLE = [
  '*/proxyv2 → the cached pilot-agent (with the cached Envoy as its binaryPath)',
  '*/pilot → the cached pilot-discovery',
  'istio-katas|sentences → meshproof sentences (SENTENCE_MODE)',
  'istio-testing/app → meshproof echo, one server per containerPort',
  'curl, curlimages/curl, sleep, busybox, netshoot → idle (the probe agent is the client)',
];

/** The process(es) one container runs. Throws UnmappedImage for an image meshproof cannot run. */
export function programsOf(c: V1Container, env: Record<string, string>, bins: ImageBinaries, workloadId = ''): Program[] {
  const image = c.image ?? '';
  const args = (c.args ?? []).map((a) => expand(a, env));
  const command = (c.command ?? []).map((a) => expand(a, env));
  // command replaces the image's entrypoint, which for the Istio images is the binary itself: its first word names
  // the binary, the rest are arguments before args
  const rest = [...command.slice(1), ...args];
  if (IMAGE.proxyv2.test(image)) return [{ kind: 'binary', argv: [bins.pilotAgent, ...rest], what: 'pilot-agent' }];
  if (IMAGE.pilot.test(image)) return [{ kind: 'binary', argv: [bins.pilotDiscovery, ...rest], what: 'pilot-discovery' }];
  if (IMAGE.echo.test(image)) {
    const ports = c.ports ?? [];
    if (ports.length === 0) throw new UnmappedImage(`container ${c.name}: the echo app needs ports`);
    // the program of each port by its name, as profiles/istio/policy.ts runs it (workloads/istio-echo.ts)
    return ports.map(({ containerPort: port, name }): Program => {
      const p = istioEchoPort(port, name, workloadId || c.name);
      return { kind: 'workload', ...p, what: `${p.workload === 'echo' ? 'echo' : p.args.includes('--server-first') ? 'server-first tcp echo' : 'tcp echo'} :${port}` };
    });
  }
  if (IMAGE.sentences.test(image) || 'SENTENCE_MODE' in env) return [{ kind: 'workload', workload: 'sentences', args: ['--port', '5000'], what: 'sentences' }];
  if (IMAGE.client.test(image)) return [{ kind: 'idle', what: 'idle client' }];
  throw new UnmappedImage(`container ${c.name}: image ${JSON.stringify(image)} maps to no program (meshproof runs: ${IMAGE_TABLE.join('; ')})`);
}

/** pilot-agent reads ProxyConfig from PROXY_CONFIG (JSON); binaryPath points it at the cached Envoy. */
export function withEnvoyBinary(env: Record<string, string>, envoy: string): Record<string, string> {
  let cfg: Record<string, unknown> = {};
  if (env.PROXY_CONFIG) {
    try {
      cfg = JSON.parse(env.PROXY_CONFIG) as Record<string, unknown>;
    } catch {
      cfg = {};
    }
  }
  return { ...env, PROXY_CONFIG: JSON.stringify({ ...cfg, binaryPath: envoy }) };
}

/** Kubernetes' $(VAR) expansion in command, args and env values; $$ escapes, unknown names stay as written. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m));
}

export interface NodeFacts {
  nodeName: string;
  hostIP: string;
  /** Allocatable CPU cores and memory bytes: what resourceFieldRef gives for a container without limits. */
  cpu: number;
  memory: number;
}

/** A container's environment as kubelet builds it: service env first, then env in order (later entries may use earlier ones). */
export function containerEnv(c: V1Container, pod: V1Pod, podIP: string, node: NodeFacts, serviceEnv: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...serviceEnv };
  for (const e of c.env ?? []) out[e.name] = envValue(e, c, pod, podIP, node, out);
  return out;
}

function envValue(e: V1EnvVar, c: V1Container, pod: V1Pod, podIP: string, node: NodeFacts, sofar: Record<string, string>): string {
  if (e.value !== undefined) return expand(e.value, sofar);
  const f = e.valueFrom?.fieldRef?.fieldPath;
  if (f) return fieldRef(f, pod, podIP, node);
  const r = e.valueFrom?.resourceFieldRef;
  if (r) {
    const target = r.containerName ? [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((x) => x.name === r.containerName) ?? c : c;
    return resourceRef(r.resource, target, node, r.divisor);
  }
  // configMapKeyRef / secretKeyRef: not used by the images meshproof runs; an empty value, as for an optional key
  return '';
}

/** The downward API's fieldRef paths (kubelet pkg/fieldpath). */
export function fieldRef(path: string, pod: V1Pod, podIP: string, node: NodeFacts): string {
  const m = pod.metadata ?? {};
  const sub = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (sub) return (sub[1] === 'labels' ? m.labels : m.annotations)?.[sub[2]!] ?? '';
  switch (path) {
    case 'metadata.name': return m.name ?? '';
    case 'metadata.namespace': return m.namespace ?? '';
    case 'metadata.uid': return m.uid ?? '';
    case 'spec.nodeName': return pod.spec?.nodeName ?? node.nodeName;
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP': case 'status.podIPs': return podIP;
    case 'status.hostIP': case 'status.hostIPs': return node.hostIP;
    case 'metadata.labels': return formatMap(m.labels);
    case 'metadata.annotations': return formatMap(m.annotations);
    default: return '';
  }
}

/** Downward API map files: `key="value"` lines sorted by key (kubelet fieldpath.FormatMap). */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${JSON.stringify(m![k])}`).join('\n');
}

function quantity(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q));
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, K: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return unit[m[2]!] !== undefined ? n * unit[m[2]!]! : undefined;
}

/** resourceFieldRef: a limit, else the node's allocatable; divided by the divisor and rounded up (kubelet resource.go). */
export function resourceRef(resource: string, c: V1Container, node: NodeFacts, divisor?: string): string {
  const [kind, what] = resource.split('.') as [string, string];
  const set = (kind === 'limits' ? c.resources?.limits : c.resources?.requests) as Record<string, string> | undefined;
  const raw = quantity(set?.[what]) ?? (what === 'cpu' ? node.cpu : what === 'memory' ? node.memory : 0);
  const div = quantity(divisor) || 1;
  return String(Math.max(1, Math.ceil(raw / div)));
}

/** The USER an image runs as when the spec names none: Istio's images are built `USER 1337:1337` (pilot/docker/Dockerfile.pilot). */
export function imageUser(image: string | undefined): number {
  return IMAGE.pilot.test(image ?? '') || IMAGE.proxyv2.test(image ?? '') ? 1337 : 0;
}

/** uid, gid and added capabilities: the container's securityContext over the pod's over the image's USER (kubelet's order). */
export function identityOf(c: V1Container, pod: V1Pod): { uid: number; gid: number; caps: string[]; fsGroup?: number } {
  const ps = pod.spec?.securityContext ?? {};
  const cs = c.securityContext ?? {};
  const uid = cs.runAsUser ?? ps.runAsUser ?? imageUser(c.image);
  const gid = cs.runAsGroup ?? ps.runAsGroup ?? uid;
  const caps = (cs.capabilities?.add ?? []).map((x) => x.toLowerCase().replace(/^cap_/, ''));
  return { uid, gid, caps, ...(ps.fsGroup !== undefined ? { fsGroup: ps.fsGroup } : {}) };
}

/** A probe as the node agent runs it from inside the pod, with named ports resolved against the container's ports. */
export type ProbeCheck = { kind: 'http'; host: string; port: number; path: string } | { kind: 'tcp'; host: string; port: number } | { kind: 'exec'; command: string[] };

export function probeCheck(p: V1Probe | undefined, c: V1Container, podIP: string): ProbeCheck | null {
  if (!p) return null;
  const port = (v: number | string | undefined): number => {
    if (typeof v === 'number') return v;
    const named = (c.ports ?? []).find((x) => x.name === v)?.containerPort;
    if (named !== undefined) return named;
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
    throw new UnmappedImage(`container ${c.name}: probe port ${JSON.stringify(v)} names no containerPort`);
  };
  if (p.httpGet) return { kind: 'http', host: p.httpGet.host || podIP, port: port(p.httpGet.port), path: p.httpGet.path ?? '/' };
  if (p.tcpSocket) return { kind: 'tcp', host: p.tcpSocket.host || podIP, port: port(p.tcpSocket.port) };
  if (p.exec?.command?.length) return { kind: 'exec', command: p.exec.command };
  return null;
}

/** The Deployment a ReplicaSet's pod belongs to: its generateName minus `<pod-template-hash>-`. */
export function ownerAppName(pod: V1Pod): string | undefined {
  const gen = pod.metadata?.generateName;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (gen && hash && gen.endsWith(`-${hash}-`)) return gen.slice(0, -(hash.length + 2));
  return undefined;
}

/** Kubernetes' service environment variables (pkg/kubelet/envvars): `<NAME>_SERVICE_HOST` / `_PORT` for each service of the pod's namespace. */
export function serviceEnv(services: { name: string; namespace: string; clusterIP: string; ports: { name?: string; port: number }[] }[], namespace: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of services.filter((x) => x.namespace === namespace || (x.namespace === 'default' && x.name === 'kubernetes'))) {
    if (!s.clusterIP || s.clusterIP === 'None' || s.ports.length === 0) continue;
    const n = s.name.toUpperCase().replace(/-/g, '_');
    out[`${n}_SERVICE_HOST`] = s.clusterIP;
    out[`${n}_SERVICE_PORT`] = String(s.ports[0]!.port);
    for (const p of s.ports) if (p.name) out[`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
  }
  return out;
}
