// Cloud Foundry tcp-router on HAProxy: the backend_tls config check, the routing table → haproxy.cfg marshaller and
// the BOSH base config. Pure: routes and PEM text in, config text and lager log records out; no I/O.
// Sources: cf-tcp-router@2de6b29 models/haproxy_config.go (NewHAProxyConfig), config/config.go (backend_tls);
// routing-release@6361914 src/code.cloudfoundry.org/cf-tcp-router/configurer/haproxy/config_marshaller.go (current
// option order); routing-release jobs/tcp_router/templates/haproxy.conf.template.erb and jobs/tcp_router/spec.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { UserError } from '../../model/errors.ts';
import type { TcpMappingEntity } from '../../model/cf/routes.ts';

// ---------------------------------------------------------------- lager

/** lager v3 log levels (lager.LogLevel). */
export const LAGER_LEVEL = { debug: 0, info: 1, error: 2, fatal: 3 } as const;

/** One lager JSON record as tcp-router writes it (lagerflags.New("tcp-router")), minus the timestamp (no clock here). */
export interface LagerLog {
  source: 'tcp-router';
  /** `<component>.<action>`, e.g. `tcp-router.skipping-invalid-routing-table-entry` */
  message: string;
  log_level: number;
  /** lager.Data; Logger.Error adds `error: err.Error()`. */
  data: Record<string, unknown>;
}

/**
 * One lager JSON line: keys in lager's order (source, message, log_level, data), the top-level data keys sorted as Go
 * marshals a map, and `<`, `>`, `&`, U+2028, U+2029 escaped as Go's encoding/json does.
 */
