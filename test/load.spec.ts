// The throughput-budget machinery (src/harness/load) without a mesh: statistics, /proc and
// load-generator output parsers (fed real output captured on the project's machine), the budgets
// file and check (hand-written numbers), the summary of rounds, the SVG chart, and the `load`
// workload's command line; /proc sampling and live load on loopback are test/integration/load.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/harness/model/errors.ts';
import { checkBudgets, describeBudget, parseBudgets } from '../src/harness/load/budgets.ts';
import { renderPathChart } from '../src/harness/load/chart.ts';
import { ARMED_LINE, findLoadLine, parseLoadLine, parseWrk, summarizeAutocannon, type AutocannonResultLike, type LoadFigures } from '../src/harness/load/figures.ts';
import { BASELINE, PATH_CATALOG, type LoadPath } from '../src/harness/load/path.ts';
import { machineDelta, parseProcStatCpu, parseStat, parseStatusRssKiB } from '../src/harness/substrate/netns/proc.ts';
import { envoyWorkers, foreignCpuS, machineBetween, othersBetween } from '../src/harness/load/machine.ts';
import type { ContainerSample, MachineSample } from '../src/harness/substrate/types.ts';
import { commOf, ContainerWatch, type SampleHost } from '../src/harness/load/watch.ts';
import { renderTable, skippedTests } from '../src/harness/load/report.ts';
import { DEFAULT_FIXED_RATE } from '../src/harness/load/fortio.ts';
import { DEFAULT_SETTINGS, type RoundsResult, type RunSample } from '../src/harness/load/runner.ts';
import { median, percentile, spread } from '../src/harness/load/stats.ts';
import { runSteps } from '../src/harness/load/steps.ts';
import { bottleneckOf, skippedPaths, summarize } from '../src/harness/load/summary.ts';
import { cannonTarget, parseLoadArgs } from '../src/harness/workloads/load.ts';
import { xfccCallerEvidence } from '../src/harness/load/beds/c2c.ts';

describe('load: statistics', () => {
  it('median of odd and even counts, NaN for none', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(median([])).to.be.NaN;
  });

  it('spread is (max − min) / median: 0.9, 1.0, 1.05 → 15%', () => {
    expect(spread([0.9, 1.0, 1.05])).to.be.closeTo(0.15, 1e-12);
    expect(spread([5])).to.equal(0);
    expect(spread([2, 2, 2])).to.equal(0);
    expect(spread([-1, 0, 1])).to.be.NaN;
  });

  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100 shuffled by reversal
    expect(percentile(xs, 50)).to.equal(50);
    expect(percentile(xs, 99)).to.equal(99);
    expect(percentile(xs, 100)).to.equal(100);
    expect(percentile([7], 99)).to.equal(7);
  });
});

describe('load: /proc parsers', () => {
  it('reads utime/stime/cutime/cstime from /proc/<pid>/stat, counting fields after the last parenthesis', () => {
    // comm with a space and a parenthesis, as a process can name itself
    const line = '4242 (envoy (w) 1) S 1 4242 4242 0 -1 4194560 2000 0 0 0 1234 567 89 10 20 0 3 0 100 3312964000 14885 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
    expect(parseStat(line)).to.deep.equal({ pid: 4242, comm: 'envoy (w) 1', utime: 1234, stime: 567, cutime: 89, cstime: 10 });
    expect(() => parseStat('garbage')).to.throw(/not a \/proc/);
  });

  it('reads VmRSS (kB) from /proc/<pid>/status, 0 when absent', () => {
    expect(parseStatusRssKiB('Name:\tenvoy\nVmHWM:\t   61000 kB\nVmRSS:\t   59540 kB\nRssAnon:\t 16000 kB\n')).to.equal(59540);
    expect(parseStatusRssKiB('Name:\tkthreadd\n')).to.equal(0);
  });

  it('reads the aggregate cpu line of /proc/stat and computes the machine over a window', () => {
    const a = parseProcStatCpu('cpu  1000 10 500 9000 5 0 100 2 0 0\ncpu0 500 5 250 4500 2 0 50 1 0 0\n');
    expect(a).to.deep.equal({ user: 1000, nice: 10, system: 500, idle: 9000, iowait: 5, irq: 0, softirq: 100, steal: 2 });
    const b = parseProcStatCpu('cpu  1300 10 600 9100 5 0 150 2 0 0\n');
    const m = machineDelta(a, b, 2, 100, 2);
    expect(m).to.deep.equal({ cpus: 2, wallS: 2, busyS: 4, irqS: 0.5, idleS: 1, stealS: 0 });
    // 4.5 s of busy + irq CPU, 3.5 s of it the run's: 1 s belongs to someone else
    expect(foreignCpuS(m, 3.5)).to.equal(1);
    expect(foreignCpuS(m, 5)).to.equal(0);
  });
});

