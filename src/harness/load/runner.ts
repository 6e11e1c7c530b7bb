// Runs the closed-loop load: for each round, every path in turn (ABC ABC ABC: interleaved, so a drift of
// the machine lands on every path alike), the generator inside the path's client pod, the
// path's containers sampled through the substrate port over the run (watch.ts: Cluster.sample, Cluster.machine).
// Every loop is bounded: a fixed number of rounds, each run bounded by its duration and a request count, every
// wait for the generator by a timeout, and the whole run by a deadline (steps.ts).
import { createRequire } from 'node:module';
import { pollUntil } from '../substrate/poll.ts';
import { ARMED_LINE, DONE_LINE, findLoadLine, parseWrk, type LoadFigures, type LoadLine } from './figures.ts';
import { foreignCpuS, foreignCpus, machineBetween, type MachineReading, type ProcReading } from './machine.ts';
import type { LoadPath, ProcRef } from './path.ts';
import { round } from './stats.ts';
import { runSteps, type Step } from './steps.ts';
import { watched, type WatchReading } from './watch.ts';

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
  /** Runs measured again because another job used the machine meanwhile, with why. */
  discarded: (RunSample & { why: string })[];
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

/** The path's containers' costs over a window, with their roles. */
function costsOf(path: LoadPath, reading: WatchReading): ProcCost[] {
  return path.procs.map((ref, i) => {
    const x = reading.procs[i]!;
    return { ...ref, ...x, cpuS: round(x.cpuS), rssMiB: round(x.rssMiB, 1) };
  });
}

/** The machine over a window, with the CPU no process of the run accounts for. */
function machineOf(reading: WatchReading, accountedS: number): MachineReading {
  const [m0, m1] = reading.machine;
  const m = machineBetween(m0, m1);
  const foreignS = foreignCpuS(m, accountedS + (m1.harnessS - m0.harnessS));
  return { cpus: m.cpus, wallS: round(m.wallS), busyS: round(m.busyS), irqS: round(m.irqS), idleS: round(m.idleS), stealS: round(m.stealS), foreignS: round(foreignS) };
}

function failed(path: LoadPath, what: string, r: { code: number; stdout: string; stderr: string }): Error {
  return new Error(`path ${path.id}: ${what} in ${path.client} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-4).join(' | ')}`);
}

/** Seconds the load container may take beyond its own warm-up or measured run (node's start, autocannon's hard stop). */
const LOAD_SLACK_S = 25;
let loadRuns = 0;

/**
 * How often the harness reads the load container's log while the window is open: the window closes late by at most
 * this (the path idle). A look costs the substrate something (a file read on netns, a logs call on docker), so the
 * interval is ten looks' time, within these bounds: at most a tenth of the harness's time goes to looking.
 */
const LOOK_MS = { min: 10, max: 100 };

/**
 * Waits until the load container's log shows what `pick` looks for (a look every `intervalMs`, bounded by
 * `timeoutMs`); rejects at once with the workload's own error line, or when the container exited without it
 * (Cluster.containerStatus). Resolves with the value and how long a look took (mean ms).
 */
async function awaitLoadLog<T>(path: LoadPath, name: string, what: string, o: { timeoutMs: number; intervalMs: number }, pick: (log: string) => T | undefined): Promise<{ value: T; lookMs: number }> {
  const { host, client } = path;
  let last = '';
  let looks = 0;
  let lookMs = 0;
  const look = async (): Promise<T | undefined> => {
    const t = performance.now();
    last = await host.containerLog(client, name);
    lookMs += performance.now() - t;
    looks++;
    const v = pick(last);
    if (v !== undefined) return v;
    const err = /^meshproof workload: .*$/m.exec(last);
    if (err) throw new Error(`path ${path.id}: the load workload in ${client} failed: ${err[0]}`);
    return undefined;
  };
  const value = await pollUntil(
    async () => {
      const exitCode = host.containerStatus(client, name)?.exitCode;
      const v = await look();
      if (v !== undefined || exitCode === undefined) return v;
      // exited before that look: what it printed is all there is
      throw new Error(`path ${path.id}: the load workload in ${client} exited (code ${exitCode}) before it was ${what}: ${tail(last)}`);
    },
    { timeoutMs: o.timeoutMs, intervalMs: o.intervalMs, what: `path ${path.id}: the load workload in ${client} ${what}`, detail: () => tail(last) },
  );
  return { value, lookMs: lookMs / looks };
}

