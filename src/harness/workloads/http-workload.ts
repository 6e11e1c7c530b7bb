// The one HTTP server shape of all HTTP workloads: x-echo-* headers on every response,
// `GET /echo` answered the same everywhere, handler errors turned into 500s. A workload may also
// serve, on the same plaintext port, HTTP/2 with prior knowledge (h2c, told apart from HTTP/1 by
// the client's connection preface, RFC 9113 §3.4), unary gRPC calls over it, and WebSocket
// upgrades (RFC 6455): the protocols Istio's echo serves on its http, http2 and grpc ports.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { echoBody, echoHeaders, echoIdentity, type EchoIdentity } from './echo-headers.ts';
import { listen, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';
import { decodeMessageField, encodeMessageField, frameMessage, GRPC_CONTENT_TYPE, GRPC_STATUS, unframeMessage } from './grpc.ts';
import { acceptKey, decodeFrame, encodeFrame, OPCODE } from './websocket.ts';

export interface HttpRequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Parsed request target (pathname is still percent-encoded). */
  url: URL;
  id: EchoIdentity;
  env: Env;
}

export type HttpHandler = (ctx: HttpRequestContext) => void | Promise<void>;

export interface HttpWorkloadSpec {
  kind: string;
  defaultPort: number;
  handler: HttpHandler;
  /** Serve HTTPS with these options instead of HTTP. */
  tls?: TlsOptions;
  /** Plaintext only: also serve HTTP/2 with prior knowledge (h2c) on the port. */
  h2c?: boolean;
  /** Unary gRPC over h2c: `:path` → the response message's text for the request message's text; an unknown path is UNIMPLEMENTED. */
  grpc?: Record<string, (message: string, ctx: GrpcContext) => string>;
  /** WebSocket upgrades: each text or binary message is answered with what this returns (same opcode). */
  websocket?: (message: Buffer, ctx: { req: IncomingMessage; id: EchoIdentity }) => Buffer;
}

export interface GrpcContext {
  /** The request as an HTTP/1-style message (headers, rawHeaders, url), as echoBody reads it. */
  req: IncomingMessage;
  id: EchoIdentity;
}

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Writes a complete response with Content-Type and Content-Length. */
export function send(res: ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': String(buf.length) });
  res.end(buf);
}

export const TEXT_PLAIN = 'text/plain; charset=utf-8';

/** Answers the Istio-echo style body (also what `GET /echo` gives on every HTTP workload). */
export function sendEcho(ctx: HttpRequestContext, status = 200): void {
  send(ctx.res, status, echoBody(ctx.req, ctx.id, status), TEXT_PLAIN);
}

/** Origin-form (`/a?b`) and absolute-form (`http://h/a`) targets; `//x` stays a path. */
function requestUrl(target: string | undefined): URL {
  const t = target ?? '/';
  if (t.startsWith('/')) return new URL(`http://workload.invalid${t}`);
  try {
    return new URL(t);
  } catch {
    return new URL(`http://workload.invalid/${t}`);
  }
}

