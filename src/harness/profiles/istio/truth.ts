// Hand-written Istio truth tables (fixtures/istio/truth/*.yaml and truth/reachability/*.yaml): the
// rows suites pin to, written from Istio's documents and tests, independent of the oracle.
import { parseYamlFile } from '../../substrate/topology.ts';
import { UserError } from '../../model/errors.ts';
import { fieldError, type FieldKind } from '../truth.ts';
import type { Observed, Verdict, Wire } from '../../model/verdict.ts';
import type { InjectOverride } from './resources.ts';

/**
 * How the calling pod speaks: `plaintext` (its app's own call, through its sidecar if it has one),
 * or a pod without a sidecar originating TLS itself, offering Istio's mTLS ALPN like a sidecar
 * does, with no client certificate (`tls-no-cert`) or with one issued by a CA that is not the
 * mesh's (`other-ca`).
 */
export const CLIENT_KINDS = ['plaintext', 'tls-no-cert', 'other-ca'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** The Service port's protocol by Istio protocol selection: declared http(-ish) or tcp, or `auto` (none declared: sniffed). */
export const ROW_PROTOCOLS = ['http', 'tcp', 'auto'] as const;
export type RowProtocol = (typeof ROW_PROTOCOLS)[number];

/**
 * What the caller's app speaks, when it is not the port's plain protocol (reachability_test.go's extra schemes for
 * STRICT, and the echo's server-first port): HTTP/2 with prior knowledge, a unary gRPC call, a WebSocket message,
 * or a TCP client that waits for the server's banner before sending (probe/types.ts).
 */
export const ROW_CALLS = ['h2c', 'grpc', 'websocket', 'tcp-server-first'] as const;
export type RowCall = (typeof ROW_CALLS)[number];

const WIRES: readonly Wire[] = ['plaintext-seen', 'no-plaintext'];

export interface TruthRow {
  /** A Deployment (its single pod). */
  from: string;
  /** A Service. */
  to: string;
  /** The DestinationRule subset the call is routed to, when the table pins one. */
  subset?: string;
  port: number;
  /** The Service port's protocol (Istio protocol selection); default http. */
  protocol?: RowProtocol;
  /** Default plaintext. */
  client?: ClientKind;
  /** What the caller's app speaks on the port (default: the port's protocol, http or raw tcp). */
  call?: RowCall;
  expected: Observed;
  verdict: Verdict;
  /** The wire canary's finding the table pins, when it pins one. */
  wire?: Exclude<Wire, null>;
}

export interface TruthTable {
  scenario: string;
  source: string;
  /** The directory of Kubernetes YAML the scenario starts from (default fixtures/istio/sentences). */
  fixture?: string;
  /** Files under the fixture directory applied on top of it, in order. */
  apply: string[];
  inject: InjectOverride;
  rows: TruthRow[];
}

/** A row's name in messages and test titles: `from[/client] → to[/subset]:port[/protocol][ call]`. */
export function rowName(r: TruthRow): string {
  const client = r.client && r.client !== 'plaintext' ? `/${r.client}` : '';
  const protocol = r.protocol && r.protocol !== 'http' ? `/${r.protocol}` : '';
  return `${r.from}${client} → ${r.to}${r.subset ? `/${r.subset}` : ''}:${r.port}${protocol}${r.call ? ` ${r.call}` : ''}`;
}

export function loadTruthTable(path: string): TruthTable {
  return checkTable(parseYamlFile(path) as Partial<TruthTable> | null, path);
}

/**
 * A file of several scenarios on one fixture (fixtures/istio/truth/protocols.yaml): `source`, `fixture` and
 * `inject` for all, then `scenarios`, each with its own `scenario`, `source`, `apply` and `rows`.
 */
export function loadTruthTables(path: string): TruthTable[] {
  const raw = parseYamlFile(path) as (Partial<TruthTable> & { scenarios?: unknown }) | null;
  if (!raw || typeof raw !== 'object' || !Array.isArray(raw.scenarios) || raw.scenarios.length === 0) {
    throw new UserError(`${path}: not a file of truth tables (a mapping with source, fixture, inject and a non-empty 'scenarios' list)`);
  }
  const { scenarios, ...shared } = raw;
  return (scenarios as Partial<TruthTable>[]).map((s, i) => {
    if (!s || typeof s !== 'object') throw new UserError(`${path}: scenarios[${i}] is not a mapping`);
    return checkTable({ ...shared, ...s, source: [shared.source, s.source].filter(Boolean).join('; ') }, `${path}: scenarios[${i}]`);
  });
}

function checkTable(raw: Partial<TruthTable> | null, path: string): TruthTable {
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  // The shared field check (profiles/truth.ts): `rows[i].<field> <value> <why>`.
  const check = (where: string, value: unknown, kind: FieldKind): void => {
    const e = fieldError(value, where, kind);
    if (e !== null) bad(e);
  };
  if (!raw || typeof raw !== 'object') return bad('not a truth table (a mapping with scenario, apply, inject, rows)');
  if (typeof raw.scenario !== 'string') bad(`'scenario' is required`);
  if (raw.fixture !== undefined && typeof raw.fixture !== 'string') bad(`'fixture' must be a directory path`);
  if (!Array.isArray(raw.rows) || raw.rows.length === 0) bad(`'rows' is required`);
  const inject = raw.inject ?? [];
  if (!(inject === 'all' || inject === 'none' || Array.isArray(inject))) bad(`'inject' must be all, none or a list of Deployment names`);
  const seen = new Map<string, number>();
  for (const [i, r] of (raw.rows as TruthRow[]).entries()) {
    if (!r || typeof r.from !== 'string' || typeof r.to !== 'string' || !Number.isInteger(r.port)) bad(`rows[${i}] needs from, to and port`);
    check(`rows[${i}].verdict`, r.verdict, 'verdict');
    if (r.expected !== (String(r.verdict).startsWith('allowed') ? 'allowed' : 'denied')) bad(`rows[${i}]: expected ${r.expected} contradicts verdict ${r.verdict}`);
    if (r.protocol !== undefined) check(`rows[${i}].protocol`, r.protocol, ROW_PROTOCOLS);
    if (r.client !== undefined) check(`rows[${i}].client`, r.client, CLIENT_KINDS);
    if (r.call !== undefined) check(`rows[${i}].call`, r.call, ROW_CALLS);
    if (r.call !== undefined && (r.client ?? 'plaintext') !== 'plaintext') bad(`rows[${i}]: a call is the pod's own app speaking it (client plaintext), not ${r.client}`);
    if (r.call !== undefined && r.subset !== undefined) bad(`rows[${i}]: a call row names no subset`);
    if (r.protocol === 'auto' && r.call !== 'tcp-server-first') bad(`rows[${i}]: protocol auto is probed with call tcp-server-first only`);
    if (r.wire !== undefined) check(`rows[${i}].wire`, r.wire, WIRES as readonly string[]);
    if (r.subset !== undefined && typeof r.subset !== 'string') bad(`rows[${i}].subset must be a string`);
    const name = rowName(r);
    const dup = seen.get(name);
    if (dup !== undefined) bad(`rows[${i}] (${name}) repeats rows[${dup}]`);
    seen.set(name, i);
  }
  const out: TruthTable = { scenario: raw.scenario as string, source: raw.source ?? '', apply: raw.apply ?? [], inject, rows: raw.rows as TruthRow[] };
  if (raw.fixture !== undefined) out.fixture = raw.fixture;
  return out;
}
