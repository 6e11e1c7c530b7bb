// Contrast's ingress redirection and its startup default deny, as iptables-restore text. Pure: entries in, text out.
// Sources (edgelesssys/contrast): service-mesh/iptables.go IngressIPTableRules (a55a200b; go-iptables AppendUnique in
// the mangle table), packages/nixos/kata.nix unit `deny-incoming-traffic` (`iptables-legacy -I INPUT -m conntrack !
// --ctstate ESTABLISHED,RELATED -j DROP`), internal/defaultdeny/defaultdeny.go (Exists, then Delete, of that rule).
//
// TPROXY carries no --tproxy-mark and Contrast adds no `ip rule`/`ip route … table`: a redirected packet is addressed to
// the pod's own IP, so the ordinary routing decision already delivers it locally, and TPROXY's socket assignment
// hands it to Envoy's transparent listener (checked live: suites/contrast-ingress.spec.ts). The kernel lists the rule
// with its defaults, `--on-ip 0.0.0.0 --tproxy-mark 0x0/0x0` (test/integration/contrast-iptables.spec.ts).
import { ENVOY_INGRESS_PORT, ENVOY_INGRESS_PORT_NO_CLIENT_CERT, type IngressEntry } from '../../model/contrast/annotations.ts';

export const CONTRAST_INBOUND = 'CONTRAST_INBOUND';
export const CONTRAST_IN_REDIRECT = 'CONTRAST_IN_REDIRECT';

/** The rule spec the podVM unit inserts and defaultdeny.RemoveDefaultDenyRule deletes (filter table, INPUT). */
export const DEFAULT_DENY_RULE = '-m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP';

export interface ContrastIptablesOptions {
  /** Add the PREROUTING jump (AppendUnique adds it once; iptables-restore --noflush would append it again). Default true. */
  installJump?: boolean;
}

function checkPort(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`contrast iptables: ingress port ${p} is not a TCP port`);
  return p;
}

/**
 * The mangle rules in IngressIPTableRules' order, meant for `iptables-restore --noflush` (declaring the two chains
 * empties them, so applying again replaces them):
 * ```
 * -A PREROUTING -p tcp -j CONTRAST_INBOUND
 * -A CONTRAST_INBOUND -p tcp -i lo -j RETURN
 * -A CONTRAST_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
 * -A CONTRAST_INBOUND -p tcp -j CONTRAST_IN_REDIRECT
 * -A CONTRAST_IN_REDIRECT -p tcp --dport <p> -j RETURN                      (<name>#<p>#true)
 * -A CONTRAST_IN_REDIRECT -p tcp --dport <p> -j TPROXY --on-port 15007      (<name>#<p>#false)
 * -A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006
 * ```
 * AppendUnique: a rule already in the chain is not added again (two entries for one port and flag give one rule).
 */
export function renderContrastIptables(ingress: readonly IngressEntry[], opts: ContrastIptablesOptions = {}): string {
  const redirect: string[] = [];
  for (const e of ingress) {
    const rule = e.disableTLS
      ? `-A ${CONTRAST_IN_REDIRECT} -p tcp --dport ${checkPort(e.port)} -j RETURN`
      : `-A ${CONTRAST_IN_REDIRECT} -p tcp --dport ${checkPort(e.port)} -j TPROXY --on-port ${ENVOY_INGRESS_PORT_NO_CLIENT_CERT}`;
    if (!redirect.includes(rule)) redirect.push(rule);
  }
  const lines = [
    '*mangle',
    `:${CONTRAST_INBOUND} - [0:0]`,
    `:${CONTRAST_IN_REDIRECT} - [0:0]`,
    ...(opts.installJump === false ? [] : [`-A PREROUTING -p tcp -j ${CONTRAST_INBOUND}`]),
    `-A ${CONTRAST_INBOUND} -p tcp -i lo -j RETURN`,
    `-A ${CONTRAST_INBOUND} -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${CONTRAST_INBOUND} -p tcp -j ${CONTRAST_IN_REDIRECT}`,
    ...redirect,
    `-A ${CONTRAST_IN_REDIRECT} -p tcp -j TPROXY --on-port ${ENVOY_INGRESS_PORT}`,
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/** The podVM's `deny-incoming-traffic` unit: the rule inserted at the top of INPUT before any container starts. */
export function renderDefaultDeny(): string {
  return `*filter\n-I INPUT ${DEFAULT_DENY_RULE}\nCOMMIT\n`;
}

/** RemoveDefaultDenyRule's Delete (the caller checks that the rule exists first, as defaultdeny.go does). */
export function renderRemoveDefaultDeny(): string {
  return `*filter\n-D INPUT ${DEFAULT_DENY_RULE}\nCOMMIT\n`;
}
