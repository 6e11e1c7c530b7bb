// throughput-budget: what mTLS costs on each path, measured side by side in one run on the real
// data planes (issue 6). Paths (a) direct plaintext, (b) Istio sidecars with mTLS, (c) Istio
// sidecars PERMISSIVE + DestinationRule DISABLE (plaintext through both) run on one mesh
// (fixtures/istio/load), in ≥ 3 interleaved rounds; (d) CF and (e) C2C are reported as skipped
// until their profiles exist. Budgets: fixtures/budgets.yaml, checked on the medians of the
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

  it('measures (a) baseline, (b) istio-mtls and (c) istio-permissive-plaintext, each proven on a request before the load', () => {
    const ids = run.summary.paths.map((p) => p.id);
    expect(ids).to.deep.equal(['baseline', 'istio-mtls', 'istio-permissive-plaintext']);
    const byId = Object.fromEntries(run.summary.paths.map((p) => [p.id, p]));
    expect(byId.baseline!.verified).to.match(/^allowed:plaintext /);
    expect(byId['istio-mtls']!.verified).to.match(/^allowed:mtls xfcc URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep /);
    expect(byId['istio-permissive-plaintext']!.verified).to.match(/^allowed:plaintext /);
    for (const p of run.summary.paths) {
      expect(p.metrics.rps.rounds, `${p.id} rounds`).to.have.length(run.summary.settings.rounds);
      for (const r of p.roles) expect(r.comm, `${p.id} ${r.role}`).to.equal(r.kind === 'dataplane' ? 'envoy' : 'node');
    }
  });

  it('reports (d) CF and (e) C2C as skipped while no load bed starts them', () => {
    expect(run.summary.skipped.map((s) => `${s.letter} ${s.id}`)).to.deep.equal(['d cf-tcp-router', 'e c2c-egress']);
    const results = JSON.parse(readFileSync(run.files.results, 'utf8')) as { skipped?: { suite: string; scenario: string; reason: string }[] };
    expect(results.skipped?.filter((s) => s.suite === SUITE).map((s) => s.scenario)).to.deep.equal(['(d) cf-tcp-router', '(e) c2c-egress']);
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
