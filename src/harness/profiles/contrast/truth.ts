// Hand-written Contrast truth tables (fixtures/contrast/truth/*.yaml): the rows the contrast-* suites pin to, written
// from Contrast's code, docs and e2e test, independent of the oracle; and, pure, what the oracle says of a row.
import { parseYamlFile } from '../../substrate/topology.ts';
import { UserError } from '../../model/errors.ts';
import type { Observed, Verdict, Wire } from '../../model/verdict.ts';
import { CALLERS, expectDirect, expectEgress, inboundPath, type Caller, type PodPhase } from '../../model/contrast/oracle.ts';
import type { ContrastPodPlan } from './index.ts';
import type { ContrastService } from './resources.ts';

const PHASES: readonly PodPhase[] = ['default-deny', 'no-rules', 'meshed'];
const WIRES: readonly Wire[] = ['plaintext-seen', 'no-plaintext'];
const VERDICT = /^(allowed:(mtls|tls|plaintext)|denied:(reset|tls-handshake|http-\d{3}|timeout|refused))$/;
const EGRESS = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/;

export interface ContrastRow {
  /** The Deployment whose pod makes the call (its probe agent stands for the app). */
  from: string;
  /** How it speaks when it dials `to` directly (default plaintext). */
  caller?: Caller;
  /** The app dials this address of its own sidecar instead (`<127.x.y.z>:<port>`); `to`/`port` name the entry's remote. */
  egress?: string;
  /** A Service, or a Deployment (its pod's IP), and the port the caller names. */
  to: string;
  port: number;
  /** HTTP path (default /echo, the apps' echo; the admin interface's rows name one of its pages). */
  path?: string;
  /** The suite's step the row is probed in, when the table has steps. */
  step?: string;
  /** Where the target pod's startup is (default: meshed with a sidecar, no-rules without). */
  phase?: PodPhase;
  expected: Observed;
  verdict: Verdict;
  wire?: Exclude<Wire, null>;
}

export interface ContrastTable {
  scenario: string;
  source: string;
  steps: string[];
  rows: ContrastRow[];
}

export function rowName(r: ContrastRow): string {
  const how = r.egress ? ` via ${r.egress}` : r.caller && r.caller !== 'plaintext' ? `/${r.caller}` : '';
  return `${r.step ? `[${r.step}] ` : ''}${r.from}${how} → ${r.to}:${r.port}`;
}

export function loadContrastTable(path: string): ContrastTable {
  const raw = parseYamlFile(path) as Partial<ContrastTable> | null;
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  if (!raw || typeof raw !== 'object') return bad('not a truth table (a mapping with scenario, source, rows)');
  if (typeof raw.scenario !== 'string') bad(`'scenario' is required`);
  if (typeof raw.source !== 'string' || raw.source.trim() === '') bad(`'source' is required: cite Contrast's code, docs or e2e test`);
  const steps = raw.steps ?? [];
  if (!Array.isArray(steps) || steps.some((s) => typeof s !== 'string')) bad(`'steps' must be a list of names`);
  if (!Array.isArray(raw.rows) || raw.rows.length === 0) bad(`'rows' is required`);
  const seen = new Map<string, number>();
  for (const [i, r] of (raw.rows as ContrastRow[]).entries()) {
    if (!r || typeof r.from !== 'string' || typeof r.to !== 'string' || !Number.isInteger(r.port)) bad(`rows[${i}] needs from, to and port`);
    if (!VERDICT.test(String(r.verdict))) bad(`rows[${i}].verdict ${JSON.stringify(r.verdict)} is not a verdict`);
    if (r.expected !== (String(r.verdict).startsWith('allowed') ? 'allowed' : 'denied')) bad(`rows[${i}]: expected ${r.expected} contradicts verdict ${r.verdict}`);
    if (r.caller !== undefined && !CALLERS.includes(r.caller)) bad(`rows[${i}].caller ${JSON.stringify(r.caller)} must be one of ${CALLERS.join('|')}`);
    if (r.egress !== undefined && !EGRESS.test(String(r.egress))) bad(`rows[${i}].egress ${JSON.stringify(r.egress)} must be <127.x.y.z>:<port>`);
    if (r.egress !== undefined && (r.caller ?? 'plaintext') !== 'plaintext') bad(`rows[${i}]: an egress row's app speaks plaintext to its sidecar (drop caller)`);
    if (r.path !== undefined && (typeof r.path !== 'string' || !r.path.startsWith('/'))) bad(`rows[${i}].path must start with /`);
    if (r.phase !== undefined && !PHASES.includes(r.phase)) bad(`rows[${i}].phase ${JSON.stringify(r.phase)} must be one of ${PHASES.join('|')}`);
    if (r.wire !== undefined && !WIRES.includes(r.wire)) bad(`rows[${i}].wire ${JSON.stringify(r.wire)} must be one of ${WIRES.join('|')}`);
    if (steps.length > 0 && !steps.includes(String(r.step))) bad(`rows[${i}].step ${JSON.stringify(r.step)} must be one of ${steps.join('|')}`);
    if (steps.length === 0 && r.step !== undefined) bad(`rows[${i}].step: the table declares no 'steps'`);
    const name = rowName(r);
    const dup = seen.get(name);
    if (dup !== undefined) bad(`rows[${i}] (${name}) repeats rows[${dup}]`);
    seen.set(name, i);
  }
  return { scenario: raw.scenario as string, source: raw.source as string, steps, rows: raw.rows as ContrastRow[] };
}

