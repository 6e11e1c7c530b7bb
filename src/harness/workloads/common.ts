// What every in-pod workload shares: options, the listen/close lifecycle, CLI flag parsing.
import type { AddressInfo, Server, Socket } from 'node:net';
import { EXIT, UserError } from '../model/errors.ts';

/** The environment a workload reads (process.env in a pod; an explicit object in tests). */
export type Env = Readonly<Record<string, string | undefined>>;
export type Log = (line: string) => void;

/** A running workload. `close()` stops listening, drops open connections and is idempotent. */
export interface WorkloadHandle {
  readonly port: number;
  close(): Promise<void>;
}

export interface WorkloadOptions {
  /** Listen address (default 0.0.0.0). */
  host?: string;
  /** Listen port; 0 picks an ephemeral port. Each workload has its own default. */
  port?: number;
  /** Environment to read instead of process.env. */
  env?: Env;
  /** Where the one "listening" line goes (default stdout). */
  log?: Log;
}

export const DEFAULT_HOST = '0.0.0.0';

export const stdoutLog: Log = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Listen, log `<kind> listening on <addr>:<port>`, and hand back a handle that closes hard. */
export async function listen(server: Server, kind: string, opts: WorkloadOptions, defaultPort: number): Promise<WorkloadHandle> {
  const host = opts.host ?? DEFAULT_HOST;
  const port = opts.port ?? defaultPort;
  const log = opts.log ?? stdoutLog;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err: Error) => log(`${kind} server error: ${err.message}`));
  const address = server.address() as AddressInfo;
  log(`${kind} listening on ${address.address}:${address.port}`);
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/** A usage error of the workload command line (exit 2). */
export function usage(message: string): UserError {
  return new UserError(message, EXIT.usage);
}

/** Parses `--name value` and `--name=value` flags; anything else is a usage error. */
export function parseFlags<K extends string>(kind: string, args: readonly string[], names: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  const known = (name: string): name is K => (names as readonly string[]).includes(name);
  const allowed = names.length > 0 ? names.map((n) => `--${n}`).join(' ') : 'none';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw usage(`${kind}: unexpected argument '${arg}' (flags: ${allowed})`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else {
      value = args[++i];
    }
    if (!known(name)) throw usage(`${kind}: unknown flag --${name} (flags: ${allowed})`);
    if (value === undefined) throw usage(`${kind}: --${name} needs a value`);
    out[name] = value;
  }
  return out;
}

/** A TCP port 0..65535 from a flag or env value. */
export function parsePort(what: string, value: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`${what} must be a port 0-65535, got '${value}'`);
  return port;
}

/** Resolves after `ms`; the timer does not by itself keep the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The error code of a failed socket/HTTP operation (ECONNRESET, ...), else its message. */
export function errorCode(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' && code !== '' ? code : err.message;
  }
  return String(err);
}
