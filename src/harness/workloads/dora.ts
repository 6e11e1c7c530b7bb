// dora, the Cloud Foundry acceptance-test app (cf-acceptance-tests assets/dora/*.rb):
// the endpoints CATS and the harness use, same paths and same answers.
import { request as httpRequest } from 'node:http';
import { randomUUID } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { errorCode, parseFlags, parsePort, sleep, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';
import { send, startHttpWorkload, type HttpRequestContext } from './http-workload.ts';

export const DORA_PORT = 8080;
/** `curl -m 3` in assets/dora/curl.rb. */
export const CURL_TIMEOUT_MS = 3000;
/** /largetext is capped at 5 MB (5 * 1024 KiB). */
export const LARGETEXT_MAX_KB = 5 * 1024;
/** Sinatra's default content type for a String body. */
const SINATRA_HTML = 'text/html;charset=utf-8';

/**
 * curl exit codes dora's /curl can report: 0 ok, 6 could not resolve host, 7 failed to connect
 * (refused, no route), 8 weird server reply, 28 timeout, 52 empty reply, 56 recv failure (reset).
 */
export type CurlExitCode = 0 | 6 | 7 | 8 | 28 | 52 | 56;

/** The JSON dora's /curl answers (`{stdout, stderr, return_code}` of `curl -m 3 -v -i host:port`). */
export interface CurlResult {
  stdout: string;
  stderr: string;
  return_code: CurlExitCode;
}

/** curl's own wording of each failure, so stderr matches what CATS greps for. */
function curlFailure(err: unknown, host: string, port: number, ms: number): { code: CurlExitCode; text: string } {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const connect = (why: string) => ({ code: 7 as const, text: `curl: (7) Failed to connect to ${host} port ${port} after ${ms} ms: ${why}` });
  switch (code) {
    case 'ECONNREFUSED':
      return connect('Connection refused');
    case 'EHOSTUNREACH':
      return connect('No route to host');
    case 'ENETUNREACH':
      return connect('Network is unreachable');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: 6, text: `curl: (6) Could not resolve host: ${host}` };
    case 'ETIMEDOUT':
      return { code: 28, text: `curl: (28) Connection timed out after ${ms} milliseconds` };
    case 'ECONNRESET':
      // Node says "socket hang up" when the peer closed before any response byte.
      return message === 'socket hang up'
        ? { code: 52, text: 'curl: (52) Empty reply from server' }
        : { code: 56, text: 'curl: (56) Recv failure: Connection reset by peer' };
    default:
      if (code.startsWith('HPE_')) return { code: 8, text: `curl: (8) Weird server reply (${message})` };
      return { code: 56, text: `curl: (56) Recv failure: ${message}` };
  }
}

