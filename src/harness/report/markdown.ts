// summary.md for a PR or release comment: the run, the failures with their evidence, a
// Cyclonus-style truth table per scenario of each suite, the throughput figures in Istio's units, and the budgets. Pure: data in, text out.
import type { ResultRecord } from '../model/verdict.ts';
import { truthTable } from './results.ts';
import { ISTIO_PUBLISHED, ISTIO_PUBLISHED_SOURCE, RATE_SPREAD_MAX, istioUnitsRows, type IstioUnitsRow } from '../load/istio-units.ts';
import type { WithLoadRuns } from '../load/report.ts';
import { completeness, incompleteLine } from './completeness.ts';
import { matrixTitle, versionMatrix, type VersionMatrix } from './matrix.ts';
import { durationMs, evidenceFields, formatDuration, groupBy, perVersionView, runHeader, tally, type BudgetResult, type ResultsFile, type RunHeader, type RunPass } from './meta.ts';

export interface MarkdownOptions {
  /** List at most this many failed cells (a GitHub comment holds 65536 characters); default 100. */
  maxFailures?: number;
  /** Fold the tables of suites without failures into <details>; default true. */
  foldPassing?: boolean;
  /** Version matrix: list every cell up to this many rows, past it only the cells that differ or are wrong; default 200. */
  maxMatrixRows?: number;
}

export function renderMarkdown(input: ResultsFile, opts: MarkdownOptions = {}): string {
  const matrix = versionMatrix(input);
  const file = perVersionView(input);
  const head = runHeader(file);
  const t = tally(file.records);
  const budgets = file.budgets ?? [];
  const budgetsFailed = budgets.filter((b) => !b.pass).length;
  const tests = file.tests ?? [];
  const failedTests = tests.filter((x) => x.state === 'failed');
  const ok = t.failed === 0 && budgetsFailed === 0 && failedTests.length === 0;
  const out: string[] = [];

  const incomplete = incompleteLine(completeness(input));
  out.push(`# meshproof run ${code(head.run)} — ${incomplete ? '❌ incomplete' : ok ? '✅ passed' : '❌ failed'}`, '');
  if (incomplete) out.push(`**${text(incomplete)}**`, '');
  out.push(...metaTable(head), '');
  const suites = groupBy(file.records, (r) => r.suite);
  const scenarios = groupBy(file.records, (r) => `${r.suite}\u0000${r.scenario}`);
  out.push(
    `**${plural(t.cells, 'cell')}: ${t.passed} correct, ${t.failed} wrong** in ${plural(scenarios.size, 'scenario')} of ${plural(suites.size, 'suite')}` +
      ` · 🔒 mtls ${t.mtls} · 🔐 tls ${t.tls} · 🔓 plaintext ${t.plaintext} · ⊘ denied ${t.denied}` +
      (budgets.length ? ` · budgets ${budgets.length - budgetsFailed}/${budgets.length} met` : '') +
      (tests.length ? ` · tests ${tests.length - failedTests.length}/${tests.length} passed` : ''),
    '',
  );
  if (file.skipped?.length) {
    out.push(`Skipped: ${file.skipped.map((s) => `${code(s.scenario ? `${s.suite}/${s.scenario}` : s.suite)} (${text(s.reason)})`).join(', ')}`, '');
  }

  // Failures first: what a reviewer needs to act on.
  const failed = file.records.filter((r) => !r.pass);
  if (failed.length) {
    const max = opts.maxFailures ?? 100;
    out.push('## Failures', '');
    for (const [suite, recs] of groupBy(failed.slice(0, max), (r) => r.suite)) {
      for (const [scenario, cells] of groupBy(recs, (r) => r.scenario)) {
        out.push(`- **${text(suite)}** / ${text(scenario)}`);
        for (const r of cells) out.push(`  - ${failureLine(r)}`);
      }
    }
    if (failed.length > max) out.push(`- … and ${failed.length - max} more wrong cells (see junit.xml / report.html)`);
    out.push('');
  }
  if (failedTests.length) {
    // A failed test is not always a wrong cell: a hook that could not start the mesh, an assertion on a counter.
    out.push('## Failed tests', '');
    for (const x of failedTests) out.push(`- **${text(x.suite)}** — ${text(x.title)}: ${code((x.error ?? 'failed').split('\n')[0]!)}`);
    out.push('');
  }

  const testsBySuite = groupBy(tests, (x) => x.suite);
  const suiteNames = [...new Set([...suites.keys(), ...testsBySuite.keys()])];
  out.push('## Suites', '', '| | suite | profile | scenarios | cells | wrong | failed tests |', '|---|---|---|---:|---:|---:|---:|');
  for (const suite of suiteNames) {
    const recs = suites.get(suite) ?? [];
    const mine = testsBySuite.get(suite) ?? [];
    const wrong = recs.filter((r) => !r.pass).length;
    const bad = mine.filter((x) => x.state === 'failed').length;
    const profiles = [...new Set([...recs.map((r) => r.profile), ...(recs.length ? [] : mine.map((x) => x.profile))])].join(', ');
    out.push(`| ${wrong || bad ? '❌' : '✅'} | ${cell(suite)} | ${cell(profiles)} | ${groupBy(recs, (r) => r.scenario).size} | ${recs.length} | ${wrong} | ${mine.length ? bad : '—'} |`);
  }
  out.push('');

  if (matrix) out.push(...matrixSection(matrix, opts.maxMatrixRows ?? 200), '');
  if (head.meta?.passes?.length) out.push(...passesSection(head.meta.passes), '');

  for (const [suite, recs] of suites) {
    const wrong = recs.filter((r) => !r.pass).length;
    const fold = (opts.foldPassing ?? true) && wrong === 0;
    const body: string[] = [];
    for (const [scenario, cells] of groupBy(recs, (r) => r.scenario)) {
      const bad = cells.filter((r) => !r.pass).length;
      body.push(`#### ${bad ? '❌' : '✅'} ${text(scenario)}`, '', fenced(truthTable(scenario, cells)), '');
    }
    if (fold) {
      out.push(`<details><summary>✅ ${html(suite)} — ${plural(recs.length, 'cell')} correct</summary>`, '', ...body, '</details>', '');
    } else {
      out.push(`### ${wrong ? '❌' : '✅'} ${text(suite)}${wrong ? ` — ${wrong} wrong` : ''}`, '', ...body);
    }
  }

  const load = istioUnitsRows(input as ResultsFile & WithLoadRuns);
  if (load.length) out.push("## Throughput in Istio's units", '', ...istioUnitsTable(load), '');
  if (budgets.length) out.push('## Budgets', '', ...budgetTable(budgets), '');
  out.push('<sub>`.` allowed · `X` denied · `!` differs from expected · rows: from, columns: to:port</sub>', '');
  return out.join('\n');
}

