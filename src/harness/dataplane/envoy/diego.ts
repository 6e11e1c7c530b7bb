// The Diego executor's per-container Envoy sidecar as a static bootstrap, plus the SDS files it watches.
// Pure: DiegoSidecarPlan in, YAML out. Sources (cloudfoundry/executor@9e97ac1): envoyconfig/config.go
// (GenerateBootstrap, generateListeners, GenerateSDSCertAndKey, GenerateSDSCAResource),
// depot/containerstore/proxy_config_handler.go (writeConfig); the 62443 listener follows the draft RFC
// "Full mTLS for Diego C2C" (cloudfoundry/community#1437), for which no executor code exists.
//
// Certificates come through FILE-BASED SDS exactly like Diego: each listener names a secret in a YAML
// DiscoveryResponse under plan.sdsDir (`path_config_source` + `watched_directory`), and the files inline the PEMs.
// Checked on Envoy 1.36.4: rewriting a file as `<name>.tmp` and renaming it into place (what writeConfig does on
// rotation, and on shutdown with an empty GUID) swaps the served certificate without a restart. SDS needs a node id
// and cluster, which the executor's bootstrap sets. Write the files BEFORE starting Envoy (a missing path is fatal).
import { posix } from 'node:path';
import { stringify } from 'yaml';
import { C2CMTLSPort, C2CTLSPort, DefaultHTTPPort, type PortMapping } from '../../model/cf/diego.ts';
import { EGRESS_PROXY_PORT, EGRESS_STATS_PREFIXES, renderEgressProxy } from './egress-proxy.ts';
import { addr, T, type Obj } from './common.ts';


/** envoyconfig.SupportedCipherSuites: the executor's list, RSA only (Diego's instance identity keys are RSA). */
export const SupportedCipherSuites = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256'] as const;
/**
 * The default of DiegoSidecarPlan.cipherSuites: the executor's list with the ECDHE-ECDSA equivalents interleaved.
 * Our PKI issues ECDSA P-256 keys; with the RSA-only list Envoy 1.36.4 answers a TLS 1.2 ClientHello with
 * handshake_failure (alert 40) while TLS 1.3 (whose suites cipher_suites does not govern) still works, so a
 * tcp-router or gorouter speaking TLS 1.2 would fail for a reason real Diego (RSA keys) never shows. Pass
 * SupportedCipherSuites explicitly to reproduce the executor byte for byte (then use RSA identities for TLS 1.2).
 */
export const DiegoCipherSuites = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
] as const;
/** envoyconfig.AlpnProtocols: ONE string; Envoy joins the list with "," and splits it again, so it offers h2 and http/1.1. */
export const AlpnProtocols = ['h2,http/1.1'] as const;

/** proxy_config_handler.go: where the container sees its SDS files (bind-mounted from the cell). */
export const DIEGO_SDS_DIR = '/etc/cf-assets/envoy_config';

/** An SDS file and the secret it carries. */
export interface SdsSecret {
  file: string;
  secret: string;
}
/** Route-integrity ports' server certificate: the instance identity. */
export const SDS_ID_CERT_AND_KEY: SdsSecret = { file: 'sds-id-cert-and-key.yaml', secret: 'id-cert-and-key' };
/** 61443's server certificate: the C2C certificate (DNS SANs = GUID + internal routes). */
export const SDS_C2C_CERT_AND_KEY: SdsSecret = { file: 'sds-c2c-cert-and-key.yaml', secret: 'c2c-cert-and-key' };
/** Client-cert validation on route-integrity ports: trusted_ca_certificates + verify_subject_alt_name. */
export const SDS_ID_VALIDATION_CONTEXT: SdsSecret = { file: 'sds-id-validation-context.yaml', secret: 'id-validation-context' };
/** 62443's client-cert validation: the instance identity CA, any SAN (RFC draft; the name is ours, no executor code yet). */
export const SDS_C2C_MTLS_VALIDATION_CONTEXT: SdsSecret = { file: 'sds-c2c-mtls-validation-context.yaml', secret: 'c2c-mtls-validation-context' };

/** max-uint32 (math.MaxUint32), the executor's "no limit" for circuit breakers. */
const MAX_UINT32 = 4_294_967_295;
/** generateProxyConfig: ConnectTimeout 250000000 ns. */
const CONNECT_TIMEOUT = '0.25s';


