// Wire canary: a packet capture in the run's node namespace sees every byte that crosses a
// pod's link. A probe carries a random token; if the token shows up in the capture, plaintext
// crossed the wire. A marker datagram sent after the probes tells when the capture caught up.
// A capture can lose packets (the kernel drops what tcpdump's ring has no room for): the canary
// asks the capture for its kernel drop counter at each sync, and a sync window with drops is
// reported as `lost`, so a missing token is never taken for "no plaintext".
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Wire } from '../model/verdict.ts';

export function newToken(): string {
  return `mpcanary-${randomBytes(8).toString('hex')}`;
}

export class WireCanary {
  private offset = 0;
  private tail: Buffer = Buffer.alloc(0);
  private readonly pending = new Set<string>();
  private readonly seen = new Set<string>();

  private drops = 0;

  /** `dropCounter` reads the capture's cumulative "packets dropped by kernel" (tcpdump's pcap_stats). */
  constructor(
    readonly pcapFile: string,
    private readonly dropCounter?: () => Promise<number>,
  ) {}

  /** Registers a token before the probe that carries it is sent. */
  watch(token: string): void {
    this.pending.add(token);
  }

  /** Reads what the capture wrote since last time and notes the tokens it contains. */
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
      // keep a little of the previous chunk so a token cut by a read boundary is still found
      const hay = Buffer.concat([this.tail, chunk]);
      for (const t of this.pending) {
        if (hay.includes(t)) {
          this.seen.add(t);
          this.pending.delete(t);
        }
      }
      this.tail = hay.subarray(Math.max(0, hay.length - 64));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Sends `marker` after the probes (and again every 250 ms: a datagram can be lost) and waits
   * until the capture holds it: everything sent before it is in the capture too. Resolves to
   * `{ lost: true }` when the capture dropped packets since the previous sync: then a token still
   * pending may have been in a lost packet, and its probe must be sent again.
   */
  async sync(marker: string, send: () => Promise<void>, timeoutMs = 3000): Promise<{ lost: boolean }> {
    this.watch(marker);
    const deadline = Date.now() + timeoutMs;
    let nextSend = 0;
    for (;;) {
      if (Date.now() >= nextSend) {
        await send();
        nextSend = Date.now() + 250;
      }
      this.scan();
      if (this.seen.has(marker)) {
        this.seen.delete(marker);
        await this.settle();
        return { lost: await this.dropped() };
      }
      if (Date.now() > deadline) throw new Error(`wire canary: the capture ${this.pcapFile} did not see marker ${marker} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * A token still unseen when the marker arrives gets one more look, over the whole capture after
   * a short grace: a "no-plaintext" verdict must not come from a packet the capture was still
   * writing (packets of several CPUs reach the ring buffer in slightly different order).
   */
  private async settle(): Promise<void> {
    if (this.pending.size === 0) return;
    await new Promise((r) => setTimeout(r, 50));
    let all: Buffer;
    try {
      all = readFileSync(this.pcapFile);
    } catch {
      return;
    }
    this.offset = all.length;
    this.tail = all.subarray(Math.max(0, all.length - 64));
    for (const t of this.pending) {
      if (all.includes(t)) {
        this.seen.add(t);
        this.pending.delete(t);
      }
    }
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
    this.pending.delete(token);
  }

  /** After sync(): did this token cross a pod link in plaintext? Forgets the token. */
  verdict(token: string): Wire {
    const v: Wire = this.seen.has(token) ? 'plaintext-seen' : 'no-plaintext';
    this.seen.delete(token);
    this.pending.delete(token);
    return v;
  }
}
