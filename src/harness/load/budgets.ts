// fixtures/budgets.yaml: how to load and, per path, the budgets a release is gated on. The budgets are in Istio's
// units, from fixed-rate fortio runs (`fixed_rate:`); the closed-loop maximum (`closed_loop:`, autocannon) keeps
// one secondary budget, its ratio to the baseline. `smoke:` shortens both for npm test, where the suite proves
// every path and records the figures but a noisy machine does not decide the verdict. A key the harness does not
// know is an error naming it. checkBudgets is pure: summaries and budgets in, one BudgetResult per budget out,
// decided on the median of the rounds.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UserError } from '../model/errors.ts';
import type { BudgetResult } from '../report/meta.ts';
import { DEFAULT_FIXED_RATE, type FixedRateSettings } from './fortio.ts';
import { BASELINE, PATH_CATALOG } from './path.ts';
import type { Percentiles, RatePathFigures } from './rate-summary.ts';
import { DEFAULT_SETTINGS, type LoadSettings } from './runner.ts';
import type { LoadSummary } from './summary.ts';

export type { BudgetResult };

export const BUDGETS_FILE = 'fixtures/budgets.yaml';

/**
 * Budget keys. Fixed rate (Istio's units, each connection count on its own):
 *   vcpu_per_1k_rps_max   each data-plane process (per sidecar, per router): vCPU per 1000 req/s
 *   rss_mib_max           each data-plane process: resident set, MiB
 *   p50/p90/p99_added_ms_max  latency the path adds over the baseline (same round, rate, connections, client)
 *   errors_max            calls that did not answer 2xx, over the rounds
 * Closed loop (secondary): rps_ratio_min, requests/s of the path ÷ the baseline's in the same round.
 */
export const BUDGET_METRICS = {
  vcpu_per_1k_rps_max: { unit: 'vCPU per 1000 req/s', min: false, perProcess: true },
  rss_mib_max: { unit: 'MiB', min: false, perProcess: true },
  p50_added_ms_max: { unit: 'ms', min: false, perProcess: false },
  p90_added_ms_max: { unit: 'ms', min: false, perProcess: false },
  p99_added_ms_max: { unit: 'ms', min: false, perProcess: false },
  errors_max: { unit: 'calls', min: false, perProcess: false },
  rps_ratio_min: { unit: 'x baseline (closed loop)', min: true, perProcess: false },
} as const;

export type BudgetKey = keyof typeof BUDGET_METRICS;
export type PathBudgets = Partial<Record<BudgetKey, number>>;

export interface BudgetsFile {
  source: string;
  fixedRate: FixedRateSettings;
  /** The closed-loop maximum (autocannon, wrk's ceiling check). */
  load: LoadSettings;
  /** npm test's shorter settings (`smoke:` over the above). */
  smoke: { fixedRate: FixedRateSettings; load: LoadSettings };
  paths: Record<string, PathBudgets>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `closed_loop:` keys (snake_case as in the file) → LoadSettings fields. */
const LOAD_KEYS = {
  connections: 'connections',
  pipelining: 'pipelining',
  duration_s: 'durationS',
  payload_bytes: 'payloadBytes',
  rounds: 'rounds',
  warmup_s: 'warmupS',
  prewarm_s: 'prewarmS',
  max_requests: 'maxRequests',
  deadline_s: 'deadlineS',
  foreign_cpu_max: 'foreignCpuMax',
  quiet_wait_s: 'quietWaitS',
  retries: 'retries',
} as const satisfies Record<string, Exclude<keyof LoadSettings, 'wrk'>>;
const LOAD_INTEGER = new Set<string>(['connections', 'pipelining', 'duration_s', 'payload_bytes', 'rounds', 'warmup_s', 'prewarm_s', 'max_requests', 'deadline_s', 'retries']);
const LOAD_ZERO_OK = new Set<string>(['warmup_s', 'prewarm_s', 'retries', 'foreign_cpu_max', 'quiet_wait_s']);

/** The `fixed_rate:` keys → FixedRateSettings fields (`connections` and `jitter` are read apart). */
const RATE_KEYS = {
  rate: 'rate',
  payload_bytes: 'payloadBytes',
  duration_s: 'durationS',
  rounds: 'rounds',
  prewarm_s: 'prewarmS',
  resolution_s: 'resolutionS',
  min_rate_ratio: 'minRateRatio',
  deadline_s: 'deadlineS',
  foreign_cpu_max: 'foreignCpuMax',
  quiet_wait_s: 'quietWaitS',
  retries: 'retries',
} as const satisfies Record<string, Exclude<keyof FixedRateSettings, 'connections' | 'jitter'>>;
const RATE_INTEGER = new Set<string>(['rate', 'payload_bytes', 'duration_s', 'rounds', 'prewarm_s', 'deadline_s', 'retries']);
const RATE_ZERO_OK = new Set<string>(['prewarm_s', 'retries', 'foreign_cpu_max', 'quiet_wait_s']);

/** Parses budgets YAML text (pure); `source` names the file in errors. */
export function parseBudgets(text: string, source = BUDGETS_FILE): BudgetsFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UserError(`${source}: malformed YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) doc = {};
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  if (!isObj(doc)) fail(`expected a mapping with 'fixed_rate', 'closed_loop', 'smoke' and 'paths'`);
  const top = ['fixed_rate', 'closed_loop', 'smoke', 'paths'];
  for (const k of Object.keys(doc as Obj)) if (!top.includes(k)) fail(`unknown key '${k}' (keys: ${top.join(', ')})`);
  const d = doc as Obj;
  const num = (where: string, v: unknown, integer: boolean, allowZero = false): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0) || (integer && !Number.isInteger(v))) {
      fail(`${where} must be ${integer ? 'a whole number' : 'a number'} ${allowZero ? '≥ 0' : '> 0'}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const mapping = (where: string, v: unknown): Obj => {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) fail(`'${where}' must be a mapping`);
    return v as Obj;
  };

