// Running an Istio truth table (fixtures/istio/truth/*.yaml) on a live mesh: each row is probed
// and compared with the row itself (hand-written from Istio's docs) AND with the oracle.
import { join } from 'node:path';
import { apply, loadIstio, type IstioModel } from '../profiles/istio/resources.ts';
import { cellFor, destinationRuleFor, findService, selects } from '../profiles/istio/policy.ts';
import { expectIstio } from '../profiles/istio/oracle.ts';
import type { IstioMesh } from '../profiles/istio/index.ts';
import type { TruthRow, TruthTable } from '../profiles/istio/truth.ts';
import { toRecord } from '../report/results.ts';
import type { ResultRecord, Verdict } from '../model/verdict.ts';
import type { ProbeResult } from '../probe/types.ts';

export const SENTENCES_FIXTURE = 'fixtures/istio/sentences';

/** The workshop topology with the table's files applied and its injection choice. */
export function scenarioModel(table: Pick<TruthTable, 'apply' | 'inject'>, dir = SENTENCES_FIXTURE): IstioModel {
  let model = loadIstio(dir, { inject: table.inject });
  for (const f of table.apply) model = apply(model, loadIstio(join(dir, f)));
  return model;
}

export interface RowOutcome {
  row: TruthRow;
  oracle: Verdict;
  result: ProbeResult;
  record: ResultRecord;
}

/** How many calls a subset row gets: a VirtualService splits traffic, each call names its subset by who answered. */
const SUBSET_CALLS = 16;

/**
 * Probes every row. A row without a subset is one call. Rows with a subset are probed together
 * per (from, to, port): the calls are spread by the VirtualService, an answered call belongs to
 * the subset whose labels match the pod that answered, an unanswered (denied) call to the subset
 * whose row is a denial. Each subset row reports the first call attributed to it.
 */
export async function runTable(mesh: IstioMesh, table: TruthTable, suite: string, path = '/echo'): Promise<RowOutcome[]> {
  const model = mesh.current;
  const meta = { run: mesh.cluster.runId, substrate: 'netns', profile: 'istio' };
  const out: RowOutcome[] = [];
  const plain = table.rows.filter((r) => !r.subset);
  const results = await mesh.cluster.probeMany(plain.map((r) => ({ from: r.from, req: { protocol: 'http' as const, host: r.to, port: r.port, path } })));
  plain.forEach((row, i) => out.push(outcome(row, results[i]!)));

  const groups = new Map<string, TruthRow[]>();
  for (const r of table.rows.filter((x) => x.subset)) groups.set(`${r.from}>${r.to}:${r.port}`, [...(groups.get(`${r.from}>${r.to}:${r.port}`) ?? []), r]);
  for (const rows of groups.values()) {
    const { from, to, port } = rows[0]!;
    const svc = findService(model, to, mesh.cluster.pod(from).spec.namespace);
    const dr = destinationRuleFor(model, mesh.cluster.pod(from).spec.namespace, svc);
    const calls = await mesh.cluster.probeMany(Array.from({ length: SUBSET_CALLS }, () => ({ from, req: { protocol: 'http' as const, host: to, port, path } })));
    for (const row of rows) {
      const labels = dr?.subsets.find((s) => s.name === row.subset)?.labels ?? {};
      const mine = calls.find((c) => {
        if (c.evidence.servedBy) return selects(labels, mesh.cluster.pod(c.evidence.servedBy).spec.labels);
        return row.expected === 'denied';
      });
      // no call reached this subset: report the first call so the mismatch shows its evidence
      out.push(outcome(row, mine ?? calls[0]!));
    }
  }
  return out;

  function outcome(row: TruthRow, result: ProbeResult): RowOutcome {
    const oracle = expectIstio(cellFor(model, row.from, { service: row.to, port: row.port, subset: row.subset })).verdict;
    const pass = result.verdict === row.verdict && oracle === row.verdict;
    const scenario = table.scenario;
    const to = row.subset ? `${row.to}/${row.subset}` : row.to;
    return { row, oracle, result, record: toRecord(meta, { suite, scenario, from: row.from, to, port: row.port, protocol: 'http' }, row.expected, result, pass) };
  }
}
