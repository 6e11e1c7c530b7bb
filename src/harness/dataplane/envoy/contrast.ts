// The Envoy bootstrap Contrast's sidecar writes to /envoy-config.yml: ProxyConfig.ToEnvoyConfig in
// edgelesssys/contrast service-mesh/config.go (fd987523), marshalled with protojson, so field names are protojson's
// lowerCamelCase as in its golden file (service-mesh/golden/defaultEnvoy.json). Pure: ProxyConfig in, object/JSON out.
// - egress: per entry a listener on <127.x>:<port>, tcp_proxy → cluster <name> (LOGICAL_DNS, V4_ONLY) with an
//   UpstreamTlsContext presenting the mesh certificate and trusting the mesh CA: no SNI, no SAN check;
// - ingress: `ingress` on 0.0.0.0:15006 (client certificate required) and `ingressWithoutClientAuth` on 15007, both
//   transparent with the original_dst listener filter, tcp_proxy → IngressCluster (ORIGINAL_DST, CLUSTER_PROVIDED);
// - the loop guard (addBlackHoleToConfig): on each ingress listener a filter_chain_matcher on the destination port:
//   the listener's own port → BlackHoleFilter (tcp_proxy → BlackHoleCluster, STATIC, no endpoints), anything else →
//   the ingress chain;
// - an admin interface on 0.0.0.0:<port> only with CONTRAST_ADMIN_PORT.
import { ENVOY_INGRESS_PORT, ENVOY_INGRESS_PORT_NO_CLIENT_CERT, type EgressEntry, type ProxyConfig } from '../../model/contrast/annotations.ts';
import { T, type Obj } from './common.ts';

/** Where the initializer puts the mesh credentials in every container (the contrast-secrets volume at /contrast). */
export const CONTRAST_TLS_CONFIG = '/contrast/tls-config';
export const TLS_FILES = { certChain: 'certChain.pem', key: 'key.pem', meshCa: 'mesh-ca.pem' } as const;

export const INGRESS_CLUSTER = 'IngressCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const BLACKHOLE_FILTER = 'BlackHoleFilter';
export const INGRESS_LISTENER = 'ingress';
export const INGRESS_NO_CLIENT_AUTH_LISTENER = 'ingressWithoutClientAuth';

const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
const DESTINATION_PORT_INPUT = 'type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput';

export interface ContrastEnvoyOptions {
  /**
   * The directory of certChain.pem, key.pem and mesh-ca.pem. Contrast's is /contrast/tls-config; a substrate without
   * a container filesystem passes where it keeps the pod's files.
   */
  tlsConfigDir?: string;
}

/** protojson's SocketAddress. */
function socket(address: string, port: number): Obj {
  return { socketAddress: { address, portValue: port } };
}

function tlsFiles(dir: string): Obj {
  if (!dir.startsWith('/')) throw new Error(`contrast envoy: tls-config directory ${JSON.stringify(dir)} must be an absolute path`);
  const f = (name: string): Obj => ({ filename: `${dir.replace(/\/$/, '')}/${name}` });
  return {
    tlsCertificates: [{ certificateChain: f(TLS_FILES.certChain), privateKey: f(TLS_FILES.key) }],
    validationContext: { trustedCa: f(TLS_FILES.meshCa) },
  };
}

/** listener(): one filter chain named after the entry, its tcp_proxy filter named "ingress" (for every listener). */
function listener(name: string, cluster: string, address: string, port: number): Obj {
  return {
    name,
    address: socket(address, port),
    filterChains: [{ name, filters: [{ name: 'ingress', typedConfig: { '@type': T.tcpProxy, statPrefix: name, cluster } }] }],
  };
}

