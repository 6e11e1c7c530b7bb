// The hand-written cf-for-k8s truth table (fixtures/cf-for-k8s/truth.yaml): ADR 0004's matrix as steps of one
// scenario, each step the objects it applies and the cells it pins, written from the ADR, cf-for-k8s's files and its
// acceptance tests (each row cites them) and independent of the oracle. Reading it is the one impure function here.
import { parseYamlFile } from '../../substrate/topology.ts';
import { UserError } from '../../model/errors.ts';
import { observedOf, type Observed, type Verdict, type Wire } from '../../model/verdict.ts';
import { CALLER_KINDS, CATEGORIES, ENFORCERS, type CallerKind, type Category, type CfCell, type Enablement, type Enforcer } from '../../model/cf-for-k8s/oracle.ts';
import type { TruthRow, TruthTable } from '../istio/truth.ts';

export interface CfCaller {
  category: Category;
  caller: CallerKind;
  /** The pod the call is made from: `<namespace>/<Deployment>`, or a substrate pod outside Kubernetes. */
  pod: string;
  /** The SPIFFE identity its sidecar presents (apps and system components). */
  identity?: string;
}

export interface CfTarget {
  category: Category;
  host: string;
  port: number;
  tls?: 'operator-ca' | 'other-ca';
  /** Its external route (the host the ingress gateway serves it under). */
  route?: string;
  /** The Deployment (or outside pod) that must answer an allowed call. */
  answeredBy?: string;
}

export interface CfRow {
  from: string;
  to: string;
  client?: 'plaintext' | 'tls-no-cert';
  via?: 'direct' | 'ingress-gateway';
  /** Request path (default /headers, as mtls_test.go asks httpbin). */
  path?: string;
  expected: Observed;
  verdict: Verdict;
  wire?: Exclude<Wire, null>;
  /** The caller's identity the server must have seen (XFCC URI=). */
  peer?: string;
  /** Substrings the response body must hold (policy_test.go's "connect error"; Envoy's reset reason). */
  body?: string[];
  /** Substrings the X-Forwarded-Client-Cert the server saw must hold (the gateway's identity). */
  xfcc?: string[];
  /** An Envoy counter of the caller's sidecar that the call must have grown by one. */
  stat?: string;
  timeoutMs?: number;
  enforcedBy: Enforcer[];
  /** Why the cell is not probed yet: it is reported pending, never passing. */
  pending?: string;
  cite: string;
}

export interface CfStep {
  name: string;
  title: string;
  /** Files under fixtures/cf-for-k8s/ applied (as `kubectl apply`) before the step's rows, on top of earlier steps'. */
  apply: string[];
  enabled: Enablement;
  rows: CfRow[];
}

export interface CfTruth {
  scenario: string;
  source: string;
  /** The directory of the Kubernetes YAML the Istio model is loaded from. */
  fixture: string;
  /** Where a client outside the platform reaches the ingress gateway. */
  ingressGateway: { host: string; port: number };
  callers: Record<string, CfCaller>;
  targets: Record<string, CfTarget>;
  steps: CfStep[];
}

