// The SPDY/3.1 subset the kube-apiserver speaks to a kubelet for exec and port-forward: in 1.34 it reaches the
// kubelet only over SPDY (a kubectl WebSocket exec is translated by the API server, StreamTranslatorHandler; a
// WebSocket port-forward is SPDY tunnelled and unwrapped, TunnelingHandler; k8s.io/apiserver pkg/util/proxy).
// Framing after the SPDY/3.1 draft and github.com/moby/spdystream v0.5.1 (spdy/read.go, write.go), which both ends of
// Kubernetes use: no flow control (spdystream sends no WINDOW_UPDATE and ignores them), header blocks zlib-compressed
// with one stream per direction and the SPDY/3 dictionary, client streams odd, pings echoed.
import { Duplex } from 'node:stream';
import { constants as zc, createInflate, type Inflate } from 'node:zlib';

export const SPDY_VERSION = 3;
/** `Upgrade:` value of the handshake (k8s.io/apimachinery pkg/util/httpstream/spdy HeaderSpdy31). */
export const SPDY_UPGRADE = 'SPDY/3.1';

export const FrameType = { SynStream: 1, SynReply: 2, RstStream: 3, Settings: 4, Ping: 6, GoAway: 7, Headers: 8, WindowUpdate: 9 } as const;
export const FLAG_FIN = 0x01;
/** RST_STREAM status codes (spdy/types.go RstStreamStatus). */
export const RstStatus = { ProtocolError: 1, InvalidStream: 2, RefusedStream: 3, Cancel: 5, InternalError: 6 } as const;
/** spdystream's MaxDataLength: a frame's 24-bit length. */
export const MAX_FRAME_PAYLOAD = 0xffffff;
/** What one DATA frame carries when we send (spdystream writes what it is given; 32 KiB keeps frames small). */
const DATA_CHUNK = 32 * 1024;

export type Frame =
  | { kind: 'data'; streamId: number; flags: number; data: Buffer }
  | { kind: 'control'; type: number; flags: number; payload: Buffer };

/** Splits a byte stream into frames; throws on a frame longer than `maxPayload`. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= 8) {
      const first = this.buf.readUInt32BE(0);
      const word = this.buf.readUInt32BE(4);
      const flags = word >>> 24;
      const length = word & 0xffffff;
      if (length > this.maxPayload) throw new Error(`spdy: frame of ${length} bytes is longer than ${this.maxPayload}`);
      if (this.buf.length < 8 + length) break;
      const payload = this.buf.subarray(8, 8 + length);
      this.buf = this.buf.subarray(8 + length);
      if (first & 0x80000000) {
        const version = (first >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw new Error(`spdy: control frame version ${version}, want ${SPDY_VERSION}`);
        out.push({ kind: 'control', type: first & 0xffff, flags, payload: Buffer.from(payload) });
      } else {
        out.push({ kind: 'data', streamId: first & 0x7fffffff, flags, data: Buffer.from(payload) });
      }
    }
    return out;
  }
}

export function encodeControl(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24 | payload.length) >>> 0, 4);
  return Buffer.concat([head, payload]);
}

export function encodeData(streamId: number, data: Buffer, fin = false): Buffer {
  if (data.length > MAX_FRAME_PAYLOAD) throw new Error(`spdy: ${data.length} bytes do not fit one DATA frame`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24 | data.length) >>> 0, 4);
  return Buffer.concat([head, data]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

export const rstStream = (streamId: number, status: number): Buffer => encodeControl(FrameType.RstStream, 0, Buffer.concat([u32(streamId), u32(status)]));
export const goAway = (lastGoodStreamId: number, status = 0): Buffer => encodeControl(FrameType.GoAway, 0, Buffer.concat([u32(lastGoodStreamId), u32(status)]));
export const ping = (id: number): Buffer => encodeControl(FrameType.Ping, 0, u32(id));
/** SYN_REPLY: stream id, then the (compressed) header block. */
export const synReply = (streamId: number, compressedHeaders: Buffer, fin = false): Buffer =>
  encodeControl(FrameType.SynReply, fin ? FLAG_FIN : 0, Buffer.concat([u32(streamId), compressedHeaders]));

