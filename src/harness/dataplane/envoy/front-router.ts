// An Envoy standing in for gorouter on the HTTP route-integrity path: Host → route pool → TLS to the instance's
// Envoy sidecar, verifying that the backend is the instance the route was registered for. Pure: plan in, YAML out.
// Sources: gorouter (routing-release) proxy/round_tripper/proxy_round_tripper.go + proxy/utils/tls_config.go
// (ServerName = ServerCertDomainSAN), proxy/backend_tls_test.go (DNS SANs only, CN ignored), handlers/lookup.go
// (unknown_route), proxy/fails/classifier_group.go (retries), handlers/clientcert.go (forwarded_client_cert);
// route-emitter routingtable/registry_message.go (server_cert_domain_san = private_instance_id = instance GUID).
//
// Pool shape: ONE cluster per route (gorouter's EndpointPool), every endpoint tagged with its expected SAN in
// `envoy.transport_socket_match` metadata and one transport_socket_matches entry per SAN, each an UpstreamTlsContext
// with that SNI and SAN. Unlike one cluster per endpoint behind weighted_clusters (picked once per request), a pool
// lets a retry move to another instance, as gorouter does after a TLS or dial failure.
//
// What Envoy cannot reproduce: gorouter's status per TLS failure (SAN mismatch 503, untrusted CA 526, non-TLS
// backend 525, backend refused our client cert 496). Envoy answers all of them 503 (its own "upstream connect
// error ... TLS_error"); SAN mismatch, the route-integrity case, is 503 in both. Nor is a failed TLS endpoint
// pruned from the pool (gorouter prune-failed-endpoint); here it is only skipped by the retry.
import { stringify } from 'yaml';
import { addr, T, type Obj } from './common.ts';


/** One registered endpoint of a route (gorouter route.Endpoint from a route-emitter registry message). */
export interface RouteEndpoint {
  /** `host`: the cell's IP. */
  host: string;
  /** `tls_port`: the host port of the instance's Envoy (its route-integrity listener). */
  tlsPort: number;
  /** `server_cert_domain_san` (= `private_instance_id`, the instance GUID): SNI and the one accepted DNS SAN. */
  serverCertDomainSan: string;
}

export interface FrontRoute {
  /** The route's hostname, e.g. dora.apps.internal.example.com (matched with and without a :port). */
  host: string;
  endpoints: RouteEndpoint[];
}

/** router.forwarded_client_cert (default always_forward). */
export type ForwardedClientCert = 'always_forward' | 'forward' | 'sanitize_set';

export interface FrontRouterPlan {
  /** Listener port (gorouter: 80, or 443 with router.enable_ssl). */
  port: number;
  /** Default 0.0.0.0. */
  address?: string;
  /** Admin API on 127.0.0.1. */
  adminPort: number;
  routes: FrontRoute[];
  /** Backend TLS: router.ca_certs (the instance identity CA) and, optionally, router.backends.tls_pem (client cert). */
  backendTls: { ca: string; clientCert?: { cert: string; key: string } };
  /** router.backends.max_attempts (default 3), capped by the pool size like gorouter. */
  maxAttempts?: number;
  /** router.request_timeout_in_seconds (default 900). */
  requestTimeoutSeconds?: number;
  forwardedClientCert?: ForwardedClientCert;
  /** Optional frontend TLS (router.tls_pem); clientCa makes it request (not require) a client cert, like gorouter. */
  tls?: { cert: string; key: string; clientCa?: string };
}

/** gorouter's X-Cf-RouterError header (common/http/headers.go). */
export const CF_ROUTER_ERROR = 'X-Cf-RouterError';
/** Metadata key Envoy reads for transport_socket_matches. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
/** router.backends.max_attempts default. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** gorouter endpoint_dial_timeout default. */
const CONNECT_TIMEOUT = '5s';


/** forwarded_client_cert → HCM forward_client_cert_details. */
const XFCC: Record<ForwardedClientCert, Obj> = {
  // leaves the header untouched
  always_forward: { forward_client_cert_details: 'ALWAYS_FORWARD_ONLY' },
  // deletes it unless the client connection has peer certificates
  forward: { forward_client_cert_details: 'FORWARD_ONLY' },
  // deletes it, then sets it from the client cert. gorouter's classic value is the bare base64 DER; Envoy can only
  // write its own format, so this is RFC-0055's `xfcc_format: envoy` (Hash=...;Subject="...").
  sanitize_set: { forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { subject: true } },
};


/** `pool-<host>`: the route's cluster. */
export function poolClusterName(host: string): string {
  return `pool-${host.toLowerCase()}`;
}

/** `san-<server_cert_domain_san>`: the transport_socket_matches entry of the endpoints registered with that SAN. */
export function sanMatchName(san: string): string {
  return `san-${san}`;
}

/** gorouter's backend TLS config: ServerName = server_cert_domain_san, roots = router.ca_certs, DNS SAN exact. */
function upstreamTls(plan: FrontRouterPlan, san: string): Obj {
  const common: Obj = {
    // Go's crypto/tls client defaults (Envoy's upstream default maximum would be TLS 1.2).
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' },
    validation_context: {
      trusted_ca: { filename: plan.backendTls.ca },
      // crypto/tls VerifyHostname checks DNS SANs only: the CN is ignored, an IP SAN does not count.
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: san } }],
    },
  };
  const cc = plan.backendTls.clientCert;
  if (cc) common.tls_certificates = [{ certificate_chain: { filename: cc.cert }, private_key: { filename: cc.key } }];
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': T.upstreamTls, sni: san, common_tls_context: common } };
}

