// The echo's h2c, gRPC and WebSocket, the server-first tcp-listener, and the probe kinds that call them, in-process
// on loopback (no spawning); the framing against the bytes of RFC 6455 §5.7 and of a protobuf string field written
// out by hand.
import { expect } from 'chai';
import net from 'node:net';
import { startEcho } from '../src/harness/workloads/echo.ts';
import { SERVER_FIRST_BANNER, startTcpListener, runTcpListener } from '../src/harness/workloads/tcp-listener.ts';
import { runProbe } from '../src/harness/workloads/agent.ts';
import { decodeMessageField, encodeMessageField, frameMessage, unframeMessage } from '../src/harness/workloads/grpc.ts';
import { acceptKey, decodeFrame, encodeFrame, OPCODE } from '../src/harness/workloads/websocket.ts';
import { classifyGrpc } from '../src/harness/probe/classify.ts';
import { UserError } from '../src/harness/model/errors.ts';
import type { WorkloadHandle } from '../src/harness/workloads/common.ts';

const quiet = (): void => undefined;
const XFCC = 'By=spiffe://cluster.local/ns/default/sa/b;Hash=ab;Subject="";URI=spiffe://cluster.local/ns/default/sa/sleep';

describe('WebSocket and gRPC framing', () => {
  it("RFC 6455 §1.3's accept key; §5.7's unmasked and masked \"Hello\" frames", () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).to.equal('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(encodeFrame(OPCODE.text, Buffer.from('Hello'))).to.deep.equal(Buffer.from([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]));
    const masked = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    expect(encodeFrame(OPCODE.text, Buffer.from('Hello'), Buffer.from([0x37, 0xfa, 0x21, 0x3d]))).to.deep.equal(masked);
    expect(decodeFrame(masked)).to.deep.equal({ frame: { fin: true, opcode: OPCODE.text, payload: Buffer.from('Hello') }, size: 11 });
    expect(decodeFrame(masked.subarray(0, 6)), 'a partial frame').to.equal(null);
  });

  it('a 16-bit length frame (§5.7: 256 bytes is 0x7E 0x01 0x00)', () => {
    const f = encodeFrame(OPCODE.binary, Buffer.alloc(256, 1));
    expect([...f.subarray(0, 4)]).to.deep.equal([0x82, 0x7e, 0x01, 0x00]);
    expect(decodeFrame(f)!.frame.payload.length).to.equal(256);
  });

  it('EchoRequest{message: "hi"} is 0a 02 68 69, framed 00 00 00 00 04 …', () => {
    expect([...encodeMessageField('hi')]).to.deep.equal([0x0a, 0x02, 0x68, 0x69]);
    expect([...frameMessage(encodeMessageField('hi'))]).to.deep.equal([0, 0, 0, 0, 4, 0x0a, 0x02, 0x68, 0x69]);
    // field 2 (varint 150: 10 96 01) before field 1 is skipped
    expect(decodeMessageField(Buffer.from([0x10, 0x96, 0x01, 0x0a, 0x01, 0x78]))).to.equal('x');
    expect(unframeMessage(Buffer.from([0, 0, 0, 0, 4, 0x0a]))).to.equal(null);
    expect(() => unframeMessage(Buffer.from([1, 0, 0, 0, 0]))).to.throw(/compressed/);
  });

  it('grpc-status → verdict: 0 allowed, Envoy local replies mapped back (14 → 503, 7 → 403), no status a reset, a non-200 its status', () => {
    expect(classifyGrpc(200, 0)).to.equal('allowed:plaintext');
    expect(classifyGrpc(200, 14)).to.equal('denied:http-503');
    expect(classifyGrpc(200, 7)).to.equal('denied:http-403');
    expect(classifyGrpc(200, 2)).to.equal('denied:http-500');
    expect(classifyGrpc(200, null)).to.equal('denied:reset');
    expect(classifyGrpc(503, null)).to.equal('denied:http-503');
  });
});

