// report.html in a real browser: Debian's headless Chromium driven by playwright-core. Renders a
// hand-written run (mtls, tls, plaintext, denied, and one wrong cell), counts the padlock /
// open-padlock / denial edges against results.json and against hand-written numbers, clicks an edge
// and a cell and reads the evidence panel, checks the page fetches nothing, and keeps a screenshot
// in reports/report-html-test/. Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run
// installs it) or CHROMIUM_PATH.

import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Evidence, Observed, ResultRecord, Verdict } from '../../src/harness/model/verdict.ts';
import { edgeKind, parseResultsFile, type CellRecord, type ResultsFile } from '../../src/harness/report/meta.ts';
import { renderRunReports } from '../../src/harness/report/render.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = resolve('reports', 'report-html-test');

const ev = (e: Partial<Evidence> = {}): Evidence => ({ peer: null, alpn: null, xfcc: null, status: null, error: null, wire: null, ms: 5, ...e });

function rec(suite: string, scenario: string, from: string, to: string, port: number, expected: Observed, verdict: Verdict, evidence: Evidence): ResultRecord {
  const observed: Observed = verdict.startsWith('allowed') ? 'allowed' : 'denied';
  return { run: 'browser-1', substrate: 'netns', profile: 'istio', suite, scenario, from, to, port, protocol: 'http', expected, observed, verdict, pass: observed === expected, evidence };
}

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
// 9 cells in 3 scenarios: 3 mtls, 1 tls, 2 plaintext (one of them wrong), 3 denied.
const RECORDS: ResultRecord[] = [
  rec('istio-strict-denial', 'namespace STRICT', 'sleep', 'age', 5000, 'allowed', 'allowed:mtls', ev({ peer: SLEEP, status: 200, wire: 'no-plaintext', xfcc: `URI=${SLEEP}` })),
  rec('istio-strict-denial', 'namespace STRICT', 'sleep', 'name', 5000, 'allowed', 'allowed:mtls', ev({ peer: SLEEP, status: 200, wire: 'no-plaintext' })),
  rec('istio-strict-denial', 'namespace STRICT', 'sleep-naked', 'age', 5000, 'denied', 'denied:reset', ev({ error: 'ECONNRESET', wire: 'no-plaintext', ms: 2.4 })),
  // The wrong cell: STRICT let a naked client through in plaintext.
  rec('istio-strict-denial', 'namespace STRICT', 'sleep-naked', 'name', 5000, 'denied', 'allowed:plaintext', ev({ status: 200, wire: 'plaintext-seen' })),
  rec('istio-permissive-fallback', 'namespace PERMISSIVE', 'sleep-naked', 'age', 5000, 'allowed', 'allowed:plaintext', ev({ status: 200, wire: 'plaintext-seen' })),
  rec('istio-permissive-fallback', 'namespace PERMISSIVE', 'sleep', 'age', 5000, 'allowed', 'allowed:mtls', ev({ peer: SLEEP, status: 200, wire: 'no-plaintext' })),
  rec('istio-ingress-gateway', 'MUTUAL gateway', 'client', 'istio-ingressgateway', 443, 'allowed', 'allowed:tls', ev({ serverIdentity: 'sentences.example.com', status: 200 })),
  rec('istio-ingress-gateway', 'MUTUAL gateway', 'client-no-cert', 'istio-ingressgateway', 443, 'denied', 'denied:tls-handshake', ev({ error: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' })),
  rec('istio-ingress-gateway', 'MUTUAL gateway', 'client-other-ca', 'istio-ingressgateway', 443, 'denied', 'denied:tls-handshake', ev({ error: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' })),
];
const EXPECTED_EDGES = { mtls: 3, tls: 1, plaintext: 2, denied: 3 };
const WRONG_IDX = 3;

const FILE: ResultsFile = {
  meta: {
    run: 'browser-1',
    substrate: 'netns',
    profiles: ['istio'],
    started: '2026-11-24T05:30:00.000Z',
    finished: '2026-11-24T05:31:00.000Z',
    machine: { hostname: 'ci', cpus: 2, memMiB: 4096, kernel: '6.1.0', os: 'Debian GNU/Linux 12 (bookworm)' },
    versions: { envoy: '1.36.4', haproxy: '2.6.12' },
    envoyVersions: ['1.36.4'],
  },
  records: RECORDS,
  budgets: [{ path: 'sleep→age:5000 mtls', metric: 'rps', value: 1800, limit: 1500, unit: 'req/s', pass: true, rounds: [1750, 1800, 1850] }],
};

/** Counts elements matching a selector. */
const count = (page: Page, selector: string) => page.locator(selector).count();

async function evidenceShown(page: Page): Promise<{ shown: string | null; json: unknown; title: string }> {
  return {
    shown: await page.getAttribute('#evidence', 'data-shown'),
    json: JSON.parse((await page.textContent('#evidence')) ?? 'null'),
    title: (await page.textContent('#evidence-title')) ?? '',
  };
}

describe('report.html in headless Chromium (playwright-core)', function () {
  this.timeout(60_000);
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const errors: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (.ci/run installs it), or set CHROMIUM_PATH`);
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'results.json'), JSON.stringify(FILE, null, 2));
    renderRunReports(OUT);
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(pathToFileURL(join(OUT, 'report.html')).href);
  });

  after(async () => {
    await browser?.close();
  });

  it('draws one edge per cell: closed padlocks for mtls and tls, open for plaintext, a denial mark for denied, as results.json says', async () => {
    const results = parseResultsFile(readFileSync(join(OUT, 'results.json'), 'utf8'));
    const fromResults = { mtls: 0, tls: 0, plaintext: 0, denied: 0 };
    for (const r of results.records) fromResults[edgeKind(r.verdict)]++;
    expect(fromResults).to.deep.equal(EXPECTED_EDGES);
    for (const kind of ['mtls', 'tls', 'plaintext', 'denied'] as const) {
      expect(await count(page, `svg.graph g[data-edge="${kind}"]`), `${kind} edges`).to.equal(EXPECTED_EDGES[kind]);
      expect(await count(page, `table.truth td[data-cell="${kind}"]`), `${kind} cells`).to.equal(EXPECTED_EDGES[kind]);
    }
    // Every edge is rendered and has its badge: a closed shackle, an open one, or the ⊘ mark.
    const badges = await page.$$eval('svg.graph g[data-edge]', (gs) =>
      gs.map((g) => {
        const box = (g as SVGGraphicsElement).getBBox();
        const shackle = g.querySelector('.edge-badge path')?.getAttribute('d') ?? '';
        return { kind: g.getAttribute('data-edge'), visible: box.width > 0 && box.height > 0, open: shackle.includes('v-4'), slash: !!g.querySelector('.edge-badge line') };
      }),
    );
    expect(badges).to.have.length(RECORDS.length);
    for (const b of badges) {
      expect(b.visible, `${b.kind} edge is drawn`).to.equal(true);
      if (b.kind === 'denied') expect(b.slash, 'denied edges carry ⊘').to.equal(true);
      else expect(b.open, `${b.kind} padlock ${b.kind === 'plaintext' ? 'open' : 'closed'}`).to.equal(b.kind === 'plaintext');
    }
    expect(await count(page, 'svg.graph g[data-edge][data-pass="false"]')).to.equal(1);
    expect(await page.getAttribute('#summary', 'data-result')).to.equal('fail');
  });

  it('shows the record of a clicked edge in the evidence panel', async () => {
    await page.click(`svg.graph g[data-edge][data-idx="${WRONG_IDX}"]`);
    const e = await evidenceShown(page);
    expect(e.shown).to.equal(`record:${WRONG_IDX}`);
    expect(e.json).to.deep.equal(RECORDS[WRONG_IDX]);
    expect(e.title).to.include('sleep-naked → name:5000/http');
    expect(e.title).to.include('allowed:plaintext (expected denied)');
    // The clicked edge and its table cell are both marked as selected.
    expect(await count(page, `[data-selected][data-idx="${WRONG_IDX}"]`)).to.equal(2);
  });

  it('shows the record of a clicked truth-table cell in the evidence panel', async () => {
    await page.click('table.truth td[data-cell="tls"]');
    const e = await evidenceShown(page);
    expect(e.shown).to.equal('record:6');
    expect(e.json).to.deep.equal(RECORDS[6]);
    expect(e.title).to.include('client → istio-ingressgateway:443/http');
  });

  it('shows a clicked budget', async () => {
    await page.click('g[data-budget="pass"]');
    expect((await evidenceShown(page)).json).to.deep.equal(FILE.budgets![0]);
  });

  it('fetches nothing but itself and runs its script without errors', () => {
    expect(requests.filter((u) => !u.startsWith('file://'))).to.deep.equal([]);
    expect(errors).to.deep.equal([]);
  });

  it('saves a screenshot with the run', async () => {
    await page.click(`svg.graph g[data-edge][data-idx="${WRONG_IDX}"]`);
    const shot = join(OUT, 'screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).to.be.above(10_000);
  });

  it('has a column per Envoy version when the run covered several, and its cells open their evidence', async () => {
    const v2: CellRecord[] = [
      ...RECORDS.map((r) => ({ ...r, envoyVersion: '1.36.4' })),
      ...RECORDS.map((r, i) => ({ ...r, run: 'browser-2', envoyVersion: '1.37.0', ...(i === WRONG_IDX ? { verdict: 'denied:reset' as const, observed: 'denied' as const, pass: true } : {}) })),
    ];
    const dir = join(OUT, 'two-versions');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'results.json'), JSON.stringify({ ...FILE, meta: { ...FILE.meta, envoyVersions: ['1.36.4', '1.37.0'] }, records: v2 }));
    renderRunReports(dir);
    const p = await browser.newPage();
    await p.goto(pathToFileURL(join(dir, 'report.html')).href);
    expect(await p.getAttribute('#version-matrix', 'data-versions')).to.equal('2');
    expect(await count(p, '#version-matrix thead th')).to.equal(4); // suite / scenario, cell, one per version
    expect(await count(p, '#version-matrix tbody tr')).to.equal(RECORDS.length);
    expect(await count(p, '#version-matrix td[data-vcell]')).to.equal(2 * RECORDS.length);
    expect(await count(p, '#version-matrix tr[data-differs="true"]')).to.equal(1);
    // One graph edge per record, over both versions.
    expect(await count(p, 'svg.graph g[data-edge]')).to.equal(2 * RECORDS.length);
    await p.click(`#version-matrix td[data-version="1.37.0"][data-idx="${RECORDS.length + WRONG_IDX}"]`);
    expect((await evidenceShown(p)).json).to.deep.equal(v2[RECORDS.length + WRONG_IDX]);
    expect((await evidenceShown(p)).title).to.include('(envoy 1.37.0)');
    await p.screenshot({ path: join(dir, 'screenshot.png'), fullPage: true });
    await p.close();
  });
});