function metaTable(head: RunHeader): string[] {
  const m = head.meta;
  const rows: [string, string][] = [
    ['run', codeCell(head.run)],
    ['substrate', text(head.substrate)],
    ['profiles', text(head.profiles.join(', '))],
  ];
  if (m) {
    const d = durationMs(m.started, m.finished);
    rows.push(['started', text(m.started)], ['finished', text(m.finished) + (d === undefined ? '' : ` (${formatDuration(d)})`)]);
    if (m.machine) {
      rows.push(['machine', text(`${m.machine.hostname}: ${m.machine.cpus} CPUs, ${m.machine.memMiB} MiB, ${m.machine.os}, kernel ${m.machine.kernel}`)]);
    }
    const versions = Object.entries(m.versions ?? {});
    if (versions.length) rows.push(['versions', versions.map(([k, v]) => `${text(k)} ${codeCell(v)}`).join(', ')]);
    if (m.controlPlane) rows.push(['control plane', text(m.controlPlane) + (m.istioVersion ? ` ${codeCell(m.istioVersion)}` : '')]);
    if (m.istioVersions?.length) rows.push(['istio versions', m.istioVersions.map(codeCell).join(', ')]);
    if (m.envoyVersions?.length) rows.push(['envoy versions', m.envoyVersions.map(codeCell).join(', ')]);
    if (m.shards?.length) rows.push(['shards', m.shards.map((s) => codeCell(s.run)).join(', ')]);
  }
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];
}

/** One column per version (Envoy, Istio, or both): ✅/❌ and the verdict of each cell. */
function matrixSection(m: VersionMatrix, maxRows: number): string[] {
  const differing = m.rows.filter((r) => r.differs || r.wrong);
  const rows = m.rows.length <= maxRows ? m.rows : differing.slice(0, maxRows);
  const head = (c: VersionMatrix['columns'][number]) => m.axes.filter((a) => c.values[a]).map((a) => `${a} ${codeCell(c.values[a]!)}`).join(' · ');
  const out = [
    `## ${matrixTitle(m.axes)}`,
    '',
    `${plural(m.rows.length, 'cell')} × ${plural(m.versions.length, 'version')}: ${differing.length} differ between versions or are wrong.`,
    '',
    `| suite / scenario | cell | ${m.columns.map(head).join(' | ')} |`,
    `|---|---|${m.versions.map(() => '---').join('|')}|`,
  ];
  for (const r of rows) {
    const cols = r.byVersion.map((x) => (x ? `${x.record.pass ? '✅' : '❌'} ${codeCell(x.record.verdict)}` : '—'));
    out.push(`| ${cell(`${r.suite} / ${r.scenario}`)} | ${codeCell(r.cell)} | ${cols.join(' | ')} |`);
  }
  if (rows.length < m.rows.length) out.push('', `… ${m.rows.length - rows.length} more cells (the same verdict, correct, in every version) are in report.html.`);
  return out;
}

