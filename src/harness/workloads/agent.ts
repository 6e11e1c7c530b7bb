// The in-pod probe agent: runs inside a pod's network namespace, listens on a Unix socket and
// performs probes (http, https, tcp, tls; h2c and gRPC with node:http2, WebSocket, server-first
// TCP) and wire-canary markers for the harness.
// Protocol (probe/types.ts): newline-delimited JSON AgentRequest → AgentResponse, matched by id,
// answered in any order, many in flight per connection.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { chmod, readFile, unlink } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { observedOf } from '../model/verdict.ts';
import { peerIdentity } from './echo-headers.ts';
import { classifyError, classifyGrpc, classifyStatus, EMPTY_REPLY, refineAllowed } from '../probe/classify.ts';
import type { AgentRequest, AgentResponse, ProbeEvidence, ProbeProtocol, ProbeProxy, ProbeRequest, ProbeResult } from '../probe/types.ts';
import { decodeMessageField, ECHO_METHOD, encodeMessageField, frameMessage, GRPC_CONTENT_TYPE, unframeMessage } from './grpc.ts';
import { acceptKey, decodeFrame, encodeFrame, OPCODE } from './websocket.ts';

const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_BODY_LIMIT = 512;
const PROTOCOLS: readonly ProbeProtocol[] = ['http', 'https', 'tcp', 'tls', 'h2c', 'grpc', 'websocket', 'tcp-server-first'];

export interface AgentOptions {
  /** Stop the agent when aborted (in-process use). Without it, SIGTERM stops the agent and exits 0. */
  signal?: AbortSignal;
  /** Where the `agent listening on <path>` line goes (default: stdout). */
  log?: (line: string) => void;
}

/**
 * Run the probe agent: `--socket <path>`. Resolves when the agent has stopped (SIGTERM, or
 * `opts.signal` aborted); readiness is "the socket accepts a connection" (AgentClient.connect).
 */
export async function runAgent(args: string[], opts: AgentOptions = {}): Promise<void> {
  const socketPath = parseSocketArg(args);
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));

  await unlink(socketPath).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  const conns = new Set<net.Socket>();
  // half-open: a tunnel passes the harness's FIN on to the pod's server while its answer still comes back
  const server = net.createServer({ allowHalfOpen: true }, (conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    serveConnection(conn);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log(`agent server error: ${e.message}`));
  await chmod(socketPath, 0o600);
  log(`agent listening on ${socketPath}`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      server.close(() => {
        // libuv removes the socket file on close; make sure of it either way.
        unlink(socketPath).catch(() => undefined).finally(resolve);
      });
      for (const c of conns) c.destroy();
    };
    if (opts.signal) {
      if (opts.signal.aborted) stop();
      else opts.signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGTERM', () => {
        stop();
        server.once('close', () => process.exit(0));
      });
    }
  });
}

function parseSocketArg(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--socket' && i + 1 < args.length) return args[i + 1];
    if (a.startsWith('--socket=')) return a.slice('--socket='.length);
  }
  throw new Error('usage: agent --socket <path>');
}

function serveConnection(conn: net.Socket): void {
  let buf: Buffer = Buffer.alloc(0);
  const send = (resp: AgentResponse): void => {
    if (!conn.destroyed && conn.writable) conn.write(JSON.stringify(resp) + '\n');
  };
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      const line = buf.subarray(0, nl).toString('utf8');
      buf = buf.subarray(nl + 1);
      const tunnel = tunnelRequest(line);
      if (tunnel) {
        // the rest of this connection is the tunnel's bytes
        conn.off('data', onData);
        conn.off('end', onEnd);
        startTunnel(conn, tunnel, buf, send);
        return;
      }
      if (line.trim() !== '') void handleLine(line).then(send);
    }
  };
  const onEnd = (): void => void conn.end();
  conn.on('data', onData);
  conn.on('end', onEnd);
  conn.on('error', () => undefined);
}

