// An Istio sidecar's Envoy config as a static bootstrap, mirroring what istiod pushes over xDS.
// Pure: SidecarPlan in, YAML out. Sources (istio/istio): pilot/pkg/networking/core/{listener_inbound.go,
// filterchain_options.go,listener.go,cluster_tls.go}, pilot/pkg/security/authn/utils/utils.go.
import { stringify } from 'yaml';
import {
  ISTIO_PORTS,
  type ClientTlsMode,
  type Endpoint,
  type InboundPort,
  type MtlsMode,
  type OutboundService,
  type OutboundSubset,
  type PortProtocol,
  type SidecarPlan,
} from '../../model/istio/plan.ts';
import { addr, T, type Obj } from './common.ts';


// ALPNs (pilot/pkg/networking/core/listener.go, pilot/pkg/networking/util/util.go)
/** mtlsHTTPALPNs: what a client sidecar offers for HTTP after Istio's ALPN override filter. */
export const MTLS_HTTP_ALPNS = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'] as const;
/** mtlsTCPWithMxcALPNs. */
export const MTLS_TCP_ALPNS = ['istio-peer-exchange', 'istio'] as const;
/** allIstioMtlsALPNs: the PERMISSIVE mTLS chain of a declared HTTP or TCP port. */
export const ALL_ISTIO_MTLS_ALPNS = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'] as const;
/** plaintextHTTPALPNs (+ http/1.0, features.HTTP10): what http_inspector reports for plaintext HTTP. */
export const PLAINTEXT_HTTP_ALPNS = ['http/1.1', 'h2c', 'http/1.0'] as const;
/** DownstreamTlsContext ALPN advertised by inbound chains (authn/utils BuildInboundTLS). */
export const INBOUND_HTTP_TLS_ALPNS = ['h2', 'http/1.1'] as const;
export const INBOUND_TCP_TLS_ALPNS = ['istio-peer-exchange', 'h2', 'http/1.1'] as const;
/**
 * UpstreamTlsContext ALPN of ISTIO_MUTUAL clusters. Istio sets ["istio-peer-exchange","istio"] on the cluster and,
 * for HTTP, its `istio.alpn` filter (not in upstream Envoy) rewrites it to istio-http/1.1; here the HTTP cluster
 * carries the rewritten value directly. Both lists meet ALL_ISTIO_MTLS_ALPNS on the server side.
 */
export const OUTBOUND_TCP_ALPNS = ['istio-peer-exchange', 'istio'] as const;
export const OUTBOUND_HTTP_ALPNS = ['istio-http/1.1', 'istio'] as const;
/** An HTTP/2 cluster (http2/grpc port): istiod sets [...,"istio","h2"], which Istio's ALPN filter rewrites to istio-h2. */
export const OUTBOUND_H2_ALPNS = ['istio-h2', 'istio'] as const;

/** Every HCM istiod builds allows WebSocket upgrades (listener_builder.go buildHTTPConnectionManager; sidecar and gateway). */
export const UPGRADE_CONFIGS: readonly Obj[] = [{ upgrade_type: 'websocket' }];
/**
 * MeshConfig protocolDetectionTimeout default: 0s, no limit (istiod 1.28.2's config_dump: every listener_filters_timeout
 * is 0s with continue_on_listener_filters_timeout true). A sniffer waits as long as the client does.
 */
export const PROTOCOL_DETECTION_TIMEOUT = '0s';

/** Istio's default mesh cipher suites (BuildInboundTLS / SupportedCiphers). */
const CIPHER_SUITES = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

// Names (pilot/pkg/networking/util, pilot/pkg/model/listener.go)
export const VIRTUAL_INBOUND = 'virtualInbound';
export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
/** Istio binds inbound upstream connections to this address so istio-iptables lets them through (-s 127.0.0.6 RETURN). */
export const INBOUND_BIND_ADDRESS = '127.0.0.6';
/** Metadata key Envoy reads for transport_socket_matches, and Istio's value for injected endpoints. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

/** `inbound|<port>||` (model.BuildInboundSubsetKey). */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}
/** `outbound|<port>|<subset>|<fqdn>` (model.BuildSubsetKey). */
export function outboundClusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}
/** `outbound_.<port>_.<subset>_.<fqdn>` (model.BuildDNSSrvSubsetKey): the SNI of ISTIO_MUTUAL. */
export function outboundSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}


