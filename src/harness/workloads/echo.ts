// A generic echo for tests: every path answers the Istio-echo style body; /status/<code> answers
// with that status; /bytes/<n> answers a fixed payload of n bytes (httpbin's /bytes/{n} without
// the randomness: the load generator's target). Optionally HTTPS, optionally requiring a client
// certificate. In plaintext it also serves, like Istio's echo on its http/http2/grpc ports, h2c
// (HTTP/2 with prior knowledge), the unary gRPC method proto.EchoTestService/Echo and WebSocket
// (each message echoed back).
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { TlsOptions } from 'node:tls';
import { parseFlags, parsePort, usage, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';
import { echoBody } from './echo-headers.ts';
import { ECHO_METHOD } from './grpc.ts';
import { send, sendEcho, startHttpWorkload, TEXT_PLAIN } from './http-workload.ts';

export const ECHO_PORT = 8080;
/** Largest /bytes/<n> payload (16 MiB). */
export const MAX_PAYLOAD_BYTES = 16 << 20;

export interface EchoOptions extends WorkloadOptions {
  /** PEM file paths. With cert and key the echo serves HTTPS. */
  tlsCert?: string;
  tlsKey?: string;
  /** PEM CA bundle: require a client certificate and verify it against this CA. */
  clientCa?: string;
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw usage(`echo ${flag}: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The TLS options of an HTTPS echo, or undefined for plain HTTP. */
export function echoTlsOptions(opts: EchoOptions): TlsOptions | undefined {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw usage('echo: --tls-cert and --tls-key go together');
  if (opts.tlsCert === undefined || opts.tlsKey === undefined) {
    if (opts.clientCa !== undefined) throw usage('echo: --client-ca needs --tls-cert and --tls-key');
    return undefined;
  }
  const tls: TlsOptions = {
    cert: readPem('--tls-cert', opts.tlsCert),
    key: readPem('--tls-key', opts.tlsKey),
    // Only HTTP/1.1 is spoken; a client offering ALPN without it is refused (no_application_protocol).
    ALPNProtocols: ['http/1.1'],
  };
  if (opts.clientCa !== undefined) {
    tls.ca = readPem('--client-ca', opts.clientCa);
    tls.requestCert = true;
    tls.rejectUnauthorized = true;
  }
  return tls;
}

const payloads = new Map<number, Buffer>();

/** n bytes of `x` (the buffer is built once per size), application/octet-stream; 400 above MAX_PAYLOAD_BYTES. */
function sendPayload(res: ServerResponse, n: number): void {
  if (n > MAX_PAYLOAD_BYTES) return send(res, 400, `echo: /bytes/<n> takes at most ${MAX_PAYLOAD_BYTES} bytes\n`, TEXT_PLAIN);
  let body = payloads.get(n);
  if (!body) {
    body = Buffer.alloc(n, 'x');
    if (payloads.size < 16) payloads.set(n, body);
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
  res.end(body);
}

export async function startEcho(opts: EchoOptions = {}): Promise<WorkloadHandle> {
  const tls = echoTlsOptions(opts);
  return startHttpWorkload(
    {
      kind: 'echo',
      defaultPort: ECHO_PORT,
      tls,
      h2c: tls === undefined,
      // Istio's echo answers a gRPC Echo with the request's message and the key=value fields of the call
      grpc: { [ECHO_METHOD]: (message, ctx) => `Echo=${message}\n${echoBody(ctx.req, ctx.id)}` },
      websocket: (message) => message,
      handler: (ctx) => {
        const bytes = /^\/bytes\/(\d{1,9})$/.exec(ctx.url.pathname);
        if (bytes) return sendPayload(ctx.res, Number(bytes[1]));
        const m = /^\/status\/(\d{3})$/.exec(ctx.url.pathname);
        const status = m ? Number(m[1]) : 200;
        if (status < 200 || status > 599) return sendEcho(ctx, 400);
        sendEcho(ctx, status);
      },
    },
    opts,
  );
}

/** `echo [--port 8080] [--host 0.0.0.0] [--tls-cert F --tls-key F [--client-ca F]]`. */
export async function runEcho(args: readonly string[], env: Env): Promise<WorkloadHandle> {
  const flags = parseFlags('echo', args, ['port', 'host', 'tls-cert', 'tls-key', 'client-ca'] as const);
  return startEcho({
    env,
    host: flags.host,
    port: flags.port === undefined ? ECHO_PORT : parsePort('echo --port', flags.port),
    tlsCert: flags['tls-cert'],
    tlsKey: flags['tls-key'],
    clientCa: flags['client-ca'],
  });
}
