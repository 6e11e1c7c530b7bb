// cf-tcp-routes-tls: every combination of tcp-router's backend_tls (enabled, CA, client cert) with a
// route's backend_tls_port (-1, 0, N) and instance_id (right, empty, wrong), on real HAProxy and the
// Diego Envoy sidecar: TLS with verification, plaintext to backend_port, a skipped entry or server,
// or a configuration error before anything starts. Each cell is checked against the hand-written
// table (fixtures/cf/truth/tcp-routes-tls.yaml): its verdict, the tcp-router log lines, HAProxy's own
// session line for a failed verification, and the wire canary for which leg was encrypted.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CfFoundation } from '../src/harness/profiles/cf/index.ts';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { propsFrom, record, report, routedVerdict, startCf, tcpRoute } from './lib/cf.ts';

const SUITE = 'cf-tcp-routes-tls';
type Instance = 'right' | 'empty' | 'wrong';
interface Row { tls_port: -1 | 0 | 'N'; instance_id: Instance; outcome: string; verdict: Verdict; logs: string[] }
interface Config { name: string; enabled: boolean; ca: boolean; cert: boolean; table?: 'enabled' | 'disabled'; error?: string }
const truth = parseYamlFile('fixtures/cf/truth/tcp-routes-tls.yaml') as { backend_tls_port: number; configs: Config[]; tables: Record<string, Row[]> };

interface Cell { config: Config; row: Row; port: number; verdict: Verdict; logs: string[]; haproxy: string[]; body: string | null; legs: string[] }

describe(`${SUITE}: tcp-router backend_tls × backend_tls_port × instance_id (real HAProxy, real Envoy)`, function () {
  this.timeout(180_000);
  let cf: CfFoundation;
  const cells: Cell[] = [];
  const configErrors: { config: Config; message: string; haproxyStarted: boolean }[] = [];

  before(async () => {
    cf = await startCf();
    const records: ResultRecord[] = [];
    const target = cf.instance('tcp-listener', 0);
    const guid: Record<Instance, string> = { right: target.guid, empty: '', wrong: cf.instance('dora', 0).guid };
    // configuration errors first: they must be refused while nothing runs yet
    for (const config of truth.configs.filter((c) => c.error)) {
      let message = '';
      try {
        await cf.configureTcpRouter(propsFrom(cf, config), [tcpRoute(cf, 1024, 'tcp-listener')]);
      } catch (e) {
        message = (e as Error).message;
      }
      configErrors.push({ config, message, haproxyStarted: existsSync(join(cf.cluster.stateDir, 'cf', 'tcp-router', 'haproxy.cfg')) });
    }
    const runnable = truth.configs.filter((c) => c.table);
    for (const [n, config] of runnable.entries()) {
      console.log(`    [${n + 1}/${runnable.length}] ${config.name}: ${truth.tables[config.table!]!.length} routes`);
      for (const [slot, row] of truth.tables[config.table!]!.entries()) {
        // the same external port per route slot in every configuration: the table reads config × route
        const port = 1025 + slot;
        const seen = cf.haproxySessions(port).length;
        const tls = row.tls_port === 'N' ? truth.backend_tls_port : row.tls_port;
        const route = tcpRoute(cf, port, 'tcp-listener', 0, { backend_tls_port: tls, instance_id: guid[row.instance_id] });
        const applied = await cf.configureTcpRouter(propsFrom(cf, config), [route]);
        const result = await cf.cluster.probe('cf/client', { protocol: 'tcp', host: cf.tcpRouterIp, port });
        const verdict = routedVerdict(cf, result);
        const cell: Cell = {
          config,
          row,
          port,
          verdict,
          logs: [...new Set(applied.logs.map((l) => l.message.replace(/^tcp-router\./, '')))].sort(),
          // a refused call never reached HAProxy: no session line to wait for
          haproxy: verdict === 'denied:refused' ? [] : await cf.newHaproxySessions(port, seen, 1000),
          body: result.evidence.body ?? null,
          legs: result.evidence.plaintextLegs ?? [],
        };
        cells.push(cell);
        records.push(record(cf, { suite: SUITE, scenario: 'backend_tls config × route', from: config.name, to: `tls=${row.tls_port} id=${row.instance_id}`, port, protocol: 'tcp' }, row.verdict.startsWith('allowed') ? 'allowed' : 'denied', verdict, result, verdict === row.verdict));
      }
    }
    report(cf, SUITE, 'backend_tls config × route', records);
  });
  after(async () => cf?.down());

  it('a CA-less client certificate or an enabled backend_tls without a CA is a configuration error before HAProxy starts', () => {
    expect(configErrors.map((c) => c.config.name)).to.have.length(truth.configs.filter((c) => c.error).length);
    for (const c of configErrors) {
      console.log(`    ${c.config.name}: ${c.message}`);
      expect(c.message, c.config.name).to.include(c.config.error!);
      expect(c.message.split('\n'), c.config.name).to.have.length(1);
      expect(c.haproxyStarted, `${c.config.name}: nothing may be written or started`).to.equal(false);
    }
  });

  it('every cell has the hand-written verdict and tcp-router log lines', () => {
    const wrong = cells
      .filter((c) => c.verdict !== c.row.verdict || JSON.stringify(c.logs) !== JSON.stringify([...c.row.logs].sort()))
      .map((c) => `${c.config.name} tls=${c.row.tls_port} id=${c.row.instance_id}: want ${c.row.verdict} ${JSON.stringify(c.row.logs)}, got ${c.verdict} ${JSON.stringify(c.logs)} legs=${JSON.stringify(c.legs)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('TLS cells reach the app with no plaintext on the router → cell leg; plaintext cells cross router → cell:backend_port in clear', () => {
    const target = cf.instance('tcp-listener', 0);
    for (const c of cells.filter((x) => x.row.outcome === 'tls' || x.row.outcome === 'plaintext')) {
      expect(c.body, `${c.config.name} ${c.port}`).to.match(/^server1:Time is /);
      const toCell = c.legs.filter((l) => l.startsWith(`${cf.tcpRouterIp}→${target.cellIp}:`));
      if (c.row.outcome === 'tls') expect(toCell, `${c.config.name} ${c.port}`).to.deep.equal([]);
      else expect(toCell, `${c.config.name} ${c.port}`).to.deep.equal([`${cf.tcpRouterIp}→${target.cellIp}:8080`]);
    }
  });

  it('a wrong instance_id fails verifyhost in HAProxy (SC, certificate verify failed) and no byte reaches the app', () => {
    const failed = cells.filter((c) => c.row.outcome === 'verify-failed');
    expect(failed.length).to.be.above(0);
    for (const c of failed) {
      expect(c.haproxy.join('\n'), `${c.config.name} ${c.port}`).to.match(/ SC ssl_err=.*certificate verify failed/);
      expect(c.legs.filter((l) => !l.endsWith(`:${c.port}`)), 'only the client → router leg carries the bytes').to.deep.equal([]);
    }
  });
});
