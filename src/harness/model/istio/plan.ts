// What the Istio profile decides for one injected pod, before any config text exists.
// The policy model (PeerAuthentication, DestinationRule, VirtualService) produces it; the
// dataplane builders (dataplane/envoy, dataplane/iptables) turn it into Envoy and iptables text.

/** PeerAuthentication modes after inheritance (UNSET never appears here). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** DestinationRule trafficPolicy.tls.mode, or AUTO when no DestinationRule applies (auto-mTLS). */
export type ClientTlsMode = 'DISABLE' | 'ISTIO_MUTUAL' | 'SIMPLE' | 'MUTUAL' | 'AUTO';

/** Istio protocol selection of a service port: a declared HTTP or TCP family protocol, or none (`auto`: sniffed). */
export type PortProtocol = 'http' | 'tcp' | 'auto';

export interface InboundPort {
  /** The workload (container) port. */
  port: number;
  mode: MtlsMode;
  /** What the service port declares (appProtocol/name); `auto` when it declares nothing Istio knows. */
  protocol: PortProtocol;
  /** Declared http2/grpc/grpc-web (protocol.Instance IsHTTP2): istiod's clusters speak HTTP/2 to it. */
  http2?: boolean;
}

export interface Endpoint {
  ip: string;
  port: number;
  labels: Record<string, string>;
  /** Carries the label security.istio.io/tlsMode=istio (an injected pod): auto-mTLS uses it. */
  istio: boolean;
  /** SPIFFE identity of the endpoint's service account. */
  identity: string;
}

export interface OutboundSubset {
  /** '' for the whole service. */
  name: string;
  endpoints: Endpoint[];
  tls: ClientTlsMode;
  /** SANs the upstream cert must carry (ISTIO_MUTUAL: the endpoints' identities, or DR subjectAltNames). */
  subjectAltNames: string[];
}

export interface WeightedRoute {
  subset: string;
  weight: number;
}

export interface OutboundService {
  /** <svc>.<ns>.svc.cluster.local */
  fqdn: string;
  vip: string;
  port: number;
  protocol: PortProtocol;
  /** Declared http2/grpc/grpc-web: HTTP/2 upstream (istiod's cluster_builder setH2Options). */
  http2?: boolean;
  subsets: OutboundSubset[];
  /** HTTP routes from a VirtualService; empty → all traffic to subset ''. */
  routes: WeightedRoute[];
}

/** One Gateway server on a gateway proxy (pilot/pkg/networking/core/gateway.go). */
export interface GatewayServerPlan {
  /** Where Envoy listens: the gateway Service's targetPort for the server port (Istio binds the target port), else the server port. */
  bindPort: number;
  protocol: 'HTTP' | 'HTTPS';
  hosts: string[];
  /** HTTPS: the credential named by credentialName, as files readable by uid 1337; MUTUAL also checks client certs against cacert. */
  tls?: { mode: 'SIMPLE' | 'MUTUAL'; cert: string; key: string; cacert?: string };
  /** VirtualServices bound to this gateway, one virtual host each: its hosts → weighted outbound clusters. */
  virtualHosts: { name: string; domains: string[]; route: { fqdn: string; port: number; subset: string; weight: number }[] }[];
}

export interface SidecarPlan {
  pod: string;
  namespace: string;
  /** spiffe://cluster.local/ns/<ns>/sa/<sa> */
  identity: string;
  inbound: InboundPort[];
  /** Mode for ports with no service port (Istio's passthrough chains). */
  defaultMode: MtlsMode;
  outbound: OutboundService[];
  /** File paths (readable by uid 1337) of this pod's identity. */
  certs: { cert: string; key: string; ca: string };
  /** Set on a gateway proxy (Deployment annotated inject.istio.io/templates: gateway): no capture, listeners per Gateway server. */
  gateway?: { servers: GatewayServerPlan[] };
}

/** Istio's fixed ports (istio-iptables, injection template). */
export const ISTIO_PORTS = {
  outbound: 15001,
  inbound: 15006,
  admin: 15000,
  statusPort: 15020,
  healthCheck: 15021,
  prometheus: 15090,
  proxyUid: 1337,
} as const;