export interface SynStream {
  streamId: number;
  associatedTo: number;
  priority: number;
  /** Compressed header block. */
  headerBlock: Buffer;
}

/** SYN_STREAM payload: stream id (31 bits), associated-to id, priority (3 bits) + unused, slot, header block. */
export function parseSynStream(payload: Buffer): SynStream {
  if (payload.length < 10) throw new Error(`spdy: SYN_STREAM of ${payload.length} bytes`);
  return { streamId: payload.readUInt32BE(0) & 0x7fffffff, associatedTo: payload.readUInt32BE(4) & 0x7fffffff, priority: payload[8]! >> 5, headerBlock: payload.subarray(10) };
}

/** Stream id of RST_STREAM, SYN_REPLY, HEADERS and WINDOW_UPDATE payloads; the id of PING. */
export const firstWord = (payload: Buffer): number => (payload.length >= 4 ? payload.readUInt32BE(0) & 0x7fffffff : 0);

/** A header block's name/value pairs (SPDY/3: 32-bit counts and lengths; several values of a name joined by NUL). */
export type SpdyHeaders = Map<string, string[]>;

export function encodeHeaderBlock(headers: Iterable<[string, readonly string[]]>): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  for (const [name, values] of headers) {
    const k = Buffer.from(name.toLowerCase());
    const v = Buffer.from(values.join('\0'));
    parts.push(u32(k.length), k, u32(v.length), v);
    n++;
  }
  return Buffer.concat([u32(n), ...parts]);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const out: SpdyHeaders = new Map();
  let off = 0;
  const take = (): Buffer => {
    if (off + 4 > block.length) throw new Error('spdy: header block truncated');
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) throw new Error('spdy: header block truncated');
    const b = block.subarray(off, off + len);
    off += len;
    return b;
  };
  if (block.length < 4) throw new Error('spdy: header block truncated');
  const count = block.readUInt32BE(0);
  off = 4;
  for (let i = 0; i < count; i++) {
    const name = take().toString('utf8').toLowerCase();
    const values = take().toString('utf8').split('\0');
    out.set(name, [...(out.get(name) ?? []), ...values]);
  }
  if (off !== block.length) throw new Error(`spdy: ${block.length - off} bytes after the header block`);
  return out;
}

