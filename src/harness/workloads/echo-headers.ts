// What every HTTP workload reports about a request: x-echo-* response headers and the
// Istio-echo style key=value body of `GET /echo` (istio/istio pkg/test/echo).
import type { IncomingMessage } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { TLSSocket } from 'node:tls';
import type { Env } from './common.ts';

/** Who this workload is, from the pod's environment. */
export interface EchoIdentity {
  /** POD_NAME, else the hostname. */
  pod: string;
  /** POD_NAMESPACE, else empty. */
  namespace: string;
  /** VERSION, else empty. */
  version: string;
}

export function echoIdentity(env: Env): EchoIdentity {
  return { pod: env.POD_NAME || hostname(), namespace: env.POD_NAMESPACE ?? '', version: env.VERSION ?? '' };
}

/** What a workload that terminated TLS itself saw of the handshake. */
export interface TlsSeen {
  alpn: string;
  sni: string;
  /** The client certificate, when one was presented. */
  peer: X509Certificate | undefined;
}

/** The SNI a server-side TLSSocket received (`servername` is set at runtime but missing from @types/node). */
function sniOf(socket: TLSSocket): string {
  const servername = (socket as TLSSocket & { servername?: unknown }).servername;
  return typeof servername === 'string' ? servername : '';
}

export function tlsSeen(req: IncomingMessage): TlsSeen | null {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket)) return null;
  return {
    alpn: socket.alpnProtocol || '',
    sni: sniOf(socket),
    peer: socket.getPeerX509Certificate(),
  };
}

/**
 * Entries of an X509Certificate.subjectAltName string (`DNS:a, URI:spiffe://x`). Node writes a
 * value that holds a separator or quote as a JSON string (`URI:"a, b"`).
 */
export function subjectAltNames(san: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      value = JSON.parse(san.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const comma = san.indexOf(', ', j);
      const end = comma < 0 ? san.length : comma;
      value = san.slice(j, end);
      j = end;
    }
    out.push({ type, value });
    const next = san.indexOf(', ', j);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The first URI SAN of a certificate (a SPIFFE ID on a mesh), or ''. */
export function firstUriSan(cert: X509Certificate): string {
  return subjectAltNames(cert.subjectAltName).find((e) => e.type === 'URI')?.value ?? '';
}

/** The subject in Go's pkix.Name.String() order (most specific first, comma-separated), as Istio's echo prints it. */
export function subjectString(cert: X509Certificate): string {
  return cert.subject.split('\n').filter((l) => l !== '').reverse().join(',');
}

/** The subject's CN, or ''. */
export function subjectCn(cert: X509Certificate): string {
  const cn = cert.subject.split('\n').filter((l) => l.startsWith('CN=')).pop();
  return cn === undefined ? '' : cn.slice(3);
}

/** Identity of a client certificate: the first URI SAN, else the subject CN. */
export function peerIdentity(cert: X509Certificate): string {
  return firstUriSan(cert) || subjectCn(cert);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The x-echo-* headers every HTTP workload sets on every response. */
export function echoHeaders(req: IncomingMessage, id: EchoIdentity): Record<string, string> {
  const headers: Record<string, string> = {
    'x-echo-pod': id.pod,
    'x-echo-namespace': id.namespace,
    'x-echo-version': id.version,
  };
  const xfcc = single(req.headers['x-forwarded-client-cert']);
  if (xfcc !== undefined) headers['x-echo-xfcc'] = xfcc;
  const peer = tlsSeen(req)?.peer;
  if (peer !== undefined) headers['x-echo-peer'] = peerIdentity(peer);
  const requestId = single(req.headers['x-request-id']);
  if (requestId !== undefined) headers['x-echo-request-id'] = requestId;
  return headers;
}

/** `x-forwarded-client-cert` → `X-Forwarded-Client-Cert` (Go's http.CanonicalHeaderKey). */
export function canonicalHeaderName(name: string): string {
  return name
    .split('-')
    .map((part) => (part === '' ? part : part[0]!.toUpperCase() + part.slice(1).toLowerCase()))
    .join('-');
}

function stripMapped(ip: string | undefined): string {
  return (ip ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

/** The `GET /echo` body: one `Key=value` line per fact, Istio echo style, ending in a newline. */
export function echoBody(req: IncomingMessage, id: EchoIdentity, statusCode = 200): string {
  const tls = tlsSeen(req);
  const lines = [
    `ServiceVersion=${id.version}`,
    `ServicePort=${req.socket.localPort ?? ''}`,
    `StatusCode=${statusCode}`,
    `URL=${req.url ?? ''}`,
    `Host=${req.headers.host ?? req.headers[':authority'] ?? ''}`,
    `Hostname=${id.pod}`,
    `Namespace=${id.namespace}`,
    `Method=${req.method ?? ''}`,
    `Proto=HTTP/${req.httpVersion}`,
    `IP=${stripMapped(req.socket.remoteAddress)}`,
    `Alpn=${tls?.alpn ?? ''}`,
    `Sni=${tls?.sni ?? ''}`,
    `ClientCertSubject=${tls?.peer ? subjectString(tls.peer) : ''}`,
    `ClientCertURI=${tls?.peer ? firstUriSan(tls.peer) : ''}`,
  ];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`RequestHeader=${canonicalHeaderName(raw[i]!)}:${raw[i + 1]!}`);
  return `${lines.join('\n')}\n`;
}
