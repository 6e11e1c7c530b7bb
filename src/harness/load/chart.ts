// One SVG chart per path of the closed-loop maximum (reports/<run>/closed-loop-<path>.svg): four panels — requests/s, p99
// latency, data-plane CPU per 1000 requests, data-plane RSS — each with one bar per round (the
// baseline's rounds beside the path's where a ratio is taken), the median as a line and the
// budget limit as a dashed line. Pure: a summary in, SVG text out; no fonts or scripts needed.
import type { BudgetResult } from '../report/meta.ts';
import type { RatePathFigures, RateRound } from './rate-summary.ts';
import type { PathSummary, Series } from './summary.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

interface Panel {
  /** Rounds (1-based) another job disturbed: their label is marked. */
  disturbed: readonly number[];
  title: string;
  unit: string;
  path: Series;
  /** The baseline's rounds, drawn beside the path's. */
  baseline?: Series;
  /** The budget as a limit on this panel's scale. */
  limit?: { value: number; label: string; pass: boolean };
}

const W = 880;
const H = 290;
const PANEL_W = W / 4;
const TOP = 84;
const PLOT_H = 140;
const PATH_FILL = '#0969da';
const BASE_FILL = '#8c959f';

function panel(p: Panel, i: number): string {
  const x0 = i * PANEL_W + 34;
  const plotW = PANEL_W - 48;
  const values = [...p.path.rounds, ...(p.baseline?.rounds ?? []), p.limit?.value ?? 0].filter((v) => Number.isFinite(v));
  const max = Math.max(1e-9, ...values) * 1.15;
  const y = (v: number): number => TOP + PLOT_H - (Math.max(0, Number.isFinite(v) ? v : 0) / max) * PLOT_H;
  const n = p.path.rounds.length;
  const group = plotW / Math.max(1, n);
  const barW = Math.min(22, (group - 6) / (p.baseline ? 2 : 1));
  const parts: string[] = [
    `<g class="panel" data-panel="${esc(p.title)}">`,
    `<text x="${x0}" y="${TOP - 10}" font-size="12" font-weight="600">${esc(p.title)}</text>`,
    `<line x1="${x0}" x2="${x0 + plotW}" y1="${TOP + PLOT_H}" y2="${TOP + PLOT_H}" stroke="#d0d7de"/>`,
  ];
  p.path.rounds.forEach((v, r) => {
    const gx = x0 + r * group + (group - barW * (p.baseline ? 2 : 1)) / 2;
    const b = p.baseline?.rounds[r];
    if (p.baseline && b !== undefined) {
      parts.push(
        `<rect class="bar baseline" data-round="${r + 1}" data-value="${b}" x="${gx.toFixed(1)}" y="${y(b).toFixed(1)}" width="${barW.toFixed(1)}" height="${(TOP + PLOT_H - y(b)).toFixed(1)}" fill="${BASE_FILL}"><title>baseline, round ${r + 1}: ${esc(fmt(b))} ${esc(p.unit)}</title></rect>`,
      );
    }
    const px = p.baseline ? gx + barW : gx;
    parts.push(
      `<rect class="bar path" data-round="${r + 1}" data-value="${v}" x="${px.toFixed(1)}" y="${y(v).toFixed(1)}" width="${barW.toFixed(1)}" height="${(TOP + PLOT_H - y(v)).toFixed(1)}" fill="${PATH_FILL}"><title>round ${r + 1}: ${esc(fmt(v))} ${esc(p.unit)}</title></rect>`,
    );
    const cx = (gx + (barW * (p.baseline ? 2 : 1)) / 2).toFixed(1);
    parts.push(
      p.disturbed.includes(r + 1)
        ? `<text class="disturbed" x="${cx}" y="${TOP + PLOT_H + 13}" font-size="10" text-anchor="middle" fill="#bc4c00">r${r + 1}*<title>round ${r + 1}: other processes used the machine meanwhile</title></text>`
        : `<text x="${cx}" y="${TOP + PLOT_H + 13}" font-size="10" text-anchor="middle" fill="#57606a">r${r + 1}</text>`,
    );
  });
  if (Number.isFinite(p.path.median)) {
    const my = y(p.path.median).toFixed(1);
    parts.push(`<line class="median" x1="${x0}" x2="${x0 + plotW}" y1="${my}" y2="${my}" stroke="${PATH_FILL}" stroke-width="1.5"><title>median ${esc(fmt(p.path.median))} ${esc(p.unit)}</title></line>`);
  }
  if (p.limit && Number.isFinite(p.limit.value)) {
    const ly = y(p.limit.value).toFixed(1);
    const color = p.limit.pass ? '#1a7f37' : '#cf222e';
    parts.push(`<line class="limit" x1="${x0}" x2="${x0 + plotW}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 3"><title>${esc(p.limit.label)}</title></line>`);
  }
  const spread = Number.isFinite(p.path.spread) ? `, spread ${(p.path.spread * 100).toFixed(1)}%` : '';
  parts.push(`<text x="${x0}" y="${TOP + PLOT_H + 30}" font-size="11">median ${esc(fmt(p.path.median))}${esc(spread)}</text>`);
  if (p.limit) {
    parts.push(`<text x="${x0}" y="${TOP + PLOT_H + 44}" font-size="11" fill="${p.limit.pass ? '#1a7f37' : '#cf222e'}">${esc(p.limit.label)}</text>`);
  }
  parts.push('</g>');
  return parts.join('');
}

