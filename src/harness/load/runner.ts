// Runs the load: for each round, every path in turn (ABC ABC ABC: interleaved, so a drift of
// the machine lands on every path alike), the generator inside the path's client pod, the
// path's containers sampled through the substrate over the run. Every loop is bounded: a fixed number of
// rounds, each run bounded by its duration and a request count, and the whole run by a deadline.
import { createRequire } from 'node:module';
import { parseLoadLine, parseWrk, type LoadFigures } from './figures.ts';
import { foreignCpuS, machineBetween, type MachineReading, type ProcReading } from './machine.ts';
import type { LoadHost, LoadPath, ProcRef } from './path.ts';
import { startWatch } from './watch.ts';

export interface WrkSettings {
  threads: number;
  durationS: number;
}

export interface LoadSettings {
  connections: number;
  pipelining: number;
  /** Seconds of each measured run. */
  durationS: number;
  /** Bytes of each response body (GET /bytes/<n>). */
  payloadBytes: number;
  /** Interleaved rounds (≥ 3 for a median and a spread worth the name). */
  rounds: number;
  /** Seconds of the unmeasured run before each measured one, in the same generator process (its JIT, pools, handshakes). */
  warmupS: number;
  /** Seconds of one unmeasured run per path before round 1 (the servers' JIT and heap: round 1 is slower without it). */
  prewarmS: number;
  /** Per run: stop after this many requests whatever the duration. */
  maxRequests: number;
  /** The load-generator ceiling check: wrk on the baseline path once per round; false to skip. */
  wrk: WrkSettings | false;
  /** The whole run (rounds, retries) must end within this many seconds. */
  deadlineS: number;
  /**
   * Another job on a shared machine: before each run, wait (at most quietWaitS) until processes
   * outside the run use at most foreignCpuMax CPUs; a run during which they used more is measured
   * again, at most `retries` times in the whole run. Both only while the deadline allows.
   */
  foreignCpuMax: number;
  quietWaitS: number;
  retries: number;
}

export const DEFAULT_SETTINGS: LoadSettings = {
  connections: 8,
  pipelining: 1,
  durationS: 4,
  payloadBytes: 1024,
  rounds: 3,
  warmupS: 1,
  prewarmS: 3,
  maxRequests: 2_000_000,
  wrk: { threads: 1, durationS: 2 },
  deadlineS: 80,
  foreignCpuMax: 0.25,
  quietWaitS: 3,
  retries: 3,
};

/** A sampled process's cost, with what it is on the path. */
export type ProcCost = ProcRef & ProcReading;

/** One measured run. */
export interface RunSample {
  path: string;
  round: number;
  figures: LoadFigures;
  costs: ProcCost[];
  machine: MachineReading;
}

export interface RoundsResult {
  /** autocannon runs, in the order they ran. */
  samples: RunSample[];
  /** wrk on the baseline path, one per round. */
  wrk: RunSample[];
  /** Runs measured again because another job used the machine meanwhile. */
  discarded: RunSample[];
  /** Seconds spent waiting for the machine to be quiet before runs. */
  waitedS: number;
  /** Evidence of each path's verify(). */
  verified: Record<string, string>;
  seconds: number;
}

let autocannonPath: string | undefined;

/** Where autocannon's entry file is, for the in-pod `load` workload to require it. */
export function resolveAutocannon(): string {
  autocannonPath ??= createRequire(import.meta.url).resolve('autocannon');
  return autocannonPath;
}

export function targetUrl(path: LoadPath, s: Pick<LoadSettings, 'payloadBytes'>): string {
  return `${path.target}/bytes/${s.payloadBytes}`;
}

/** The host pids of the path's containers, for the in-pod `load` workload's watch (netns: the pod shares the host's /proc). */
function pidsOf(path: LoadPath): number[] {
  return path.procs.map((ref) => {
    const pid = path.host.pids(ref.pod)[ref.container];
    if (pid === undefined) throw new Error(`path ${path.id}: ${ref.pod} has no running container ${ref.container} (${ref.role})`);
    return pid;
  });
}

function costsOf(path: LoadPath, pids: number[], readings: ProcReading[]): ProcCost[] {
  return path.procs.map((ref, i) => {
    const r = readings.find((x) => x.pid === pids[i]);
    if (!r) throw new Error(`path ${path.id}: no /proc reading of ${ref.role} (pid ${pids[i]})`);
    return { ...ref, ...r };
  });
}

function failed(path: LoadPath, what: string, r: { code: number; stdout: string; stderr: string }): Error {
  return new Error(`path ${path.id}: ${what} in ${path.client} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-4).join(' | ')}`);
}

