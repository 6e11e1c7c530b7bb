// meshproof's kubelet API: what the kube-apiserver calls on a node for `kubectl logs`, `exec` and `port-forward` (and
// so istioctl's proxy-status and describe, which port-forward). HTTPS with the cluster CA; the only client served is
// the API server's kubelet client certificate (CN KUBELET_CLIENT_USER). Paths and answers after the kubelet's own
// (pkg/kubelet/server/server.go, k8s.io/kubelet pkg/cri/streaming/{remotecommand,portforward}, v1.34.4):
//   GET  /containerLogs/{ns}/{pod}/{container}   the container's log file (follow, tailLines, limitBytes)
//   POST /exec/{ns}/{pod}[/{uid}]/{container}    SPDY/3.1, v4.channel.k8s.io: the command in the pod's network
//                                                namespace as the container's uid/gid, capabilities, env, cwd
//   POST /portForward/{ns}/{pod}[/{uid}]         SPDY/3.1, portforward.k8s.io: each stream pair to 127.0.0.1:<port>
//                                                in the pod, through its probe agent (no host port)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { accessSync, closeSync, constants, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { spawnStreams } from '../substrate/sh.ts';
import { launchArgv, type Proc } from '../substrate/supervisor.ts';
import { SPDY_UPGRADE, SpdyConnection, type SpdyStream } from './kubelet-spdy.ts';

/** remotecommand protocols served: v4 only (k8s.io/apimachinery pkg/util/remotecommand; every client since 1.4 offers it). */
export const EXEC_PROTOCOLS = ['v4.channel.k8s.io'] as const;
/** portforward.ProtocolV1Name. */
export const PORT_FORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;
/** The kubelet's DefaultStreamCreationTimeout (pkg/kubelet/apis/config). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** How often a followed log is read again. */
const FOLLOW_INTERVAL_MS = 200;

export interface KubeletPod {
  namespace: string;
  name: string;
  uid: string;
  /** Every container of the spec (init containers too) → its process once started. */
  containers: Map<string, Proc | undefined>;
}

/** What the node agent answers for the API: its pods and a way into their network namespaces. */
export interface KubeletHost {
  pod(namespace: string, name: string): KubeletPod | undefined;
  /** A byte pipe to 127.0.0.1:<port> inside the pod; rejects with why it could not connect. */
  tunnel(pod: KubeletPod, port: number): Promise<Duplex>;
}

// ---------------------------------------------------------------------------------------------
// Pure parts (test/kubelet-api.spec.ts)

export type KubeletRoute =
  | { kind: 'healthz' }
  | { kind: 'logs'; namespace: string; pod: string; container: string }
  | { kind: 'exec' | 'attach'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string; uid?: string };

/** The kubelet server's routes this node agent knows; null for any other path. */
export function routeOf(pathname: string): KubeletRoute | null {
  if (pathname === '/healthz') return { kind: 'healthz' };
  let parts: string[];
  try {
    parts = pathname.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return null;
  }
  if (parts.some((p) => p === '')) return null;
  const [head, namespace, pod, ...rest] = parts as [string, string, string, ...string[]];
  if (head === 'containerLogs' && rest.length === 1) return { kind: 'logs', namespace, pod, container: rest[0]! };
  if ((head === 'exec' || head === 'attach') && (rest.length === 1 || rest.length === 2)) {
    return rest.length === 1 ? { kind: head, namespace, pod, container: rest[0]! } : { kind: head, namespace, pod, uid: rest[0]!, container: rest[1]! };
  }
  if (head === 'portForward' && rest.length <= 1) return rest.length === 0 ? { kind: 'portForward', namespace, pod } : { kind: 'portForward', namespace, pod, uid: rest[0]! };
  return null;
}

/** httpstream.Handshake: the first protocol the client lists (comma-separated, any number of headers) that we serve. */
export function negotiate(clientHeaders: readonly string[], served: readonly string[]): string | null {
  const client = clientHeaders.flatMap((h) => h.split(',')).map((p) => p.trim()).filter(Boolean);
  return client.find((p) => served.includes(p)) ?? null;
}

export interface LogOptions {
  follow: boolean;
  previous: boolean;
  tailLines?: number;
  limitBytes?: number;
}

