// Probe classification (pure tables) and the wire canary's reading of capture files. The probe agent on live
// traffic is test/integration/probe-agent.spec.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Verdict } from '../src/harness/model/verdict.ts';
import { classifyError, classifyStatus, EMPTY_REPLY, refineAllowed } from '../src/harness/probe/classify.ts';
import { parseXfcc } from '../src/harness/model/xfcc.ts';
import { WireCanary } from '../src/harness/probe/canary.ts';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const SERVER = 'spiffe://cluster.local/ns/default/sa/server';
const XFCC = `By=spiffe://cluster.local/ns/default/sa/b;Hash=ab;Subject="";URI=${SLEEP}`;

describe('probe classification', () => {
  const plain = { tls: false, timedOut: false };
  const secure = { tls: true, timedOut: false };

  const errorTable: Array<[string, { code?: string; message?: string }, { tls: boolean; timedOut: boolean }, Verdict]> = [
    ['ECONNREFUSED', { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.0.0.2:80' }, plain, 'denied:refused'],
    ['EHOSTUNREACH', { code: 'EHOSTUNREACH' }, plain, 'denied:refused'],
    ['ENETUNREACH', { code: 'ENETUNREACH' }, secure, 'denied:refused'],
    ['ENOTFOUND', { code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND nope.svc' }, plain, 'denied:refused'],
    ['ECONNRESET', { code: 'ECONNRESET', message: 'read ECONNRESET' }, plain, 'denied:reset'],
    ['ECONNRESET during TLS stays reset', { code: 'ECONNRESET', message: 'read ECONNRESET' }, secure, 'denied:reset'],
    [
      'TLS socket closed on ClientHello',
      { code: 'ECONNRESET', message: 'Client network socket disconnected before secure TLS connection was established' },
      secure,
      'denied:reset',
    ],
    ['EPIPE', { code: 'EPIPE', message: 'write EPIPE' }, plain, 'denied:reset'],
    ['socket hang up (no code)', { message: 'socket hang up' }, plain, 'denied:reset'],
    ['empty reply', { code: EMPTY_REPLY }, plain, 'denied:reset'],
    ['empty reply over TLS', { code: EMPTY_REPLY }, secure, 'denied:reset'],
    ['ERR_SSL_* alert', { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', message: 'tlsv13 alert certificate required' }, secure, 'denied:tls-handshake'],
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', { code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' }, secure, 'denied:tls-handshake'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, secure, 'denied:tls-handshake'],
    [
      'EPROTO with SSL message',
      { code: 'EPROTO', message: 'write EPROTO 1:error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure' },
      plain,
      'denied:tls-handshake',
    ],
    ['alert in message only', { message: 'tlsv1 alert unknown ca' }, secure, 'denied:tls-handshake'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, secure, 'denied:tls-handshake'],
    ['SELF_SIGNED_CERT_IN_CHAIN', { code: 'SELF_SIGNED_CERT_IN_CHAIN' }, secure, 'denied:tls-handshake'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, secure, 'denied:tls-handshake'],
    ['CERT_HAS_EXPIRED', { code: 'CERT_HAS_EXPIRED' }, secure, 'denied:tls-handshake'],
    ['CERT_NOT_YET_VALID', { code: 'CERT_NOT_YET_VALID' }, secure, 'denied:tls-handshake'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, secure, 'denied:tls-handshake'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, secure, 'denied:tls-handshake'],
    ['timedOut wins over any code', { code: 'ECONNRESET' }, { tls: false, timedOut: true }, 'denied:timeout'],
    ['timedOut, TLS', { code: 'ETIMEDOUT' }, { tls: true, timedOut: true }, 'denied:timeout'],
    ['ETIMEDOUT without our timer is not a timeout verdict', { code: 'ETIMEDOUT' }, plain, 'denied:reset'],
  ];
  for (const [name, err, ctx, want] of errorTable) {
    it(`classifyError: ${name} → ${want}`, () => assert.equal(classifyError(err, ctx), want));
  }

  const statusTable: Array<[number, Verdict]> = [
    [200, 'allowed:plaintext'],
    [204, 'allowed:plaintext'],
    [302, 'allowed:plaintext'],
    [400, 'denied:http-400'],
    [403, 'denied:http-403'],
    [421, 'denied:http-421'],
    [503, 'denied:http-503'],
  ];
  for (const [status, want] of statusTable) {
    it(`classifyStatus(${status}) → ${want}`, () => assert.equal(classifyStatus(status), want));
  }

  it('parseXfcc (used by refineAllowed) splits elements on "," and pairs on ";" outside quotes', () => {
    const els = parseXfcc(`By=spiffe://a;Hash=11;Subject="CN=x,OU=app:1,OU=space:2";URI=spiffe://c,By=spiffe://b;Hash=22;URI=${SLEEP};DNS=a.svc;DNS=b.svc`);
    assert.equal(els.length, 2);
    assert.deepEqual(els[0]!.raw, [
      { key: 'By', value: 'spiffe://a' },
      { key: 'Hash', value: '11' },
      { key: 'Subject', value: 'CN=x,OU=app:1,OU=space:2' },
      { key: 'URI', value: 'spiffe://c' },
    ]);
    assert.deepEqual(els[1]!.uri, [SLEEP]);
    assert.deepEqual(els[1]!.dns, ['a.svc', 'b.svc']);
    assert.equal(parseXfcc(XFCC)[0]!.subject, null, 'empty value counts as absent');
  });

  const refineTable: Array<[string, Parameters<typeof refineAllowed>[0], ReturnType<typeof refineAllowed>]> = [
    ['http, XFCC with URI', { protocol: 'http', clientCertPresented: false, echo: { xfcc: XFCC } }, { verdict: 'allowed:mtls', peer: SLEEP }],
    [
      'http, XFCC two hops: last element is the immediate caller',
      { protocol: 'http', clientCertPresented: false, echo: { xfcc: `By=x;Hash=1;URI=spiffe://td/ns/a/sa/gw,By=y;Hash=2;URI=${SLEEP}` } },
      { verdict: 'allowed:mtls', peer: SLEEP },
    ],
    [
      'http, XFCC Hash only (CF c2c): Subject',
      { protocol: 'http', clientCertPresented: false, echo: { xfcc: 'Hash=abc123;Subject="CN=instance-guid,OU=app:client-app-guid"' } },
      { verdict: 'allowed:mtls', peer: 'CN=instance-guid,OU=app:client-app-guid' },
    ],
    ['http, XFCC without URI/Hash', { protocol: 'http', clientCertPresented: false, echo: { xfcc: 'By=spiffe://x' } }, { verdict: 'allowed:plaintext', peer: null }],
    ['http, x-echo-peer', { protocol: 'http', clientCertPresented: false, echo: { peer: SLEEP } }, { verdict: 'allowed:mtls', peer: SLEEP }],
    ['http, nothing echoed', { protocol: 'http', clientCertPresented: true, echo: {} }, { verdict: 'allowed:plaintext', peer: null }],
    ['https, x-echo-peer', { protocol: 'https', clientCertPresented: true, echo: { peer: SLEEP } }, { verdict: 'allowed:mtls', peer: SLEEP }],
    ['https, XFCC, client cert', { protocol: 'https', clientCertPresented: true, echo: { xfcc: XFCC } }, { verdict: 'allowed:mtls', peer: SLEEP }],
    // a gateway's mTLS to the app shows in XFCC, but the caller never authenticated on its own connection
    ['https, XFCC, no client cert', { protocol: 'https', clientCertPresented: false, echo: { xfcc: XFCC } }, { verdict: 'allowed:tls', peer: null }],
    ['https, nothing echoed', { protocol: 'https', clientCertPresented: true, echo: {} }, { verdict: 'allowed:tls', peer: null }],
    [
      'tls with client cert',
      { protocol: 'tls', clientCertPresented: true, echo: {}, serverIdentity: SERVER },
      { verdict: 'allowed:mtls', peer: SERVER },
    ],
    ['tls without client cert', { protocol: 'tls', clientCertPresented: false, echo: {} }, { verdict: 'allowed:tls', peer: null }],
    ['tcp', { protocol: 'tcp', clientCertPresented: true, echo: { peer: SLEEP } }, { verdict: 'allowed:plaintext', peer: null }],
  ];
  for (const [name, input, want] of refineTable) {
    it(`refineAllowed: ${name} → ${want.verdict}`, () => assert.deepEqual(refineAllowed(input), want));
  }
});

/** A pcap file (LINUX_SLL2, as `tcpdump -i any` writes) of IPv4/TCP packets carrying `payloads`. */
function pcapOf(packets: { src: string; dst: string; dport: number; payload: string }[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(276, 20);
  const recs = packets.map(({ src, dst, dport, payload }) => {
    const sll = Buffer.alloc(20);
    sll.writeUInt16BE(0x0800, 0);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip[9] = 6;
    src.split('.').forEach((o, k) => (ip[12 + k] = Number(o)));
    dst.split('.').forEach((o, k) => (ip[16 + k] = Number(o)));
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(40000, 0);
    tcp.writeUInt16BE(dport, 2);
    const data = Buffer.concat([sll, ip, tcp, Buffer.from(payload)]);
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(data.length, 8);
    rh.writeUInt32LE(data.length, 12);
    return Buffer.concat([rh, data]);
  });
  return Buffer.concat([head, ...recs]);
}

describe('wire canary (capture file and drop counter)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'mp-canary-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a token in the capture is plaintext-seen, a missing one no-plaintext, when nothing was dropped', async () => {
    const pcap = join(dir, 'a.pcap');
    const a = { src: '10.244.0.2', dst: '10.96.0.1', dport: 5000, payload: 'GET / x-request-id: mpcanary-aaaa' };
    const b = { src: '10.244.0.3', dst: '10.244.0.4', dport: 8080, payload: 'mpcanary-aaaa again' };
    writeFileSync(pcap, pcapOf([a]).subarray(0, 50)); // a record cut by the read
    const canary = new WireCanary(pcap, async () => 0);
    canary.watch('mpcanary-aaaa');
    canary.watch('mpcanary-bbbb');
    canary.scan();
    const marker = { src: '10.244.0.2', dst: '10.244.0.1', dport: 9, payload: 'mpmarker-1' };
    const sync = await canary.sync('mpmarker-1', async () => writeFileSync(pcap, pcapOf([a, b, marker])));
    assert.deepEqual(sync, { lost: false });
    assert.deepEqual(canary.result('mpcanary-aaaa'), { wire: 'plaintext-seen', legs: ['10.244.0.2→10.96.0.1:5000', '10.244.0.3→10.244.0.4:8080'] });
    assert.equal(canary.verdict('mpcanary-bbbb'), 'no-plaintext');
  });

  it('a sync window in which the capture dropped packets is reported lost', async () => {
    const pcap = join(dir, 'b.pcap');
    writeFileSync(pcap, pcapOf([]));
    let drops = 0;
    const canary = new WireCanary(pcap, async () => drops);
    canary.watch('mpcanary-cccc');
    drops = 3;
    const pkt = (payload: string) => ({ src: '10.244.0.2', dst: '10.244.0.1', dport: 9, payload });
    assert.deepEqual(await canary.sync('mpmarker-2', async () => writeFileSync(pcap, pcapOf([pkt('mpmarker-2')]))), { lost: true });
    assert.equal(canary.hasSeen('mpcanary-cccc'), false);
    // the next window, with no new drops, is whole again
    canary.watch('mpcanary-dddd');
    assert.deepEqual(await canary.sync('mpmarker-3', async () => writeFileSync(pcap, pcapOf([pkt('mpmarker-2'), pkt('mpcanary-dddd'), pkt('mpmarker-3')]))), { lost: false });
    assert.equal(canary.verdict('mpcanary-dddd'), 'plaintext-seen');
  });
});
