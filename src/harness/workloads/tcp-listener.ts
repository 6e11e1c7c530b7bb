// CATS assets/tcp-listener: a raw TCP server that answers every read with `<serverId>:<bytes>`,
// so a TCP route's client can tell which backend instance it reached. Server-first (Istio echo's
// `--server-first=<port>`, pkg/test/echo/server/endpoint/tcp.go), it writes Istio's magic string
// on accept before reading anything, as MySQL sends its greeting.
import { createServer, type Socket } from 'node:net';
import { listen, parseFlags, parsePort, usage, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';

export const TCP_LISTENER_PORT = 8080;
export const DEFAULT_SERVER_ID = 'server1';
/** What a server-first port writes on accept (pkg/test/echo/common ServerFirstMagicString). */
export const SERVER_FIRST_BANNER = 'server-first-protocol\n';

export interface TcpListenerOptions extends WorkloadOptions {
  /** Server id echoed before every chunk; else env SERVER_ID, else `server1`. */
  serverId?: string;
  /** Write SERVER_FIRST_BANNER on accept, before reading. */
  serverFirst?: boolean;
}

export async function startTcpListener(opts: TcpListenerOptions = {}): Promise<WorkloadHandle> {
  const env = opts.env ?? process.env;
  const prefix = Buffer.from(`${opts.serverId ?? (env.SERVER_ID || DEFAULT_SERVER_ID)}:`, 'utf8');
  const server = createServer((socket: Socket) => {
    if (opts.serverFirst) socket.write(SERVER_FIRST_BANNER);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([prefix, chunk])));
    socket.on('end', () => socket.end());
    // A peer reset or a mesh proxy hanging up is routine here; never crash on it.
    socket.on('error', () => socket.destroy());
  });
  return listen(server, 'tcp-listener', opts, TCP_LISTENER_PORT);
}

/** `tcp-listener [--port 8080] [--host 0.0.0.0] [--id server1] [--server-first <the port>]`. */
export async function runTcpListener(args: readonly string[], env: Env): Promise<WorkloadHandle> {
  const flags = parseFlags('tcp-listener', args, ['port', 'host', 'id', 'server-first'] as const);
  const port = flags.port === undefined ? TCP_LISTENER_PORT : parsePort('tcp-listener --port', flags.port);
  const serverFirst = flags['server-first'] === undefined ? undefined : parsePort('tcp-listener --server-first', flags['server-first']);
  if (serverFirst !== undefined && serverFirst !== port) throw usage(`tcp-listener --server-first ${serverFirst} names a port this listener does not serve (--port ${port})`);
  return startTcpListener({ env, host: flags.host, port, serverId: flags.id, serverFirst: serverFirst !== undefined });
}