const CONNECT_TIMEOUT = '10s'; // MeshConfig connectTimeout default


// ---------------------------------------------------------------- TLS contexts

type Certs = SidecarPlan['certs'];

function tlsCertificate(c: Certs): Obj {
  return { certificate_chain: { filename: c.cert }, private_key: { filename: c.key } };
}

/** SubjectAltNameMatcher: SPIFFE and other URIs as URI SANs, anything else as a DNS SAN; exact match. */
function sanMatchers(sans: string[]): Obj[] {
  return sans.map((s) => ({ san_type: /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? 'URI' : 'DNS', matcher: { exact: s } }));
}

export function tlsParams(): Obj {
  return { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: CIPHER_SUITES };
}

/** BuildInboundTLS: the sidecar's mTLS server side. No SAN check (any mesh-CA peer); AuthorizationPolicy would narrow it. */
function downstreamMtls(certs: Certs, protocol: 'http' | 'tcp'): Obj {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': T.downstreamTls,
      common_tls_context: {
        tls_params: tlsParams(),
        alpn_protocols: [...(protocol === 'http' ? INBOUND_HTTP_TLS_ALPNS : INBOUND_TCP_TLS_ALPNS)],
        tls_certificates: [tlsCertificate(certs)],
        validation_context: { trusted_ca: { filename: certs.ca } },
      },
      require_client_certificate: true,
    },
  };
}

/** cluster_tls.go: ISTIO_MUTUAL, SIMPLE and MUTUAL upstream contexts. */
function upstreamTls(mode: Exclude<ClientTlsMode, 'DISABLE' | 'AUTO'>, svc: OutboundService, subset: OutboundSubset, certs: Certs): Obj {
  const validation: Obj = { trusted_ca: { filename: certs.ca } };
  if (subset.subjectAltNames.length > 0) validation.match_typed_subject_alt_names = sanMatchers(subset.subjectAltNames);
  const common: Obj = { tls_params: tlsParams() };
  if (mode !== 'SIMPLE') common.tls_certificates = [tlsCertificate(certs)];
  common.validation_context = validation;
  const ctx: Obj = { '@type': T.upstreamTls, common_tls_context: common };
  if (mode === 'ISTIO_MUTUAL') {
    // A sniffed (auto) port's one cluster serves its tcp_proxy and its HCM: the TCP list, whose mTLS chain every
    // inbound mode matches (Istio's ALPN filter, not in upstream Envoy, would rewrite it for the HTTP path).
    common.alpn_protocols = [...(svc.http2 ? OUTBOUND_H2_ALPNS : svc.protocol === 'http' ? OUTBOUND_HTTP_ALPNS : OUTBOUND_TCP_ALPNS)];
    ctx.sni = outboundSni(svc.port, subset.name, svc.fqdn);
  } else {
    // SIMPLE/MUTUAL originate TLS to a non-mesh server: name it by the service host (DR `sni` is not in the plan).
    ctx.sni = svc.fqdn;
  }
  return { name: 'envoy.transport_sockets.tls', typed_config: ctx };
}

/**
 * cluster_builder.go: HTTP/2 to a declared http2/grpc port (setH2Options), the downstream's protocol to a sniffed
 * one (use_downstream_protocol_config); nothing (HTTP/1.1) for the rest (istiod 1.28.2's config_dump).
 */
function httpProtocolOptions(p: { protocol: PortProtocol; http2?: boolean }): Obj | undefined {
  let options: Obj;
  if (p.http2) options = { explicit_http_config: { http2_protocol_options: {} } };
  else if (p.protocol === 'auto') options = { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } };
  else return undefined;
  return { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': T.httpOptions, ...options } };
}

