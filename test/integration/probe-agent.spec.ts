// The probe agent on live 127.0.0.1 traffic: TLS, mTLS, plaintext and raw TCP calls to real servers made here,
// through a forward proxy too, classified from the real signal (and fast: an active denial never waits for the
// timeout). Certificates are made by openssl, independent of the PKI under test elsewhere.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { EMPTY_REPLY } from '../../src/harness/probe/classify.ts';
import { AgentClient } from '../../src/harness/probe/client.ts';
import type { ProbeRequest, ProbeResult } from '../../src/harness/probe/types.ts';
import { handleLine, runAgent } from '../../src/harness/workloads/agent.ts';
import { peerIdentity } from '../../src/harness/workloads/echo-headers.ts';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const SERVER = 'spiffe://cluster.local/ns/default/sa/server';
const XFCC = `By=spiffe://cluster.local/ns/default/sa/b;Hash=ab;Subject="";URI=${SLEEP}`;

interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  rogueCert: string;
  rogueKey: string;
  clientCert: string;
  clientKey: string;
}

function makePki(dir: string): Pki {
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const ca = (name: string): void =>
    ossl('req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '1',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, caName: string, san: string): void => {
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  };
  ca('ca');
  ca('rogue-ca');
  leaf('server', 'ca', `DNS:localhost,IP:127.0.0.1,URI:${SERVER}`);
  leaf('rogue', 'rogue-ca', `DNS:localhost,IP:127.0.0.1,URI:${SERVER}`);
  leaf('client', 'ca', `URI:${SLEEP}`);
  const p = (f: string): string => join(dir, f);
  return {
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
  };
}

