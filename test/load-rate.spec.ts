// The fixed-rate (Istio's units) machinery without a mesh: fortio's JSON (real output of fortio 1.68.2, trimmed),
// its command line, the summary of rounds in Istio's units (hand-written samples), the gate on hand-written budgets
// (including fixtures/istio/load/gate/), the chart, the report files, and the spawn-free fortio check of doctor.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/harness/model/errors.ts';
import { checkFortio, FORTIO, fortioPaths, resolveFortio } from '../src/harness/cli/provision-fortio.ts';
import { checkBudgets, describeBudget, loadBudgets, parseBudgets } from '../src/harness/load/budgets.ts';
import { renderRateChart } from '../src/harness/load/chart.ts';
import { DEFAULT_FIXED_RATE, fortioArgs, parseFortio, rateNotHeld, type FixedRateResult, type FortioFigures, type RateSample } from '../src/harness/load/fortio.ts';
import { BASELINE, PATH_CATALOG, type LoadPath } from '../src/harness/load/path.ts';
import { summarizeRate } from '../src/harness/load/rate-summary.ts';
import { loadRunRecord, renderRateTable, writeLoadReport, type WithLoadRuns } from '../src/harness/load/report.ts';
import { renderHtml } from '../src/harness/report/html.ts';
import { renderMarkdown } from '../src/harness/report/markdown.ts';
import type { ResultsFile } from '../src/harness/report/meta.ts';

// fortio 1.68.2 `load -qps 1000 -c 4 -t 2s -json -` against its own echo server (DurationHistogram.Data dropped)
const FORTIO_OK = `{
 "RunType": "HTTP", "Labels": "127.0.0.1:18080/echo?size=1024 , vm", "RequestedQPS": "1000", "RequestedDuration": "2s",
 "ActualQPS": 999.5588192263847, "ActualDuration": 2000882751, "NumThreads": 4, "Version": "1.68.2",
 "DurationHistogram": { "Count": 2000, "Min": 2.3677e-05, "Max": 0.005606139, "Sum": 0.527362865, "Avg": 0.0002636814325, "StdDev": 0.0002848383780696,
  "Percentiles": [ { "Percentile": 50, "Value": 0.00023920863309352517 }, { "Percentile": 75, "Value": 0.00029880952380952384 },
   { "Percentile": 90, "Value": 0.0003681818181818182 }, { "Percentile": 99, "Value": 0.0008 }, { "Percentile": 99.9, "Value": 0.005 } ] },
 "ErrorsDurationHistogram": { "Count": 0, "Min": 0, "Max": 0, "Sum": 0, "Avg": 0, "StdDev": 0 },
 "RetCodes": { "200": 2000 }, "URL": "http://127.0.0.1:18080/echo?size=1024", "NumConnections": 1,
 "Sizes": { "Count": 2000, "Min": 1142, "Max": 1142, "Sum": 2284000, "Avg": 1142, "StdDev": 0 }, "SocketCount": 4
}
`;

// fortio 1.68.2 `load -qps 100 -c 2 -t 1s -p 50,90,99` against `echo?status=503:20&size=64`: 20 of 100 answered 503
const FORTIO_503 = `{ "RequestedQPS": "100", "ActualQPS": 99.85178121418704, "ActualDuration": 1001484388, "NumThreads": 2, "Version": "1.68.2",
 "DurationHistogram": { "Count": 100, "Avg": 0.0003782818, "Max": 0.000847241, "Percentiles": [ { "Percentile": 50, "Value": 0.00046966877777777775 },
  { "Percentile": 90, "Value": 0.0007717265555555556 }, { "Percentile": 99, "Value": 0.0008396895555555556 } ] },
 "ErrorsDurationHistogram": { "Count": 20 }, "RetCodes": { "200": 80, "503": 20 }, "Sizes": { "Avg": 183.4 } }`;

