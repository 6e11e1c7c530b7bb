// Cloud Foundry TCP routes as routing-api models them, validates them and as their producers write them.
// Pure: JSON in, typed routes out; no I/O. Sources: routing-api@44661ed models/tcp_route.go and
// handlers/validator.go, route-emitter@26f4ea3 routingtable/endpoint.go, route-registrar@196da85 routingapi/api.go.
import { UserError } from '../errors.ts';

/** routing-api models/route.go ModificationTag. */
export interface ModificationTag {
  guid: string;
  /** uint32 */
  index: number;
}

/**
 * routing-api models/tcp_route.go TcpMappingEntity, with its JSON names. Go non-pointer fields are always present
 * (a missing value decodes as Go's zero value); Go pointer fields (`*string`, `*int`) are optional.
 */
export interface TcpMappingEntity {
  /** RouterGroupGuid */
  router_group_guid: string;
  /** ExternalPort, uint16 */
  port: number;
  /** HostIP */
  backend_ip: string;
  /** HostPort, uint16 */
  backend_port: number;
  /** HostTLSPort, int: -1 = TLS intentionally off, 0 = not known (missing decodes as 0), >0 = the backend's TLS port. */
  backend_tls_port: number;
  /** InstanceId: never format-validated; the backend certificate's identity (verifyhost). */
  instance_id: string;
  /** SniHostname, *string */
  backend_sni_hostname?: string;
  /** SniRewriteHostname, *string */
  sni_rewrite_hostname?: string;
  modification_tag: ModificationTag;
  /** TTL, *int (seconds); routing-api's SetDefaults fills max_ttl when absent. */
  ttl?: number;
  isolation_segment: string;
  /** TerminateFrontendTLS (routing-api#75) */
  terminate_frontend_tls: boolean;
  /** ALPNs, a CSV string (routing-api#75) */
  alpns: string;
  /** EnableBackendMTLS (routing-api 151884c) */
  enable_backend_mtls: boolean;
}

/** routing-api's default max_ttl in seconds. */
export const DEFAULT_MAX_TTL = 120;

// ---------------------------------------------------------------- parsing

type Kind = 'string' | 'uint16' | 'int' | 'bool' | 'modification_tag';

/** Every JSON field of TcpMappingEntity and its Go type; `optional` marks Go pointers (absent stays absent). */
const FIELDS: Record<keyof TcpMappingEntity, { kind: Kind; optional?: true }> = {
  router_group_guid: { kind: 'string' },
  port: { kind: 'uint16' },
  backend_ip: { kind: 'string' },
  backend_port: { kind: 'uint16' },
  backend_tls_port: { kind: 'int' },
  instance_id: { kind: 'string' },
  backend_sni_hostname: { kind: 'string', optional: true },
  sni_rewrite_hostname: { kind: 'string', optional: true },
  modification_tag: { kind: 'modification_tag' },
  ttl: { kind: 'int', optional: true },
  isolation_segment: { kind: 'string' },
  terminate_frontend_tls: { kind: 'bool' },
  alpns: { kind: 'string' },
  enable_backend_mtls: { kind: 'bool' },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkInt(v: unknown, where: string, min: number, max: number, goType: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new UserError(`tcp_routes: ${where} must be a Go ${goType} (an integer in ${min}..${max}), got ${JSON.stringify(v)}`);
  }
  return v;
}

function parseModificationTag(v: unknown, where: string): ModificationTag {
  if (!isObject(v)) throw new UserError(`tcp_routes: ${where} must be an object {guid, index}, got ${JSON.stringify(v)}`);
  const unknown = Object.keys(v).filter((k) => k !== 'guid' && k !== 'index');
  if (unknown.length > 0) throw new UserError(`tcp_routes: ${where} has unknown field(s) ${unknown.join(', ')}`);
  const tag: ModificationTag = { guid: '', index: 0 };
  if (v.guid !== undefined && v.guid !== null) {
    if (typeof v.guid !== 'string') throw new UserError(`tcp_routes: ${where}.guid must be a string, got ${JSON.stringify(v.guid)}`);
    tag.guid = v.guid;
  }
  if (v.index !== undefined && v.index !== null) tag.index = checkInt(v.index, `${where}.index`, 0, 0xffff_ffff, 'uint32');
  return tag;
}