/** The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1; spdystream spdy/dictionary.go). */
export const HEADER_DICTIONARY = Buffer.from(
  'AAAAB29wdGlvbnMAAAAEaGVhZAAAAARwb3N0AAAAA3B1dAAAAAZkZWxldGUAAAAFdHJhY2UAAAAGYWNjZXB0AAAADmFjY2VwdC1jaGFyc2V0AAAAD2FjY2VwdC1lbmNvZGluZwAAAA9hY2NlcHQtbGFuZ3VhZ2UAAAANYWNjZXB0LXJhbmdlcwAAAANhZ2UAAAAFYWxsb3cAAAANYXV0aG9yaXphdGlvbgAAAA1jYWNoZS1jb250cm9sAAAACmNvbm5lY3Rpb24AAAAMY29udGVudC1iYXNlAAAAEGNvbnRlbnQtZW5jb2RpbmcAAAAQY29udGVudC1sYW5ndWFnZQAAAA5jb250ZW50LWxlbmd0aAAAABBjb250ZW50LWxvY2F0aW9uAAAAC2NvbnRlbnQtbWQ1AAAADWNvbnRlbnQtcmFuZ2UAAAAMY29udGVudC10eXBlAAAABGRhdGUAAAAEZXRhZwAAAAZleHBlY3QAAAAHZXhwaXJlcwAAAARmcm9tAAAABGhvc3QAAAAIaWYtbWF0Y2gAAAARaWYtbW9kaWZpZWQtc2luY2UAAAANaWYtbm9uZS1tYXRjaAAAAAhpZi1yYW5nZQAAABNpZi11bm1vZGlmaWVkLXNpbmNlAAAADWxhc3QtbW9kaWZpZWQAAAAIbG9jYXRpb24AAAAMbWF4LWZvcndhcmRzAAAABnByYWdtYQAAABJwcm94eS1hdXRoZW50aWNhdGUAAAATcHJveHktYXV0aG9yaXphdGlvbgAAAAVyYW5nZQAAAAdyZWZlcmVyAAAAC3JldHJ5LWFmdGVyAAAABnNlcnZlcgAAAAJ0ZQAAAAd0cmFpbGVyAAAAEXRyYW5zZmVyLWVuY29kaW5nAAAAB3VwZ3JhZGUAAAAKdXNlci1hZ2VudAAAAAR2YXJ5AAAAA3ZpYQAAAAd3YXJuaW5nAAAAEHd3dy1hdXRoZW50aWNhdGUAAAAGbWV0aG9kAAAAA2dldAAAAAZzdGF0dXMAAAAGMjAwIE9LAAAAB3ZlcnNpb24AAAAISFRUUC8xLjEAAAADdXJsAAAABnB1YmxpYwAAAApzZXQtY29va2llAAAACmtlZXAtYWxpdmUAAAAGb3JpZ2luMTAwMTAxMjAxMjAyMjA1MjA2MzAwMzAyMzAzMzA0MzA1MzA2MzA3NDAyNDA1NDA2NDA3NDA4NDA5NDEwNDExNDEyNDEzNDE0NDE1NDE2NDE3NTAyNTA0NTA1MjAzIE5vbi1BdXRob3JpdGF0aXZlIEluZm9ybWF0aW9uMjA0IE5vIENvbnRlbnQzMDEgTW92ZWQgUGVybWFuZW50bHk0MDAgQmFkIFJlcXVlc3Q0MDEgVW5hdXRob3JpemVkNDAzIEZvcmJpZGRlbjQwNCBOb3QgRm91bmQ1MDAgSW50ZXJuYWwgU2VydmVyIEVycm9yNTAxIE5vdCBJbXBsZW1lbnRlZDUwMyBTZXJ2aWNlIFVuYXZhaWxhYmxlSmFuIEZlYiBNYXIgQXByIE1heSBKdW4gSnVsIEF1ZyBTZXB0IE9jdCBOb3YgRGVjIDAwOjAwOjAwIE1vbiwgVHVlLCBXZWQsIFRodSwgRnJpLCBTYXQsIFN1biwgR01UY2h1bmtlZCx0ZXh0L2h0bWwsaW1hZ2UvcG5nLGltYWdlL2pwZyxpbWFnZS9naWYsYXBwbGljYXRpb24veG1sLGFwcGxpY2F0aW9uL3hodG1sK3htbCx0ZXh0L3BsYWluLHRleHQvamF2YXNjcmlwdCxwdWJsaWNwcml2YXRlbWF4LWFnZT1nemlwLGRlZmxhdGUsc2RjaGNoYXJzZXQ9dXRmLThjaGFyc2V0PWlzby04ODU5LTEsdXRmLSwqLGVucT0wLg==',
  'base64',
);

/** The empty stored block a zlib sync flush ends with. */
const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

/** RFC 1950 Adler-32. */
export function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const x of buf) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Our direction's header compression: one zlib stream (RFC 1950, FDICT = the SPDY dictionary) made of stored deflate
 * blocks (RFC 1951 §3.2.4), never a final one, each header block closed by an empty stored block as Z_SYNC_FLUSH does:
 * Go's flate reader looks for the next block header before it hands out a stored block's bytes, and without that
 * marker inside the frame it reads past it (spdystream: "compressed payload size was incorrect" on the next frame).
 */