export function formatLager(l: LagerLog): string {
  const data: Record<string, unknown> = {};
  for (const k of Object.keys(l.data).sort()) data[k] = l.data[k];
  return JSON.stringify({ source: l.source, message: l.message, log_level: l.log_level, data }).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function lagerError(action: string, error: string, data: Record<string, unknown> = {}): LagerLog {
  return { source: 'tcp-router', message: `tcp-router.${action}`, log_level: LAGER_LEVEL.error, data: { ...data, error } };
}

// ---------------------------------------------------------------- backend_tls config

/** tcp-router config.go `backend_tls`: enabled, ca_cert_path, client_cert_and_key_path. */
export interface BackendTlsConfig {
  /** backend_tls.enabled */
  enabled: boolean;
  /** backend_tls.ca_cert_path: required when enabled; exactly one CERTIFICATE PEM block. */
  caCertPath?: string;
  /** backend_tls.client_cert_and_key_path: one PEM file, the certificate then the key, nothing after. */
  clientCertAndKeyPath?: string;
}

const CONFIG = 'tcp-router config';

function configError(msg: string): UserError {
  return new UserError(`${CONFIG}: ${msg.replace(/\s+/g, ' ').trim()}`);
}

/** The checks that need no file contents; shared by validateBackendTls and buildHaproxyConfig. */
function checkBackendTlsShape(cfg: BackendTlsConfig): void {
  const ca = (cfg.caCertPath ?? '') !== '';
  const client = (cfg.clientCertAndKeyPath ?? '') !== '';
  // config.go
  if (cfg.enabled && !ca) throw configError('Backend TLS was enabled but no CA certificates were specified');
  // TLS TCP routes proposal (routing-release#406): certs without a CA are an error before anything starts. Our wording.
  if (client && !ca) {
    throw configError(
      `backend_tls.client_cert_and_key_path ${JSON.stringify(cfg.clientCertAndKeyPath)} is set without backend_tls.ca_cert_path: a client certificate without a CA is a configuration error`,
    );
  }
}

interface PemBlock {
  type: string;
  hasHeaders: boolean;
  /** the block re-encoded as PEM text */
  pem: string;
}

/**
 * Go's encoding/pem Decode: the first block whose BEGIN line starts the data or a line; text before it is skipped.
 * Returns null and the data unchanged when there is no well-formed block.
 */
function pemDecode(data: string): { block: PemBlock | null; rest: string } {
  const re = /(?:^|\n)-----BEGIN ([^\n-][^\n]*?)-----[ \t]*\r?\n([\s\S]*?)(?:\r?\n)?-----END \1-----[ \t]*(?:\r?\n|$)/;
  const m = re.exec(data);
  if (m === null) return { block: null, rest: data };
  const type = m[1]!;
  const lines = m[2]!.split(/\r?\n/);
  let i = 0;
  while (i < lines.length && lines[i]!.includes(':')) i++;
  const body = lines.slice(i).join('');
  if (!/^[A-Za-z0-9+/=\s]*$/.test(body) || body.replace(/\s/g, '').length === 0) return { block: null, rest: data };
  const b64 = body.replace(/\s/g, '');
  const wrapped = b64.match(/.{1,64}/g)!.join('\n');
  return {
    block: { type, hasHeaders: i > 0, pem: `-----BEGIN ${type}-----\n${wrapped}\n-----END ${type}-----\n` },
    rest: data.slice(m.index + m[0].length),
  };
}

function countPemBlocks(data: string): number {
  let n = 0;
  let rest = data;
  for (;;) {
    const { block, rest: next } = pemDecode(rest);
    if (block === null) return n;
    n++;
    rest = next;
  }
}

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * tcp-router config.go initConfigFromFile for the `backend_tls` block, plus the TLS TCP routes proposal's rule that a
 * client certificate without a CA is an error. The PEM contents are passed in (`files.ca`, `files.clientCertAndKey`);
 * throws a one-line UserError. With `enabled: false` tcp-router ignores both paths, so no contents are checked.
 */
export function validateBackendTls(cfg: BackendTlsConfig, files: { ca?: string; clientCertAndKey?: string }): void {
  checkBackendTlsShape(cfg);
  if (!cfg.enabled) return;

  const caPath = cfg.caCertPath!;
  const q = JSON.stringify(caPath);
  if (files.ca === undefined) throw configError(`the contents of backend_tls.ca_cert_path ${q} were not supplied`);
  const ca = files.ca.trim();
  // config.go accepts an empty file; "exactly one CERTIFICATE block" (reference §1) does not. Our wording.
  if (ca === '') throw configError(`backend_tls.ca_cert_path ${q} is empty: it must hold exactly one CERTIFICATE PEM block`);
  const { block } = pemDecode(ca);
  if (block === null) throw configError(`Invalid PEM block found in file ${q}`);
  if (block.hasHeaders) throw configError(`Unexpected headers in PEM block in file ${q}`);
  if (block.type !== 'CERTIFICATE') throw configError(`Unexpected PEM block type ${JSON.stringify(block.type)} in file ${q} (wanted CERTIFICATE)`);
  try {
    new X509Certificate(block.pem);
  } catch (e) {
    throw configError(`failed to parse certificate in ${q}: ${why(e)}`);
  }
  // config.go decodes only the first block; the reference requires exactly one. Our wording.
  const blocks = countPemBlocks(ca);
  if (blocks !== 1) throw configError(`backend_tls.ca_cert_path ${q} holds ${blocks} PEM blocks: it must hold exactly one CERTIFICATE block`);

  if ((cfg.clientCertAndKeyPath ?? '') === '') return;
  const clientPath = cfg.clientCertAndKeyPath!;
  const cq = JSON.stringify(clientPath);
  if (files.clientCertAndKey === undefined) throw configError(`the contents of backend_tls.client_cert_and_key_path ${cq} were not supplied`);
  const certDecoded = pemDecode(files.clientCertAndKey.trim());
  if (certDecoded.block === null) throw configError(`Invalid PEM CERTIFICATE found in file ${cq}`);
  const keyDecoded = pemDecode(certDecoded.rest.trim());
  if (keyDecoded.block === null) throw configError(`Invalid PEM PRIVATE KEY found in file ${cq}`);
  if (keyDecoded.rest.trim() !== '') throw configError(`Unexpected data at the end of ${clientPath}`);
  // tls.X509KeyPair: a certificate first, then its private key. The reasons below are our wording.
  const bad = (reason: string): UserError => configError(`Unable to validate backend TLS client cert + key in file ${cq}: ${reason}`);
  if (certDecoded.block.type !== 'CERTIFICATE') throw bad(`the first PEM block is ${certDecoded.block.type}, want CERTIFICATE`);
  if (!/PRIVATE KEY$/.test(keyDecoded.block.type)) throw bad(`the second PEM block is ${keyDecoded.block.type}, want a PRIVATE KEY`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certDecoded.block.pem);
  } catch (e) {
    throw bad(`the certificate does not parse: ${why(e)}`);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyDecoded.block.pem));
  } catch (e) {
    throw bad(`the private key does not parse: ${why(e)}`);
  }
  if (!matches) throw bad('private key does not match public key');
}

