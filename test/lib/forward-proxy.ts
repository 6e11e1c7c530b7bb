// A forward proxy as small as it gets, for the load generators' proxied runs (C2C's egress proxy stands behind it on
// a real path): absolute-form in, origin-form out to one upstream on loopback. Shared by the autocannon workload's
// test (test/integration/load.spec.ts) and fortio's (test/integration/load-fortio.spec.ts). Every stream has an error
// handler: a generator drops its connections mid-request when it stops, and an unhandled "socket hang up" on the
// upstream request would be an uncaught exception.
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForwardProxy {
  port: number;
  /** Each distinct request line seen, as `<method> <request-target> host=<Host>`. */
  seen: Set<string>;
  /** Upstream errors (the generator's own early closes included). */
  errors: string[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and forwards every request to 127.0.0.1:`upstreamPort`. */
export async function startForwardProxy(upstreamPort: number): Promise<ForwardProxy> {
  const seen = new Set<string>();
  const errors: string[] = [];
  const agent = new Agent({ keepAlive: true });
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    seen.add(`${req.method} ${req.url} host=${req.headers.host}`);
    const up = request({ host: '127.0.0.1', port: upstreamPort, path: new URL(req.url!).pathname, agent }, (r) => {
      r.on('error', () => res.destroy());
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', (e) => {
      errors.push(e.message);
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    });
    req.on('error', () => up.destroy());
    res.on('error', () => up.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end();
  };
  const server = createServer(forward);
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    errors,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
