// report.html: one self-contained page (no network: inline CSS, inline SVG, a small inline
// script, and a CSP that forbids fetching anything). Per scenario a truth table and a traffic
// graph; clicking a cell or an edge shows its record as JSON. Pure: data in, HTML text out.
//
// Stable hooks for browser tests:
//   #summary[data-total|data-passed|data-failed|data-mtls|data-tls|data-plaintext|data-denied|data-scenarios|data-suites|data-budgets|data-budgets-failed|data-result]
//   td[data-cell="mtls|tls|plaintext|denied"][data-idx][data-pass][data-verdict]  one per record
//   g[data-edge="mtls|tls|plaintext|denied"][data-idx][data-pass][data-verdict]   one per record
//   g[data-budget="pass|fail"][data-budget-idx]                                    one per budget
//   #evidence (the JSON of the clicked element), #evidence-title
//   article.scenario[data-suite][data-scenario][data-pass]
//   #failed-tests li[data-failed-test=<suite>]   one per failed mocha test (results.json `tests`)
//   #version-matrix[data-versions] (its h2[data-axes]: envoy, istio or istio,envoy) td[data-vcell="mtls|tls|plaintext|denied"][data-idx][data-version]  (two or more Envoy or Istio versions)
//   #passes li[data-pass-dir] a[data-conformance]   each version's own run directory (runs over several versions)
import type { ResultRecord } from '../model/verdict.ts';
import { badgeIcon, renderGraph } from './graph.ts';
import { matrixTitle, versionMatrix, type VersionMatrix } from './matrix.ts';
import { completeness, incompleteLine } from './completeness.ts';
import { ISTIO_PUBLISHED, ISTIO_PUBLISHED_SOURCE, RATE_SPREAD_MAX, istioUnitsRows, type IstioUnitsRow } from '../load/istio-units.ts';
import type { WithLoadRuns } from '../load/report.ts';
import { durationMs, edgeKind, escapeXml as esc, formatDuration, groupBy, perVersionView, runHeader, tally, unique, type BudgetResult, type EdgeKind, type ResultsFile, type RunPass } from './meta.ts';

export interface HtmlOptions {
  /** Page title; default `meshproof <run>`. */
  title?: string;
}

