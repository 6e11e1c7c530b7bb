// throughput-budget: what each data-plane path costs, in the units Istio publishes (issue 16), measured side by side
// in one run on the real data planes: fortio (Istio's load tool) at a fixed rate (fixtures/budgets.yaml: 1000 req/s,
// 1 KB responses, Istio's connection counts), rounds interleaved over (a) direct plaintext, (b) Istio sidecars with
// mTLS, (c) Istio sidecars PERMISSIVE + DestinationRule DISABLE, (d) CF client → tcp-router (HAProxy TLS,
// verifyhost) → Diego Envoy → app, (e) C2C app → egress proxy 127.0.0.1:61445 → 62443 (mTLS) → app; per path the
// latency added over the baseline (p50/p90/p99), vCPU per 1000 req/s and RSS of each data-plane process; the
// closed-loop maximum (autocannon) as a secondary ratio. The Istio paths run on the run's control plane.
//
// Under `meshproof run` the file's full settings run and its budgets decide the run (results.json `budgets`: a
// broken median fails it, with the figures). In npm test (`smoke:` settings) a noisy machine must not flip CI: the
// suite proves every path at the fixed rate, records the figures, and checks the gate itself with hand-written
// budgets (fixtures/istio/load/gate/budgets-{impossible,huge}.yaml) on the figures it measured.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { checkBudgets, describeBudget, loadBudgets } from '../src/harness/load/budgets.ts';
import { runBudgets, type BudgetRun } from '../src/harness/load/index.ts';
import { renderRateTable, renderTable, type WithLoadRuns } from '../src/harness/load/report.ts';
import { RESULTS_DIR_ENV } from '../src/harness/report/results.ts';
import { substrateOfRun } from '../src/harness/substrate/index.ts';

const SUITE = 'throughput-budget';
/** The run's substrate, which every row must name. */
const SUBSTRATE = substrateOfRun();
const PATHS = ['baseline', 'istio-mtls', 'istio-permissive-plaintext', 'cf-tcp-router', 'c2c-egress'];
/** Each path's data-plane processes, by role (hand-written from the beds' descriptions). */
const DATA_PLANE: Record<string, string[]> = {
  baseline: [],
  'istio-mtls': ['client-sidecar', 'server-sidecar'],
  'istio-permissive-plaintext': ['client-sidecar', 'server-sidecar'],
  'cf-tcp-router': ['tcp-router', 'server-sidecar'],
  'c2c-egress': ['egress-proxy', 'server-sidecar'],
};

