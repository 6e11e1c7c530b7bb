// Kubernetes NetworkPolicy (networking.k8s.io/v1) as iptables rules for the node namespace's FORWARD path, where
// every pod-to-pod packet passes after the service VIP DNAT of PREROUTING: rules match pod IPs, never VIPs. Pure:
// policies, pods and namespaces in, iptables-restore text out. Semantics from the API reference and the
// "Network Policies" concept page (kubernetes.io/docs/concepts/services-networking/network-policies):
// - a pod is isolated for ingress (egress) when a policy of its namespace selects it with Ingress (Egress) among its
//   policyTypes; an isolated pod accepts (sends) only what some rule of some selecting policy allows, the union;
// - a rule without `from`/`to` allows every peer, without `ports` every port; a peer's podSelector alone means pods
//   of the policy's namespace, namespaceSelector alone every pod of those namespaces, both together pods matching
//   both, ipBlock a CIDR minus its `except`; an empty selector selects everything;
// - policyTypes left empty default to Ingress, plus Egress when the policy has egress rules (the API server's
//   SetDefaults_NetworkPolicy); a named port resolves against the pod's container ports (the destination's for
//   ingress, each peer pod's for egress; an ipBlock or any-peer egress rule with a named port allows nothing here);
// - replies of an allowed connection pass (conntrack ESTABLISHED,RELATED), and a denied packet is dropped in silence
//   (as Calico and Cilium do by default), so a naked caller sees a timeout.
// Traffic from a pod's node is never filtered: the node's own packets (API server, kubelet-like probes) take OUTPUT
// and INPUT, not FORWARD; this node agent probes readiness from inside the pod, which never leaves it.
//
// Rule layout (filter table; chains are recreated by declaring them, so applying again replaces them):
//   FORWARD  -j MP-NETPOL                                   (inserted first, once)
//   MP-NETPOL  ESTABLISHED,RELATED → ACCEPT; clear the two mark bits;
//              per egress-isolated pod:  -s <ip> → MP-NP-E-<ip>;  -s <ip> without the egress bit → DROP
//              per ingress-isolated pod: -d <ip> → MP-NP-I-<ip>;  -d <ip> without the ingress bit → DROP
//   MP-NP-I-<ip>  one MARK rule per allowed (peer, port): sets the ingress bit (an ipBlock with `except` jumps to a
//                 sub-chain that RETURNs for each excepted range first)
// Marks rather than ACCEPT, so that one packet is checked against its source's egress and its destination's ingress.

export type Labels = Record<string, string>;

/** metav1.LabelSelector. */
export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface NetworkPolicyPort {
  /** TCP (default), UDP or SCTP. */
  protocol?: string;
  /** A number or a container port's name; absent = every port of the protocol. */
  port?: number | string;
  endPort?: number;
}

/** A networking.k8s.io/v1 NetworkPolicy as the API serves it (only what the semantics read). */
export interface NetworkPolicy {
  metadata: { name: string; namespace: string };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: { from?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
    egress?: { to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
  };
}

export interface PolicyPod {
  namespace: string;
  name: string;
  ip: string;
  labels: Labels;
  /** Container ports, for named ports. */
  ports?: { name?: string; containerPort: number; protocol?: string }[];
}

export interface PolicyNamespace {
  name: string;
  labels: Labels;
}

export interface NetworkPolicyInput {
  policies: NetworkPolicy[];
  /** Pods with an address (the node's); others are left out. */
  pods: PolicyPod[];
  namespaces: PolicyNamespace[];
}

export type Direction = 'ingress' | 'egress';
export type PortProtocol = 'tcp' | 'udp' | 'sctp';

export interface PortMatch {
  protocol: PortProtocol;
  /** Absent: every port of the protocol. */
  port?: number;
  endPort?: number;
}

/** One allowed (peer, ports) of an isolated pod. */
export interface Allow {
  /** `<namespace>/<name>` of the policy that allows it. */
  policy: string;
  /** The other end: absent = any address. */
  peer?: { cidr: string; except: string[] };
  /** Absent = every port and protocol; never empty (a rule whose ports all fail to resolve allows nothing). */
  ports?: PortMatch[];
}

export interface IsolatedPod {
  pod: PolicyPod;
  direction: Direction;
  allows: Allow[];
}

export const NETPOL_CHAIN = 'MP-NETPOL';
/** Mark bits: the packet's source allowed it out, its destination allowed it in. */
export const EGRESS_MARK = 0x10000;
export const INGRESS_MARK = 0x20000;

const hex = (n: number): string => `0x${n.toString(16)}`;

// ---------------------------------------------------------------------------------------------
// Semantics

/** metav1.LabelSelectorAsSelector: every matchLabels pair and every expression must hold; an empty selector matches all. */
export function selectorMatches(sel: LabelSelector | undefined, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(labels[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`NetworkPolicy selector: operator ${JSON.stringify(e.operator)} is not In, NotIn, Exists or DoesNotExist`);
    }
  }
  return true;
}