export function renderHtml(input: ResultsFile, opts: HtmlOptions = {}): string {
  const matrix = versionMatrix(input);
  // Scenarios named per Envoy version for the tables and graphs; the evidence panel shows the records as written.
  const file = perVersionView(input);
  const head = runHeader(file);
  const records = file.records;
  const budgets = file.budgets ?? [];
  const t = tally(records);
  const bFailed = budgets.filter((b) => !b.pass).length;
  const suites = groupBy(
    records.map((r, idx) => ({ r, idx })),
    (x) => x.r.suite,
  );
  const scenarioCount = unique(records.map((r) => `${r.suite}\u0000${r.scenario}`)).length;
  const failedTests = (file.tests ?? []).filter((x) => x.state === 'failed');
  const incomplete = incompleteLine(completeness(input));
  const ok = t.failed === 0 && bFailed === 0 && failedTests.length === 0 && !incomplete;
  const result = incomplete ? 'incomplete' : ok ? 'passed' : 'failed';
  const title = opts.title ?? `meshproof ${head.run}`;

  const body: string[] = [];
  body.push(`<header><h1>${esc(title)} <span class="result ${ok ? 'pass' : 'fail'}">${result}</span></h1>${metaList(file)}</header>`);
  if (incomplete) body.push(`<p id="incomplete" class="incomplete">${esc(incomplete)}</p>`);
  body.push(
    `<section id="summary" data-result="${ok ? 'pass' : 'fail'}"${incomplete ? ' data-incomplete="true"' : ''} data-total="${t.cells}" data-passed="${t.passed}" data-failed="${t.failed}" ` +
      `data-mtls="${t.mtls}" data-tls="${t.tls}" data-plaintext="${t.plaintext}" data-denied="${t.denied}" ` +
      `data-scenarios="${scenarioCount}" data-suites="${suites.size}" data-budgets="${budgets.length}" data-budgets-failed="${bFailed}" ` +
      `data-tests="${file.tests?.length ?? 0}" data-tests-failed="${failedTests.length}">` +
      `<span class="count" data-count="total"><b>${t.cells}</b> cells</span>` +
      `<span class="count ok" data-count="passed"><b>${t.passed}</b> correct</span>` +
      `<span class="count ${t.failed ? 'bad' : ''}" data-count="failed"><b>${t.failed}</b> wrong</span>` +
      `<span class="count" data-count="mtls">${badgeIcon('mtls')} <b>${t.mtls}</b> mtls</span>` +
      `<span class="count" data-count="tls">${badgeIcon('tls')} <b>${t.tls}</b> tls</span>` +
      `<span class="count" data-count="plaintext">${badgeIcon('plaintext')} <b>${t.plaintext}</b> plaintext</span>` +
      `<span class="count" data-count="denied">${badgeIcon('denied')} <b>${t.denied}</b> denied</span>` +
      `<span class="count" data-count="scenarios"><b>${scenarioCount}</b> scenarios in <b>${suites.size}</b> suites</span>` +
      (budgets.length ? `<span class="count ${bFailed ? 'bad' : ''}" data-count="budgets"><b>${budgets.length - bFailed}/${budgets.length}</b> budgets met</span>` : '') +
      (file.tests?.length ? `<span class="count ${failedTests.length ? 'bad' : ''}" data-count="tests"><b>${file.tests.length - failedTests.length}/${file.tests.length}</b> tests passed</span>` : '') +
      `<label class="filter"><input type="checkbox" id="only-wrong"> only scenarios with wrong cells</label>` +
      `</section>`,
  );
  body.push(legend());
  body.push(toc(suites));

  const main: string[] = [];
  if (failedTests.length) {
    main.push(
      `<section id="failed-tests"><h2>Failed tests</h2><ul>${failedTests
        .map((x) => `<li data-failed-test="${esc(x.suite)}"><b>${esc(x.suite)}</b> — ${esc(x.title)}<pre>${esc(x.error ?? 'failed')}</pre></li>`)
        .join('')}</ul></section>`,
    );
  }
  if (matrix) main.push(matrixSection(matrix));
  if (head.meta?.passes?.length) main.push(passesSection(head.meta.passes));
  let sid = 0;
  for (const [suite, items] of suites) {
    const wrong = items.filter((x) => !x.r.pass).length;
    main.push(`<section class="suite" data-suite="${esc(suite)}" data-pass="${wrong === 0}">`);
    main.push(`<h2><span class="result ${wrong ? 'fail' : 'pass'}">${wrong ? `${wrong} wrong` : 'pass'}</span> ${esc(suite)}</h2>`);
    for (const [scenario, cells] of groupBy(items, (x) => x.r.scenario)) {
      const bad = cells.filter((x) => !x.r.pass).length;
      main.push(
        `<article class="scenario" id="scenario-${sid++}" data-suite="${esc(suite)}" data-scenario="${esc(scenario)}" data-pass="${bad === 0}" data-cells="${cells.length}" data-wrong="${bad}">`,
        `<h3><span class="result ${bad ? 'fail' : 'pass'}">${bad ? `${bad} wrong` : 'pass'}</span> ${esc(scenario)}</h3>`,
        `<div class="scenario-body">`,
        truthTableHtml(cells),
        `<figure>${renderGraph(
          cells.map((x) => x.r),
          { indexOf: (_r, i) => cells[i]!.idx, title: `${suite} / ${scenario}` },
        )}</figure>`,
        `</div>`,
        `<p class="tally">${bad} wrong, ${cells.length - bad} correct</p>`,
        `</article>`,
      );
    }
    main.push(`</section>`);
  }
  const load = istioUnitsRows(input as ResultsFile & WithLoadRuns);
  if (load.length) main.push(istioUnitsSection(load));
  if (budgets.length) main.push(budgetSection(budgets));
  if (file.skipped?.length) {
    main.push(
      `<section class="skipped"><h2>Skipped</h2><ul>${file.skipped
        .map((s) => `<li data-skipped="${esc(s.suite)}"><b>${esc(s.profile)} / ${esc(s.suite)}${s.scenario ? ` / ${esc(s.scenario)}` : ''}</b>: ${esc(s.reason)}</li>`)
        .join('')}</ul></section>`,
    );
  }
  if (!records.length && !budgets.length) main.push('<p class="empty">This run has no results.</p>');

  const data = jsonForScript({ records: input.records, budgets });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="meshproof">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<div class="page">
<div class="content">
${body.join('\n')}
<main>
${main.join('\n')}
</main>
</div>
<aside id="evidence-panel" aria-live="polite">
<h2>Evidence</h2>
<p id="evidence-title">Click a table cell, an edge or a budget.</p>
<pre id="evidence"></pre>
</aside>
</div>
<script type="application/json" id="meshproof-data">${data}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function metaList(file: ResultsFile): string {
  const head = runHeader(file);
  const m = head.meta;
  const rows: [string, string][] = [
    ['run', head.run],
    ['substrate', head.substrate],
    ['profiles', head.profiles.join(', ')],
  ];
  if (m) {
    const d = durationMs(m.started, m.finished);
    rows.push(['started', m.started], ['finished', `${m.finished}${d === undefined ? '' : ` (${formatDuration(d)})`}`]);
    if (m.machine) rows.push(['machine', `${m.machine.hostname}: ${m.machine.cpus} CPUs, ${m.machine.memMiB} MiB, ${m.machine.os}, kernel ${m.machine.kernel}`]);
    for (const [k, v] of Object.entries(m.versions ?? {})) rows.push([k, v]);
    if (m.controlPlane) rows.push(['control plane', `${m.controlPlane}${m.istioVersion ? ` ${m.istioVersion}` : ''}`]);
    if (m.istioVersions?.length) rows.push(['istio versions', m.istioVersions.join(', ')]);
    if (m.envoyVersions?.length) rows.push(['envoy versions', m.envoyVersions.join(', ')]);
    if (m.shards?.length) rows.push(['shards', m.shards.map((s) => s.run).join(', ')]);
  }
  return `<dl class="meta">${rows.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`;
}

/** Cell × version (Envoy, Istio, or both): one column per version, each cell its verdict (clickable like the truth tables). */
function matrixSection(m: VersionMatrix): string {
  const differing = m.rows.filter((r) => r.differs || r.wrong).length;
  const heads = m.columns.map((c) => `<th scope="col">${esc(c.label)}</th>`).join('');
  const rows = m.rows.map((row) => {
    const tds = row.byVersion.map((x, i) => {
      if (!x) return `<td class="none" data-version="${esc(m.versions[i])}"></td>`;
      const r = x.record;
      const kind = edgeKind(r.verdict);
      return (
        `<td class="cell ${kind}${r.pass ? '' : ' wrong'}" data-vcell="${kind}" data-idx="${x.idx}" data-pass="${r.pass}" data-version="${esc(m.versions[i])}" ` +
        `tabindex="0" role="button" title="${esc(`${row.cell} with ${m.columns[i]!.label}: ${r.verdict}, expected ${r.expected}`)}">` +
        `${badgeIcon(kind, 14)}<span class="mark">${esc(r.verdict)}${r.pass ? '' : ' !'}</span></td>`
      );
    });
    return `<tr data-differs="${row.differs}"><th scope="row">${esc(row.suite)} / ${esc(row.scenario)}</th><td class="cellname">${esc(row.cell)}</td>${tds.join('')}</tr>`;
  });
  return (
    `<section id="version-matrix" data-versions="${m.versions.length}" data-differing="${differing}"><h2 data-axes="${esc(m.axes.join(','))}">${esc(matrixTitle(m.axes))}</h2>` +
    `<p class="legend">${m.rows.length} cells × ${m.versions.length} versions: ${differing} differ between versions or are wrong.</p>` +
    `<table class="truth matrix"><thead><tr><th class="corner">suite / scenario</th><th class="corner">cell</th>${heads}</tr></thead><tbody>${rows.join('')}</tbody></table></section>`
  );
}

/** Each version's own run directory and its reports, linked relative to this page. */
function passesSection(passes: RunPass[]): string {
  const a = (href: string, label: string, attr = '') => `<a href="${esc(encodeURI(href))}"${attr}>${esc(label)}</a>`;
  const items = passes.map((p) => {
    const what = [p.istioVersion ? `istio ${p.istioVersion}` : '', `envoy ${p.envoyVersion}`].filter(Boolean).join(' · ');
    return (
      `<li data-pass-dir="${esc(p.dir)}"><b>${esc(what)}</b> (${esc(p.controlPlane)}): ${a(`${p.dir}/report.html`, `${p.dir}/`)} · ` +
      `${a(`${p.dir}/conformance-report.yaml`, 'conformance-report.yaml', ' data-conformance')} · ${a(`${p.dir}/summary.md`, 'summary.md')}</li>`
    );
  });
  return `<section id="passes"><h2>Each version's own run</h2><ul>${items.join('')}</ul></section>`;
}

function legend(): string {
  const items: [EdgeKind, string][] = [
    ['mtls', 'allowed: mutual TLS'],
    ['tls', 'allowed: TLS (server-authenticated)'],
    ['plaintext', 'allowed: plaintext'],
    ['denied', 'denied'],
  ];
  return (
    `<p class="legend">${items.map(([k, label]) => `<span data-legend="${k}">${badgeIcon(k)} ${esc(label)}</span>`).join('')}` +
    `<span data-legend="wrong"><span class="wrong-swatch"></span> differs from expected</span>` +
    `<span>rows: from · columns: to:port/protocol · <code>.</code> allowed · <code>X</code> denied · <code>!</code> wrong</span></p>`
  );
}

function toc(suites: Map<string, { r: ResultRecord; idx: number }[]>): string {
  let sid = 0;
  const items: string[] = [];
  for (const [suite, list] of suites) {
    const sc = [...groupBy(list, (x) => x.r.scenario)].map(([scenario, cells]) => {
      const bad = cells.filter((x) => !x.r.pass).length;
      return `<li class="${bad ? 'fail' : 'pass'}"><a href="#scenario-${sid++}">${esc(scenario)}</a>${bad ? ` <b>${bad} wrong</b>` : ''}</li>`;
    });
    items.push(`<li>${esc(suite)}<ul>${sc.join('')}</ul></li>`);
  }
  return `<nav class="toc"><details${items.length <= 12 ? ' open' : ''}><summary>Scenarios</summary><ul>${items.join('')}</ul></details></nav>`;
}

/**
 * Rows are callers, columns destinations (to:port/protocol). Every record is exactly one
 * <td data-cell>: when a caller probed the same column more than once, its row repeats.
 */
function truthTableHtml(cells: { r: ResultRecord; idx: number }[]): string {
  const colKey = (r: ResultRecord) => `${r.to}\u0000${r.port}\u0000${r.protocol}`;
  const cols = unique(cells.map((x) => colKey(x.r)));
  const colOf = new Map(cells.map((x) => [colKey(x.r), x.r]));
  const rows: string[] = [];
  for (const [from, mine] of groupBy(cells, (x) => x.r.from)) {
    const byCol = groupBy(mine, (x) => colKey(x.r));
    const repeat = Math.max(...[...byCol.values()].map((l) => l.length));
    for (let k = 0; k < repeat; k++) {
      const tds = cols.map((c) => {
        const x = byCol.get(c)?.[k];
        if (!x) return '<td class="none"></td>';
        const r = x.r;
        const kind = edgeKind(r.verdict);
        const mark = (r.observed === 'allowed' ? '.' : 'X') + (r.pass ? '' : '!');
        const tip = `${r.from} → ${r.to}:${r.port}/${r.protocol}: ${r.verdict}, expected ${r.expected}`;
        return (
          `<td class="cell ${kind}${r.pass ? '' : ' wrong'}" data-cell="${kind}" data-idx="${x.idx}" data-pass="${r.pass}" data-verdict="${esc(r.verdict)}" ` +
          `tabindex="0" role="button" title="${esc(tip)}">${badgeIcon(kind, 14)}<span class="mark">${esc(mark)}</span></td>`
        );
      });
      rows.push(`<tr><th scope="row">${esc(from)}${repeat > 1 ? ` <small>#${k + 1}</small>` : ''}</th>${tds.join('')}</tr>`);
    }
  }
  const heads = cols.map((c) => {
    const r = colOf.get(c)!;
    return `<th scope="col">${esc(r.to)}<br><small>:${r.port}/${esc(r.protocol)}</small></th>`;
  });
  return `<table class="truth"><thead><tr><th class="corner">from \\ to</th>${heads.join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** One horizontal bar per budget: the value, the limit as a tick, each round as a dot; each on its own scale. */
function budgetSection(budgets: BudgetResult[]): string {
  const W = 720;
  const labelW = 260;
  const barW = W - labelW - 160;
  const rowH = 34;
  const H = budgets.length * rowH + 10;
  const rows = budgets.map((b, i) => {
    const vals = [b.value, b.limit, ...(b.rounds ?? [])].filter((x) => Number.isFinite(x) && x >= 0);
    const max = Math.max(1e-9, ...vals) * 1.1;
    const x = (v: number) => labelW + (Math.max(0, v) / max) * barW;
    const y = i * rowH + 8;
    const color = b.pass ? '#1a7f37' : '#cf222e';
    const label = `${b.path} ${b.metric}`;
    const tip = `${label}: ${fmt(b.value)} ${b.unit}, limit ${fmt(b.limit)} ${b.unit}${b.pass ? '' : ' (missed)'}`;
    const dots = (b.rounds ?? [])
      .map((v) => `<circle cx="${x(v).toFixed(1)}" cy="${y + 9}" r="2.5" fill="#24292f" fill-opacity="0.55"><title>${esc(`${fmt(v)} ${b.unit}`)}</title></circle>`)
      .join('');
    return (
      `<g class="budget" data-budget="${b.pass ? 'pass' : 'fail'}" data-budget-idx="${i}" tabindex="0" role="button" aria-label="${esc(tip)}">` +
      `<title>${esc(tip)}</title>` +
      `<text x="${labelW - 8}" y="${y + 13}" text-anchor="end" font-size="12">${esc(truncate(label, 40))}</text>` +
      `<rect x="${labelW}" y="${y}" width="${barW}" height="18" fill="#f6f8fa"/>` +
      `<rect x="${labelW}" y="${y}" width="${(x(b.value) - labelW).toFixed(1)}" height="18" fill="${color}" fill-opacity="0.8"/>` +
      `<line x1="${x(b.limit).toFixed(1)}" x2="${x(b.limit).toFixed(1)}" y1="${y - 3}" y2="${y + 21}" stroke="#24292f" stroke-width="2"/>` +
      dots +
      `<text x="${labelW + barW + 8}" y="${y + 13}" font-size="12">${esc(`${fmt(b.value)} / ${fmt(b.limit)} ${b.unit}`)}</text>` +
      `</g>`
    );
  });
  return (
    `<section id="budgets"><h2>Budgets</h2>` +
    `<p class="legend">bar: measured value · tick: limit · dots: rounds</p>` +
    `<svg class="budgets" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="budgets">${rows.join('')}</svg></section>`
  );
}

/**
 * The fixed-rate figures in Istio's units (load/istio-units.ts): a table beside Istio's published figures (each with
 * its version), and two charts, p90 added per row against Istio 1.20's 0.228 ms and vCPU per 1000 req/s of each
 * data-plane process against Istio 1.24's ~0.20 per sidecar.
 */
function istioUnitsSection(rows: IstioUnitsRow[]): string {
  const f = (x: number | null | undefined, d = 3) => (x !== null && x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '–');
  const pct = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
  const name = (r: IstioUnitsRow) => `(${r.letter}) ${r.path} c=${r.connections} · ${r.controlPlane}`;
  const trs = rows.map(
    (r) =>
      `<tr data-load-row="${esc(r.path)}"><td>${esc(name(r))}</td><td>${esc(`${f(r.achievedRps, 0)}/${r.rate}`)}</td><td>${esc(r.rounds)}</td>` +
      `<td>${r.added ? esc(`${f(r.added.p50)} / ${f(r.added.p90)} (±${pct(r.p90Spread)}) / ${f(r.added.p99)}`) : 'baseline'}</td>` +
      `<td>${r.vcpu.map((v) => esc(`${v.role} ${f(v.value)} (±${pct(v.spread)}${v.workers !== null ? `, ${v.workers} workers` : ''})`)).join('<br>') || '–'}</td>` +
      `<td>${r.rss.map((v) => esc(`${v.role} ${f(v.value, 1)}`)).join('<br>') || '–'}</td><td>${esc(r.istio ?? '')}</td></tr>`,
  );
  const published = ISTIO_PUBLISHED.map((x) => `<tr data-istio="${esc(x.istioVersion)}"><td>Istio ${esc(x.istioVersion)}</td><td>${esc(x.what)}</td><td>${esc(`${x.value} ${x.unit}`)}</td><td>${esc(x.conditions)}</td></tr>`);
  const bars = (title: string, items: { label: string; value: number }[], ref: { value: number; label: string }, unit: string): string => {
    const W = 720;
    const labelW = 300;
    const barW = W - labelW - 90;
    const rowH = 22;
    const H = items.length * rowH + 34;
    const max = Math.max(1e-9, ref.value, ...items.map((i) => i.value).filter((v) => Number.isFinite(v))) * 1.1;
    const x = (v: number) => labelW + (Math.max(0, Number.isFinite(v) ? v : 0) / max) * barW;
    const g = items.map((it, i) => {
      const y = i * rowH + 20;
      return (
        `<g class="load-bar"><title>${esc(`${it.label}: ${f(it.value)} ${unit}`)}</title>` +
        `<text x="${labelW - 8}" y="${y + 12}" text-anchor="end" font-size="11">${esc(truncate(it.label, 48))}</text>` +
        `<rect x="${labelW}" y="${y}" width="${(x(it.value) - labelW).toFixed(1)}" height="15" fill="#0969da" fill-opacity="0.8"/>` +
        `<text x="${(x(it.value) + 4).toFixed(1)}" y="${y + 12}" font-size="11">${esc(f(it.value))}</text></g>`
      );
    });
    const rx = x(ref.value).toFixed(1);
    return (
      `<svg class="load-chart" data-chart="${esc(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">` +
      `<text x="4" y="13" font-size="12" font-weight="600">${esc(title)}</text>${g.join('')}` +
      `<line class="istio-ref" x1="${rx}" x2="${rx}" y1="16" y2="${H - 4}" stroke="#9a6700" stroke-width="1.5" stroke-dasharray="3 2"><title>${esc(ref.label)}</title></line>` +
      `<text x="${rx}" y="${H - 2}" font-size="10" fill="#9a6700">${esc(ref.label)}</text></svg>`
    );
  };
  const added = rows.filter((r) => r.added).map((r) => ({ label: name(r), value: r.added!.p90 }));
  const vcpu = rows.flatMap((r) => r.vcpu.map((v) => ({ label: `${name(r)} ${v.role}`, value: v.value })));
  return (
    `<section id="load"><h2>Throughput in Istio's units</h2>` +
    `<p class="legend">fortio at a fixed rate, ${rows[0]!.payloadBytes} B responses; medians of the rounds that held the rate (± spread, target ≤ ${RATE_SPREAD_MAX * 100}%); added = over the baseline of the same round</p>` +
    `<table class="load"><thead><tr><th>path · control plane</th><th>req/s</th><th>rounds</th><th>added ms p50 / p90 / p99</th><th>vCPU per 1000 req/s</th><th>RSS MiB</th><th>Istio published</th></tr></thead><tbody>${trs.join('')}</tbody></table>` +
    (added.length ? bars('p90 added (ms)', added, { value: 0.228, label: 'Istio 1.20: 0.228 ms' }, 'ms') : '') +
    (vcpu.length ? bars('vCPU per 1000 req/s, per data-plane process', vcpu, { value: 0.2, label: 'Istio 1.24: ~0.20 per sidecar' }, 'vCPU') : '') +
    `<h3>Istio's published figures</h3><p class="legend">${esc(ISTIO_PUBLISHED_SOURCE)}</p>` +
    `<table class="istio-published"><thead><tr><th>Istio</th><th>figure</th><th>value</th><th>conditions</th></tr></thead><tbody>${published.join('')}</tbody></table></section>`
  );
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) >= 100 ? 1 : 3));
const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** JSON that cannot end its <script> element or be read as markup. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const CSS = `
:root { --ok: #1a7f37; --bad: #cf222e; --mtls: #1a7f37; --tls: #0969da; --plain: #bf8700; --deny: #6e7781; --fg: #24292f; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff; }
.page { display: grid; grid-template-columns: minmax(0, 1fr) 380px; min-height: 100vh; }
.content { padding: 16px 24px; min-width: 0; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 24px 0 8px; } h3 { font-size: 15px; margin: 16px 0 8px; }
.result { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 10px; color: #fff; vertical-align: middle; }
.result.pass { background: var(--ok); } .result.fail { background: var(--bad); }
.incomplete { border-left: 4px solid var(--bad); padding: 0.4em 0.8em; font-weight: bold; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 0 0 12px; font-size: 12px; }
dl.meta div { display: flex; gap: 6px; } dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; font-family: ui-monospace, monospace; }
#summary { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; padding: 10px 12px; background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; }
#summary .count { display: inline-flex; align-items: center; gap: 4px; } #summary .bad b { color: var(--bad); } #summary .ok b { color: var(--ok); }
#summary .filter { margin-left: auto; font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; color: var(--muted); }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
.wrong-swatch { display: inline-block; width: 14px; height: 14px; background: #ffebe9; border: 1px solid var(--bad); }
nav.toc { font-size: 13px; } nav.toc ul { margin: 2px 0; padding-left: 18px; } nav.toc li.fail a { color: var(--bad); }
section.suite { border-top: 1px solid var(--line); }
.scenario-body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; overflow-x: auto; max-width: 100%; }
table.truth { border-collapse: collapse; font-size: 12px; }
table.truth th, table.truth td { border: 1px solid var(--line); padding: 3px 6px; text-align: center; }
table.truth th[scope=row] { text-align: right; font-weight: 600; } table.truth thead th { background: var(--bg2); }
table.truth th.corner { color: var(--muted); font-weight: normal; }
td.cell { cursor: pointer; white-space: nowrap; } td.cell .badge { vertical-align: -3px; margin-right: 3px; }
td.cell .mark { font-family: ui-monospace, monospace; }
td.cell.wrong { background: #ffebe9; outline: 2px solid var(--bad); outline-offset: -2px; } td.cell.wrong .mark { color: var(--bad); font-weight: 700; }
table.matrix th[scope=row], table.matrix td.cellname { text-align: left; font-weight: normal; font-family: ui-monospace, monospace; }
table.matrix tr[data-differs="true"] th[scope=row] { font-weight: 600; }
#failed-tests pre { white-space: pre-wrap; font: 12px/1.4 ui-monospace, monospace; background: #ffebe9; padding: 6px 8px; margin: 4px 0 10px; }
td.none { background: repeating-linear-gradient(45deg, #fff, #fff 4px, var(--bg2) 4px, var(--bg2) 8px); }
g.edge { cursor: pointer; } g.edge:hover path, g.edge:focus path { stroke-width: 3; }
[data-selected] { outline: 3px solid #8250df; } g[data-selected] path:not(.hit) { stroke: #8250df; stroke-width: 3; }
td:focus, g:focus { outline: 2px solid #0969da; }
.tally { font-family: ui-monospace, monospace; font-size: 12px; color: var(--muted); }
table.load, table.istio-published { border-collapse: collapse; font-size: 13px; margin: 8px 0; } table.load td, table.load th, table.istio-published td, table.istio-published th { border: 1px solid var(--line, #d0d7de); padding: 3px 6px; text-align: left; vertical-align: top; }
g.budget { cursor: pointer; } g.budget text { font-family: system-ui, sans-serif; fill: var(--fg); }
#evidence-panel { position: sticky; top: 0; height: 100vh; overflow: auto; padding: 16px; border-left: 1px solid var(--line); background: var(--bg2); }
#evidence-panel h2 { margin-top: 0; } #evidence-title { font-weight: 600; word-break: break-all; }
#evidence { white-space: pre-wrap; word-break: break-all; font: 12px/1.4 ui-monospace, monospace; margin: 0; }
body.only-wrong article.scenario[data-pass="true"], body.only-wrong section.suite[data-pass="true"] { display: none; }
@media (max-width: 900px) { .page { grid-template-columns: 1fr; } #evidence-panel { position: static; height: auto; border-left: 0; border-top: 1px solid var(--line); } }
`;