// ---------------------------------------------------------------- routing table → haproxy.cfg

/** models.BackendServerKey, with Go's field names (it is what lager prints for a server). */
interface Server {
  Address: string;
  /** backend_port */
  Port: number;
  /** backend_tls_port */
  TLSPort: number;
  /** instance_id */
  InstanceID: string;
}

/**
 * govalidator's DNSName pattern as copied into models/haproxy_config.go (isValidDNSName): IPv4 addresses pass,
 * IPv6 addresses do not.
 */
const DNS_NAME = /^([a-zA-Z0-9_]{1}[a-zA-Z0-9_-]{0,62}){1}(\.[a-zA-Z0-9_]{1}[a-zA-Z0-9_-]{0,62})*[._]?$/;

export function isValidDnsName(hostname: string): boolean {
  if (hostname.replace(/\./g, '').length > 255) return false;
  return DNS_NAME.test(hostname);
}

/** Go's fmt `%s` of a uint16 (RoutingKey.Port, BackendServerKey.Port): a bad-verb rendering, as tcp-router logs it. */
function goS(v: string | number): string {
  return typeof v === 'string' ? v : `%!s(uint16=${v})`;
}

/** models.ErrInvalidField.Error() logged as `skipping-invalid-routing-table-entry`. */
function skipLog(port: number, sni: string, field: string, value: string | number): LagerLog {
  return lagerError(
    'skipping-invalid-routing-table-entry',
    `Skipping invalid routing table entry for port: ${port}/sni_hostname: "${sni}". Field: ${field}. Value: ${goS(value)}.`,
  );
}

/** Where HAProxy reads the backend TLS files (written into `server` lines); cfg says whether each is configured. */
export interface HaproxyTlsPaths {
  /** `ca-file` */
  caFile: string;
  /** `crt`: the client certificate + key bundle; needed when cfg.clientCertAndKeyPath is set. */
  clientPemFile?: string;
}

/**
 * The text cf-tcp-router appends to its base config (haproxy_configurer.go: base + Marshal), and what it logs.
 * NewHAProxyConfig: routes are keyed by (port, backend_sni_hostname), servers by (backend_ip, backend_port,
 * backend_tls_port, instance_id), duplicates collapse; invalid entries are skipped with
 * `skipping-invalid-routing-table-entry`; servers are sorted by address, then backend_port. Go walks maps in random
 * order; here keys are walked sorted (port, then SNI) so the log order is stable.
 * Marshal (current in-lined version): frontends by port, SNI backends by name, the -1/0/N × enabled table of
 * backend_tls_port, and `ssl verify required ca-file <ca> [crt <pem>] [verifyhost <id>]`.
 * With `enabled: false` tcp-router ignores ca_cert_path and client_cert_and_key_path (config.go clears them).
 * Frontend TLS termination (terminate_frontend_tls) is not implemented here: such a route is a UserError.
 */
