// Wire canary: a packet capture in the run's node namespace sees every byte that crosses a
// pod's link. A probe carries a random token; if the token shows up in the capture, plaintext
// crossed the wire. A marker datagram sent after the probes tells when the capture caught up.
// A capture can lose packets (the kernel drops what tcpdump's ring has no room for): the canary
// asks the capture for its kernel drop counter at each sync, and a sync window with drops is
// reported as `lost`, so a missing token is never taken for "no plaintext".
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Wire } from '../model/verdict.ts';
import { pollUntil } from '../substrate/poll.ts';

export function newToken(): string {
  return `mpcanary-${randomBytes(8).toString('hex')}`;
}

/** What a probe batch needs of a wire canary (pods.ts probeBatch): one capture, or several read as one (WireCanaries). */
export interface Canary {
  watch(token: string): void;
  sync(marker: string, send: () => Promise<void>, timeoutMs?: number): Promise<{ lost: boolean }>;
  hasSeen(token: string): boolean;
  forget(token: string): void;
  result(token: string): { wire: Wire; legs: string[] };
}

export class WireCanary implements Canary {
  private offset = 0;
  /** Bytes of a record not yet complete at the last read. */
  private tail: Buffer = Buffer.alloc(0);
  private linktype: number | undefined;
  private littleEndian = true;
  private readonly legsOf = new Map<string, string[]>();
  private readonly watched = new Set<string>();
  private readonly seen = new Set<string>();

  private drops = 0;

  /** `dropCounter` reads the capture's cumulative "packets dropped by kernel" (tcpdump's pcap_stats). */
  constructor(
    readonly pcapFile: string,
    private readonly dropCounter?: () => Promise<number>,
  ) {}

  /** Registers a token before the probe that carries it is sent. */
  watch(token: string): void {
    this.watched.add(token);
  }

