// The egress proxy of the draft RFC "Full mTLS for Diego Container-to-Container Traffic" (cloudfoundry/community#1437,
// toc/rfc/rfc-draft-diego-c2c-mtls.md, Phase 2), rendered as one more listener and its clusters of the Diego sidecar
// Envoy (dataplane/envoy/diego.ts merges them into the same bootstrap). Pure: plan in, Envoy objects out. No executor
// code exists for it; every choice below is ours and says why.
//
// - Listener `egress-proxy` on 127.0.0.1:61445 only ("bound to 127.0.0.1:61445 (localhost only)"): an HTTP connection
//   manager that takes absolute-form requests (`GET http://host:port/path`, what an app that honours HTTP_PROXY sends)
//   and CONNECT.
// - Virtual host `c2c-mtls`, domains `*.<internal domain>:62443` for each `containers.proxy.internal_domains` entry:
//   plain requests go to cluster `egress-c2c-mtls`, which ORIGINATES mTLS: it presents the instance identity
//   certificate (SDS `id-cert-and-key`, the credential apps also get as CF_INSTANCE_CERT; the RFC: "attach the
//   instance identity certificate only when connecting to C2C mTLS backends, identified by destination port (62443)
//   and hostname pattern matching the configured internal_domains") and verifies the server against the instance
//   identity CA (SDS `c2c-mtls-validation-context`, the file 62443 validates callers with), with SNI = the request's
//   host and its DNS SAN checked against that host (auto_sni / auto_san_validation): the backend's 62443 serves the C2C
//   certificate, whose DNS SANs are the instance guid and the app's internal routes (`<app>.apps.internal`).
// - Virtual host `passthrough` (`*`): every other absolute-form request is forwarded as it came, in plaintext, with
//   NO client certificate (cluster `egress-forward`): another port on an internal host, an outside host on 62443, a
//   look-alike name such as `x.apps.internal.example.com` (Envoy's `*.apps.internal:62443` is a suffix match on the
//   whole label).
// - CONNECT (both virtual hosts, first route, `connect_matcher`) is terminated and tunnelled as raw TCP to the target
//   (`upgrade_configs: CONNECT` + `connect_config`, cluster `egress-forward`): an `https://` request the app encrypts
//   itself goes through untouched; the proxy cannot and does not add a certificate to it.
// - Names are resolved per request by Envoy's dynamic forward proxy with the getaddrinfo resolver: inside a pod that
//   is the pod's own hosts file (`/etc/netns/<netns>/hosts`, bind-mounted at /etc/hosts by `ip netns exec`), where
//   `<app>.apps.internal` lists every instance of the app (BOSH DNS / service discovery on a real cell). Both clusters
//   and the filter share one DNS cache (their dns_cache_config must be identical). Checked on Envoy 1.36.4: names
//   resolve from the pod's hosts file, CONNECT works through the dynamic forward proxy, and a host:port maps to ONE
//   upstream host (the first address getaddrinfo returns), so proxied calls to an app stick to one instance for the
//   cache's lifetime where BOSH DNS would rotate answers.
// - The upstream mTLS connection is pooled (HTTP/1.1 keep-alive): a request can ride a connection opened before a
//   network policy was removed (silk accepts RELATED,ESTABLISHED), as suites/c2c-policy shows.
// - The executor rejects all stats (`stats_matcher: reject_all`); with the egress proxy the sidecar keeps the
//   `egress-proxy` HCM's and the `egress-*` clusters' stats (see diego.ts), so a suite can tell whether a call went
//   through the proxy.
import { posix } from 'node:path';
import { T, type Obj } from './common.ts';


/** The RFC's egress proxy port, on loopback only. */
export const EGRESS_PROXY_PORT = 61445;
export const EGRESS_PROXY_ADDRESS = '127.0.0.1';
/** What apps find in CF_INSTANCE_MTLS_PROXY. */
export const CF_INSTANCE_MTLS_PROXY = `http://${EGRESS_PROXY_ADDRESS}:${EGRESS_PROXY_PORT}`;
/** The destination port that gets the instance identity certificate (the RFC's 62443 listener). */
export const C2C_MTLS_DESTINATION_PORT = 62443;
/** bosh-dns-adapter's internal_domains default; the RFC's own default is [] (no injection anywhere). */
export const DEFAULT_INTERNAL_DOMAINS: readonly string[] = ['apps.internal'];

export const EGRESS_LISTENER = 'egress-proxy';
export const EGRESS_STAT_PREFIX = 'egress-proxy';
export const EGRESS_MTLS_CLUSTER = 'egress-c2c-mtls';
export const EGRESS_FORWARD_CLUSTER = 'egress-forward';
const DNS_CACHE = 'egress-proxy-dns';

/** SDS secrets the egress proxy reads from the sidecar's SDS directory (written by renderDiegoSdsFiles). */
export const EGRESS_CLIENT_CERT = { file: 'sds-id-cert-and-key.yaml', secret: 'id-cert-and-key' } as const;
export const EGRESS_SERVER_VALIDATION = { file: 'sds-c2c-mtls-validation-context.yaml', secret: 'c2c-mtls-validation-context' } as const;


