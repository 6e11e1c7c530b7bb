// What a load run reads of the machine and of the path's containers, as figures: pure arithmetic on the substrate's
// samples (Cluster.sample, Cluster.machine); the substrate reads them (on netns from /proc: substrate/netns/proc.ts).
import type { MachineSample } from '../substrate/types.ts';

/** What a watched container cost over a window. */
export interface ProcReading {
  /** netns's ProcWatch (substrate/netns/proc.ts) carries the pid it watched; readings through the port (watch.ts) carry none. */
  pid?: number;
  comm: string;
  /** CPU seconds used during the window. */
  cpuS: number;
  /** Largest resident set seen during the window, MiB. */
  rssMiB: number;
}

/** What the machine did over the window, seconds of CPU (summed over all CPUs). */
export interface MachineReading {
  cpus: number;
  wallS: number;
  /** user + nice + system. */
  busyS: number;
  /** irq + softirq (packet processing of the pods' veths lands here). */
  irqS: number;
  idleS: number;
  stealS: number;
  /** busyS not accounted for by the run's own processes (foreignCpuS), when computed. */
  foreignS?: number;
}

/** Average CPUs used by processes outside the run during a window (foreignS over the wall time). */
export function foreignCpus(m: Pick<MachineReading, 'wallS' | 'foreignS'>): number {
  return m.wallS > 0 ? (m.foreignS ?? 0) / m.wallS : 0;
}

/** A process outside the run and the CPU it used during a run. */
export interface OtherProcess {
  pid: number;
  comm: string;
  cpuS: number;
}

/** The machine between two readings. */
export function machineBetween(a: MachineSample, b: MachineSample): MachineReading {
  return { cpus: b.cpus, wallS: (b.at - a.at) / 1000, busyS: b.busyS - a.busyS, irqS: b.irqS - a.irqS, idleS: b.idleS - a.idleS, stealS: b.stealS - a.stealS };
}

/**
 * CPU the machine spent in processes outside the ones accounted for: busy and irq time of
 * /proc/stat (a process's stime includes the softirq ticks that /proc/stat files under softirq:
 * the packet processing of its own sends) minus the watched processes, the load generator and the
 * harness. A few percent of one CPU is bookkeeping noise; more is another job on the machine.
 */
export function foreignCpuS(machine: MachineReading, accountedS: number): number {
  return Math.max(0, machine.busyS + machine.irqS - accountedS);
}

/**
 * The processes outside the run that used the most CPU between two readings: who else was busy during a run. At most
 * `top`, each at least `minS` CPU seconds; a process gone by the second reading is not listed.
 */
export function othersBetween(a: MachineSample, b: MachineSample, top = 3, minS = 0.02): OtherProcess[] {
  const out: OtherProcess[] = [];
  for (const [key, s] of b.others) {
    const cpuS = s - (a.others.get(key) ?? 0);
    const m = /^(.*)\[(\d+)\]$/s.exec(key);
    if (cpuS >= minS && m) out.push({ pid: Number(m[2]), comm: m[1]!, cpuS: Math.round(cpuS * 1000) / 1000 });
  }
  return out.sort((p, q) => q.cpuS - p.cpuS).slice(0, top);
}

/**
 * Envoy's worker threads among a container's command lines: `--concurrency N` of its envoy process (pilot-agent
 * passes its own; Istio's figures are for 2 workers); null when no envoy names it.
 */
export function envoyWorkers(commands: readonly string[][]): number | null {
  for (const argv of commands) {
    if (!/(^|\/)envoy$/.test(argv[0] ?? '')) continue;
    const i = argv.indexOf('--concurrency');
    if (i >= 0 && /^\d+$/.test(argv[i + 1] ?? '')) return Number(argv[i + 1]);
    const eq = argv.find((x) => x.startsWith('--concurrency='));
    if (eq) return Number(eq.slice('--concurrency='.length));
  }
  return null;
}