/** PodLogOptions from the query (the kubelet's `tail` alias too); what the log files cannot answer is an error. */
export function parseLogOptions(q: URLSearchParams): LogOptions | { error: string } {
  const bool = (k: string): boolean => q.get(k) === 'true';
  const int = (k: string): number | undefined | null => {
    const v = q.get(k);
    if (v === null) return undefined;
    return /^-?\d+$/.test(v) ? Number(v) : null;
  };
  const tail = q.get('tail');
  const tailLines = tail !== null ? (tail === 'all' ? undefined : /^\d+$/.test(tail) ? Number(tail) : null) : int('tailLines');
  const limitBytes = int('limitBytes');
  // ValidatePodLogOptions: tailLines >= 0, limitBytes >= 1
  if (tailLines === null || limitBytes === null || (tailLines !== undefined && tailLines < 0) || (limitBytes !== undefined && limitBytes < 1)) {
    return { error: '{"message": "Invalid request."}' };
  }
  if (bool('timestamps') || q.has('sinceSeconds') || q.has('sinceTime')) {
    return { error: "meshproof's node agent keeps each container's output in one file without per-line times: timestamps, sinceSeconds and sinceTime cannot be answered" };
  }
  const stream = q.get('stream');
  if (stream !== null && stream !== 'All') return { error: `unable to return the given log stream: "${stream}": the container log holds stdout and stderr together` };
  return { follow: bool('follow'), previous: bool('previous'), ...(tailLines !== undefined ? { tailLines } : {}), ...(limitBytes !== undefined ? { limitBytes } : {}) };
}

/** The last `n` lines of a log (a final line without a newline counts). */
export function tailLines(buf: Buffer, n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let i = end;
  for (let seen = 0; i > 0; i--) {
    if (buf[i - 1] === 0x0a && ++seen === n) break;
  }
  return buf.subarray(i);
}

/** Go's os/exec wording of a signal death ("signal: killed"). */
const SIGNAL_WORDS: Record<string, string> = { SIGKILL: 'killed', SIGTERM: 'terminated', SIGINT: 'interrupt', SIGHUP: 'hangup', SIGPIPE: 'broken pipe', SIGSEGV: 'segmentation fault', SIGABRT: 'aborted' };

export type ExecOutcome = { code: number; signal: string | null } | { error: string };

/**
 * The v4 error stream's metav1.Status JSON (remotecommand ServeExec): Success; NonZeroExitCode with the code as
 * ExitCode cause (kubectl exits with it); anything else apierrors.NewInternalError("error executing command in container: …").
 */
export function execStatus(o: ExecOutcome): string {
  if ('code' in o && o.signal === null) {
    if (o.code === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
    return JSON.stringify({
      metadata: {},
      status: 'Failure',
      message: `command terminated with non-zero exit code: exit status ${o.code}`,
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: String(o.code) }] },
    });
  }
  const why = 'error' in o ? o.error : `signal: ${SIGNAL_WORDS[o.signal!] ?? o.signal!.toLowerCase()}`;
  const err = `error executing command in container: ${why}`;
  return JSON.stringify({ metadata: {}, status: 'Failure', message: `Internal error occurred: ${err}`, reason: 'InternalError', details: { causes: [{ message: err }] }, code: 500 });
}

/** exec.LookPath over the container's PATH: the file to run, or null (a name with a slash is taken as is). */
export function lookPath(file: string, path: string, cwd: string | undefined, isExecutable: (p: string) => boolean): string | null {
  if (file.includes('/')) {
    const p = isAbsolute(file) ? file : join(cwd ?? '/', file);
    return isExecutable(p) ? p : null;
  }
  for (const dir of path.split(delimiter)) {
    const p = join(dir === '' ? '.' : dir, file);
    if (isExecutable(isAbsolute(p) ? p : join(cwd ?? '/', p))) return p;
  }
  return null;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' };

/** A plain HTTP answer on a socket whose request asked for an upgrade (the `upgrade` event has no ServerResponse). */
function rawAnswer(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
  const b = Buffer.from(body + '\n');
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? ''}`, 'Content-Type: text/plain; charset=utf-8', `Content-Length: ${b.length}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), b]));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// The server

export interface KubeletTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export class KubeletApi {
  private readonly server: Server;
  private readonly live = new Set<{ kill(): void; pod?: string }>();
  /** Upgraded sockets: the HTTP server no longer tracks them, so close() ends them itself. */
  private readonly upgraded = new Set<Duplex>();
  private path = '';

