// Shared by the istio-* suites: start the workshop mesh for a truth table, probe every row, pin
// each observed verdict to the hand-written row and to the oracle, print the truth table.
import { expect } from 'chai';
import { IstioMesh } from '../../src/harness/profiles/istio/index.ts';
import { loadTruthTable, type TruthTable } from '../../src/harness/profiles/istio/truth.ts';
import { runTable, scenarioModel, type RowOutcome } from '../../src/harness/matrix/istio.ts';
import { appendResults, truthTable } from '../../src/harness/report/results.ts';

export const table = (name: string): TruthTable => loadTruthTable(`fixtures/istio/truth/${name}.yaml`);

export async function startMesh(t: TruthTable): Promise<IstioMesh> {
  return IstioMesh.start(scenarioModel(t), { log: (l) => console.log(`    ${l}`) });
}

/** Starts the table's mesh before the enclosing describe block's tests and tears it down after them. */
export function useMesh(t: TruthTable): () => IstioMesh {
  let mesh: IstioMesh | undefined;
  before(async () => {
    mesh = await startMesh(t);
  });
  after(async () => mesh?.down());
  return () => {
    if (!mesh) throw new Error(`the mesh for "${t.scenario}" did not start`);
    return mesh;
  };
}

/** Probes the table, records the cells, prints the table, and asserts every row. */
export async function checkTable(mesh: IstioMesh, t: TruthTable, suite: string, path = '/echo'): Promise<RowOutcome[]> {
  const outcomes = await runTable(mesh, t, suite, path);
  appendResults(mesh.cluster.runDir, outcomes.map((o) => o.record));
  console.log(truthTable(`\n    ${suite}: ${t.scenario}`, outcomes.map((o) => o.record)).replace(/\n/g, '\n    '));
  for (const o of outcomes) {
    const cell = `${o.row.from} → ${o.row.to}${o.row.subset ? `/${o.row.subset}` : ''}:${o.row.port}`;
    expect(o.oracle, `${cell}: the oracle disagrees with the hand-written table`).to.equal(o.row.verdict);
    expect(o.result.verdict, `${cell}: ${JSON.stringify(o.result.evidence)}`).to.equal(o.row.verdict);
  }
  return outcomes;
}

export function find(outcomes: RowOutcome[], from: string, to: string, subset?: string, port?: number): RowOutcome {
  const o = outcomes.find((x) => x.row.from === from && x.row.to === to && x.row.subset === subset && (port === undefined || x.row.port === port));
  if (!o) throw new Error(`no row ${from} → ${to}${subset ? `/${subset}` : ''}${port ? `:${port}` : ''} in the table`);
  return o;
}