describe('load rate: fortio', () => {
  it("reads fortio's -json result: ActualQPS, RequestedQPS, the histogram's count and percentiles (seconds → ms), RetCodes", () => {
    const f = parseFortio(`Fortio 1.68.2 running at 1000 queries per second\n${FORTIO_OK}`);
    expect(f).to.deep.equal({
      tool: 'fortio',
      version: '1.68.2',
      client: 'fast',
      url: 'http://127.0.0.1:18080/echo?size=1024',
      connections: 4,
      requestedRps: 1000,
      achievedRps: 999.6,
      durationS: 2.001,
      requests: 2000,
      latencyMs: { p50: 0.2392, p90: 0.3682, p99: 0.8, avg: 0.2637, max: 5.6061 },
      errors: 0,
      retCodes: { 200: 2000 },
      responseBytes: 1142,
    });
    const e = parseFortio(FORTIO_503, 'std');
    expect([e.errors, e.requests, e.client, e.requestedRps, e.responseBytes]).to.deep.equal([20, 100, 'std', 100, 183]);
    expect(() => parseFortio('Aborting because of lookup error\n')).to.throw(/fortio: no JSON result in its output/);
    expect(() => parseFortio(FORTIO_OK.replace('"Percentile": 90', '"Percentile": 91'))).to.throw(/no p90 in DurationHistogram\.Percentiles \(run it with -p 50,90,99\)/);
  });

  it('a run below 0.95 × the rate is void, with why; at or above it counts', () => {
    expect(rateNotHeld({ achievedRps: 950, requestedRps: 1000 }, 0.95)).to.equal(undefined);
    expect(rateNotHeld({ achievedRps: 949.9, requestedRps: 1000 }, 0.95)).to.equal('fortio reached 950 of 1000 req/s (< 0.95 × the rate): the generator could not hold the rate');
  });

  it("runs Istio's command: -qps, -c, -t, -r, p50/p90/p99, -httpbufferkb 128, -jitter, JSON on stdout; -stdclient for a proxied path", () => {
    const a = fortioArgs(DEFAULT_FIXED_RATE, 'http://echo:8080/bytes/1024', 4, 5, 'fast');
    expect(a).to.deep.equal(['load', '-qps', '1000', '-c', '4', '-t', '5s', '-r', '0.00005', '-p', '50,90,99', '-httpbufferkb', '128', '-timeout', '5s', '-jitter', '-loglevel', 'Warning', '-json', '-', 'http://echo:8080/bytes/1024']);
    const b = fortioArgs({ ...DEFAULT_FIXED_RATE, jitter: false }, 'http://b:62443/bytes/1024', 16, 2, 'std');
    expect(b).to.include('-stdclient').and.not.include('-jitter');
    expect(b.slice(0, 7)).to.deep.equal(['load', '-qps', '1000', '-c', '16', '-t', '2s']);
  });
});

// ---------------------------------------------------------------------------------------------
// Two rounds of baseline (fast and net/http client), istio-mtls and c2c-egress, hand-written

function figures(p50: number, p90: number, p99: number, extra: Partial<FortioFigures> = {}): FortioFigures {
  return { tool: 'fortio', version: '1.68.2', client: 'fast', url: 'u', connections: 4, requestedRps: 1000, achievedRps: 1000, durationS: 4, requests: 4000, latencyMs: { p50, p90, p99, avg: p50, max: p99 * 2 }, errors: 0, retCodes: { 200: 4000 }, responseBytes: 1142, ...extra };
}

function lpath(id: string, procs: LoadPath['procs'], extra: Partial<LoadPath> = {}): LoadPath {
  const c = PATH_CATALOG.find((x) => x.id === id)!;
  return { id, letter: c.letter, description: c.description, client: 'c', target: `http://${id}:8080`, procs, host: undefined as unknown as LoadPath['host'], verify: async () => 'ok', ...extra };
}

const dp = (pod: string, role: string, container = 'istio-proxy') => ({ role, kind: 'dataplane' as const, pod, container });
const app = (pod: string) => ({ role: 'server-app', kind: 'app' as const, pod, container: 'app' });
const RPATHS = [
  lpath(BASELINE, [app('default/echo-naked')], { controlPlane: 'none' }),
  lpath('istio-mtls', [dp('default/sleep', 'client-sidecar'), dp('default/echo', 'server-sidecar'), app('default/echo')], { controlPlane: 'istiod', istioVersion: '1.28.2' }),
  lpath('c2c-egress', [dp('a', 'egress-proxy', 'envoy'), dp('b', 'server-sidecar', 'envoy'), app('b')], { controlPlane: 'rendered:c2c', proxy: '127.0.0.1:61445' }),
];
const MACHINE = { cpus: 2, wallS: 4, busyS: 3, irqS: 0.5, idleS: 4.5, stealS: 0, foreignS: 0 };

