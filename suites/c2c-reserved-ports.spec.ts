// c2c-reserved-ports: an app that declares a port the Diego sidecar owns is refused with the executor's message,
// before anything starts: 61443 always, 62443 when the cell enables the RFC's C2C mTLS listener, 61445 when it
// enables the egress proxy. With the RFC off the same app starts and its own process answers on 62443 and 61445.
// Rows: fixtures/c2c/truth/reserved-ports.yaml.
import { expect } from 'chai';
import { UserError } from '../src/harness/cli/errors.ts';
import { parseCfModel, type CfModel } from '../src/harness/profiles/cf/model.ts';
import { toRecord } from '../src/harness/report/results.ts';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { C2cFoundation } from '../src/harness/profiles/c2c/index.ts';
import { c2cModel, C2C_TIMEOUT_MS, report, truthRows } from './lib/c2c.ts';

const SUITE = 'c2c-reserved-ports';
interface Row { case: string; ports: number[]; listener: boolean; egress: boolean; outcome: string; mappings?: string[] }
interface Outcome { row: Row; error: string | null; mappings: string[]; answers: ProbeResult[] }
const rows = truthRows<Row>('reserved-ports');
const APP_GUID = 'd4e5f6a7-b8c9-4dae-8f01-3b4c5d6e7f04';
const INSTANCE_GUID = 'd4e5f6a7-b8c9-4dae-8f01-00000000d001';

/** The c2c organization and space with one dora app declaring `ports` (what `cf push` hands Diego). */
function modelWith(ports: number[]): CfModel {
  const base = c2cModel();
  const raw = { organization: base.organization, space: base.space, apps: [{ name: 'reserved', guid: APP_GUID, kind: 'dora', ports, instances: [{ guid: INSTANCE_GUID }] }] };
  return parseCfModel(raw, `push reserved ${JSON.stringify(ports)}`);
}

describe(`${SUITE}: ports the sidecar owns are refused in the executor's words`, function () {
  this.timeout(60_000);
  const outcomes: Outcome[] = [];

  before(async () => {
    let started: { f: C2cFoundation; row: Row } | undefined;
    try {
      for (const row of rows) {
        try {
          // parsing refuses 61443 on any cell; starting refuses what the cell reserves, before any namespace exists
          const f = await C2cFoundation.start(modelWith(row.ports), { external: false, log: (l) => console.log(`    ${l}`), cell: { enableC2cMtlsListener: row.listener, enableEgressProxy: row.egress } });
          const inst = f.cf.instance('reserved', 0);
          const answers: ProbeResult[] = [];
          for (const p of row.ports.filter((x) => x !== 8080)) answers.push(await f.cluster.probe(inst.key, { protocol: 'tcp', host: '127.0.0.1', port: p, timeoutMs: C2C_TIMEOUT_MS }));
          outcomes.push({ row, error: null, mappings: inst.mappings.map((m) => `${m.appPort}->${m.proxyPort}`), answers });
          // the first started foundation keeps running to hold the suite's records
          if (started) await f.down();
          else started = { f, row };
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          outcomes.push({ row, error: e.message, mappings: [], answers: [] });
        }
      }
      if (started) {
        const { f } = started;
        const meta = { run: f.cluster.runId, substrate: 'netns', profile: 'c2c' };
        const records: ResultRecord[] = outcomes.map((o) => {
          const cell = { suite: SUITE, scenario: `listener ${o.row.listener ? 'on' : 'off'}, egress proxy ${o.row.egress ? 'on' : 'off'}`, from: `push: ${o.row.case}`, to: 'cell', port: Number(/port (\d+)/.exec(o.row.outcome)?.[1] ?? o.row.ports.find((p) => p !== 8080)), protocol: 'executor' };
          const refused = o.error !== null;
          const verdict: Verdict = refused ? 'denied:refused' : o.answers.every((a) => a.verdict === 'allowed:plaintext') ? 'allowed:plaintext' : 'denied:reset';
          const result: ProbeResult = { observed: refused ? 'denied' : 'allowed', verdict, evidence: { peer: null, alpn: null, xfcc: null, status: null, error: o.error, wire: null, ms: 0, body: refused ? null : o.answers.map((a) => a.evidence.body).join(' | ') } };
          const want = o.row.outcome === 'started' ? 'allowed' : 'denied';
          return toRecord(meta, cell, want, result, refused ? (o.error ?? '').endsWith(`: ${o.row.outcome}`) : want === 'allowed' && verdict === 'allowed:plaintext');
        });
        report(f, SUITE, 'apps declaring reserved ports', records);
      }
    } finally {
      await started?.f.down();
    }
  });

  it('every row has the hand-written outcome: the executor\'s sentence, naming the app, or a started app', () => {
    const wrong = outcomes.filter((o) => (o.row.outcome === 'started' ? o.error !== null : !(o.error ?? '').endsWith(`: app reserved: ${o.row.outcome}`))).map((o) => `${o.row.case}: want ${o.row.outcome}, got ${o.error ?? 'started'}`);
    expect(wrong).to.deep.equal([]);
  });

  it('with the RFC off the app owns 62443 and 61445: its own process answers there, inside its container', () => {
    const s = outcomes.filter((o) => o.row.outcome === 'started');
    expect(s).to.have.length(1);
    for (const o of s) {
      expect(o.mappings).to.deep.equal(o.row.mappings);
      expect(o.answers.map((a) => a.verdict)).to.deep.equal(o.row.ports.filter((p) => p !== 8080).map(() => 'allowed:plaintext'));
      expect(o.answers.map((a) => (a.evidence.body ?? '').split(':')[0])).to.deep.equal(o.row.ports.filter((p) => p !== 8080).map((p) => `port-${p}`));
    }
  });
});