/** A plain HTTP GET of `/` on host:port with curl's budget, reported like dora's /curl. */
export function curl(host: string, port: number, timeoutMs = CURL_TIMEOUT_MS): Promise<CurlResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let settled = false;
    let connected = false;
    let timedOut = false;
    let received = 0;
    let stdout = '';
    const done = (result: CurlResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const fail = (err: unknown): void => {
      const ms = Date.now() - started;
      if (timedOut) {
        const text = connected
          ? `curl: (28) Operation timed out after ${ms} milliseconds with ${received} bytes received`
          : `curl: (28) Connection timed out after ${ms} milliseconds`;
        done({ stdout, stderr: text, return_code: 28 });
        return;
      }
      const { code, text } = curlFailure(err, host, port, ms);
      done({ stdout, stderr: text, return_code: code });
    };
    const hostHeader = port === 80 ? host : `${host}:${port}`;
    const req = httpRequest(
      { host, port, path: '/', method: 'GET', agent: false, headers: { host: hostHeader, 'user-agent': 'meshproof-dora/curl', accept: '*/*' } },
      (res) => {
        const raw = res.rawHeaders;
        let head = `HTTP/${res.httpVersion} ${res.statusCode ?? 0} ${res.statusMessage ?? ''}\r\n`;
        for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]!}: ${raw[i + 1]!}\r\n`;
        stdout = `${head}\r\n`;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          chunks.push(chunk);
        });
        res.on('error', (err) => {
          stdout = head + '\r\n' + Buffer.concat(chunks).toString('utf8');
          fail(err);
        });
        res.on('end', () => done({ stdout: head + '\r\n' + Buffer.concat(chunks).toString('utf8'), stderr: '', return_code: 0 }));
      },
    );
    req.on('socket', (socket) => socket.once('connect', () => (connected = true)));
    req.on('error', fail);
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    req.end();
  });
}

/** The first non-internal IPv4 address of this network namespace, or ''. */
export function firstExternalIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '';
}

/** VCAP_APPLICATION.instance_id, else a random UUID fixed for the life of this dora. */
function instanceIdOf(env: Env): string {
  try {
    const vcap = JSON.parse(env.VCAP_APPLICATION ?? '') as unknown;
    if (vcap !== null && typeof vcap === 'object' && 'instance_id' in vcap && typeof vcap.instance_id === 'string') return vcap.instance_id;
  } catch {
    // unset or not JSON: fall through
  }
  return randomUUID();
}

/** Ruby's Hash#to_s of string pairs: `{"A"=>"1", "B"=>"2"}`. */
function rubyHash(env: Env): string {
  const pairs = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}=>${JSON.stringify(v)}`).join(', ')}}`;
}

/** Ruby's String#to_i: leading integer, else 0. */
function rubyToI(s: string): number {
  const m = /^\s*[-+]?\d+/.exec(s);
  return m ? Number(m[0]) : 0;
}

export type DoraOptions = WorkloadOptions;

export async function startDora(opts: DoraOptions = {}): Promise<WorkloadHandle> {
  const env = opts.env ?? process.env;
  const port = opts.port ?? (env.PORT ? parsePort('PORT', env.PORT) : DORA_PORT);
  const instanceId = instanceIdOf(env);
  let healthHits = 0;
  let ready = true;
  const text = (ctx: HttpRequestContext, status: number, body: string): void => send(ctx.res, status, body, SINATRA_HTML);

  const routes: Array<[RegExp, (ctx: HttpRequestContext, params: Array<string | undefined>) => void | Promise<void>]> = [
    [/^\/$/, (ctx) => text(ctx, 200, "Hi, I'm Dora!")],
    [/^\/id$/, (ctx) => text(ctx, 200, instanceId)],
    [
      /^\/health$/,
      (ctx) => {
        if (healthHits < 3) {
          healthHits++;
          text(ctx, 500, `Hit /health ${healthHits} times`);
        } else text(ctx, 200, "I'm alive");
      },
    ],
    [/^\/ready$/, (ctx) => (ready ? text(ctx, 200, '200 - ready') : text(ctx, 500, '500 - not ready'))],
    [
      /^\/ready\/([^/]+)$/,
      (ctx, [state]) => {
        if (state !== 'true' && state !== 'false') return text(ctx, 400, `ready state must be true or false, got '${state}'`);
        ready = state === 'true';
        text(ctx, 200, `ready: ${ready}`);
      },
    ],
    [/^\/env\/([^/]+)$/, (ctx, [name]) => text(ctx, 200, env[name!] ?? '')],
    [/^\/env$/, (ctx) => text(ctx, 200, rubyHash(env))],
    [/^\/env\.json$/, (ctx) => send(ctx.res, 200, JSON.stringify(env), 'application/json')],
    [/^\/myip$/, (ctx) => text(ctx, 200, firstExternalIPv4())],
    [
      /^\/curl\/([^/]+)(?:\/([^/]*))?\/?$/,
      async (ctx, [host, portText]) => {
        const port = portText === undefined || portText === '' ? 80 : Number(portText);
        if (!/^\d*$/.test(portText ?? '') || !Number.isInteger(port) || port < 1 || port > 65535) {
          return text(ctx, 400, `port must be 1-65535, got '${portText}'`);
        }
        send(ctx.res, 200, JSON.stringify(await curl(host!, port)), 'application/json');
      },
    ],
    [
      /^\/delay\/([^/]+)$/,
      async (ctx, [seconds]) => {
        const s = rubyToI(seconds!);
        await sleep(Math.max(0, s) * 1000);
        text(ctx, 200, `YAWN! Slept so well for ${s} seconds`);
      },
    ],
    [/^\/largetext\/([^/]+)$/, (ctx, [kb]) => text(ctx, 200, '1'.repeat(1024 * Math.max(0, Math.min(rubyToI(kb!), LARGETEXT_MAX_KB))))],
  ];

  return startHttpWorkload(
    {
      kind: 'dora',
      defaultPort: DORA_PORT,
      handler: async (ctx) => {
        const method = ctx.req.method ?? 'GET';
        if (method === 'GET' || method === 'HEAD') {
          for (const [pattern, route] of routes) {
            const m = pattern.exec(ctx.url.pathname);
            if (m) return route(ctx, m.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p))));
          }
        }
        text(ctx, 404, '<!DOCTYPE html>\n<html>\n<body>\n<h2>Sinatra does not know this ditty.</h2>\n</body>\n</html>\n');
      },
    },
    { ...opts, port },
  );
}

/** `dora [--port N] [--host A]`; the port falls back to $PORT, then 8080 (rackup -p $PORT). */
export async function runDora(args: readonly string[], env: Env): Promise<WorkloadHandle> {
  const flags = parseFlags('dora', args, ['port', 'host'] as const);
  return startDora({ env, host: flags.host, port: flags.port === undefined ? undefined : parsePort('dora --port', flags.port) });
}