describe(`${SUITE}: Istio's units — fortio at a fixed rate through every path, budgets on the medians (real Envoy, HAProxy)`, function () {
  // the run bounds itself (deadlines, per-run timeouts); this is only a backstop
  this.timeout(900_000);
  const gate = process.env[RESULTS_DIR_ENV] !== undefined;
  let run: BudgetRun;

  before(async () => {
    run = await runBudgets({ smoke: !gate, log: (l) => console.log(`    ${l}`) });
    const indent = (t: string) => t.replace(/\n/g, '\n    ');
    const substrates = [...new Set(run.rate.rows.map((r) => r.substrate))].join(', ');
    console.log(`\n    ${SUITE}: ${run.runDir} (${run.seconds.toFixed(1)} s, ${gate ? 'gate' : 'smoke'} settings, on ${substrates})\n    ${indent(renderRateTable(run.rate, run.budgets))}\n`);
    if (run.summary) console.log(`    closed-loop maximum (secondary):\n    ${indent(renderTable(run.summary))}\n`);
  });

  it('proves (a) baseline, (b) istio-mtls, (c) istio-permissive-plaintext, (d) cf-tcp-router and (e) c2c-egress on a request before the load', () => {
    const v = run.verified;
    expect(Object.keys(v)).to.deep.equal(PATHS);
    expect(v.baseline).to.match(/^allowed:plaintext /);
    expect(v['istio-mtls']).to.match(/^allowed:mtls xfcc URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep /);
    expect(v['istio-permissive-plaintext']).to.match(/^allowed:plaintext /);
    expect(v['cf-tcp-router']).to.match(/^200 via HAProxy backend_1024\/server_\S+_61001 \(ssl verify required, verifyhost 6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718291\), ssl_err=-$/);
    expect(v['c2c-egress']).to.match(/^200 via 127\.0\.0\.1:61445 → backend\.apps\.internal:62443, xfcc CN=0c1d2e3f-4a5b-4c6d-8e7f-00000000a101 app:0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c401 Hash=[0-9a-f]{12}…, served by backend-0$/);
  });

  it('labels every figure with the substrate the run chose (meshproof run --substrate)', () => {
    expect(run.rate.rows.map((r) => `${r.path} c=${r.connections} ${r.substrate}`)).to.deep.equal(run.rate.rows.map((r) => `${r.path} c=${r.connections} ${SUBSTRATE}`));
    expect(run.rate.rows.length).to.be.above(0);
  });

  it('holds the fixed rate on every path and connection count: every round at ≥ 0.95 × the rate, every call answered 2xx', () => {
    const s = run.rate.settings;
    expect(s.rate).to.equal(1000);
    expect(s.payloadBytes).to.equal(1024);
    const rows = run.rate.rows;
    expect(rows.map((r) => `${r.path} c=${r.connections}`)).to.deep.equal(PATHS.flatMap((p) => s.connections.map((c) => `${p} c=${c}`)));
    for (const r of rows) {
      expect(r.rounds, `${r.path} c=${r.connections} rounds`).to.have.length(s.rounds);
      expect(r.voidRounds, `${r.path} c=${r.connections}: ${r.rounds.map((x) => x.void).filter(Boolean).join('; ')}`).to.deep.equal([]);
      for (const x of r.rounds) expect(x.achievedRps, `${r.path} c=${r.connections} round ${x.round}`).to.be.at.least(0.95 * s.rate);
      expect(r.errors, `${r.path} c=${r.connections} errors`).to.equal(0);
    }
  });

  it("records Istio's units: latency added over the same round's baseline at p50/p90/p99, vCPU per 1000 req/s and RSS of each data-plane process", () => {
    const raw = JSON.parse(readFileSync(run.files.load, 'utf8')) as { raw: { fixedRate: { samples: { path: string; round: number; connections: number; client: string; figures: { latencyMs: Record<'p50' | 'p90' | 'p99', number> } }[] } } };
    const samples = raw.raw.fixedRate.samples;
    let checked = 0;
    for (const r of run.rate.rows) {
      const roles = DATA_PLANE[r.path]!;
      expect(Object.keys(r.vcpuPer1kRps).sort(), `${r.path} data-plane processes`).to.deep.equal([...roles].sort());
      for (const role of roles) {
        // a proxy that carried thousands of requests used CPU and memory
        expect(r.vcpuPer1kRps[role], `${r.path} ${role} vCPU per 1000 req/s`).to.be.above(0);
        expect(r.rssMiB[role], `${r.path} ${role} RSS`).to.be.above(1);
        const proc = r.processes.find((p) => p.role === role)!;
        expect(proc.comm, `${r.path} ${role}`).to.be.oneOf(role === 'tcp-router' ? ['haproxy'] : ['envoy', 'pilot-agent']);
      }
      if (r.path === 'baseline') {
        expect(r.latencyAddedMs).to.equal(null);
        continue;
      }
      // each round's added latency is the path's percentile minus the baseline's, same round, connections, client
      const client = r.path === 'c2c-egress' ? 'std' : 'fast';
      for (const x of r.rounds) {
        const base = samples.find((b) => b.path === 'baseline' && b.round === x.round && b.connections === r.connections && b.client === client)!;
        for (const k of ['p50', 'p90', 'p99'] as const) {
          expect(x.latencyAddedMs![k], `${r.path} round ${x.round} ${k}`).to.be.closeTo(x.latencyMs[k] - base.figures.latencyMs[k], 1e-3);
          checked++;
        }
      }
      expect(r.controlPlane, r.path).to.equal(r.path.startsWith('istio-') ? (process.env.MESHPROOF_CONTROL_PLANE === 'istiod' ? 'istiod' : 'emulated') : r.path === 'cf-tcp-router' ? 'rendered:cf-tcp-router' : 'rendered:c2c');
    }
    expect(checked, 'added-latency figures checked').to.equal(4 * 3 * run.rate.settings.rounds * run.rate.settings.connections.length);
  });

  it('writes the budgets and the figures into results.json, every round into load.json, and a chart per path', () => {
    const results = JSON.parse(readFileSync(run.files.results, 'utf8')) as { budgets?: unknown[] } & WithLoadRuns;
    expect(results.budgets).to.deep.equal(JSON.parse(JSON.stringify(run.budgets)));
    expect(results.loadRuns?.at(-1)?.rows.map((r) => r.path)).to.deep.equal(run.rate.rows.map((r) => r.path));
    expect(existsSync(run.files.load)).to.equal(true);
    const rate = run.files.charts.filter((f) => /\/rate-[^/]+\.svg$/.test(f));
    expect(rate).to.have.length(PATHS.length);
    for (const f of rate) expect(readFileSync(f, 'utf8')).to.match(/^<svg [^>]*class="rate-chart"/);
  });

  it('checks every budget of fixtures/budgets.yaml on the medians and records it with its figures', () => {
    const file = loadBudgets();
    // per row: one per data-plane process for the per-process budgets, one for each other budget
    let want = 0;
    for (const r of run.rate.rows) {
      const b = file.paths[r.path] ?? {};
      const procs = DATA_PLANE[r.path]!.length;
      want += (b.vcpu_per_1k_rps_max !== undefined ? procs : 0) + (b.rss_mib_max !== undefined ? procs : 0);
      want += (['p50_added_ms_max', 'p90_added_ms_max', 'p99_added_ms_max', 'errors_max'] as const).filter((k) => b[k] !== undefined).length;
    }
    if (run.summary) want += run.summary.paths.filter((p) => file.paths[p.id]?.rps_ratio_min !== undefined).length;
    expect(want, 'budgets in fixtures/budgets.yaml').to.be.above(0);
    expect(run.budgets).to.have.length(want);
    for (const b of run.budgets) expect(describeBudget(b)).to.match(/^\S+ (c=\d+|closed-loop) \S+: [-\d.e]+ .+ \(limit [\d.e]+; rounds [-\d., e]+\)( BROKEN)?$/);
    // the verdict is the run's (results.json), not this test's: under `meshproof run` a broken median fails the run
    if (run.failures.length) console.log(`    broken budgets (they fail \`meshproof run\`):\n      ${run.failures.map(describeBudget).join('\n      ')}`);
  });

  it('the gate fails budgets no path can meet and passes budgets every path meets (hand-written budgets, on the measured figures)', () => {
    const impossible = checkBudgets(loadBudgets('fixtures/istio/load/gate/budgets-impossible.yaml').paths, run.rate.rows, run.summary);
    // four paths with a data plane × connection counts × (vCPU and RSS of each of their two processes)
    expect(impossible).to.have.length(4 * run.rate.settings.connections.length * 4);
    expect(impossible.filter((b) => b.pass).map(describeBudget)).to.deep.equal([]);
    const huge = checkBudgets(loadBudgets('fixtures/istio/load/gate/budgets-huge.yaml').paths, run.rate.rows, run.summary);
    // per connection count: baseline errors, and per data-plane path 2 + 2 per-process, 3 added, errors; closed-loop ratios
    expect(huge).to.have.length(run.rate.settings.connections.length * (1 + 4 * 8) + (run.summary ? 4 : 0));
    expect(huge.filter((b) => !b.pass).map(describeBudget)).to.deep.equal([]);
  });
});
