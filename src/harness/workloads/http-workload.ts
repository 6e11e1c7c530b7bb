// The one HTTP server shape of all HTTP workloads: x-echo-* headers on every response,
// `GET /echo` answered the same everywhere, handler errors turned into 500s.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TlsOptions } from 'node:tls';
import { echoBody, echoHeaders, echoIdentity, type EchoIdentity } from './echo-headers.ts';
import { listen, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';

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
}

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
  const server = spec.tls ? createHttpsServer(spec.tls, onRequest) : createHttpServer(onRequest);
  return listen(server, spec.kind, opts, spec.defaultPort);
}