/** The policy types after the API server's defaulting. */
export function policyTypesOf(p: NetworkPolicy): Direction[] {
  const given = p.spec.policyTypes ?? [];
  if (given.length === 0) return (p.spec.egress ?? []).length > 0 ? ['ingress', 'egress'] : ['ingress'];
  return given.map((t) => {
    if (t !== 'Ingress' && t !== 'Egress') throw new Error(`NetworkPolicy ${p.metadata.namespace}/${p.metadata.name}: policyTypes entry ${JSON.stringify(t)} is not Ingress or Egress`);
    return t === 'Ingress' ? 'ingress' : 'egress';
  });
}

function protocolOf(p: string | undefined): PortProtocol {
  const v = (p ?? 'TCP').toUpperCase();
  if (v !== 'TCP' && v !== 'UDP' && v !== 'SCTP') throw new Error(`NetworkPolicy port protocol ${JSON.stringify(p)} is not TCP, UDP or SCTP`);
  return v.toLowerCase() as PortProtocol;
}

/** A rule's ports against the pod that owns the named ones: undefined = all ports; [] = none resolved. */
function resolvePorts(ports: NetworkPolicyPort[] | undefined, owner: PolicyPod | undefined): PortMatch[] | undefined {
  if (!ports || ports.length === 0) return undefined;
  const out: PortMatch[] = [];
  for (const p of ports) {
    const protocol = protocolOf(p.protocol);
    if (p.port === undefined) out.push({ protocol });
    else if (typeof p.port === 'number' || /^\d+$/.test(p.port)) {
      const port = Number(p.port);
      out.push(p.endPort !== undefined ? { protocol, port, endPort: p.endPort } : { protocol, port });
    } else {
      const named = owner?.ports?.find((cp) => cp.name === p.port && protocolOf(cp.protocol) === protocol);
      if (named) out.push({ protocol, port: named.containerPort });
    }
  }
  return out;
}

/** The pods a peer selector names, from the policy's namespace. */
function peerPods(peer: NetworkPolicyPeer, policyNs: string, input: NetworkPolicyInput): PolicyPod[] {
  const nsLabels = new Map(input.namespaces.map((n) => [n.name, n.labels]));
  return input.pods.filter((pod) => {
    const inNs = peer.namespaceSelector ? selectorMatches(peer.namespaceSelector, nsLabels.get(pod.namespace) ?? {}) : pod.namespace === policyNs;
    return inNs && (peer.podSelector ? selectorMatches(peer.podSelector, pod.labels) : true);
  });
}

/** Every pod some policy isolates, per direction, with what its policies allow (in policy, rule and peer order). */
export function isolatedPods(input: NetworkPolicyInput): IsolatedPod[] {
  const out: IsolatedPod[] = [];
  for (const direction of ['egress', 'ingress'] as const) {
    for (const pod of input.pods) {
      const selecting = input.policies.filter((p) => p.metadata.namespace === pod.namespace && selectorMatches(p.spec.podSelector, pod.labels) && policyTypesOf(p).includes(direction));
      if (selecting.length === 0) continue;
      const allows: Allow[] = [];
      for (const p of selecting) {
        const policy = `${p.metadata.namespace}/${p.metadata.name}`;
        const rules = direction === 'ingress' ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
        for (const rule of rules) {
          const add = (peer: Allow['peer'], ports: PortMatch[] | undefined): void => {
            if (ports && ports.length === 0) return;
            allows.push({ policy, ...(peer ? { peer } : {}), ...(ports ? { ports } : {}) });
          };
          // ingress ports are the isolated pod's own; egress ports are the peer's
          if (!rule.peers || rule.peers.length === 0) {
            add(undefined, resolvePorts(rule.ports, direction === 'ingress' ? pod : undefined));
            continue;
          }
          for (const peer of rule.peers) {
            if (peer.ipBlock) {
              add({ cidr: checkCidr(peer.ipBlock.cidr), except: (peer.ipBlock.except ?? []).map(checkCidr) }, resolvePorts(rule.ports, direction === 'ingress' ? pod : undefined));
              continue;
            }
            for (const other of peerPods(peer, p.metadata.namespace, input)) {
              add({ cidr: `${other.ip}/32`, except: [] }, resolvePorts(rule.ports, direction === 'ingress' ? pod : other));
            }
          }
        }
      }
      out.push({ pod, direction, allows });
    }
  }
  return out;
}

function ipv4(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new Error(`NetworkPolicy: ${JSON.stringify(ip)} is not an IPv4 address`);
  return m.slice(1).reduce((acc, x) => acc * 256 + Number(x), 0);
}

function checkCidr(cidr: string): string {
  const [ip, bits] = cidr.split('/');
  if (ip === undefined || bits === undefined || !/^\d{1,2}$/.test(bits) || Number(bits) > 32) throw new Error(`NetworkPolicy ipBlock: ${JSON.stringify(cidr)} is not an IPv4 CIDR`);
  ipv4(ip);
  return cidr;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(net) / size);
}