describe("load: figures from the substrate's samples (load/machine.ts)", () => {
  const sample = (at: number, busyS: number, others: [string, number][]): MachineSample => ({ at, cpus: 2, busyS, irqS: 0.5, idleS: 10, stealS: 0, harnessS: 1, reapedS: 0, others: new Map(others) });

  it('the machine between two readings, and who else used the CPU (the busiest first, at most 3, each at least 20 ms)', () => {
    const a = sample(1000, 10, [['tsc[7]', 1], ['go[8]', 2], ['sshd[9]', 0.5], ['gone[10]', 4]]);
    const b = sample(3500, 13.5, [['tsc[7]', 1.9], ['go[8]', 2.01], ['sshd[9]', 0.6], ['new one[11]', 0.3], ['idle[12]', 0.01]]);
    expect(machineBetween(a, b)).to.deep.equal({ cpus: 2, wallS: 2.5, busyS: 3.5, irqS: 0, idleS: 0, stealS: 0 });
    expect(othersBetween(a, b)).to.deep.equal([
      { pid: 7, comm: 'tsc', cpuS: 0.9 },
      { pid: 11, comm: 'new one', cpuS: 0.3 },
      { pid: 9, comm: 'sshd', cpuS: 0.1 },
    ]);
    expect(othersBetween(a, b, 1)).to.have.length(1);
  });

  it('ContainerWatch: CPU used between the first and the last sample, the larger resident set, the name; an exited container named', async () => {
    const samples: Record<string, ContainerSample[]> = {
      'p/envoy': [{ cpuSeconds: 10, rssBytes: 60 * 2 ** 20, commands: [['/opt/envoy/bin/envoy', '--concurrency', '2']] }, { cpuSeconds: 10.75, rssBytes: 58 * 2 ** 20, commands: [['/opt/envoy/bin/envoy', '--concurrency', '2']] }],
      'q/app': [{ cpuSeconds: 1, rssBytes: 40 * 2 ** 20, commands: [['/usr/bin/node', 'pod.mjs', 'echo']] }, { cpuSeconds: 1.5, rssBytes: 48 * 2 ** 20, commands: [['/usr/bin/node', 'pod.mjs', 'echo']] }],
    };
    const machines = [sample(0, 1, []), sample(2000, 3, [])];
    const host: SampleHost = {
      sample: async (pod, container) => {
        const next = samples[`${pod}/${container}`]?.shift();
        if (!next) throw new Error(`pod ${pod}: container ${container} is not running`);
        return next;
      },
      machine: async () => machines.shift()!,
    };
    // no tick in between: the interval is longer than the test
    const w = await ContainerWatch.start(host, [{ pod: 'p', container: 'envoy' }, { pod: 'q', container: 'app' }], 3_600_000);
    const r = await w.stop();
    expect(r.procs).to.deep.equal([
      { comm: 'envoy', cpuS: 0.75, rssMiB: 60 },
      { comm: 'node', cpuS: 0.5, rssMiB: 48 },
    ]);
    expect(envoyWorkers(r.commands[0]!)).to.equal(2);
    expect(r.machine.map((m) => m.at)).to.deep.equal([0, 2000]);
    // running at the start, gone at the end
    samples['p/envoy']!.push({ cpuSeconds: 11, rssBytes: 2 ** 20, commands: [] });
    const gone = await ContainerWatch.start({ ...host, machine: async () => sample(0, 1, []) }, [{ pod: 'p', container: 'envoy' }], 3_600_000).then((x) => x.stop()).then(() => '', (e: Error) => e.message);
    expect(gone).to.equal('p container envoy exited during the load: pod p: container envoy is not running');
    expect(commOf([['/usr/local/bin/a-very-long-command-name', 'x']])).to.equal('a-very-long-com');
  });

  it("Envoy's workers from a container's command lines: --concurrency N or =N of the envoy process, else null", () => {
    expect(envoyWorkers([['/usr/local/bin/pilot-agent', 'proxy', 'sidecar', '--concurrency', '9'], ['/usr/local/bin/envoy', '-c', 'x.yaml', '--concurrency', '2']])).to.equal(2);
    expect(envoyWorkers([['envoy', '--concurrency=1']])).to.equal(1);
    expect(envoyWorkers([['haproxy', '-W', '-db']])).to.equal(null);
    expect(envoyWorkers([])).to.equal(null);
  });
});

