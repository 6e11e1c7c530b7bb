// Cloud Foundry container-to-container network policy, as users write it and as the cell enforces it. Pure.
// Sources:
// - the policy server's external API v1 (cf-networking-release policy-server; `cf add-network-policy` sends it):
//   `{"policies":[{"source":{"id":"<app guid>"},"destination":{"id":"<app guid>","protocol":"tcp",
//   "ports":{"start":8080,"end":8080}}}]}`, with the server's validation messages ("invalid start port 0, must be in
//   range 1-65535", "invalid destination protocol, specify either udp or tcp");
// - policy-server tags: every app guid named by a policy (source or destination) gets a group tag, numbered from 1 in
//   order of first appearance and never reused (`tag_length` 2 → printed as 4 hex digits, `0001`);
// - the vxlan-policy-agent's rules (silk-release lib/rules/rules.go, cf-networking-onboarding c2c/dataflow part 8):
//   NewMarkSetRule `--source <container ip> -j MARK --set-xmark 0x<tag> -m comment --comment src:<app guid>` for every
//   container of a source app, NewMarkAllowRule `-d <container ip> -p <proto> --dport <start>:<end> -m mark --mark
//   0x<tag> -j ACCEPT -m comment --comment src:<src guid>_dst:<dst guid>` for every container of a destination app;
// - silk-cni's per-container overlay chain (cni-wrapper-plugin, same rules.go): NewOverlayRelatedEstablishedRule,
//   NewOverlayTagAcceptRule (traffic that came in through a cell host port carries the ingress tag) and
//   NewOverlayDefaultRejectRule `-d <container ip> -j REJECT --reject-with icmp-port-unreachable`. So app → app
//   without a policy is REJECTED with ICMP port unreachable (the caller sees "connection refused"), not dropped;
//   CATS (security_groups/dynamic_asgs.go "client app cannot connect to the server app using the overlay") only
//   asserts a non-zero curl exit.
import { UserError } from '../errors.ts';

export type PolicyProtocol = 'tcp' | 'udp';

/** One policy: traffic from any instance of `sourceId` to any instance of `destinationId` on these ports. */
export interface C2cPolicy {
  sourceId: string;
  destinationId: string;
  protocol: PolicyProtocol;
  startPort: number;
  endPort: number;
}

function only(o: Record<string, unknown>, where: string, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new UserError(`${where}: unknown field ${k} (known: ${keys.join(', ')})`);
}

function isPortNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/**
 * Reads the policy server's v1 JSON (`cf add-network-policy` / `POST /networking/v1/external/policies`), rejecting
 * unknown fields by name and invalid policies with the policy server's own words.
 */
export function parsePolicies(raw: unknown, source: string): C2cPolicy[] {
  const bad = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad('not a policy list (a JSON object with "policies")');
  const r = raw as Record<string, unknown>;
  only(r, source, ['policies', 'total_policies']);
  if (!Array.isArray(r.policies)) return bad('"policies" must be a list');
  return r.policies.map((p, i): C2cPolicy => {
    const where = `${source}: policies[${i}]`;
    if (!p || typeof p !== 'object') return bad(`policies[${i}] must be an object`);
    const o = p as Record<string, unknown>;
    only(o, where, ['source', 'destination']);
    const src = (o.source ?? {}) as Record<string, unknown>;
    const dst = (o.destination ?? {}) as Record<string, unknown>;
    only(src, `${where}.source`, ['id', 'tag']);
    only(dst, `${where}.destination`, ['id', 'tag', 'protocol', 'ports']);
    if (typeof src.id !== 'string' || src.id === '') bad(`policies[${i}]: missing source id`);
    if (typeof dst.id !== 'string' || dst.id === '') bad(`policies[${i}]: missing destination id`);
    if (dst.protocol !== 'tcp' && dst.protocol !== 'udp') bad(`policies[${i}]: invalid destination protocol, specify either udp or tcp`);
    const ports = (dst.ports ?? {}) as Record<string, unknown>;
    only(ports, `${where}.destination.ports`, ['start', 'end']);
    const start = isPortNumber(ports.start) ? ports.start : 0;
    const end = isPortNumber(ports.end) ? ports.end : 0;
    if (start < 1 || start > 65535) bad(`policies[${i}]: invalid start port ${start}, must be in range 1-65535`);
    if (end < 1 || end > 65535) bad(`policies[${i}]: invalid end port ${end}, must be in range 1-65535`);
    if (start > end) bad(`policies[${i}]: invalid port range ${start}-${end}, start must be less than or equal to end`);
    return { sourceId: src.id as string, destinationId: dst.id as string, protocol: dst.protocol as PolicyProtocol, startPort: start, endPort: end };
  });
}