  const readLoad = (where: string, l: Obj, base: LoadSettings, minRounds: number): LoadSettings => {
    const load: LoadSettings = { ...base, wrk: base.wrk === false ? false : { ...base.wrk } };
    for (const [k, v] of Object.entries(l)) {
      if (k === 'wrk') {
        if (v === false) load.wrk = false;
        else if (isObj(v)) {
          const w = { ...(load.wrk || { threads: 1, durationS: 2 }) };
          for (const [wk, wv] of Object.entries(v)) {
            if (wk === 'threads') w.threads = num(`${where}.wrk.threads`, wv, true);
            else if (wk === 'duration_s') w.durationS = num(`${where}.wrk.duration_s`, wv, true);
            else fail(`unknown key '${where}.wrk.${wk}' (keys: threads, duration_s)`);
          }
          load.wrk = w;
        } else fail(`${where}.wrk must be false or a mapping with threads, duration_s`);
        continue;
      }
      if (!(k in LOAD_KEYS)) fail(`unknown key '${where}.${k}' (keys: ${[...Object.keys(LOAD_KEYS), 'wrk'].join(', ')})`);
      load[LOAD_KEYS[k as keyof typeof LOAD_KEYS]] = num(`${where}.${k}`, v, LOAD_INTEGER.has(k), LOAD_ZERO_OK.has(k));
    }
    if (load.rounds < minRounds) fail(`${where}.rounds must be at least ${minRounds}${minRounds > 1 ? ' (a median and a spread need three rounds)' : ''}, got ${load.rounds}`);
    return load;
  };

  const readRate = (where: string, r: Obj, base: FixedRateSettings, minRounds: number): FixedRateSettings => {
    const out: FixedRateSettings = { ...base, connections: [...base.connections] };
    for (const [k, v] of Object.entries(r)) {
      if (k === 'connections') {
        if (!Array.isArray(v) || v.length === 0) fail(`${where}.connections must be a list of connection counts, e.g. [2, 4, 8, 16] (Istio's list)`);
        out.connections = (v as unknown[]).map((c, i) => num(`${where}.connections[${i}]`, c, true));
        if (new Set(out.connections).size !== out.connections.length) fail(`${where}.connections lists a count twice: ${JSON.stringify(v)}`);
        continue;
      }
      if (k === 'jitter') {
        if (typeof v !== 'boolean') fail(`${where}.jitter must be true or false, got ${JSON.stringify(v)}`);
        out.jitter = v as boolean;
        continue;
      }
      if (!(k in RATE_KEYS)) fail(`unknown key '${where}.${k}' (keys: ${[...Object.keys(RATE_KEYS), 'connections', 'jitter'].join(', ')})`);
      out[RATE_KEYS[k as keyof typeof RATE_KEYS]] = num(`${where}.${k}`, v, RATE_INTEGER.has(k), RATE_ZERO_OK.has(k));
    }
    if (out.minRateRatio > 1) fail(`${where}.min_rate_ratio must be at most 1 (a fraction of the rate), got ${out.minRateRatio}`);
    if (out.rounds < minRounds) fail(`${where}.rounds must be at least ${minRounds}${minRounds > 1 ? ' (a median and a spread need three rounds)' : ''}, got ${out.rounds}`);
    return out;
  };

  const fixedRate = readRate('fixed_rate', mapping('fixed_rate', d.fixed_rate), DEFAULT_FIXED_RATE, 3);
  const load = readLoad('closed_loop', mapping('closed_loop', d.closed_loop), DEFAULT_SETTINGS, 3);
  const sm = mapping('smoke', d.smoke);
  for (const k of Object.keys(sm)) if (k !== 'fixed_rate' && k !== 'closed_loop') fail(`unknown key 'smoke.${k}' (keys: fixed_rate, closed_loop)`);
  const smoke = {
    fixedRate: readRate('smoke.fixed_rate', mapping('smoke.fixed_rate', sm.fixed_rate), fixedRate, 1),
    load: readLoad('smoke.closed_loop', mapping('smoke.closed_loop', sm.closed_loop), load, 1),
  };

