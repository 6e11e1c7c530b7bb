// junit.xml for CI test reporters (Jenkins, GitLab, GitHub test-reporter actions): one
// <testsuite> per meshproof suite. When the file has the run's mocha tests (`meshproof run`
// writes them), one <testcase> per suite test: a failed test's <failure> lists the suite's wrong
// cells with their evidence (wrong cells no failed test accounts for get a `probed cells` case).
// Without tests (older files), one <testcase> per (suite, scenario), failed by its wrong cells.
// With several Envoy (or Istio) versions, test and scenario names carry their column (` · envoy <v>`, ` · istio <v>`). Pure: data in, XML out.
import type { ResultRecord } from '../model/verdict.ts';
import { truthTable } from './results.ts';
import {
  cellName, columnLabel, escapeXml as esc, escapeXmlAttr as attr, evidenceLine, groupBy, perVersionView, runHeader, versionedName,
  type BudgetResult, type CellRecord, type ResultsFile, type SkippedTest, type TestResult, type VersionAxis,
  varyingAxes,
} from './meta.ts';

/** Name of the extra <testsuite> that carries throughput budgets, when the file has any. */
export const BUDGET_SUITE = 'budgets';

interface Case {
  name: string;
  time: number;
  failure?: { message: string; type: string; body: string };
  skipped?: string;
  out?: string;
}