function rs(p: string, round: number, f: FortioFigures, cpu: number[], extra: Partial<RateSample> = {}): RateSample {
  const procs = RPATHS.find((x) => x.id === p)!.procs;
  return {
    path: p,
    round,
    connections: 4,
    client: f.client,
    figures: f,
    costs: procs.map((ref, i) => ({ ...ref, pid: 100 + i, comm: ref.kind === 'app' ? 'node' : 'envoy', cpuS: cpu[i]!, rssMiB: 50 + i, workers: ref.kind === 'app' ? null : 2 })),
    machine: MACHINE,
    others: [],
    ...extra,
  };
}

const RES: FixedRateResult = {
  fortio: { path: '/x/fortio', module: 'fortio.org/fortio', moduleVersion: 'v1.68.2', sha256: 'ab' },
  samples: [
    rs(BASELINE, 1, figures(0.2, 0.3, 0.5), [0.2]),
    rs(BASELINE, 1, figures(0.25, 0.35, 0.6, { client: 'std' }), [0.2]),
    rs('istio-mtls', 1, figures(0.5, 0.8, 1.5), [0.8, 0.72, 0.2]),
    rs('c2c-egress', 1, figures(0.6, 0.95, 2, { client: 'std' }), [0.9, 0.8, 0.2]),
    rs(BASELINE, 2, figures(0.2, 0.32, 0.55), [0.2], { machine: { ...MACHINE, foreignS: 2 } }),
    rs(BASELINE, 2, figures(0.26, 0.36, 0.62, { client: 'std' }), [0.2]),
    rs('istio-mtls', 2, figures(0.52, 0.86, 1.6), [0.84, 0.76, 0.2]),
    // round 2 of c2c fell short of the rate: void, left out of every median
    rs('c2c-egress', 2, figures(3, 9, 20, { client: 'std', achievedRps: 700 }), [0.5, 0.5, 0.1], { void: 'fortio reached 700 of 1000 req/s' }),
  ],
  discarded: [],
  waitedS: 0,
  seconds: 40,
};

const SETTINGS = { ...DEFAULT_FIXED_RATE, rounds: 2 };