export async function startHttpWorkload(spec: HttpWorkloadSpec, opts: WorkloadOptions): Promise<WorkloadHandle> {
  const env = opts.env ?? process.env;
  const id = echoIdentity(env);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx: HttpRequestContext = { req, res, url: requestUrl(req.url), id, env };
    for (const [name, value] of Object.entries(echoHeaders(req, id))) res.setHeader(name, value);
    // Drain any request body so keep-alive connections stay usable.
    req.resume();
    Promise.resolve()
      .then(() => (ctx.url.pathname === '/echo' ? sendEcho(ctx) : spec.handler(ctx)))
      .catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (!res.headersSent) send(res, 500, `${spec.kind}: internal error: ${message}\n`, TEXT_PLAIN);
        else res.destroy();
      });
  };
  if (spec.tls && spec.h2c) throw new Error(`${spec.kind}: h2c is plaintext HTTP/2; it does not go with TLS`);
  const http1 = spec.tls ? createHttpsServer(spec.tls, onRequest) : createHttpServer(onRequest);
  const onUpgrade = spec.websocket;
  if (onUpgrade) http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => serveWebSocket(req, socket, head, id, (m) => onUpgrade(m, { req, id })));
  if (!spec.h2c) return listen(http1, spec.kind, opts, spec.defaultPort);

  // HTTP/2 requests reach the same handlers through node:http2's compatibility API (the fields they read exist there).
  const grpc = spec.grpc ?? {};
  const h2 = createH2Server((req: Http2ServerRequest, res: Http2ServerResponse) => {
    const contentType = String(req.headers['content-type'] ?? '');
    if (contentType === GRPC_CONTENT_TYPE || contentType.startsWith(`${GRPC_CONTENT_TYPE}+`)) return serveGrpcCall(req, res, grpc, id);
    onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
  h2.on('sessionError', () => undefined);
  // One listener for both: the first bytes of a connection say which server gets it.
  const front = createNetServer((socket: Socket) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && seen.length < H2_PREFACE.length) return; // a prefix of the preface: wait for the rest
      socket.off('data', onData);
      if (isH2) {
        h2.emit('connection', replayed(socket, seen));
        return;
      }
      socket.pause();
      socket.unshift(seen);
      http1.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return listen(front, spec.kind, opts, spec.defaultPort);
}

/**
 * The socket as a stream that first gives back the bytes already read from it. node:http2 reads a net.Socket's
 * handle itself and misses bytes put back with unshift ("bad client magic"); a plain Duplex it reads as a stream.
 */
function replayed(socket: Socket, first: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  stream.push(first);
  socket.on('data', (c: Buffer) => {
    if (!stream.push(c)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  return stream;
}

/** One unary gRPC call: the request message's field 1 → the method's answer, grpc-status in the trailers. */
function serveGrpcCall(req: Http2ServerRequest, res: Http2ServerResponse, methods: NonNullable<HttpWorkloadSpec['grpc']>, id: EchoIdentity): void {
  const http1View = req as unknown as IncomingMessage;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const headers: Record<string, string> = { 'content-type': GRPC_CONTENT_TYPE, ...echoHeaders(http1View, id) };
    const finish = (status: number, message: string, body?: Buffer): void => {
      res.writeHead(200, headers);
      res.addTrailers({ 'grpc-status': String(status), ...(message ? { 'grpc-message': encodeURIComponent(message) } : {}) });
      if (body) res.end(body);
      else res.end();
    };
    const method = methods[req.url];
    if (!method) return finish(GRPC_STATUS.unimplemented, `unknown method ${req.url}`);
    let text: string;
    try {
      const framed = unframeMessage(Buffer.concat(chunks));
      if (!framed) return finish(GRPC_STATUS.invalidArgument, 'no complete request message');
      text = decodeMessageField(framed.proto);
    } catch (e) {
      return finish(GRPC_STATUS.invalidArgument, e instanceof Error ? e.message : String(e));
    }
    finish(GRPC_STATUS.ok, '', frameMessage(encodeMessageField(method(text, { req: http1View, id }))));
  });
}

/** RFC 6455 server side: the 101 answer (with the x-echo-* headers), then every data frame answered, pings ponged, a close returned. */
function serveWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, id: EchoIdentity, answer: (message: Buffer) => Buffer): void {
  socket.on('error', () => socket.destroy());
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const headers: Record<string, string> = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': acceptKey(key) };
  for (const [k, v] of Object.entries(echoHeaders(req, id))) headers[k] = v;
  socket.write(`HTTP/1.1 101 Switching Protocols\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  let buf = Buffer.from(head);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let next: ReturnType<typeof decodeFrame>;
      try {
        next = decodeFrame(buf);
      } catch {
        socket.destroy();
        return;
      }
      if (!next) return;
      buf = buf.subarray(next.size);
      const { opcode, payload } = next.frame;
      if (opcode === OPCODE.text || opcode === OPCODE.binary) socket.write(encodeFrame(opcode, answer(payload)));
      else if (opcode === OPCODE.ping) socket.write(encodeFrame(OPCODE.pong, payload));
      else if (opcode === OPCODE.close) {
        socket.end(encodeFrame(OPCODE.close, payload.subarray(0, 2)));
        return;
      }
    }
  };
  socket.on('data', onData);
  if (buf.length > 0) onData(Buffer.alloc(0));
}