const tail = (log: string): string => log.trim().split('\n').slice(-4).join(' | ') || '(empty log)';

/**
 * One autocannon run (warm-up, then measured) by the `load` workload, started as a container of the path's client
 * pod (Cluster.startContainer; one container per run, its log is the run's record). The window the path's
 * containers are sampled over (Cluster.sample, Cluster.machine) is bounded by the measured run: the workload warms
 * up, prints ARMED_LINE and waits; the harness samples every container and the machine, then sends SIGUSR2
 * (Cluster.signalContainer); the workload prints DONE_LINE the moment autocannon's measured run ends, and the
 * harness closes the window when it sees that line (a look at the log every 10-100 ms: LOOK_MS). So node's start, the warm-up
 * and the summary are outside the window, which exceeds autocannon's measured duration only by the signal's
 * delivery and the last look (tens of ms, the path idle): the CPU and RSS are the data plane's over the measured run.
 */
export async function runAutocannon(path: LoadPath, s: LoadSettings): Promise<Omit<RunSample, 'round'>> {
  const { host, client } = path;
  const name = `load-${++loadRuns}`;
  const args = [
    '--url', targetUrl(path, s),
    '--connections', String(s.connections),
    '--pipelining', String(s.pipelining),
    '--duration', String(s.durationS),
    '--warmup', String(s.warmupS),
    '--max-requests', String(s.maxRequests),
    '--await-signal', String(LOAD_SLACK_S),
    '--autocannon', resolveAutocannon(),
    ...(path.proxy !== undefined ? ['--proxy', path.proxy] : []),
  ];
  await host.startContainer(client, { name, workload: 'load', args });
  try {
    // before the window a look's cost is not known yet: 25 ms looks (the run waits that long at most, the path idle)
    const armed = await awaitLoadLog(path, name, 'armed', { timeoutMs: (s.warmupS + LOAD_SLACK_S) * 1000, intervalMs: 25 }, (log) => (log.includes(ARMED_LINE) ? true : undefined));
    const intervalMs = Math.min(LOOK_MS.max, Math.max(LOOK_MS.min, 10 * armed.lookMs));
    const { reading } = await watched(path, () => {
      host.signalContainer(client, name, 'SIGUSR2');
      return awaitLoadLog(path, name, 'done', { timeoutMs: (s.durationS + LOAD_SLACK_S) * 1000, intervalMs }, (log) => (log.includes(DONE_LINE) ? true : undefined));
    });
    const line: LoadLine = (await awaitLoadLog(path, name, 'summarized', { timeoutMs: LOAD_SLACK_S * 1000, intervalMs }, findLoadLine)).value;
    const { warmupRequests: _w, ...figures } = line;
    const costs = costsOf(path, reading);
    // the generator's own CPU over the measured run is its process.cpuUsage(); the harness's (its looks) is counted too
    const accounted = costs.reduce((n, c) => n + c.cpuS, 0) + (figures.clientCpuS ?? 0);
    return { path: path.id, figures, costs, machine: machineOf(reading, accounted) };
  } finally {
    await host.stopContainer(client, name);
  }
}