describe("load rate: figures in Istio's units", () => {
  const sum = summarizeRate(RPATHS, RES, SETTINGS);
  const row = (id: string) => sum.rows.find((r) => r.path === id)!;

  it('adds latency over the baseline of the same round, connections and client; medians over the rounds that held the rate', () => {
    const m = row('istio-mtls');
    expect(m.rounds.map((r) => r.latencyAddedMs)).to.deep.equal([
      { p50: 0.3, p90: 0.5, p99: 1 },
      { p50: 0.32, p90: 0.54, p99: 1.05 },
    ]);
    expect(m.latencyAddedMs).to.deep.equal({ p50: 0.31, p90: 0.52, p99: 1.025 });
    expect(m.spread.latencyAddedMs!.p90).to.equal(0.0769); // (0.54 − 0.5) / 0.52
    // the proxied path against the baseline measured with Go's net/http client, its void round left out
    const c = row('c2c-egress');
    expect(c.rounds[0]!.latencyAddedMs).to.deep.equal({ p50: 0.35, p90: 0.6, p99: 1.4 });
    expect([c.validRounds, c.voidRounds, c.latencyAddedMs, c.achievedRps]).to.deep.equal([1, [2], { p50: 0.35, p90: 0.6, p99: 1.4 }, 1000]);
    expect(c.generator).to.equal('fortio v1.68.2 -stdclient via HTTP_PROXY=http://127.0.0.1:61445');
    expect(row(BASELINE).latencyAddedMs).to.equal(null);
  });

  it('vCPU per 1000 req/s (CPU seconds per 1000 calls) and RSS of each data-plane process apart, the app apart, workers recorded', () => {
    const m = row('istio-mtls');
    // round 1: 0.8 CPU-s of the client sidecar over 4000 calls = 0.2 per 1000
    expect(m.rounds.map((r) => r.vcpuPer1kRps)).to.deep.equal([
      { 'client-sidecar': 0.2, 'server-sidecar': 0.18, 'server-app': 0.05 },
      { 'client-sidecar': 0.21, 'server-sidecar': 0.19, 'server-app': 0.05 },
    ]);
    expect(m.vcpuPer1kRps).to.deep.equal({ 'client-sidecar': 0.205, 'server-sidecar': 0.185 });
    expect(m.dataplaneVcpuPer1kRps).to.equal(0.39);
    expect(m.appVcpuPer1kRps).to.deep.equal({ 'server-app': 0.05 });
    expect(m.rssMiB).to.deep.equal({ 'client-sidecar': 50, 'server-sidecar': 51 });
    expect(m.spread.vcpuPer1kRps['client-sidecar']).to.equal(0.0488); // 0.01 / 0.205
    expect(m.processes.map((p) => [p.role, p.comm, p.workers])).to.deep.equal([['client-sidecar', 'envoy', 2], ['server-sidecar', 'envoy', 2], ['server-app', 'node', null]]);
    expect([m.controlPlane, m.istioVersion, m.rate, m.connections, m.payloadBytes]).to.deep.equal(['istiod', '1.28.2', 1000, 4, 1024]);
    expect(row(BASELINE).vcpuPer1kRps).to.deep.equal({});
  });

  it('warns of void and disturbed rounds; spreads within 10% are not warned of', () => {
    const w = sum.warnings.join('\n');
    expect(w).to.include('c2c-egress (c=4): round(s) 2 void: fortio reached 700 of 1000 req/s');
    expect(w).to.include('baseline (c=4): other processes used 0.50 CPUs during round(s) 2');
    expect(w).to.not.match(/istio-mtls \(c=4\): .* spreads/);
    expect(sum.warnings).to.have.length(2);
  });

  it('the gate, on hand-written budgets: the median at the limit passes, above it fails, no median fails', () => {
    const budgets = parseBudgets('paths:\n  istio-mtls: { vcpu_per_1k_rps_max: 0.2, p90_added_ms_max: 0.52, p99_added_ms_max: 1 }\n  c2c-egress: { errors_max: 0 }\n').paths;
    const r = checkBudgets(budgets, sum.rows);
    expect(r.map(describeBudget)).to.deep.equal([
      'istio-mtls c=4 vcpu_per_1k_rps_max[client-sidecar]: 0.205 vCPU per 1000 req/s (limit 0.2; rounds 0.2, 0.21) BROKEN',
      'istio-mtls c=4 vcpu_per_1k_rps_max[server-sidecar]: 0.185 vCPU per 1000 req/s (limit 0.2; rounds 0.18, 0.19)',
      'istio-mtls c=4 p90_added_ms_max: 0.52 ms (limit 0.52; rounds 0.5, 0.54)',
      'istio-mtls c=4 p99_added_ms_max: 1.025 ms (limit 1; rounds 1, 1.05) BROKEN',
      'c2c-egress c=4 errors_max: 0 calls (limit 0; rounds 0)',
    ]);
    const none = summarizeRate(RPATHS, { ...RES, samples: RES.samples.map((s) => (s.path === 'istio-mtls' ? { ...s, void: 'short' } : s)) }, SETTINGS);
    const nan = checkBudgets(budgets, none.rows).filter((b) => b.path === 'istio-mtls c=4');
    expect(nan.map((b) => b.pass)).to.deep.equal([false, false, false, false]);
  });

  it('the gate fixtures: no path meets fixtures/istio/load/gate/budgets-impossible.yaml, every path meets budgets-huge.yaml', () => {
    const impossible = checkBudgets(loadBudgets('fixtures/istio/load/gate/budgets-impossible.yaml').paths, sum.rows);
    // two paths with a data plane here: vCPU and RSS of each of their two processes
    expect(impossible).to.have.length(2 * 4);
    expect(impossible.filter((b) => b.pass)).to.deep.equal([]);
    const huge = checkBudgets(loadBudgets('fixtures/istio/load/gate/budgets-huge.yaml').paths, sum.rows);
    expect(huge).to.have.length(1 + 2 * 8);
    expect(huge.filter((b) => !b.pass).map(describeBudget)).to.deep.equal([]);
  });

  it("charts a path: p90 and p99 added, vCPU and RSS per process, a bar per round, the budgets, Istio's figures with their versions", () => {
    const budgets = checkBudgets(parseBudgets('paths:\n  istio-mtls: { vcpu_per_1k_rps_max: 0.2, p90_added_ms_max: 1 }\n').paths, sum.rows);
    const svg = renderRateChart([row('istio-mtls')], budgets);
    const count = (re: RegExp) => (svg.match(re) ?? []).length;
    expect(svg).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="rate-chart" data-path="istio-mtls" data-budgets-met="2" data-budgets="3"/);
    expect(count(/<rect class="bar"/g)).to.equal(2 + 2 + 2 * 2 + 2 * 2); // rounds × (p90, p99, 2 processes' vCPU, 2 processes' RSS)
    expect(count(/class="median"/g)).to.equal(1 + 1 + 2 + 2);
    expect(count(/class="istio-ref"/g)).to.equal(4);
    expect(svg).to.include('Istio 1.20: 0.228 ms').and.include('Istio 1.20: 0.298 ms').and.include('Istio 1.24: ~0.20 per sidecar').and.include('Istio 1.24: ~60 MB per sidecar');
    expect(count(/class="limit"/g)).to.equal(2);
    expect(svg).to.include('control plane istiod 1.28.2');
    const base = renderRateChart([row(BASELINE)], []);
    expect(base).to.include('p90 latency (ms)').and.not.include('istio-ref');
  });

  it('the console table: a row per path and connection count, each data-plane process, and Istio\'s published figures', () => {
    const t = renderRateTable(sum, []);
    expect(t).to.match(/^\(b\) istio-mtls +istiod 1\.28\.2 +4 +2\/2 +1000\/1000 /m);
    expect(t).to.include('istio-mtls c=4 client-sidecar (envoy, 2 workers): 0.205 vCPU per 1000 req/s [4.9%], 50.0 MiB');
    expect(t).to.include('Istio 1.20: p90 added (client + server sidecar) 0.228 ms');
    expect(t).to.include('Istio 1.24: vCPU per sidecar at 1000 req/s 0.2 vCPU');
  });
});

