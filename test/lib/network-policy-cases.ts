// Cyclonus-style NetworkPolicy cases (mattfenwick/cyclonus: namespaces x and y, pods a, b, c, ports 80 and 81),
// written by hand from the NetworkPolicy concept page and API reference: for each set of policies, the (from, to, port)
// cells that are denied; every other cell is allowed. Shared by the unit test (test/network-policy.spec.ts: the
// renderer's semantics) and the integration test (test/integration/network-policy.spec.ts: the kernel, live).
import type { NetworkPolicy, PolicyNamespace } from '../../src/harness/dataplane/iptables/network-policy.ts';

export const NP_PODS = [
  // a's ports are named, for the named-port case
  { namespace: 'x', name: 'a', labels: { pod: 'a' }, ports: [{ name: 'http', containerPort: 80 }, { name: 'metrics', containerPort: 81 }] },
  { namespace: 'x', name: 'b', labels: { pod: 'b' }, ports: [{ containerPort: 80 }, { containerPort: 81 }] },
  { namespace: 'y', name: 'c', labels: { pod: 'c' }, ports: [{ containerPort: 80 }, { containerPort: 81 }] },
] as const;

export const NP_NAMESPACES: PolicyNamespace[] = [
  // the API server labels every namespace with its name (kubernetes.io/metadata.name)
  { name: 'x', labels: { ns: 'x', 'kubernetes.io/metadata.name': 'x' } },
  { name: 'y', labels: { ns: 'y', 'kubernetes.io/metadata.name': 'y' } },
];

export const NP_PORTS = [80, 81] as const;

/** `x/a→y/c:80` */
export type CellKey = string;
export const cellKey = (from: string, to: string, port: number): CellKey => `${from}→${to}:${port}`;

/** Every (from, to, port) with from ≠ to: 3 × 2 × 2 = 12 cells. */
export function allCells(): { from: string; to: string; port: number }[] {
  const keys = NP_PODS.map((p) => `${p.namespace}/${p.name}`);
  return keys.flatMap((from) => keys.filter((to) => to !== from).flatMap((to) => NP_PORTS.map((port) => ({ from, to, port }))));
}

export interface NpCase {
  name: string;
  /** The policies, given each pod's address (an ipBlock names one). */
  policies: (ip: (pod: string) => string) => NetworkPolicy[];
  denied: CellKey[];
}

const np = (namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({ metadata: { namespace, name }, spec });

export const NP_CASES: NpCase[] = [
  { name: 'no policy: everything allowed', policies: () => [], denied: [] },
  {
    name: 'deny-all ingress in x (podSelector {}, policyTypes [Ingress], no rules)',
    policies: () => [np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] })],
    denied: ['x/b→x/a:80', 'x/b→x/a:81', 'y/c→x/a:80', 'y/c→x/a:81', 'x/a→x/b:80', 'x/a→x/b:81', 'y/c→x/b:80', 'y/c→x/b:81'],
  },
  {
    name: 'allow-from-same-namespace in x (ingress from podSelector {})',
    policies: () => [np('x', 'allow-same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })],
    denied: ['y/c→x/a:80', 'y/c→x/a:81', 'y/c→x/b:80', 'y/c→x/b:81'],
  },
  {
    name: 'allow x/a from the namespace labelled ns=y only',
    policies: () => [np('x', 'allow-a-from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
    denied: ['x/b→x/a:80', 'x/b→x/a:81'],
  },
  {
    name: 'port-specific: x/a accepts port 80 from anyone, nothing else',
    policies: () => [np('x', 'a-port-80', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] })],
    denied: ['x/b→x/a:81', 'y/c→x/a:81'],
  },
  {
    name: "named port: x/a accepts its port named metrics (81) only",
    policies: () => [np('x', 'a-metrics', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 'metrics' }] }] })],
    denied: ['x/b→x/a:80', 'y/c→x/a:80'],
  },
  {
    name: 'endPort: x/a accepts 81-90',
    policies: () => [np('x', 'a-range', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 81, endPort: 90 }] }] })],
    denied: ['x/b→x/a:80', 'y/c→x/a:80'],
  },
  {
    name: 'ipBlock 10.244.0.0/16 except x/b into x/a',
    policies: (ip) => [np('x', 'a-ipblock', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${ip('x/b')}/32`] } }] }] })],
    denied: ['x/b→x/a:80', 'x/b→x/a:81'],
  },
  {
    name: 'one peer with namespaceSelector AND podSelector into y/c: only x/a',
    policies: () => [np('y', 'c-from-x-a', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] })],
    denied: ['x/b→y/c:80', 'x/b→y/c:81'],
  },
  {
    name: 'two peers (namespace x OR pod a of y) into y/c: all of x',
    policies: () => [np('y', 'c-from-x-or-a', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }, { podSelector: { matchLabels: { pod: 'a' } } }] }] })],
    denied: [],
  },
  {
    name: 'deny-all egress from y (policyTypes [Egress]): replies to x still flow',
    policies: () => [np('y', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })],
    denied: ['y/c→x/a:80', 'y/c→x/a:81', 'y/c→x/b:80', 'y/c→x/b:81'],
  },
  {
    // policyTypes left out: defaulted to Ingress and Egress (it has egress rules), so y/c also takes no ingress
    name: 'y/c with egress to x/a port 80 only and no policyTypes: no ingress either',
    policies: () => [np('y', 'c-egress', { podSelector: { matchLabels: { pod: 'c' } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 80 }] }] })],
    denied: ['y/c→x/a:81', 'y/c→x/b:80', 'y/c→x/b:81', 'x/a→y/c:80', 'x/a→y/c:81', 'x/b→y/c:80', 'x/b→y/c:81'],
  },
  {
    name: 'matchExpressions pod NotIn [a]: deny-all ingress isolates x/b only',
    policies: () => [np('x', 'deny-not-a', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a'] }] }, policyTypes: ['Ingress'] })],
    denied: ['x/a→x/b:80', 'x/a→x/b:81', 'y/c→x/b:80', 'y/c→x/b:81'],
  },
  {
    name: 'two policies select x/a: their rules add up (80 from x, 81 from y)',
    policies: () => [
      np('x', 'a-80-from-x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80 }] }] }),
      np('x', 'a-81-from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }], ports: [{ port: 81 }] }] }),
    ],
    denied: ['x/b→x/a:81', 'y/c→x/a:80'],
  },
];
