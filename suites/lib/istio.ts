// Shared by the istio-* suites: start the workshop mesh for a truth table, probe every row and
// record it (probeTable: a before() hook may call it, it asserts nothing), then pin each observed
// verdict to the hand-written row and to the oracle (assertTable: called inside an it(), so a
// mismatch fails that test by name instead of skipping its siblings).
import { expect } from 'chai';
import { startMesh as startOnControlPlane } from '../../src/harness/controlplane/index.ts';
import type { Mesh } from '../../src/harness/profiles/istio/mesh.ts';
import type { IstioModel } from '../../src/harness/profiles/istio/resources.ts';
import { loadTruthTable, rowName, type TruthRow, type TruthTable } from '../../src/harness/profiles/istio/truth.ts';
import { runTable, scenarioModel, type RowOutcome } from '../../src/harness/matrix/istio.ts';
import { appendResults, truthTable } from '../../src/harness/report/results.ts';
import { cyclonusTable } from '../../src/harness/report/cyclonus.ts';

export const table = (name: string): TruthTable => loadTruthTable(`fixtures/istio/truth/${name}.yaml`);

/**
 * Starts a mesh for the model on the run's control plane (istiod or the emulation: controlplane/index.ts). On istiod
 * every Istio suite of the run shares one control plane, reset between suites (mesh.down()).
 */
export function startModel(model: IstioModel): Promise<Mesh> {
  return startOnControlPlane(model, { log: (l) => console.log(`    ${l}`), share: true });
}

export async function startMesh(t: TruthTable): Promise<Mesh> {
  return startModel(scenarioModel(t));
}

/** Starts the table's mesh before the enclosing describe block's tests and tears it down after them. */
export function useMesh(t: TruthTable): () => Mesh {
  let mesh: Mesh | undefined;
  before(async () => {
    mesh = await startMesh(t);
  });
  after(async () => mesh?.down());
  return () => {
    if (!mesh) throw new Error(`the mesh for "${t.scenario}" did not start`);
    return mesh;
  };
}

/** Probes every row of the table, records the cells and prints the table. Asserts nothing. */
export async function probeTable(mesh: Mesh, t: TruthTable, suite: string, path = '/echo'): Promise<RowOutcome[]> {
  const outcomes = await runTable(mesh, t, suite, path);
  appendResults(mesh.cluster.runDir, outcomes.map((o) => o.record));
  console.log(truthTable(`\n    ${suite}: ${t.scenario}`, outcomes.map((o) => o.record)).replace(/\n/g, '\n    '));
  return outcomes;
}

const cellOf = (r: TruthRow): string => `${r.from} → ${r.to}${r.subset ? `/${r.subset}` : ''}:${r.port}`;

/**
 * Asserts the probed rows: exactly one outcome per hand-written row, the oracle agreeing with every
 * row, and every observed verdict being the row's (each list of mismatches names its cells).
 */
export function assertTable(t: TruthTable, outcomes: RowOutcome[]): void {
  expect(outcomes.map((o) => cellOf(o.row)).sort(), 'one probed cell per hand-written row').to.deep.equal(t.rows.map(cellOf).sort());
  const oracle = outcomes.filter((o) => o.oracle !== o.row.verdict).map((o) => `${cellOf(o.row)}: row ${o.row.verdict}, oracle ${o.oracle}`);
  expect(oracle, 'the oracle disagrees with the hand-written table').to.deep.equal([]);
  const observed = outcomes.filter((o) => o.result.verdict !== o.row.verdict).map((o) => `${cellOf(o.row)}: want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
  expect(observed, 'observed verdicts that differ from the hand-written table').to.deep.equal([]);
}

/** probeTable then assertTable, for a test that probes inside its own it(). */
export async function checkTable(mesh: Mesh, t: TruthTable, suite: string, path = '/echo'): Promise<RowOutcome[]> {
  const outcomes = await probeTable(mesh, t, suite, path);
  assertTable(t, outcomes);
  return outcomes;
}

/** The Deployment of the pod that answered: its own name on the emulation, `<deployment>-<hash>-<id>` on a real API server. */
export function deploymentOf(mesh: Mesh, podName: string | null | undefined): string | null {
  if (!podName) return null;
  const pod = mesh.cluster.pod(podName);
  return pod.spec.aliases?.[0] ?? pod.spec.name;
}

export function find(outcomes: RowOutcome[], from: string, to: string, subset?: string, port?: number): RowOutcome {
  const o = outcomes.find((x) => x.row.from === from && x.row.to === to && x.row.subset === subset && (port === undefined || x.row.port === port));
  if (!o) throw new Error(`no row ${from} → ${to}${subset ? `/${subset}` : ''}${port ? `:${port}` : ''} in the table`);
  return o;
}

const indent = (text: string): string => text.replace(/^/gm, '    ');

/**
 * One scenario of a matrix suite on the describe block's shared mesh: before its tests, the mesh is updated to the
 * table's model, every row probed, recorded and printed Cyclonus-style (the hook asserts nothing); a first it()
 * checks that exactly the hand-counted `cells` were probed, one per row. Returns the row → outcome lookup the
 * suite's own it()s use; every outcome also goes into `all` for the suite's closing tally.
 */
export function useScenario(mesh: () => Mesh, t: TruthTable, suite: string, all: RowOutcome[], cells: number): { of: (row: TruthRow) => RowOutcome } {
  let outcomes: RowOutcome[] = [];
  before(async () => {
    await mesh().update(scenarioModel(t));
    outcomes = await runTable(mesh(), t, suite);
    all.push(...outcomes);
    appendResults(mesh().cluster.runDir, outcomes.map((o) => o.record));
    const detail = (o: RowOutcome): string =>
      `want ${o.row.verdict}${o.row.wire ? ` ${o.row.wire}` : ''}, got ${o.result.verdict} ${o.result.evidence.wire}, oracle ${o.oracle} (${JSON.stringify(o.result.evidence)})`;
    console.log(indent(`\n${cyclonusTable(`${suite}: ${t.scenario} [${mesh().controlPlane}]`, outcomes.map((o) => ({ ...o.record, detail: detail(o) })))}`));
  });
  it(`probes the ${cells} cells of the table`, () => {
    expect(outcomes).to.have.length(cells);
    expect(new Set(outcomes.map((o) => o.row)).size, 'one outcome per row').to.equal(cells);
  });
  return {
    of: (row) => {
      const o = outcomes.find((x) => x.row === row);
      if (!o) throw new Error(`${rowName(row)} was not probed`);
      return o;
    },
  };
}
