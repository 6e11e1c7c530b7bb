// c2c-reserved-ports: an app that declares a port the Diego sidecar owns is refused with the executor's message,
// before anything starts: 61443 always, 62443 when the cell enables the RFC's C2C mTLS listener, 61445 when it
// enables the egress proxy. With the RFC off the same app starts and its own process answers on 62443 and 61445.
// Rows: fixtures/c2c/truth/reserved-ports.yaml. A refusal happens before any traffic, so it is a test (one it() per
// row, asserting the sentence), not a cell; only the started app's probes are cells in results.json.
import { expect } from 'chai';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import { parseCfModel, type CfModel } from '../src/harness/profiles/cf/model.ts';
import type { ResultRecord } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { C2cFoundation } from '../src/harness/profiles/c2c/index.ts';
import { c2cModel, C2C_TIMEOUT_MS, record, report, truthRows } from './lib/c2c.ts';

const SUITE = 'c2c-reserved-ports';
interface Row { case: string; ports: number[]; listener: boolean; egress: boolean; outcome: string; mappings?: string[] }
const rows = truthRows<Row>('reserved-ports');
const APP_GUID = 'd4e5f6a7-b8c9-4dae-8f01-3b4c5d6e7f04';
const INSTANCE_GUID = 'd4e5f6a7-b8c9-4dae-8f01-00000000d001';

/** The c2c organization and space with one dora app declaring `ports` (what `cf push` hands Diego). */
function modelWith(ports: number[]): CfModel {
  const base = c2cModel();
  const raw = { organization: base.organization, space: base.space, apps: [{ name: 'reserved', guid: APP_GUID, kind: 'dora', ports, instances: [{ guid: INSTANCE_GUID }] }] };
  return parseCfModel(raw, `push reserved ${JSON.stringify(ports)}`);
}

/** Pushes the row's app onto a cell with the row's RFC properties (parsing refuses 61443 on any cell; starting refuses what the cell reserves). */
function push(row: Row): Promise<C2cFoundation> {
  return C2cFoundation.start(modelWith(row.ports), { external: false, log: (l) => console.log(`    ${l}`), cell: { enableC2cMtlsListener: row.listener, enableEgressProxy: row.egress } });
}

describe(`${SUITE}: ports the sidecar owns are refused in the executor's words`, function () {
  this.timeout(60_000);
  const refused = rows.filter((r) => r.outcome !== 'started');

  it('reserved-ports.yaml has five refusals and one started app', () => {
    expect(refused).to.have.length(5);
    expect(rows.filter((r) => r.outcome === 'started')).to.have.length(1);
  });

  for (const row of refused) {
    it(`${row.case}: refused before anything starts with "${row.outcome}"`, async () => {
      let caught: unknown = null;
      try {
        const f = await push(row);
        await f.down();
      } catch (e) {
        caught = e;
      }
      expect(caught, 'the push must be refused').to.be.instanceOf(UserError);
      const err = caught as UserError;
      expect(err.exitCode).to.equal(EXIT.usage);
      expect(err.message.split('\n'), 'one line').to.have.length(1);
      expect(err.message).to.match(new RegExp(`: app reserved: ${row.outcome}$`));
    });
  }
});

describe(`${SUITE}: with the RFC off the app owns 62443 and 61445`, function () {
  this.timeout(60_000);
  const row = rows.find((r) => r.outcome === 'started')!;
  const ports = row.ports.filter((p) => p !== 8080);
  let mappings: string[] = [];
  const answers: ProbeResult[] = [];

  before(async () => {
    const f = await push(row);
    try {
      const inst = f.cf.instance('reserved', 0);
      mappings = inst.mappings.map((m) => `${m.appPort}->${m.proxyPort}`);
      const records: ResultRecord[] = [];
      for (const port of ports) {
        // the app's own process, from inside its container
        const result = await f.cluster.probe(inst.key, { protocol: 'tcp', host: '127.0.0.1', port, timeoutMs: C2C_TIMEOUT_MS });
        answers.push(result);
        const pass = result.verdict === 'allowed:plaintext' && (result.evidence.body ?? '').startsWith(`port-${port}:`);
        records.push(record(f, { suite: SUITE, scenario: 'listener off, egress proxy off', from: `reserved: ${row.case}`, to: '127.0.0.1 (own container)', port, protocol: 'tcp' }, 'allowed', result.verdict, result, pass));
      }
      report(f, SUITE, 'an app declaring 62443 and 61445 on a cell without the RFC', records);
    } finally {
      await f.down();
    }
  });

  it('the executor maps every declared port (62443 and 61445 are ordinary app ports)', () => {
    expect(mappings).to.deep.equal(row.mappings);
  });

  it('its own process answers on 62443 and 61445, inside its container', () => {
    expect(ports, 'reserved-ports.yaml: 62443 and 61445').to.deep.equal([62443, 61445]);
    expect(answers.map((a) => a.verdict)).to.deep.equal(['allowed:plaintext', 'allowed:plaintext']);
    expect(answers.map((a) => (a.evidence.body ?? '').split(':')[0])).to.deep.equal(['port-62443', 'port-61445']);
  });
});
