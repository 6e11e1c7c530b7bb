// fixtures/budgets.yaml: how to load (the `load:` settings) and, per path, the budgets a release
// is gated on. A key the harness does not know is an error naming it. checkBudgets is pure: a
// summary and the budgets in, one BudgetResult per budget out, decided on the median of the rounds.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UserError } from '../cli/errors.ts';
import type { BudgetResult } from '../report/meta.ts';
import { BASELINE, PATH_CATALOG } from './path.ts';
import { DEFAULT_SETTINGS, type LoadSettings } from './runner.ts';
import type { LoadSummary, MetricName } from './summary.ts';

export type { BudgetResult };

export const BUDGETS_FILE = 'fixtures/budgets.yaml';

/** Budget keys: which series each constrains, in which direction, with which unit. */
export const BUDGET_METRICS = {
  rps_ratio_min: { series: 'rps_ratio', min: true, unit: 'x baseline' },
  p99_added_ms_max: { series: 'p99_added_ms', min: false, unit: 'ms' },
  cpu_per_1k_req_max: { series: 'cpu_per_1k_req', min: false, unit: 'vCPU-s/1k req' },
  rss_mb_max: { series: 'rss_mb', min: false, unit: 'MiB' },
  errors_max: { series: 'errors', min: false, unit: 'requests' },
} as const satisfies Record<string, { series: MetricName; min: boolean; unit: string }>;

export type BudgetKey = keyof typeof BUDGET_METRICS;
export type PathBudgets = Partial<Record<BudgetKey, number>>;

export interface BudgetsFile {
  source: string;
  load: LoadSettings;
  paths: Record<string, PathBudgets>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `load:` keys (snake_case as in the file) → LoadSettings fields. */
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

const INTEGER_KEYS = new Set<string>(['connections', 'pipelining', 'duration_s', 'payload_bytes', 'rounds', 'warmup_s', 'prewarm_s', 'max_requests', 'deadline_s', 'retries']);

/** Parses budgets YAML text (pure); `source` names the file in errors. */
export function parseBudgets(text: string, source = BUDGETS_FILE): BudgetsFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UserError(`${source}: malformed YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) throw new UserError(`${source}: expected a mapping with 'load' and 'paths'`);
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  for (const k of Object.keys(doc)) if (k !== 'load' && k !== 'paths') fail(`unknown key '${k}' (keys: load, paths)`);
  const num = (where: string, v: unknown, integer: boolean, allowZero = false): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0) || (integer && !Number.isInteger(v))) {
      fail(`${where} must be ${integer ? 'a whole number' : 'a number'} ${allowZero ? '≥ 0' : '> 0'}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };

  const load: LoadSettings = { ...DEFAULT_SETTINGS, wrk: DEFAULT_SETTINGS.wrk === false ? false : { ...DEFAULT_SETTINGS.wrk } };
  const l = doc.load ?? {};
  if (!isObj(l)) fail(`'load' must be a mapping`);
  for (const [k, v] of Object.entries(l as Obj)) {
    if (k === 'wrk') {
      if (v === false) load.wrk = false;
      else if (isObj(v)) {
        const w = { ...(load.wrk || { threads: 1, durationS: 2 }) };
        for (const [wk, wv] of Object.entries(v)) {
          if (wk === 'threads') w.threads = num(`load.wrk.threads`, wv, true);
          else if (wk === 'duration_s') w.durationS = num(`load.wrk.duration_s`, wv, true);
          else fail(`unknown key 'load.wrk.${wk}' (keys: threads, duration_s)`);
        }
        load.wrk = w;
      } else fail(`load.wrk must be false or a mapping with threads, duration_s`);
      continue;
    }
    if (!(k in LOAD_KEYS)) fail(`unknown key 'load.${k}' (keys: ${[...Object.keys(LOAD_KEYS), 'wrk'].join(', ')})`);
    const allowZero = k === 'warmup_s' || k === 'prewarm_s' || k === 'retries' || k === 'foreign_cpu_max' || k === 'quiet_wait_s';
    load[LOAD_KEYS[k as keyof typeof LOAD_KEYS]] = num(`load.${k}`, v, INTEGER_KEYS.has(k), allowZero);
  }
  if (load.rounds < 3) fail(`load.rounds must be at least 3 (a median and a spread need three rounds), got ${load.rounds}`);

  const paths: Record<string, PathBudgets> = {};
  const p = doc.paths ?? {};
  if (!isObj(p)) fail(`'paths' must be a mapping of path id → budgets`);
  const ids = PATH_CATALOG.map((c) => c.id);
  for (const [id, budgets] of Object.entries(p as Obj)) {
    if (!ids.includes(id)) fail(`unknown path '${id}' (paths: ${ids.join(', ')})`);
    if (budgets === null || budgets === undefined) continue;
    if (!isObj(budgets)) fail(`paths.${id} must be a mapping of budgets`);
    const out: PathBudgets = {};
    for (const [k, v] of Object.entries(budgets as Obj)) {
      if (!(k in BUDGET_METRICS)) fail(`unknown budget 'paths.${id}.${k}' (budgets: ${Object.keys(BUDGET_METRICS).join(', ')})`);
      if (id === BASELINE && (k === 'rps_ratio_min' || k === 'p99_added_ms_max')) fail(`paths.${id}.${k}: the baseline is what ratios are taken against`);
      out[k as BudgetKey] = num(`paths.${id}.${k}`, v, k === 'errors_max', k === 'errors_max');
    }
    paths[id] = out;
  }
  return { source, load, paths };
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

/**
 * One result per budget of every measured path, decided on the median of its rounds (the rounds
 * go along). A `_min` budget passes when the median is at least the limit, a `_max` one when it is
 * at most the limit; a median that is not a number (no rounds) fails.
 */
export function checkBudgets(budgets: Record<string, PathBudgets>, summary: Pick<LoadSummary, 'paths'>): BudgetResult[] {
  const out: BudgetResult[] = [];
  for (const p of summary.paths) {
    const b = budgets[p.id];
    if (!b) continue;
    for (const key of Object.keys(BUDGET_METRICS) as BudgetKey[]) {
      const limit = b[key];
      if (limit === undefined) continue;
      const m = BUDGET_METRICS[key];
      const s = p.metrics[m.series];
      const value = s.median;
      const pass = Number.isFinite(value) && (m.min ? value >= limit : value <= limit);
      out.push({ path: p.id, metric: key, value, limit, unit: m.unit, pass, rounds: s.rounds });
    }
  }
  return out;
}

/** `istio-mtls rps_ratio_min: 0.12 x baseline (limit 0.2; rounds 0.11, 0.12, 0.13)` for messages. */
export function describeBudget(b: BudgetResult): string {
  const rounds = b.rounds?.length ? `; rounds ${b.rounds.join(', ')}` : '';
  return `${b.path} ${b.metric}: ${b.value} ${b.unit} (limit ${b.limit}${rounds})${b.pass ? '' : ' BROKEN'}`;
}
