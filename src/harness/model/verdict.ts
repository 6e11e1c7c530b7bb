// The verdict and the result record: the contract of DESIGN.md that other tools read.

export type Observed = 'allowed' | 'denied';

/** `allowed:*` and `denied:*` refinements (DESIGN.md "The verdict and the result record"). */
export type Verdict =
  | 'allowed:mtls'
  | 'allowed:tls'
  | 'allowed:plaintext'
  | 'denied:reset'
  | 'denied:tls-handshake'
  | `denied:http-${number}`
  | 'denied:timeout'
  | 'denied:refused';

export type Wire = 'plaintext-seen' | 'no-plaintext' | null;

export interface Evidence {
  /** Identity of the peer that authenticated the caller or that the caller authenticated (SPIFFE URI, CN, ...). */
  peer: string | null;
  alpn: string | null;
  /** X-Forwarded-Client-Cert as the server saw it. */
  xfcc: string | null;
  status: number | null;
  /** Error code of the failed call (ECONNRESET, ERR_SSL_..., ETIMEDOUT, ...). */
  error: string | null;
  wire: Wire;
  /** Legs (`src→dst:dport`, IPv4) on which the wire canary saw this call's token in clear, when it looked. */
  plaintextLegs?: string[];
  /** Wall time of the call in milliseconds. */
  ms: number;
  /** Which pod answered (from the echo headers), when known. */
  servedBy?: string | null;
  /** First bytes of the response body, when useful to a reader. */
  body?: string | null;
  /** https/tls: identity in the server's certificate as the caller saw it (first URI SAN, else CN). */
  serverIdentity?: string | null;
}

export interface ResultRecord {
  run: string;
  substrate: string;
  profile: string;
  suite: string;
  scenario: string;
  from: string;
  to: string;
  port: number;
  protocol: string;
  expected: Observed;
  observed: Observed;
  verdict: Verdict;
  pass: boolean;
  evidence: Evidence;
}

export function observedOf(verdict: Verdict): Observed {
  return verdict.startsWith('allowed') ? 'allowed' : 'denied';
}