// Plain ES5-ish script: no modules, no network; the data is the JSON element above.
const SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('meshproof-data').textContent);
  var pre = document.getElementById('evidence');
  var title = document.getElementById('evidence-title');
  function select(attr, value) {
    var old = document.querySelectorAll('[data-selected]');
    for (var i = 0; i < old.length; i++) old[i].removeAttribute('data-selected');
    var now = document.querySelectorAll('[' + attr + '="' + value + '"]');
    for (var j = 0; j < now.length; j++) now[j].setAttribute('data-selected', '');
  }
  function show(el) {
    var idx = el.getAttribute('data-idx');
    if (idx !== null) {
      var r = data.records[Number(idx)];
      title.textContent = r.suite + ' / ' + r.scenario + (r.envoyVersion ? ' (envoy ' + r.envoyVersion + ')' : '') + ': ' + r.from + ' \\u2192 ' + r.to + ':' + r.port + '/' + r.protocol + ' \\u2014 ' + r.verdict + (r.pass ? '' : ' (expected ' + r.expected + ')');
      pre.textContent = JSON.stringify(r, null, 2);
      pre.setAttribute('data-shown', 'record:' + idx);
      select('data-idx', idx);
      return;
    }
    var b = el.getAttribute('data-budget-idx');
    if (b !== null) {
      var budget = data.budgets[Number(b)];
      title.textContent = budget.path + ' ' + budget.metric;
      pre.textContent = JSON.stringify(budget, null, 2);
      pre.setAttribute('data-shown', 'budget:' + b);
      select('data-budget-idx', b);
    }
  }
  function target(ev) {
    var t = ev.target;
    return t && t.closest ? t.closest('[data-idx],[data-budget-idx]') : null;
  }
  document.addEventListener('click', function (ev) { var el = target(ev); if (el) show(el); });
  document.addEventListener('keydown', function (ev) {
    if (ev.key !== 'Enter' && ev.key !== ' ') return;
    var el = target(ev);
    if (el) { ev.preventDefault(); show(el); }
  });
  var only = document.getElementById('only-wrong');
  if (only) only.addEventListener('change', function () { document.body.classList.toggle('only-wrong', only.checked); });
  window.meshproof = { data: data, show: show };
})();
`;
