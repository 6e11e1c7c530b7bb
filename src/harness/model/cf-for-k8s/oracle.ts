// The cf-for-k8s oracle (pure): what one call of ADR 0004's traffic matrix should do on a cf-for-k8s mesh, from the
// ADR's categories and the objects cf-for-k8s enforces it with. Sources:
// - cloudfoundry/cf-k8s-networking doc/architecture-decisions/0004-strategy-for-securing-network-traffic.md (2020-01-23):
//   the 3×3 matrix, "Istio Mesh mTLS" (auto-mTLS + mesh-wide STRICT + injection), footnotes 0-2;
// - cloudfoundry/cf-for-k8s (16c3c2db): build/istio/overlays/mtls-mesh-policy.yaml (STRICT in istio-system),
//   config/eirini/eirini.yml (allow-app-ingress-from-ingressgateway: apps accept the ingress gateway only),
//   config/networking/network-policies.yaml (default-deny-ingress in cf-system), config/istio/app-sidecar.yaml (the apps'
//   Sidecar sees cf-system/* only; Istio's default outboundTrafficPolicy ALLOW_ANY passes the rest through in clear);
// - cf-k8s-networking test/acceptance: policy_test.go (app → app "connect error"), mtls_test.go (app → system component
//   over mTLS with the app's SVID; the istio-proxy container's own plaintext and no-certificate requests fail).
// How each denial looks is the data plane's: a NetworkPolicy drops in silence, so a naked caller times out, a caller's
// sidecar answers 503 after its connect timeout on a routed (HTTP) cluster and closes a passthrough (TCP) connection;
// STRICT closes a plaintext connection (reset) and ends a handshake without a client certificate.
import type { Verdict } from '../verdict.ts';

/** ADR 0004's categories of sources and destinations. */
export const CATEGORIES = ['External', 'Apps', 'System'] as const;
export type Category = (typeof CATEGORIES)[number];

/**
 * Who makes the call: an app or system component itself (its traffic captured by its sidecar), the `istio-proxy`
 * container's own request (uid 1337, never captured: mtls_test.go), or a client outside the platform.
 */
export const CALLER_KINDS = ['app', 'proxy-container', 'outside'] as const;
export type CallerKind = (typeof CALLER_KINDS)[number];

/** What enforced a cell: istiod's configuration of the real Envoys, or meshproof's own NetworkPolicy engine. */
export const ENFORCERS = ['istio', 'meshproof-networkpolicy'] as const;
export type Enforcer = (typeof ENFORCERS)[number];

/** What the operator has enabled beyond cf-for-k8s's defaults, in the ADR's terms (each step of the scenario says). */
export interface Enablement {
  /** A NetworkPolicy lets apps into cf-workloads ("App-to-app traffic will be denied by default. If enabled, ..."). */
  appToApp?: boolean;
  /** The apps' Sidecar egress also lists cf-workloads/* (cf-for-k8s's lists cf-system/* only). */
  appsSeeApps?: boolean;
  /** A NetworkPolicy lets apps into cf-system (mtls_test.go's allow-ingress-from-apps). */
  appsToSystem?: boolean;
  /** A NetworkPolicy lets a system component into cf-workloads (footnote 2: Prometheus scraping /metrics). */
  systemToApps?: boolean;
  /** A NetworkPolicy lets one system component into another (cf-for-k8s's per-component allows). */
  systemToSystem?: boolean;
  /** A NetworkPolicy lets the ingress gateway into cf-system (cf-for-k8s's per-component allows name it). */
  gatewayToSystem?: boolean;
}

export interface CfCell {
  from: Category;
  caller: CallerKind;
  /** How the caller speaks (default plaintext); `tls-no-cert` is curl -k without a client certificate. */
  client?: 'plaintext' | 'tls-no-cert';
  to: Category;
  /** External only: the destination speaks TLS and the caller's mesh originates it with this CA (footnote 1). */
  tls?: 'operator-ca' | 'other-ca';
  /** External → Apps/System through the ingress gateway (the operator's wildcard certificate), else direct. */
  via?: 'direct' | 'ingress-gateway';
  enabled: Enablement;
}

export interface CfExpectation {
  verdict: Verdict;
  /** A denial: what denied it. An allowance: every layer that had to let it through. Sorted. */
  enforcedBy: Enforcer[];
}

const NP: Enforcer = 'meshproof-networkpolicy';
const ISTIO: Enforcer = 'istio';
const out = (verdict: Verdict, ...by: Enforcer[]): CfExpectation => ({ verdict, enforcedBy: [...new Set(by)].sort() });

/** Whether cf-for-k8s's NetworkPolicies (plus the operator's) let the source's pods into the destination's pods. */
function admitted(c: CfCell): boolean {
  const e = c.enabled;
  if (c.via === 'ingress-gateway') return c.to === 'Apps' ? true : !!e.gatewayToSystem;
  if (c.from === 'External') return false; // only the ingress gateway is let into cf-workloads; nothing into cf-system
  if (c.to === 'Apps') return c.from === 'Apps' ? !!e.appToApp : !!e.systemToApps;
  return c.from === 'Apps' ? !!e.appsToSystem : !!e.systemToSystem;
}

export function expectCf(c: CfCell): CfExpectation {
  const client = c.client ?? 'plaintext';
  if (c.from === 'External' && c.to === 'External') throw new Error('oracle: External → External is N/A in ADR 0004');
  if (c.via === 'ingress-gateway') {
    if (c.from !== 'External' || c.to === 'External') throw new Error('oracle: only External → Apps/System goes through the ingress gateway');
    // TLS with the operator's wildcard certificate to the gateway, mesh mTLS from the gateway to the backend
    return admitted(c) ? out('allowed:tls', ISTIO, NP) : out('denied:http-503', NP);
  }
  if (c.to === 'External') {
    if (c.caller !== 'app') throw new Error(`oracle: a ${c.caller} caller to External is not in the scenario`);
    // nothing isolates an address outside the platform; Istio's egress is PERMISSIVE (ALLOW_ANY)
    if (!c.tls) return out('allowed:plaintext', ISTIO);
    // footnote 1's CA as a DestinationRule (SIMPLE, caCertificates): the caller's sidecar originates TLS and checks the server
    return c.tls === 'operator-ca' ? out('allowed:tls', ISTIO) : out('denied:http-503', ISTIO);
  }
  const ok = admitted(c);
  if (c.caller !== 'app') {
    // a naked caller (outside the platform, or the proxy container's own request): straight to the destination pod
    if (!ok) return out('denied:timeout', NP);
    return client === 'tls-no-cert' ? out('denied:tls-handshake', ISTIO) : out('denied:reset', ISTIO);
  }
  if (client !== 'plaintext') throw new Error('oracle: an app speaks plaintext to its own sidecar');
  // the apps' Sidecar: cf-system/* (and cf-workloads/* once widened); anything else leaves as the app's own plaintext
  const inScope = c.from !== 'Apps' || c.to === 'System' || !!c.enabled.appsSeeApps;
  if (!inScope) return ok ? out('denied:reset', ISTIO) : out('denied:reset', NP);
  return ok ? out('allowed:mtls', ISTIO, NP) : out('denied:http-503', NP);
}
