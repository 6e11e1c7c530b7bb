// Which proxy, if any, an app that honours the proxy environment uses for a URL. Pure.
//
// The draft RFC (cloudfoundry/community#1437, Phase 2): apps discover the egress proxy through
// CF_INSTANCE_MTLS_PROXY=http://127.0.0.1:61445; operators MAY force it on every app by setting HTTP_PROXY and
// HTTPS_PROXY to that URL in the running environment variable group (the author in review: "there is no
// enforcement, using the proxy is just an easier way of setting things up"); "Applications should configure NO_PROXY
// for traffic that should not go through the proxy". So whether a call goes through the proxy is decided by the app's
// HTTP client from these variables. The rules here are Go's (golang.org/x/net/http/httpproxy, what cf CLI-era Go apps
// and most buildpack runtimes follow):
// - http:// URLs use HTTP_PROXY (then http_proxy), https:// URLs HTTPS_PROXY (then https_proxy); a proxy value
//   without a scheme means http://; with REQUEST_METHOD set (CGI) HTTP_PROXY is ignored (httpoxy);
// - NO_PROXY (then no_proxy) is a comma-separated list of: `*` (no proxy at all); an IP or CIDR; a domain, which
//   matches itself and every subdomain (`apps.internal` matches `b.apps.internal`, not `xapps.internal`); a domain
//   with a leading `.` (or `*.`), which matches subdomains only; any of these with `:port`, which then only matches
//   that port;
// - `localhost` and loopback addresses are never proxied.
// curl differs in three ways (its docs, "no_proxy"): it ignores upper-case HTTP_PROXY, treats a leading dot like no
// dot, and takes no ports in no_proxy; the suites only use entries on which both agree, plus `:port`.

export type Env = Readonly<Record<string, string | undefined>>;

/** A proxy to send the request to. */
export interface ProxyEndpoint {
  /** The proxy URL as configured. */
  url: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
}

function envAny(env: Env, ...names: string[]): string {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== '') return v;
  }
  return '';
}

function parseProxyUrl(value: string): ProxyEndpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`proxy ${JSON.stringify(value)} is not a URL`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'http' && scheme !== 'https') throw new Error(`proxy ${JSON.stringify(value)}: only http:// and https:// proxies are supported`);
  return { url: value, scheme, host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? (scheme === 'https' ? 443 : 80) : Number(u.port) };
}

function ipv4ToInt(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const n = ipv4ToInt(host);
  return n !== null && n >>> 24 === 127;
}

/** One NO_PROXY entry and whether it exempts host:port. */
function exempts(entry: string, host: string, port: string): boolean {
  let p = entry.trim().toLowerCase();
  if (p === '') return false;
  if (p === '*') return true;
  const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(p);
  if (cidr) {
    const net = ipv4ToInt(cidr[1]!);
    const bits = Number(cidr[2]);
    const h = ipv4ToInt(host);
    if (net === null || h === null || bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return ((h & mask) >>> 0) === ((net & mask) >>> 0);
  }
  let entryPort = '';
  const hp = /^(.*):(\d+)$/.exec(p);
  if (hp && !p.includes('::')) {
    p = hp[1]!;
    entryPort = hp[2]!;
    if (p === '') return false;
  }
  if (ipv4ToInt(p) !== null) return p === host && (entryPort === '' || entryPort === port);
  if (p.startsWith('*.')) p = p.slice(1);
  const matchHost = !p.startsWith('.');
  const suffix = matchHost ? `.${p}` : p;
  const hit = host.endsWith(suffix) || (matchHost && host === p);
  return hit && (entryPort === '' || entryPort === port);
}

/**
 * The proxy an HTTP client following Go's rules uses for `url` given the app's environment, or null for a direct
 * connection. Only http:// and https:// URLs are proxied.
 */
export function proxyFor(url: string, env: Env): ProxyEndpoint | null {
  const u = new URL(url);
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'http' && scheme !== 'https') return null;
  const value = scheme === 'https' ? envAny(env, 'HTTPS_PROXY', 'https_proxy') : envAny(env, 'REQUEST_METHOD') !== '' ? '' : envAny(env, 'HTTP_PROXY', 'http_proxy');
  if (value === '') return null;
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
  const port = u.port === '' ? (scheme === 'https' ? '443' : '80') : u.port;
  if (isLoopback(host)) return null;
  const noProxy = envAny(env, 'NO_PROXY', 'no_proxy');
  if (noProxy.split(',').some((e) => exempts(e, host, port))) return null;
  return parseProxyUrl(value);
}

/** CF_INSTANCE_MTLS_PROXY as an endpoint (what an app that opts in explicitly uses), or null when unset. */
export function mtlsProxyOf(env: Env): ProxyEndpoint | null {
  const v = env.CF_INSTANCE_MTLS_PROXY;
  return v === undefined || v === '' ? null : parseProxyUrl(v);
}
