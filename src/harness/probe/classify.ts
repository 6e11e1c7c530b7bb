// Verdict classification: the real signal of a probe (error code, status, echo headers) → Verdict.
// Pure: no I/O. DESIGN.md "The verdict and the result record": an actively signalled deny is
// classified from that signal; `denied:timeout` only ever comes from the probe's own timer.
import type { Verdict } from '../model/verdict.ts';
import { immediateCaller, type XfccElement } from '../model/xfcc.ts';
import type { ProbeProtocol } from './types.ts';

/**
 * Error code the agent reports when the connection closed before any response byte
 * (curl's "Empty reply from server"): Envoy's no_filter_chain_match, HAProxy closing after a
 * failed backend handshake, a TLS terminator closing after the handshake.
 */
export const EMPTY_REPLY = 'EMPTY_REPLY';

/** Active negative answers: nothing listens (RST to SYN), ICMP unreachable, DNS NXDOMAIN. */
const REFUSED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

/** The connection was torn down by the peer (RST, or closed without answering). */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', EMPTY_REPLY]);

/** OpenSSL X509_V_ERR_* names as Node reports them in `err.code`, plus Node's hostname check. */
const CERT_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const SSL_MESSAGE = /SSL routines|ssl3_|tls_process|tlsv1[0-9]* alert|handshake failure|wrong version number/i;

function isTlsFailure(code: string, message: string, tls: boolean): boolean {
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return true;
  if (CERT_VERIFY_CODES.has(code)) return true;
  if (code.includes('ALERT')) return true;
  // EPROTO is what OpenSSL failures surface as in older Node; on a TLS call it is the TLS layer.
  if (code === 'EPROTO') return tls || SSL_MESSAGE.test(message);
  // No code (or an unfamiliar one) but OpenSSL's own words in the message.
  return /alert/i.test(message) || SSL_MESSAGE.test(message);
}

/**
 * Classify a failed call from the real signal.
 * - `ctx.timedOut` (the probe's own timer fired) is the ONLY way to `denied:timeout`.
 * - ECONNRESET stays `denied:reset` even during a TLS call (e.g. a listener that closes on the
 *   ClientHello); a TLS alert or certificate verification failure is `denied:tls-handshake`.
 * - An error with no recognisable signal falls back to `denied:reset` (the connection failed
 *   without a better reason); the raw code is kept in the evidence by the caller.
 */
export function classifyError(
  err: { code?: string; message?: string },
  ctx: { tls: boolean; timedOut: boolean },
): Verdict {
  if (ctx.timedOut) return 'denied:timeout';
  const code = (err.code ?? '').toUpperCase();
  const message = err.message ?? '';
  if (REFUSED_CODES.has(code)) return 'denied:refused';
  if (RESET_CODES.has(code)) return 'denied:reset';
  if (/socket hang up|empty reply/i.test(message)) return 'denied:reset';
  if (isTlsFailure(code, message, ctx.tls)) return 'denied:tls-handshake';
  return 'denied:reset';
}

/** HTTP status → verdict: 2xx/3xx are allowed (the caller refines with `refineAllowed`). */
export function classifyStatus(status: number): Verdict {
  if (status >= 200 && status < 400) return 'allowed:plaintext';
  return `denied:http-${status}`;
}

/**
 * A gRPC call's outcome → verdict. A call is allowed only with HTTP 200 and `grpc-status: 0`; another
 * HTTP status is `denied:http-<status>`. A proxy's own failure answers a gRPC caller with HTTP 200
 * and a non-zero grpc-status (Envoy's local reply maps its HTTP code with Grpc::Utility::httpToGrpcStatus:
 * 401→16, 403→7, 404→12, 429/502/503/504→14): that code is mapped back to the HTTP status Envoy
 * would have sent (14 UNAVAILABLE → 503, as for an HTTP caller); any other non-zero status is
 * `denied:http-500` (an application error: no mesh denial). A missing grpc-status is a broken call: reset.
 */