export interface DiegoSidecarPlan {
  /** executor container.Guid (the LRP instance GUID); goes into the node id. */
  instanceGuid: string;
  /** container.InternalIP: where the service clusters dial the app. */
  containerIp: string;
  /** From allocateProxyPorts (model/cf/diego.ts): one listener each, in this order. */
  mappings: readonly PortMapping[];
  /** From adminPort(mappings, appPorts); bound on 127.0.0.1. */
  adminPort: number;
  /** containers.proxy.enable_http2 (diego-release default true): ALPN on every listener except 61443. */
  enableHttp2: boolean;
  /** containers.proxy.require_and_verify_client_certificates: client certs on route-integrity ports (never 61443). */
  requireAndVerifyClientCertificates: boolean;
  /** Absolute directory holding the SDS files, watched for renames; DIEGO_SDS_DIR inside a real container. */
  sdsDir: string;
  /** Default DiegoCipherSuites (see there); SupportedCipherSuites is the executor's exact list. */
  cipherSuites?: readonly string[];
  /**
   * containers.proxy.enable_egress_proxy (RFC draft; default off): the 127.0.0.1:61445 egress listener of
   * egress-proxy.ts in the same Envoy, injecting the instance identity cert for `*.<internalDomains>:62443`. It reads
   * the 62443 validation context file, so renderDiegoSdsFiles must be given `instanceIdentityCa`.
   */
  egressProxy?: { internalDomains: readonly string[] };
}


/** sdsFileConfigSource: the SDS file plus its directory as watched_directory (rename-based rotation). */
function sdsConfig(plan: DiegoSidecarPlan, s: SdsSecret): Obj {
  return { name: s.secret, sds_config: { path_config_source: { path: posix.join(plan.sdsDir, s.file), watched_directory: { path: plan.sdsDir } } } };
}

export function listenerName(m: Pick<PortMapping, 'appPort' | 'proxyPort'>): string {
  return `listener-${m.appPort}-${m.proxyPort}`;
}
/** Stats kept on a Diego sidecar (see renderDiegoSidecar): `cluster.service-cluster-<port>.*`. */
export const SERVICE_CLUSTER_STATS_PREFIX = 'cluster.service-cluster-';

export function serviceClusterName(appPort: number): string {
  return `service-cluster-${appPort}`;
}

/** generateListeners' DownstreamTlsContext, by listener kind. */
function downstreamTls(plan: DiegoSidecarPlan, m: PortMapping): Obj {
  const common: Obj = { tls_params: { cipher_suites: [...(plan.cipherSuites ?? DiegoCipherSuites)] } };
  // ALPN: enable_http2 and never on 61443 (which stays a plain TLS TCP port).
  if (plan.enableHttp2 && m.kind !== 'c2c-tls') common.alpn_protocols = [...AlpnProtocols];
  common.tls_certificate_sds_secret_configs = [sdsConfig(plan, m.kind === 'route-integrity' ? SDS_ID_CERT_AND_KEY : SDS_C2C_CERT_AND_KEY)];
  const ctx: Obj = { '@type': T.downstreamTls, common_tls_context: common };
  if (m.kind === 'route-integrity' && plan.requireAndVerifyClientCertificates) {
    ctx.require_client_certificate = true;
    common.validation_context_sds_secret_config = sdsConfig(plan, SDS_ID_VALIDATION_CONTEXT);
  } else if (m.kind === 'c2c-mtls') {
    // RFC draft: RequireClientCertificate true, validated against the instance identity CA.
    ctx.require_client_certificate = true;
    common.validation_context_sds_secret_config = sdsConfig(plan, SDS_C2C_MTLS_VALIDATION_CONTEXT);
  }
  // The executor names the transport socket after the listener; with typed_config the name is only a label.
  return { name: listenerName(m), typed_config: ctx };
}

/** The executor's only filter: envoy.tcp_proxy, stat prefix stats-<app>-<proxy>. */
function tcpProxy(m: PortMapping): Obj {
  return {
    name: 'envoy.tcp_proxy',
    typed_config: { '@type': T.tcpProxy, stat_prefix: `stats-${m.appPort}-${m.proxyPort}`, cluster: serviceClusterName(m.appPort) },
  };
}

/**
 * RFC draft 62443: an HTTP connection manager that replaces any incoming XFCC with the verified client certificate's
 * Hash (always present), Subject, URI and DNS (SANITIZE_SET), then routes everything to the app's 8080 cluster.
 * Route timeout 0s (none), so it bounds requests no more than the TCP listeners do.
 */
function c2cMtlsHcm(m: PortMapping): Obj {
  const cluster = serviceClusterName(m.appPort);
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': T.hcm,
      stat_prefix: `stats-${m.appPort}-${m.proxyPort}`,
      codec_type: 'AUTO',
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { subject: true, uri: true, dns: true },
      route_config: {
        name: listenerName(m),
        virtual_hosts: [{ name: cluster, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, timeout: '0s' } }] }],
      },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': T.router } }],
    },
  };
}