/** `{"id":N,"op":"tunnel","port":P}`: this connection becomes a byte pipe to 127.0.0.1:P in the pod (port-forward). */
function tunnelRequest(line: string): Extract<AgentRequest, { op: 'tunnel' }> | null {
  if (!line.includes('"tunnel"')) return null;
  try {
    const msg = JSON.parse(line) as Partial<AgentRequest>;
    return msg.op === 'tunnel' && typeof msg.id === 'number' && isPort(msg.port) ? (msg as Extract<AgentRequest, { op: 'tunnel' }>) : null;
  } catch {
    return null;
  }
}

/** Answers once the pod's port accepts (ok) or refuses (the error, then the connection ends); then pipes both ways. */
function startTunnel(conn: net.Socket, req: Extract<AgentRequest, { op: 'tunnel' }>, early: Buffer, send: (r: AgentResponse) => void): void {
  conn.pause();
  const upstream = net.connect({ host: '127.0.0.1', port: req.port, allowHalfOpen: true });
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    send({ id: req.id, ok: true });
    if (early.length) upstream.write(early);
    conn.pipe(upstream);
    upstream.pipe(conn);
    conn.resume();
  });
  upstream.on('error', (e: NodeJS.ErrnoException) => {
    if (connected) return conn.destroy();
    send({ id: req.id, ok: false, error: `dial tcp 127.0.0.1:${req.port}: ${e.code ?? e.message}` });
    conn.end();
  });
  // one leg fully closed means both directions are done (or failed): drop the other
  upstream.once('close', () => conn.destroy());
  conn.once('close', () => upstream.destroy());
}

