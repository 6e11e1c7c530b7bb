// The part of WebSocket (RFC 6455) the echo serves and the probe agent speaks: the opening handshake's
// accept key (§4.2.2), and single-frame messages (§5.2): FIN set, a payload length of 7, 16 or 64
// bits, client frames masked (§5.3). Node 20 has no WebSocket client without a flag; this is all
// an echo and a probe need, so no dependency.
import { createHash } from 'node:crypto';

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2 step 5.4). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** One frame; `mask` (4 bytes) masks the payload as a client must (§5.3). */
export function encodeFrame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(len));
    head.push(maskBit | 127, ...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  if (mask.length !== 4) throw new Error('a WebSocket mask is 4 bytes');
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(head), mask, body]);
}

/** The first complete frame of `buf` (unmasked) and how many bytes it took, or null when more bytes are needed. */
export function decodeFrame(buf: Buffer): { frame: WsFrame; size: number } | null {
  if (buf.length < 2) return null;
  const fin = (buf[0]! & 0x80) !== 0;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('WebSocket frame too large');
    len = Number(big);
    at = 10;
  }
  const maskKey = masked ? buf.subarray(at, at + 4) : null;
  if (masked) at += 4;
  if (buf.length < at + len) return null;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (maskKey) for (let i = 0; i < payload.length; i++) payload[i]! ^= maskKey[i % 4]!;
  return { frame: { fin, opcode, payload }, size: at + len };
}
