// Hand-written Istio truth tables (fixtures/istio/truth/*.yaml): the rows suites pin to,
// written from Istio's documents and tests, independent of the oracle.
import { parseYamlFile } from '../../substrate/topology.ts';
import { UserError } from '../../cli/errors.ts';
import type { Observed, Verdict } from '../../model/verdict.ts';
import type { InjectOverride } from './resources.ts';

export interface TruthRow {
  /** A Deployment (its single pod). */
  from: string;
  /** A Service. */
  to: string;
  /** The DestinationRule subset the call is routed to, when the table pins one. */
  subset?: string;
  port: number;
  expected: Observed;
  verdict: Verdict;
}

export interface TruthTable {
  scenario: string;
  source: string;
  /** Files under fixtures/istio/sentences applied on top of the directory, in order. */
  apply: string[];
  inject: InjectOverride;
  rows: TruthRow[];
}

const VERDICT = /^(allowed:(mtls|tls|plaintext)|denied:(reset|tls-handshake|http-\d{3}|timeout|refused))$/;

export function loadTruthTable(path: string): TruthTable {
  const raw = parseYamlFile(path) as Partial<TruthTable> | null;
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  if (!raw || typeof raw !== 'object') return bad('not a truth table (a mapping with scenario, apply, inject, rows)');
  if (typeof raw.scenario !== 'string') bad(`'scenario' is required`);
  if (!Array.isArray(raw.rows) || raw.rows.length === 0) bad(`'rows' is required`);
  const inject = raw.inject ?? [];
  if (!(inject === 'all' || inject === 'none' || Array.isArray(inject))) bad(`'inject' must be all, none or a list of Deployment names`);
  for (const [i, r] of (raw.rows as TruthRow[]).entries()) {
    if (!r || typeof r.from !== 'string' || typeof r.to !== 'string' || !Number.isInteger(r.port)) bad(`rows[${i}] needs from, to and port`);
    if (!VERDICT.test(String(r.verdict))) bad(`rows[${i}].verdict ${JSON.stringify(r.verdict)} is not a verdict`);
    if (r.expected !== (String(r.verdict).startsWith('allowed') ? 'allowed' : 'denied')) bad(`rows[${i}]: expected ${r.expected} contradicts verdict ${r.verdict}`);
  }
  return { scenario: raw.scenario as string, source: raw.source ?? '', apply: raw.apply ?? [], inject, rows: raw.rows as TruthRow[] };
}