/** One request line → one response; never throws. */
export async function handleLine(line: string): Promise<AgentResponse> {
  let id = -1;
  try {
    const msg = JSON.parse(line) as Partial<AgentRequest> & Record<string, unknown>;
    if (typeof msg !== 'object' || msg === null) throw new Error('request is not a JSON object');
    if (typeof msg.id !== 'number') throw new Error('request has no numeric id');
    id = msg.id;
    switch (msg.op) {
      case 'ping':
        return { id, ok: true };
      case 'probe':
        return { id, ok: true, result: await runProbe(validateProbe(msg.req)) };
      case 'marker': {
        const { host, port, token } = msg;
        if (typeof host !== 'string' || !isPort(port) || typeof token !== 'string') {
          throw new Error('marker needs host (string), port (1-65535) and token (string)');
        }
        await sendMarker(host, port, token);
        return { id, ok: true };
      }
      default:
        throw new Error(`unknown op ${JSON.stringify(msg.op)}`);
    }
  } catch (e) {
    return { id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536;
}

function validateProbe(req: unknown): ProbeRequest {
  if (typeof req !== 'object' || req === null) throw new Error('probe needs a req object');
  const r = req as ProbeRequest;
  if (!PROTOCOLS.includes(r.protocol)) throw new Error(`unknown probe protocol ${JSON.stringify(r.protocol)}`);
  if (typeof r.host !== 'string' || r.host === '') throw new Error('probe needs a host');
  if (!isPort(r.port)) throw new Error(`bad probe port ${JSON.stringify(r.port)}`);
  if (r.proxy !== undefined) {
    if (!['http', 'https', 'tcp', 'tls'].includes(r.protocol)) throw new Error(`a ${r.protocol} probe does not go through a proxy`);
    const p = r.proxy as Partial<ProbeProxy> | null;
    if (typeof p !== 'object' || p === null || typeof p.host !== 'string' || p.host === '' || !isPort(p.port)) {
      throw new Error(`bad probe proxy ${JSON.stringify(r.proxy)}: needs host (string) and port (1-65535)`);
    }
  }
  return r;
}

/** Fire one UDP datagram carrying `token` (a wire-canary sync packet); resolves once sent. */
export async function sendMarker(host: string, port: number, token: string): Promise<void> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.send(Buffer.from(token), port, host, (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    sock.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Probes

/** What a call produced, before classification. */
interface Outcome {
  /** The call failed before any answer (null when it was answered). */
  error: { code?: string; message?: string } | null;
  timedOut: boolean;
  status: number | null;
  headers?: Record<string, string>;
  body: Buffer | null;
  alpn: string | null;
  serverIdentity: string | null;
  /** An error after the answer started (e.g. reset mid-body); kept as evidence only. */
  lateError: string | null;
  grpcStatus?: number | null;
  banner?: string | null;
  upgraded?: boolean;
}

interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
  ALPNProtocols?: string[];
}

function emptyOutcome(): Outcome {
  return { error: null, timedOut: false, status: null, body: null, alpn: null, serverIdentity: null, lateError: null };
}

function timeoutError(ms: number): { code: string; message: string } {
  return { code: 'ETIMEDOUT', message: `no answer within ${ms} ms` };
}

function errorOf(e: unknown): { code?: string; message?: string } {
  const err = e as NodeJS.ErrnoException;
  return { code: typeof err?.code === 'string' ? err.code : undefined, message: String(err?.message ?? e) };
}

async function loadTls(req: ProbeRequest): Promise<TlsMaterial> {
  const t = req.tls ?? {};
  const m: TlsMaterial = { rejectUnauthorized: t.ca !== undefined };
  if (t.ca !== undefined) m.ca = await readFile(t.ca);
  if (t.cert !== undefined) m.cert = await readFile(t.cert);
  if (t.key !== undefined) m.key = await readFile(t.key);
  // RFC 6066 forbids an IP literal as SNI (Node warns); only names are sent.
  const sni = t.servername ?? (net.isIP(req.host) ? undefined : req.host);
  if (sni !== undefined && !net.isIP(sni)) m.servername = sni;
  if (t.alpn !== undefined && t.alpn.length > 0) m.ALPNProtocols = t.alpn;
  return m;
}

/** Identity in the server certificate: first URI SAN, else CN (same rule as the echo's x-echo-peer). */
function certIdentity(sock: tls.TLSSocket): string | null {
  const cert = sock.getPeerX509Certificate();
  if (cert === undefined) return null;
  return peerIdentity(cert) || null;
}

function alpnOf(sock: tls.TLSSocket): string | null {
  return typeof sock.alpnProtocol === 'string' ? sock.alpnProtocol : null;
}

function lowerHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** `host:port` as a request target or Host header (IPv6 in brackets; port 80 left out for http, like curl). */
function authority(host: string, port: number, defaultPort: number): string {
  const h = net.isIPv6(host) ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}

/**
 * How an http(s) call reaches the server: directly; as an absolute-form request to a proxy (`GET http://h:p/x`);
 * or over an already-open connection (a CONNECT tunnel, wrapped in TLS for https).
 */
type HttpRoute = { kind: 'direct' } | { kind: 'absolute'; proxy: ProbeProxy } | { kind: 'socket'; socket: net.Socket };

function httpCall(req: ProbeRequest, tlsm: TlsMaterial | null, timeoutMs: number, bodyLimit: number, route: HttpRoute = { kind: 'direct' }): Promise<Outcome> {
  return new Promise((resolve) => {
    const out = emptyOutcome();
    let settled = false;
    let responded = false;
    const chunks: Buffer[] = [];
    let kept = 0;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (responded) out.body = Buffer.concat(chunks);
      resolve(out);
    };

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    headers.connection = 'close';
    if (req.token !== undefined) headers['x-request-id'] = req.token;
    const path = req.path ?? '/';
    let options: https.RequestOptions = {
      host: req.host,
      port: req.port,
      path,
      method: req.method ?? 'GET',
      headers,
      agent: false,
      ...(tlsm ?? {}),
    };
    if (route.kind === 'absolute') {
      // what an HTTP_PROXY-honouring client sends a proxy: the absolute URI as target, Host = the origin
      const origin = authority(req.host, req.port, 80);
      headers.host ??= origin;
      options = { ...options, host: route.proxy.host, port: route.proxy.port, path: `http://${origin}${path.startsWith('/') ? path : `/${path}`}` };
    } else if (route.kind === 'socket') {
      headers.host ??= authority(req.host, req.port, tlsm ? 443 : 80);
      const socket = route.socket;
      options = { ...options, agent: undefined, createConnection: () => socket };
    }
    const onResponse = (res: http.IncomingMessage): void => {
      responded = true;
      out.status = res.statusCode ?? null;
      out.headers = lowerHeaders(res.headers);
      res.on('data', (chunk: Buffer) => {
        if (kept < bodyLimit) {
          const part = chunk.subarray(0, bodyLimit - kept);
          chunks.push(part);
          kept += part.length;
        }
        if (kept >= bodyLimit) {
          // Enough for the evidence; the status already decided the verdict.
          finish();
          r.destroy();
        }
      });
      res.on('end', finish);
      res.on('error', (e) => {
        const err = errorOf(e);
        out.lateError = err.code ?? err.message ?? null;
        finish();
      });
      res.on('close', finish);
    };
    const r = tlsm ? https.request(options, onResponse) : http.request(options, onResponse);
    // Read the handshake facts at secureConnect: once the server closed (Connection: close), the
    // socket no longer has its peer certificate by the time the response is handled.
    r.on('socket', (s) => {
      if (s instanceof tls.TLSSocket) {
        s.once('secureConnect', () => {
          out.alpn = alpnOf(s);
          out.serverIdentity = certIdentity(s);
        });
      }
    });
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      if (responded) {
        out.lateError = e.code ?? e.message;
      } else if (e.message === 'socket hang up') {
        // Node says "socket hang up" when the peer closed (FIN) before any response byte; a real
        // RST arrives as the socket's own ECONNRESET instead.
        out.error = { code: EMPTY_REPLY, message: 'empty reply: connection closed before any response byte' };
      } else {
        out.error = errorOf(e);
      }
      finish();
    });
    const timer = setTimeout(() => {
      if (!responded) {
        out.timedOut = true;
        out.error = timeoutError(timeoutMs);
      } else {
        out.lateError = 'ETIMEDOUT';
      }
      finish();
      r.destroy();
    }, timeoutMs);
    r.end();
  });
}

