// meshproof's NetworkPolicy engine, the API half: the node agent calls syncNetworkPolicies on every reconcile; it lists
// NetworkPolicies and Namespaces from the API (the pods it is given), puts them in the renderer's shape
// (dataplane/iptables/network-policy.ts) and hands them to the Cluster port (applyNetworkPolicy), which enforces them
// between the pods the substrate's own way and changes nothing when the input is the one it last applied.
import { CoreV1Api, NetworkingV1Api, type KubeConfig, type V1NetworkPolicy, type V1Pod } from '@kubernetes/client-node';
import type { Cluster } from '../substrate/types.ts';
import type { NetworkPolicy, NetworkPolicyInput, PolicyPod } from '../dataplane/iptables/network-policy.ts';

/** resourceVersions of the NetworkPolicies a cluster's rules were last rendered from. */
const versions = new WeakMap<Cluster, string[]>();

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
  await cluster.applyNetworkPolicy(input);
  versions.set(cluster, nps.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}@${p.metadata?.resourceVersion}`).sort());
}

/** `<ns>/<name>@<resourceVersion>` of the NetworkPolicies the node's rules were last rendered from. */
export function appliedNetworkPolicies(cluster: Cluster): string[] {
  return [...(versions.get(cluster) ?? [])];
}