/** Each version's own run directory, with its reports (its ConformanceReport among them), linked relative to this summary. */
function passesSection(passes: RunPass[]): string[] {
  const link = (label: string, href: string) => `[${text(label)}](${encodeURI(href)})`;
  return [
    '## Each version\'s own run',
    '',
    '| version | control plane | directory | conformance report | summary |',
    '|---|---|---|---|---|',
    ...passes.map((p) => {
      const what = [p.istioVersion ? `istio ${codeCell(p.istioVersion)}` : '', `envoy ${codeCell(p.envoyVersion)}`].filter(Boolean).join(' · ');
      return `| ${what} | ${cell(p.controlPlane)} | ${codeCell(`${p.dir}/`)} | ${link(`${p.dir}/conformance-report.yaml`, `${p.dir}/conformance-report.yaml`)} | ${link('summary.md', `${p.dir}/summary.md`)} |`;
    }),
  ];
}

function failureLine(r: ResultRecord): string {
  const extra = evidenceFields(r);
  return `${code(`${r.from} → ${r.to}:${r.port}/${r.protocol}`)} expected **${r.expected}**, observed **${r.observed}** (${code(r.verdict)})${extra ? ` — ${code(extra)}` : ''}`;
}

function budgetTable(budgets: BudgetResult[]): string[] {
  const rows = budgets.map((b) => {
    const rounds = b.rounds?.length ? b.rounds.map((x) => num(x)).join(', ') : '';
    return `| ${b.pass ? '✅' : '❌'} | ${cell(b.path)} | ${cell(b.metric)} | ${num(b.value)} | ${num(b.limit)} | ${cell(b.unit)} | ${cell(rounds)} |`;
  });
  return ['| | path | metric | value | limit | unit | rounds |', '|---|---|---|---:|---:|---|---|', ...rows];
}

/** The fixed-rate figures (load/istio-units.ts) beside Istio's published ones, each with its Istio version. */
function istioUnitsTable(rows: IstioUnitsRow[]): string[] {
  const f = (x: number | null | undefined, d = 3) => (x !== null && x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '–');
  const pct = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
  const body = rows.map((r) => {
    const vcpu = r.vcpu.map((v) => `${v.role} ${f(v.value)} (±${pct(v.spread)}${v.workers !== null ? `, ${v.workers}w` : ''})`).join('<br>');
    const rss = r.rss.map((v) => `${v.role} ${f(v.value, 1)}`).join('<br>');
    const added = r.added ? `${f(r.added.p50)} / ${f(r.added.p90)} (±${pct(r.p90Spread)}) / ${f(r.added.p99)}` : 'baseline';
    return `| (${r.letter}) ${cell(r.path)} | ${cell(r.controlPlane)} | ${r.connections} | ${f(r.achievedRps, 0)}/${r.rate} | ${r.rounds} | ${added} | ${vcpu || '–'} | ${rss || '–'} | ${cell(r.istio ?? '')} |`;
  });
  const published = ISTIO_PUBLISHED.map((x) => `| Istio ${x.istioVersion} | ${cell(x.what)} | ${x.value} ${x.unit} | ${cell(x.conditions)} |`);
  return [
    `fortio at a fixed rate, ${rows[0]!.payloadBytes} B responses; medians of the rounds that held the rate (± spread, target ≤ ${RATE_SPREAD_MAX * 100}%); added = over the baseline of the same round.`,
    '',
    '| path | control plane | conns | req/s | rounds | added ms p50 / p90 / p99 | vCPU per 1000 req/s, per data-plane process | RSS MiB | Istio published |',
    '|---|---|---:|---:|---:|---|---|---|---|',
    ...body,
    '',
    `Istio's published figures (${cell(ISTIO_PUBLISHED_SOURCE)}):`,
    '',
    '| Istio | figure | value | conditions |',
    '|---|---|---:|---|',
    ...published,
  ];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) >= 100 ? 1 : 3));

/** Markdown text with its markup characters escaped (and HTML kept inert). */
export function text(s: string): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/</g, '&lt;')
    .replace(/\r?\n/g, ' ');
}

/** A table cell: text, and `|` kept out of the column structure. */
const cell = (s: string) => text(s);

/** HTML text for inside <summary>. */
function html(s: string): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An inline code span whose fence is longer than any backtick run inside it. */
export function code(s: string): string {
  const str = String(s).replace(/\r?\n/g, ' ');
  const longest = Math.max(0, ...(str.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  const pad = str.startsWith('`') || str.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${str}${pad}${fence}`;
}

/** A code span inside a table row: GFM splits cells on `|` even inside code spans. */
const codeCell = (s: string) => code(s).replace(/\|/g, '\\|');

function fenced(block: string): string {
  const longest = Math.max(0, ...(block.match(/`{3,}/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}\n${block}\n${fence}`;
}