function streamCall(req: ProbeRequest, tlsm: TlsMaterial | null, timeoutMs: number, bodyLimit: number, tunnel?: net.Socket): Promise<Outcome> {
  return new Promise((resolve) => {
    const out = emptyOutcome();
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(out);
    };
    const payload = req.payload ?? `Time is ${req.token ?? new Date().toISOString()}`;
    const sock: net.Socket = tlsm
      ? tls.connect(tunnel ? { socket: tunnel, ...tlsm } : { host: req.host, port: req.port, ...tlsm })
      : (tunnel ?? net.connect({ host: req.host, port: req.port }));
    const onOpen = (): void => {
      if (sock instanceof tls.TLSSocket) {
        out.alpn = alpnOf(sock);
        out.serverIdentity = certIdentity(sock);
      }
      sock.write(payload);
    };
    // a plain tunnel is already connected: no 'connect' event will come
    if (tunnel && !tlsm) setImmediate(onOpen);
    else sock.once(tlsm ? 'secureConnect' : 'connect', onOpen);
    sock.on('data', (chunk: Buffer) => {
      // First data is the answer: the exchange succeeded.
      out.body = chunk.subarray(0, bodyLimit);
      finish();
      sock.destroy();
    });
    sock.on('error', (e) => {
      if (settled) return;
      out.error = errorOf(e);
      finish();
    });
    // 'close' follows 'error' when there was one, so a TLS alert read just before the FIN wins.
    sock.on('close', () => {
      if (settled) return;
      out.error = { code: EMPTY_REPLY, message: 'empty reply: connection closed before any response byte' };
      finish();
    });
    const timer = setTimeout(() => {
      out.timedOut = true;
      out.error = timeoutError(timeoutMs);
      finish();
      sock.destroy();
    }, timeoutMs);
  });
}

/**
 * `CONNECT host:port` to an HTTP proxy. A 2xx answer hands back the tunnel's socket (bytes after the answer's head
 * are put back into it); any other answer is an outcome with that status (the proxy refused: `denied:http-<code>`),
 * and a failure to reach the proxy an outcome with that error.
 */
