// The run reports (junit.xml, conformance-report.yaml, summary.md, report.html) and
// diff/merge, on a small hand-written run: 8 cells in 3 suites and 2 profiles —
// 3 allowed:mtls, 1 allowed:tls, 2 allowed:plaintext (one of them wrong), 2 denied —
// plus one skipped suite and two budgets (one missed).

import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../src/harness/model/errors.ts';
import type { Evidence, Observed, ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import { conformanceReport, renderConformanceYaml } from '../src/harness/report/conformance.ts';
import { badgeIcon, renderGraph } from '../src/harness/report/graph.ts';
import { jsonForScript, renderHtml } from '../src/harness/report/html.ts';
import { renderJUnit } from '../src/harness/report/junit.ts';
import { code, renderMarkdown, text } from '../src/harness/report/markdown.ts';
import { cellKey, edgeKind, escapeXml, parseResultsFile, tally, type ResultsFile, type RunMetadata } from '../src/harness/report/meta.ts';
import { diffRuns, loadResults, mergeResults, renderRunReports, REPORT_FILES, writeRunMetadata } from '../src/harness/report/render.ts';
import { truthTable } from '../src/harness/report/results.ts';

// ---- the fixture ----------------------------------------------------------------------

const NASTY = 'unexpected <html> body "ok" & more';
const NASTY_XFCC = 'By=spiffe://cluster.local/ns/default/sa/name;Subject="CN=a<b"';

const ev = (e: Partial<Evidence> = {}): Evidence => ({ peer: null, alpn: null, xfcc: null, status: null, error: null, wire: null, ms: 10, ...e });

function rec(
  suite: string,
  scenario: string,
  profile: string,
  from: string,
  to: string,
  port: number,
  protocol: string,
  expected: Observed,
  verdict: Verdict,
  evidence: Evidence,
): ResultRecord {
  const observed: Observed = verdict.startsWith('allowed') ? 'allowed' : 'denied';
  return { run: 'r1', substrate: 'netns', profile, suite, scenario, from, to, port, protocol, expected, observed, verdict, pass: expected === observed, evidence };
}

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/default';
const RECORDS: ResultRecord[] = [
  rec('strict-denial', 'namespace STRICT', 'istio', 'sentences', 'age', 5000, 'http', 'allowed', 'allowed:mtls', ev({ peer: SPIFFE, status: 200, wire: 'no-plaintext' })),
  rec('strict-denial', 'namespace STRICT', 'istio', 'sentences', 'name-v1', 5000, 'http', 'allowed', 'allowed:mtls', ev({ peer: SPIFFE, status: 200, wire: 'no-plaintext' })),
  rec('strict-denial', 'namespace STRICT', 'istio', 'sleep-naked', 'age', 5000, 'http', 'denied', 'denied:reset', ev({ error: 'ECONNRESET', wire: 'no-plaintext', ms: 3.1 })),
  // The wrong cell: STRICT should deny a naked client, but it got through in plaintext.
  rec('strict-denial', 'namespace STRICT', 'istio', 'sleep-naked', 'name-v1', 5000, 'http', 'denied', 'allowed:plaintext', ev({ status: 200, error: NASTY, xfcc: NASTY_XFCC, wire: 'plaintext-seen' })),
  rec('permissive-fallback', 'namespace PERMISSIVE', 'istio', 'sleep-naked', 'age', 5000, 'http', 'allowed', 'allowed:plaintext', ev({ status: 200, wire: 'plaintext-seen' })),
  rec('permissive-fallback', 'namespace PERMISSIVE', 'istio', 'sentences', 'age', 5000, 'http', 'allowed', 'allowed:mtls', ev({ peer: SPIFFE, status: 200, wire: 'no-plaintext' })),
  rec('tcp-routes-tls', 'backend instance identity', 'cf', 'router', 'app-1', 61001, 'tls', 'allowed', 'allowed:tls', ev({ serverIdentity: 'app-guid-1', wire: 'no-plaintext' })),
  rec('tcp-routes-tls', 'backend instance identity', 'cf', 'router', 'app-2', 61001, 'tls', 'denied', 'denied:tls-handshake', ev({ error: 'ERR_TLS_CERT_ALTNAME_INVALID' })),
];
const EXPECT = { mtls: 3, tls: 1, plaintext: 2, denied: 2 };
const WRONG_IDX = 3;

const META: RunMetadata = {
  run: 'r1',
  substrate: 'netns',
  profiles: ['istio', 'cf'],
  started: '2026-11-24T05:30:00.000Z',
  finished: '2026-11-24T05:31:30.000Z',
  machine: { hostname: 'ci-7', cpus: 8, memMiB: 15872, kernel: '6.1.0-27-amd64', os: 'Debian GNU/Linux 12 (bookworm)' },
  versions: { envoy: '1.31.2', haproxy: '2.6.12', node: 'v20.19.0', meshproof: '0.1.0' },
  envoyVersions: ['1.31.2'],
};

const FILE: ResultsFile = {
  meta: META,
  records: RECORDS,
  budgets: [
    { path: 'sentences→age:5000 mtls', metric: 'rps', value: 1800, limit: 1500, unit: 'req/s', pass: true, rounds: [1750, 1800, 1850] },
    { path: 'sentences→age:5000 mtls', metric: 'p99', value: 12.5, limit: 10, unit: 'ms', pass: false },
  ],
  skipped: [{ profile: 'cf', suite: 'route-integrity', reason: 'needs the kind substrate' }],
};

const TIERS = { 'tcp-routes-tls': 'extended', 'route-integrity': 'extended', 'c2c-xfcc': 'extended' } as const;

const count = (hay: string, needle: string): number => hay.split(needle).length - 1;

/** A small XML well-formedness check: every `<` opens a proper tag, attributes are quoted, tags balance, `&` is an entity. */
function expectWellFormedXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const tag = /<(\/?)([A-Za-z][\w.:-]*)((?:\s+[\w.:-]+="[^"<]*")*)\s*(\/?)>/y;
  const stack: string[] = [];
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const textPart = body.slice(i, lt === -1 ? body.length : lt);
    expect(textPart, 'text between tags').to.not.match(/&(?!(amp|lt|gt|quot|apos|#\d+);)/);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    expect(m, `malformed tag at ${lt}: ${body.slice(lt, lt + 60)}`).to.not.equal(null);
    const [whole, close, name, attrs, selfClose] = m!;
    expect(attrs, 'attribute values').to.not.match(/&(?!(amp|lt|gt|quot|apos|#\d+);)/);
    if (close) expect(stack.pop(), `closing ${name}`).to.equal(name);
    else if (!selfClose) stack.push(name!);
    i = lt + whole.length;
  }
  expect(stack, 'unclosed tags').to.deep.equal([]);
}

const unescapeXml = (s: string) =>
  s
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

// ---- meta -----------------------------------------------------------------------------

describe('report: results.json and its metadata', () => {
  it('parses a file with only {records} (written before the metadata existed)', () => {
    const f = parseResultsFile(JSON.stringify({ records: RECORDS }));
    expect(f.records).to.have.length(8);
    expect(f.meta).to.equal(undefined);
  });

  it('rejects a file that is not a results file, naming it', () => {
    expect(() => parseResultsFile('{"foo":1}', 'x/results.json')).to.throw(UserError, /x\/results\.json.*records/);
    expect(() => parseResultsFile('not json')).to.throw(UserError, /not JSON/);
    expect(() => parseResultsFile(JSON.stringify({ records: [{ ...RECORDS[0], port: '5000' }] }))).to.throw(UserError, /records\[0\]\.port/);
  });

  it('classifies verdicts into edge kinds and tallies the fixture', () => {
    expect(edgeKind('allowed:mtls')).to.equal('mtls');
    expect(edgeKind('allowed:tls')).to.equal('tls');
    expect(edgeKind('allowed:plaintext')).to.equal('plaintext');
    expect(edgeKind('denied:http-403')).to.equal('denied');
    expect(tally(RECORDS)).to.deep.equal({ cells: 8, passed: 7, failed: 1, ...EXPECT });
  });

  it('escapes XML text, quotes, and characters XML cannot carry', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).to.equal('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
    expect(escapeXml('bell\u0007nul\u0000')).to.equal('bell\uFFFDnul\uFFFD');
    expect(escapeXml('😀 ok')).to.equal('😀 ok');
  });
});

// ---- junit ----------------------------------------------------------------------------

describe('report: junit.xml', () => {
  const xml = renderJUnit(FILE);

  it('is well-formed XML with testsuites/testsuite/testcase and CI counts', () => {
    expectWellFormedXml(xml);
    // 3 scenarios + 1 skipped suite + 2 budgets; failures: the wrong scenario and the missed p99 budget.
    expect(xml).to.match(/<testsuites name="meshproof r1" tests="6" failures="2" errors="0" skipped="1" time="[\d.]+">/);
    expect(count(xml, '<testsuite ')).to.equal(5);
    expect(count(xml, '<testcase ')).to.equal(6);
    expect(xml).to.match(/<testsuite name="strict-denial" id="0" package="meshproof" tests="1" failures="1" errors="0" skipped="0" time="[\d.]+" timestamp="2026-11-24T05:30:00.000Z" hostname="ci-7">/);
    expect(xml).to.match(/<testsuite name="permissive-fallback" [^>]*tests="1" failures="0"/);
    expect(xml).to.include('<testcase classname="strict-denial" name="namespace STRICT" time="0.033">');
    expect(xml).to.include('<testcase classname="tcp-routes-tls" name="backend instance identity" time="0.020">');
    expect(xml).to.include('<property name="version.envoy" value="1.31.2"/>');
  });

  it('lists the wrong cells with their evidence in <failure>, escaped', () => {
    const m = /<failure message="([^"]*)" type="meshproof.CellMismatch">([^<]*)<\/failure>/.exec(xml);
    expect(m).to.not.equal(null);
    const message = unescapeXml(m![1]!);
    const body = unescapeXml(m![2]!);
    expect(message).to.equal('1 of 4 cells wrong: sleep-naked→name-v1:5000/http allowed:plaintext expected denied/observed allowed');
    expect(body).to.include('sleep-naked→name-v1:5000/http verdict=allowed:plaintext expected=denied observed=allowed');
    expect(body).to.include(`error=${NASTY}`);
    expect(body).to.include('status=200');
    expect(body).to.include('wire=plaintext-seen');
    expect(body).to.include(`xfcc=${NASTY_XFCC}`);
    expect(xml).to.not.include('<html>');
    expect(xml).to.include('unexpected &lt;html&gt; body &quot;ok&quot; &amp; more');
  });

  it('marks skipped tests and budgets', () => {
    expect(xml).to.include('<testcase classname="route-integrity" name="route-integrity" time="0.000">');
    expect(xml).to.include('<skipped message="needs the kind substrate"/>');
    expect(xml).to.match(/<testsuite name="budgets" [^>]*tests="2" failures="1"/);
    expect(xml).to.match(/<failure message="budget missed: sentences→age:5000 mtls p99: 12.5 ms \(limit 10 ms\)" type="meshproof.BudgetExceeded">/);
  });

  it('keeps a truth table of each scenario in <system-out>', () => {
    expect(xml).to.include(`<system-out>${escapeXml(truthTable('namespace STRICT', RECORDS.slice(0, 4)))}</system-out>`);
  });

  it('renders a {records}-only file', () => {
    const bare = renderJUnit({ records: RECORDS });
    expectWellFormedXml(bare);
    expect(bare).to.match(/<testsuites name="meshproof r1" tests="3" failures="1" errors="0" skipped="0"/);
    expect(bare).to.not.include('timestamp=');
  });

  it('keeps newlines in attributes as character references, and survives control bytes', () => {
    const r = { ...RECORDS[WRONG_IDX]!, scenario: 'two\nlines', evidence: ev({ error: 'line1\nline2\u0001' }) };
    const x = renderJUnit({ records: [r] });
    expectWellFormedXml(x);
    expect(x).to.not.include('\u0001');
    expect(x).to.include('name="two&#10;lines"');
    expect(x).to.include('error=line1\nline2\uFFFD');
  });
});

// ---- conformance ----------------------------------------------------------------------

describe('report: conformance-report.yaml', () => {
  it('parses back into a Gateway API shaped ConformanceReport with the expected statistics', () => {
    const y = renderConformanceYaml(FILE, { tiers: TIERS, implementation: { organization: 'envoyproxy', project: 'envoy', url: 'https://www.envoyproxy.io', contact: ['@meshproof'] } });
    const doc = parseYaml(y);
    expect(doc.apiVersion).to.equal('gateway.networking.k8s.io/v1');
    expect(doc.kind).to.equal('ConformanceReport');
    expect(doc.date).to.equal(META.finished);
    expect(doc.meshproofVersion).to.equal('0.1.0');
    expect(doc.gatewayAPIVersion).to.equal(undefined);
    expect(doc.mode).to.equal('default');
    expect(doc.implementation).to.deep.equal({
      organization: 'envoyproxy', project: 'envoy', url: 'https://www.envoyproxy.io', version: '1.31.2', contact: ['@meshproof'],
      versions: { envoy: '1.31.2', haproxy: '2.6.12' },
    });
    expect(doc.profiles.map((p: { name: string }) => p.name)).to.deep.equal(['istio', 'cf']);

    const [istio, cf] = doc.profiles;
    expect(istio.core).to.deep.equal({
      result: 'failure',
      statistics: { Passed: 1, Failed: 1, Skipped: 0 },
      failedTests: ['strict-denial/namespace STRICT'],
      failedTestReasons: { 'strict-denial/namespace STRICT': '1 of 4 cells wrong: sleep-naked→name-v1:5000/http allowed:plaintext (expected denied)' },
    });
    expect(istio.extended).to.deep.equal({
      result: 'success',
      statistics: { Passed: 0, Failed: 0, Skipped: 0 },
      unsupportedFeatures: ['tcp-routes-tls', 'route-integrity', 'c2c-xfcc'],
    });
    expect(istio.summary).to.equal('Core tests failed with 1 test failures. Extended tests succeeded.');

    expect(cf.core).to.deep.equal({ result: 'success', statistics: { Passed: 0, Failed: 0, Skipped: 0 } });
    expect(cf.extended).to.deep.equal({
      result: 'partial',
      statistics: { Passed: 1, Failed: 0, Skipped: 1 },
      skippedTests: ['route-integrity'],
      skippedTestReasons: { 'route-integrity': 'needs the kind substrate' },
      supportedFeatures: ['tcp-routes-tls', 'route-integrity'],
      unsupportedFeatures: ['c2c-xfcc'],
    });
    expect(cf.summary).to.equal('Core tests succeeded. Extended tests partially succeeded with 1 test skips.');
  });

  it('scopes a tier to one profile with a `<profile>/<suite>` key', () => {
    const r = conformanceReport(FILE, { tiers: { 'cf/tcp-routes-tls': 'extended', 'cf/route-integrity': 'extended', 'c2c-xfcc': 'extended' } });
    const [istio, cf] = r.profiles;
    expect(istio!.extended!.unsupportedFeatures).to.deep.equal(['c2c-xfcc']);
    expect(istio!.core.statistics).to.deep.equal({ Passed: 1, Failed: 1, Skipped: 0 });
    expect(cf!.extended!.supportedFeatures).to.deep.equal(['tcp-routes-tls', 'route-integrity']);
    expect(cf!.extended!.unsupportedFeatures).to.deep.equal(['c2c-xfcc']);
    expect(cf!.core.statistics).to.deep.equal({ Passed: 0, Failed: 0, Skipped: 0 });
  });

  it('explains meshproofVersion (in place of gatewayAPIVersion) in a comment, and quotes the date', () => {
    const y = renderConformanceYaml(FILE);
    expect(y).to.include(`\ndate: "${META.finished}"\n`);
    expect(y).to.match(/# In place of gatewayAPIVersion[^\n]*\n#[^\n]*\nmeshproofVersion: 0\.1\.0/);
  });

  it('counts everything as core by default, and renders a {records}-only file', () => {
    const r = conformanceReport({ records: RECORDS, skipped: FILE.skipped }, { date: '2026-11-24T06:00:00Z' });
    expect(r.date).to.equal('2026-11-24T06:00:00Z');
    expect(r.meshproofVersion).to.equal('unknown');
    expect(r.profiles.map((p) => [p.name, p.core.result, p.core.statistics, p.extended])).to.deep.equal([
      ['istio', 'failure', { Passed: 1, Failed: 1, Skipped: 0 }, undefined],
      ['cf', 'partial', { Passed: 1, Failed: 0, Skipped: 1 }, undefined],
    ]);
    expect(parseYaml(renderConformanceYaml({ records: RECORDS })).profiles).to.have.length(2);
  });
});

// ---- markdown -------------------------------------------------------------------------

describe('report: summary.md', () => {
  const md = renderMarkdown(FILE);

  it('opens with the run and its metadata', () => {
    expect(md.split('\n')[0]).to.equal('# meshproof run `r1` — ❌ failed');
    expect(md).to.include('| substrate | netns |');
    expect(md).to.include('| finished | 2026-11-24T05:31:30.000Z (1 min 30 s) |');
    expect(md).to.include('| versions | envoy `1.31.2`, haproxy `2.6.12`, node `v20.19.0`, meshproof `0.1.0` |');
    expect(md).to.include('**8 cells: 7 correct, 1 wrong** in 3 scenarios of 3 suites');
  });

  it('has a Cyclonus truth table per scenario and the failures with evidence', () => {
    expect(md).to.include('```\n' + truthTable('namespace STRICT', RECORDS.slice(0, 4)) + '\n```');
    expect(md).to.include('```\n' + truthTable('backend instance identity', RECORDS.slice(6)) + '\n```');
    expect(md).to.include('1 wrong, 3 correct');
    expect(md).to.include('## Failures');
    expect(md).to.include(
      '  - `sleep-naked → name-v1:5000/http` expected **denied**, observed **allowed** (`allowed:plaintext`) — `error=unexpected <html> body "ok" & more status=200 wire=plaintext-seen',
    );
    expect(md).to.include('| ❌ | strict-denial | istio | 1 | 4 | 1 |');
    expect(md).to.include('### ❌ strict-denial — 1 wrong');
    expect(md).to.include('<details><summary>✅ permissive-fallback — 2 cells correct</summary>');
  });

  it('has a budget table when budgets are present, and none without', () => {
    expect(md).to.include('## Budgets');
    expect(md).to.include('| ✅ | sentences→age:5000 mtls | rps | 1800 | 1500 | req/s | 1750, 1800, 1850 |');
    expect(md).to.include('| ❌ | sentences→age:5000 mtls | p99 | 12.500 | 10 | ms |  |');
    const bare = renderMarkdown({ records: RECORDS });
    expect(bare).to.not.include('## Budgets');
    expect(bare).to.include('| run | `r1` |');
  });

  it('escapes markdown in names and lengthens code fences around backticks', () => {
    expect(text('a|b*c_<x>')).to.equal('a\\|b\\*c\\_&lt;x>');
    expect(code('a`b')).to.equal('``a`b``');
    const odd = renderMarkdown({ records: [{ ...RECORDS[0]!, suite: 'x|y', scenario: '<img src=x>' }] });
    expect(odd).to.include('| ✅ | x\\|y |');
    // Outside code blocks (where markup is inert) no tag survives.
    expect(odd.replace(/```[\s\S]*?```/g, '')).to.not.include('<img');
    expect(odd).to.include('#### ✅ &lt;img src=x>');
  });

  it('caps the failure list', () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ ...RECORDS[WRONG_IDX]!, from: `c${i}` }));
    const out = renderMarkdown({ records: many }, { maxFailures: 2 });
    expect(out).to.include('… and 3 more wrong cells');
  });
});

