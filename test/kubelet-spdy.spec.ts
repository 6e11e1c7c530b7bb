// SPDY/3.1 framing and header compression of the kubelet API (src/harness/kube/kubelet-spdy.ts), checked against
// zlib itself (node:zlib with the SPDY dictionary and Z_SYNC_FLUSH, as Go's compress/zlib writer in spdystream does)
// and against hand-written frame bytes from the SPDY/3 layout. Pure: no sockets beyond an in-memory pair.
import { expect } from 'chai';
import { Duplex, PassThrough } from 'node:stream';
import { constants as zc, createDeflate, inflateSync } from 'node:zlib';
import {
  adler32, decodeHeaderBlock, encodeControl, encodeData, encodeHeaderBlock, FLAG_FIN, FrameReader, FrameType, goAway, HEADER_DICTIONARY,
  HeaderCompressor, HeaderDecompressor, parseSynStream, ping, rstStream, SpdyConnection, synReply, type Frame, type SpdyStream,
} from '../src/harness/kube/kubelet-spdy.ts';

/** What a Go client's framer would write: each block deflated on one stream with the dictionary, sync-flushed. */
async function goStyleBlocks(blocks: Buffer[]): Promise<Buffer[]> {
  const z = createDeflate({ dictionary: HEADER_DICTIONARY, level: 9 });
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  z.on('data', (b: Buffer) => pending.push(b));
  for (const b of blocks) {
    z.write(b);
    await new Promise<void>((r) => z.flush(zc.Z_SYNC_FLUSH, () => r()));
    out.push(Buffer.concat(pending));
    pending = [];
  }
  z.close();
  return out;
}

const headers = (o: Record<string, string>): [string, string[]][] => Object.entries(o).map(([k, v]) => [k, [v]]);

describe('kubelet API: SPDY/3.1 framing', () => {
  it('encodes control and data frames in the SPDY/3 layout', () => {
    expect(ping(7).toString('hex')).to.equal('80030006' + '00000004' + '00000007');
    expect(rstStream(5, 5).toString('hex')).to.equal('80030003' + '00000008' + '00000005' + '00000005');
    expect(goAway(9).toString('hex')).to.equal('80030007' + '00000008' + '00000009' + '00000000');
    expect(encodeData(3, Buffer.from('hi'), true).toString('hex')).to.equal('00000003' + '01000002' + '6869');
    expect(synReply(1, Buffer.from([0xaa]), false).toString('hex')).to.equal('80030002' + '00000005' + '00000001' + 'aa');
    expect(encodeControl(FrameType.Headers, FLAG_FIN, Buffer.alloc(0)).toString('hex')).to.equal('80030008' + '01000000');
  });

  it('splits a byte stream into frames whatever the chunking, and refuses another version or an oversized frame', () => {
    const bytes = Buffer.concat([ping(1), encodeData(3, Buffer.from('abc')), encodeData(3, Buffer.alloc(0), true)]);
    const r = new FrameReader();
    const frames: Frame[] = [];
    for (let i = 0; i < bytes.length; i += 3) frames.push(...r.push(bytes.subarray(i, i + 3)));
    expect(frames).to.deep.equal([
      { kind: 'control', type: FrameType.Ping, flags: 0, payload: Buffer.from('00000001', 'hex') },
      { kind: 'data', streamId: 3, flags: 0, data: Buffer.from('abc') },
      { kind: 'data', streamId: 3, flags: FLAG_FIN, data: Buffer.alloc(0) },
    ]);
    expect(() => new FrameReader().push(Buffer.from('8002000100000000', 'hex'))).to.throw('control frame version 2');
    expect(() => new FrameReader(16).push(Buffer.from('0000000100000020', 'hex'))).to.throw('longer than 16');
  });

  it('reads a SYN_STREAM: id, associated id, priority, header block', () => {
    const syn = parseSynStream(Buffer.from('00000005' + '00000000' + '6000' + 'cafe', 'hex'));
    expect(syn).to.deep.equal({ streamId: 5, associatedTo: 0, priority: 3, headerBlock: Buffer.from('cafe', 'hex') });
  });

  it('header blocks: 32-bit counts and lengths, lower-case names, NUL-joined values', () => {
    const block = encodeHeaderBlock([['StreamType', ['error']], ['x', ['a', 'b']]]);
    expect(block.toString('hex')).to.equal('00000002' + '0000000a' + Buffer.from('streamtype').toString('hex') + '00000005' + Buffer.from('error').toString('hex')
      + '00000001' + '78' + '00000003' + '610062');
    expect([...decodeHeaderBlock(block)]).to.deep.equal([['streamtype', ['error']], ['x', ['a', 'b']]]);
    expect(() => decodeHeaderBlock(block.subarray(0, block.length - 1))).to.throw('truncated');
  });

  it('our header blocks are one zlib stream with the SPDY dictionary that zlib inflates block by block', () => {
    const c = new HeaderCompressor();
    const a = encodeHeaderBlock(headers({ streamtype: 'error', port: '15000', requestid: '0' }));
    const b = encodeHeaderBlock([]);
    const big = encodeHeaderBlock(headers({ x: 'y'.repeat(70_000) }));
    const za = c.compress(a);
    const zb = c.compress(b);
    const zbig = c.compress(big);
    // the stream header names the dictionary by its Adler-32 (RFC 1950), which zlib checks
    expect(za.readUInt32BE(2)).to.equal(adler32(HEADER_DICTIONARY));
    expect(zb[0]).to.equal(0x00); // later blocks continue the stream: no second zlib header
    // each ends as a sync flush does (an empty stored block): Go's flate hands out a block only once it sees the next
    for (const z of [za, zb, zbig]) expect(z.subarray(-5).toString('hex')).to.equal('000000ffff');
    const opts = { dictionary: HEADER_DICTIONARY, finishFlush: zc.Z_SYNC_FLUSH };
    expect(inflateSync(za, opts).equals(a)).to.equal(true);
    expect(inflateSync(Buffer.concat([za, zb, zbig]), opts).equals(Buffer.concat([a, b, big]))).to.equal(true);
  });

  it('inflates a peer\'s header blocks in order across the connection, as a Go framer writes them', async () => {
    const blocks = [
      encodeHeaderBlock(headers({ streamtype: 'error', port: '15000', requestid: '0' })),
      encodeHeaderBlock(headers({ streamtype: 'data', port: '15000', requestid: '0' })),
      encodeHeaderBlock(headers({ streamtype: 'data', port: '15000', requestid: '1' })),
    ];
    const compressed = await goStyleBlocks(blocks);
    // the second block leans on the first's history: alone it does not inflate
    expect(compressed[1]!.length).to.be.lessThan(blocks[1]!.length);
    const d = new HeaderDecompressor();
    const out = [];
    for (const z of compressed) out.push(await d.decompress(z));
    d.close();
    expect(out.map((b) => b.toString('hex'))).to.deep.equal(blocks.map((b) => b.toString('hex')));
  });
});

