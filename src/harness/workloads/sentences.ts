// The "sentences" workshop app (michaelvl/istio-katas sentences-app/app/app.py): one program,
// four modes chosen by SENTENCE_MODE, serving on :5000 like the Flask original.
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { randomInt } from 'node:crypto';
import { errorCode, parseFlags, parsePort, sleep, usage, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';
import { send, startHttpWorkload, type HttpRequestContext } from './http-workload.ts';

export type SentenceMode = 'age' | 'name' | 'sentence' | 'random';
const MODES: readonly SentenceMode[] = ['age', 'name', 'sentence', 'random'];

export const SENTENCES_PORT = 5000;
/** requests.get(..., timeout=1) in app.py. */
export const UPSTREAM_TIMEOUT_MS = 1000;
/** Flask's default content type for a str return value. */
const FLASK_HTML = 'text/html; charset=utf-8';

/** Headers app.py forwards from the incoming request to name and age (`fwd_headers`). */
export const FORWARDED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'x-client-trace-id',
  'x-envoy-force-trace',
  'x-test',
  'authorization',
];

export interface SentencesConfig {
  mode: SentenceMode;
  ageMin: number;
  ageMax: number;
  names: string[];
  nameSvcUrl: string;
  ageSvcUrl: string;
  /** Seconds; a uniform random delay in [min, max] before answering `/`. */
  delayMin: number;
  delayMax: number;
}

function envInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw usage(`${name} must be an integer, got '${raw}'`);
  return Number(raw);
}

function envFloat(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw usage(`${name} must be a non-negative number of seconds, got '${raw}'`);
  return value;
}

function envHttpUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(`${name} must be an http:// URL, got '${raw}'`);
  }
  if (url.protocol !== 'http:') throw usage(`${name} must be an http:// URL, got '${raw}'`);
  return raw;
}

/** Reads the SENTENCE_* environment exactly as app.py does (same names, same defaults). */
export function sentencesConfig(env: Env): SentencesConfig {
  const mode = (env.SENTENCE_MODE || 'age') as SentenceMode;
  if (!MODES.includes(mode)) throw usage(`SENTENCE_MODE must be one of ${MODES.join('|')}, got '${env.SENTENCE_MODE}'`);
  const ageMin = envInt(env, 'SENTENCE_AGE_MIN', 0);
  const ageMax = envInt(env, 'SENTENCE_AGE_MAX', 100);
  if (ageMax < ageMin) throw usage(`SENTENCE_AGE_MAX (${ageMax}) is below SENTENCE_AGE_MIN (${ageMin})`);
  const delayMin = envFloat(env, 'SENTENCE_SVC_DELAY_MIN', 0);
  const delayMax = Math.max(delayMin, envFloat(env, 'SENTENCE_SVC_DELAY_MAX', 0));
  return {
    mode,
    ageMin,
    ageMax,
    names: (env.SENTENCE_NAMES ?? 'Peter,Ray,Egon').split(','),
    nameSvcUrl: envHttpUrl(env, 'SENTENCE_NAME_SVC_URL', 'http://name:5000'),
    ageSvcUrl: envHttpUrl(env, 'SENTENCE_AGE_SVC_URL', 'http://age:5000'),
    delayMin,
    delayMax,
  };
}

/** Python's repr() of a str: single quotes unless the text holds a ' and no ". */
export function pythonStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's str(list) of strings: `['Peter', 'Ray', 'Egon']`. */
export function pythonListRepr(items: readonly string[]): string {
  return `[${items.map(pythonStrRepr).join(', ')}]`;
}

function forwardedHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of FORWARDED_HEADERS) {
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

interface UpstreamAnswer {
  body: string;
  /** The x-echo-pod the upstream answered with ('' when absent). */
  pod: string;
}

/** Raised for any failed upstream call; the message is the one-line 500 body. */
export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    readonly code: string,
    readonly pod: string = '',
  ) {
    super(`upstream ${upstream} failed: ${code}`);
    this.name = 'UpstreamError';
  }
}

