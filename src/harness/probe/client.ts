// Harness side of the probe agent: one persistent Unix-socket connection, requests multiplexed
// by id (probe/types.ts AgentRequest/AgentResponse), answers accepted in any order.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentRequest, AgentResponse, ProbeRequest, ProbeResult } from './types.ts';

type Answer = Extract<AgentResponse, { ok: true }>;

interface Pending {
  resolve: (r: Answer) => void;
  reject: (e: Error) => void;
}

export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | null = null;
  private buf = '';

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.shutdown(new Error(`probe agent connection ${socketPath}: ${e.message}`)));
    socket.on('close', () => this.shutdown(new Error(`probe agent connection ${socketPath} closed`)));
  }

  /**
   * Connect to the agent listening on `socketPath`, retrying every `retryMs` (default 50) until it
   * accepts — this is the agent's readiness check — for at most `timeoutMs` (default 5000).
   */
  static async connect(socketPath: string, opts: { retryMs?: number; timeoutMs?: number } = {}): Promise<AgentClient> {
    const retryMs = opts.retryMs ?? 50;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    let last: string | undefined;
    for (;;) {
      try {
        const socket = await attempt(socketPath, Math.max(1, deadline - Date.now()));
        return new AgentClient(socket, socketPath);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        last = err.code ?? err.message;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `probe agent socket ${socketPath} did not accept a connection within ${timeoutMs} ms (last error: ${last ?? 'none'}); ` +
            'is the agent running in the pod and listening on that path?',
        );
      }
      await sleep(Math.min(retryMs, left));
    }
  }

  /** Run one probe in the agent's network namespace. */
  async probe(req: ProbeRequest): Promise<ProbeResult> {
    const answer = await this.call((id) => ({ id, op: 'probe', req }));
    if (answer.result === undefined) throw new Error(`probe agent ${this.socketPath} answered a probe without a result`);
    return answer.result;
  }

  /** Send one UDP wire-canary datagram carrying `token` from the agent's namespace. */
  async marker(host: string, port: number, token: string): Promise<void> {
    await this.call((id) => ({ id, op: 'marker', host, port, token }));
  }

  async ping(): Promise<void> {
    await this.call((id) => ({ id, op: 'ping' }));
  }

  /** Close the connection; pending calls are rejected. */
  close(): void {
    this.shutdown(new Error(`probe agent connection ${this.socketPath} closed by the harness`));
    this.socket.destroy();
  }

  private call(make: (id: number) => AgentRequest): Promise<Answer> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify(make(id)) + '\n');
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: AgentResponse;
      try {
        msg = JSON.parse(line) as AgentResponse;
      } catch {
        this.shutdown(new Error(`probe agent ${this.socketPath} sent a line that is not JSON: ${line.slice(0, 200)}`));
        this.socket.destroy();
        return;
      }
      const p = this.pending.get(msg.id);
      if (p === undefined) continue; // e.g. id -1: the agent could not read a request line
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new Error(`probe agent ${this.socketPath}: ${msg.error}`));
    }
  }

  private shutdown(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/**
 * Opens a byte pipe to 127.0.0.1:<port> inside the agent's pod on a connection of its own (op `tunnel`): resolves
 * with the socket once the port accepted, rejects with the agent's error (e.g. `dial tcp 127.0.0.1:9: ECONNREFUSED`)
 * or after `timeoutMs` (a port behind a silent DROP must not hang the caller).
 */
export async function openTunnel(socketPath: string, port: number, timeoutMs = 10_000): Promise<net.Socket> {
  const s = await attempt(socketPath, timeoutMs);
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`dial tcp 127.0.0.1:${port}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      s.off('data', onData);
      s.off('error', fail);
      s.off('end', onEnd);
      s.pause();
      let msg: AgentResponse;
      try {
        msg = JSON.parse(buf.subarray(0, nl).toString('utf8')) as AgentResponse;
      } catch {
        return fail(new Error(`probe agent ${socketPath} answered a tunnel with a line that is not JSON`));
      }
      if (!msg.ok) return fail(new Error(msg.error));
      clearTimeout(timer);
      const rest = buf.subarray(nl + 1);
      if (rest.length) s.unshift(rest);
      resolve(s);
    };
    const onEnd = (): void => fail(new Error(`probe agent ${socketPath} closed the tunnel before answering`));
    s.on('data', onData);
    s.once('error', fail);
    s.once('end', onEnd);
    s.write(JSON.stringify({ id: 1, op: 'tunnel', port } satisfies AgentRequest) + '\n');
  });
}

function attempt(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}
