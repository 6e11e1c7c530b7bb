// The one step scheduler of every load run (fortio at a fixed rate, autocannon and wrk in the closed loop): a list of
// runs, each with the seconds it needs, run in order within one deadline. Round 0 is an unmeasured pre-warm run (no
// quiet wait, no retry, nothing kept). Before a measured run it waits (at most quietWaitS) for the machine to be quiet;
// a run the judge rejects (disturbed by another job, or void: the generator did not hold the rate) is measured again
// while the run's retries last and the deadline's spare time holds another run of that step; else it is kept with
// the reason. Bounded: the steps given, at most `retries` more runs, each wait ≤ quietWaitS, the whole ≤ deadlineS.
import { machineBetween } from './machine.ts';
import type { LoadHost } from './path.ts';

export interface Step<R> {
  what: string;
  /** 0: the unmeasured pre-warm run. */
  round: number;
  /** Seconds the run takes (generator start, warm-up, measured run). */
  needS: number;
  run(): Promise<R>;
  /** A measured run that counts (or was kept when no retry was left); unused for round 0. */
  keep?(r: R, why: string | undefined): void;
}

export interface StepSettings {
  deadlineS: number;
  quietWaitS: number;
  /** CPUs other processes may use while the machine counts as quiet (the wait before a run). */
  foreignCpuMax: number;
  /** Runs measured again, at most, in the whole run. */
  retries: number;
}

export interface StepJudge<R> {
  /** The log line of a run (figures). */
  line(r: R): string;
  /** Why a measured run does not count, or undefined when it does. */
  reject(r: R): string | undefined;
  /** The hint of the deadline error: what to make smaller. */
  fewer: string;
  /** Prefix of the deadline error, e.g. `fixed-rate load`. */
  name: string;
}

export interface StepsResult<R> {
  /** Runs measured again, with why. */
  discarded: { r: R; why: string }[];
  /** Seconds spent waiting for the machine to be quiet before runs. */
  waitedS: number;
  seconds: number;
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

/** Runs the steps in order (see the head of this file); `host` is asked about the machine between runs. */
export async function runSteps<R>(steps: readonly Step<R>[], s: StepSettings, host: Pick<LoadHost, 'machine'>, judge: StepJudge<R>, log: (line: string) => void = () => undefined): Promise<StepsResult<R>> {
  const t0 = performance.now();
  const deadline = t0 + s.deadlineS * 1000;
  const discarded: StepsResult<R>['discarded'] = [];
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
        throw new Error(`${judge.name}: ${step.what} would end after the run's ${s.deadlineS} s deadline (${((performance.now() - t0) / 1000).toFixed(1)} s spent, ${steps.length - i} runs left): ${judge.fewer}`);
      }
      if (step.round === 0) {
        log(`${step.what}: ${judge.line(await step.run())} (not measured)`);
        break;
      }
      const waitS = Math.min(s.quietWaitS, spare());
      if (waitS >= 0.2) {
        const quiet = await waitQuiet(host, waitS, s.foreignCpuMax);
        waitedS += quiet.waitedS;
        if (quiet.waitedS >= 0.5) log(`${step.what}: waited ${quiet.waitedS.toFixed(1)} s for other processes to calm down (${quiet.busy.toFixed(2)} CPUs busy)`);
      }
      const r = await step.run();
      const line = `${step.what}: ${judge.line(r)}`;
      const why = judge.reject(r);
      if (!why) {
        log(line);
        step.keep?.(r, undefined);
        break;
      }
      // a retry is another run of this step: it must fit in the spare time
      if (retries <= 0 || spare() < step.needS) {
        log(`${line}: ${why}; kept (no retry or time left)`);
        step.keep?.(r, why);
        break;
      }
      retries--;
      discarded.push({ r, why });
      log(`${line}: ${why}; measuring again`);
    }
  }
  return { discarded, waitedS, seconds: (performance.now() - t0) / 1000 };
}