// autocannon 8 result keys (lib/aggregateResult.js), as the in-pod workload received them
const AC_RESULT: AutocannonResultLike = {
  url: 'http://echo:8080/bytes/1024',
  connections: 8,
  pipelining: 1,
  duration: 3.01,
  errors: 2,
  timeouts: 1,
  mismatches: 0,
  non2xx: 3,
  resets: 0,
  latency: { p50: 1, p90: 2, p99: 5, max: 13 },
  requests: { total: 14_448 },
  throughput: { total: 21_672_000 },
};

// wrk 4.1.0 (Debian 12) output captured from a pod on this project's machine
const WRK_OK = `Running 2s test @ http://echo-naked:8080/bytes/1024
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   211.96us  217.03us   4.83ms   93.67%
    Req/Sec    43.41k    11.94k   56.62k    76.19%
  Latency Distribution
     50%  142.00us
     75%  239.00us
     90%  360.00us
     99%    1.17ms
  90359 requests in 2.10s, 107.11MB read
Requests/sec:  43022.15
Transfer/sec:     51.00MB
`;
const WRK_503 = `Running 1s test @ http://127.0.0.1:18081/status/503
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   186.63us  523.49us   7.82ms   94.64%
    Req/Sec    26.54k    12.82k   40.04k    72.73%
  Latency Distribution
     50%   56.00us
     75%  101.00us
     90%  243.00us
     99%    2.94ms
  28959 requests in 1.10s, 12.81MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 28959
Requests/sec:  26323.23
Transfer/sec:     11.65MB
`;

describe('load: load-generator output', () => {
  it('summarizes an autocannon result; its own 1 ms histogram unless response times were recorded', () => {
    const f = summarizeAutocannon(AC_RESULT, { clientCpuS: 0.8 });
    expect(f).to.deep.equal({
      tool: 'autocannon',
      url: 'http://echo:8080/bytes/1024',
      connections: 8,
      pipelining: 1,
      durationS: 3.01,
      requests: 14448,
      rps: 4800,
      latencyMs: { p50: 1, p90: 2, p99: 5, max: 13 },
      errors: 5,
      errorDetail: { errors: 2, timeouts: 1, non2xx: 3, mismatches: 0, resets: 0 },
      bytesPerS: 7_200_000,
      clientCpuS: 0.8,
    });
    const lat = Array.from({ length: 1000 }, (_, i) => (i + 1) / 100); // 0.01 .. 10 ms
    const g = summarizeAutocannon(AC_RESULT, { latenciesMs: lat });
    expect(g.latencyMs).to.deep.equal({ p50: 5, p90: 9, p99: 9.9, max: 10 });
    expect(g).to.not.have.property('clientCpuS');
  });

  it('finds the figures line in the workload output (after its armed line), and says so when there is none', () => {
    const line = { ...summarizeAutocannon(AC_RESULT), warmupRequests: 10 };
    const log = `${ARMED_LINE}\nnoise\n${JSON.stringify(line)}\n`;
    expect(parseLoadLine(log).requests).to.equal(14448);
    expect(findLoadLine(log)?.warmupRequests).to.equal(10);
    // armed, not yet done; or the line half written
    expect(findLoadLine(`${ARMED_LINE}\n`)).to.equal(undefined);
    expect(findLoadLine(`${ARMED_LINE}\n${JSON.stringify(line).slice(0, 40)}`)).to.equal(undefined);
    expect(() => parseLoadLine('{"tool":"wrk"}\n')).to.throw(/no figures line/);
  });

  it('parses wrk --latency output (us/ms units, MB at 1024, socket errors and non-2xx)', () => {
    expect(parseWrk(WRK_OK, { url: 'http://echo-naked:8080/bytes/1024', connections: 8 })).to.deep.equal({
      tool: 'wrk',
      url: 'http://echo-naked:8080/bytes/1024',
      connections: 8,
      pipelining: 1,
      durationS: 2.1,
      requests: 90359,
      rps: 43022.2,
      latencyMs: { p50: 0.142, p90: 0.36, p99: 1.17, max: 4.83 },
      errors: 0,
      errorDetail: { connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 },
      bytesPerS: 53_477_376,
    });
    const bad = parseWrk(WRK_503, { url: 'u', connections: 2 });
    expect(bad.errorDetail).to.deep.equal({ connect: 0, read: 2, write: 0, timeout: 1, non2xx: 28959 });
    expect(bad.errors).to.equal(28962);
    expect(bad.latencyMs.p99).to.equal(2.94);
    expect(() => parseWrk('unable to connect to 127.0.0.1:18099 Connection refused\n', { url: 'u', connections: 1 })).to.throw(/wrk: no 'N requests in T' line/);
  });
});