export interface EgressProxyPlan {
  /** containers.proxy.internal_domains (e.g. `apps.internal` or `apps.internal.`); at least one. */
  internalDomains: readonly string[];
  /** Absolute directory of the sidecar's SDS files (watched for renames). */
  sdsDir: string;
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/**
 * internal_domains as BOSH operators write them (bosh-dns-adapter style `apps.internal.`, any case) → bare lower-case
 * domains, duplicates dropped. A value that is not a DNS name (a wildcard, a port, a scheme) is an error naming it.
 */
export function normalizeInternalDomains(domains: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of domains) {
    const d = String(raw).trim().toLowerCase().replace(/\.$/, '');
    if (!DNS_NAME.test(d)) throw new Error(`egress proxy: internal domain ${JSON.stringify(raw)} is not a domain name (write e.g. apps.internal)`);
    if (!out.includes(d)) out.push(d);
  }
  return out;
}

/** True when `host` (a name, no port) is strictly inside one of `domains` (normalized): the proxy's injection scope. */
export function inInternalDomain(host: string, domains: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return domains.some((d) => h.length > d.length + 1 && h.endsWith(`.${d}`));
}

function sds(plan: EgressProxyPlan, s: { file: string; secret: string }): Obj {
  return { name: s.secret, sds_config: { path_config_source: { path: posix.join(plan.sdsDir, s.file), watched_directory: { path: plan.sdsDir } } } };
}

function dnsCacheConfig(): Obj {
  return {
    name: DNS_CACHE,
    dns_lookup_family: 'V4_ONLY',
    typed_dns_resolver_config: { name: 'envoy.network.dns_resolver.getaddrinfo', typed_config: { '@type': T.getaddrinfo } },
  };
}

/** The CONNECT route every virtual host starts with: terminate CONNECT, tunnel raw TCP to the target. */
function connectRoute(): Obj {
  return {
    match: { connect_matcher: {} },
    route: { cluster: EGRESS_FORWARD_CLUSTER, timeout: '0s', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
  };
}

function listener(domains: readonly string[]): Obj {
  return {
    name: EGRESS_LISTENER,
    address: { socket_address: { address: EGRESS_PROXY_ADDRESS, port_value: EGRESS_PROXY_PORT } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': T.hcm,
          stat_prefix: EGRESS_STAT_PREFIX,
          codec_type: 'HTTP1',
          // the app's own X-Forwarded-Client-Cert never leaves the container through the proxy (Envoy's default, spelled out)
          forward_client_cert_details: 'SANITIZE',
          http_protocol_options: { allow_absolute_url: true },
          route_config: {
            name: EGRESS_LISTENER,
            virtual_hosts: [
              {
                name: 'c2c-mtls',
                domains: domains.map((d) => `*.${d}:${C2C_MTLS_DESTINATION_PORT}`),
                routes: [connectRoute(), { match: { prefix: '/' }, route: { cluster: EGRESS_MTLS_CLUSTER, timeout: '0s' } }],
              },
              {
                name: 'passthrough',
                domains: ['*'],
                routes: [connectRoute(), { match: { prefix: '/' }, route: { cluster: EGRESS_FORWARD_CLUSTER, timeout: '0s' } }],
              },
            ],
          },
          http_filters: [
            { name: 'envoy.filters.http.dynamic_forward_proxy', typed_config: { '@type': T.dfpFilter, dns_cache_config: dnsCacheConfig() } },
            { name: 'envoy.filters.http.router', typed_config: { '@type': T.router } },
          ],
        },
      }],
    }],
  };
}

function dfpCluster(name: string): Obj {
  return {
    name,
    connect_timeout: '0.25s',
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy', typed_config: { '@type': T.dfpCluster, dns_cache_config: dnsCacheConfig() } },
  };
}

/**
 * The egress listener and its two clusters. Throws on an empty internal_domains (the RFC's default: the proxy would
 * then inject nowhere; this harness asks for at least one) or a relative SDS directory.
 */
export function renderEgressProxy(plan: EgressProxyPlan): { listeners: Obj[]; clusters: Obj[] } {
  if (!posix.isAbsolute(plan.sdsDir)) throw new Error(`egress proxy: sdsDir ${JSON.stringify(plan.sdsDir)} must be an absolute path`);
  const domains = normalizeInternalDomains(plan.internalDomains);
  if (domains.length === 0) throw new Error('egress proxy: internal_domains is empty, so no destination would get the instance identity certificate');
  const mtls: Obj = {
    ...dfpCluster(EGRESS_MTLS_CLUSTER),
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': T.upstreamTls,
        common_tls_context: {
          tls_certificate_sds_secret_configs: [sds(plan, EGRESS_CLIENT_CERT)],
          validation_context_sds_secret_config: sds(plan, EGRESS_SERVER_VALIDATION),
        },
      },
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': T.httpOptions,
        upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  };
  return { listeners: [listener(domains)], clusters: [mtls, dfpCluster(EGRESS_FORWARD_CLUSTER)] };
}

/** Stats the sidecar keeps when the egress proxy is on (the executor otherwise rejects all). */
export const EGRESS_STATS_PREFIXES: readonly string[] = [`http.${EGRESS_STAT_PREFIX}.`, 'cluster.egress-'];
