// The Contrast oracle: pure function from a pod's service-mesh config (and where its startup is) to the verdict of one
// call. Checked against the hand-written tables (fixtures/contrast/truth/*.yaml) in test/contrast-model.spec.ts, and
// every suite row against it, so neither can just agree with itself.
// Sources: service-mesh/iptables.go (the first matching CONTRAST_IN_REDIRECT rule decides), config.go (15006 requires a
// client certificate, 15007 does not; both verify a presented one against the mesh CA; egress presents the mesh
// certificate, checks the server against the mesh CA only), internal/defaultdeny, packages/nixos/kata.nix.
import type { Verdict } from '../verdict.ts';
import type { ProxyConfig } from './annotations.ts';

/**
 * How the caller speaks TLS, when it dials a port directly: `plaintext`, TLS trusting the mesh CA with no client
 * certificate (the e2e's `curl --cacert mesh-ca.pem`), with its own mesh certificate (`--cert/--key`), or with a
 * certificate of another CA.
 */
export const CALLERS = ['plaintext', 'tls-no-cert', 'mesh-cert', 'other-ca'] as const;
export type Caller = (typeof CALLERS)[number];

/**
 * Where a pod's startup is, for its inbound traffic:
 * - `default-deny`: the podVM's deny rule is in place (before the sidecar, or the initializer, removed it);
 * - `no-rules`: nothing filters or redirects (no sidecar yet and no deny rule, or the initializer removed it);
 * - `meshed`: the sidecar's TPROXY rules are in place and its Envoy runs.
 */
export type PodPhase = 'default-deny' | 'no-rules' | 'meshed';

/** What a new inbound connection to a port meets. */
export type InboundPath = 'dropped' | 'app' | 'envoy-tls' | 'envoy-mtls';

/** The first rule of CONTRAST_IN_REDIRECT that matches the port decides (iptables.go appends in annotation order). */
export function inboundPath(cfg: ProxyConfig | null, port: number, phase: PodPhase): InboundPath {
  if (phase === 'default-deny') return 'dropped';
  if (phase === 'no-rules' || cfg === null || cfg.ingressDisabled) return 'app';
  const entry = cfg.ingress.find((e) => e.port === port);
  if (!entry) return 'envoy-mtls';
  return entry.disableTLS ? 'app' : 'envoy-tls';
}

/**
 * A direct call. The apps (and Envoy's admin interface) answer plain HTTP: TLS to them fails the handshake. Envoy's
 * ingress listeners end a plaintext caller's connection (reset), refuse a missing client certificate on 15006 and a
 * certificate from another CA on both.
 */
export function expectDirect(path: InboundPath, caller: Caller): Verdict {
  switch (path) {
    case 'dropped':
      return 'denied:timeout';
    case 'app':
      return caller === 'plaintext' ? 'allowed:plaintext' : 'denied:tls-handshake';
    case 'envoy-tls':
      return { plaintext: 'denied:reset', 'tls-no-cert': 'allowed:tls', 'mesh-cert': 'allowed:mtls', 'other-ca': 'denied:tls-handshake' }[caller] as Verdict;
    case 'envoy-mtls':
      return { plaintext: 'denied:reset', 'tls-no-cert': 'denied:tls-handshake', 'mesh-cert': 'allowed:mtls', 'other-ca': 'denied:tls-handshake' }[caller] as Verdict;
  }
}

/**
 * The app dialling its own egress address in plaintext: nothing listens there without a matching egress entry; else
 * its Envoy originates mTLS with the pod's mesh certificate. A remote Envoy takes it (mTLS either port); a remote app
 * answering plain HTTP breaks Envoy's upstream handshake (the app's connection is closed); a dropped SYN leaves the
 * app's request unanswered.
 */
export function expectEgress(callerCfg: ProxyConfig | null, listen: { addr: string; port: number }, remote: InboundPath): Verdict {
  const entry = callerCfg?.egress.find((e) => e.listenAddr === listen.addr && e.listenPort === listen.port);
  if (!entry) return 'denied:refused';
  switch (remote) {
    case 'dropped':
      return 'denied:timeout';
    case 'app':
      return 'denied:reset';
    case 'envoy-tls':
    case 'envoy-mtls':
      return 'allowed:mtls';
  }
}