function listener(plan: DiegoSidecarPlan, m: PortMapping): Obj {
  return {
    name: listenerName(m),
    address: addr('0.0.0.0', m.proxyPort),
    filter_chains: [{ filters: [m.kind === 'c2c-mtls' ? c2cMtlsHcm(m) : tcpProxy(m)], transport_socket: downstreamTls(plan, m) }],
  };
}

/**
 * generateProxyConfig's service cluster. The circuit breakers are rendered as the executor writes them: THREE
 * DEFAULT-priority thresholds, one field each. Envoy uses the first threshold of a priority, so only max_connections
 * is really lifted; max_pending_requests and max_requests stay at Envoy's default 1024 (as on a real Diego cell).
 */
function serviceCluster(plan: DiegoSidecarPlan, appPort: number): Obj {
  const name = serviceClusterName(appPort);
  return {
    name,
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(plan.containerIp, appPort) } }] }] },
    circuit_breakers: { thresholds: [{ max_connections: MAX_UINT32 }, { max_pending_requests: MAX_UINT32 }, { max_requests: MAX_UINT32 }] },
  };
}

function checkPlan(plan: DiegoSidecarPlan): void {
  if (!posix.isAbsolute(plan.sdsDir)) throw new Error(`diego: sdsDir ${JSON.stringify(plan.sdsDir)} must be an absolute path`);
  if (!plan.instanceGuid) throw new Error('diego: instanceGuid is empty');
  const seen = new Set<number>();
  for (const m of plan.mappings) {
    if (seen.has(m.proxyPort)) throw new Error(`diego: proxy port ${m.proxyPort} appears twice`);
    seen.add(m.proxyPort);
    const c2c = m.kind === 'c2c-tls' ? C2CTLSPort : m.kind === 'c2c-mtls' ? C2CMTLSPort : undefined;
    if (c2c !== undefined && (m.proxyPort !== c2c || m.appPort !== DefaultHTTPPort)) {
      throw new Error(`diego: a ${m.kind} listener is ${c2c} -> ${DefaultHTTPPort}, not ${m.proxyPort} -> ${m.appPort}`);
    }
    if (m.kind === 'route-integrity' && (m.proxyPort === C2CTLSPort || m.proxyPort === C2CMTLSPort)) {
      throw new Error(`diego: port ${m.proxyPort} is reserved for container networking`);
    }
  }
  if (seen.has(plan.adminPort)) throw new Error(`diego: admin port ${plan.adminPort} is also a proxy port`);
  if (plan.egressProxy && (seen.has(EGRESS_PROXY_PORT) || plan.adminPort === EGRESS_PROXY_PORT)) {
    throw new Error(`diego: port ${EGRESS_PROXY_PORT} is reserved for the egress proxy`);
  }
}

/**
 * The sidecar bootstrap (YAML). Differences from GenerateBootstrap, each forced by Envoy 1.36.4:
 * - no `admin.access_log_path: /dev/null`: deprecated; without it the admin API simply does not log;
 * - no layered_runtime `envoy.reloadable_features.new_tcp_connection_pool: false`: 1.36.4 still loads it, but as a
 *   REMOVED guard (ENVOY_BUG "Using a removed guard ... will be treated as invalid configuration", seen with
 *   --mode validate); the old pool it selected no longer exists, so the key has no effect;
 * - client SANs are matched with typed matchers (see renderSdsValidationContext);
 * - clusters come out in first-appearance order (the executor ranges over a Go map).
 */
export function renderDiegoSidecar(plan: DiegoSidecarPlan): string {
  checkPlan(plan);
  const appPorts = [...new Set(plan.mappings.map((m) => m.appPort))];
  const egress = plan.egressProxy ? renderEgressProxy({ internalDomains: plan.egressProxy.internalDomains, sdsDir: plan.sdsDir }) : { listeners: [], clusters: [] };
  // The executor rejects all stats (stats_matcher reject_all). meshproof keeps two families so a suite can
  // prove what happened inside the container: the service clusters' counters (did any connection reach the
  // app?) and, with the egress proxy, its own (which calls went through it). Nothing else changes.
  const statsMatcher = { inclusion_list: { patterns: [SERVICE_CLUSTER_STATS_PREFIX, ...(plan.egressProxy ? EGRESS_STATS_PREFIXES : [])].map((prefix) => ({ prefix })) } };
  const bootstrap = {
    node: { id: `sidecar~${plan.containerIp}~${plan.instanceGuid}~x`, cluster: 'proxy-cluster' },
    admin: { address: addr('127.0.0.1', plan.adminPort) },
    stats_config: { stats_matcher: statsMatcher },
    static_resources: {
      listeners: [...plan.mappings.map((m) => listener(plan, m)), ...egress.listeners],
      clusters: [...appPorts.map((p) => serviceCluster(plan, p)), ...egress.clusters],
    },
  };
  return stringify(bootstrap, { aliasDuplicateObjects: false, lineWidth: 0 });
}

