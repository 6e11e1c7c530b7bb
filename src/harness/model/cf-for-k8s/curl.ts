// cf-for-k8s's mtls_test.go calls from the istio-proxy container with curl (`kubectl exec -c istio-proxy -- curl`):
// its exit code and its verbose (`-v`) trace are the observation. Pure: curl's output in, a verdict out, by curl's
// documented exit codes (curl(1) "EXIT CODES"): 7 failed to connect, 16 HTTP/2 layer (here a send on a connection
// the server closed), 28 timed out, 35 TLS handshake failed, 52 empty reply, 55 send failure, 56 failure receiving,
// 60 the server's certificate not verified. Under TLS 1.3 a server that requires a client certificate refuses a
// caller without one after the caller's Finished (certificate_required): curl then fails sending (16, 55) or reading
// (56) depending on the race, and its trace shows the server's CertificateRequest (`Request CERT`): that is the
// handshake refusing the caller, whichever code curl picked.
import type { ProbeResult } from '../../probe/types.ts';
import type { Verdict } from '../verdict.ts';
export interface CurlOutcome {
  code: number;
  /** With `-v`: the TLS trace. The calls carry no client certificate. */
  stderr: string;
  /** `--write-out '%{http_code}'`: 0 when no response came. */
  httpCode: number;
  https: boolean;
  ms: number;
}

/** curl's own error line (`curl: (56) …`), the last stderr line without one. */
export function curlError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines.filter((l) => /^curl: \(\d+\)/.test(l)).pop() ?? lines.pop() ?? '';
}

export function curlVerdict(o: CurlOutcome): Verdict {
  if (o.code === 0) return o.httpCode >= 200 && o.httpCode < 400 ? (o.https ? 'allowed:tls' : 'allowed:plaintext') : `denied:http-${o.httpCode}`;
  if (o.https && [16, 55, 56].includes(o.code) && /TLS handshake, Request CERT/.test(o.stderr)) return 'denied:tls-handshake';
  switch (o.code) {
    case 7:
      return 'denied:refused';
    case 28:
      return 'denied:timeout';
    case 35:
    case 60:
      return 'denied:tls-handshake';
    case 52:
      return 'denied:reset';
    case 56:
      return /alert/i.test(curlError(o.stderr)) ? 'denied:tls-handshake' : 'denied:reset';
    case 16:
    case 55:
      if (/Send failure/.test(curlError(o.stderr))) return 'denied:reset';
      break;
  }
  throw new Error(`curl exit ${o.code} is not a verdict meshproof reads: ${curlError(o.stderr)}`);
}

/** The outcome as a probe result (the DESIGN.md evidence; the wire canary did not watch it). */
export function curlResult(o: CurlOutcome): ProbeResult {
  const verdict = curlVerdict(o);
  return {
    observed: verdict.startsWith('allowed') ? 'allowed' : 'denied',
    verdict,
    evidence: { peer: null, alpn: null, xfcc: null, status: o.httpCode || null, error: o.code === 0 ? null : `curl exit ${o.code}: ${curlError(o.stderr)}`, wire: null, ms: o.ms },
  };
}
