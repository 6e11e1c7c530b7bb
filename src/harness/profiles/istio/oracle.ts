// The Istio oracle (pure): what one call should do, from which side has a sidecar, the server's
// effective PeerAuthentication mode and the client's DestinationRule TLS mode.
// Sources (reference/istio.md §1–2): reachability_test.go cases, istio.io authn-policy and
// mtls-migration tasks, the inbound filter chains per mode (listener_inbound.go), the inbound
// TLS context (authn/utils BuildInboundTLS) and auto-mTLS's endpoint check (xds/endpoints/mtls_checker.go).
import type { Observed, Verdict } from '../../model/verdict.ts';
import type { ClientTlsMode, MtlsMode } from '../../model/istio/plan.ts';
import type { ClientKind } from './truth.ts';

export interface IstioCell {
  fromSidecar: boolean;
  toSidecar: boolean;
  /** The server's effective mode on the called workload port. */
  serverMode: MtlsMode;
  /** The client sidecar's DestinationRule mode (AUTO without one); ignored for a naked client. */
  clientTls: ClientTlsMode;
  /** Whether the server's identity is among the SANs the client checks (default true). */
  sanMatches?: boolean;
  /**
   * Auto-mTLS's view of the server (BestEffortInferServiceMTLSMode: mesh/namespace policy only,
   * workload and port policies ignored). Defaults to serverMode.
   */
  inferredServiceMode?: MtlsMode;
  /** The service port's protocol (default http): a client sidecar answers a failed HTTP call with 503, a TCP one with a reset. */
  protocol?: 'http' | 'tcp';
  /**
   * How the caller speaks (default plaintext). The TLS kinds are a pod without a sidecar
   * originating TLS with Istio's mTLS ALPN, without a client certificate or with one from another CA.
   */
  client?: ClientKind;
}

export interface IstioExpectation {
  observed: Observed;
  verdict: Verdict;
}

const allowed = (verdict: Verdict): IstioExpectation => ({ observed: 'allowed', verdict });
const denied = (verdict: Verdict): IstioExpectation => ({ observed: 'denied', verdict });

export function expectIstio(cell: IstioCell): IstioExpectation {
  const { fromSidecar, toSidecar, serverMode } = cell;
  if (cell.client !== undefined && cell.client !== 'plaintext') {
    if (fromSidecar) throw new Error(`oracle: a ${cell.client} client is a pod without a sidecar originating TLS itself; from a pod with a sidecar it is not modelled`);
    // A server without a sidecar speaks plaintext: the client's handshake reads a non-TLS answer.
    if (!toSidecar) return denied('denied:tls-handshake');
    // DISABLE has raw_buffer chains only and no TLS inspection (istiod's virtualInbound): the ClientHello reaches the
    // app as bytes, the app answers in clear, and the caller's handshake fails on that answer.
    if (serverMode === 'DISABLE') return denied('denied:tls-handshake');
    // STRICT and PERMISSIVE: the Istio ALPN selects the mTLS chain, whose DownstreamTlsContext has
    // require_client_certificate and the mesh root as its only trust anchor (BuildInboundTLS).
    return denied('denied:tls-handshake');
  }
  // Naked client: plaintext straight to the server's inbound.
  if (!fromSidecar) {
    // STRICT has no raw_buffer filter chain: Envoy closes the connection (curl exit 56).
    if (toSidecar && serverMode === 'STRICT') return denied('denied:reset');
    return allowed('allowed:plaintext');
  }
  // From here the client sidecar originates the upstream connection; when that fails it answers
  // an HTTP caller with 503 ("upstream connect error or disconnect/reset before headers").
  const upstreamFailure = denied(cell.protocol === 'tcp' ? 'denied:reset' : 'denied:http-503');
  const mtls = (): IstioExpectation => {
    if (!toSidecar) return upstreamFailure; // mTLS to a plaintext app: "sleep.foo to httpbin.legacy: 503"
    if (serverMode === 'DISABLE') return upstreamFailure; // DISABLE has raw_buffer chains only
    if (cell.sanMatches === false) return upstreamFailure; // secure naming: SAN not in the list
    return allowed('allowed:mtls');
  };
  const plaintext = (): IstioExpectation => {
    if (toSidecar && serverMode === 'STRICT') return upstreamFailure; // DR DISABLE → STRICT: 503
    return allowed('allowed:plaintext');
  };
  switch (cell.clientTls) {
    case 'DISABLE':
      return plaintext();
    case 'ISTIO_MUTUAL':
      return mtls();
    case 'AUTO':
      // Auto-mTLS: mTLS only to endpoints labelled tlsMode=istio whose own workload policy on the
      // port is not DISABLE (mtls_checker.go checkMtlsEnabled, per endpoint), and not at all when
      // the service's mesh/namespace policy is DISABLE (BestEffortInferServiceMTLSMode).
      if (!toSidecar) return allowed('allowed:plaintext');
      if (serverMode === 'DISABLE') return plaintext();
      if ((cell.inferredServiceMode ?? serverMode) === 'DISABLE') return plaintext();
      return mtls();
    case 'SIMPLE':
    case 'MUTUAL':
      // TLS originated with non-Istio certificates: a sidecar's inbound wants Istio ALPN/identity and
      // the workshop apps serve plaintext, so the upstream handshake fails either way.
      return upstreamFailure;
  }
}