function egressCluster(e: EgressEntry, dir: string): Obj {
  return {
    name: e.name,
    type: 'LOGICAL_DNS',
    dnsLookupFamily: 'V4_ONLY',
    loadAssignment: { clusterName: e.name, endpoints: [{ lbEndpoints: [{ endpoint: { address: socket(e.remoteDomain, e.remotePort) } }] }] },
    transportSocket: { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': T.upstreamTls, commonTlsContext: tlsFiles(dir) } },
  };
}

/** ingressListener(): transparent, original_dst, a DownstreamTlsContext on its chain, tcp_proxy → IngressCluster. */
function ingressListener(name: string, port: number, requireClientCertificate: boolean, dir: string): Obj {
  const l = listener(name, INGRESS_CLUSTER, '0.0.0.0', port);
  (l.filterChains as Obj[])[0]!.transportSocket = {
    name: 'envoy.transport_sockets.tls',
    typedConfig: { '@type': T.downstreamTls, commonTlsContext: tlsFiles(dir), requireClientCertificate },
  };
  l.listenerFilters = [{ name: 'tcpListener', typedConfig: { '@type': T.originalDst } }];
  l.transparent = true;
  return l;
}

/**
 * addBlackHoleToConfig: every listener on an ingress port gets a matcher on the original destination port: its own
 * port (traffic that reached Envoy without TPROXY, which ORIGINAL_DST would send back to Envoy itself, a loop) →
 * BlackHoleFilter; anything else → its one chain.
 */
function addBlackHole(listeners: Obj[], ports: number[]): void {
  const action = (actionName: string, value: string): Obj => ({ action: { name: actionName, typedConfig: { '@type': STRING_VALUE, value } } });
  for (const l of listeners) {
    const port = ((l.address as Obj).socketAddress as Obj).portValue as number;
    if (!ports.includes(port)) continue;
    const chains = l.filterChains as Obj[];
    l.filterChainMatcher = {
      matcherTree: {
        input: { name: 'port', typedConfig: { '@type': DESTINATION_PORT_INPUT } },
        exactMatchMap: { map: { [String(port)]: action('forwardToBlackHoleFilter', BLACKHOLE_FILTER) } },
      },
      onNoMatch: action('forwardToIngress', chains[0]!.name as string),
    };
    chains.push({ name: BLACKHOLE_FILTER, filters: [{ name: BLACKHOLE_FILTER, typedConfig: { '@type': T.tcpProxy, statPrefix: BLACKHOLE_CLUSTER, cluster: BLACKHOLE_CLUSTER } }] });
  }
}

/** The bootstrap object (protojson field names). */
export function contrastEnvoyBootstrap(cfg: ProxyConfig, opts: ContrastEnvoyOptions = {}): Obj {
  const dir = opts.tlsConfigDir ?? CONTRAST_TLS_CONFIG;
  const listeners: Obj[] = cfg.egress.map((e) => listener(e.name, e.name, e.listenAddr, e.listenPort));
  const clusters: Obj[] = cfg.egress.map((e) => egressCluster(e, dir));
  listeners.push(ingressListener(INGRESS_LISTENER, ENVOY_INGRESS_PORT, true, dir), ingressListener(INGRESS_NO_CLIENT_AUTH_LISTENER, ENVOY_INGRESS_PORT_NO_CLIENT_CERT, false, dir));
  clusters.push({ name: INGRESS_CLUSTER, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', dnsLookupFamily: 'V4_ONLY' });
  clusters.push({ name: BLACKHOLE_CLUSTER, type: 'STATIC', connectTimeout: '10s' });
  addBlackHole(listeners, [ENVOY_INGRESS_PORT, ENVOY_INGRESS_PORT_NO_CLIENT_CERT]);
  const bootstrap: Obj = { staticResources: { listeners, clusters } };
  if (cfg.adminPort !== undefined) bootstrap.admin = { address: socket('0.0.0.0', cfg.adminPort) };
  return bootstrap;
}

/** The file Contrast's sidecar writes (JSON, which Envoy's YAML loader reads: the file is /envoy-config.yml). */
export function renderContrastEnvoy(cfg: ProxyConfig, opts: ContrastEnvoyOptions = {}): string {
  return `${JSON.stringify(contrastEnvoyBootstrap(cfg, opts), null, 2)}\n`;
}