/** The pod a row's `to` reaches and the port its app listens on (a Service's targetPort). */
export interface RowTarget {
  plan: ContrastPodPlan;
  service?: ContrastService;
  targetPort: number;
}

export function rowTarget(row: ContrastRow, plans: ContrastPodPlan[], services: ContrastService[]): RowTarget {
  const svc = services.find((s) => s.name === row.to);
  if (svc) {
    const sp = svc.ports.find((p) => p.port === row.port);
    if (!sp) throw new UserError(`${rowName(row)}: Service ${svc.name} has no port ${row.port}`);
    const selected = plans.filter((p) => p.deployment.namespace === svc.namespace && Object.entries(svc.selector).every(([k, v]) => p.deployment.labels[k] === v));
    if (selected.length !== 1) throw new UserError(`${rowName(row)}: Service ${svc.name} selects ${selected.length} Deployments; a row needs exactly one`);
    return { plan: selected[0]!, service: svc, targetPort: sp.targetPort };
  }
  const plan = plans.find((p) => p.deployment.name === row.to);
  if (!plan) throw new UserError(`${rowName(row)}: ${row.to} is neither a Service nor a Deployment of the model`);
  return { plan, targetPort: row.port };
}

/** The phase a row assumes for its target: written, else meshed with a sidecar, no-rules without. */
export function rowPhase(row: ContrastRow, target: RowTarget): PodPhase {
  return row.phase ?? (target.plan.injected ? 'meshed' : 'no-rules');
}

/** What the oracle says of a row (model/contrast/oracle.ts), given the model's pods and services. */
export function oracleFor(row: ContrastRow, plans: ContrastPodPlan[], services: ContrastService[]): Verdict {
  const target = rowTarget(row, plans, services);
  const path = inboundPath(target.plan.proxy, target.targetPort, rowPhase(row, target));
  if (row.egress === undefined) return expectDirect(path, row.caller ?? 'plaintext');
  const from = plans.find((p) => p.deployment.name === row.from);
  if (!from) throw new UserError(`${rowName(row)}: no Deployment ${row.from}`);
  const [, addr, port] = EGRESS.exec(row.egress)!;
  const entry = from.proxy?.egress.find((e) => e.listenAddr === addr && e.listenPort === Number(port));
  if (entry && (entry.remoteDomain !== row.to || entry.remotePort !== row.port)) {
    throw new UserError(`${rowName(row)}: ${row.from}'s egress entry ${entry.name} on ${row.egress} goes to ${entry.remoteDomain}:${entry.remotePort}, not ${row.to}:${row.port}`);
  }
  return expectEgress(from.proxy, { addr: addr!, port: Number(port) }, path);
}