describe("load rate: summary.md and report.html in Istio's units", () => {
  const file: ResultsFile & WithLoadRuns = { records: [], loadRuns: [loadRunRecord('/r', summarizeRate(RPATHS, RES, SETTINGS))] };

  it("summary.md: a row per path and connection count with its control plane, beside Istio's figures and their versions", () => {
    const md = renderMarkdown(file);
    const section = md.slice(md.indexOf("## Throughput in Istio's units"));
    const rows = section.split('\n').filter((l) => /^\| \([a-e]\) /.test(l));
    expect(rows).to.have.length(3);
    expect(rows[1]).to.match(/^\| \(b\) istio-mtls \| istiod 1\.28\.2 \| 4 \| 1000\/1000 \| 2\/2 \| 0\.310 \/ 0\.520 \(±7\.7%\) \/ 1\.025 \| client-sidecar 0\.205 \(±4\.9%, 2w\)<br>server-sidecar 0\.185 /);
    expect(rows[1]).to.include('Istio 1.20: +0.228 ms p90, +0.298 ms p99; Istio 1.24: \\~0.20 vCPU, \\~60 MB per sidecar'); // `~` escaped for GFM
    expect(rows[2]).to.match(/^\| \(e\) c2c-egress \| rendered:c2c \| 4 \| 1000\/1000 \| 1\/2 \| 0\.350 \/ 0\.600 /);
    for (const v of ['| Istio 1.24 | vCPU per sidecar at 1000 req/s | 0.2 vCPU |', '| Istio 1.24 | memory per sidecar | 60 MB |', '| Istio 1.20 | p90 added (client + server sidecar) | 0.228 ms |', '| Istio 1.20 | p99 added (client + server sidecar) | 0.298 ms |']) expect(section).to.include(v);
    expect(renderMarkdown({ records: [] })).to.not.include("Istio's units");
  });

  it("report.html: the table, the p90-added and vCPU charts with Istio's reference lines, and Istio's published figures", () => {
    const html = renderHtml(file);
    const count = (re: RegExp) => (html.match(re) ?? []).length;
    expect(count(/<tr data-load-row=/g)).to.equal(3);
    expect(count(/<svg class="load-chart"/g)).to.equal(2);
    expect(count(/<g class="load-bar">/g)).to.equal(2 + 4); // p90 added of (b) and (e); vCPU of their 2 + 2 processes
    expect(count(/class="istio-ref"/g)).to.equal(2);
    expect(count(/<tr data-istio=/g)).to.equal(4);
    expect(html).to.include('Istio 1.20: 0.228 ms').and.include('Istio 1.24: ~0.20 per sidecar');
    expect(renderHtml({ records: [] })).to.not.include('id="load"');
  });
});