  const paths: Record<string, PathBudgets> = {};
  const p = mapping('paths', d.paths);
  const ids = PATH_CATALOG.map((c) => c.id);
  for (const [id, budgets] of Object.entries(p)) {
    if (!ids.includes(id)) fail(`unknown path '${id}' (paths: ${ids.join(', ')})`);
    if (budgets === null || budgets === undefined) continue;
    if (!isObj(budgets)) fail(`paths.${id} must be a mapping of budgets`);
    const out: PathBudgets = {};
    for (const [k, v] of Object.entries(budgets as Obj)) {
      if (!(k in BUDGET_METRICS)) fail(`unknown budget 'paths.${id}.${k}' (budgets: ${Object.keys(BUDGET_METRICS).join(', ')})`);
      if (id === BASELINE && (k === 'rps_ratio_min' || k.endsWith('_added_ms_max'))) fail(`paths.${id}.${k}: the baseline is what the others are compared with`);
      // a _max of 0 is a budget only a path that costs nothing meets (the gate's own check uses one)
      out[k as BudgetKey] = num(`paths.${id}.${k}`, v, k === 'errors_max', k !== 'rps_ratio_min');
    }
    paths[id] = out;
  }
  return { source, fixedRate, load, smoke, paths };
}

export function loadBudgets(file = BUDGETS_FILE): BudgetsFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code}): check the path`);
  }
  return parseBudgets(text, file);
}

/** `istio-mtls c=4`: a fixed-rate row's name in budgets. */
export const rowName = (r: Pick<RatePathFigures, 'path' | 'connections'>): string => `${r.path} c=${r.connections}`;

/**
 * One result per budget: fixed-rate budgets per (path, connection count) row, and per data-plane process for the
 * per-process ones (metric `vcpu_per_1k_rps_max[client-sidecar]`); the closed-loop ratio per path. Decided on the
 * median of the rounds (which go along): `_min` at least the limit, `_max` at most; a median that is not a number
 * (no round held the rate) fails.
 */
export function checkBudgets(budgets: Record<string, PathBudgets>, rate: readonly RatePathFigures[], closed?: Pick<LoadSummary, 'paths'>): BudgetResult[] {
  const out: BudgetResult[] = [];
  const push = (path: string, metric: string, value: number, limit: number, min: boolean, unit: string, rounds: number[]) =>
    out.push({ path, metric, value, limit, unit, pass: Number.isFinite(value) && (min ? value >= limit : value <= limit), rounds });
  for (const r of rate) {
    const b = budgets[r.path];
    if (!b) continue;
    const valid = r.rounds.filter((x) => !x.void);
    for (const role of Object.keys(r.vcpuPer1kRps)) {
      if (b.vcpu_per_1k_rps_max !== undefined) push(rowName(r), `vcpu_per_1k_rps_max[${role}]`, r.vcpuPer1kRps[role]!, b.vcpu_per_1k_rps_max, false, BUDGET_METRICS.vcpu_per_1k_rps_max.unit, valid.map((x) => x.vcpuPer1kRps[role]!));
      if (b.rss_mib_max !== undefined) push(rowName(r), `rss_mib_max[${role}]`, r.rssMiB[role]!, b.rss_mib_max, false, BUDGET_METRICS.rss_mib_max.unit, valid.map((x) => x.rssMiB[role]!));
    }
    for (const k of ['p50', 'p90', 'p99'] as (keyof Percentiles)[]) {
      const key = `${k}_added_ms_max` as const;
      const limit = b[key];
      if (limit === undefined) continue;
      push(rowName(r), key, r.latencyAddedMs?.[k] ?? NaN, limit, false, 'ms', valid.map((x) => x.latencyAddedMs?.[k] ?? NaN));
    }
    if (b.errors_max !== undefined) push(rowName(r), 'errors_max', r.validRounds > 0 ? r.errors : NaN, b.errors_max, false, 'calls', valid.map((x) => x.errors));
  }
  for (const p of closed?.paths ?? []) {
    const limit = budgets[p.id]?.rps_ratio_min;
    if (limit === undefined) continue;
    const s = p.metrics.rps_ratio;
    push(`${p.id} closed-loop`, 'rps_ratio_min', s.median, limit, true, BUDGET_METRICS.rps_ratio_min.unit, s.rounds);
  }
  return out;
}

/** `istio-mtls c=4 p90_added_ms_max: 0.42 ms (limit 0.3; rounds 0.4, 0.42, 0.45) BROKEN` for messages. */
export function describeBudget(b: BudgetResult): string {
  const rounds = b.rounds?.length ? `; rounds ${b.rounds.join(', ')}` : '';
  return `${b.path} ${b.metric}: ${b.value} ${b.unit} (limit ${b.limit}${rounds})${b.pass ? '' : ' BROKEN'}`;
}
