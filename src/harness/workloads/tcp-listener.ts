// CATS assets/tcp-listener: a raw TCP server that answers every read with `<serverId>:<bytes>`,
// so a TCP route's client can tell which backend instance it reached.
import { createServer, type Socket } from 'node:net';
import { listen, parseFlags, parsePort, type Env, type WorkloadHandle, type WorkloadOptions } from './common.ts';

export const TCP_LISTENER_PORT = 8080;
export const DEFAULT_SERVER_ID = 'server1';

export interface TcpListenerOptions extends WorkloadOptions {
  /** Server id echoed before every chunk; else env SERVER_ID, else `server1`. */
  serverId?: string;
}

export async function startTcpListener(opts: TcpListenerOptions = {}): Promise<WorkloadHandle> {
  const env = opts.env ?? process.env;
  const prefix = Buffer.from(`${opts.serverId ?? (env.SERVER_ID || DEFAULT_SERVER_ID)}:`, 'utf8');
  const server = createServer((socket: Socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([prefix, chunk])));
    socket.on('end', () => socket.end());
    // A peer reset or a mesh proxy hanging up is routine here; never crash on it.
    socket.on('error', () => socket.destroy());
  });
  return listen(server, 'tcp-listener', opts, TCP_LISTENER_PORT);
}

/** `tcp-listener [--port 8080] [--host 0.0.0.0] [--id server1]`. */
export async function runTcpListener(args: readonly string[], env: Env): Promise<WorkloadHandle> {
  const flags = parseFlags('tcp-listener', args, ['port', 'host', 'id'] as const);
  return startTcpListener({
    env,
    host: flags.host,
    port: flags.port === undefined ? TCP_LISTENER_PORT : parsePort('tcp-listener --port', flags.port),
    serverId: flags.id,
  });
}