function openTunnel(proxy: ProbeProxy, host: string, port: number, timeoutMs: number): Promise<{ socket: net.Socket } | { outcome: Outcome }> {
  return new Promise((resolve) => {
    let settled = false;
    const target = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const r = http.request({ host: proxy.host, port: proxy.port, method: 'CONNECT', path: target, headers: { host: target }, agent: false });
    const done = (v: { socket: net.Socket } | { outcome: Outcome }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    r.on('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        if (head.length > 0) socket.unshift(head);
        done({ socket });
      } else {
        socket.destroy();
        done({ outcome: { ...emptyOutcome(), status, headers: lowerHeaders(res.headers), body: Buffer.alloc(0) } });
      }
    });
    r.on('response', (res: http.IncomingMessage) => {
      // a proxy that answers CONNECT with an ordinary response (no tunnel)
      res.resume();
      done({ outcome: { ...emptyOutcome(), status: res.statusCode ?? 0, headers: lowerHeaders(res.headers), body: Buffer.alloc(0) } });
    });
    r.on('error', (e) => {
      const err = errorOf(e);
      done({ outcome: { ...emptyOutcome(), error: e.message === 'socket hang up' ? { code: EMPTY_REPLY, message: 'empty reply: the proxy closed before answering CONNECT' } : err } });
    });
    const timer = setTimeout(() => {
      r.destroy();
      done({ outcome: { ...emptyOutcome(), timedOut: true, error: timeoutError(timeoutMs) } });
    }, timeoutMs);
    r.end();
  });
}

const EMPTY = { code: EMPTY_REPLY, message: 'empty reply: connection closed before any response byte' };

/**
 * HTTP/2 with prior knowledge (node:http2 on an http: URL sends the connection preface at once, RFC 9113
 * §3.3): a POST whose body is the token (HPACK may Huffman-code a header value; a DATA frame carries it as
 * bytes, so the wire canary can see it), or with `grpc` a unary call of Istio's echo method carrying the
 * token as its message, `grpc-status` read from the trailers (or a trailers-only answer).
 */
function h2Call(req: ProbeRequest, timeoutMs: number, bodyLimit: number, grpc: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const out = emptyOutcome();
    let settled = false;
    let responded = false;
    const chunks: Buffer[] = [];
    const session = http2.connect(`http://${authority(req.host, req.port, 80)}`);
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (responded) {
        const body = Buffer.concat(chunks);
        if (grpc) {
          try {
            const framed = unframeMessage(body);
            out.body = framed ? Buffer.from(decodeMessageField(framed.proto), 'utf8').subarray(0, bodyLimit) : Buffer.alloc(0);
          } catch (e) {
            out.lateError = errorOf(e).message ?? 'bad gRPC message';
            out.body = body.subarray(0, bodyLimit);
          }
        } else out.body = body.subarray(0, bodyLimit);
      }
      session.destroy();
      resolve(out);
    };
    const failed = (e: { code?: string; message?: string }): void => {
      if (settled) return;
      if (responded) out.lateError = e.code ?? e.message ?? null;
      else out.error = e;
      finish();
    };
    session.on('error', (e) => failed(errorOf(e)));
    // the server closed the connection (or sent GOAWAY) before answering: curl's "Empty reply"
    session.on('close', () => failed(EMPTY));
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': grpc ? ECHO_METHOD : (req.path ?? '/'),
      'content-type': grpc ? GRPC_CONTENT_TYPE : 'text/plain',
    };
    if (grpc) headers.te = 'trailers';
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    if (req.token !== undefined) headers['x-request-id'] = req.token;
    const payload = req.payload ?? req.token ?? '';
    const stream = session.request(headers);
    stream.on('response', (h) => {
      responded = true;
      out.status = Number(h[':status'] ?? 0);
      const lower: Record<string, string> = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) lower[k] = Array.isArray(v) ? v.join(', ') : String(v);
      out.headers = lower;
      if (grpc && lower['grpc-status'] !== undefined) out.grpcStatus = Number(lower['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (grpc && t['grpc-status'] !== undefined) out.grpcStatus = Number(t['grpc-status']);
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', finish);
    stream.on('error', (e) => failed(errorOf(e)));
    stream.end(grpc ? frameMessage(encodeMessageField(payload)) : payload);
    const timer = setTimeout(() => {
      if (!responded) {
        out.timedOut = true;
        out.error = timeoutError(timeoutMs);
      } else out.lateError = 'ETIMEDOUT';
      finish();
    }, timeoutMs);
  });
}

/**
 * WebSocket (RFC 6455): an HTTP/1.1 upgrade carrying the token as x-request-id, then one masked text
 * message (the payload) that must come back. Allowed only with a 101 whose Sec-WebSocket-Accept matches
 * the key and the message echoed; another answer to the upgrade is its status.
 */