/** One wrk run (Debian's wrk, HTTP/1.1 keep-alive) from the path's client pod (Cluster.exec), the window its exec. */
export async function runWrk(path: LoadPath, s: LoadSettings, w: WrkSettings): Promise<Omit<RunSample, 'round'>> {
  if (path.proxy !== undefined) throw new Error(`path ${path.id}: wrk does not go through the proxy ${path.proxy}`);
  const url = targetUrl(path, s);
  const connections = Math.max(s.connections, w.threads);
  const { value: r, reading } = await watched(path, () => path.host.exec(path.client, ['wrk', `-t${w.threads}`, `-c${connections}`, `-d${w.durationS}s`, '--latency', url], { timeoutMs: (w.durationS + 15) * 1000 }));
  if (r.code !== 0) throw failed(path, 'wrk', r);
  const [m0, m1] = reading.machine;
  // on netns `ip netns exec` execs wrk: once reaped, its CPU is among the harness's reaped children
  const clientCpuS = m1.reapedS - m0.reapedS;
  const figures: LoadFigures = { ...parseWrk(r.stdout, { url, connections }), clientCpuS };
  const costs = path.procs.map((ref, i) => ({ ...ref, ...reading.procs[i]! }));
  const machine = machineBetween(m0, m1);
  const accounted = reading.procs.reduce((n, p) => n + p.cpuS, 0) + clientCpuS + (m1.harnessS - m0.harnessS);
  return { path: path.id, figures, costs, machine: { ...machine, foreignS: foreignCpuS(machine, accounted) } };
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

/**
 * Verifies every path, warms each once (prewarmS), then runs the rounds: per round the baseline
 * (and wrk on it), then every other path, in the given order, on the one step scheduler (steps.ts): another job
 * on the machine is waited out before each run, and a run disturbed anyway (foreignCpuMax) is measured again while
 * retries and the deadline's slack last; the disturbed run is kept in `discarded`.
 */
export async function runRounds(paths: LoadPath[], s: LoadSettings, log: (line: string) => void = () => undefined, proven?: Record<string, string>): Promise<RoundsResult> {
  const t0 = performance.now();
  // paths already proven (the fixed-rate run verified them) are not asked again
  const verified: Record<string, string> = proven ? { ...proven } : await verifyPaths(paths, log);
  const samples: RunSample[] = [];
  const wrk: RunSample[] = [];
  const steps: Step<RunSample>[] = [];
  const baseline = paths[0]!;
  const at = (round: number, run: () => Promise<Omit<RunSample, 'round'>>) => async (): Promise<RunSample> => ({ round, ...(await run()) });
  if (s.prewarmS > 0) {
    const warm: LoadSettings = { ...s, durationS: s.prewarmS, warmupS: 0 };
    for (const p of paths) steps.push({ what: `pre-warm ${p.id}`, round: 0, needS: s.prewarmS + 0.6, run: at(0, () => runAutocannon(p, warm)) });
  }
  for (let round = 1; round <= s.rounds; round++) {
    for (const p of paths) {
      steps.push({ what: `round ${round} ${p.id}`, round, needS: s.warmupS + s.durationS + 0.8, run: at(round, () => runAutocannon(p, s)), keep: (r) => samples.push(r) });
      const w = s.wrk;
      if (p === baseline && w) steps.push({ what: `round ${round} ${p.id} (wrk)`, round, needS: w.durationS + 0.5, run: at(round, () => runWrk(p, s, w)), keep: (r) => wrk.push(r) });
    }
  }
  const res = await runSteps(steps, s, baseline.host, {
    name: 'load',
    fewer: 'fewer paths, rounds or seconds per run',
    line: (r) => `${r.figures.rps.toFixed(0)} req/s, p99 ${r.figures.latencyMs.p99.toFixed(2)} ms, ${r.figures.errors} errors`,
    reject: (r) => {
      const foreign = foreignCpus(r.machine);
      return foreign > s.foreignCpuMax ? `other processes used ${foreign.toFixed(2)} CPUs meanwhile` : undefined;
    },
  }, log);
  return { samples, wrk, discarded: res.discarded.map(({ r, why }) => ({ ...r, why })), verified, waitedS: res.waitedS, seconds: (performance.now() - t0) / 1000 };
}
