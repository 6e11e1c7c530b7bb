// The one poll-until helper: ask again until an answer comes, within a bound, never a fixed sleep.

export interface PollOptions {
  /** The whole budget; the first attempt is always made. */
  timeoutMs: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message: "kube-apiserver /readyz". */
  what: string;
  /** The latest reason it is not there yet (e.g. the last HTTP status), appended to the timeout message. */
  detail?: () => string | undefined;
}

/**
 * Calls `fn` until it returns a value other than `undefined`, and resolves with that value.
 * `fn` throwing ends the poll at once with that error (e.g. the awaited process exited);
 * running out of time rejects with `<what>: not ready after <timeoutMs> ms[: <detail>]`.
 */
export async function pollUntil<T>(fn: () => T | undefined | Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      const detail = opts.detail?.();
      throw new Error(`${opts.what}: not ready after ${opts.timeoutMs} ms${detail ? `: ${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(opts.intervalMs ?? 50, deadline - Date.now()))));
  }
}
