// Loopback socket helpers for the relay tests (test/relay.spec.ts in process, test/integration/relay.spec.ts as a
// process): a server that answers after the client's half-close, and a client that half-closes.
import { connect, createServer, type AddressInfo, type NetConnectOpts, type Server } from 'node:net';

/** Reads everything until the peer's FIN, then answers `got <n> bytes` and closes: a reply after the client half-closed. */
export async function countingServer(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (b: Buffer) => (n += b.length));
    s.on('end', () => s.end(`got ${n} bytes`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Sends `payload`, half-closes, and resolves with what came back before the close (or the error code). */
export function exchange(to: NetConnectOpts, payload: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ ...to, allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.on('close', () => resolve(Buffer.concat(got).toString()));
    s.end(payload);
  });
}