export class HeaderCompressor {
  private started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      const cmf = 0x78; // deflate, 32 KiB window
      const flg0 = 0x20; // FDICT, FLEVEL 0
      const flg = flg0 + ((31 - ((cmf * 256 + flg0) % 31)) % 31);
      parts.push(Buffer.from([cmf, flg]), u32(adler32(HEADER_DICTIONARY)));
    }
    let off = 0;
    do {
      const n = Math.min(0xffff, block.length - off);
      parts.push(Buffer.from([0x00, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]), block.subarray(off, off + n));
      off += n;
    } while (off < block.length);
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

/** The peer's direction: one inflate stream with the SPDY dictionary across every header block of the connection. */
export class HeaderDecompressor {
  private readonly z: Inflate = createInflate({ dictionary: HEADER_DICTIONARY });
  private out: Buffer[] = [];
  private failed: Error | undefined;

  constructor() {
    this.z.on('data', (b: Buffer) => this.out.push(b));
    this.z.on('error', (e: Error) => (this.failed = e));
  }

  /** Inflates one frame's compressed header block; blocks must be given in the order they arrived. */
  decompress(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      const onError = (e: Error): void => reject(new Error(`spdy: header block does not inflate: ${e.message}`));
      this.z.once('error', onError);
      this.z.write(block);
      this.z.flush(zc.Z_SYNC_FLUSH, () => {
        this.z.off('error', onError);
        if (this.failed) return reject(new Error(`spdy: header block does not inflate: ${this.failed.message}`));
        const r = Buffer.concat(this.out);
        this.out = [];
        resolve(r);
      });
    });
  }

  close(): void {
    this.z.close();
  }
}

/** One stream the peer opened: a Duplex whose writes become DATA frames and whose end() sends FIN. */
export class SpdyStream extends Duplex {
  /** Set when the peer reset the stream or the connection went away. */
  reset = false;

  constructor(
    readonly id: number,
    readonly headers: SpdyHeaders,
    private readonly conn: SpdyConnection,
  ) {
    super({ allowHalfOpen: true });
  }

  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0];
  }

  override _read(): void {
    this.conn.resumeInput();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.reset) return cb();
    this.conn.sendData(this.id, chunk, false, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.reset) return cb();
    this.conn.sendData(this.id, Buffer.alloc(0), true, cb);
  }

  /** Sends RST_STREAM (CANCEL) and drops the stream, as spdystream's Stream.Reset does. */
  resetStream(): void {
    if (this.reset) return;
    this.reset = true;
    this.conn.sendReset(this.id, RstStatus.Cancel);
    this.destroy();
  }

  /** The peer's DATA (FIN ends our readable side) or RST_STREAM. */
  onRemote(data: Buffer | null, fin: boolean): boolean {
    let more = true;
    if (data && data.length && !this.readableEnded) more = this.push(data);
    if (fin && !this.readableEnded) this.push(null);
    return more;
  }

  onReset(): void {
    this.reset = true;
    this.destroy();
  }
}

/**
 * The server end of a SPDY/3.1 connection on an upgraded socket: every SYN_STREAM is offered to `accept`, which
 * answers SYN_REPLY (stream handed over) or RST_STREAM (refused), as k8s' spdy connection does (newSpdyStream).
 */
export class SpdyConnection {
  private readonly reader = new FrameReader();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private queue: Promise<void> = Promise.resolve();
  private lastStreamId = 0;
  private closed = false;
  private readonly closeWaiters: (() => void)[] = [];

