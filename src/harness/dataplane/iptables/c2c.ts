// Cloud Foundry container-to-container policy enforcement as iptables-restore text for ONE destination container's
// network namespace. Pure: ContainerRules (model/c2c/policy.ts) in, text out.
//
// On a Diego cell the rules live in the cell's FORWARD chain: the vxlan-policy-agent's `vpa--<timestamp>` chain
// (marks by source container, accepts by destination container + port + mark) and silk-cni's per-container overlay
// chain (related/established, ingress tag, REJECT). On the netns substrate a pod's namespace is the container and the
// node namespace is shared plumbing the profile does not own, so the same rules are applied to the destination
// container's INPUT (everything but loopback: the container talking to itself, e.g. its Envoy dialling the app, never
// crosses the overlay). The rules keep silk's text (rules.go) except:
// - the mark travels in the VXLAN GBP header between cells; here the mark is set in the destination namespace from
//   the source address, which is what the source cell's vpa chain keys it on;
// - NewOverlayTagAcceptRule accepts traffic marked with the ingress tag (it came through a cell host port, NetIn);
//   here routers reach containers only through cells, so their source addresses stand for that tag.
// The chains are named `vpa` and `overlay`; each restore flushes and refills both in one transaction (the policy
// agent's "replace all rules"), so applying the text again after a policy change is idempotent.
import type { ContainerRules } from '../../model/c2c/policy.ts';

export const VPA_CHAIN = 'vpa';
export const OVERLAY_CHAIN = 'overlay';

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const GUIDISH = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function ip(what: string, v: string): string {
  if (!IPV4.test(v)) throw new Error(`c2c iptables: ${what} ${JSON.stringify(v)} is not an IPv4 address`);
  return v;
}

function label(what: string, v: string): string {
  if (!GUIDISH.test(v) || v.length > 200) throw new Error(`c2c iptables: ${what} ${JSON.stringify(v)} cannot go into a rule comment`);
  return v;
}

function tag(v: string): string {
  if (!/^[0-9a-f]{1,8}$/i.test(v)) throw new Error(`c2c iptables: tag ${JSON.stringify(v)} is not hexadecimal`);
  return `0x${v}`;
}

function port(what: string, p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`c2c iptables: ${what} ${p} is not a port`);
  return p;
}

export interface RenderOptions {
  /** Also add the INPUT jumps (first application only: iptables-restore --noflush appends them every time). */
  installJumps?: boolean;
}

/**
 * The filter-table text for one container:
 * ```
 * -A vpa -s <source ip>/32 -m comment --comment src:<app guid> -j MARK --set-xmark 0x<tag>
 * -A vpa -d <ip>/32 -p tcp -m tcp --dport <start>:<end> -m mark --mark 0x<tag> -m comment --comment src:<a>_dst:<b> -j ACCEPT
 * -A overlay -d <ip>/32 -m state --state RELATED,ESTABLISHED -j ACCEPT
 * -A overlay -s <router ip>/32 -d <ip>/32 -m comment --comment netin:<router> -j ACCEPT
 * -A overlay -d <ip>/32 -j REJECT --reject-with icmp-port-unreachable
 * ```
 */
export function renderC2cIptables(rules: ContainerRules, opts: RenderOptions = {}): string {
  const me = `${ip('container ip', rules.containerIp)}/32`;
  const lines = ['*filter', `:${VPA_CHAIN} - [0:0]`, `:${OVERLAY_CHAIN} - [0:0]`];
  if (opts.installJumps) lines.push(`-A INPUT ! -i lo -j ${VPA_CHAIN}`, `-A INPUT ! -i lo -j ${OVERLAY_CHAIN}`);
  for (const m of rules.marks) {
    lines.push(`-A ${VPA_CHAIN} -s ${ip('source ip', m.sourceIp)}/32 -m comment --comment src:${label('app guid', m.appGuid)} -j MARK --set-xmark ${tag(m.tag)}`);
  }
  for (const a of rules.allows) {
    if (a.protocol !== 'tcp' && a.protocol !== 'udp') throw new Error(`c2c iptables: protocol ${JSON.stringify(a.protocol)} is not tcp or udp`);
    if (port('start port', a.startPort) > port('end port', a.endPort)) throw new Error(`c2c iptables: port range ${a.startPort}-${a.endPort} is empty`);
    lines.push(
      `-A ${VPA_CHAIN} -d ${me} -p ${a.protocol} -m ${a.protocol} --dport ${a.startPort}:${a.endPort} -m mark --mark ${tag(a.tag)} ` +
        `-m comment --comment src:${label('source app guid', a.sourceAppGuid)}_dst:${label('destination app guid', a.destinationAppGuid)} -j ACCEPT`,
    );
  }
  lines.push(`-A ${OVERLAY_CHAIN} -d ${me} -m state --state RELATED,ESTABLISHED -j ACCEPT`);
  for (const n of rules.netIn) {
    lines.push(`-A ${OVERLAY_CHAIN} -s ${ip('netin source', n.ip)}/32 -d ${me} -m comment --comment netin:${label('netin name', n.name)} -j ACCEPT`);
  }
  lines.push(`-A ${OVERLAY_CHAIN} -d ${me} -j REJECT --reject-with icmp-port-unreachable`, 'COMMIT', '');
  return lines.join('\n');
}