export function renderJUnit(input: ResultsFile): string {
  const file = perVersionView(input);
  const axes = varyingAxes(input);
  const head = runHeader(file);
  const skips = file.skipped ?? [];
  const bySuite = groupBy(file.records, (r) => r.suite);
  const testsBySuite = groupBy(file.tests ?? [], (t) => t.suite);
  for (const s of testsBySuite.keys()) if (!bySuite.has(s)) bySuite.set(s, []);
  for (const s of skips) if (!bySuite.has(s.suite)) bySuite.set(s.suite, []);

  const suites: { name: string; cases: Case[]; profile: string; out?: string }[] = [];
  for (const [suite, recs] of bySuite) {
    const tests = testsBySuite.get(suite) ?? [];
    const scenarios = [...groupBy(recs, (r) => r.scenario)];
    const cases: Case[] = tests.length ? testCases(tests, recs, axes) : scenarios.map(([scenario, cells]) => scenarioCase(scenario, cells));
    for (const s of skips.filter((x) => x.suite === suite)) cases.push(skippedCase(s));
    const profile = [...new Set([...recs.map((r) => r.profile), ...tests.map((t) => t.profile), ...skips.filter((x) => x.suite === suite).map((x) => x.profile)])].join(',');
    const out = tests.length && scenarios.length ? scenarios.map(([scenario, cells]) => truthTable(scenario, cells)).join('\n\n') : undefined;
    suites.push({ name: suite, cases, profile, ...(out ? { out } : {}) });
  }
  if (file.budgets?.length) suites.push({ name: BUDGET_SUITE, cases: file.budgets.map(budgetCase), profile: head.profiles.join(',') });

  const count = (cs: Case[], f: (c: Case) => boolean) => cs.filter(f).length;
  const all = suites.flatMap((s) => s.cases);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="${attr(`meshproof ${head.run}`)}" tests="${all.length}" failures="${count(all, (c) => !!c.failure)}" errors="0" skipped="${count(all, (c) => c.skipped !== undefined)}" time="${secs(sum(all.map((c) => c.time)))}">`,
  );
  suites.forEach((s, id) => {
    const props: [string, string][] = [
      ['run', head.run],
      ['substrate', head.substrate],
      ['profile', s.profile],
      ...Object.entries(head.meta?.versions ?? {}).map(([k, v]) => [`version.${k}`, v] as [string, string]),
    ];
    if (head.meta?.envoyVersions?.length) props.push(['envoyVersions', head.meta.envoyVersions.join(',')]);
    if (head.meta?.istioVersions?.length) props.push(['istioVersions', head.meta.istioVersions.join(',')]);
    const stamp = head.meta?.started ? ` timestamp="${attr(head.meta.started)}"` : '';
    const host = head.meta?.machine?.hostname ? ` hostname="${attr(head.meta.machine.hostname)}"` : '';
    out.push(
      `  <testsuite name="${attr(s.name)}" id="${id}" package="meshproof" tests="${s.cases.length}" failures="${count(s.cases, (c) => !!c.failure)}" errors="0" skipped="${count(s.cases, (c) => c.skipped !== undefined)}" time="${secs(sum(s.cases.map((c) => c.time)))}"${stamp}${host}>`,
    );
    out.push('    <properties>');
    for (const [k, v] of props) out.push(`      <property name="${attr(k)}" value="${attr(v)}"/>`);
    out.push('    </properties>');
    for (const c of s.cases) {
      const open = `    <testcase classname="${attr(s.name)}" name="${attr(c.name)}" time="${secs(c.time)}"`;
      if (!c.failure && c.skipped === undefined && !c.out) {
        out.push(`${open}/>`);
        continue;
      }
      out.push(`${open}>`);
      if (c.skipped !== undefined) out.push(`      <skipped message="${attr(c.skipped)}"/>`);
      if (c.failure) out.push(`      <failure message="${attr(c.failure.message)}" type="${attr(c.failure.type)}">${esc(c.failure.body)}</failure>`);
      if (c.out) out.push(`      <system-out>${esc(c.out)}</system-out>`);
      out.push('    </testcase>');
    }
    if (s.out) out.push(`    <system-out>${esc(s.out)}</system-out>`);
    out.push('  </testsuite>');
  });
  out.push('</testsuites>', '');
  return out.join('\n');
}

function scenarioCase(scenario: string, cells: ResultRecord[]): Case {
  const wrong = cells.filter((r) => !r.pass);
  const c: Case = { name: scenario, time: sum(cells.map((r) => r.evidence?.ms ?? 0)) / 1000, out: truthTable(scenario, cells) };
  if (wrong.length) {
    const list = wrong.map((r) => `${cellName(r)} ${r.verdict} expected ${r.expected}/observed ${r.observed}`).join('; ');
    c.failure = {
      type: 'meshproof.CellMismatch',
      message: `${wrong.length} of ${cells.length} cells wrong: ${list}`,
      body: wrong.map(evidenceLine).join('\n'),
    };
  }
  return c;
}

/** One case per mocha test; a failed test lists the wrong cells of its suite (same version column) with their evidence. */
function testCases(tests: TestResult[], recs: CellRecord[], axes: VersionAxis[]): Case[] {
  const cases: Case[] = [];
  const explained = new Set<string>();
  const column = (x: Parameters<typeof columnLabel>[0]) => columnLabel(x, axes) ?? '';
  for (const t of tests) {
    const c: Case = { name: t.title, time: (t.ms ?? 0) / 1000 };
    if (t.state === 'pending') c.skipped = 'pending (it.skip, or this.skip() in the test)';
    if (t.state === 'failed') {
      const wrong = recs.filter((r) => !r.pass && column(r) === column(t));
      explained.add(column(t));
      const error = (t.error ?? 'failed').trim();
      const first = error.split('\n')[0]!;
      const list = wrong.map((r) => `${cellName(r)} ${r.verdict} expected ${r.expected}/observed ${r.observed}`).join('; ');
      c.failure = {
        type: wrong.length ? 'meshproof.CellMismatch' : 'meshproof.TestFailure',
        message: wrong.length ? `${first} — ${wrong.length} wrong cells: ${list}` : first,
        body: [error, ...(wrong.length ? ['', 'wrong cells:', ...wrong.map((r) => `${r.scenario}: ${evidenceLine(r)}`)] : [])].join('\n'),
      };
    }
    cases.push(c);
  }
  // Wrong cells no failed test accounts for (a suite that records without asserting).
  for (const col of groupBy(recs.filter((r) => !r.pass), column).keys()) {
    if (explained.has(col)) continue;
    const c = scenarioCase(versionedName('probed cells', col || undefined), recs.filter((r) => column(r) === col));
    c.out = undefined;
    cases.push(c);
  }
  return cases;
}

function skippedCase(s: SkippedTest): Case {
  return { name: s.scenario ?? s.suite, time: 0, skipped: s.reason };
}

function budgetCase(b: BudgetResult): Case {
  const line = `${b.path} ${b.metric}: ${b.value} ${b.unit} (limit ${b.limit} ${b.unit})${b.rounds?.length ? ` rounds=${b.rounds.join(',')}` : ''}`;
  const c: Case = { name: `${b.path} ${b.metric}`, time: 0, out: line };
  if (!b.pass) c.failure = { type: 'meshproof.BudgetExceeded', message: `budget missed: ${line}`, body: line };
  return c;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
const secs = (s: number) => s.toFixed(3);