function poolCluster(plan: FrontRouterPlan, r: FrontRoute): Obj {
  const name = poolClusterName(r.host);
  const sans = [...new Set(r.endpoints.map((e) => e.serverCertDomainSan))];
  return {
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: r.endpoints.map((e) => ({
          endpoint: { address: addr(e.host, e.tlsPort) },
          metadata: { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: { server_cert_domain_san: e.serverCertDomainSan } } },
        })),
      }],
    },
    // Every endpoint carries a SAN that has a match, so the cluster's default (plaintext) socket is never used.
    transport_socket_matches: sans.map((san) => ({ name: sanMatchName(san), match: { server_cert_domain_san: san }, transport_socket: upstreamTls(plan, san) })),
  };
}

/** The route: retries after dial/TLS failures on another instance (RetriableClassifiers), up to max_attempts. */
function route(plan: FrontRouterPlan, r: FrontRoute): Obj {
  const out: Obj = { cluster: poolClusterName(r.host), timeout: `${plan.requestTimeoutSeconds ?? 900}s` };
  const attempts = Math.min(Math.max(plan.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1), r.endpoints.length);
  if (attempts > 1) {
    out.retry_policy = {
      retry_on: 'connect-failure',
      num_retries: attempts - 1,
      retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': T.previousHosts } }],
      host_selection_retry_max_attempts: 5,
    };
  }
  return out;
}

/**
 * Local replies in gorouter's words: no virtual host (NR) → 404 `X-Cf-RouterError: unknown_route` with lookup.go's
 * body; upstream connect/TLS failure (UF, retries exhausted URX, reset UC) → Envoy's 503 plus
 * `X-Cf-RouterError: endpoint_failure` (gorouter appends the Go error in parentheses; match the prefix).
 */
function localReplyConfig(): Obj {
  const header = (value: string): Obj[] => [{ header: { key: CF_ROUTER_ERROR, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }];
  return {
    mappers: [
      {
        filter: { response_flag_filter: { flags: ['NR'] } },
        headers_to_add: header('unknown_route'),
        body_format_override: { text_format_source: { inline_string: "404 Not Found: Requested route ('%REQ(:AUTHORITY)%') does not exist.\n" } },
      },
      { filter: { response_flag_filter: { flags: ['UF', 'URX', 'UC'] } }, headers_to_add: header('endpoint_failure') },
    ],
  };
}

function hcm(plan: FrontRouterPlan): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': T.hcm,
      stat_prefix: 'gorouter',
      codec_type: 'AUTO',
      ...XFCC[plan.forwardedClientCert ?? 'always_forward'],
      route_config: {
        name: 'gorouter',
        virtual_hosts: plan.routes.map((r) => ({
          name: r.host.toLowerCase(),
          domains: [r.host.toLowerCase(), `${r.host.toLowerCase()}:*`],
          routes: [{ match: { prefix: '/' }, route: route(plan, r) }],
        })),
      },
      local_reply_config: localReplyConfig(),
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': T.router } }],
    },
  };
}

function downstreamTls(tls: NonNullable<FrontRouterPlan['tls']>): Obj {
  const common: Obj = { tls_certificates: [{ certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } }] };
  if (tls.clientCa) common.validation_context = { trusted_ca: { filename: tls.clientCa } };
  // router.client_cert_validation default `request`: ask for a cert, do not require one.
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': T.downstreamTls, require_client_certificate: false, common_tls_context: common } };
}

function checkPlan(plan: FrontRouterPlan): void {
  const hosts = new Set<string>();
  for (const r of plan.routes) {
    const h = r.host.toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(h)) throw new Error(`front-router: ${JSON.stringify(r.host)} is not a hostname`);
    if (hosts.has(h)) throw new Error(`front-router: route ${h} appears twice`);
    hosts.add(h);
    if (r.endpoints.length === 0) throw new Error(`front-router: route ${h} has no endpoints (gorouter would answer 503 no_endpoints)`);
    const seen = new Set<string>();
    for (const e of r.endpoints) {
      if (!e.serverCertDomainSan) throw new Error(`front-router: ${h} endpoint ${e.host}:${e.tlsPort} has no server_cert_domain_san`);
      const key = `${e.host}:${e.tlsPort}`;
      if (seen.has(key)) throw new Error(`front-router: ${h} lists endpoint ${key} twice`);
      seen.add(key);
    }
  }
}

/** The gorouter stand-in's bootstrap (YAML). */
export function renderFrontRouter(plan: FrontRouterPlan): string {
  checkPlan(plan);
  const chain: Obj = { filters: [hcm(plan)] };
  if (plan.tls) chain.transport_socket = downstreamTls(plan.tls);
  const bootstrap = {
    node: { id: 'gorouter', cluster: 'gorouter' },
    admin: { address: addr('127.0.0.1', plan.adminPort) },
    static_resources: {
      listeners: [{ name: `gorouter-${plan.port}`, address: addr(plan.address ?? '0.0.0.0', plan.port), filter_chains: [chain] }],
      clusters: plan.routes.map((r) => poolCluster(plan, r)),
    },
  };
  return stringify(bootstrap, { aliasDuplicateObjects: false, lineWidth: 0 });
}
