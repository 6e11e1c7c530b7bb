// The cost of processes, from /proc (proc(5)): utime+stime (all threads of a process and of its descendants) and the
// resident set size; and what the whole machine did (/proc/stat), so CPU used by processes outside the run (another
// job on a shared machine) shows. On netns the pods share the host's /proc: NetnsCluster.sample and .machine read it
// here (the one reader of /proc), and so does the in-pod `load` workload (ProcWatch), over exactly autocannon's
// measured run. The parsers are pure.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { ContainerSample, MachineSample } from '../types.ts';
import type { MachineReading, ProcReading } from '../../load/machine.ts';

export interface StatFields {
  pid: number;
  comm: string;
  /** User and system CPU time, clock ticks (all threads of the process). */
  utime: number;
  stime: number;
  /** Of the children the process has waited for (proc(5) fields 16, 17). */
  cutime: number;
  cstime: number;
}

/**
 * /proc/<pid>/stat (proc(5)): `pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17)`.
 * comm may hold spaces and parentheses, so fields are counted from the LAST `)`.
 */
export function parseStat(text: string): StatFields {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state): field n is rest[n - 3]
  const field = (n: number): number => {
    const v = Number(rest[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/<pid>/stat: field ${n} missing in ${JSON.stringify(text.slice(0, 120))}`);
    return v;
  };
  return { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), utime: field(14), stime: field(15), cutime: field(16), cstime: field(17) };
}

/** VmRSS of /proc/<pid>/status, KiB (0 when absent: a kernel thread or a zombie). */
export function parseStatusRssKiB(text: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The aggregate `cpu` line of /proc/stat, clock ticks per state. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

export function parseProcStatCpu(text: string): CpuTimes {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error('/proc/stat: no aggregate cpu line');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return { user: user!, nice: nice!, system: system!, idle: idle!, iowait: iowait ?? 0, irq: irq ?? 0, softirq: softirq ?? 0, steal: steal ?? 0 };
}

let ticks: number | undefined;

/** USER_HZ, the unit of utime/stime and /proc/stat (getconf CLK_TCK; 100 on Linux). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The process and its descendants, at most 64 processes. A child is listed under the thread that forked it
 * (proc(5) /proc/<pid>/task/<tid>/children), so every thread is read: a Go program such as pilot-agent starts
 * Envoy from whichever thread its goroutine runs on.
 */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0 && out.length < 64) {
    const p = todo.shift()!;
    if (out.includes(p)) continue;
    out.push(p);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tids) {
      const children = read(`/proc/${p}/task/${tid}/children`);
      if (children) todo.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
    }
  }
  return out;
}

export interface TreeSample {
  /** CPU ticks (utime+stime) of the tree. */
  cpuTicks: number;
  rssKiB: number;
  comm: string;
}

/** One reading of a process tree; undefined when the root process is gone. */
export function sampleTree(pid: number): TreeSample | undefined {
  const root = read(`/proc/${pid}/stat`);
  if (root === undefined) return undefined;
  const comm = parseStat(root).comm;
  let cpuTicks = 0;
  let rssKiB = 0;
  for (const p of processTree(pid)) {
    const stat = read(`/proc/${p}/stat`);
    if (stat === undefined) continue;
    const f = parseStat(stat);
    cpuTicks += f.utime + f.stime;
    rssKiB += parseStatusRssKiB(read(`/proc/${p}/status`) ?? '');
  }
  return { cpuTicks, rssKiB, comm };
}

/** CPU seconds this process and the children it has waited for have used (a reaped child's time lands in cutime/cstime). */
export function selfAndChildrenCpuS(): { selfS: number; childrenS: number } {
  const f = parseStat(readFileSync('/proc/self/stat', 'utf8'));
  const hz = clockTicks();
  return { selfS: (f.utime + f.stime) / hz, childrenS: (f.cutime + f.cstime) / hz };
}

export function machineDelta(a: CpuTimes, b: CpuTimes, wallS: number, hz = clockTicks(), ncpu = cpus().length): MachineReading {
  const d = (k: keyof CpuTimes) => (b[k] - a[k]) / hz;
  return {
    cpus: ncpu,
    wallS,
    busyS: d('user') + d('nice') + d('system'),
    irqS: d('irq') + d('softirq'),
    idleS: d('idle') + d('iowait'),
    stealS: d('steal'),
  };
}

/**
 * Watches processes over a load window: CPU at start and stop, VmRSS every `intervalMs` in
 * between (the timer is cleared by stop), and the machine's /proc/stat over the same window.
 */
export class ProcWatch {
  private readonly start = new Map<number, TreeSample>();
  private readonly rssMax = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly cpu0: CpuTimes;
  private readonly t0 = performance.now();

  constructor(
    private readonly pids: readonly number[],
    intervalMs = 250,
  ) {
    for (const pid of pids) {
      const s = sampleTree(pid);
      if (!s) throw new Error(`pid ${pid} is not running: cannot watch it`);
      this.start.set(pid, s);
      this.rssMax.set(pid, s.rssKiB);
    }
    this.cpu0 = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
    this.timer = setInterval(() => this.sampleRss(), intervalMs);
    this.timer.unref();
  }

  private sampleRss(): void {
    for (const pid of this.pids) {
      const s = sampleTree(pid);
      if (s) this.rssMax.set(pid, Math.max(this.rssMax.get(pid) ?? 0, s.rssKiB));
    }
  }

  stop(): { procs: ProcReading[]; machine: MachineReading } {
    clearInterval(this.timer);
    const wallS = (performance.now() - this.t0) / 1000;
    const cpu1 = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
    this.sampleRss();
    const hz = clockTicks();
    const procs = this.pids.map((pid) => {
      const a = this.start.get(pid)!;
      const b = sampleTree(pid);
      if (!b) throw new Error(`pid ${pid} (${a.comm}) exited during the load`);
      return { pid, comm: b.comm, cpuS: (b.cpuTicks - a.cpuTicks) / hz, rssMiB: (this.rssMax.get(pid) ?? b.rssKiB) / 1024 };
    });
    return { procs, machine: machineDelta(this.cpu0, cpu1, wallS, hz) };
  }
}

/** CPU ticks (utime+stime) of every process on the machine now, pid → comm and ticks (kernel threads included). */
export function cpuSnapshot(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    const stat = read(`/proc/${d}/stat`);
    if (stat === undefined) continue;
    try {
      const f = parseStat(stat);
      out.set(f.pid, { comm: f.comm, ticks: f.utime + f.stime });
    } catch {
      // gone while read
    }
  }
  return out;
}

/** The command line of each process of a tree (proc(5) /proc/<pid>/cmdline), those still running. */
export function treeCommands(tree: readonly number[]): string[][] {
  return tree.map((p) => read(`/proc/${p}/cmdline`)).filter((c): c is string => c !== undefined && c !== '').map((c) => c.replace(/\0$/, '').split('\0'));
}

/** A container's cost from its main process's tree; undefined when that process is gone. */
export function sampleContainer(pid: number): ContainerSample | undefined {
  const s = sampleTree(pid);
  if (!s) return undefined;
  return { cpuSeconds: s.cpuTicks / clockTicks(), rssBytes: s.rssKiB * 1024, commands: treeCommands(processTree(pid)) };
}

/** The machine now; `own` are the roots of the run's process trees (with this process, left out of `others`). */
export function sampleMachine(own: readonly number[]): MachineSample {
  const at = performance.now();
  const cpu = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  const hz = clockTicks();
  const self = selfAndChildrenCpuS();
  const mine = new Set<number>([process.pid]);
  for (const pid of own) for (const p of processTree(pid)) mine.add(p);
  const others = new Map<string, number>();
  for (const [pid, x] of cpuSnapshot()) if (!mine.has(pid)) others.set(`${x.comm}[${pid}]`, x.ticks / hz);
  return {
    at,
    cpus: cpus().length,
    busyS: (cpu.user + cpu.nice + cpu.system) / hz,
    irqS: (cpu.irq + cpu.softirq) / hz,
    idleS: (cpu.idle + cpu.iowait) / hz,
    stealS: cpu.steal / hz,
    harnessS: self.selfS,
    reapedS: self.childrenS,
    others,
  };
}