const VERDICT = /^(allowed:(mtls|tls|plaintext)|denied:(reset|tls-handshake|http-\d{3}|timeout|refused))$/;
const ENABLEMENTS = ['appToApp', 'appsSeeApps', 'appsToSystem', 'systemToApps', 'systemToSystem', 'gatewayToSystem'] as const;
const ROW_KEYS = ['from', 'to', 'client', 'via', 'path', 'verdict', 'wire', 'peer', 'body', 'xfcc', 'stat', 'timeoutMs', 'enforcedBy', 'pending', 'cite'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a truth table read from `path` (pure apart from the message naming it). */
export function parseCfTruth(raw: unknown, path: string): CfTruth {
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  if (!isObj(raw)) return bad('not a cf-for-k8s truth table (a mapping with scenario, callers, targets, steps)');
  for (const k of ['scenario', 'source', 'fixture']) if (typeof raw[k] !== 'string') bad(`'${k}' is required (a string)`);
  if (!isObj(raw.callers) || !isObj(raw.targets)) bad(`'callers' and 'targets' are required (mappings by name)`);
  const gw = raw.ingressGateway;
  if (!isObj(gw) || typeof gw.host !== 'string' || !Number.isInteger(gw.port)) bad(`'ingressGateway' is required: { host, port } of the gateway as an outside client reaches it`);
  const callers: Record<string, CfCaller> = {};
  for (const [name, c] of Object.entries(raw.callers as Obj)) {
    if (!isObj(c) || !CATEGORIES.includes(c.category as Category) || !CALLER_KINDS.includes(c.caller as CallerKind) || typeof c.pod !== 'string') {
      bad(`callers.${name} needs category (${CATEGORIES.join('|')}), caller (${CALLER_KINDS.join('|')}) and pod`);
    }
    callers[name] = c as unknown as CfCaller;
  }
  const targets: Record<string, CfTarget> = {};
  for (const [name, t] of Object.entries(raw.targets as Obj)) {
    if (!isObj(t) || !CATEGORIES.includes(t.category as Category) || typeof t.host !== 'string' || !Number.isInteger(t.port)) bad(`targets.${name} needs category, host and port`);
    const tt = t as Obj;
    if (tt.tls !== undefined && tt.tls !== 'operator-ca' && tt.tls !== 'other-ca') bad(`targets.${name}.tls must be operator-ca or other-ca`);
    targets[name] = t as unknown as CfTarget;
  }
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) bad(`'steps' is required`);
  const steps = (raw.steps as unknown[]).map((s, i): CfStep => {
    const at = `steps[${i}]`;
    if (!isObj(s) || typeof s.name !== 'string' || typeof s.title !== 'string') return bad(`${at} needs name and title`);
    if (!Array.isArray(s.apply) || s.apply.some((f) => typeof f !== 'string')) bad(`${at}.apply must be a list of files`);
    if (!isObj(s.enabled)) bad(`${at}.enabled must be a mapping (empty for nothing enabled)`);
    for (const [k, v] of Object.entries(s.enabled as Obj)) if (!(ENABLEMENTS as readonly string[]).includes(k) || typeof v !== 'boolean') bad(`${at}.enabled.${k}: the switches are ${ENABLEMENTS.join(', ')} (true or false)`);
    if (!Array.isArray(s.rows) || s.rows.length === 0) bad(`${at}.rows is required`);
    const seen = new Set<string>();
    const rows = (s.rows as unknown[]).map((r, j): CfRow => {
      const rat = `${at}.rows[${j}]`;
      if (!isObj(r)) return bad(`${rat} is not a mapping`);
      for (const k of Object.keys(r)) if (!ROW_KEYS.includes(k)) bad(`${rat}: unknown field ${k} (fields: ${ROW_KEYS.join(', ')})`);
      if (typeof r.from !== 'string' || !callers[r.from]) bad(`${rat}.from ${JSON.stringify(r.from)} is not one of the callers (${Object.keys(callers).join(', ')})`);
      if (typeof r.to !== 'string' || !targets[r.to]) bad(`${rat}.to ${JSON.stringify(r.to)} is not one of the targets (${Object.keys(targets).join(', ')})`);
      if (!VERDICT.test(String(r.verdict))) bad(`${rat}.verdict ${JSON.stringify(r.verdict)} is not a verdict`);
      if (r.client !== undefined && r.client !== 'plaintext' && r.client !== 'tls-no-cert') bad(`${rat}.client must be plaintext or tls-no-cert`);
      if (r.via !== undefined && r.via !== 'direct' && r.via !== 'ingress-gateway') bad(`${rat}.via must be direct or ingress-gateway`);
      if (r.wire !== undefined && r.wire !== 'plaintext-seen' && r.wire !== 'no-plaintext') bad(`${rat}.wire must be plaintext-seen or no-plaintext`);
      if (!Array.isArray(r.enforcedBy) || r.enforcedBy.length === 0 || r.enforcedBy.some((e) => !ENFORCERS.includes(e as Enforcer))) bad(`${rat}.enforcedBy must list ${ENFORCERS.join(' and/or ')}`);
      if (typeof r.cite !== 'string' || r.cite === '') bad(`${rat}.cite is required: the ADR line, file or test the cell comes from`);
      for (const k of ['body', 'xfcc'] as const) if (r[k] !== undefined && (!Array.isArray(r[k]) || (r[k] as unknown[]).some((b) => typeof b !== 'string'))) bad(`${rat}.${k} must be a list of substrings`);
      if (r.via === 'ingress-gateway' && !targets[r.to as string]!.route) bad(`${rat}: target ${r.to} has no route for the ingress gateway`);
      if (r.timeoutMs !== undefined && (!Number.isInteger(r.timeoutMs) || (r.timeoutMs as number) <= 0)) bad(`${rat}.timeoutMs must be a positive integer`);
      const key = `${r.from}/${r.client ?? 'plaintext'} → ${r.to} via ${r.via ?? 'direct'}`;
      if (seen.has(key)) bad(`${rat} (${key}) repeats an earlier row of the step`);
      seen.add(key);
      return { ...(r as unknown as CfRow), expected: observedOf(r.verdict as Verdict) };
    });
    return { name: s.name, title: s.title, apply: s.apply as string[], enabled: s.enabled as Enablement, rows };
  });
  return { scenario: raw.scenario as string, source: raw.source as string, fixture: raw.fixture as string, ingressGateway: gw as CfTruth['ingressGateway'], callers, targets, steps };
}

