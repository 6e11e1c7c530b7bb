// The cf-for-k8s profile's thin driver, on the Istio profile and a real istiod: the Istio model of the platform's
// workloads (fixtures/cf-for-k8s/platform, read by the Istio profile's loader), the objects each step of the truth
// table applies beside it (Sidecar, NetworkPolicy, ServiceEntry, DestinationRule: given to the API server as YAML),
// the server outside the platform, and the planner through which the one truth-table runner (matrix/istio.ts) probes
// and records every cell with cf-for-k8s's oracle.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseObjects } from '../../kube/apply.ts';
import { UserError } from '../../model/errors.ts';
import { loadIstio, type IstioModel } from '../istio/resources.ts';
import type { CellPlanner } from '../../matrix/istio.ts';
import type { TruthRow } from '../istio/truth.ts';
import type { Cluster } from '../../substrate/types.ts';
import type { ContainerSpec, PodSpec } from '../../substrate/types.ts';
import type { ProbeRequest, ProbeResult } from '../../probe/types.ts';
import { expectCf } from '../../model/cf-for-k8s/oracle.ts';
import { curlResult } from '../../model/cf-for-k8s/curl.ts';
import { cellOf, destinationOf, type CfRow, type CfStep, type CfTruth } from './truth.ts';

export const FIXTURE_DIR = 'fixtures/cf-for-k8s';
export const PROFILE = 'cf-for-k8s';
/** A call's budget unless its row says otherwise: an answer, or a silent drop seen as one. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** uid of the istio-proxy container (Istio's proxy image runs as 1337; istio-iptables lets its traffic out uncaptured). */
export const PROXY_UID = 1337;

/**
 * The Istio model (the Istio profile reads it): `system` is the namespaces and the system components, as cf-for-k8s
 * installs the platform before anyone pushes an app; `all` adds the ingress gateway (once its Gateway exists: a
 * gateway proxy with no Gateway has no routes to ACK), the mesh-wide PeerAuthentication and the apps.
 */
export function platformModel(truth: CfTruth, part: 'system' | 'all'): IstioModel {
  const system = ['namespaces.yaml', 'system.yaml'];
  const files = part === 'all' ? [...system, 'ingressgateway.yaml', 'peer-authentication.yaml', 'apps.yaml'] : system;
  return loadIstio(files.map((f) => join(truth.fixture, f)));
}

/** The objects of a step's files, `((name))` replaced by the run's values (a name without a value is refused). */
export function stepObjects(step: CfStep, vars: Record<string, string>, dir = FIXTURE_DIR): KubernetesObject[] {
  return step.apply.flatMap((f) => {
    const path = join(dir, f);
    const text = readFileSync(path, 'utf8').replace(/\(\(([^()\s]*)\)\)/g, (_m, name: string) => {
      const v = vars[name];
      if (v === undefined) throw new UserError(`${path}: ((${name})) has no value in this run (known: ${Object.keys(vars).join(', ') || 'none'})`);
      return v;
    });
    return parseObjects(text, path);
  });
}

/**
 * The server outside the platform: a pod of the substrate that no Kubernetes API knows (no namespace object, no
 * labels a policy could select, no sidecar), answering plain HTTP on 8080 and TLS on 8443 with a certificate for
 * external.example.com, under every name an external target of the table uses.
 */
export function outsidePod(truth: CfTruth, tls: { cert: string; key: string }): { spec: PodSpec; containers: ContainerSpec[] } {
  const [namespace, name] = splitPod(Object.values(truth.callers).find((c) => c.category === 'External')?.pod ?? 'external/outside');
  const external = Object.values(truth.targets).filter((t) => t.category === 'External');
  // port → whether it serves TLS
  const ports = new Map<number, boolean>();
  for (const t of external) ports.set(t.port, (ports.get(t.port) ?? false) || t.tls !== undefined);
  return {
    spec: { name, namespace, hostAliases: [...new Set(external.map((t) => t.host))] },
    containers: [...ports].map(([port, isTls]): ContainerSpec => ({
      name: `echo-${port}`,
      workload: 'echo',
      args: ['--port', String(port), ...(isTls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : [])],
      ready: { kind: 'tcp', port },
    })),
  };
}

function splitPod(ref: string): [string, string] {
  const [ns, name] = ref.split('/');
  if (!ns || !name) throw new UserError(`cf-for-k8s truth: pod ${JSON.stringify(ref)} must be <namespace>/<name>`);
  return [ns, name];
}