describe('load rate: report files and the fortio check', () => {
  let dir: string;
  const xdg = process.env.XDG_CACHE_HOME;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-load-rate-'));
  });
  after(() => {
    if (xdg === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = xdg;
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes results.json (budgets, loadRuns, keeping its records), load.json and a rate chart per path', () => {
    const run = join(dir, 'run');
    mkdirSync(run);
    const rec = { suite: 'x', scenario: 's', from: 'a', to: 'b', port: 80, protocol: 'http', expected: 'allowed', observed: 'allowed', verdict: 'allowed:plaintext', pass: true };
    writeFileSync(join(run, 'results.json'), JSON.stringify({ records: [rec] }));
    const sum = summarizeRate(RPATHS, RES, SETTINGS);
    const budgets = checkBudgets(parseBudgets('paths:\n  istio-mtls: { p90_added_ms_max: 1 }\n').paths, sum.rows);
    const files = writeLoadReport(run, { rate: sum, budgets, skipped: [], verified: { baseline: 'allowed:plaintext' }, raw: { fixedRate: RES } });
    const doc = JSON.parse(readFileSync(files.results, 'utf8')) as { records: unknown[]; budgets: unknown[] } & WithLoadRuns;
    expect(doc.records).to.deep.equal([rec]);
    expect(doc.budgets).to.have.length(1);
    expect(doc.loadRuns?.[0]?.rows.map((r) => r.path)).to.deep.equal([BASELINE, 'istio-mtls', 'c2c-egress']);
    const load = JSON.parse(readFileSync(files.load, 'utf8')) as { fixedRate: { rows: { latencyAddedMs: unknown }[] }; raw: { fixedRate: { samples: unknown[] } } };
    expect(load.fixedRate.rows[1]!.latencyAddedMs).to.deep.equal({ p50: 0.31, p90: 0.52, p99: 1.025 });
    expect(load.raw.fixedRate.samples).to.have.length(8);
    expect(files.charts.map((f) => f.slice(run.length + 1))).to.deep.equal(['rate-baseline.svg', 'rate-istio-mtls.svg', 'rate-c2c-egress.svg']);
  });

  it("doctor's fortio check reads only the file system: not built, built with provenance, changed since", () => {
    process.env.XDG_CACHE_HOME = join(dir, 'cache');
    const p = fortioPaths();
    expect(p.bin).to.equal(join(dir, 'cache', 'meshproof', 'fortio', FORTIO.version, 'bin', 'fortio'));
    expect(checkFortio()).to.deep.equal({ name: 'fortio', ok: false, detail: `${FORTIO.version} not built`, fix: 'run meshproof doctor --fix' });
    expect(() => resolveFortio()).to.throw(UserError, new RegExp(`^fortio ${FORTIO.version} not built: run meshproof doctor --fix$`));
    mkdirSync(p.binDir, { recursive: true });
    writeFileSync(p.bin, 'not really fortio', { mode: 0o755 });
    expect(checkFortio().detail).to.equal(`${FORTIO.version} present without provenance`);
    const st = { size: 17, mtimeMs: 1_700_000_000_000 };
    utimesSync(p.bin, st.mtimeMs / 1000, st.mtimeMs / 1000);
    const prov = { schemaVersion: 1, tool: 'fortio', name: 'fortio', path: p.bin, origin: 'go install', module: FORTIO.module, moduleVersion: FORTIO.version, goVersion: 'go1.26.8', env: {}, sha256: 'x', ...st, builtAt: '', buildSeconds: 1 };
    writeFileSync(p.provenance, JSON.stringify(prov));
    expect(checkFortio()).to.deep.equal({ name: 'fortio', ok: true, version: FORTIO.version.slice(1), detail: p.bin });
    expect(resolveFortio().path).to.equal(p.bin);
    writeFileSync(p.provenance, JSON.stringify({ ...prov, moduleVersion: 'v1.75.3' }));
    expect(checkFortio().detail).to.equal(`${FORTIO.version} built from fortio.org/fortio@v1.75.3, not fortio.org/fortio@${FORTIO.version}`);
    writeFileSync(p.provenance, JSON.stringify(prov));
    utimesSync(p.bin, 1_700_000_100, 1_700_000_100);
    expect(checkFortio().detail).to.equal(`${FORTIO.version} changed since it was built (size or mtime differ from provenance.json)`);
  });
});