describe('probe agent on live 127.0.0.1 traffic', function () {
  this.timeout(20000);
  const TIMEOUT = 600;
  let dir: string;
  let pki: Pki;
  let socketPath: string;
  let stopAgent: AbortController;
  let agentDone: Promise<void>;
  let client: AgentClient;
  const logs: string[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();

  async function listen<S extends net.Server>(server: S): Promise<number> {
    servers.push(server);
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined); // a client reset is what some tests provoke, never an uncaught error
    });
    server.on('secureConnection', (s: net.Socket) => s.on('error', () => undefined));
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  function echoHttp(status: number, extra: Record<string, string> = {}): http.RequestListener {
    return (req, res) => {
      const peer = req.socket instanceof tls.TLSSocket ? req.socket.getPeerX509Certificate() : undefined;
      res.writeHead(status, {
        'x-echo-pod': 'name-v1-0',
        'x-echo-request-id': String(req.headers['x-request-id'] ?? ''),
        ...(peer ? { 'x-echo-peer': peerIdentity(peer) } : {}),
        ...extra,
      });
      res.end(`hello from ${status}`);
    };
  }

  function tlsServerOptions(requireClientCert: boolean, rogue = false): tls.TlsOptions {
    return {
      key: readFileSync(rogue ? pki.rogueKey : pki.serverKey),
      cert: readFileSync(rogue ? pki.rogueCert : pki.serverCert),
      ca: readFileSync(pki.ca),
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
      ALPNProtocols: ['http/1.1'],
    };
  }

  const probe = (req: ProbeRequest): Promise<ProbeResult> => client.probe({ timeoutMs: TIMEOUT, ...req });

  function assertFastDenial(r: ProbeResult): void {
    assert.ok(r.evidence.ms < TIMEOUT / 2, `denial took ${r.evidence.ms} ms: classified by waiting, not from the signal`);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-probe-'));
    pki = makePki(dir);
    socketPath = join(dir, 'agent.sock');
    writeFileSync(socketPath, 'stale');
    stopAgent = new AbortController();
    agentDone = runAgent(['--socket', socketPath], { signal: stopAgent.signal, log: (l) => logs.push(l) });
    client = await AgentClient.connect(socketPath);
  });

  after(async () => {
    client?.close();
    stopAgent?.abort();
    await agentDone;
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('listens on the socket with mode 0600, replacing a stale file, and answers ping', async () => {
    assert.deepEqual(logs, [`agent listening on ${socketPath}`]);
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    assert.ok(statSync(socketPath).isSocket());
    await client.ping();
  });

  it('HTTP 200 → allowed:plaintext, with token, echo headers and body', async () => {
    const port = await listen(http.createServer(echoHttp(200)));
    const r = await probe({ protocol: 'http', host: '127.0.0.1', port, path: '/x', token: 'tok-123' });
    assert.equal(r.verdict, 'allowed:plaintext');
    assert.equal(r.observed, 'allowed');
    assert.equal(r.evidence.status, 200);
    assert.equal(r.evidence.servedBy, 'name-v1-0');
    assert.equal(r.evidence.body, 'hello from 200');
    assert.equal(r.evidence.wire, null);
    assert.equal(r.evidence.error, null);
    assert.equal(r.evidence.peer, null);
    assert.equal(r.headers?.['x-echo-request-id'], 'tok-123');
    assert.equal(r.headers?.['connection'], 'close');
  });

  it('keeps at most bodyLimit bytes of the body', async () => {
    const port = await listen(http.createServer((_q, res) => res.end('x'.repeat(5000))));
    const r = await probe({ protocol: 'http', host: '127.0.0.1', port, bodyLimit: 10 });
    assert.equal(r.verdict, 'allowed:plaintext');
    assert.equal(r.evidence.body, 'x'.repeat(10));
  });

  it('HTTP 503 → denied:http-503', async () => {
    const port = await listen(http.createServer(echoHttp(503)));
    const r = await probe({ protocol: 'http', host: '127.0.0.1', port });
    assert.equal(r.verdict, 'denied:http-503');
    assert.equal(r.observed, 'denied');
    assert.equal(r.evidence.status, 503);
  });

  it('x-echo-xfcc with URI → allowed:mtls, peer = last element URI', async () => {
    const port = await listen(http.createServer(echoHttp(200, { 'x-echo-xfcc': XFCC })));
    const r = await probe({ protocol: 'http', host: '127.0.0.1', port });
    assert.equal(r.verdict, 'allowed:mtls');
    assert.equal(r.evidence.peer, SLEEP);
    assert.equal(r.evidence.xfcc, XFCC);
  });

  it('closed port → denied:refused, fast', async () => {
    const tmp = net.createServer();
    await new Promise<void>((resolve) => tmp.listen(0, '127.0.0.1', resolve));
    const port = (tmp.address() as net.AddressInfo).port;
    await new Promise((resolve) => tmp.close(resolve));
    for (const protocol of ['http', 'https', 'tcp', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port });
      assert.equal(r.verdict, 'denied:refused', protocol);
      assert.equal(r.evidence.error, 'ECONNREFUSED');
      assertFastDenial(r);
    }
  });

  it('server that resets on accept → denied:reset, fast', async () => {
    const port = await listen(net.createServer((s) => s.resetAndDestroy()));
    for (const protocol of ['http', 'https', 'tcp', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port });
      assert.equal(r.verdict, 'denied:reset', protocol);
      assertFastDenial(r);
    }
  });

  it('server that reads, then closes without a byte → denied:reset (empty reply), fast', async () => {
    const port = await listen(net.createServer((s) => s.once('data', () => s.end())));
    for (const protocol of ['http', 'tcp'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port });
      assert.equal(r.verdict, 'denied:reset', protocol);
      assert.equal(r.evidence.error, EMPTY_REPLY, protocol);
      assertFastDenial(r);
    }
    // over TLS the peer closes during the handshake (a listener without a matching filter chain)
    for (const protocol of ['https', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port });
      assert.equal(r.verdict, 'denied:reset', protocol);
      assertFastDenial(r);
    }
  });

  it('server that accepts and closes at once → denied:reset, fast', async () => {
    const port = await listen(net.createServer((s) => s.destroy()));
    for (const protocol of ['http', 'https', 'tcp', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port });
      assert.equal(r.verdict, 'denied:reset', protocol);
      assertFastDenial(r);
    }
  });

  it('TLS terminator that closes right after the handshake → denied:reset (empty reply)', async () => {
    const port = await listen(tls.createServer(tlsServerOptions(false), (s) => s.end()));
    for (const protocol of ['https', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
      assert.equal(r.verdict, 'denied:reset', protocol);
      assert.equal(r.evidence.error, EMPTY_REPLY, protocol);
    }
  });

  it('server that accepts and never answers → denied:timeout at ~timeoutMs', async () => {
    const port = await listen(net.createServer(() => undefined));
    for (const protocol of ['http', 'https', 'tcp', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port, timeoutMs: 300 });
      assert.equal(r.verdict, 'denied:timeout', protocol);
      assert.equal(r.evidence.error, 'ETIMEDOUT');
      assert.ok(r.evidence.ms >= 270, `timed out after ${r.evidence.ms} ms`);
    }
  });

  it('TLS server whose certificate is signed by another CA → denied:tls-handshake', async () => {
    const port = await listen(https.createServer(tlsServerOptions(false, true), echoHttp(200)));
    for (const protocol of ['https', 'tls'] as const) {
      const r = await probe({ protocol, host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
      assert.equal(r.verdict, 'denied:tls-handshake', protocol);
      assert.equal(r.evidence.error, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assertFastDenial(r);
    }
  });

  it('server name not in the certificate → denied:tls-handshake', async () => {
    const port = await listen(https.createServer(tlsServerOptions(false), echoHttp(200)));
    const r = await probe({ protocol: 'https', host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'other.svc' } });
    assert.equal(r.verdict, 'denied:tls-handshake');
    assert.equal(r.evidence.error, 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  describe('server requiring a client certificate, none presented', () => {
    // TLS 1.3: the client's handshake is complete when the server checks for the certificate,
    // so the alert arrives after secureConnect, usually with the close right behind it.
    it('TLS 1.3 → denied:tls-handshake (alert after the client finished), repeatedly', async () => {
      const port = await listen(https.createServer(tlsServerOptions(true), echoHttp(200)));
      for (let i = 0; i < 10; i++) {
        for (const protocol of ['https', 'tls'] as const) {
          const r = await probe({ protocol, host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
          assert.equal(r.verdict, 'denied:tls-handshake', `${protocol} #${i}: ${r.evidence.error}`);
          assert.equal(r.evidence.error, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
          assertFastDenial(r);
        }
      }
    });

    it('TLS 1.3 behind a proxy that resets right after the alert → still denied:tls-handshake', async () => {
      const backend = await listen(tls.createServer(tlsServerOptions(true), (s) => s.end('hi')));
      const port = await listen(
        net.createServer((c) => {
          const b = net.connect(backend, '127.0.0.1');
          c.on('data', (d) => b.write(d));
          b.on('data', (d) => c.write(d));
          b.on('end', () => setImmediate(() => c.resetAndDestroy()));
          c.on('error', () => undefined);
          b.on('error', () => undefined);
        }),
      );
      for (let i = 0; i < 10; i++) {
        for (const protocol of ['https', 'tls'] as const) {
          const r = await probe({ protocol, host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
          assert.equal(r.verdict, 'denied:tls-handshake', `${protocol} #${i}: ${r.evidence.error}`);
        }
      }
    });

    it('TLS 1.2 → denied:tls-handshake (alert during the handshake)', async () => {
      const port = await listen(https.createServer({ ...tlsServerOptions(true), maxVersion: 'TLSv1.2' }, echoHttp(200)));
      for (const protocol of ['https', 'tls'] as const) {
        const r = await probe({ protocol, host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
        assert.equal(r.verdict, 'denied:tls-handshake', `${protocol}: ${r.evidence.error}`);
        assertFastDenial(r);
      }
    });
  });

  it('https with a client certificate → allowed:mtls from x-echo-peer; ALPN and server identity in evidence', async () => {
    const port = await listen(https.createServer(tlsServerOptions(true), echoHttp(200)));
    const r = await probe({
      protocol: 'https',
      host: '127.0.0.1',
      port,
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost', alpn: ['http/1.1'] },
    });
    assert.equal(r.verdict, 'allowed:mtls');
    assert.equal(r.evidence.peer, SLEEP);
    assert.equal(r.evidence.alpn, 'http/1.1');
    assert.equal(r.evidence.serverIdentity, SERVER);
    assert.equal(r.evidence.status, 200);
  });

  it('https without a client certificate to a server that does not ask → allowed:tls', async () => {
    const port = await listen(https.createServer(tlsServerOptions(false), echoHttp(200)));
    const r = await probe({ protocol: 'https', host: 'localhost', port, tls: { ca: pki.ca } });
    assert.equal(r.verdict, 'allowed:tls');
    assert.equal(r.evidence.peer, null);
    assert.equal(r.evidence.serverIdentity, SERVER);
  });

  it('raw tls with a client certificate → allowed:mtls; tcp echo → allowed:plaintext with the token payload', async () => {
    const tlsPort = await listen(tls.createServer(tlsServerOptions(true), (s) => s.on('data', (d) => s.write(`echo:${d}`))));
    const r = await probe({
      protocol: 'tls',
      host: '127.0.0.1',
      port: tlsPort,
      token: 'tok-9',
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost' },
    });
    assert.equal(r.verdict, 'allowed:mtls');
    assert.equal(r.evidence.body, 'echo:Time is tok-9');
    assert.equal(r.evidence.serverIdentity, SERVER);
    assert.equal(r.evidence.peer, SERVER);

    const tcpPort = await listen(net.createServer((s) => s.on('data', (d) => s.write(`srv:${d}`))));
    const t = await probe({ protocol: 'tcp', host: '127.0.0.1', port: tcpPort, token: 'tok-10' });
    assert.equal(t.verdict, 'allowed:plaintext');
    assert.equal(t.evidence.body, 'srv:Time is tok-10');
    const p = await probe({ protocol: 'tcp', host: '127.0.0.1', port: tcpPort, payload: 'PING' });
    assert.equal(p.evidence.body, 'srv:PING');
  });

  it('answers concurrent requests on one connection by id, in completion order', async () => {
    const silent = await listen(net.createServer(() => undefined));
    const fast = await listen(http.createServer(echoHttp(200)));
    const order: string[] = [];
    const slow = probe({ protocol: 'tcp', host: '127.0.0.1', port: silent, timeoutMs: 400 }).then((r) => {
      order.push('slow');
      return r;
    });
    const quick = Promise.all([1, 2, 3].map(() => probe({ protocol: 'http', host: '127.0.0.1', port: fast }))).then((rs) => {
      order.push('quick');
      return rs;
    });
    const [s, q] = await Promise.all([slow, quick]);
    assert.deepEqual(order, ['quick', 'slow']);
    assert.equal(s.verdict, 'denied:timeout');
    assert.deepEqual(q.map((r) => r.verdict), ['allowed:plaintext', 'allowed:plaintext', 'allowed:plaintext']);
  });

  it('marker sends one UDP datagram carrying the token', async () => {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const got = new Promise<string>((resolve) => udp.once('message', (m) => resolve(m.toString())));
    await client.marker('127.0.0.1', udp.address().port, 'mpcanary-marker-1');
    assert.equal(await got, 'mpcanary-marker-1');
    udp.close();
  });

  it('a failing request answers ok:false and the agent keeps serving', async () => {
    await assert.rejects(
      client.probe({ protocol: 'https', host: '127.0.0.1', port: 1, tls: { ca: join(dir, 'missing.crt') } }),
      /missing\.crt/,
    );
    await assert.rejects(client.probe({ protocol: 'gopher' as never, host: '127.0.0.1', port: 1 }), /unknown probe protocol/);
    await assert.rejects(client.marker('127.0.0.1', 0, 'x'), /marker needs/);
    await client.ping();
    const junk = await handleLine('not json');
    assert.equal(junk.id, -1);
    assert.equal(junk.ok, false);
    const bad = await handleLine('{"id":7,"op":"nope"}');
    assert.equal(bad.ok, false);
    assert.equal(bad.id, 7);
  });

  it('close() rejects pending calls', async () => {
    const silent = await listen(net.createServer(() => undefined));
    const other = await AgentClient.connect(socketPath);
    const pending = other.probe({ protocol: 'tcp', host: '127.0.0.1', port: silent, timeoutMs: 2000 });
    other.close();
    await assert.rejects(pending, /closed/);
    await assert.rejects(other.ping(), /closed/);
    await client.ping();
  });

  describe('through an HTTP proxy (req.proxy)', () => {
    /** What the test proxy saw: request lines (absolute-form targets, CONNECT authorities) and Host headers. */
    const seen: string[] = [];
    let proxyPort = 0;
    let refusedPort = 0;

    before(async () => {
      // a minimal forward proxy: absolute-form requests are forwarded, CONNECT is tunnelled (403 for refusedPort)
      const proxy = http.createServer((req, res) => {
        seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
        const u = new URL(req.url!);
        const up = http.request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: req.method, headers: req.headers }, (r) => {
          r.on('error', () => res.destroy());
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
        });
        // every stream handles its errors: an unhandled one would be an uncaught exception, not a failed test
        up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
        req.on('error', () => up.destroy());
        res.on('error', () => up.destroy());
        req.pipe(up);
      });
      proxy.on('clientError', (_e, socket) => socket.destroy());
      proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
        seen.push(`CONNECT ${req.url} host=${req.headers.host}`);
        const [host, port] = [req.url!.slice(0, req.url!.lastIndexOf(':')), Number(req.url!.slice(req.url!.lastIndexOf(':') + 1))];
        client.on('error', () => undefined);
        if (port === refusedPort) return void client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
        const up = net.connect(port, host === 'localhost' ? '127.0.0.1' : host, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) up.write(head);
          up.pipe(client);
          client.pipe(up);
        });
        up.on('error', () => client.destroy());
      });
      proxyPort = await listen(proxy);
      refusedPort = await listen(net.createServer((s) => s.end('never reached')));
    });

    it('http: an absolute-form request to the proxy, Host = the origin; classified from the answer', async () => {
      const port = await listen(http.createServer(echoHttp(200)));
      const r = await probe({ protocol: 'http', host: '127.0.0.1', port, path: '/x?y=1', token: 'tok-p1', proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(r.verdict, 'allowed:plaintext');
      assert.equal(r.evidence.body, 'hello from 200');
      assert.equal(r.headers?.['x-echo-request-id'], 'tok-p1');
      assert.ok(seen.includes(`GET http://127.0.0.1:${port}/x?y=1 host=127.0.0.1:${port}`), seen.join('\n'));
    });

    it('https: TLS inside a CONNECT tunnel, end to end (the server\'s own certificate; a client cert makes it mTLS)', async () => {
      const port = await listen(https.createServer(tlsServerOptions(true), echoHttp(200)));
      const r = await probe({ protocol: 'https', host: 'localhost', port, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }, proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(r.verdict, 'allowed:mtls');
      assert.equal(r.evidence.peer, SLEEP);
      assert.equal(r.evidence.serverIdentity, SERVER);
      assert.ok(seen.includes(`CONNECT localhost:${port} host=localhost:${port}`), seen.join('\n'));
      const noCert = await probe({ protocol: 'https', host: 'localhost', port, tls: { ca: pki.ca }, proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(noCert.verdict, 'denied:tls-handshake');
    });

    it('tls and tcp: raw bytes through the tunnel', async () => {
      const tlsPort = await listen(tls.createServer(tlsServerOptions(false), (s) => s.on('data', (d) => s.write(`echo:${d}`))));
      const t = await probe({ protocol: 'tls', host: 'localhost', port: tlsPort, token: 'tok-p2', tls: { ca: pki.ca }, proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(t.verdict, 'allowed:tls');
      assert.equal(t.evidence.body, 'echo:Time is tok-p2');
      assert.equal(t.evidence.serverIdentity, SERVER);
      const tcpPort = await listen(net.createServer((s) => s.on('data', (d) => s.write(`srv:${d}`))));
      const p = await probe({ protocol: 'tcp', host: '127.0.0.1', port: tcpPort, payload: 'PING', proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(p.verdict, 'allowed:plaintext');
      assert.equal(p.evidence.body, 'srv:PING');
    });

    it('a proxy that refuses CONNECT → denied:http-<code>, fast; no proxy listening → denied:refused', async () => {
      const r = await probe({ protocol: 'tcp', host: '127.0.0.1', port: refusedPort, proxy: { host: '127.0.0.1', port: proxyPort } });
      assert.equal(r.verdict, 'denied:http-403');
      assert.equal(r.evidence.status, 403);
      assertFastDenial(r);
      const tmp = net.createServer();
      await new Promise<void>((resolve) => tmp.listen(0, '127.0.0.1', resolve));
      const dead = (tmp.address() as net.AddressInfo).port;
      await new Promise((resolve) => tmp.close(resolve));
      for (const protocol of ['http', 'https'] as const) {
        const d = await probe({ protocol, host: 'localhost', port: 443, tls: { ca: pki.ca }, proxy: { host: '127.0.0.1', port: dead } });
        assert.equal(d.verdict, 'denied:refused', protocol);
      }
    });

    it('a malformed proxy is refused by the agent', async () => {
      await assert.rejects(client.probe({ protocol: 'http', host: '127.0.0.1', port: 80, proxy: { host: '', port: 0 } }), /bad probe proxy/);
    });
  });

  it('connect gives up after timeoutMs with an error naming the socket path', async () => {
    const missing = join(dir, 'nobody.sock');
    await assert.rejects(AgentClient.connect(missing, { timeoutMs: 150, retryMs: 20 }), (e: Error) => {
      assert.ok(e.message.includes(missing), e.message);
      assert.ok(e.message.includes('ENOENT'), e.message);
      return true;
    });
  });
});