export function classifyGrpc(httpStatus: number, grpcStatus: number | null): Verdict {
  // gRPC answers every call with :status 200 (PROTOCOL-HTTP2.md); anything else is the HTTP layer refusing it
  if (httpStatus !== 200) return `denied:http-${httpStatus}`;
  if (grpcStatus === null) return 'denied:reset';
  if (grpcStatus === 0) return 'allowed:plaintext';
  const back: Record<number, number> = { 16: 401, 7: 403, 12: 404, 14: 503 };
  return `denied:http-${back[grpcStatus] ?? 500}`;
}

/**
 * The identity of the immediate caller as the server saw it: `x-echo-peer` (the echo itself
 * terminated mTLS), else the last XFCC element when it carries a `URI=` or `Hash=` (a proxy
 * authenticated the caller): its URI, else its Subject, else null. `undefined` when nothing
 * shows that the server authenticated the caller.
 */
function authenticatedCaller(echo: { xfcc?: string; peer?: string }): string | null | undefined {
  if (echo.peer !== undefined && echo.peer.trim() !== '') return echo.peer.trim();
  if (echo.xfcc === undefined || echo.xfcc.trim() === '') return undefined;
  let last: XfccElement | null;
  try {
    last = immediateCaller(echo.xfcc);
  } catch {
    return undefined; // a header that does not parse proves nothing
  }
  if (last === null) return undefined;
  if (last.uri[0] !== undefined) return last.uri[0];
  if (last.hash === null) return undefined;
  return last.subject?.text ?? null;
}

export type AllowedVerdict = 'allowed:mtls' | 'allowed:tls' | 'allowed:plaintext';

/**
 * Refine an allowed call.
 * - http: `allowed:mtls` when the echo shows the server authenticated the caller
 *   (`x-echo-peer`, or XFCC whose last element has `URI=`/`Hash=`: a sidecar pair), peer = that
 *   caller; otherwise `allowed:plaintext`, peer null.
 * - https: the caller's own TLS connection is mutual only if it presented a certificate: then the
 *   same echo evidence makes it `allowed:mtls`; without a client certificate it is `allowed:tls`
 *   whatever a proxy behind the TLS terminator did (an ingress gateway's mTLS to the app is not
 *   the caller's).
 * - tls (raw): no echo; `allowed:mtls` when a client certificate was presented and the
 *   handshake and exchange succeeded, else `allowed:tls`. peer = `serverIdentity` (the identity
 *   the caller authenticated), or the echo peer if one is given.
 * - h2c, grpc, websocket (plaintext from the caller): as http, from the echo's headers.
 * - tcp, tcp-server-first: `allowed:plaintext`, peer null.
 */
export function refineAllowed(o: {
  protocol: ProbeProtocol;
  clientCertPresented: boolean;
  echo: { xfcc?: string; peer?: string };
  /** Identity in the server's certificate (first URI SAN, else CN), when known. */
  serverIdentity?: string | null;
}): { verdict: AllowedVerdict; peer: string | null } {
  switch (o.protocol) {
    case 'h2c':
    case 'grpc':
    case 'websocket':
    case 'http':
    case 'https': {
      if (o.protocol === 'https' && !o.clientCertPresented) return { verdict: 'allowed:tls', peer: null };
      const caller = authenticatedCaller(o.echo);
      if (caller !== undefined) return { verdict: 'allowed:mtls', peer: caller };
      return { verdict: o.protocol === 'https' ? 'allowed:tls' : 'allowed:plaintext', peer: null };
    }
    case 'tls': {
      const peer = o.echo.peer !== undefined && o.echo.peer !== '' ? o.echo.peer : (o.serverIdentity ?? null);
      return { verdict: o.clientCertPresented ? 'allowed:mtls' : 'allowed:tls', peer };
    }
    case 'tcp':
    case 'tcp-server-first':
      return { verdict: 'allowed:plaintext', peer: null };
  }
}