// ---- html -----------------------------------------------------------------------------

describe('report: report.html', () => {
  const html = renderHtml(FILE);

  it('has one data-edge and one data-cell per record, by kind, matching the fixture', () => {
    for (const [kind, n] of Object.entries(EXPECT)) {
      expect(count(html, `data-edge="${kind}"`), `edges ${kind}`).to.equal(n);
      expect(count(html, `data-cell="${kind}"`), `cells ${kind}`).to.equal(n);
    }
    expect(count(html, 'data-edge="')).to.equal(8);
    expect(count(html, 'data-cell="')).to.equal(8);
    expect(count(html, '<svg class="graph"')).to.equal(3);
    // The wrong cell and its edge carry the same record index, and are marked wrong.
    expect(html).to.match(new RegExp(`<td class="cell plaintext wrong" data-cell="plaintext" data-idx="${WRONG_IDX}" data-pass="false"`));
    expect(html).to.match(new RegExp(`<g class="edge plaintext wrong" data-edge="plaintext" data-verdict="allowed:plaintext" data-pass="false" data-idx="${WRONG_IDX}"`));
    expect(count(html, 'data-pass="false" data-idx=')).to.equal(1);
  });

  it('has #summary with the counts', () => {
    const m = /<section id="summary"([^>]*)>/.exec(html);
    expect(m).to.not.equal(null);
    const attrs = Object.fromEntries([...m![1]!.matchAll(/data-([\w-]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    expect(attrs).to.deep.equal({
      result: 'fail',
      total: '8',
      passed: '7',
      failed: '1',
      mtls: '3',
      tls: '1',
      plaintext: '2',
      denied: '2',
      scenarios: '3',
      suites: '3',
      budgets: '2',
      'budgets-failed': '1',
      tests: '0',
      'tests-failed': '0',
    });
  });

  it('is self-contained: no external scripts, styles, fonts or images', () => {
    expect(html).to.not.match(/https?:\/\//);
    expect(html).to.not.match(/<script[^>]+src=/i);
    expect(html).to.not.match(/<link\b/i);
    expect(html).to.not.match(/@import|@font-face|url\(/i);
    expect(html).to.not.match(/\b(src|href)\s*=\s*(?!["']?#)/i);
    expect(html).to.include("default-src 'none'");
    expect(count(html, '<script')).to.equal(2);
  });

  it('carries every record as JSON for the evidence panel, escaped so it cannot close its <script>', () => {
    const m = /<script type="application\/json" id="meshproof-data">([\s\S]*?)<\/script>/.exec(html);
    const data = JSON.parse(m![1]!);
    expect(data.records).to.have.length(8);
    expect(data.records[WRONG_IDX].evidence.error).to.equal(NASTY);
    expect(data.budgets).to.have.length(2);
    expect(m![1]).to.not.include('<');
    expect(jsonForScript({ a: '</script><!--' })).to.equal('{"a":"\\u003c/script\\u003e\\u003c!--"}');
    expect(html).to.include('id="evidence"');
    expect(html).to.include('id="evidence-panel"');
  });

  it('has an inline script that parses', () => {
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((x) => x[1]!);
    expect(scripts).to.have.length(1);
    expect(() => new Function(scripts[0]!)).to.not.throw();
    expect(scripts[0]).to.include("closest('[data-idx],[data-budget-idx]')");
  });

  it('shows the JSON of a clicked cell or edge, and of a budget, in #evidence (script run against a stub DOM)', () => {
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const dataText = /<script type="application\/json" id="meshproof-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
    type Stub = { textContent: string; attrs: Record<string, string>; setAttribute(k: string, v: string): void; removeAttribute(k: string): void; getAttribute(k: string): string | null };
    const stub = (textContent = ''): Stub => ({
      textContent,
      attrs: {},
      setAttribute(k, v) {
        this.attrs[k] = v;
      },
      removeAttribute(k) {
        delete this.attrs[k];
      },
      getAttribute(k) {
        return k in this.attrs ? this.attrs[k]! : null;
      },
    });
    const els: Record<string, Stub> = { 'meshproof-data': stub(dataText), evidence: stub(), 'evidence-title': stub() };
    const handlers: Record<string, (ev: unknown) => void> = {};
    const selected: string[] = [];
    const document = {
      getElementById: (id: string) => els[id] ?? null,
      querySelectorAll: (sel: string) => {
        selected.push(sel);
        return [];
      },
      addEventListener: (type: string, fn: (ev: unknown) => void) => (handlers[type] = fn),
      body: { classList: { toggle: () => undefined } },
    };
    const window: Record<string, unknown> = {};
    new Function('document', 'window', script)(document, window);

    const cell = stub();
    cell.setAttribute('data-idx', String(WRONG_IDX));
    handlers.click!({ target: { closest: () => cell } });
    expect(JSON.parse(els.evidence!.textContent)).to.deep.equal(RECORDS[WRONG_IDX]);
    expect(els['evidence-title']!.textContent).to.equal('strict-denial / namespace STRICT: sleep-naked → name-v1:5000/http — allowed:plaintext (expected denied)');
    expect(els.evidence!.getAttribute('data-shown')).to.equal(`record:${WRONG_IDX}`);
    expect(selected).to.include(`[data-idx="${WRONG_IDX}"]`);

    const bar = stub();
    bar.setAttribute('data-budget-idx', '1');
    handlers.keydown!({ key: 'Enter', target: { closest: () => bar }, preventDefault: () => undefined });
    expect(JSON.parse(els.evidence!.textContent)).to.deep.equal(FILE.budgets![1]);

    handlers.click!({ target: { closest: () => null } }); // a click elsewhere changes nothing
    expect(els.evidence!.getAttribute('data-shown')).to.equal('budget:1');
  });

  it('escapes names from the records everywhere', () => {
    const evil = { ...RECORDS[0]!, suite: '<b>suite</b>', scenario: 'a"b<i>', from: '<script>alert(1)</script>', to: "o'k&<" };
    const out = renderHtml({ records: [evil] });
    expect(out).to.not.include('<b>suite');
    expect(out).to.not.include('<i>');
    expect(out).to.not.include('<script>alert');
    expect(out).to.include('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(out).to.include('data-scenario="a&quot;b&lt;i&gt;"');
  });

  it('draws budget bars when budgets are present', () => {
    expect(count(html, 'data-budget="pass"')).to.equal(1);
    expect(count(html, 'data-budget="fail"')).to.equal(1);
    expect(html).to.include('<section id="budgets">');
    expect(renderHtml({ records: RECORDS })).to.not.include('id="budgets"');
  });

  it('gives a cell probed twice in a scenario its own row, so cells and edges stay one per record', () => {
    const out = renderHtml({ records: [RECORDS[0]!, { ...RECORDS[0]!, verdict: 'denied:reset', observed: 'denied', pass: false }] });
    expect(count(out, 'data-cell="')).to.equal(2);
    expect(count(out, 'data-edge="')).to.equal(2);
    expect(out).to.include('<small>#2</small>');
  });

  it('renders an empty run', () => {
    const out = renderHtml({ records: [] });
    expect(out).to.include('data-total="0"');
    expect(out).to.include('This run has no results.');
  });
});

// ---- graph ----------------------------------------------------------------------------

describe('report: traffic graph', () => {
  it('lays disjoint callers and callees out in two columns, otherwise on a circle', () => {
    const cols = renderGraph(RECORDS.slice(0, 4));
    expect(count(cols, 'data-role="client"')).to.equal(2);
    expect(count(cols, 'data-role="server"')).to.equal(2);
    const ring = renderGraph([
      RECORDS[0]!,
      { ...RECORDS[0]!, from: 'age', to: 'sentences' },
      { ...RECORDS[0]!, from: 'age', to: 'age' },
      { ...RECORDS[0]!, port: 9090 },
    ]);
    expect(count(ring, 'data-role="both"')).to.equal(2);
    expect(count(ring, 'data-edge="mtls"')).to.equal(4);
    expect(ring).to.not.include('NaN');
  });

  it('uses a closed padlock for mtls/tls, an open one for plaintext, ⊘ for denied', () => {
    // Shackles: closed goes back down (v2.3), open stops lifted (v0.8); the denial is a slashed circle.
    expect(badgeIcon('mtls')).to.include('a3.2,3.2 0 0 1 6.4,0 v2.3');
    expect(badgeIcon('tls')).to.include('a3.2,3.2 0 0 1 6.4,0 v2.3');
    expect(badgeIcon('plaintext')).to.include('a3.2,3.2 0 0 1 6.4,0 v0.8');
    expect(badgeIcon('denied')).to.include('<line');
  });

  it('is a valid standalone SVG only when asked', () => {
    expect(renderGraph(RECORDS.slice(0, 1))).to.not.include('xmlns');
    const svg = renderGraph(RECORDS.slice(0, 1), { standalone: true });
    expect(svg).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expectWellFormedXml(svg);
  });

  it('uses the caller-given record index', () => {
    const svg = renderGraph(RECORDS.slice(6), { indexOf: (_r, i) => 6 + i });
    expect(svg).to.include('data-idx="6"');
    expect(svg).to.include('data-idx="7"');
  });
});

// ---- diff and merge -------------------------------------------------------------------

describe('report: diffRuns', () => {
  const b: ResultsFile = {
    records: [
      ...RECORDS.slice(0, 3).map((r) => ({ ...r, run: 'r2', evidence: { ...r.evidence, ms: 99 } })), // evidence only: no change
      { ...RECORDS[WRONG_IDX]!, run: 'r2', verdict: 'denied:reset', observed: 'denied', pass: true, evidence: ev({ error: 'ECONNRESET' }) },
      ...RECORDS.slice(4, 7),
      // RECORDS[7] (router → app-2) removed; a new cell added:
      { ...RECORDS[7]!, to: 'app-3' },
    ],
    budgets: [
      { ...FILE.budgets![0]!, value: 1830 }, // +1.7 %: within tolerance
      { ...FILE.budgets![1]!, value: 9, pass: true },
    ],
  };

  it('reports changed, added and removed cells keyed by suite/scenario/from/to/port/protocol', () => {
    const d = diffRuns(FILE, b);
    expect(d.changed).to.have.length(1);
    expect(d.changed[0]!.key).to.equal('strict-denial / namespace STRICT / sleep-naked → name-v1:5000/http');
    expect(d.changed[0]!.before.verdict).to.equal('allowed:plaintext');
    expect(d.changed[0]!.after.verdict).to.equal('denied:reset');
    expect(d.added.map(cellKey)).to.deep.equal(['tcp-routes-tls / backend instance identity / router → app-3:61001/tls']);
    expect(d.removed.map(cellKey)).to.deep.equal(['tcp-routes-tls / backend instance identity / router → app-2:61001/tls']);
  });

  it('reports budgets that flipped or moved beyond the tolerance', () => {
    const d = diffRuns(FILE, b);
    expect(d.budgetsMoved.map((m) => m.key)).to.deep.equal(['sentences→age:5000 mtls p99']);
    expect(d.budgetsMoved[0]!.delta).to.equal(-3.5);
    expect(d.budgetsMoved[0]!.ratio).to.equal(0.72);
    expect(diffRuns(FILE, b, { budgetTolerance: 0.01 }).budgetsMoved).to.have.length(2);
    const gone = diffRuns(FILE, { records: RECORDS });
    expect(gone.budgetsMoved.map((m) => [m.key, !!m.before, !!m.after])).to.deep.equal([
      ['sentences→age:5000 mtls rps', true, false],
      ['sentences→age:5000 mtls p99', true, false],
    ]);
  });

  it('finds nothing between a run and itself', () => {
    expect(diffRuns(FILE, FILE)).to.deep.equal({ changed: [], added: [], removed: [], budgetsMoved: [] });
  });
});

describe('report: mergeResults', () => {
  const shardA: ResultsFile = { meta: { ...META, finished: '2026-11-24T05:31:00.000Z', profiles: ['istio'] }, records: RECORDS.slice(0, 6), budgets: FILE.budgets };
  const shardB: ResultsFile = {
    meta: {
      ...META,
      started: '2026-11-24T05:29:00.000Z',
      profiles: ['cf'],
      machine: { ...META.machine, hostname: 'ci-8' },
      versions: { ...META.versions, envoy: '1.32.0' },
      envoyVersions: ['1.32.0'],
    },
    records: RECORDS.slice(6),
    skipped: FILE.skipped,
  };

  it('joins the shards of a run: records in order, metadata spanning both', () => {
    const m = mergeResults([shardA, shardB]);
    expect(m.records).to.deep.equal(RECORDS);
    expect(m.budgets).to.deep.equal(FILE.budgets);
    expect(m.skipped).to.deep.equal(FILE.skipped);
    expect(m.meta!.run).to.equal('r1');
    expect(m.meta!.profiles).to.deep.equal(['istio', 'cf']);
    expect(m.meta!.started).to.equal('2026-11-24T05:29:00.000Z');
    expect(m.meta!.finished).to.equal('2026-11-24T05:31:30.000Z');
    expect(m.meta!.machine.hostname).to.equal('ci-7');
    expect(m.meta!.versions.envoy).to.equal('1.31.2, 1.32.0');
    expect(m.meta!.versions.node).to.equal('v20.19.0');
    expect(m.meta!.envoyVersions).to.deep.equal(['1.31.2', '1.32.0']);
    expect(m.meta!.shards!.map((s) => s.machine.hostname)).to.deep.equal(['ci-7', 'ci-8']);
    // Merging merged files keeps the original shards (flat).
    expect(mergeResults([m, { meta: { ...META, run: 'r9' }, records: [] }]).meta!.shards).to.have.length(3);
  });

  it('lets a re-run shard replace a cell of the same run in place, and keeps cells of other runs', () => {
    const rerun = { ...RECORDS[WRONG_IDX]!, verdict: 'denied:reset' as const, observed: 'denied' as const, pass: true };
    const m = mergeResults([{ records: RECORDS }, { records: [rerun] }]);
    expect(m.records).to.have.length(8);
    expect(m.records[WRONG_IDX]).to.deep.equal(rerun);
    expect(m.meta).to.equal(undefined);
    const other = mergeResults([{ records: RECORDS }, { records: [{ ...rerun, run: 'r2' }] }]);
    expect(other.records).to.have.length(9);
  });

  it('merged files render', () => {
    const m = mergeResults([shardA, shardB]);
    expect(count(renderHtml(m), 'data-cell="')).to.equal(8);
    expect(renderMarkdown(m)).to.include('| shards | `r1`, `r1` |');
  });
});

// ---- files ----------------------------------------------------------------------------

describe('report: renderRunReports', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-report-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the four reports beside a {records}-only results.json', () => {
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ records: RECORDS }));
    const { files } = renderRunReports(dir);
    expect(files).to.deep.equal(Object.values(REPORT_FILES).map((f) => join(dir, f)));
    for (const f of files) expect(existsSync(f), f).to.equal(true);
    expect(count(readFileSync(join(dir, 'report.html'), 'utf8'), 'data-edge="denied"')).to.equal(2);
    expect(parseYaml(readFileSync(join(dir, 'conformance-report.yaml'), 'utf8')).kind).to.equal('ConformanceReport');
  });

  it('writes the run metadata beside the records without losing them', () => {
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ records: RECORDS }));
    writeRunMetadata(dir, META);
    const f = loadResults(dir);
    expect(f.meta).to.deep.equal(META);
    expect(f.records).to.have.length(8);
    renderRunReports(dir, { conformance: { tiers: TIERS } });
    expect(readFileSync(join(dir, 'summary.md'), 'utf8')).to.include('| machine | ci-7: 8 CPUs, 15872 MiB');
  });

  it('names the missing file', () => {
    expect(() => renderRunReports(join(dir, 'nope'))).to.throw(UserError, /results\.json does not exist/);
  });
});
