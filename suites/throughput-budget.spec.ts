// throughput-budget: what mTLS costs on each path, measured side by side in one run on the real
// data planes (issue 6). Paths (a) direct plaintext, (b) Istio sidecars with mTLS, (c) Istio
// sidecars PERMISSIVE + DestinationRule DISABLE (plaintext through both) run on one mesh
// (fixtures/istio/load); (d) CF client → tcp-router (HAProxy TLS, verifyhost) → Diego Envoy → app
// on the CF profile (fixtures/cf/load/apps.yaml); (e) C2C app A → its egress proxy 127.0.0.1:61445
// (absolute-form) → B.apps.internal:62443 (mTLS, XFCC) → B's app (fixtures/cf/load/c2c.yaml); all in
// ≥ 3 interleaved rounds. Budgets: fixtures/budgets.yaml, checked on the medians of the
// rounds; a broken budget fails with the figures. Results: reports/<run>/results.json
// (`budgets`, `skipped`), load.json, budget-<path>.svg.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { runBudgets, type BudgetRun } from '../src/harness/load/index.ts';
import { describeBudget } from '../src/harness/load/budgets.ts';
import { renderTable } from '../src/harness/load/report.ts';

const SUITE = 'throughput-budget';

describe(`${SUITE}: mTLS cost per path, interleaved rounds, budgets on the medians (real Envoy)`, function () {
  // the run bounds itself (load.deadline_s, per-run timeouts); this is only a backstop
  this.timeout(180_000);
  let run: BudgetRun;

  before(async () => {
    run = await runBudgets({ log: (l) => console.log(`    ${l}`) });
    console.log(`\n    ${SUITE}: ${run.runDir} (${run.seconds.toFixed(1)} s)\n    ${renderTable(run.summary, run.budgets).replace(/\n/g, '\n    ')}\n`);
  });

  it('measures (a) baseline, (b) istio-mtls, (c) istio-permissive-plaintext, (d) cf-tcp-router and (e) c2c-egress, each proven on a request before the load', () => {
    const ids = run.summary.paths.map((p) => p.id);
    expect(ids).to.deep.equal(['baseline', 'istio-mtls', 'istio-permissive-plaintext', 'cf-tcp-router', 'c2c-egress']);
    const byId = Object.fromEntries(run.summary.paths.map((p) => [p.id, p]));
    expect(byId.baseline!.verified).to.match(/^allowed:plaintext /);
    expect(byId['istio-mtls']!.verified).to.match(/^allowed:mtls xfcc URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep /);
    expect(byId['istio-permissive-plaintext']!.verified).to.match(/^allowed:plaintext /);
    expect(byId['cf-tcp-router']!.verified).to.match(/^200 via HAProxy backend_1024\/server_\S+_61001 \(ssl verify required, verifyhost 6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718291\), ssl_err=-$/);
    expect(byId['c2c-egress']!.verified).to.match(/^200 via 127\.0\.0\.1:61445 → backend\.apps\.internal:62443, xfcc CN=0c1d2e3f-4a5b-4c6d-8e7f-00000000a101 app:0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c401 Hash=[0-9a-f]{12}…, served by backend-0$/);
    for (const p of run.summary.paths) {
      expect(p.metrics.rps.rounds, `${p.id} rounds`).to.have.length(run.summary.settings.rounds);
      for (const r of p.roles) expect(r.comm, `${p.id} ${r.role}`).to.equal(r.kind === 'app' ? 'node' : r.role === 'tcp-router' ? 'haproxy' : 'envoy');
    }
  });

  it('skips no path: every catalog path has a bed', () => {
    expect(run.summary.skipped).to.deep.equal([]);
    const results = JSON.parse(readFileSync(run.files.results, 'utf8')) as { skipped?: { suite: string; scenario: string; reason: string }[] };
    expect(results.skipped?.filter((s) => s.suite === SUITE) ?? []).to.deep.equal([]);
  });

  it('writes the budgets into results.json, every figure into load.json and a chart per path', () => {
    const results = JSON.parse(readFileSync(run.files.results, 'utf8')) as { budgets?: unknown[] };
    expect(results.budgets).to.deep.equal(JSON.parse(JSON.stringify(run.budgets)));
    expect(existsSync(run.files.load)).to.equal(true);
    expect(run.files.charts).to.have.length(run.summary.paths.length);
    for (const f of run.files.charts) expect(readFileSync(f, 'utf8')).to.match(/^<svg [^>]*class="budget-chart"/);
  });

  it('every budget in fixtures/budgets.yaml holds on the median of the rounds', () => {
    expect(run.budgets.length, 'budgets checked').to.be.above(0);
    const broken = run.failures.map(describeBudget);
    const context = `\n${renderTable(run.summary, run.budgets)}`;
    expect(broken, `broken budgets:\n${broken.join('\n')}${context}`).to.deep.equal([]);
  });
});
