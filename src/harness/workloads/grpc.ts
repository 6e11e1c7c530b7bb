// gRPC over HTTP/2 as far as a unary echo needs it (grpc/grpc PROTOCOL-HTTP2.md): a message is a
// 1-byte compressed flag, a 4-byte big-endian length and the protobuf bytes; the call's outcome is
// the `grpc-status` trailer. The method is Istio's echo service (pkg/test/echo/proto/echo.proto:
// `service EchoTestService { rpc Echo (EchoRequest) returns (EchoResponse); }`, both messages
// `string message = 1;`), so a string field 1 is the only protobuf this encodes.

/** The echo method's :path (package proto, service EchoTestService). */
export const ECHO_METHOD = '/proto.EchoTestService/Echo';
export const GRPC_CONTENT_TYPE = 'application/grpc';
/** grpc-status codes (grpc/grpc doc/statuscodes.md) the echo answers with. */
export const GRPC_STATUS = { ok: 0, invalidArgument: 3, unimplemented: 12 } as const;

/** Protobuf varint (developers.google.com/protocol-buffers/docs/encoding#varints). */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** `{ message: text }` as protobuf: tag 0x0a (field 1, wire type 2), length, UTF-8 bytes. */
export function encodeMessageField(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

/** Field 1 (string) of a protobuf message, '' when absent; other fields are skipped. Throws on bytes that do not parse. */
export function decodeMessageField(buf: Buffer): string {
  let at = 0;
  let found = '';
  const readVarint = (): number => {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (at >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[at++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  };
  while (at < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) readVarint();
    else if (wire === 2) {
      const len = readVarint();
      if (at + len > buf.length) throw new Error('protobuf: truncated field');
      if (field === 1) found = buf.subarray(at, at + len).toString('utf8');
      at += len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`protobuf: wire type ${wire} not supported`);
  }
  return found;
}

/** One length-prefixed, uncompressed gRPC message. */
export function frameMessage(proto: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(proto.length, 1);
  return Buffer.concat([head, proto]);
}

/** The first complete message of `buf` and its size, or null when more bytes are needed. Compressed messages are refused. */
export function unframeMessage(buf: Buffer): { proto: Buffer; size: number } | null {
  if (buf.length < 5) return null;
  if (buf[0] !== 0) throw new Error('gRPC: compressed messages are not supported');
  const len = buf.readUInt32BE(1);
  if (buf.length < 5 + len) return null;
  return { proto: buf.subarray(5, 5 + len), size: 5 + len };
}