export function buildHaproxyConfig(
  routes: TcpMappingEntity[],
  cfg: BackendTlsConfig,
  paths: HaproxyTlsPaths,
): { text: string; logs: LagerLog[] } {
  checkBackendTlsShape(cfg);
  const sendClientCert = cfg.enabled && (cfg.clientCertAndKeyPath ?? '') !== '';
  if (sendClientCert && (paths.clientPemFile ?? '') === '') {
    throw new UserError('tcp-router: backend_tls.client_cert_and_key_path is set but no clientPemFile path was given for `crt`');
  }
  for (const [i, r] of routes.entries()) {
    if (r.terminate_frontend_tls) {
      throw new UserError(
        `tcp-router: route [${i}] (port ${r.port}) sets terminate_frontend_tls, which meshproof's tcp-router does not implement (no frontend certificate directory)`,
      );
    }
  }

  // RoutingTable: RoutingKey{Port, SniHostname} -> set of BackendServerKey (updater.go toRoutingTableEntry)
  const table = new Map<number, Map<string, Map<string, Server>>>();
  for (const r of routes) {
    const sni = r.backend_sni_hostname ?? '';
    let bySni = table.get(r.port);
    if (bySni === undefined) table.set(r.port, (bySni = new Map()));
    let servers = bySni.get(sni);
    if (servers === undefined) bySni.set(sni, (servers = new Map()));
    const s: Server = { Address: r.backend_ip, Port: r.backend_port, TLSPort: r.backend_tls_port, InstanceID: r.instance_id };
    const key = JSON.stringify([s.Address, s.Port, s.TLSPort, s.InstanceID]);
    if (!servers.has(key)) servers.set(key, s);
  }

  const logs: LagerLog[] = [];
  // NewHAProxyConfig
  const conf = new Map<number, Map<string, Server[]>>();
  for (const port of [...table.keys()].sort((a, b) => a - b)) {
    const bySni = table.get(port)!;
    for (const sni of [...bySni.keys()].sort(byGoString)) {
      if (port === 0) {
        logs.push(skipLog(port, sni, 'frontend_configuration.port', port));
        continue;
      }
      if (sni !== '' && !isValidDnsName(sni)) {
        logs.push(skipLog(port, sni, 'frontend_configuration.sni_hostname', sni));
        continue;
      }
      const backends: Server[] = [];
      for (const s of bySni.get(sni)!.values()) {
        if (s.Port === 0 && s.TLSPort <= 0) {
          logs.push(skipLog(port, sni, 'backend_configuration.port', s.Port));
          continue;
        }
        if (s.Address === '' || !isValidDnsName(s.Address)) {
          logs.push(skipLog(port, sni, 'backend_configuration.address', s.Address));
          continue;
        }
        if (s.TLSPort > 0 && s.InstanceID === '') {
          logs.push(skipLog(port, sni, 'backend_configuration.instance_id', 'unset'));
          continue;
        }
        backends.push(s);
      }
      if (backends.length === 0) {
        logs.push(skipLog(port, sni, 'backend_configuration.servers', '[]'));
        continue;
      }
      // "Sort servers by address, then port for determinism's sake" (sort.SliceStable)
      backends.sort((a, b) => (a.Address === b.Address ? a.Port - b.Port : byGoString(a.Address, b.Address)));
      let frontend = conf.get(port);
      if (frontend === undefined) conf.set(port, (frontend = new Map()));
      frontend.set(sni, backends);
    }
  }

  // config_marshaller.go Marshal
  let text = '';
  for (const port of [...conf.keys()].sort((a, b) => a - b)) {
    const frontend = conf.get(port)!;
    const hostnames = [...frontend.keys()].sort(byGoString);
    let fe = `\nfrontend frontend_${port}\n  mode tcp\n  bind :${port}`;
    if (hostnames.some((h) => h !== '')) {
      fe += '\n  tcp-request inspect-delay 5s';
      fe += '\n  tcp-request content accept if { req.ssl_hello_type gt 0 }';
    }
    let be = '';
    for (const hostname of hostnames) {
      let name: string;
      if (hostname === '') {
        name = `backend_${port}`;
        fe += `\n  default_backend ${name}`;
      } else {
        name = `backend_${port}_${hostname}`;
        fe += `\n  use_backend ${name} if { req.ssl_sni ${hostname} }`;
      }
      be += marshalBackend(name, frontend.get(hostname)!, cfg.enabled, paths.caFile, sendClientCert ? paths.clientPemFile! : '', logs);
    }
    text += `${fe}\n${be}`;
  }
  return { text, logs };
}

/** marshalHAProxyBackend: the backend_tls_port table. */
function marshalBackend(name: string, backend: Server[], enabled: boolean, caFile: string, clientPem: string, logs: LagerLog[]): string {
  let out = `\nbackend ${name}\n  mode tcp`;
  for (const s of backend) {
    if (s.TLSPort > 0 && !enabled) {
      // the server is skipped, not sent in plaintext; lager.Data{"backend": backend} is the whole backend
      logs.push(lagerError('backend-tls-not-enabled', 'Backend TLS Port was set, but backend_tls has not been enabled for tcp-router', { backend: backend.map((b) => ({ ...b })) }));
      continue;
    }
    if (s.TLSPort > 0) {
      out += `\n  server server_${s.Address}_${s.TLSPort} ${s.Address}:${s.TLSPort} ssl verify required ca-file ${caFile}`;
      if (clientPem !== '') out += ` crt ${clientPem}`;
      if (s.InstanceID !== '') out += ` verifyhost ${s.InstanceID}`;
    } else {
      if (s.TLSPort === 0 && enabled) {
        logs.push(
          lagerError(
            'route-missing-tls-information',
            'Backend TLSPort was set to 0. If TLS is intentionally off for this backend, set this to -1 to suppress this message',
            { backend: { ...s } },
          ),
        );
      }
      out += `\n  server server_${s.Address}_${s.Port} ${s.Address}:${s.Port}`;
    }
  }
  return `${out}\n`;
}

