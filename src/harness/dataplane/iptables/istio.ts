// istio-iptables (REDIRECT mode) as iptables-restore text for the nat table. Pure: options in, text out.
// Source: istio/istio tools/istio-iptables/pkg/capture/run.go and capture/testdata/*.golden (kube-virt-interfaces).

/** Istio's nat chains (tools/istio-iptables/pkg/constants/constants.go). */
export const ISTIO_INBOUND = 'ISTIO_INBOUND';
export const ISTIO_IN_REDIRECT = 'ISTIO_IN_REDIRECT';
export const ISTIO_OUTPUT = 'ISTIO_OUTPUT';
export const ISTIO_REDIRECT = 'ISTIO_REDIRECT';
export const ISTIO_CHAINS = [ISTIO_INBOUND, ISTIO_IN_REDIRECT, ISTIO_OUTPUT, ISTIO_REDIRECT] as const;

/** HBONE port: always excluded from inbound capture and from the loopback re-capture rule (constants.go). */
export const HBONE_PORT = 15008;
/** The source address Envoy binds for inbound upstream connections (InboundPassthroughBindIpv4). */
export const INBOUND_PASSTHROUGH_BIND = '127.0.0.6';
/** Injection template's `-d` default: prometheus 15090, health 15021, status 15020. */
export const DEFAULT_EXCLUDE_INBOUND_PORTS: readonly number[] = [15090, 15021, 15020];

export interface IstioIptablesOptions {
  /** `-u`: the proxy's uid (1337). */
  proxyUid?: number;
  /** `-g`: the proxy's gid; defaults to proxyUid like istio-iptables. */
  proxyGid?: number;
  /** `-z`: virtualInbound port (15006). */
  inboundPort?: number;
  /** `-p`: virtualOutbound port (15001). */
  outboundPort?: number;
  /** `-d`: inbound ports not captured; default 15090,15021,15020. */
  excludeInboundPorts?: number[];
}

function checkPort(what: string, p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`istio iptables: ${what} ${p} is not a TCP port`);
  return p;
}

function checkId(what: string, id: number): number {
  if (!Number.isInteger(id) || id < 0) throw new Error(`istio iptables: ${what} ${id} is not a uid/gid`);
  return id;
}

/**
 * The nat rules istio-init installs (`-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021,15020`),
 * in the golden's order, as iptables-restore input meant for `iptables-restore --noflush`.
 */
export function renderIstioIptables(o: IstioIptablesOptions = {}): string {
  const uid = checkId('proxyUid', o.proxyUid ?? 1337);
  const gid = checkId('proxyGid', o.proxyGid ?? uid);
  const inbound = checkPort('inboundPort', o.inboundPort ?? 15006);
  const outbound = checkPort('outboundPort', o.outboundPort ?? 15001);
  const exclude = (o.excludeInboundPorts ?? [...DEFAULT_EXCLUDE_INBOUND_PORTS]).map((p) => checkPort('excluded port', p));

  const lines = [
    '*nat',
    ...ISTIO_CHAINS.map((c) => `:${c} - [0:0]`),
    `-A ${ISTIO_INBOUND} -p tcp --dport ${HBONE_PORT} -j RETURN`,
    `-A ${ISTIO_REDIRECT} -p tcp -j REDIRECT --to-ports ${outbound}`,
    `-A ${ISTIO_IN_REDIRECT} -p tcp -j REDIRECT --to-ports ${inbound}`,
    `-A PREROUTING -p tcp -j ${ISTIO_INBOUND}`,
    ...exclude.map((p) => `-A ${ISTIO_INBOUND} -p tcp --dport ${p} -j RETURN`),
    `-A ${ISTIO_INBOUND} -p tcp -j ${ISTIO_IN_REDIRECT}`,
    `-A OUTPUT -j ${ISTIO_OUTPUT}`,
    `-A ${ISTIO_OUTPUT} -o lo -s ${INBOUND_PASSTHROUGH_BIND}/32 -j RETURN`,
    ...ownerRules('uid', uid),
    ...ownerRules('gid', gid),
    `-A ${ISTIO_OUTPUT} -d 127.0.0.1/32 -j RETURN`,
    `-A ${ISTIO_OUTPUT} -j ${ISTIO_REDIRECT}`,
    'COMMIT',
  ];
  return lines.join('\n') + '\n';
}

/** The three owner rules istio-iptables writes once for --uid-owner and once for --gid-owner. */
function ownerRules(kind: 'uid' | 'gid', id: number): string[] {
  const m = `-m owner --${kind}-owner ${id}`;
  return [
    // the app calling its own pod IP through the sidecar: loop back into inbound capture
    `-A ${ISTIO_OUTPUT} -o lo ! -d 127.0.0.1/32 -p tcp ! --dport ${HBONE_PORT} ${m} -j ${ISTIO_IN_REDIRECT}`,
    `-A ${ISTIO_OUTPUT} -o lo -m owner ! --${kind}-owner ${id} -j RETURN`,
    `-A ${ISTIO_OUTPUT} ${m} -j RETURN`,
  ];
}