function rawBuffer(): Obj {
  return { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': T.rawBuffer } };
}

// ---------------------------------------------------------------- network filters

function tcpProxy(statPrefix: string, cluster: string): Obj {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': T.tcpProxy, stat_prefix: statPrefix, cluster } };
}

export function router(): Obj {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': T.router } };
}

/** Sidecar inbound HCM: XFCC APPEND_FORWARD with Subject/URI/DNS of the peer (proxy_headers.go). */
function inboundHcm(statPrefix: string, routeName: string, cluster: string): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': T.hcm,
      stat_prefix: statPrefix,
      use_remote_address: false,
      forward_client_cert_details: 'APPEND_FORWARD',
      set_current_client_cert_details: { subject: true, uri: true, dns: true },
      upgrade_configs: [...UPGRADE_CONFIGS],
      route_config: {
        name: routeName,
        virtual_hosts: [{ name: routeName, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: '0s' } }] }],
      },
      http_filters: [router()],
    },
  };
}

// ---------------------------------------------------------------- virtualInbound

interface ChainSpec {
  /** Chain name (Istio names every chain of a port `0.0.0.0_<port>`). */
  name: string;
  port?: number;
  transport?: 'tls' | 'raw_buffer';
  alpn?: readonly string[];
  /** HCM or tcp_proxy behind the chain. */
  protocol: 'http' | 'tcp';
  /** Terminate mTLS on this chain. */
  mtls: boolean;
  cluster: string;
  statPrefix: string;
}

function chain(s: ChainSpec, certs: Certs): Obj {
  const match: Obj = {};
  if (s.port !== undefined) match.destination_port = s.port;
  if (s.transport) match.transport_protocol = s.transport;
  if (s.alpn) match.application_protocols = [...s.alpn];
  const filter = s.protocol === 'http' ? inboundHcm(s.statPrefix, s.cluster, s.cluster) : tcpProxy(s.statPrefix, s.cluster);
  const out: Obj = { name: s.name, filter_chain_match: match, filters: [filter] };
  if (s.mtls) out.transport_socket = downstreamMtls(certs, s.protocol);
  return out;
}

/** filterchain_options.go getFilterChainMatchOptions for a service port: declared HTTP or TCP, or sniffed (auto). */
function portChains(p: InboundPort): ChainSpec[] {
  const where = { port: p.port, cluster: inboundClusterName(p.port), statPrefix: `inbound_0.0.0.0_${p.port}` };
  // a port that declares no protocol gets the sniffing chains of the passthrough, on its own port and cluster
  if (p.protocol === 'auto') return sniffedChains(p.mode, { ...where, tcpName: `0.0.0.0_${p.port}`, httpName: `0.0.0.0_${p.port}` });
  const base = { ...where, name: `0.0.0.0_${p.port}`, protocol: p.protocol };
  switch (p.mode) {
    case 'STRICT':
      return [{ ...base, transport: 'tls', mtls: true }];
    case 'PERMISSIVE': {
      const chains: ChainSpec[] = [
        { ...base, transport: 'tls', alpn: ALL_ISTIO_MTLS_ALPNS, mtls: true },
        { ...base, transport: 'raw_buffer', mtls: false },
      ];
      // inboundPermissiveTCPFilterChainMatchWithMxcOptionsAndPlainTLS: the app's own TLS passes through untouched
      if (p.protocol === 'tcp') chains.push({ ...base, transport: 'tls', mtls: false });
      return chains;
    }
    case 'DISABLE':
      return [{ ...base, transport: 'raw_buffer', mtls: false }];
  }
}

/** Chains of a sniffed port (ListenerProtocolAuto): HTTP by the ALPN the inspectors found, else TCP. */
function sniffedChains(mode: MtlsMode, w: { tcpName: string; httpName: string; port?: number; cluster: string; statPrefix: string }): ChainSpec[] {
  const tcp: Omit<ChainSpec, 'mtls'> = { name: w.tcpName, protocol: 'tcp', cluster: w.cluster, statPrefix: w.statPrefix };
  if (w.port !== undefined) tcp.port = w.port;
  const http = { ...tcp, name: w.httpName, protocol: 'http' as const };
  switch (mode) {
    case 'STRICT': // inboundStrictFilterChainMatchOptions: plaintext finds no chain
      return [
        { ...http, transport: 'tls', alpn: MTLS_HTTP_ALPNS, mtls: true },
        { ...tcp, transport: 'tls', mtls: true },
      ];
    case 'PERMISSIVE': // inboundPermissiveFilterChainMatchWithMxcOptions
      return [
        { ...http, transport: 'tls', alpn: MTLS_HTTP_ALPNS, mtls: true },
        { ...http, transport: 'raw_buffer', alpn: PLAINTEXT_HTTP_ALPNS, mtls: false },
        { ...tcp, transport: 'tls', alpn: MTLS_TCP_ALPNS, mtls: true },
        { ...tcp, transport: 'raw_buffer', mtls: false },
        { ...tcp, transport: 'tls', mtls: false },
      ];
    case 'DISABLE': // inboundPlainTextFilterChainMatchOptions
      return [
        { ...http, transport: 'raw_buffer', alpn: PLAINTEXT_HTTP_ALPNS, mtls: false },
        { ...tcp, transport: 'raw_buffer', mtls: false },
      ];
  }
}

