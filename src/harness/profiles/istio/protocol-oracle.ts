// The Istio oracle for calls that are not the port's plain protocol (pure): h2c, gRPC and WebSocket on an HTTP
// port, and a server-first TCP client, whose fate depends on who inspects the connection's first bytes.
// Sources: reachability_test.go (the strict case adds WebSocket on the http port, http2 and grpc: "security code
// does not treat HTTP2, WS, or GRPC differently"); tests/integration/pilot/common/routing.go serverFirstTestCases;
// istio.io docs/ops/configuration/traffic-management/protocol-selection ("Server first protocols").
import { expectIstio, type IstioCell, type IstioExpectation } from './oracle.ts';
import type { ServicePortDef } from './resources.ts';
import type { RowCall } from './truth.ts';

/** The Service port by Istio protocol selection: a declared HTTP family or TCP family protocol, or none (`auto`: sniffed). */
export type PortProtocolSelection = 'http' | 'tcp' | 'auto';

/** pkg/config/protocol/instance.go Parse: the names that declare HTTP handling (the rest of the list is TCP-like). */
const HTTP_FAMILY = ['http', 'http2', 'grpc', 'grpc-web', 'h2c', 'http_proxy'];
const TCP_FAMILY = ['tcp', 'https', 'tls', 'mongo', 'redis', 'mysql', 'udp'];
/** protocol-selection doc: "known to be incompatible with automatic protocol selection … treated as TCP" (SMTP, DNS, MySQL, MongoDB). */
const TCP_BY_PORT = [25, 53, 3306, 27017];

/** protocol.Instance IsHTTP2: the declared protocols istiod speaks HTTP/2 for upstream (cluster_builder setH2Options). */
const HTTP2_FAMILY = ['http2', 'grpc', 'grpc-web'];

/** What a Service port declares: appProtocol first, then the name's `<protocol>[-<suffix>]`. */
const declaredProtocol = (p: ServicePortDef): string => (p.appProtocol ?? (p.name ?? '').split('-')[0] ?? '').toLowerCase();

/** Istio protocol selection of a Service port: appProtocol first, then the name's `<protocol>[-<suffix>]`, then the well-known ports. */
export function protocolSelection(p: ServicePortDef): PortProtocolSelection {
  const declared = declaredProtocol(p);
  if (HTTP_FAMILY.includes(declared)) return 'http';
  if (TCP_FAMILY.includes(declared)) return 'tcp';
  return TCP_BY_PORT.includes(p.port) ? 'tcp' : 'auto';
}

/** The port declares HTTP/2 (http2, grpc, grpc-web): istiod's inbound and outbound clusters for it speak HTTP/2. */
export const declaresHttp2 = (p: ServicePortDef): boolean => HTTP2_FAMILY.includes(declaredProtocol(p));

export interface ProtocolCell extends Omit<IstioCell, 'protocol' | 'client'> {
  call: RowCall;
  /** The called Service port's protocol selection. */
  port: PortProtocolSelection;
}

const timeout: IstioExpectation = { observed: 'denied', verdict: 'denied:timeout' };

export function expectProtocolCell(cell: ProtocolCell): IstioExpectation {
  const { call, port, ...base } = cell;
  if (call !== 'tcp-server-first') {
    // reachability_test.go: security treats HTTP/2, gRPC and WebSocket as HTTP (one HCM per HTTP port)
    if (port !== 'http') throw new Error(`oracle: a ${call} call to a ${port} port is not modelled (Istio's test makes it to an http, http2 or grpc port)`);
    return expectIstio({ ...base, protocol: 'http' });
  }
  // A server-first client sends nothing until the server speaks. Whoever must see the first bytes waits for them:
  // listener filters with listener_filters_timeout 0s (istiod's protocolDetectionTimeout default) never give up.
  // routing.go: "For auto port, outbound request will be delayed by the protocol sniffer, regardless of configuration".
  if (cell.fromSidecar && port === 'auto') return timeout;
  const tcp = expectIstio({ ...base, protocol: 'tcp' });
  // No sidecar on the server: nothing inspects its inbound; the client sidecar's tcp_proxy (declared tcp) connects at once.
  if (!cell.toSidecar) return tcp;
  // routing.go: "On inbound, the request is TLS, so its not server first" (ISTIO_MUTUAL → PERMISSIVE/STRICT: OK).
  if (tcp.verdict === 'allowed:mtls') return tcp;
  // Plaintext into a sidecar: DISABLE on a declared TCP port has no sniffer ("tcp-server DISABLE DISABLE: OK"); any
  // other mode inspects for TLS ("we will still enable inbound sniffing for the port … no server-first upgrading";
  // protocol-selection: "plaintext requests to servers configured in mTLS PERMISSIVE mode will fail"), and an auto
  // port sniffs for HTTP: the client waits for a banner that never comes.
  if (cell.serverMode === 'DISABLE' && port === 'tcp') return tcp;
  return timeout;
}