/** One plain-HTTP GET on a fresh connection (like requests.get without a Session), 1 s budget. */
function getUpstream(rawUrl: string, headers: OutgoingHttpHeaders): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: UpstreamError | null, answer?: UpstreamAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(answer!);
    };
    const req = httpRequest(new URL(rawUrl), { method: 'GET', agent: false, headers }, (res) => {
      const pod = typeof res.headers['x-echo-pod'] === 'string' ? res.headers['x-echo-pod'] : '';
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => finish(new UpstreamError(rawUrl, errorCode(err), pod)));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) finish(new UpstreamError(rawUrl, `HTTP ${status}`, pod));
        else finish(null, { body: Buffer.concat(chunks).toString('utf8'), pod });
      });
    });
    const timer = setTimeout(() => {
      finish(new UpstreamError(rawUrl, 'ETIMEDOUT'));
      req.destroy();
    }, UPSTREAM_TIMEOUT_MS);
    req.on('error', (err) => finish(new UpstreamError(rawUrl, errorCode(err))));
    req.end();
  });
}

export type SentencesOptions = WorkloadOptions;

export async function startSentences(opts: SentencesOptions = {}): Promise<WorkloadHandle> {
  const cfg = sentencesConfig(opts.env ?? process.env);
  const delay = async (): Promise<void> => {
    const seconds = cfg.delayMin + Math.random() * (cfg.delayMax - cfg.delayMin);
    if (seconds > 0) await sleep(seconds * 1000);
  };
  const html = (ctx: HttpRequestContext, status: number, body: string, headers: Record<string, string> = {}): void =>
    send(ctx.res, status, body, FLASK_HTML, headers);

  const sentence = async (ctx: HttpRequestContext): Promise<void> => {
    const hdrs = forwardedHeaders(ctx.req.headers);
    const pods = { name: '', age: '' };
    const upstreamHeader = (): Record<string, string> => ({ 'x-echo-upstream': `name=${pods.name},age=${pods.age}` });
    let stage: 'name' | 'age' = 'name';
    try {
      const name = await getUpstream(cfg.nameSvcUrl, hdrs);
      pods.name = name.pod;
      stage = 'age';
      const age = await getUpstream(cfg.ageSvcUrl, hdrs);
      pods.age = age.pod;
      html(ctx, 200, `${name.body} is ${age.body} years`, upstreamHeader());
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      pods[stage] = err.pod;
      html(ctx, 500, err.message, upstreamHeader());
    }
  };

  return startHttpWorkload(
    {
      kind: 'sentences',
      defaultPort: SENTENCES_PORT,
      handler: async (ctx) => {
        const { pathname } = ctx.url;
        const method = ctx.req.method ?? 'GET';
        if (pathname !== '/' && !(pathname === '/choices' && cfg.mode === 'name')) {
          html(ctx, 404, '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n');
          return;
        }
        if (method !== 'GET' && method !== 'HEAD') {
          html(ctx, 405, '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n', { allow: 'GET, HEAD' });
          return;
        }
        if (pathname === '/choices') return html(ctx, 200, pythonListRepr(cfg.names));
        await delay();
        switch (cfg.mode) {
          case 'age':
            return html(ctx, 200, String(randomInt(cfg.ageMin, cfg.ageMax + 1)));
          case 'name':
            return html(ctx, 200, cfg.names[randomInt(cfg.names.length)]!);
          case 'random':
            return html(ctx, 200, String(randomInt(0, 10001)));
          case 'sentence':
            return sentence(ctx);
        }
      },
    },
    opts,
  );
}

/** `sentences [--port 5000] [--host 0.0.0.0]`; everything else comes from SENTENCE_* env. */
export async function runSentences(args: readonly string[], env: Env): Promise<WorkloadHandle> {
  const flags = parseFlags('sentences', args, ['port', 'host'] as const);
  return startSentences({
    env,
    host: flags.host,
    port: flags.port === undefined ? SENTENCES_PORT : parsePort('sentences --port', flags.port),
  });
}
