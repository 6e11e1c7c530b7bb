// A byte relay: accepts connections on one address and pipes each to another, both ways, with
// half-closes passed on. Run in a network namespace (the `relay` workload) it lets the host
// namespace reach a server bound inside it over a Unix socket, with no host port:
//   relay --listen <unix socket path> --connect <host>:<port>
// The harness uses the same relay the other way round (127.0.0.1:<port> → that Unix socket).
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { parseFlags, parsePort, stdoutLog, usage, type Log } from './common.ts';

/** A Unix socket path, or a TCP host and port (to listen on: port 0 picks an ephemeral one). */
export type RelayEnd = { path: string } | { host: string; port: number };

export interface RelayOptions {
  listen: RelayEnd;
  connect: RelayEnd;
  /** Where the one "listening" line and per-connection errors go (default stdout). */
  log?: Log;
}

export interface RelayHandle {
  /** The TCP port listened on (0 for a Unix socket). */
  readonly port: number;
  /** Stops listening, drops open connections, removes the Unix socket file. Idempotent. */
  close(): Promise<void>;
}

function label(o: RelayEnd): string {
  return 'path' in o ? o.path : `${o.host}:${o.port}`;
}

export async function startRelay(opts: RelayOptions): Promise<RelayHandle> {
  const log = opts.log ?? stdoutLog;
  const conns = new Set<Socket>();
  // allowHalfOpen on both legs: a client's FIN must not cut the reply still coming back
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    const outbound = createConnection({ ...opts.connect, allowHalfOpen: true });
    for (const s of [inbound, outbound]) {
      conns.add(s);
      s.once('close', () => {
        conns.delete(s);
        // one leg fully closed means both directions are done (or failed): drop the other
        inbound.destroy();
        outbound.destroy();
      });
    }
    // a refused target is the client's reset; the reason goes to the relay's log
    outbound.on('error', (e: NodeJS.ErrnoException) => log(`relay: ${label(opts.connect)}: ${e.code ?? e.message}`));
    inbound.on('error', () => undefined);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  if ('path' in opts.listen) rmSync(opts.listen.path, { force: true }); // a stale socket file from a killed run
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log(`relay server error: ${e.message}`));
  const path = 'path' in opts.listen ? opts.listen.path : undefined;
  if (path) chmodSync(path, 0o600); // only the harness's uid may connect
  const port = path ? 0 : (server.address() as AddressInfo).port;
  log(`relay listening on ${label('path' in opts.listen ? opts.listen : { host: opts.listen.host, port })} -> ${label(opts.connect)}`);
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          if (path) rmSync(path, { force: true });
          resolve();
        });
        for (const c of conns) c.destroy();
      });
      return closing;
    },
  };
}

/** `host:port` → its parts; IPv6 as `[::1]:6443`. */
export function parseHostPort(what: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value);
  if (!m) throw usage(`${what} must be host:port, got '${value}'`);
  return { host: (m[1] ?? m[2])!, port: parsePort(what, m[3]!) };
}

/** An absolute path is a Unix socket, anything else `host:port`. */
function parseEnd(what: string, value: string): RelayEnd {
  return value.startsWith('/') ? { path: value } : parseHostPort(what, value);
}

/**
 * The `relay` workload: `relay --listen <unix socket path> --connect <host>:<port>` (the API server to the host), or
 * the other way round, `--listen <host>:<port> --connect <unix socket path>` (the node agent's kubelet API to the node
 * namespace), until `stopped` resolves.
 */
export async function runRelay(args: readonly string[], stopped: Promise<unknown>): Promise<void> {
  const flags = parseFlags('relay', args, ['listen', 'connect'] as const);
  if (!flags.listen) throw usage('relay: --listen <unix socket path> is required');
  if (!flags.connect) throw usage('relay: --connect <host>:<port> is required');
  const handle = await startRelay({ listen: parseEnd('relay --listen', flags.listen), connect: parseEnd('relay --connect', flags.connect) });
  await stopped;
  await handle.close();
}