function websocketCall(req: ProbeRequest, timeoutMs: number, bodyLimit: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const out = emptyOutcome();
    out.upgraded = false;
    let settled = false;
    let socket: net.Socket | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(out);
    };
    const key = randomBytes(16).toString('base64');
    const message = Buffer.from(req.payload ?? req.token ?? 'hello', 'utf8');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': key });
    if (req.token !== undefined) headers['x-request-id'] = req.token;
    const r = http.request({ host: req.host, port: req.port, path: req.path ?? '/', method: 'GET', headers, agent: false });
    r.on('upgrade', (res: http.IncomingMessage, s: net.Socket, head: Buffer) => {
      socket = s;
      out.status = res.statusCode ?? null;
      out.headers = lowerHeaders(res.headers);
      if (out.headers['sec-websocket-accept'] !== acceptKey(key)) {
        out.error = { code: 'WS_BAD_ACCEPT', message: `Sec-WebSocket-Accept ${JSON.stringify(out.headers['sec-websocket-accept'] ?? null)} does not match the key` };
        return finish();
      }
      out.upgraded = true;
      let buf = Buffer.from(head);
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        let next: ReturnType<typeof decodeFrame>;
        try {
          next = decodeFrame(buf);
        } catch (e) {
          out.error = errorOf(e);
          return finish();
        }
        if (!next) return;
        out.body = next.frame.payload.subarray(0, bodyLimit);
        if (next.frame.opcode !== OPCODE.text || !next.frame.payload.equals(message)) {
          out.error = { code: 'WS_NO_ECHO', message: `the first frame (opcode ${next.frame.opcode}) is not the message sent` };
        }
        finish();
      };
      s.on('data', onData);
      s.on('error', (e) => {
        if (!settled) out.error = errorOf(e);
        finish();
      });
      s.on('close', () => {
        if (!settled) out.error = EMPTY;
        finish();
      });
      s.write(encodeFrame(OPCODE.text, message, randomBytes(4)));
      if (buf.length > 0) onData(Buffer.alloc(0));
    });
    r.on('response', (res: http.IncomingMessage) => {
      // no upgrade: the answer's status is the verdict (a 2xx/3xx without 101 is a refused upgrade)
      out.status = res.statusCode ?? null;
      out.headers = lowerHeaders(res.headers);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        out.body = Buffer.concat(chunks).subarray(0, bodyLimit);
        finish();
      });
      res.on('error', finish);
    });
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      out.error = e.message === 'socket hang up' ? EMPTY : errorOf(e);
      finish();
    });
    const timer = setTimeout(() => {
      out.timedOut = true;
      out.error = timeoutError(timeoutMs);
      r.destroy();
      finish();
    }, timeoutMs);
    r.end();
  });
}

/**
 * A server-first TCP call (Istio echo's forwarder with ServerFirst): connect and send nothing until the
 * server's first line (its banner) arrives, then send the payload and take the first answer. No banner
 * within the timeout is `denied:timeout`: the connection is open and silent.
 */
function serverFirstCall(req: ProbeRequest, timeoutMs: number, bodyLimit: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const out = emptyOutcome();
    out.banner = null;
    let settled = false;
    let banner = Buffer.alloc(0);
    let sent = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(out);
    };
    const sock = net.connect({ host: req.host, port: req.port });
    sock.on('data', (chunk: Buffer) => {
      if (!sent) {
        banner = Buffer.concat([banner, chunk]);
        const nl = banner.indexOf(0x0a);
        if (nl < 0) return;
        out.banner = banner.subarray(0, nl + 1).toString('utf8');
        sent = true;
        const rest = banner.subarray(nl + 1);
        sock.write(req.payload ?? `Time is ${req.token ?? new Date().toISOString()}`);
        if (rest.length === 0) return;
        chunk = rest;
      }
      out.body = chunk.subarray(0, bodyLimit);
      finish();
    });
    sock.on('error', (e) => {
      if (settled) return;
      out.error = errorOf(e);
      finish();
    });
    sock.on('close', () => {
      if (settled) return;
      out.error = EMPTY;
      finish();
    });
    const timer = setTimeout(() => {
      out.timedOut = true;
      out.error = timeoutError(timeoutMs);
      if (out.banner === null && banner.length > 0) out.banner = banner.toString('utf8');
      finish();
    }, timeoutMs);
  });
}