/** One autocannon run (warm-up, then measured) from the path's client pod; the pod's `load` workload reads /proc itself. */
export async function runAutocannon(path: LoadPath, s: LoadSettings): Promise<Omit<RunSample, 'round'>> {
  const pids = pidsOf(path);
  const argv = [
    process.execPath,
    path.host.bundle,
    'load',
    '--url', targetUrl(path, s),
    '--connections', String(s.connections),
    '--pipelining', String(s.pipelining),
    '--duration', String(s.durationS),
    '--warmup', String(s.warmupS),
    '--max-requests', String(s.maxRequests),
    '--watch', pids.join(','),
    '--autocannon', resolveAutocannon(),
    ...(path.proxy !== undefined ? ['--proxy', path.proxy] : []),
  ];
  const r = await path.host.exec(path.client, argv, { timeoutMs: (s.warmupS + s.durationS + 30) * 1000 });
  if (r.code !== 0) throw failed(path, 'autocannon', r);
  const line = parseLoadLine(r.stdout);
  const { procs, machine, warmupRequests: _w, ...figures } = line;
  return { path: path.id, figures, costs: costsOf(path, pids, procs), machine };
}

/** One wrk run (Debian's wrk, HTTP/1.1 keep-alive) from the path's client pod, watched from here. */
export async function runWrk(path: LoadPath, s: LoadSettings, w: WrkSettings): Promise<Omit<RunSample, 'round'>> {
  if (path.proxy !== undefined) throw new Error(`path ${path.id}: wrk does not go through the proxy ${path.proxy}`);
  const url = targetUrl(path, s);
  const connections = Math.max(s.connections, w.threads);
  const watch = await startWatch(path);
  let r;
  let reading;
  try {
    r = await path.host.exec(path.client, ['wrk', `-t${w.threads}`, `-c${connections}`, `-d${w.durationS}s`, '--latency', url], { timeoutMs: (w.durationS + 15) * 1000 });
  } finally {
    reading = await watch.stop();
  }
  if (r.code !== 0) throw failed(path, 'wrk', r);
  const [m0, m1] = reading.machine;
  // on netns `ip netns exec` execs wrk: once reaped, its CPU is among the harness's reaped children
  const clientCpuS = m1.reapedS - m0.reapedS;
  const figures: LoadFigures = { ...parseWrk(r.stdout, { url, connections }), clientCpuS };
  const accounted = reading.procs.reduce((n, p) => n + p.cpuS, 0) + clientCpuS + (m1.harnessS - m0.harnessS);
  const machine = machineBetween(m0, m1);
  return { path: path.id, figures, costs: path.procs.map((ref, i) => ({ ...ref, ...reading.procs[i]! })), machine: { ...machine, foreignS: foreignCpuS(machine, accounted) } };
}

/** Average CPUs used by processes outside the run during a sample. */
export function foreignCpus(m: MachineReading): number {
  return m.wallS > 0 ? (m.foreignS ?? 0) / m.wallS : 0;
}

/**
 * CPUs the machine is busy (user, nice, system, irq, softirq) over a short window, less the harness's own use: between
 * two runs the run's processes idle, so this is another job's load.
 */
export async function machineBusyCpus(host: Pick<LoadHost, 'machine'>, windowMs = 300): Promise<number> {
  const a = await host.machine();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await host.machine();
  const m = machineBetween(a, b);
  return Math.max(0, (m.busyS + m.irqS - (b.harnessS - a.harnessS)) / m.wallS);
}

/** Waits until other processes use at most `cpus` CPUs (200 ms looks, at most `maxS`); resolves with the seconds waited and the last reading. */
export async function waitQuiet(host: Pick<LoadHost, 'machine'>, maxS: number, cpus: number): Promise<{ waitedS: number; busy: number }> {
  const t0 = performance.now();
  const looks = Math.max(1, Math.floor(maxS / 0.2));
  let busy = NaN;
  for (let i = 0; i < looks; i++) {
    busy = await machineBusyCpus(host, 200);
    if (busy <= cpus) break;
  }
  return { waitedS: (performance.now() - t0) / 1000, busy };
}

/** One request per path before any load, proving each is what it claims; path id → evidence. */
export async function verifyPaths(paths: readonly LoadPath[], log: (line: string) => void = () => undefined): Promise<Record<string, string>> {
  const verified: Record<string, string> = {};
  for (const p of paths) {
    verified[p.id] = await p.verify();
    log(`(${p.letter}) ${p.id}: ${p.client} → ${p.target}: ${verified[p.id]}`);
  }
  return verified;
}