export function loadCfTruth(path = 'fixtures/cf-for-k8s/truth.yaml'): CfTruth {
  return parseCfTruth(parseYamlFile(path), path);
}

/** The oracle's cell for a row of a step. */
export function cellOf(truth: CfTruth, step: CfStep, row: CfRow): CfCell {
  const from = truth.callers[row.from]!;
  const to = truth.targets[row.to]!;
  return {
    from: from.category,
    caller: from.caller,
    to: to.category,
    enabled: step.enabled,
    ...(row.client ? { client: row.client } : {}),
    ...(to.tls ? { tls: to.tls } : {}),
    ...(row.via ? { via: row.via } : {}),
  };
}

/** A row's name: `from[/client] → to[ via gateway]`. */
export function cfRowName(r: CfRow): string {
  return `${r.from}${r.client && r.client !== 'plaintext' ? `/${r.client}` : ''} → ${r.to}${r.via === 'ingress-gateway' ? ' (through the ingress gateway)' : ''}`;
}

/** Where a row's call goes: the target itself, or the ingress gateway naming the target's route. */
export function destinationOf(truth: CfTruth, r: CfRow): { name: string; host: string; port: number; route?: string } {
  const t = truth.targets[r.to]!;
  if (r.via === 'ingress-gateway') return { name: t.route!, host: truth.ingressGateway.host, port: truth.ingressGateway.port, route: t.route! };
  return { name: r.to, host: t.host, port: t.port };
}

/**
 * A step's probed rows as a table for the truth-table runner (pending rows are left out), and each runner row's
 * cf-for-k8s row.
 */
export function stepTable(truth: CfTruth, step: CfStep): { table: TruthTable; rowOf: Map<TruthRow, CfRow> } {
  const rowOf = new Map<TruthRow, CfRow>();
  const rows = step.rows
    .filter((r) => !r.pending)
    .map((r): TruthRow => {
      const d = destinationOf(truth, r);
      const t: TruthRow = { from: r.from, to: d.name, port: d.port, protocol: 'http', expected: r.expected, verdict: r.verdict, ...(r.client ? { client: r.client } : {}), ...(r.wire ? { wire: r.wire } : {}) };
      rowOf.set(t, r);
      return t;
    });
  return { table: { scenario: `${truth.scenario}: ${step.name}`, source: truth.source, apply: [], inject: [], rows }, rowOf };
}