// ---------------------------------------------------------------- SDS files

/** envoyconfig.Credential: certificate chain and private key, PEM. Diego appends the signing CA to the leaf. */
export interface Credential {
  cert: string;
  key: string;
}

function discoveryResponse(secret: Obj): string {
  return stringify({ version_info: '0', resources: [{ '@type': T.secret, ...secret }] }, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** GenerateSDSCertAndKey: a DiscoveryResponse holding one tls_certificate secret with the PEMs inline. */
export function renderSdsCertAndKey(name: string, cred: Credential): string {
  if (!cred.cert.includes('-----BEGIN') || !cred.key.includes('-----BEGIN')) throw new Error(`diego: secret ${name} needs PEM certificate and key`);
  return discoveryResponse({ name, tls_certificate: { certificate_chain: { inline_string: cred.cert }, private_key: { inline_string: cred.key } } });
}

/** SubjectAltNameMatcher for one verify_subject_alt_name value: URI when it has a scheme, IP_ADDRESS for IPs, else DNS. */
function sanMatcher(san: string): Obj {
  const type = /^[a-z][a-z0-9+.-]*:\/\//i.test(san) ? 'URI' : /^(\d{1,3}\.){3}\d{1,3}$|:.*:/.test(san) ? 'IP_ADDRESS' : 'DNS';
  return { san_type: type, matcher: { exact: san } };
}

/**
 * GenerateSDSCAResource: a validation_context secret trusting the concatenated CAs (empty strings skipped, like
 * pemConcatenate). The executor uses the deprecated untyped `match_subject_alt_names` (any SAN type); this writes
 * `match_typed_subject_alt_names` with the type inferred per value (tcp-router.service.cf.internal → DNS), which
 * accepts the same certificates Diego's components carry. No SANs: any certificate signed by a trusted CA.
 */
export function renderSdsValidationContext(name: string, trustedCaCertificates: readonly string[], verifySubjectAltName: readonly string[] = []): string {
  const pems = trustedCaCertificates.filter((c) => c !== '');
  if (pems.length === 0 || pems.some((c) => !c.includes('-----BEGIN CERTIFICATE-----'))) {
    throw new Error(`diego: secret ${name} needs at least one PEM CA certificate`);
  }
  const validation: Obj = { trusted_ca: { inline_string: pems.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join('') } };
  if (verifySubjectAltName.length > 0) validation.match_typed_subject_alt_names = verifySubjectAltName.map(sanMatcher);
  return discoveryResponse({ name, validation_context: validation });
}

export interface DiegoSdsInputs {
  /** The instance identity credential (route-integrity ports). */
  instanceIdentity: Credential;
  /** The C2C credential (61443 and 62443). */
  c2c: Credential;
  /** containers.proxy.trusted_ca_certificates (cf-deployment: gorouter, ssh-proxy and tcp-router backend CAs). */
  trustedCaCertificates: readonly string[];
  /** containers.proxy.verify_subject_alt_name (cf-deployment: gorouter/ssh-proxy/tcp-router.service.cf.internal). */
  verifySubjectAltName: readonly string[];
  /** The instance identity CA(s) 62443 trusts for callers; needed only when a c2c-mtls listener exists. */
  instanceIdentityCa?: readonly string[];
}

/**
 * writeConfig's SDS files: file name → content. Write each one to `<name>.tmp` in plan.sdsDir and rename it into
 * place (the PkiStore pattern), so Envoy's directory watch never reads a partial file.
 */
export function renderDiegoSdsFiles(inputs: DiegoSdsInputs): Record<string, string> {
  const files: Record<string, string> = {
    [SDS_ID_CERT_AND_KEY.file]: renderSdsCertAndKey(SDS_ID_CERT_AND_KEY.secret, inputs.instanceIdentity),
    [SDS_C2C_CERT_AND_KEY.file]: renderSdsCertAndKey(SDS_C2C_CERT_AND_KEY.secret, inputs.c2c),
    [SDS_ID_VALIDATION_CONTEXT.file]: renderSdsValidationContext(SDS_ID_VALIDATION_CONTEXT.secret, inputs.trustedCaCertificates, inputs.verifySubjectAltName),
  };
  if (inputs.instanceIdentityCa) {
    files[SDS_C2C_MTLS_VALIDATION_CONTEXT.file] = renderSdsValidationContext(SDS_C2C_MTLS_VALIDATION_CONTEXT.secret, inputs.instanceIdentityCa);
  }
  return files;
}