/** A listener filter's filter_disabled for these destination ports. */
function onPorts(ports: number[]): Obj {
  const ranges = ports.map((port) => ({ destination_port_range: { start: port, end: port + 1 } }));
  // an or_match needs two rules or more (ListenerFilterChainMatchPredicate.MatchSet)
  return ranges.length === 1 ? ranges[0]! : { or_match: { rules: ranges } };
}

function virtualInbound(plan: SidecarPlan): Obj {
  const blackhole: Obj = {
    name: `${VIRTUAL_INBOUND}-blackhole`,
    filter_chain_match: { destination_port: ISTIO_PORTS.inbound },
    filters: [tcpProxy(BLACKHOLE_CLUSTER, BLACKHOLE_CLUSTER)],
  };
  // ports without a service port: sniffed, plan.defaultMode
  const passthrough = { tcpName: VIRTUAL_INBOUND, httpName: `${VIRTUAL_INBOUND}-catchall-http`, cluster: INBOUND_PASSTHROUGH_CLUSTER, statPrefix: INBOUND_PASSTHROUGH_CLUSTER };
  const specs = [...sniffedChains(plan.defaultMode, passthrough), ...plan.inbound.flatMap(portChains)];
  // istiod disables TLS inspection where no chain matches on TLS: the blackhole port and DISABLE ports (seen in
  // istiod 1.28.2's virtualInbound config_dump; pilot/pkg/networking/core/listener_builder.go). A ClientHello to a
  // DISABLE port then meets its raw_buffer chain and reaches the app as bytes.
  const uninspected = [ISTIO_PORTS.inbound, ...plan.inbound.filter((p) => p.mode === 'DISABLE').map((p) => p.port)];
  const tlsInspector: Obj = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': T.tlsInspector } };
  tlsInspector.filter_disabled = onPorts(uninspected);
  // HTTP sniffing only where a chain matches on plaintext ALPN: the passthrough and auto ports (the same config_dump
  // disables http_inspector on 15006 and on every port declaring http, http2, grpc or tcp), so with no detection
  // limit a declared port waits for no HTTP bytes.
  const httpInspector: Obj = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': T.httpInspector } };
  httpInspector.filter_disabled = onPorts([ISTIO_PORTS.inbound, ...plan.inbound.filter((p) => p.protocol !== 'auto').map((p) => p.port)]);
  return {
    name: VIRTUAL_INBOUND,
    address: addr('0.0.0.0', ISTIO_PORTS.inbound),
    traffic_direction: 'INBOUND',
    continue_on_listener_filters_timeout: true,
    listener_filters_timeout: PROTOCOL_DETECTION_TIMEOUT,
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': T.originalDst } }, tlsInspector, httpInspector],
    filter_chains: [blackhole, ...specs.map((s) => chain(s, plan.certs))],
  };
}

// ---------------------------------------------------------------- virtualOutbound + per-service listeners

function virtualOutbound(): Obj {
  return {
    name: VIRTUAL_OUTBOUND,
    address: addr('0.0.0.0', ISTIO_PORTS.outbound),
    traffic_direction: 'OUTBOUND',
    use_original_dst: true,
    filter_chains: [{ name: `${VIRTUAL_OUTBOUND}-catchall-tcp`, filters: [tcpProxy(PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER)] }],
  };
}