function parseEntity(v: unknown, i: number): TcpMappingEntity {
  const at = `[${i}]`;
  if (!isObject(v)) throw new UserError(`tcp_routes: ${at} must be an object, got ${JSON.stringify(v)}`);
  const unknown = Object.keys(v).filter((k) => !Object.hasOwn(FIELDS, k));
  if (unknown.length > 0) {
    throw new UserError(`tcp_routes: ${at} has unknown field(s) ${unknown.join(', ')} (routing-api TcpMappingEntity has ${Object.keys(FIELDS).join(', ')})`);
  }
  // Go's zero values for the non-pointer fields: what encoding/json leaves when a field is missing or null.
  const e: TcpMappingEntity = {
    router_group_guid: '',
    port: 0,
    backend_ip: '',
    backend_port: 0,
    backend_tls_port: 0,
    instance_id: '',
    modification_tag: { guid: '', index: 0 },
    isolation_segment: '',
    terminate_frontend_tls: false,
    alpns: '',
    enable_backend_mtls: false,
  };
  const out = e as unknown as Record<string, unknown>;
  for (const [name, spec] of Object.entries(FIELDS)) {
    const value = v[name];
    if (value === undefined || value === null) continue;
    const where = `${at}.${name}`;
    switch (spec.kind) {
      case 'string':
        if (typeof value !== 'string') throw new UserError(`tcp_routes: ${where} must be a string, got ${JSON.stringify(value)}`);
        out[name] = value;
        break;
      case 'bool':
        if (typeof value !== 'boolean') throw new UserError(`tcp_routes: ${where} must be a boolean, got ${JSON.stringify(value)}`);
        out[name] = value;
        break;
      case 'uint16':
        out[name] = checkInt(value, where, 0, 65535, 'uint16');
        break;
      case 'int':
        out[name] = checkInt(value, where, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'int');
        break;
      case 'modification_tag':
        out[name] = parseModificationTag(value, where);
        break;
    }
  }
  return e;
}

/**
 * The body of routing-api `GET /routing/v1/tcp_routes`: a JSON array of TcpMappingEntity. Stricter than Go's
 * encoding/json on purpose: unknown (or differently cased) fields and wrong types are errors naming the field.
 * Missing or null non-pointer fields take Go's zero value, as routing-api's decoder gives them.
 */
export function parseTcpRoutes(json: unknown): TcpMappingEntity[] {
  if (!Array.isArray(json)) throw new UserError(`tcp_routes: expected a JSON array (GET /routing/v1/tcp_routes), got ${json === null ? 'null' : typeof json}`);
  return json.map((v, i) => parseEntity(v, i));
}

// ---------------------------------------------------------------- validation

/** TcpRouteMapping.String(): `<router_group_guid>:<port><-><backend_ip>:<backend_port>`. */
export function tcpRouteMappingString(m: TcpMappingEntity): string {
  return `${m.router_group_guid}:${m.port}<->${m.backend_ip}:${m.backend_port}`;
}

/**
 * routing-api handlers/validator.go validateTcpRouteMapping as run on create (checkTTL = true), after
 * TcpRouteMapping.SetDefaults(maxTTL) (absent ttl = max_ttl). Returns the TcpRouteMappingInvalidError reason, or null.
 * The reference quotes only the backend-port reason; every other string is copied from validator.go@44661ed.
 */
export function validateTcpRouteMapping(m: TcpMappingEntity, maxTtl: number = DEFAULT_MAX_TTL): string | null {
  const rm = `RouteMapping=[${tcpRouteMappingString(m)}]`;
  if (m.router_group_guid === '') return `Each tcp mapping requires a non empty router group guid. ${rm}`;
  if (m.port <= 0) return `Each tcp mapping requires a positive external port. ${rm}`;
  if (m.backend_ip === '') return `Each tcp mapping requires a non empty backend ip. ${rm}`;
  // routing-api PR #51: backend_port may be 0 when a TLS port is set.
  if (m.backend_port <= 0 && m.backend_tls_port <= 0) return `Each tcp mapping requires a positive backend port. ${rm}`;
  if (m.backend_tls_port > 65535) {
    return `Each tcp mapping with a backend TLS port requires that port to be less than or equal to 65535. ${rm}`;
  }
  const ttl = m.ttl ?? maxTtl;
  if (ttl > maxTtl) return `Each tcp mapping requires TTL to be less than or equal to ${maxTtl}. ${rm}`;
  if (ttl <= 0) return 'Each tcp route mapping requires a ttl greater than 0';
  if (m.alpns !== '' && !m.terminate_frontend_tls) return `Each tcp mapping can define ALPNs only when TerminateFrontendTLS is enabled. ${rm}`;
  return null;
}

/**
 * A routing table file (fixtures/cf/routes/*.json): routing-api's GET /routing/v1/tcp_routes body, each mapping
 * parsed and then validated as routing-api validates it on create. Malformed JSON, a bad field, or a mapping
 * routing-api would reject (e.g. no `backend_port` and no positive `backend_tls_port`) is a one-line UserError
 * naming the file, the mapping and the fix.
 */
