// throughput-budget: what mTLS costs on each path, measured side by side in one run on the real
// data planes (issue 6). Paths (a) direct plaintext, (b) Istio sidecars with mTLS, (c) Istio
// sidecars PERMISSIVE + DestinationRule DISABLE (plaintext through both) run on one mesh
// (fixtures/istio/load); (d) CF client → tcp-router (HAProxy TLS, verifyhost) → Diego Envoy → app
// on the CF profile (fixtures/cf/load); all in ≥ 3 interleaved rounds. (e) C2C is reported as
// skipped while no load bed starts it. Budgets: fixtures/budgets.yaml, checked on the medians of the
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

  it('measures (a) baseline, (b) istio-mtls, (c) istio-permissive-plaintext and (d) cf-tcp-router, each proven on a request before the load', () => {
    const ids = run.summary.paths.map((p) => p.id);
    expect(ids).to.deep.equal(['baseline', 'istio-mtls', 'istio-permissive-plaintext', 'cf-tcp-router']);
    const byId = Object.fromEntries(run.summary.paths.map((p) => [p.id, p]));
    expect(byId.baseline!.verified).to.match(/^allowed:plaintext /);
    expect(byId['istio-mtls']!.verified).to.match(/^allowed:mtls xfcc URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep /);
    expect(byId['istio-permissive-plaintext']!.verified).to.match(/^allowed:plaintext /);
    expect(byId['cf-tcp-router']!.verified).to.match(/^200 via HAProxy backend_1024\/server_\S+_61001 \(ssl verify required, verifyhost 6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718291\), ssl_err=-$/);
    for (const p of run.summary.paths) {
      expect(p.metrics.rps.rounds, `${p.id} rounds`).to.have.length(run.summary.settings.rounds);
      for (const r of p.roles) expect(r.comm, `${p.id} ${r.role}`).to.equal(r.kind === 'app' ? 'node' : r.role === 'tcp-router' ? 'haproxy' : 'envoy');
    }
  });

  it('reports (e) C2C as skipped while no load bed starts it', () => {
    expect(run.summary.skipped.map((s) => `${s.letter} ${s.id}`)).to.deep.equal(['e c2c-egress']);
    const results = JSON.parse(readFileSync(run.files.results, 'utf8')) as { skipped?: { suite: string; scenario: string; reason: string }[] };
    expect(results.skipped?.filter((s) => s.suite === SUITE).map((s) => s.scenario)).to.deep.equal(['(e) c2c-egress']);
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