/** Where a service's traffic goes: VirtualService weights across subsets, else the whole-service cluster. */
function outboundTargets(svc: OutboundService): { cluster: string } | { weighted: { name: string; weight: number }[] } {
  const known = new Set(svc.subsets.map((s) => s.name));
  if (svc.routes.length === 0) {
    if (!known.has('')) throw new Error(`sidecar: ${svc.fqdn}:${svc.port} has no routes and no whole-service subset ''`);
    return { cluster: outboundClusterName(svc.port, '', svc.fqdn) };
  }
  for (const r of svc.routes) {
    if (!known.has(r.subset)) throw new Error(`sidecar: ${svc.fqdn}:${svc.port} routes to unknown subset ${JSON.stringify(r.subset)}`);
    if (!Number.isInteger(r.weight) || r.weight < 0) throw new Error(`sidecar: ${svc.fqdn}:${svc.port} weight ${r.weight} is not a whole number >= 0`);
  }
  const weighted = svc.routes.filter((r) => r.weight > 0).map((r) => ({ name: outboundClusterName(svc.port, r.subset, svc.fqdn), weight: r.weight }));
  if (weighted.length === 0) throw new Error(`sidecar: ${svc.fqdn}:${svc.port} routes carry no weight`);
  return weighted.length === 1 ? { cluster: weighted[0]!.name } : { weighted };
}