  constructor(
    private readonly socket: Duplex,
    private readonly accept: (s: SpdyStream) => boolean,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.reader.push(chunk);
      } catch (e) {
        this.log((e as Error).message);
        this.close();
        return;
      }
      for (const f of frames) this.queue = this.queue.then(() => this.handle(f)).catch((e: Error) => {
        this.log(e.message);
        this.close();
      });
    });
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('end', () => this.close());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves when the connection is gone (peer closed, GOAWAY, or close()). */
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.closeWaiters.push(r));
  }

  private async handle(f: Frame): Promise<void> {
    if (this.closed) return;
    if (f.kind === 'data') {
      const s = this.streams.get(f.streamId);
      if (!s) return; // gone already: spdystream drops it too
      const fin = (f.flags & FLAG_FIN) !== 0;
      if (!s.onRemote(f.data, fin)) this.socket.pause();
      return;
    }
    switch (f.type) {
      case FrameType.SynStream: {
        const syn = parseSynStream(f.payload);
        const headers = decodeHeaderBlock(await this.decompressor.decompress(syn.headerBlock));
        // client streams are odd and increase (spdystream validateStreamId)
        if (syn.streamId % 2 !== 1 || syn.streamId <= this.lastStreamId) {
          this.sendReset(syn.streamId, RstStatus.ProtocolError);
          return;
        }
        this.lastStreamId = syn.streamId;
        const s = new SpdyStream(syn.streamId, headers, this);
        this.streams.set(s.id, s);
        s.once('close', () => this.streams.delete(s.id));
        if (!this.accept(s)) {
          this.streams.delete(s.id);
          s.resetStream();
          return;
        }
        this.write(synReply(s.id, this.compressor.compress(encodeHeaderBlock([]))));
        if (f.flags & FLAG_FIN) s.onRemote(null, true);
        return;
      }
      case FrameType.Headers:
      case FrameType.SynReply:
        // keep the inflate stream in step; their headers mean nothing to us
        await this.decompressor.decompress(f.payload.subarray(4));
        if (f.flags & FLAG_FIN) this.streams.get(firstWord(f.payload))?.onRemote(null, true);
        return;
      case FrameType.RstStream: {
        const s = this.streams.get(firstWord(f.payload));
        this.streams.delete(firstWord(f.payload));
        s?.onReset();
        return;
      }
      case FrameType.Ping: {
        // answer the peer's pings (odd ids: the client's); ours would be even and we send none
        const id = f.payload.length >= 4 ? f.payload.readUInt32BE(0) : 0;
        if (id % 2 === 1) this.write(ping(id));
        return;
      }
      case FrameType.GoAway:
        this.close();
        return;
      default:
        // SETTINGS, WINDOW_UPDATE, unknown types: ignored (SPDY/3 §2.2.1; spdystream has no flow control)
        return;
    }
  }

  resumeInput(): void {
    if (!this.closed) this.socket.resume();
  }

  private write(buf: Buffer, cb?: () => void): boolean {
    if (this.closed || this.socket.destroyed) {
      cb?.();
      return false;
    }
    const ok = this.socket.write(buf);
    if (cb) {
      if (ok) cb();
      else this.socket.once('drain', cb);
    }
    return ok;
  }

  sendData(streamId: number, data: Buffer, fin: boolean, cb: () => void): void {
    if (data.length === 0) {
      this.write(encodeData(streamId, data, fin), cb);
      return;
    }
    for (let off = 0; off < data.length; off += DATA_CHUNK) {
      const end = Math.min(data.length, off + DATA_CHUNK);
      const last = end === data.length;
      this.write(encodeData(streamId, data.subarray(off, end), fin && last), last ? cb : undefined);
    }
  }

  sendReset(streamId: number, status: number): void {
    this.write(rstStream(streamId, status));
  }

  /** GOAWAY, then the socket ends once written; every stream is dropped. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.write(goAway(this.lastStreamId));
    this.closed = true;
    for (const s of this.streams.values()) s.onReset();
    this.streams.clear();
    this.decompressor.close();
    if (!this.socket.destroyed) this.socket.end();
    // a peer that never closes its end must not keep the socket
    setTimeout(() => this.socket.destroy(), 5000).unref();
    for (const w of this.closeWaiters.splice(0)) w();
  }
}