  /** Reads what the capture wrote since last time and notes the tokens it contains, and on which legs. */
  scan(): void {
    let size: number;
    try {
      size = statSync(this.pcapFile).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.pcapFile, 'r');
    try {
      const chunk = Buffer.alloc(size - this.offset);
      readSync(fd, chunk, 0, chunk.length, this.offset);
      this.offset = size;
      this.consume(Buffer.concat([this.tail, chunk]));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Walks pcap records (a partial last record is kept for the next read). A record holding a
   * watched token marks it seen, with the leg it travelled: `src→dst:dport` from its IPv4 header.
   */
  private consume(buf: Buffer): void {
    let at = 0;
    if (this.linktype === undefined) {
      if (buf.length < 24) {
        this.tail = buf;
        return;
      }
      this.littleEndian = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
      this.linktype = this.littleEndian ? buf.readUInt32LE(20) : buf.readUInt32BE(20);
      at = 24;
    }
    const u32 = (o: number) => (this.littleEndian ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    while (at + 16 <= buf.length) {
      const caplen = u32(at + 8);
      if (at + 16 + caplen > buf.length) break;
      const rec = buf.subarray(at + 16, at + 16 + caplen);
      at += 16 + caplen;
      if (this.watched.size === 0) continue;
      // a seen token stays watched: a call can cross several legs in clear (client → router → backend)
      const hits = [...this.watched].filter((t) => rec.includes(t));
      if (hits.length === 0) continue;
      const leg = ipv4Leg(rec, this.linktype);
      for (const t of hits) {
        this.seen.add(t);
        if (leg && !(this.legsOf.get(t) ?? []).includes(leg)) this.legsOf.set(t, [...(this.legsOf.get(t) ?? []), leg]);
      }
    }
    this.tail = Buffer.from(buf.subarray(at));
  }

  /**
   * Sends `marker` after the probes (and again every 250 ms: a datagram can be lost) and waits
   * until the capture holds it: everything sent before it is in the capture too. Resolves to
   * `{ lost: true }` when the capture dropped packets since the previous sync: then a token still
   * pending may have been in a lost packet, and its probe must be sent again.
   */
  async sync(marker: string, send: () => Promise<void>, timeoutMs = 3000): Promise<{ lost: boolean }> {
    this.watch(marker);
    let nextSend = 0;
    await pollUntil(async () => {
      if (Date.now() >= nextSend) {
        await send();
        nextSend = Date.now() + 250;
      }
      this.scan();
      return this.seen.has(marker) ? true : undefined;
    }, { timeoutMs, intervalMs: 5, what: `wire canary: the capture ${this.pcapFile} seeing marker ${marker}` });
    this.forget(marker);
    await this.settle();
    return { lost: await this.dropped() };
  }

  /**
   * A token still unseen when the marker arrives gets one more look, over the whole capture after
   * a short grace: a "no-plaintext" verdict must not come from a packet the capture was still
   * writing (packets of several CPUs reach the ring buffer in slightly different order).
   */
  private async settle(): Promise<void> {
    if ([...this.watched].every((t) => this.seen.has(t))) return;
    await new Promise((r) => setTimeout(r, 50));
    let all: Buffer;
    try {
      all = readFileSync(this.pcapFile);
    } catch {
      return;
    }
    this.offset = all.length;
    this.linktype = undefined;
    this.consume(all);
  }

  /** Whether the kernel dropped packets of the capture since the last call. */
  private async dropped(): Promise<boolean> {
    if (!this.dropCounter) return false;
    const now = await this.dropCounter();
    const lost = now > this.drops;
    this.drops = now;
    return lost;
  }

  /** After sync(): was this token seen? (Unlike verdict(), keeps the token.) */
  hasSeen(token: string): boolean {
    return this.seen.has(token);
  }

  /** Forgets a token without a verdict (its probe is being sent again with a new token). */
  forget(token: string): void {
    this.seen.delete(token);
    this.watched.delete(token);
    this.legsOf.delete(token);
  }

  /** After sync(): did this token cross a pod link in plaintext, and on which legs? Forgets the token. */
  verdict(token: string): Wire {
    return this.result(token).wire;
  }

  result(token: string): { wire: Wire; legs: string[] } {
    const out = { wire: (this.seen.has(token) ? 'plaintext-seen' : 'no-plaintext') as Wire, legs: this.legsOf.get(token) ?? [] };
    this.forget(token);
    return out;
  }
}

/** Link-layer header length of the capture's DLT: Ethernet, Linux cooked v1 and v2 (`tcpdump -i any`). */
const LINK_HEADER: Record<number, number> = { 1: 14, 113: 16, 276: 20 };

/** `src→dst:dport` of an IPv4 TCP/UDP packet in a pcap record, or null. */
export function ipv4Leg(rec: Buffer, linktype: number | undefined): string | null {
  const off = linktype === undefined ? undefined : LINK_HEADER[linktype];
  if (off === undefined || rec.length < off + 20 || rec[off]! >> 4 !== 4) return null;
  const ihl = (rec[off]! & 0x0f) * 4;
  const proto = rec[off + 9];
  const ip = (o: number) => `${rec[o]}.${rec[o + 1]}.${rec[o + 2]}.${rec[o + 3]}`;
  const dport = (proto === 6 || proto === 17) && rec.length >= off + ihl + 4 ? `:${rec.readUInt16BE(off + ihl + 2)}` : '';
  return `${ip(off + 12)}→${ip(off + 16)}${dport}`;
}

/**
 * Several captures read as one (the kind substrate: one in each node's network namespace, where that node's pods'
 * veths are). A token is plaintext when any capture saw it; a sync waits until every capture holds the marker (the
 * marker's sender makes each node send one), and is lost when any capture dropped packets.
 */
export class WireCanaries implements Canary {
  constructor(readonly parts: readonly WireCanary[]) {
    if (parts.length === 0) throw new Error('WireCanaries: no capture');
  }

  watch(token: string): void {
    for (const c of this.parts) c.watch(token);
  }

  async sync(marker: string, send: () => Promise<void>, timeoutMs?: number): Promise<{ lost: boolean }> {
    // one sender for all: each part's sync would send the marker again
    let sending: Promise<void> | undefined;
    const once = () => (sending ??= send().finally(() => (sending = undefined)));
    const r = await Promise.all(this.parts.map((c) => c.sync(marker, once, timeoutMs)));
    return { lost: r.some((x) => x.lost) };
  }

  hasSeen(token: string): boolean {
    return this.parts.some((c) => c.hasSeen(token));
  }

  forget(token: string): void {
    for (const c of this.parts) c.forget(token);
  }

  result(token: string): { wire: Wire; legs: string[] } {
    const all = this.parts.map((c) => c.result(token));
    const legs = [...new Set(all.flatMap((r) => r.legs))];
    return { wire: all.some((r) => r.wire === 'plaintext-seen') ? 'plaintext-seen' : 'no-plaintext', legs };
  }
}