function outboundHcm(svc: OutboundService, name: string, route: Obj): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': T.hcm,
      stat_prefix: `outbound_${name}`,
      use_remote_address: false,
      upgrade_configs: [...UPGRADE_CONFIGS],
      route_config: {
        // istiod's route name: the port of a declared HTTP port, `<fqdn>:<port>` of a sniffed one
        name: svc.protocol === 'auto' ? `${svc.fqdn}:${svc.port}` : String(svc.port),
        virtual_hosts: [{ name: `${svc.fqdn}:${svc.port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route }] }],
      },
      http_filters: [router()],
    },
  };
}

function outboundTcpProxy(svc: OutboundService, target: ReturnType<typeof outboundTargets>): Obj {
  const cfg: Obj = { '@type': T.tcpProxy, stat_prefix: `outbound|${svc.port}||${svc.fqdn}` };
  if ('cluster' in target) cfg.cluster = target.cluster;
  else cfg.weighted_clusters = { clusters: target.weighted };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: cfg };
}

function outboundListener(svc: OutboundService): Obj {
  const name = `${svc.vip}_${svc.port}`;
  const target = outboundTargets(svc);
  const listener: Obj = { name, address: addr(svc.vip, svc.port), traffic_direction: 'OUTBOUND', bind_to_port: false };
  const httpRoute = (): Obj => {
    const route: Obj = 'cluster' in target ? { cluster: target.cluster } : { weighted_clusters: { clusters: target.weighted } };
    route.timeout = '0s';
    return route;
  };
  if (svc.protocol === 'auto') {
    // A port that declares no protocol is sniffed (istiod 1.28.2's config_dump of <vip>_<port>): http_inspector with
    // no detection limit, HTTP/1.1 or h2c to the HCM, anything else to tcp_proxy; a server-first client waits.
    // a VirtualService's http routes are not tcp routes: the tcp_proxy takes the whole service
    const tcp = svc.routes.length === 0 ? target : { cluster: outboundClusterName(svc.port, '', svc.fqdn) };
    listener.listener_filters = [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': T.httpInspector } }];
    listener.listener_filters_timeout = PROTOCOL_DETECTION_TIMEOUT;
    listener.continue_on_listener_filters_timeout = true;
    listener.filter_chains = [
      { name, filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] }, filters: [outboundHcm(svc, name, httpRoute())] },
    ];
    listener.default_filter_chain = { name: `${name}-tcp`, filters: [outboundTcpProxy(svc, tcp)] };
    return listener;
  }
  const filter = svc.protocol === 'http' ? outboundHcm(svc, name, httpRoute()) : outboundTcpProxy(svc, target);
  listener.filter_chains = [{ name, filters: [filter] }];
  return listener;
}

// ---------------------------------------------------------------- clusters

function lbEndpoint(e: Endpoint): Obj {
  const out: Obj = { endpoint: { address: addr(e.ip, e.port) } };
  // Istio labels injected endpoints tlsMode=istio; auto-mTLS's transport_socket_matches read it.
  if (e.istio) out.metadata = { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: { tlsMode: 'istio' } } };
  return out;
}

export function outboundCluster(svc: OutboundService, subset: OutboundSubset, certs: Certs): Obj {
  const name = outboundClusterName(svc.port, subset.name, svc.fqdn);
  const cluster: Obj = {
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: subset.endpoints.map(lbEndpoint) }] },
  };
  const options = httpProtocolOptions(svc);
  if (options) cluster.typed_extension_protocol_options = options;
  switch (subset.tls) {
    case 'DISABLE':
      break;
    case 'AUTO':
      cluster.transport_socket_matches = [
        { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: upstreamTls('ISTIO_MUTUAL', svc, subset, certs) },
        { name: 'tlsMode-disabled', match: {}, transport_socket: rawBuffer() },
      ];
      break;
    default:
      cluster.transport_socket = upstreamTls(subset.tls, svc, subset, certs);
  }
  return cluster;
}

function inboundCluster(p: InboundPort): Obj {
  const name = inboundClusterName(p.port);
  const cluster: Obj = {
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    upstream_bind_config: { source_address: addr(INBOUND_BIND_ADDRESS, 0).socket_address },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: addr('127.0.0.1', p.port) } }] }] },
  };
  const options = httpProtocolOptions(p);
  if (options) cluster.typed_extension_protocol_options = options;
  return cluster;
}

function fixedClusters(): Obj[] {
  return [
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: CONNECT_TIMEOUT },
    { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', connect_timeout: CONNECT_TIMEOUT, lb_policy: 'CLUSTER_PROVIDED' },
    {
      name: INBOUND_PASSTHROUGH_CLUSTER,
      type: 'ORIGINAL_DST',
      connect_timeout: CONNECT_TIMEOUT,
      lb_policy: 'CLUSTER_PROVIDED',
      upstream_bind_config: { source_address: addr(INBOUND_BIND_ADDRESS, 0).socket_address },
    },
  ];
}

// ---------------------------------------------------------------- bootstrap

export function checkPlan(plan: SidecarPlan): void {
  const reserved = new Set<number>([ISTIO_PORTS.inbound, ISTIO_PORTS.outbound, ISTIO_PORTS.admin]);
  const seen = new Set<number>();
  for (const p of plan.inbound) {
    if (reserved.has(p.port)) throw new Error(`sidecar: inbound port ${p.port} is one of the sidecar's own ports`);
    if (seen.has(p.port)) throw new Error(`sidecar: inbound port ${p.port} appears twice`);
    seen.add(p.port);
  }
  const listeners = new Set<string>();
  const clusters = new Set<string>();
  for (const s of plan.outbound) {
    const l = `${s.vip}_${s.port}`;
    if (listeners.has(l)) throw new Error(`sidecar: two outbound services on ${s.vip}:${s.port}`);
    listeners.add(l);
    for (const sub of s.subsets) {
      const c = outboundClusterName(s.port, sub.name, s.fqdn);
      if (clusters.has(c)) throw new Error(`sidecar: cluster ${c} appears twice`);
      clusters.add(c);
    }
  }
}

/** The Envoy bootstrap (YAML) of one injected pod's sidecar. */
export function renderSidecar(plan: SidecarPlan, o: { adminPort?: number } = {}): string {
  checkPlan(plan);
  const bootstrap = {
    node: { id: `sidecar~${plan.pod}.${plan.namespace}`, cluster: `${plan.pod}.${plan.namespace}` },
    admin: { address: addr('127.0.0.1', o.adminPort ?? ISTIO_PORTS.admin) },
    static_resources: {
      listeners: [virtualInbound(plan), virtualOutbound(), ...plan.outbound.map(outboundListener)],
      clusters: [
        ...fixedClusters(),
        ...plan.inbound.map(inboundCluster),
        ...plan.outbound.flatMap((s) => s.subsets.map((sub) => outboundCluster(s, sub, plan.certs))),
      ],
    },
  };
  return stringify(bootstrap, { aliasDuplicateObjects: false, lineWidth: 0 });
}