function budgetOf(budgets: readonly BudgetResult[], path: string, metric: string): BudgetResult | undefined {
  return budgets.find((b) => b.path === path && b.metric === metric);
}

/** The chart of one path; `baseline` is the baseline path's summary (absent when this is the baseline). */
export function renderPathChart(p: PathSummary, baseline: PathSummary | undefined, budgets: readonly BudgetResult[] = []): string {
  const hasDataPlane = p.roles.some((r) => r.kind === 'dataplane');
  // the closed loop keeps one budget, its ratio to the baseline (budgets.ts); the others are fixed-rate ones
  const rpsB = budgetOf(budgets, `${p.id} closed-loop`, 'rps_ratio_min');
  const disturbed = [...new Set([...p.disturbedRounds, ...(baseline?.disturbedRounds ?? [])])];
  const panels: Omit<Panel, 'disturbed'>[] = [
    {
      title: 'requests/s',
      unit: 'req/s',
      path: p.metrics.rps,
      ...(baseline ? { baseline: baseline.metrics.rps } : {}),
      ...(rpsB && baseline ? { limit: { value: rpsB.limit * baseline.metrics.rps.median, label: `budget ≥ ${rpsB.limit}× baseline (${fmt(rpsB.value)}×)`, pass: rpsB.pass } } : {}),
    },
    {
      title: 'p99 latency (ms)',
      unit: 'ms',
      path: p.metrics.p99_ms,
      ...(baseline ? { baseline: baseline.metrics.p99_ms } : {}),
    },
    hasDataPlane
      ? {
          title: 'data plane vCPU-s / 1k req',
          unit: 'vCPU-s/1k req',
          path: p.metrics.cpu_per_1k_req,
        }
      : { title: 'app vCPU-s / 1k req', unit: 'vCPU-s/1k req', path: p.metrics.app_cpu_per_1k_req },
    hasDataPlane
      ? {
          title: 'data plane RSS (MiB)',
          unit: 'MiB',
          path: p.metrics.rss_mb,
        }
      : { title: 'client vCPU-s / 1k req', unit: 'vCPU-s/1k req', path: p.metrics.client_cpu_per_1k_req },
  ];
  const mine = budgets.filter((b) => b.path === `${p.id} closed-loop`);
  const met = mine.filter((b) => b.pass).length;
  const verdict = mine.length === 0 ? 'no budgets' : `${met}/${mine.length} budgets met`;
  const verdictColor = mine.length === 0 ? '#57606a' : met === mine.length ? '#1a7f37' : '#cf222e';
  const roles = p.roles.map((r) => `${r.role} ${fmt(r.cpu_per_1k_req.median)} vCPU-s/1k, ${fmt(r.rss_mb.median)} MiB`).join(' · ');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="budget-chart" data-path="${esc(p.id)}" data-budgets-met="${met}" data-budgets="${mine.length}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif" role="img" aria-label="${esc(`(${p.letter}) ${p.id}: ${verdict}`)}">` +
    `<rect width="${W}" height="${H}" fill="#ffffff"/>` +
    `<text x="12" y="18" font-size="14" font-weight="600">${esc(`(${p.letter}) ${p.id}`)} <tspan font-weight="400" fill="#57606a">${esc(p.description)}</tspan></text>` +
    `<text x="12" y="34" font-size="11" fill="#57606a">${esc(`${p.client} → ${p.url} · limited by: ${p.limitedBy} · ${p.verified}`)}</text>` +
    (roles ? `<text x="12" y="49" font-size="11" fill="#57606a">${esc(roles)}</text>` : '') +
    `<text class="verdict" x="${W - 12}" y="18" font-size="12" text-anchor="end" fill="${verdictColor}">${esc(verdict)}</text>` +
    (baseline ? `<text x="${W - 12}" y="${H - 8}" font-size="11" text-anchor="end"><tspan fill="${BASE_FILL}">■ baseline</tspan> <tspan fill="${PATH_FILL}">■ ${esc(p.id)}</tspan> — lines: median, dashed: budget</text>` : '') +
    panels.map((x, i) => panel({ ...x, disturbed }, i)).join('') +
    (disturbed.length ? `<text x="12" y="${H - 8}" font-size="11" fill="#bc4c00">* another job used the machine during this round</text>` : '') +
    `</svg>\n`
  );
}

// ---------------------------------------------------------------------------------------------
// Fixed-rate charts (reports/<run>/rate-<path>.svg): Istio's units, one panel each — p90 and p99 added over the
// baseline, vCPU per 1000 req/s and RSS of each data-plane process — a bar per (connection count or process,
// round), the median as a tick, the budget dashed, Istio's published figure (with its version) dotted.

interface Group {
  label: string;
  values: number[];
  median: number;
}

interface Ref {
  value: number;
  label: string;
  kind: 'budget' | 'istio';
  pass?: boolean;
}

const GROUP_FILLS = ['#0969da', '#8250df', '#bf3989', '#1a7f37', '#9a6700'];

function groupedPanel(title: string, unit: string, groups: Group[], refs: Ref[], i: number): string {
  const x0 = i * PANEL_W + 34;
  const plotW = PANEL_W - 48;
  const all = [...groups.flatMap((g) => g.values), ...refs.map((r) => r.value)].filter((v) => Number.isFinite(v));
  const max = Math.max(1e-9, ...all) * 1.15;
  const min = Math.min(0, ...all);
  const span = max - min;
  const y = (v: number): number => TOP + PLOT_H - ((Math.max(min, Number.isFinite(v) ? v : 0) - min) / span) * PLOT_H;
  const bars = groups.reduce((n, g) => n + g.values.length, 0);
  const barW = Math.max(2, Math.min(18, (plotW - 6 * groups.length) / Math.max(1, bars)));
  const parts: string[] = [
    `<g class="panel" data-panel="${esc(title)}">`,
    `<text x="${x0}" y="${TOP - 10}" font-size="12" font-weight="600">${esc(title)}</text>`,
    `<line x1="${x0}" x2="${x0 + plotW}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" stroke="#d0d7de"/>`,
  ];
  let x = x0;
  groups.forEach((g, gi) => {
    const fill = GROUP_FILLS[gi % GROUP_FILLS.length]!;
    const gx = x;
    g.values.forEach((v, r) => {
      const top = Math.min(y(v), y(0));
      const h = Math.abs(y(0) - y(v));
      parts.push(`<rect class="bar" data-group="${esc(g.label)}" data-round="${r + 1}" data-value="${v}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${fill}"><title>${esc(`${g.label}, round ${r + 1}: ${fmt(v)} ${unit}`)}</title></rect>`);
      x += barW;
    });
    if (Number.isFinite(g.median)) {
      const my = y(g.median).toFixed(1);
      parts.push(`<line class="median" x1="${gx.toFixed(1)}" x2="${x.toFixed(1)}" y1="${my}" y2="${my}" stroke="#24292f" stroke-width="1.5"><title>${esc(`${g.label} median ${fmt(g.median)} ${unit}`)}</title></line>`);
    }
    parts.push(`<text x="${((gx + x) / 2).toFixed(1)}" y="${TOP + PLOT_H + 13}" font-size="10" text-anchor="middle" fill="${fill}">${esc(g.label)}</text>`);
    x += 6;
  });
  refs.forEach((r, k) => {
    if (!Number.isFinite(r.value)) return;
    const ly = y(r.value).toFixed(1);
    const color = r.kind === 'istio' ? '#9a6700' : r.pass ? '#1a7f37' : '#cf222e';
    parts.push(`<line class="${r.kind === 'istio' ? 'istio-ref' : 'limit'}" x1="${x0}" x2="${x0 + plotW}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="1.5" stroke-dasharray="${r.kind === 'istio' ? '2 2' : '5 3'}"><title>${esc(r.label)}</title></line>`);
    parts.push(`<text x="${x0}" y="${TOP + PLOT_H + 28 + 13 * k}" font-size="10" fill="${color}">${esc(r.label)}</text>`);
  });
  parts.push('</g>');
  return parts.join('');
}