/** Go's string order (bytewise); the inputs here are ASCII, where UTF-16 order is the same. */
function byGoString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------- base config

export interface HaproxyBaseOptions {
  /** The stats socket; with `expose-fd listeners` a reloaded process can take the listeners over it (`-x <path>`). */
  statsSocket: string;
  pidFile?: string;
  /** tcp_router.request_timeout_in_seconds (spec default 300); 0 leaves the client/server timeouts out, as the template does. */
  requestTimeoutSeconds?: number;
  /** tcp_router.health_check_port (spec default 80): `monitor-uri /health`. */
  healthPort?: number;
  /**
   * Global `maxconn`. The template's 64000 makes haproxy raise RLIMIT_NOFILE to 128042 and refuse to start below that
   * ("Cannot raise FD limit to 128042, limit is 20000" on a 20000 hard limit), so by default it is left out and haproxy
   * derives it from the FD limit. The per-proxy `maxconn 64000` in `defaults` stays.
   */
  maxconn?: number;
  /**
   * Log each TCP session to stdout (the template logs to syslog), with the backend TLS error
   * (`ssl_bc_err_str`), so a verifyhost or CA failure is visible in HAProxy's own output.
   */
  logStdout?: boolean;
}

/** Session log line: client, frontend, backend/server, timers, bytes, termination state, backend TLS error. */
export const TCP_LOG_FORMAT = '%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts ssl_err=%[ssl_bc_err_str]';

/**
 * jobs/tcp_router/templates/haproxy.conf.template.erb, adapted to run as root in a pod's network namespace under
 * haproxy 2.6 master-worker (`-W -S <socket>`, reloads with `-sf`): no `daemon`, no `user`/`group`/chroot, no syslog
 * target, global `maxconn` only when asked (see HaproxyBaseOptions.maxconn), the stats socket at `level admin` with
 * `expose-fd listeners` so a reload keeps the listeners, and `retries 0` (the requirement). The TLS health
 * listener (443, needs health.pem) is left out.
 */
export function haproxyBaseConfig(opts: HaproxyBaseOptions): string {
  const timeout = opts.requestTimeoutSeconds ?? 300;
  const health = opts.healthPort ?? 80;
  for (const [name, v] of [
    ['requestTimeoutSeconds', timeout],
    ['healthPort', health],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) throw new UserError(`tcp-router base config: ${name} must be a non-negative integer, got ${v}`);
  }
  if (health < 1 || health > 65535) throw new UserError(`tcp-router base config: healthPort must be 1..65535, got ${health}`);
  for (const [name, v] of [
    ['statsSocket', opts.statsSocket],
    ['pidFile', opts.pidFile],
  ] as const) {
    if (v !== undefined && (v === '' || /\s/.test(v))) throw new UserError(`tcp-router base config: ${name} must be a path without spaces, got ${JSON.stringify(v)}`);
  }
  if (opts.maxconn !== undefined && (!Number.isInteger(opts.maxconn) || opts.maxconn < 1)) {
    throw new UserError(`tcp-router base config: maxconn must be a positive integer, got ${opts.maxconn}`);
  }
  const lines = ['global'];
  if (opts.maxconn !== undefined) lines.push(`    maxconn ${opts.maxconn}`);
  lines.push('    spread-checks 4');
  if (opts.pidFile !== undefined) lines.push(`    pidfile ${opts.pidFile}`);
  if (opts.logStdout) lines.push('    log stdout format raw local0 info');
  lines.push(
    `    stats socket ${opts.statsSocket} mode 600 level admin expose-fd listeners`,
    '    ssl-default-bind-options ssl-min-ver TLSv1.2',
    '',
    'defaults',
    '    timeout connect 30000ms',
    '    maxconn 64000',
    '    retries 0',
  );
  if (opts.logStdout) lines.push('    log global', `    log-format "${TCP_LOG_FORMAT}"`);
  if (timeout > 0) lines.push(`    timeout client ${timeout * 1000}ms`, `    timeout server ${timeout * 1000}ms`);
  lines.push(
    '',
    'listen health_check_http_url',
    '    mode http',
    `    bind :${health}`,
    '    monitor-uri /health',
    '    monitor fail if { env(IS_DRAINING) -m str true }',
  );
  return `${lines.join('\n')}\n`;
}