/** A client end talking to a SpdyConnection over an in-memory pair of streams. */
function pair(): { server: Duplex; toServer: PassThrough; fromServer: PassThrough } {
  const toServer = new PassThrough();
  const fromServer = new PassThrough();
  const server = Duplex.from({ readable: toServer, writable: fromServer });
  return { server, toServer, fromServer };
}

/** Collects the next `want` frames the server writes (a listener, not for-await: breaking out would destroy the pipe). */
function framesOf(s: PassThrough, want: number): Promise<Frame[]> {
  const r = new FrameReader();
  const got: Frame[] = [];
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      got.push(...r.push(chunk));
      if (got.length >= want) {
        s.off('data', onData);
        s.pause();
        resolve(got);
      }
    };
    s.on('data', onData);
    s.resume();
  });
}

describe('kubelet API: the SPDY server connection', () => {
  it('replies to each client stream, delivers its data and FIN, echoes pings, and sends data and FIN back', async () => {
    const { server, toServer, fromServer } = pair();
    const seen: SpdyStream[] = [];
    new SpdyConnection(server, (s) => {
      seen.push(s);
      return s.header('streamtype') === 'data';
    });
    const [z1, z2] = await goStyleBlocks([encodeHeaderBlock(headers({ streamtype: 'data', port: '80' })), encodeHeaderBlock(headers({ streamtype: 'bogus' }))]);
    const syn = (id: number, z: Buffer): Buffer => encodeControl(FrameType.SynStream, 0, Buffer.concat([Buffer.from([0, 0, 0, id, 0, 0, 0, 0, 0, 0]), z]));
    toServer.write(Buffer.concat([syn(1, z1!), encodeData(1, Buffer.from('ping?')), encodeData(1, Buffer.alloc(0), true), ping(11), syn(3, z2!)]));
    const frames = await framesOf(fromServer, 3);
    expect(frames.map((f) => (f.kind === 'control' ? `control ${f.type}` : `data ${f.streamId}`))).to.deep.equal([`control ${FrameType.SynReply}`, `control ${FrameType.Ping}`, `control ${FrameType.RstStream}`]);
    expect(frames[0]!.kind === 'control' && frames[0].payload.readUInt32BE(0)).to.equal(1);
    expect(frames[1]!.kind === 'control' && frames[1].payload.readUInt32BE(0)).to.equal(11);
    expect(frames[2]!.kind === 'control' && [frames[2].payload.readUInt32BE(0), frames[2].payload.readUInt32BE(4)]).to.deep.equal([3, 5]);
    const s = seen[0]!;
    expect(s.header('port')).to.equal('80');
    // not for-await: finishing the loop would destroy the stream before we answer on it
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    await new Promise((r) => s.once('end', r));
    expect(Buffer.concat(chunks).toString()).to.equal('ping?');
    s.end('pong!');
    const back = await framesOf(fromServer, 2);
    expect(back).to.deep.equal([
      { kind: 'data', streamId: 1, flags: 0, data: Buffer.from('pong!') },
      { kind: 'data', streamId: 1, flags: FLAG_FIN, data: Buffer.alloc(0) },
    ]);
  });
});
