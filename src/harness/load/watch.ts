// The path's containers watched over a load window through the substrate port (Cluster.sample, Cluster.machine):
// CPU at start and stop, the resident set every `intervalMs` in between (the largest kept), and the machine over the
// same window. Nothing here knows a pid or /proc.
import type { ContainerSample, MachineSample } from '../substrate/types.ts';
import type { ProcReading } from './machine.ts';
import type { LoadPath } from './path.ts';

/** What a watch needs of the substrate. */
export interface SampleHost {
  sample(pod: string, container: string): Promise<ContainerSample>;
  machine(): Promise<MachineSample>;
}

export interface WatchedContainer {
  pod: string;
  container: string;
}

export interface WatchReading {
  /** One per watched container, in order. */
  procs: ProcReading[];
  /** Each container's command lines at the end (Envoy's --concurrency). */
  commands: string[][][];
  /** The machine at the start and at the end of the window. */
  machine: [MachineSample, MachineSample];
}

/** The process name a container's main command goes by (what /proc/<pid>/comm says: the file name, 15 bytes). */
export function commOf(commands: readonly string[][]): string {
  return (commands[0]?.[0] ?? '').split('/').pop()!.slice(0, 15);
}

export class ContainerWatch {
  private readonly rssMax: number[];
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<void>;

  private constructor(
    private readonly host: SampleHost,
    private readonly refs: readonly WatchedContainer[],
    private readonly start: ContainerSample[],
    private readonly machine0: MachineSample,
  ) {
    this.rssMax = start.map((s) => s.rssBytes);
  }

  /** Samples every container (rejects naming one that is not running) and the machine, then the resident sets every `intervalMs`. */
  static async start(host: SampleHost, refs: readonly WatchedContainer[], intervalMs = 250): Promise<ContainerWatch> {
    const start = await Promise.all(refs.map((r) => host.sample(r.pod, r.container)));
    const w = new ContainerWatch(host, refs, start, await host.machine());
    w.timer = setInterval(() => {
      // one round of samples at a time: a slow machine skips a tick rather than piling them up
      w.sampling ??= w.sampleRss().finally(() => (w.sampling = undefined));
    }, intervalMs);
    w.timer.unref();
    return w;
  }

  private async sampleRss(): Promise<void> {
    const now = await Promise.all(this.refs.map((r) => this.host.sample(r.pod, r.container).catch(() => undefined)));
    now.forEach((s, i) => {
      if (s) this.rssMax[i] = Math.max(this.rssMax[i]!, s.rssBytes);
    });
  }

  /** Ends the window: the machine first, then each container (rejects naming one that exited during the load). */
  async stop(): Promise<WatchReading> {
    clearInterval(this.timer);
    await this.sampling;
    const machine1 = await this.host.machine();
    const end = await Promise.all(
      this.refs.map((r) => this.host.sample(r.pod, r.container).catch((e: Error) => Promise.reject(new Error(`${r.pod} container ${r.container} exited during the load: ${e.message}`, { cause: e })))),
    );
    const procs = end.map((b, i) => ({ comm: commOf(b.commands), cpuS: b.cpuSeconds - this.start[i]!.cpuSeconds, rssMiB: Math.max(this.rssMax[i]!, b.rssBytes) / 1024 / 1024 }));
    return { procs, commands: end.map((b) => b.commands), machine: [this.machine0, machine1] };
  }
}

/** Watches the path's containers; one not running is named with its role. */
export function startWatch(path: Pick<LoadPath, 'id' | 'host' | 'procs'>): Promise<ContainerWatch> {
  return ContainerWatch.start(path.host, path.procs).catch((e: Error) => {
    const ref = path.procs.find((p) => e.message.includes(`container ${p.container} `) && e.message.includes(p.pod));
    throw new Error(`path ${path.id}: ${e.message}${ref ? ` (${ref.role})` : ''}`, { cause: e });
  });
}

/**
 * The path's containers watched over `during`: the window opens (every container and the machine sampled) before
 * `during` starts and closes after it settles; the watch is stopped even when `during` fails (its error wins).
 */
export async function watched<T>(path: Pick<LoadPath, 'id' | 'host' | 'procs'>, during: () => Promise<T>): Promise<{ value: T; reading: WatchReading }> {
  const watch = await startWatch(path);
  let value: T;
  try {
    value = await during();
  } catch (e) {
    await watch.stop().catch(() => undefined);
    throw e;
  }
  return { value, reading: await watch.stop() };
}