interface Step {
  what: string;
  /** 0: the unmeasured pre-warm run (no quiet wait, no retry, nothing kept). */
  round: number;
  /** Seconds the step takes (generator start, warm-up, measured run). */
  needS: number;
  run(): Promise<Omit<RunSample, 'round'>>;
  keep(r: RunSample): void;
}

/**
 * Verifies every path, warms each once (prewarmS), then runs the rounds: per round the baseline
 * (and wrk on it), then every other path, in the given order. Another job on the machine: before each run the runner waits
 * for quiet, and a run disturbed anyway (foreignCpuMax) is measured again while retries last; the
 * disturbed run is kept in `discarded`. Waits and retries only spend the deadline's slack.
 */
export async function runRounds(paths: LoadPath[], s: LoadSettings, log: (line: string) => void = () => undefined, proven?: Record<string, string>): Promise<RoundsResult> {
  const t0 = performance.now();
  const deadline = t0 + s.deadlineS * 1000;
  // paths already proven (the fixed-rate run verified them) are not asked again
  const verified: Record<string, string> = proven ? { ...proven } : await verifyPaths(paths, log);
  const samples: RunSample[] = [];
  const wrk: RunSample[] = [];
  const discarded: RunSample[] = [];
  const steps: Step[] = [];
  const baseline = paths[0]!;
  if (s.prewarmS > 0) {
    const warm: LoadSettings = { ...s, durationS: s.prewarmS, warmupS: 0 };
    for (const p of paths) steps.push({ what: `pre-warm ${p.id}`, round: 0, needS: s.prewarmS + 0.6, run: () => runAutocannon(p, warm), keep: () => undefined });
  }
  for (let round = 1; round <= s.rounds; round++) {
    for (const p of paths) {
      steps.push({ what: `round ${round} ${p.id}`, round, needS: s.warmupS + s.durationS + 0.8, run: () => runAutocannon(p, s), keep: (r) => samples.push(r) });
      const w = s.wrk;
      if (p === baseline && w) steps.push({ what: `round ${round} ${p.id} (wrk)`, round, needS: w.durationS + 0.5, run: () => runWrk(p, s, w), keep: (r) => wrk.push(r) });
    }
  }
  let retries = s.retries;
  let waitedS = 0;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const need = (): number => steps.slice(i).reduce((n, x) => n + x.needS, 0);
    // seconds left beyond what the remaining steps need; waits and retries only spend `spare`,
    // which keeps a reserve for steps that take longer than their estimate
    const slack = (): number => (deadline - performance.now()) / 1000 - need();
    const spare = (): number => slack() - Math.max(2, 0.1 * need());
    for (;;) {
      if (slack() < 0) {
        throw new Error(`load: ${step.what} would end after the run's ${s.deadlineS} s deadline (${((performance.now() - t0) / 1000).toFixed(1)} s spent, ${steps.length - i} runs left): fewer paths, rounds or seconds per run`);
      }
      if (step.round === 0) {
        const r: RunSample = { round: 0, ...(await step.run()) };
        log(`${step.what}: ${r.figures.rps.toFixed(0)} req/s (not measured)`);
        break;
      }
      const waitS = Math.min(s.quietWaitS, spare());
      if (waitS >= 0.2) {
        const quiet = await waitQuiet(baseline.host, waitS, s.foreignCpuMax);
        waitedS += quiet.waitedS;
        if (quiet.waitedS >= 0.5) log(`${step.what}: waited ${quiet.waitedS.toFixed(1)} s for other processes to calm down (${quiet.busy.toFixed(2)} CPUs busy)`);
      }
      const r: RunSample = { round: step.round, ...(await step.run()) };
      const foreign = foreignCpus(r.machine);
      const line = `${step.what}: ${r.figures.rps.toFixed(0)} req/s, p99 ${r.figures.latencyMs.p99.toFixed(2)} ms, ${r.figures.errors} errors`;
      if (foreign <= s.foreignCpuMax || retries <= 0 || spare() < 0) {
        log(foreign > s.foreignCpuMax ? `${line} (other processes used ${foreign.toFixed(2)} CPUs meanwhile; kept: no retry or time left)` : line);
        step.keep(r);
        break;
      }
      retries--;
      discarded.push(r);
      log(`${line}: discarded, other processes used ${foreign.toFixed(2)} CPUs meanwhile; measuring again`);
    }
  }
  return { samples, wrk, discarded, verified, waitedS, seconds: (performance.now() - t0) / 1000 };
}