describe('echo: h2c, gRPC and WebSocket on its plaintext port; the probe kinds', () => {
  let echo: WorkloadHandle;
  before(async () => {
    echo = await startEcho({ host: '127.0.0.1', port: 0, log: quiet, env: { POD_NAME: 'b', POD_NAMESPACE: 'default' } });
  });
  after(() => echo.close());
  const at = { host: '127.0.0.1', token: 'mpcanary-00112233' };

  it('HTTP/1.1 still answers on the same port', async () => {
    const r = await runProbe({ ...at, protocol: 'http', port: echo.port, path: '/echo' });
    expect([r.verdict, r.evidence.status, r.evidence.servedBy]).to.deep.equal(['allowed:plaintext', 200, 'b']);
  });

  it('h2c: a POST with prior knowledge gets 200 over HTTP/2, the echo showing the token and XFCC it received', async () => {
    const r = await runProbe({ ...at, protocol: 'h2c', port: echo.port, path: '/echo', headers: { 'x-forwarded-client-cert': XFCC }, bodyLimit: 4096 });
    expect([r.verdict, r.evidence.status, r.evidence.servedBy, r.evidence.peer]).to.deep.equal(['allowed:mtls', 200, 'b', 'spiffe://cluster.local/ns/default/sa/sleep']);
    expect(r.evidence.body).to.include('Proto=HTTP/2.0').and.include('RequestHeader=X-Request-Id:mpcanary-00112233');
  });

  it('gRPC: proto.EchoTestService/Echo answers the message with grpc-status 0; the echo headers come as metadata', async () => {
    const r = await runProbe({ ...at, protocol: 'grpc', port: echo.port });
    expect([r.verdict, r.evidence.status, r.evidence.grpcStatus, r.evidence.servedBy]).to.deep.equal(['allowed:plaintext', 200, 0, 'b']);
    expect(r.evidence.body).to.match(/^Echo=mpcanary-00112233\n/);
  });

  it('WebSocket: 101 with the right accept key, the message echoed, the echo headers on the 101', async () => {
    const r = await runProbe({ ...at, protocol: 'websocket', port: echo.port, path: '/', headers: { 'x-forwarded-client-cert': XFCC } });
    expect([r.verdict, r.evidence.status, r.evidence.upgraded, r.evidence.body, r.evidence.servedBy]).to.deep.equal(['allowed:mtls', 101, true, 'mpcanary-00112233', 'b']);
  });

  it('h2c: /status/<code> answers that status over HTTP/2 (denied:http-503)', async () => {
    const r = await runProbe({ ...at, protocol: 'h2c', port: echo.port, path: '/status/503' });
    expect(r.verdict).to.equal('denied:http-503');
  });
});

describe('tcp-listener --server-first and the tcp-server-first probe', () => {
  const at = { host: '127.0.0.1', token: 'mpcanary-44556677' };

  it("writes Istio's magic string on accept before reading; the probe reads it, then sends, then takes the echo", async () => {
    const l = await startTcpListener({ host: '127.0.0.1', port: 0, log: quiet, serverId: 'b', serverFirst: true });
    try {
      // a raw client that sends nothing still gets the banner
      const banner = await new Promise<string>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: l.port });
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString());
        });
        s.once('error', reject);
      });
      expect(banner).to.equal('server-first-protocol\n');
      const r = await runProbe({ ...at, protocol: 'tcp-server-first', port: l.port });
      expect([r.verdict, r.evidence.banner, r.evidence.body]).to.deep.equal(['allowed:plaintext', SERVER_FIRST_BANNER, 'b:Time is mpcanary-44556677']);
    } finally {
      await l.close();
    }
  });

  it('a server that waits for the client (a client-first listener, or a sniffer) leaves the probe silent: denied:timeout, no banner', async () => {
    const l = await startTcpListener({ host: '127.0.0.1', port: 0, log: quiet, serverId: 'b' });
    try {
      const r = await runProbe({ ...at, protocol: 'tcp-server-first', port: l.port, timeoutMs: 200 });
      expect([r.verdict, r.evidence.banner, r.evidence.error]).to.deep.equal(['denied:timeout', null, 'ETIMEDOUT']);
    } finally {
      await l.close();
    }
  });

  it('--server-first names the listener\'s own port, else a usage error', async () => {
    let err: unknown;
    try {
      await runTcpListener(['--port', '0', '--server-first', '16060'], {});
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.match(/--server-first 16060 names a port this listener does not serve/);
  });
});