const BUDGETS_YAML = `# test
fixed_rate:
  rate: 500
  connections: [2, 8]
  rounds: 3
  jitter: false
closed_loop:
  connections: 4
  duration_s: 2
  rounds: 3
  wrk: false
smoke:
  fixed_rate: { rounds: 1, duration_s: 2 }
  closed_loop: { rounds: 1 }
paths:
  baseline:
    errors_max: 0
  istio-mtls:
    vcpu_per_1k_rps_max: 0.25
    rss_mib_max: 80
    p90_added_ms_max: 0.5
    rps_ratio_min: 0.2
  cf-tcp-router:
    rps_ratio_min: 0.3
`;

describe('load: budgets file', () => {
  it('reads the fixed-rate and closed-loop settings over the defaults, smoke over those, and per-path budgets', () => {
    const b = parseBudgets(BUDGETS_YAML, 'b.yaml');
    expect(b.fixedRate).to.deep.equal({ ...DEFAULT_FIXED_RATE, rate: 500, connections: [2, 8], rounds: 3, jitter: false });
    expect(b.load).to.deep.equal({ ...DEFAULT_SETTINGS, connections: 4, durationS: 2, wrk: false });
    expect(b.smoke.fixedRate).to.deep.equal({ ...b.fixedRate, rounds: 1, durationS: 2 });
    expect(b.smoke.load).to.deep.equal({ ...b.load, rounds: 1 });
    expect(b.paths).to.deep.equal({
      baseline: { errors_max: 0 },
      'istio-mtls': { vcpu_per_1k_rps_max: 0.25, rss_mib_max: 80, p90_added_ms_max: 0.5, rps_ratio_min: 0.2 },
      'cf-tcp-router': { rps_ratio_min: 0.3 },
    });
  });

  it('rejects unknown keys, paths and budgets by name, too few rounds, bad connection lists and bad numbers', () => {
    const bad = (text: string, re: RegExp) => expect(() => parseBudgets(text, 'b.yaml')).to.throw(UserError, re);
    bad('load: {}\n', /b\.yaml: unknown key 'load' \(keys: fixed_rate, closed_loop, smoke, paths\)/);
    bad('closed_loop: { duration: 3 }\n', /unknown key 'closed_loop\.duration' \(keys: connections, .*duration_s/);
    bad('closed_loop: { rounds: 2 }\n', /closed_loop\.rounds must be at least 3/);
    bad('fixed_rate: { rounds: 1 }\n', /fixed_rate\.rounds must be at least 3/);
    bad('fixed_rate: { qps: 1000 }\n', /unknown key 'fixed_rate\.qps' \(keys: rate, /);
    bad('fixed_rate: { connections: 4 }\n', /fixed_rate\.connections must be a list of connection counts, e\.g\. \[2, 4, 8, 16\]/);
    bad('fixed_rate: { connections: [4, 4] }\n', /fixed_rate\.connections lists a count twice/);
    bad('fixed_rate: { connections: [2.5] }\n', /fixed_rate\.connections\[0\] must be a whole number/);
    bad('fixed_rate: { min_rate_ratio: 1.5 }\n', /min_rate_ratio must be at most 1/);
    bad('fixed_rate: { jitter: yes-please }\n', /fixed_rate\.jitter must be true or false/);
    bad('smoke: { fixed: {} }\n', /unknown key 'smoke\.fixed' \(keys: fixed_rate, closed_loop\)/);
    bad('closed_loop: { connections: 2.5 }\n', /closed_loop\.connections must be a whole number/);
    bad('paths: { istio: { rps_ratio_min: 0.2 } }\n', /unknown path 'istio' \(paths: baseline, istio-mtls/);
    bad('paths: { istio-mtls: { cpu_per_1k_req_max: 0.2 } }\n', /unknown budget 'paths\.istio-mtls\.cpu_per_1k_req_max' \(budgets: vcpu_per_1k_rps_max, /);
    bad('paths: { baseline: { p90_added_ms_max: 1 } }\n', /the baseline is what the others are compared with/);
    bad('paths: { istio-mtls: { rss_mib_max: -1 } }\n', /paths\.istio-mtls\.rss_mib_max must be a number ≥ 0/);
    bad('paths: { istio-mtls: { rps_ratio_min: 0 } }\n', /paths\.istio-mtls\.rps_ratio_min must be a number > 0/);
  });

  it('the shipped fixtures/budgets.yaml parses: 1000 req/s, 1 KB, ≥ 5 rounds, and budgets (b) to (e) in Istio\'s units', () => {
    const b = parseBudgets(readFileSync('fixtures/budgets.yaml', 'utf8'), 'fixtures/budgets.yaml');
    expect(b.fixedRate.rate).to.equal(1000);
    expect(b.fixedRate.payloadBytes).to.equal(1024);
    expect(b.fixedRate.rounds).to.be.at.least(5);
    expect(b.load.rounds).to.be.at.least(3);
    for (const id of ['istio-mtls', 'istio-permissive-plaintext', 'cf-tcp-router', 'c2c-egress']) {
      expect(Object.keys(b.paths[id] ?? {})).to.include.members(['vcpu_per_1k_rps_max', 'rss_mib_max', 'p50_added_ms_max', 'p90_added_ms_max', 'p99_added_ms_max', 'errors_max', 'rps_ratio_min']);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Summary: three rounds of three paths, hand-written

function fig(rps: number, p99: number, clientCpuS: number, extra: Partial<LoadFigures> = {}): LoadFigures {
  return {
    tool: 'autocannon',
    url: 'u',
    connections: 8,
    pipelining: 1,
    durationS: 4,
    requests: rps * 4,
    rps,
    latencyMs: { p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2 },
    errors: 0,
    errorDetail: {},
    bytesPerS: rps * 1200,
    clientCpuS,
    ...extra,
  };
}

const MACHINE = { cpus: 2, wallS: 4, busyS: 6, irqS: 1, idleS: 1, stealS: 0, foreignS: 0 };

function path(id: string, procs: LoadPath['procs']): LoadPath {
  const c = PATH_CATALOG.find((x) => x.id === id)!;
  return { id, letter: c.letter, description: c.description, client: 'default/sleep', target: `http://${id}:8080`, procs, host: undefined as unknown as LoadPath['host'], verify: async () => 'ok' };
}

const app = (pod: string) => ({ role: 'server-app', kind: 'app' as const, pod, container: 'app-8080' });
const side = (pod: string, role: string) => ({ role, kind: 'dataplane' as const, pod, container: 'istio-proxy' });
const PATHS = [path(BASELINE, [app('default/echo-naked')]), path('istio-mtls', [side('default/sleep', 'client-sidecar'), side('default/echo', 'server-sidecar'), app('default/echo')])];

function sample(p: string, round: number, figures: LoadFigures, cpu: number[], foreignS = 0): RunSample {
  const procs = PATHS.find((x) => x.id === p)!.procs;
  return {
    path: p,
    round,
    figures,
    costs: procs.map((ref, i) => ({ ...ref, pid: 100 + i, comm: ref.kind === 'app' ? 'node' : 'envoy', cpuS: cpu[i]!, rssMiB: ref.kind === 'app' ? 55 : 58 + i })),
    machine: { ...MACHINE, foreignS },
  };
}

const ROUNDS: RoundsResult = {
  samples: [
    sample(BASELINE, 1, fig(20000, 1, 3.6), [3.2]),
    sample('istio-mtls', 1, fig(4000, 4, 0.8), [1.6, 1.6, 0.8]),
    sample(BASELINE, 2, fig(25000, 1, 3.6), [3.4]),
    sample('istio-mtls', 2, fig(5000, 3, 0.8), [2, 2, 0.9]),
    sample(BASELINE, 3, fig(20000, 2, 3.6), [3.2], 2),
    sample('istio-mtls', 3, fig(4400, 5, 0.8), [1.76, 1.76, 0.8]),
  ],
  wrk: [1, 2, 3].map((round) => sample(BASELINE, round, { ...fig(round === 2 ? 25000 : 40000, 1.5, 1.0), tool: 'wrk' }, [3.5])),
  discarded: [],
  verified: { [BASELINE]: 'allowed:plaintext served by echo-naked', 'istio-mtls': 'allowed:mtls' },
  waitedS: 0,
  seconds: 50,
};

describe('load: the one step scheduler (steps.ts) of the fixed-rate and closed-loop runs', () => {
  // no quiet wait (quietWaitS 0), so the machine is never asked; the deadline is far beyond what the steps need
  const quiet = { machine: async (): Promise<MachineSample> => Promise.reject(new Error('not asked')) };
  const settings = { deadlineS: 1000, quietWaitS: 0, foreignCpuMax: 0.3, retries: 2 };
  const judge = { name: 'test load', fewer: 'fewer steps', line: (r: string) => r, reject: (r: string) => (r.endsWith('!') ? 'disturbed' : undefined) };
  /** A step whose runs answer `answers` in turn; what it ran and kept is recorded in `trace`. */
  const step = (what: string, round: number, answers: string[], trace: string[], needS = 1) => ({
    what,
    round,
    needS,
    run: async () => {
      const r = answers.shift()!;
      trace.push(`run ${r}`);
      return r;
    },
    keep: (r: string, why: string | undefined) => trace.push(`keep ${r}${why ? ` (${why})` : ''}`),
  });

  it('pre-warm runs once and is never kept; a rejected run is measured again while retries last, then kept with why', async () => {
    const trace: string[] = [];
    const log: string[] = [];
    const res = await runSteps([step('warm', 0, ['w!'], trace), step('a', 1, ['a1!', 'a2'], trace), step('b', 1, ['b1!', 'b2!', 'b3'], trace)], settings, quiet, judge, (l) => log.push(l));
    expect(trace).to.deep.equal(['run w!', 'run a1!', 'run a2', 'keep a2', 'run b1!', 'run b2!', 'keep b2! (disturbed)']);
    expect(res.discarded).to.deep.equal([
      { r: 'a1!', why: 'disturbed' },
      { r: 'b1!', why: 'disturbed' },
    ]);
    expect(log).to.deep.equal(['warm: w! (not measured)', 'a: a1!: disturbed; measuring again', 'a: a2', 'b: b1!: disturbed; measuring again', 'b: b2!: disturbed; kept (no retry or time left)']);
    expect(res.waitedS).to.equal(0);
  });

  it('no retry when the spare time cannot hold another run of the step; a run past the deadline is refused before it starts', async () => {
    const trace: string[] = [];
    // 1000 s deadline: the step needs 900 s, so the 10 % reserve leaves less than another 900 s run
    await runSteps([step('long', 1, ['x!'], trace, 900)], settings, quiet, judge);
    expect(trace).to.deep.equal(['run x!', 'keep x! (disturbed)']);
    const late = await runSteps([step('a', 1, ['a'], [], 600), step('b', 1, ['b'], [], 600)], settings, quiet, judge).then(() => '', (e: Error) => e.message);
    expect(late).to.match(/^test load: a would end after the run's 1000 s deadline \([\d.]+ s spent, 2 runs left\): fewer steps$/);
  });
});

describe('load: summary of the rounds', () => {
  const s = summarize(PATHS, ROUNDS, DEFAULT_SETTINGS, skippedPaths(PATH_CATALOG, new Set([BASELINE, 'istio-mtls', 'istio-permissive-plaintext'])), (p) => `${p.target}/bytes/1024`);
  const mtls = s.paths.find((p) => p.id === 'istio-mtls')!;
  const base = s.paths.find((p) => p.id === BASELINE)!;

  it('takes each ratio against the baseline of the same round; median and spread over the rounds', () => {
    expect(mtls.metrics.rps_ratio.rounds).to.deep.equal([0.2, 0.2, 0.22]);
    expect(mtls.metrics.rps_ratio.median).to.equal(0.2);
    expect(mtls.metrics.rps_ratio.spread).to.equal(0.1);
    expect(mtls.metrics.p99_added_ms.rounds).to.deep.equal([3, 2, 3]);
    expect(mtls.metrics.rps.median).to.equal(4400);
  });

  it('costs per 1000 requests: the data plane (both sidecars) apart from the app and the client', () => {
    // round 1: 3.2 vCPU-s of sidecars over 16000 requests
    expect(mtls.metrics.cpu_per_1k_req.rounds).to.deep.equal([0.2, 0.2, 0.2]);
    expect(mtls.metrics.app_cpu_per_1k_req.rounds).to.deep.equal([0.05, 0.045, 0.0455]);
    expect(mtls.metrics.client_cpu_per_1k_req.rounds).to.deep.equal([0.05, 0.04, 0.0455]);
    expect(mtls.metrics.rss_mb.rounds).to.deep.equal([59, 59, 59]);
    expect(mtls.roles.map((r) => [r.role, r.cpu_per_1k_req.median, r.cpu_util.median])).to.deep.equal([
      ['client-sidecar', 0.1, 0.44],
      ['server-sidecar', 0.1, 0.44],
      ['server-app', 0.0455, 0.2],
    ]);
    expect(base.metrics.cpu_per_1k_req.rounds).to.deep.equal([0, 0, 0]);
    expect(base.metrics.rss_mb.median).to.equal(0);
  });

  it('names the bottleneck and warns: load-generator ceiling, client saturated, disturbed rounds, spread', () => {
    expect(base.limitedBy).to.equal('client'); // autocannon at 0.9 CPU
    expect(mtls.limitedBy).to.equal('latency');
    expect(bottleneckOf({ metrics: { ...mtls.metrics, client_cpu_util: { rounds: [], median: 0.1, spread: 0 } }, roles: [{ ...mtls.roles[0]!, cpu_util: { rounds: [], median: 0.95, spread: 0 } }] }, 2)).to.equal('dataplane');
    expect(s.ceiling!.ratio.rounds).to.deep.equal([0.5, 1, 0.5]);
    expect(s.warnings.join('\n')).to.match(/load-generator ceiling: on the baseline autocannon reached 20000 req\/s where wrk reached 40000 \(autocannon\/wrk 0\.50\)/);
    expect(s.warnings.join('\n')).to.match(/baseline: the client is saturated \(autocannon used 0\.90 CPU\)/);
    expect(base.disturbedRounds).to.deep.equal([3]);
    expect(s.warnings.join('\n')).to.match(/baseline: other processes on the machine used 0\.50 CPUs during round\(s\) 3: those figures are disturbed/);
    expect(s.warnings.join('\n')).to.not.match(/istio-mtls: the rps ratio spreads/); // 10.0% is within the target
    expect(s.skipped.map((x) => [x.id, x.reason])).to.deep.equal([
      ['cf-tcp-router', 'cf: no load bed for this profile yet'],
      ['c2c-egress', 'c2c: no load bed for this profile yet'],
    ]);
    expect(skippedTests(s.skipped)).to.deep.equal([
      { profile: 'cf', suite: 'throughput-budget', scenario: '(d) cf-tcp-router', reason: 'cf: no load bed for this profile yet' },
      { profile: 'c2c', suite: 'throughput-budget', scenario: '(e) c2c-egress', reason: 'c2c: no load bed for this profile yet' },
    ]);
    expect(renderTable(s)).to.match(/^\(b\) istio-mtls +4400 \[/m);
  });

  it('draws one bar per round for the path and the baseline, the median, and the closed-loop ratio budget', () => {
    const budgets = checkBudgets({ 'istio-mtls': { rps_ratio_min: 0.3 } }, [], s);
    expect(budgets.map(describeBudget)).to.deep.equal(['istio-mtls closed-loop rps_ratio_min: 0.2 x baseline (closed loop) (limit 0.3; rounds 0.2, 0.2, 0.22) BROKEN']);
    const svg = renderPathChart(mtls, base, budgets);
    const count = (re: RegExp) => (svg.match(re) ?? []).length;
    expect(svg).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="budget-chart" data-path="istio-mtls" data-budgets-met="0" data-budgets="1"/);
    expect(count(/class="bar path"/g)).to.equal(4 * 3); // four panels, three rounds
    expect(count(/class="bar baseline"/g)).to.equal(2 * 3); // req/s and p99 beside the baseline
    expect(count(/class="median"/g)).to.equal(4);
    expect(count(/class="limit"/g)).to.equal(1);
    expect(svg).to.include('stroke="#cf222e" stroke-width="1.5" stroke-dasharray'); // the broken rps budget
    expect(svg).to.include('data-round="2" data-value="5000"');
    expect(count(/class="disturbed"/g)).to.equal(4); // round 3 of the baseline, marked in each panel
    const plain = renderPathChart(base, undefined, []);
    expect((plain.match(/class="bar path"/g) ?? []).length).to.equal(12);
    expect(plain).to.not.include('class="bar baseline"');
    expect(plain).to.include('no budgets');
  });
});

describe('load: results.json and the load workload', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-load-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses its command line; bad flags are usage errors', () => {
    expect(parseLoadArgs(['--url', 'http://echo:8080/bytes/1024', '--await-signal', '25', '--warmup', '1'])).to.deep.equal({
      url: 'http://echo:8080/bytes/1024',
      connections: 8,
      pipelining: 1,
      durationS: 3,
      warmupS: 1,
      maxRequests: 5_000_000,
      timeoutS: 10,
      awaitSignalS: 25,
    });
    expect(parseLoadArgs(['--url', 'http://echo:8080/'])).to.not.have.property('awaitSignalS');
    expect(() => parseLoadArgs([])).to.throw(UserError, /--url is required/);
    expect(() => parseLoadArgs(['--url', 'http://x/', '--connections', '0'])).to.throw(UserError, /--connections must be an integer 1-1000/);
    expect(() => parseLoadArgs(['--url', 'http://x/', '--await-signal', '0'])).to.throw(UserError, /--await-signal must be an integer 1-600/);
    // the harness samples the path's containers itself (Cluster.sample): the workload watches no pid
    expect(() => parseLoadArgs(['--url', 'http://x/', '--watch', '12'])).to.throw(UserError, /unknown flag --watch/);
  });

  it('--proxy: connections to the proxy, the target in absolute-form with its own Host (plain http:// only)', () => {
    const a = parseLoadArgs(['--url', 'http://backend.apps.internal:62443/bytes/1024', '--proxy', '127.0.0.1:61445']);
    expect(a.proxy).to.equal('127.0.0.1:61445');
    expect(cannonTarget(a)).to.deep.equal({
      url: 'http://127.0.0.1:61445',
      requests: [{ method: 'GET', path: 'http://backend.apps.internal:62443/bytes/1024', headers: { host: 'backend.apps.internal:62443' } }],
    });
    expect(cannonTarget({ url: 'http://echo:8080/bytes/1' })).to.deep.equal({ url: 'http://echo:8080/bytes/1' });
    expect(() => parseLoadArgs(['--url', 'http://x/', '--proxy', '127.0.0.1'])).to.throw(UserError, /--proxy takes host:port/);
    expect(() => parseLoadArgs(['--url', 'http://x/', '--proxy', 'p:99999'])).to.throw(UserError, /--proxy takes host:port/);
    expect(() => parseLoadArgs(['--url', 'https://x/', '--proxy', 'p:3128'])).to.throw(UserError, /only http:\/\/ targets/);
  });

  it('path (e) evidence: the immediate caller in XFCC must be the calling instance, or it throws naming the difference', () => {
    const want = { instanceGuid: 'a1', appGuid: 'app-a', spaceGuid: 'sp', organizationGuid: 'org' };
    const hash = 'ab'.repeat(32);
    const header = (cn: string) => `Hash=${hash};Subject="CN=${cn},OU=app:app-a,OU=space:sp,OU=organization:org";URI=;DNS=${cn}`;
    expect(xfccCallerEvidence(header('a1'), want)).to.equal(`xfcc CN=a1 app:app-a Hash=${hash.slice(0, 12)}…`);
    // an element the caller appended before the server's: the server's (last) one counts
    expect(xfccCallerEvidence(`${header('zz')},${header('a1')}`, want)).to.match(/^xfcc CN=a1 /);
    expect(() => xfccCallerEvidence(header('b1'), want)).to.throw(/names another caller \(instanceGuid b1 ≠ a1\)/);
    expect(() => xfccCallerEvidence(undefined, want)).to.throw(/no X-Forwarded-Client-Cert reached the server app/);
    expect(() => xfccCallerEvidence('', want)).to.throw(/no X-Forwarded-Client-Cert/);
    expect(() => xfccCallerEvidence(`Hash=${hash};Subject="CN=a1"`, want)).to.throw(/carries no CF instance identity/);
  });
});
