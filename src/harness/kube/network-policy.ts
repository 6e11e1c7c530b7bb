// meshproof's NetworkPolicy engine, the I/O half: the node agent calls syncNetworkPolicies on every reconcile; it lists
// NetworkPolicies and Namespaces from the API (the pods it is given), renders them (dataplane/iptables/network-policy.ts)
// and applies the text in the node namespace with `iptables-restore --noflush`, only when the input changed. Calls for
// one cluster are serialised: the node agent's and a suite's (after applying policies, so that it need not wait for the
// next relist) never interleave their save/restore.
import { CoreV1Api, NetworkingV1Api, type KubeConfig, type V1NetworkPolicy, type V1Pod } from '@kubernetes/client-node';
import type { Cluster } from '../substrate/types.ts';
import { netnsCluster } from '../substrate/index.ts';
import { run } from '../substrate/sh.ts';
import { currentRules, renderNetworkPolicy, type NetworkPolicy, type NetworkPolicyInput, type PolicyPod } from '../dataplane/iptables/network-policy.ts';

interface EngineState {
  queue: Promise<unknown>;
  /** The input last applied (JSON): the same input is not applied again. */
  applied?: string;
  /** resourceVersions of the NetworkPolicies last applied. */
  versions: string[];
}

const states = new WeakMap<Cluster, EngineState>();

function stateOf(cluster: Cluster): EngineState {
  let s = states.get(cluster);
  if (!s) states.set(cluster, (s = { queue: Promise.resolve(), versions: [] }));
  return s;
}

function serialised<T>(cluster: Cluster, job: () => Promise<T>): Promise<T> {
  const s = stateOf(cluster);
  const next = s.queue.then(job, job);
  s.queue = next.catch(() => undefined);
  return next;
}

/** Renders and applies the input in the cluster's node namespace (idempotent). Resolves true when rules changed. */
export function applyNetworkPolicies(cluster: Cluster, input: NetworkPolicyInput): Promise<boolean> {
  return serialised(cluster, () => applyNow(cluster, input));
}

async function applyNow(cluster: Cluster, input: NetworkPolicyInput): Promise<boolean> {
  const s = stateOf(cluster);
  const key = JSON.stringify(input);
  if (s.applied === key) return false;
  // node-level: the rules go into the netns run's node namespace, which routes between the pods
  const node = ['ip', 'netns', 'exec', netnsCluster(cluster, 'the NetworkPolicy engine (iptables in the node namespace)').nodeNetns];
  const text = renderNetworkPolicy(input, currentRules(await run([...node, 'iptables-save', '-t', 'filter'])));
  await run([...node, 'iptables-restore', '--noflush'], { input: text });
  s.applied = key;
  return true;
}

/** The API's NetworkPolicy in the renderer's shape (client-node types every field optional). */
export function toNetworkPolicy(p: V1NetworkPolicy): NetworkPolicy {
  const spec = p.spec ?? {};
  const ports = (list: { protocol?: string; port?: number | string; endPort?: number }[] | undefined) =>
    list?.map((x) => ({ ...(x.protocol ? { protocol: x.protocol } : {}), ...(x.port !== undefined ? { port: x.port } : {}), ...(x.endPort !== undefined ? { endPort: x.endPort } : {}) }));
  return {
    metadata: { name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? 'default' },
    spec: {
      podSelector: spec.podSelector ?? {},
      ...(spec.policyTypes ? { policyTypes: spec.policyTypes } : {}),
      ...(spec.ingress ? { ingress: spec.ingress.map((r) => ({ ...(r._from ? { from: r._from } : {}), ...(r.ports ? { ports: ports(r.ports) } : {}) })) } : {}),
      ...(spec.egress ? { egress: spec.egress.map((r) => ({ ...(r.to ? { to: r.to } : {}), ...(r.ports ? { ports: ports(r.ports) } : {}) })) } : {}),
    },
  };
}

/** A running Pod with an address, in the renderer's shape; null for one without an address or finished. */
export function toPolicyPod(p: V1Pod): PolicyPod | null {
  const ip = p.status?.podIP;
  if (!ip || ['Succeeded', 'Failed'].includes(p.status?.phase ?? '')) return null;
  const ports = (p.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((cp) => ({ ...(cp.name ? { name: cp.name } : {}), containerPort: cp.containerPort, ...(cp.protocol ? { protocol: cp.protocol } : {}) })));
  return { namespace: p.metadata?.namespace ?? 'default', name: p.metadata?.name ?? '', ip, labels: { ...(p.metadata?.labels ?? {}) }, ports };
}

/**
 * Lists NetworkPolicies and Namespaces (and Pods, unless given) and applies what they say on the node. Resolves once
 * the rules reflect that listing; a caller that just applied policies can await it instead of the next reconcile.
 */
export async function syncNetworkPolicies(kc: KubeConfig, cluster: Cluster, pods?: V1Pod[]): Promise<void> {
  const networking = kc.makeApiClient(NetworkingV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const [nps, nss, podList] = await Promise.all([
    networking.listNetworkPolicyForAllNamespaces({}),
    core.listNamespace({}),
    pods ? Promise.resolve(pods) : core.listPodForAllNamespaces({}).then((l) => l.items),
  ]);
  const input: NetworkPolicyInput = {
    policies: nps.items.map(toNetworkPolicy),
    pods: podList.map(toPolicyPod).filter((p): p is PolicyPod => p !== null),
    namespaces: nss.items.map((n) => ({ name: n.metadata?.name ?? '', labels: { ...(n.metadata?.labels ?? {}) } })),
  };
  await applyNetworkPolicies(cluster, input);
  stateOf(cluster).versions = nps.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}@${p.metadata?.resourceVersion}`).sort();
}

/** `<ns>/<name>@<resourceVersion>` of the NetworkPolicies the node's rules were last rendered from. */
export function appliedNetworkPolicies(cluster: Cluster): string[] {
  return [...stateOf(cluster).versions];
}