  constructor(
    private readonly host: KubeletHost,
    tls: KubeletTls,
    /** The client certificate's CN the API server presents (kube-apiserver --kubelet-client-certificate). */
    private readonly clientUser: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    // the client certificate is checked here (401/403 as the kubelet answers), not in the handshake
    this.server = createServer({ ...tls, requestCert: true, rejectUnauthorized: false }, (req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('tlsClientError', () => undefined);
  }

  /** Listens on a Unix socket (a relay in the node namespace carries the node's address:port to it). */
  listen(path: string): Promise<void> {
    rmSync(path, { force: true });
    this.path = path;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening, ends every exec, log follow and port-forward. Idempotent. */
  async close(): Promise<void> {
    for (const l of [...this.live]) l.kill();
    this.live.clear();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    for (const s of this.upgraded) s.destroy();
    await closed;
    if (this.path) rmSync(this.path, { force: true });
  }

  /** Ends the execs, follows and port-forwards of one pod (it is being stopped: nothing of it may outlive it). */
  closePod(namespace: string, name: string): void {
    for (const l of [...this.live]) if (l.pod === `${namespace}/${name}`) l.kill();
  }

  private track(kill: () => void, pod?: KubeletPod): () => void {
    const h = { kill, ...(pod ? { pod: `${pod.namespace}/${pod.name}` } : {}) };
    this.live.add(h);
    return () => this.live.delete(h);
  }

  /** 401 without a verified client certificate, 403 for any other user than the API server's. */
  private authenticate(req: IncomingMessage): void {
    const sock = req.socket as TLSSocket;
    if (!sock.authorized) throw new HttpError(401, 'Unauthorized');
    const cn = sock.getPeerCertificate().subject?.CN;
    if (cn !== this.clientUser) throw new HttpError(403, `Forbidden (user=${String(cn)}, verb=${req.method?.toLowerCase() ?? ''}, resource=nodes, subresource(s)=[proxy])`);
  }

  private pod(namespace: string, name: string, uid?: string, message = 'pod does not exist'): KubeletPod {
    const p = this.host.pod(namespace, name);
    if (!p || (uid !== undefined && uid !== p.uid)) throw new HttpError(404, message);
    return p;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      this.authenticate(req);
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const r = routeOf(url.pathname);
      if (r?.kind === 'healthz') return void res.end('ok');
      if (r?.kind === 'logs') return await this.logs(r, url.searchParams, req, res);
      // exec/attach/portForward without `Connection: Upgrade` (spdy.responseUpgrader)
      if (r) throw new HttpError(400, 'unable to upgrade: missing upgrade headers in request');
      throw new HttpError(404, `404 page not found: meshproof's node agent serves /containerLogs, /exec and /portForward`);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message);
      if (!res.headersSent) res.writeHead(err.status, { 'Content-Type': 'text/plain; charset=utf-8', ...err.headers });
      res.end(err.message + '\n');
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    try {
      this.authenticate(req);
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const r = routeOf(url.pathname);
      if (!r || r.kind === 'healthz' || r.kind === 'logs') throw new HttpError(404, '404 page not found');
      if (r.kind === 'attach') throw new HttpError(400, `attach is not served by meshproof's node agent: a container's stdin is not kept; use exec`);
      const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
      if (!upgrade.includes(SPDY_UPGRADE.toLowerCase())) {
        throw new HttpError(400, `unable to upgrade: ${upgrade || 'no'} upgrade: meshproof's node agent speaks ${SPDY_UPGRADE} (the API server translates WebSocket clients)`);
      }
      const served = r.kind === 'exec' ? EXEC_PROTOCOLS : PORT_FORWARD_PROTOCOLS;
      const asked = req.headersDistinct['x-stream-protocol-version'] ?? [];
      if (asked.length === 0) throw new HttpError(400, 'unable to upgrade: X-Stream-Protocol-Version is required');
      const protocol = negotiate(asked, served);
      if (!protocol) {
        throw new HttpError(403, `unable to upgrade: unable to negotiate protocol: client supports [${asked.join(' ')}], server accepts [${served.join(' ')}]`, { 'X-Accepted-Stream-Protocol-Versions': served.join(', ') });
      }
      if (r.kind === 'exec') {
        const pod = this.pod(r.namespace, r.pod, r.uid);
        const proc = pod.containers.get(r.container);
        // kubelet GetExec: findContainer finds running containers only; streaming.WriteError makes it a 500
        if (!proc || proc.exitCode !== undefined) throw new HttpError(500, `container not found ("${r.container}")`);
        const q = url.searchParams;
        const tty = q.get('tty') === '1';
        const opts = { stdin: q.get('input') === '1', stdout: q.get('output') === '1', stderr: q.get('error') === '1' && !tty, tty };
        if (!opts.stdin && !opts.stdout && !opts.stderr) throw new HttpError(400, 'you must specify at least 1 of stdin, stdout, stderr');
        const command = q.getAll('command');
        if (command.length === 0) throw new HttpError(400, 'command is required');
        const conn = this.upgradeSocket(socket, head, protocol);
        void this.exec(conn, pod, proc, command, opts);
      } else {
        const pod = this.pod(r.namespace, r.pod, r.uid);
        this.portForward(socket, head, protocol, pod);
      }
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message);
      rawAnswer(socket, err.status, err.message, err.headers);
    }
  }

  /** 101 Switching Protocols (spdy.responseUpgrader), then the SPDY connection is ours. */
  private upgradeSocket(socket: Duplex, head: Buffer, protocol: string): { socket: Duplex; protocol: string } {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${SPDY_UPGRADE}\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    if (head.length) socket.unshift(head);
    return { socket, protocol };
  }

  // -------------------------------------------------------------------------------------------
  // exec

  private async exec(up: { socket: Duplex }, pod: KubeletPod, proc: Proc, command: string[], opts: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): Promise<void> {
    const streams = new Map<string, SpdyStream>();
    const expected = 1 + Number(opts.stdin) + Number(opts.stdout) + Number(opts.stderr) + Number(opts.tty);
    let arrived!: () => void;
    const all = new Promise<void>((r) => (arrived = r));
    const conn = new SpdyConnection(up.socket, (s) => {
      const type = s.header('streamtype') ?? '';
      if (!streams.has(type)) streams.set(type, s);
      if (streams.size >= expected) arrived();
      return true;
    }, this.log);
    const untrack = this.track(() => conn.close(), pod);
    try {
      const timer = setTimeout(() => conn.close(), STREAM_CREATION_TIMEOUT_MS);
      await Promise.race([all, conn.whenClosed()]);
      clearTimeout(timer);
      if (conn.isClosed) return;
      const status = await this.runExec(conn, proc, command, streams, opts.tty);
      const error = streams.get('error');
      if (error && !error.reset) {
        error.end(status);
        await finished(error, { readable: false }).catch(() => undefined);
      }
    } finally {
      untrack();
      conn.close();
    }
  }

  /** Runs the command as the container's process was started (launchArgv) and streams its stdio; returns the status JSON. */
  private async runExec(conn: SpdyConnection, proc: Proc, command: string[], streams: Map<string, SpdyStream>, tty: boolean): Promise<string> {
    const spec = proc.spec;
    const { argv, env } = launchArgv({ ...spec, argv: command });
    if (!lookPath(command[0]!, env.PATH ?? '', spec.cwd, isExecutableFile)) {
      return execStatus({ error: `exec: "${command[0]}": executable file not found in $PATH` });
    }
    let run: ReturnType<typeof spawnStreams>;
    try {
      run = spawnStreams(argv, { env, cwd: spec.cwd });
    } catch (e) {
      return execStatus({ error: (e as Error).message });
    }
    const { child } = run;
    const kill = (): void => void child.kill('SIGKILL');
    const untrack = this.track(kill);
    void conn.whenClosed().then(kill);
    const stdin = streams.get('stdin');
    if (stdin) stdin.pipe(child.stdin);
    else child.stdin.end();
    streams.get('resize')?.resume();
    const stdout = streams.get('stdout');
    // a TTY has no stderr stream: both go to stdout
    const stderr = tty ? stdout : streams.get('stderr');
    if (stdout) child.stdout.pipe(stdout, { end: false });
    else child.stdout.resume();
    if (stderr) child.stderr.pipe(stderr, { end: false });
    else child.stderr.resume();
    try {
      const r = await run.exited;
      for (const s of new Set([stdout, stderr])) {
        if (!s || s.reset) continue;
        s.end();
        await finished(s, { readable: false }).catch(() => undefined);
      }
      return execStatus({ code: r.code, signal: r.signal });
    } catch (e) {
      return execStatus({ error: (e as Error).message });
    } finally {
      untrack();
    }
  }

  // -------------------------------------------------------------------------------------------
  // port-forward

  private portForward(socket: Duplex, head: Buffer, protocol: string, pod: KubeletPod): void {
    const up = this.upgradeSocket(socket, head, protocol);
    const pairs = new Map<string, { error?: SpdyStream; data?: SpdyStream; timer: NodeJS.Timeout }>();
    const tunnels = new Set<Duplex>();
    const conn = new SpdyConnection(up.socket, (s) => {
      // httpStreamReceived: a port and a stream type are required
      const portText = s.header('port') ?? '';
      const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
      const type = s.header('streamtype');
      if (!(port >= 1 && port <= 65535) || (type !== 'error' && type !== 'data')) {
        this.log(`kubelet API: port-forward stream ${s.id} refused: port ${JSON.stringify(portText)}, streamType ${JSON.stringify(type)}`);
        return false;
      }
      // a stream without requestID pairs by id: the error stream's own, the data stream's minus 2 (httpStreamHandler.requestID)
      const id = s.header('requestid') ?? String(type === 'error' ? s.id : s.id - 2);
      let pair = pairs.get(id);
      if (!pair) {
        const timer = setTimeout(() => {
          const p = pairs.get(id);
          pairs.delete(id);
          p?.error?.end(`timed out waiting for streams of request ${id}`);
          p?.data?.resetStream();
        }, STREAM_CREATION_TIMEOUT_MS);
        timer.unref();
        pair = { timer };
        pairs.set(id, pair);
      }
      if (pair[type]) return false;
      pair[type] = s;
      if (pair.error && pair.data) {
        clearTimeout(pair.timer);
        pairs.delete(id);
        void this.forward(pod, port, pair.error, pair.data, tunnels);
      }
      return true;
    }, this.log);
    const untrack = this.track(() => conn.close(), pod);
    void conn.whenClosed().then(() => {
      untrack();
      for (const p of pairs.values()) clearTimeout(p.timer);
      for (const t of tunnels) t.destroy();
    });
  }

  /** One forwarded connection: the data stream piped to the pod's port both ways, half-closes passed on (httpStreamHandler.portForward). */
  private async forward(pod: KubeletPod, port: number, error: SpdyStream, data: SpdyStream, tunnels: Set<Duplex>): Promise<void> {
    error.resume(); // the client never writes to it: only its FIN comes
    let sock: Duplex;
    try {
      sock = await this.host.tunnel(pod, port);
    } catch (e) {
      // the kubelet's message; kubectl prints it and ends the port-forward ("lost connection to pod")
      error.end(`error forwarding port ${port} to pod ${pod.namespace}/${pod.name}, uid ${pod.uid}: ${(e as Error).message}`);
      data.resetStream();
      return;
    }
    if (data.reset || data.destroyed) {
      sock.destroy();
      error.end();
      return;
    }
    tunnels.add(sock);
    sock.on('error', () => undefined);
    data.on('error', () => undefined);
    data.pipe(sock);
    sock.pipe(data);
    data.once('close', () => sock.destroy());
    sock.once('close', () => {
      tunnels.delete(sock);
      if (!data.writableEnded && !data.destroyed) data.end();
      if (!error.writableEnded && !error.destroyed) error.end();
    });
    sock.resume();
  }

  // -------------------------------------------------------------------------------------------
  // logs

  private async logs(r: Extract<KubeletRoute, { kind: 'logs' }>, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pod = this.pod(r.namespace, r.pod, undefined, `pod "${r.pod}" does not exist`);
    if (!pod.containers.has(r.container)) throw new HttpError(404, `container "${r.container}" not found in pod "${r.pod}"`);
    const opts = parseLogOptions(q);
    if ('error' in opts) throw new HttpError(400, opts.error);
    if (opts.previous) throw new HttpError(400, `previous terminated container "${r.container}" in pod "${r.pod}" not found`);
    const proc = pod.containers.get(r.container);
    if (!proc) throw new HttpError(400, `container "${r.container}" in pod "${r.pod}" is waiting to start: ContainerCreating`);
    let budget = opts.limitBytes ?? Infinity;
    const send = (b: Buffer): boolean => {
      const part = b.length > budget ? b.subarray(0, budget) : b;
      budget -= part.length;
      if (part.length) res.write(part);
      return budget > 0;
    };
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    let content: Buffer;
    try {
      content = readFileSync(proc.logFile);
    } catch {
      content = Buffer.alloc(0);
    }
    let offset = content.length;
    if (opts.tailLines !== undefined) content = tailLines(content, opts.tailLines);
    if (!send(content) || !opts.follow) return void res.end();
    // follow: the file as it grows, until the container exits, the pod goes, or the client leaves
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        if (timer) clearTimeout(timer);
        untrack();
        resolve();
      };
      const untrack = this.track(stop, pod);
      req.once('close', stop);
      const tick = (): void => {
        const more = readFrom(proc.logFile, offset);
        offset += more.length;
        if (!send(more) || (more.length === 0 && (proc.exitCode !== undefined || !this.host.pod(r.namespace, r.pod)))) return stop();
        timer = setTimeout(tick, FOLLOW_INTERVAL_MS);
      };
      tick();
    });
    res.end();
  }
}

/** The bytes of `file` from `offset` to its current end. */
function readFrom(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = statSync(file).size;
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