/** Perform one probe from this network namespace and classify it from the real signal. */
export async function runProbe(req: ProbeRequest): Promise<ProbeResult> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const bodyLimit = req.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const secure = req.protocol === 'https' || req.protocol === 'tls';
  const tlsm = secure ? await loadTls(req) : null;

  const t0 = process.hrtime.bigint();
  let out: Outcome;
  if (req.proxy && req.protocol === 'http') {
    out = await httpCall(req, tlsm, timeoutMs, bodyLimit, { kind: 'absolute', proxy: req.proxy });
  } else if (req.proxy) {
    const tunnel = await openTunnel(req.proxy, req.host, req.port, timeoutMs);
    if ('socket' in tunnel) {
      const left = Math.max(1, timeoutMs - Math.round(Number(process.hrtime.bigint() - t0) / 1e6));
      if (req.protocol === 'https') {
        const socket = tls.connect({ socket: tunnel.socket, ...tlsm! });
        out = await httpCall(req, tlsm, left, bodyLimit, { kind: 'socket', socket });
      } else {
        out = await streamCall(req, tlsm, left, bodyLimit, tunnel.socket);
      }
      tunnel.socket.destroy();
    } else out = tunnel.outcome;
  } else if (req.protocol === 'h2c' || req.protocol === 'grpc') {
    out = await h2Call(req, timeoutMs, bodyLimit, req.protocol === 'grpc');
  } else if (req.protocol === 'websocket') {
    out = await websocketCall(req, timeoutMs, bodyLimit);
  } else if (req.protocol === 'tcp-server-first') {
    out = await serverFirstCall(req, timeoutMs, bodyLimit);
  } else {
    out =
      req.protocol === 'http' || req.protocol === 'https'
        ? await httpCall(req, tlsm, timeoutMs, bodyLimit)
        : await streamCall(req, tlsm, timeoutMs, bodyLimit);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;

  const h = out.headers ?? {};
  const evidence: ProbeEvidence = {
    peer: null,
    alpn: out.alpn,
    xfcc: h['x-echo-xfcc'] ?? null,
    status: out.status,
    error: out.error ? (out.error.code ?? out.error.message ?? 'unknown error') : out.lateError,
    wire: null,
    ms: Math.round(ms * 1000) / 1000,
    servedBy: h['x-echo-pod'] ?? null,
    body: out.body ? out.body.toString('utf8') : null,
  };
  if (secure) evidence.serverIdentity = out.serverIdentity;
  if (req.protocol === 'grpc') evidence.grpcStatus = out.grpcStatus ?? null;
  if (req.protocol === 'tcp-server-first') evidence.banner = out.banner ?? null;
  if (req.protocol === 'websocket') evidence.upgraded = out.upgraded ?? false;

  let verdict: ProbeResult['verdict'];
  if (out.error) {
    verdict = classifyError(out.error, { tls: secure, timedOut: out.timedOut });
  } else {
    if (req.protocol === 'grpc') verdict = classifyGrpc(out.status ?? 0, out.grpcStatus ?? null);
    // a WebSocket call that got an answer without upgrading was refused: its status says how
    else if (req.protocol === 'websocket' && out.status !== 101) verdict = out.status !== null && out.status >= 400 ? classifyStatus(out.status) : `denied:http-${out.status ?? 0}`;
    else verdict = out.status !== null && req.protocol !== 'websocket' ? classifyStatus(out.status) : 'allowed:plaintext';
    if (verdict.startsWith('allowed')) {
      const refined = refineAllowed({
        protocol: req.protocol,
        clientCertPresented: tlsm?.cert !== undefined,
        echo: { xfcc: h['x-echo-xfcc'], peer: h['x-echo-peer'] },
        serverIdentity: out.serverIdentity,
      });
      verdict = refined.verdict;
      evidence.peer = refined.peer;
    }
  }
  const result: ProbeResult = { observed: observedOf(verdict), verdict, evidence };
  if (out.headers) result.headers = out.headers;
  return result;
}