/** The policies as the policy server lists them (`cf curl /networking/v1/external/policies`). */
export function policiesJson(policies: readonly C2cPolicy[]): string {
  return JSON.stringify({
    total_policies: policies.length,
    policies: policies.map((p) => ({ source: { id: p.sourceId }, destination: { id: p.destinationId, protocol: p.protocol, ports: { start: p.startPort, end: p.endPort } } })),
  });
}

function samePolicy(a: C2cPolicy, b: C2cPolicy): boolean {
  return a.sourceId === b.sourceId && a.destinationId === b.destinationId && a.protocol === b.protocol && a.startPort === b.startPort && a.endPort === b.endPort;
}

/**
 * The policy server's state: the policies (a duplicate is stored once, like the server's unique constraint) and the
 * group tags, allocated on first appearance (source before destination) and kept when policies are deleted.
 */
export class PolicyServer {
  private readonly list: C2cPolicy[] = [];
  private readonly tagByGroup = new Map<string, number>();

  /** `cf add-network-policy`: stores the policies, allocating tags for new groups. */
  add(policies: readonly C2cPolicy[]): void {
    for (const p of policies) {
      for (const g of [p.sourceId, p.destinationId]) if (!this.tagByGroup.has(g)) this.tagByGroup.set(g, this.tagByGroup.size + 1);
      if (!this.list.some((q) => samePolicy(p, q))) this.list.push({ ...p });
    }
  }

  /** `cf remove-network-policy`: deletes exactly matching policies (tags stay allocated). */
  remove(policies: readonly C2cPolicy[]): void {
    for (const p of policies) {
      const i = this.list.findIndex((q) => samePolicy(p, q));
      if (i >= 0) this.list.splice(i, 1);
    }
  }

  get policies(): readonly C2cPolicy[] {
    return this.list;
  }

  /** The group's tag as 4 hex digits (tag_length 2), or undefined for a group no policy ever named. */
  tag(group: string): string | undefined {
    const n = this.tagByGroup.get(group);
    return n === undefined ? undefined : n.toString(16).padStart(4, '0');
  }
}

/** An overlay container: its address and its app. */
export interface OverlayContainer {
  ip: string;
  appGuid: string;
}

/** Where an address reaches containers from outside the overlay (a router through a cell's host port). */
export interface NetInSource {
  ip: string;
  name: string;
}

/** The rules one destination container gets: vxlan-policy-agent's marks and allows, silk-cni's overlay chain. */
export interface ContainerRules {
  containerIp: string;
  /** NewMarkSetRule for every overlay container of an app that is the source of a policy toward this container's app. */
  marks: { sourceIp: string; tag: string; appGuid: string }[];
  /** NewMarkAllowRule per policy whose destination is this container's app. */
  allows: { protocol: PolicyProtocol; startPort: number; endPort: number; tag: string; sourceAppGuid: string; destinationAppGuid: string }[];
  /** Stand-in for NewOverlayTagAcceptRule: sources that only ever reach the container through a cell (ingress tag). */
  netIn: NetInSource[];
}

/**
 * What the policy agent programs for `dest` given the policy server's state: the policies toward its app and the
 * marks of every container that may be a source of them. Containers of apps without a policy get no mark and meet the
 * overlay chain's reject.
 */
export function containerRules(dest: OverlayContainer, containers: readonly OverlayContainer[], server: PolicyServer, netIn: readonly NetInSource[] = []): ContainerRules {
  const toMe = server.policies.filter((p) => p.destinationId === dest.appGuid);
  const sources = [...new Set(toMe.map((p) => p.sourceId))];
  const marks = containers
    .filter((c) => sources.includes(c.appGuid))
    .map((c) => ({ sourceIp: c.ip, tag: server.tag(c.appGuid)!, appGuid: c.appGuid }));
  const allows = toMe.map((p) => ({ protocol: p.protocol, startPort: p.startPort, endPort: p.endPort, tag: server.tag(p.sourceId)!, sourceAppGuid: p.sourceId, destinationAppGuid: p.destinationId }));
  return { containerIp: dest.ip, marks, allows, netIn: [...netIn] };
}

/**
 * The oracle: may a container of `sourceApp` open a connection to a container of `destinationApp` on `port`?
 * Same-app traffic is an overlay call like any other (CF needs a policy for it too).
 */
export function allowedByPolicy(server: PolicyServer, sourceApp: string, destinationApp: string, port: number, protocol: PolicyProtocol = 'tcp'): boolean {
  return server.policies.some((p) => p.sourceId === sourceApp && p.destinationId === destinationApp && p.protocol === protocol && port >= p.startPort && port <= p.endPort);
}