function allowMatches(a: Allow, peerIp: string, port: number, protocol: PortProtocol): boolean {
  if (a.peer && (!inCidr(peerIp, a.peer.cidr) || a.peer.except.some((e) => inCidr(peerIp, e)))) return false;
  return !a.ports || a.ports.some((p) => p.protocol === protocol && (p.port === undefined || (port >= p.port && port <= (p.endPort ?? p.port))));
}

/**
 * Whether the rules let a new connection from one address to another through (what the rendered chains do with its
 * first packet): the source's egress, then the destination's ingress.
 */
export function connectionAllowed(isolated: IsolatedPod[], from: string, to: string, port: number, protocol: PortProtocol = 'tcp'): boolean {
  const out = isolated.find((i) => i.direction === 'egress' && i.pod.ip === from);
  if (out && !out.allows.some((a) => allowMatches(a, to, port, protocol))) return false;
  const into = isolated.find((i) => i.direction === 'ingress' && i.pod.ip === to);
  return !into || into.allows.some((a) => allowMatches(a, from, port, protocol));
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** What the node's filter table holds now: the chains meshproof made, and whether FORWARD already jumps to MP-NETPOL. */
export interface CurrentRules {
  chains: string[];
  jumped: boolean;
}

export const chainOf = (direction: Direction, ip: string): string => `MP-NP-${direction === 'ingress' ? 'I' : 'E'}-${ip}`;

const comment = (text: string): string => `-m comment --comment "${text.replace(/"/g, "'")}"`;

function portArgs(p: PortMatch): string {
  if (p.port === undefined) return `-p ${p.protocol}`;
  return `-p ${p.protocol} --dport ${p.endPort !== undefined && p.endPort !== p.port ? `${p.port}:${p.endPort}` : p.port}`;
}

/**
 * The iptables-restore text (for `--noflush`) that makes the node's FORWARD path enforce the policies. Chains it made
 * before and needs no more (`current.chains`) are emptied and deleted; the FORWARD jump is inserted only when absent.
 */
export function renderNetworkPolicy(input: NetworkPolicyInput, current: CurrentRules = { chains: [], jumped: false }): string {
  const isolated = isolatedPods(input);
  const chains: string[] = [NETPOL_CHAIN];
  const rules: string[] = [];
  const head = [`-A ${NETPOL_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`, `-A ${NETPOL_CHAIN} -j MARK --set-xmark 0x0/${hex(EGRESS_MARK | INGRESS_MARK)}`];
  for (const iso of isolated) {
    const { pod, direction } = iso;
    const chain = chainOf(direction, pod.ip);
    const mark = direction === 'ingress' ? INGRESS_MARK : EGRESS_MARK;
    const self = direction === 'ingress' ? '-d' : '-s';
    const other = direction === 'ingress' ? '-s' : '-d';
    chains.push(chain);
    head.push(`-A ${NETPOL_CHAIN} ${self} ${pod.ip}/32 ${comment(`${direction} ${pod.namespace}/${pod.name}`)} -j ${chain}`);
    head.push(`-A ${NETPOL_CHAIN} ${self} ${pod.ip}/32 -m mark ! --mark ${hex(mark)}/${hex(mark)} -j DROP`);
    const setMark = `-j MARK --set-xmark ${hex(mark)}/${hex(mark)}`;
    iso.allows.forEach((a, k) => {
      const portsOf = a.ports ? a.ports.map(portArgs) : [''];
      let target = chain;
      let peer = a.peer ? `${other} ${a.peer.cidr} ` : '';
      if (a.peer && a.peer.except.length > 0) {
        // `cidr except …`: the sub-chain returns for each excepted range before it marks
        target = `${chain}-${k}`;
        chains.push(target);
        rules.push(`-A ${chain} ${other} ${a.peer.cidr} ${comment(a.policy)} -j ${target}`);
        for (const e of a.peer.except) rules.push(`-A ${target} ${other} ${e} -j RETURN`);
        peer = '';
      }
      for (const p of portsOf) rules.push(`-A ${target} ${peer}${p ? `${p} ` : ''}${comment(a.policy)} ${setMark}`);
    });
  }
  const stale = current.chains.filter((c) => (c === NETPOL_CHAIN || c.startsWith('MP-NP-')) && !chains.includes(c));
  return [
    '*filter',
    ...[...chains, ...stale].map((c) => `:${c} - [0:0]`),
    ...(current.jumped ? [] : [`-I FORWARD 1 -j ${NETPOL_CHAIN}`]),
    ...head,
    ...rules,
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** The MP-NETPOL/MP-NP-* chains and the FORWARD jump in `iptables-save -t filter` output. */
export function currentRules(save: string): CurrentRules {
  const chains = [...save.matchAll(/^:(MP-NETPOL|MP-NP-\S+) /gm)].map((m) => m[1]!);
  return { chains, jumped: new RegExp(`^-A FORWARD -j ${NETPOL_CHAIN}$`, 'm').test(save) };
}
