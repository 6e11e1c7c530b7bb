// What the harness asks an in-pod probe agent to do, and what it answers.
import type { Evidence, Observed, Verdict } from '../model/verdict.ts';

/**
 * `h2c`: HTTP/2 with prior knowledge (RFC 9113 §3.3), a POST carrying the token; `grpc`: a unary call of
 * Istio's echo method over h2c; `websocket`: an RFC 6455 upgrade and one echoed text message;
 * `tcp-server-first`: connect, wait for the server's banner without sending, then send the payload.
 */
export type ProbeProtocol = 'http' | 'https' | 'tcp' | 'tls' | 'h2c' | 'grpc' | 'websocket' | 'tcp-server-first';

/** What the wire gave beyond the common evidence, for the protocols that have it. */
export type ProbeEvidence = Evidence & {
  /** gRPC: the `grpc-status` the call ended with (trailers, or a trailers-only answer), null when none came. */
  grpcStatus?: number | null;
  /** tcp-server-first: the bytes the server sent before the client sent anything, null when none came. */
  banner?: string | null;
  /** websocket: whether the server answered 101 with the right Sec-WebSocket-Accept. */
  upgraded?: boolean;
};

export interface ProbeTls {
  /** PEM file paths readable inside the pod (the run directory is visible to pods). */
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  alpn?: string[];
}

export interface ProbeRequest {
  protocol: ProbeProtocol;
  /** Service name, DNS name or IP, resolved inside the pod. */
  host: string;
  port: number;
  /** http(s): request path, default `/`. */
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** tcp/tls: bytes to send (default: the token). */
  payload?: string;
  tls?: ProbeTls;
  /** Give up after this long and classify `denied:timeout` (default 1000 ms). */
  timeoutMs?: number;
  /** Wire-canary token: sent as `x-request-id` (http) or inside the payload (tcp). */
  token?: string;
  /** Keep at most this many bytes of the response body in the evidence (default 512). */
  bodyLimit?: number;
  /**
   * Send the call through this HTTP proxy (plain http://, e.g. the Diego egress proxy 127.0.0.1:61445): `http` as an
   * absolute-form request (`GET http://host:port/path`), `https`/`tls`/`tcp` inside a CONNECT tunnel to host:port
   * (a non-2xx answer to CONNECT is `denied:http-<code>`). Whether an app would use the proxy for a URL is the
   * caller's decision (model/c2c/proxy-env.ts proxyFor).
   */
  proxy?: ProbeProxy;
}

/** An HTTP proxy the probe sends its call through. */
export interface ProbeProxy {
  host: string;
  port: number;
}

export interface ProbeResult {
  observed: Observed;
  verdict: Verdict;
  /** `wire` is null here; the harness fills it from the wire canary. */
  evidence: ProbeEvidence;
  /** Response headers (http/https), lower-case names. */
  headers?: Record<string, string>;
}

/** Messages on the agent's Unix socket: one JSON object per line, answered by `id`. */
export type AgentRequest =
  | { id: number; op: 'ping' }
  | { id: number; op: 'probe'; req: ProbeRequest }
  | { id: number; op: 'marker'; host: string; port: number; token: string }
  /** Alone on its own connection: after the answer the connection pipes bytes to 127.0.0.1:<port> in the pod (the kubelet API's port-forward). */
  | { id: number; op: 'tunnel'; port: number };

export type AgentResponse =
  | { id: number; ok: true; result?: ProbeResult }
  | { id: number; ok: false; error: string };