/** The fixed-rate chart of one path: its rows (one per connection count), with the budgets and Istio's figures. */
export function renderRateChart(rows: readonly RatePathFigures[], budgets: readonly BudgetResult[] = []): string {
  const r0 = rows[0];
  if (!r0) throw new Error('renderRateChart: no rows');
  const isIstio = r0.path.startsWith('istio-');
  const budgetRef = (metric: string, label: (b: BudgetResult) => string): Ref[] => {
    const b = budgets.find((x) => x.path.startsWith(`${r0.path} c=`) && x.metric === metric);
    return b ? [{ value: b.limit, label: label(b), kind: 'budget', pass: budgets.filter((x) => x.path.startsWith(`${r0.path} c=`) && x.metric === metric).every((x) => x.pass) }] : [];
  };
  const valid = (r: RatePathFigures) => r.rounds.filter((x) => !x.void);
  const added = (k: 'p90' | 'p99'): Group[] => rows.map((r) => ({ label: `c=${r.connections}`, values: valid(r).map((x) => x.latencyAddedMs?.[k] ?? NaN), median: r.latencyAddedMs?.[k] ?? NaN }));
  const roles = Object.keys(r0.vcpuPer1kRps);
  const perProc = (f: (x: RateRound, role: string) => number, m: (r: RatePathFigures, role: string) => number): Group[] =>
    roles.flatMap((role) => rows.map((r) => ({ label: `${role}${rows.length > 1 ? ` c=${r.connections}` : ''}`, values: valid(r).map((x) => f(x, role)), median: m(r, role) })));
  const panels: string[] = [];
  if (r0.latencyAddedMs) {
    panels.push(groupedPanel('p90 added (ms)', 'ms', added('p90'), [...budgetRef('p90_added_ms_max', (b) => `budget ≤ ${b.limit} ms`), ...(isIstio ? [{ value: 0.228, label: 'Istio 1.20: 0.228 ms', kind: 'istio' as const }] : [])], 0));
    panels.push(groupedPanel('p99 added (ms)', 'ms', added('p99'), [...budgetRef('p99_added_ms_max', (b) => `budget ≤ ${b.limit} ms`), ...(isIstio ? [{ value: 0.298, label: 'Istio 1.20: 0.298 ms', kind: 'istio' as const }] : [])], 1));
  } else {
    panels.push(groupedPanel('p90 latency (ms)', 'ms', rows.map((r) => ({ label: `c=${r.connections}`, values: valid(r).map((x) => x.latencyMs.p90), median: r.latencyMs.p90 })), [], 0));
    panels.push(groupedPanel('p99 latency (ms)', 'ms', rows.map((r) => ({ label: `c=${r.connections}`, values: valid(r).map((x) => x.latencyMs.p99), median: r.latencyMs.p99 })), [], 1));
  }
  if (roles.length) {
    const vcpuB = budgets.find((x) => x.path.startsWith(`${r0.path} c=`) && x.metric.startsWith('vcpu_per_1k_rps_max['));
    const rssB = budgets.find((x) => x.path.startsWith(`${r0.path} c=`) && x.metric.startsWith('rss_mib_max['));
    const bpass = (prefix: string) => budgets.filter((x) => x.path.startsWith(`${r0.path} c=`) && x.metric.startsWith(prefix)).every((x) => x.pass);
    panels.push(groupedPanel('vCPU per 1000 req/s', 'vCPU', perProc((x, role) => x.vcpuPer1kRps[role] ?? NaN, (r, role) => r.vcpuPer1kRps[role] ?? NaN), [
      ...(vcpuB ? [{ value: vcpuB.limit, label: `budget ≤ ${vcpuB.limit} per process`, kind: 'budget' as const, pass: bpass('vcpu_per_1k_rps_max[') }] : []),
      ...(isIstio ? [{ value: 0.2, label: 'Istio 1.24: ~0.20 per sidecar', kind: 'istio' as const }] : []),
    ], 2));
    panels.push(groupedPanel('RSS (MiB)', 'MiB', perProc((x, role) => x.rssMiB[role] ?? NaN, (r, role) => r.rssMiB[role] ?? NaN), [
      ...(rssB ? [{ value: rssB.limit, label: `budget ≤ ${rssB.limit} MiB`, kind: 'budget' as const, pass: bpass('rss_mib_max[') }] : []),
      ...(isIstio ? [{ value: 60 / 1.048576, label: 'Istio 1.24: ~60 MB per sidecar', kind: 'istio' as const }] : []),
    ], 3));
  } else {
    panels.push(groupedPanel('achieved req/s', 'req/s', rows.map((r) => ({ label: `c=${r.connections}`, values: valid(r).map((x) => x.achievedRps), median: r.achievedRps })), [{ value: r0.rate, label: `rate ${r0.rate} req/s`, kind: 'budget', pass: true }], 2));
  }
  const mine = budgets.filter((b) => b.path.startsWith(`${r0.path} c=`));
  const met = mine.filter((b) => b.pass).length;
  const verdict = mine.length === 0 ? 'no budgets' : `${met}/${mine.length} budgets met`;
  const verdictColor = mine.length === 0 ? '#57606a' : met === mine.length ? '#1a7f37' : '#cf222e';
  const cp = `${r0.controlPlane}${r0.istioVersion ? ` ${r0.istioVersion}` : ''}`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="rate-chart" data-path="${esc(r0.path)}" data-budgets-met="${met}" data-budgets="${mine.length}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif" role="img" aria-label="${esc(`(${r0.letter}) ${r0.path}: ${verdict}`)}">` +
    `<rect width="${W}" height="${H}" fill="#ffffff"/>` +
    `<text x="12" y="18" font-size="14" font-weight="600">${esc(`(${r0.letter}) ${r0.path}`)} <tspan font-weight="400" fill="#57606a">${esc(r0.description)}</tspan></text>` +
    `<text x="12" y="34" font-size="11" fill="#57606a">${esc(`${r0.generator} at ${r0.rate} req/s, ${r0.payloadBytes} B · control plane ${cp} · rounds that held the rate: ${rows.map((r) => `c=${r.connections} ${r.validRounds}/${r.rounds.length}`).join(', ')}`)}</text>` +
    `<text class="verdict" x="${W - 12}" y="18" font-size="12" text-anchor="end" fill="${verdictColor}">${esc(verdict)}</text>` +
    panels.join('') +
    `<text x="${W - 12}" y="${H - 8}" font-size="11" text-anchor="end" fill="#57606a">bars: rounds; solid: median; dashed: budget; dotted: Istio's published figure</text>` +
    `</svg>\n`
  );
}