/** `cluster.<name>.<counter>` → a matcher that also takes istiod's `;` after the cluster name (its stats tag delimiter). */
export function clusterStat(stat: string): RegExp {
  const m = /^cluster\.(.+)\.([a-z_]+)$/.exec(stat);
  if (!m) throw new UserError(`cf-for-k8s truth: stat ${JSON.stringify(stat)} is not cluster.<name>.<counter>`);
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^cluster\\.${esc(m[1]!)};?\\.${esc(m[2]!)}$`);
}

/**
 * The planner for one step: calls, oracle, evidence checks and record fields per row. `operatorCa` is the CA file a
 * client outside the platform checks the ingress gateway's wildcard certificates with.
 */
export function cfPlanner(cluster: Cluster, truth: CfTruth, step: CfStep, rowOf: Map<TruthRow, CfRow>, operatorCa: string): CellPlanner {
  const cf = (row: TruthRow): CfRow => {
    const r = rowOf.get(row);
    if (!r) throw new Error(`cf-for-k8s: a runner row (${row.from} → ${row.to}) that is not the step's`);
    return r;
  };
  /** The Deployment of the pod that answered (kube pods are `<deployment>-<hash>-<id>`), or the outside pod's name. */
  const deploymentOf = (servedBy: string | null | undefined): string | null => {
    if (!servedBy) return null;
    try {
      const pod = cluster.pod(servedBy);
      return pod.spec.aliases?.[0] ?? pod.spec.name;
    } catch {
      return servedBy;
    }
  };
  return {
    profile: PROFILE,
    plan(row) {
      const r = cf(row);
      const from = truth.callers[r.from]!;
      const to = destinationOf(truth, r);
      const req: ProbeRequest = { protocol: 'http', host: to.host, port: to.port, path: r.path ?? '/headers', timeoutMs: r.timeoutMs ?? DEFAULT_TIMEOUT_MS };
      // through the ingress gateway: `curl --resolve <route>:443:<gateway> --cacert <operator CA> https://<route>/…`
      if (to.route) Object.assign(req, { protocol: 'https', headers: { host: to.route }, tls: { ca: operatorCa, servername: to.route } });
      return { from: from.pod, req, oracle: expectCf(cellOf(truth, step, r)).verdict, caller: r.client && r.client !== 'plaintext' ? `${r.from}/${r.client}` : r.from };
    },
    call(row, req, fromPod) {
      const r = cf(row);
      if (truth.callers[r.from]!.caller !== 'proxy-container') return undefined;
      return proxyContainerCurl(cluster, fromPod, req, r.client === 'tls-no-cert');
    },
    refine(row, result) {
      // TLS the caller's sidecar originated: the app's own call is plaintext to its sidecar; the server outside says it
      // terminated TLS for the name the DestinationRule set (echo body `Sni=`)
      const to = truth.targets[cf(row).to]!;
      if (to.tls && cf(row).via !== 'ingress-gateway' && result.verdict === 'allowed:plaintext' && new RegExp(`^Sni=${to.host.replace(/\./g, '\\.')}$`, 'm').test(result.evidence.body ?? '')) return { ...result, verdict: 'allowed:tls', observed: 'allowed' };
      return result;
    },
    check(row, result) {
      const r = cf(row);
      const problems: string[] = [];
      if (r.peer !== undefined && result.evidence.peer !== r.peer) problems.push(`the server saw caller ${result.evidence.peer}, not ${r.peer}`);
      for (const b of r.body ?? []) if (!(result.evidence.body ?? '').includes(b)) problems.push(`the body does not say "${b}": ${JSON.stringify(result.evidence.body)}`);
      for (const x of r.xfcc ?? []) if (!(result.evidence.xfcc ?? '').includes(x)) problems.push(`the server's XFCC does not hold "${x}": ${JSON.stringify(result.evidence.xfcc)}`);
      const answeredBy = truth.targets[r.to]!.answeredBy;
      if (result.observed === 'allowed' && answeredBy !== undefined && deploymentOf(result.evidence.servedBy) !== answeredBy) problems.push(`answered by ${result.evidence.servedBy}, not ${answeredBy}`);
      return problems;
    },
    annotate(row) {
      const r = cf(row);
      return { step: step.name, adr: `${truth.callers[r.from]!.category} → ${truth.targets[r.to]!.category}`, via: r.via ?? 'direct', enforcedBy: r.enforcedBy, cite: r.cite };
    },
  };
}

/** mtls_test.go's curl in the istio-proxy container: as its uid, so the pod's own iptables let it out uncaptured. */
async function proxyContainerCurl(cluster: Cluster, pod: string, req: ProbeRequest, https: boolean): Promise<ProbeResult> {
  const seconds = Math.max(1, Math.ceil((req.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000));
  const url = `${https ? 'https' : 'http'}://${req.host}:${req.port}${req.path ?? '/'}`;
  // -v: the TLS trace tells a refused client certificate from a reset (curl-verdict's rules)
  const argv = ['curl', '--silent', '--show-error', '--verbose', '--max-time', String(seconds), '--output', '/dev/null', '--write-out', '%{http_code}', ...(https ? ['-k'] : []), url];
  const t0 = Date.now();
  const r = await cluster.exec(pod, argv, { uid: PROXY_UID, timeoutMs: (seconds + 5) * 1000 });
  return curlResult({ code: r.code, stderr: r.stderr, httpCode: Number(r.stdout.trim()) || 0, https, ms: Date.now() - t0 });
}