export function parseRouteTable(text: string, source: string, maxTtl: number = DEFAULT_MAX_TTL): TcpMappingEntity[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not JSON (${(e as Error).message.split('\n')[0]}): fix the file`);
  }
  let routes: TcpMappingEntity[];
  try {
    routes = parseTcpRoutes(json);
  } catch (e) {
    throw e instanceof UserError ? new UserError(`${source}: ${e.message}`) : e;
  }
  routes.forEach((r, i) => {
    const invalid = validateTcpRouteMapping(r, maxTtl);
    if (invalid) throw new UserError(`${source}: [${i}] routing-api rejects this mapping: ${invalid}`);
  });
  return routes;
}

// ---------------------------------------------------------------- producers

function entity(fields: Pick<TcpMappingEntity, 'router_group_guid' | 'port' | 'backend_ip' | 'backend_port' | 'backend_tls_port' | 'instance_id'>): TcpMappingEntity {
  return {
    ...fields,
    modification_tag: { guid: '', index: 0 },
    isolation_segment: '',
    terminate_frontend_tls: false,
    alpns: '',
    enable_backend_mtls: false,
  };
}

/** One Diego endpoint of an LRP with a TCP route (route-emitter routingtable Endpoint + ExternalEndpointInfo). */
export interface EmitterEndpoint {
  /** ExternalEndpointInfo.RouterGroupGUID */
  routerGroupGuid: string;
  /** ExternalEndpointInfo.Port: the tcp-router's external port */
  externalPort: number;
  /** Endpoint.Host: the cell IP */
  hostIp: string;
  /** Endpoint.Port: the host port NAT-ed to the app's container port */
  hostPort: number;
  /** Endpoint.TlsProxyPort: the host port NAT-ed to the Envoy TLS port (61001 in the container) */
  tlsProxyPort: number;
  /** Endpoint.InstanceGUID */
  instanceGuid: string;
  /** route-emitter's tcp_route_ttl in seconds, set on every mapping it sends (routing_api_emitter.go). */
  ttl?: number;
}

/**
 * route-emitter ExternalEndpointInfo.MessageFor (non-direct-instance routes). Defaults tlsHostPort=-1 and
 * instanceGUID=""; with diego-release `route_emitter tcp.enable_tls` on, backend_tls_port = the Envoy host port and
 * instance_id = the instance GUID. No SNI hostname, zero modification tag.
 */
export function emitTcpRoute(endpoint: EmitterEndpoint, opts: { enableTls: boolean }): TcpMappingEntity {
  const e = entity({
    router_group_guid: endpoint.routerGroupGuid,
    port: endpoint.externalPort,
    backend_ip: endpoint.hostIp,
    backend_port: endpoint.hostPort,
    backend_tls_port: opts.enableTls ? endpoint.tlsProxyPort : -1,
    instance_id: opts.enableTls ? endpoint.instanceGuid : '',
  });
  if (endpoint.ttl !== undefined) e.ttl = endpoint.ttl;
  return e;
}

/** One route-registrar `tcp` route (route-registrar config.Route). */
export interface RegistrarRoute {
  /** resolved from `router_group` by name */
  routerGroupGuid: string;
  /** external_port */
  externalPort: number;
  /** host */
  host: string;
  /** port */
  port: number;
  /** server_cert_domain_san: sent as backend_sni_hostname when non-empty */
  serverCertDomainSan?: string;
  /** registration_interval in seconds */
  registrationIntervalSeconds: number;
  /** routing_api.max_ttl in seconds (route-registrar caps the TTL with it) */
  maxTtlSeconds?: number;
}

/**
 * route-registrar RoutingAPI.makeTcpRouteMapping: backend_tls_port -1 (TLS intentionally off), instance_id "",
 * ttl = calculateTTL(registration_interval × 2.1, capped at max_ttl, at least 1 s).
 */
export function registrarTcpRoute(r: RegistrarRoute): TcpMappingEntity {
  const e = entity({
    router_group_guid: r.routerGroupGuid,
    port: r.externalPort,
    backend_ip: r.host,
    backend_port: r.port,
    backend_tls_port: -1,
    instance_id: '',
  });
  if (r.serverCertDomainSan !== undefined && r.serverCertDomainSan !== '') e.backend_sni_hostname = r.serverCertDomainSan;
  e.ttl = registrarTtl(r.registrationIntervalSeconds, r.maxTtlSeconds ?? DEFAULT_MAX_TTL);
  return e;
}

/** route-registrar calculateTTL (TTL_BUFFER 2.1), on whole nanoseconds like time.Duration. */
function registrarTtl(intervalSeconds: number, maxTtlSeconds: number): number {
  const ns = Math.trunc(intervalSeconds * 1e9 * 2.1);
  if (ns > maxTtlSeconds * 1e9) return Math.trunc(maxTtlSeconds);
  const s = Math.trunc(ns / 1e9);
  return s < 1 ? 1 : s;
}
