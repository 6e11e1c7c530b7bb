// cf-tcp-routes-tls: every combination of tcp-router's backend_tls (enabled, CA, client cert) with a
// route's backend_tls_port (-1, 0, N) and instance_id (right, empty, wrong), on real HAProxy and the
// Diego Envoy sidecar: TLS with verification, plaintext to backend_port, a skipped entry or server,
// or a configuration error before anything starts. Each cell is checked against the hand-written
// table (fixtures/cf/truth/tcp-routes-tls.yaml) from what the real processes did: the live traffic
// (verdict, who answered, which leg carried the token in clear), HAProxy's own runtime API
// (`show servers state`: the servers it loaded, their address, port and `ssl`) and HAProxy's own
// session line (the server it picked, termination state, backend TLS error). The lager lines
// meshproof's renderer writes are checked in test/cf-tcp-router.spec.ts, not here.
import { expect } from 'chai';
import type { CfFoundation, HaproxyServerState, HaproxySession } from '../src/harness/profiles/cf/index.ts';
import { parseHaproxySession, TCP_ROUTER_HEALTH_PORT } from '../src/harness/profiles/cf/index.ts';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { cfTruth, propsFrom, record, report, routedVerdict, startCf, tcpRoute } from './lib/cf.ts';

const SUITE = 'cf-tcp-routes-tls';
type Instance = 'right' | 'empty' | 'wrong';
type Outcome = 'tls' | 'plaintext' | 'verify-failed' | 'no-server' | 'no-frontend';
interface Row { tls_port: -1 | 0 | 'N'; instance_id: Instance; outcome: Outcome; verdict: Verdict; logs: string[] }
interface Config { name: string; enabled: boolean; ca: boolean; cert: boolean; table?: 'enabled' | 'disabled'; error?: string }
const truth = cfTruth<{ backend_port: number; backend_tls_port: number; configs: Config[]; tables: Record<string, Row[]> }>('tcp-routes-tls');

interface Cell { config: Config; row: Row; port: number; verdict: Verdict; body: string | null; legs: string[]; servers: HaproxyServerState[] | null; sessions: HaproxySession[] }

/**
 * What HAProxy must report for an outcome, from the table's header (backend_port, backend_tls_port) and
 * cf-tcp-router's server names (`server_<ip>_<port>`, config_marshaller.go): the servers `show servers
 * state` lists for the route's backend (null: no such backend) and the one session line of the call
 * (null: none, the connection was refused before HAProxy saw it).
 */
function haproxyWants(outcome: Outcome, cellIp: string): { servers: HaproxyServerState[] | null; session: { server: string; termination?: string; sslError: RegExp } | null } {
  const plain = { name: `server_${cellIp}_${truth.backend_port}`, address: cellIp, port: truth.backend_port, ssl: false };
  const tls = { name: `server_${cellIp}_${truth.backend_tls_port}`, address: cellIp, port: truth.backend_tls_port, ssl: true };
  switch (outcome) {
    // `--`: the session ended normally (the client closed after the answer)
    case 'plaintext':
      return { servers: [plain], session: { server: plain.name, termination: '--', sslError: /^-$/ } };
    case 'tls':
      return { servers: [tls], session: { server: tls.name, termination: '--', sslError: /^-$/ } };
    case 'verify-failed':
      // tooling.md §6: `SC ssl_err=error:0A000086:SSL routines::certificate verify failed`
      return { servers: [tls], session: { server: tls.name, termination: 'SC', sslError: /certificate verify failed/ } };
    case 'no-server':
      // no server to pick: HAProxy logs `<NOSRV>` and ends the session on the server side
      return { servers: [], session: { server: '<NOSRV>', termination: 'SC', sslError: /^-$/ } };
    case 'no-frontend':
      return { servers: null, session: null };
  }
}

/** The differences between what HAProxy reported for a cell and what its outcome says, as readable lines. */
function haproxyMismatches(c: Cell, cellIp: string): string[] {
  const want = haproxyWants(c.row.outcome, cellIp);
  const out: string[] = [];
  if (JSON.stringify(c.servers) !== JSON.stringify(want.servers)) out.push(`show servers state: want ${JSON.stringify(want.servers)}, got ${JSON.stringify(c.servers)}`);
  if (want.session === null) {
    if (c.sessions.length !== 0) out.push(`want no session line, got ${JSON.stringify(c.sessions)}`);
  } else if (c.sessions.length !== 1) {
    out.push(`want one session line, got ${JSON.stringify(c.sessions)}`);
  } else {
    const s = c.sessions[0]!;
    if (s.backend !== `backend_${c.port}` || s.server !== want.session.server) out.push(`session: want backend_${c.port}/${want.session.server}, got ${s.backend}/${s.server}`);
    if (want.session.termination !== undefined && s.termination !== want.session.termination) out.push(`session: want termination ${want.session.termination}, got ${s.termination}`);
    if (!want.session.sslError.test(s.sslError)) out.push(`session: want ssl_err ${want.session.sslError}, got ${s.sslError}`);
  }
  return out.map((l) => `${c.config.name} tls=${c.row.tls_port} id=${c.row.instance_id}: ${l}`);
}

describe(`${SUITE}: tcp-router backend_tls × backend_tls_port × instance_id (real HAProxy, real Envoy)`, function () {
  this.timeout(180_000);
  let cf: CfFoundation;
  let cellIp = '';
  const cells: Cell[] = [];
  const errorConfigs = truth.configs.filter((c) => c.error);
  /** A refused configuration while HAProxy did not run yet: the message, and the router's ports as the client found them. */
  const beforeStart: { config: Config; message: string; health: ProbeResult; route: ProbeResult }[] = [];
  /** A refused configuration while HAProxy ran a good one: the message, and whether HAProxy changed. */
  const whileRunning: { config: Config; message: string; workerBefore: string; workerAfter: string; serversBefore: HaproxyServerState[] | null; serversAfter: HaproxyServerState[] | null; route: ProbeResult }[] = [];

  const attempt = async (config: Config): Promise<string> => {
    try {
      await cf.configureTcpRouter(propsFrom(cf, config), [tcpRoute(cf, 1024, 'tcp-listener')]);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const call = (port: number): Promise<ProbeResult> => cf.cluster.probe('cf/client', { protocol: 'tcp', host: cf.tcpRouterIp, port });
  // `show info` is answered by the current worker: the same Pid means HAProxy was not reloaded
  const worker = async (): Promise<string> => /^Pid: (\d+)$/m.exec(await cf.haproxyRuntime('show info'))?.[1] ?? '';

  before(async () => {
    cf = await startCf();
    const records: ResultRecord[] = [];
    const target = cf.instance('tcp-listener', 0);
    cellIp = target.cellIp;
    const guid: Record<Instance, string> = { right: target.guid, empty: '', wrong: cf.instance('dora', 0).guid };
    // configuration errors first: they must be refused while nothing runs yet
    for (const config of errorConfigs) {
      const message = await attempt(config);
      beforeStart.push({ config, message, health: await call(TCP_ROUTER_HEALTH_PORT), route: await call(1024) });
    }
    const runnable = truth.configs.filter((c) => c.table);
    for (const [n, config] of runnable.entries()) {
      console.log(`    [${n + 1}/${runnable.length}] ${config.name}: ${truth.tables[config.table!]!.length} routes`);
      for (const [slot, row] of truth.tables[config.table!]!.entries()) {
        // the same external port per route slot in every configuration: the table reads config × route
        const port = 1025 + slot;
        const seen = (await cf.haproxySessions(port)).length;
        const tls = row.tls_port === 'N' ? truth.backend_tls_port : row.tls_port;
        const route = tcpRoute(cf, port, 'tcp-listener', 0, { backend_tls_port: tls, instance_id: guid[row.instance_id] });
        await cf.configureTcpRouter(propsFrom(cf, config), [route]);
        const result = await call(port);
        const verdict = routedVerdict(cf, result);
        const cell: Cell = {
          config,
          row,
          port,
          verdict,
          body: result.evidence.body ?? null,
          legs: result.evidence.plaintextLegs ?? [],
          servers: await cf.haproxyServers(`backend_${port}`),
          // HAProxy logs a session when it ends, a moment after the client saw the close; a refused call has none
          sessions: (await cf.newHaproxySessions(port, seen, verdict === 'denied:refused' ? 300 : 2000)).map(parseHaproxySession),
        };
        cells.push(cell);
        const pass = verdict === row.verdict && haproxyMismatches(cell, cellIp).length === 0;
        records.push(record(cf, { suite: SUITE, scenario: 'backend_tls config × route', from: config.name, to: `tls=${row.tls_port} id=${row.instance_id}`, port, protocol: 'tcp' }, row.verdict.startsWith('allowed') ? 'allowed' : 'denied', verdict, result, pass));
      }
    }
    report(cf, SUITE, 'backend_tls config × route', records);
    // then the same errors against a running HAProxy with a good TLS route on 1024
    await cf.configureTcpRouter(propsFrom(cf, { enabled: true, ca: true, cert: true }), [tcpRoute(cf, 1024, 'tcp-listener')]);
    for (const config of errorConfigs) {
      const [workerBefore, serversBefore] = [await worker(), await cf.haproxyServers('backend_1024')];
      const message = await attempt(config);
      whileRunning.push({ config, message, workerBefore, workerAfter: await worker(), serversBefore, serversAfter: await cf.haproxyServers('backend_1024'), route: await call(1024) });
    }
  });
  after(async () => cf?.down());

  it('tcp-routes-tls.yaml has three configuration errors and five runnable configurations (45 cells)', () => {
    expect(errorConfigs.map((c) => c.name)).to.deep.equal(['tls, no CA, client cert', 'tls, no CA, no client cert', 'no tls, no CA, client cert']);
    expect(cells).to.have.length(45);
  });

  it('a CA-less client certificate or an enabled backend_tls without a CA is a one-line configuration error, and HAProxy never starts', () => {
    expect(beforeStart).to.have.length(3);
    for (const c of beforeStart) {
      console.log(`    ${c.config.name}: ${c.message}`);
      expect(c.message, c.config.name).to.include(c.config.error!);
      expect(c.message.split('\n'), c.config.name).to.have.length(1);
      // nothing listens on the router: not its health port, not the route's port
      expect(c.health.verdict, `${c.config.name}: tcp-router:${TCP_ROUTER_HEALTH_PORT}`).to.equal('denied:refused');
      expect(c.route.verdict, `${c.config.name}: tcp-router:1024`).to.equal('denied:refused');
    }
  });

  it('the same errors leave a running HAProxy untouched: same worker, same servers, the route still answers over TLS', () => {
    expect(whileRunning).to.have.length(3);
    for (const c of whileRunning) {
      expect(c.message, c.config.name).to.include(c.config.error!);
      expect(c.workerBefore, `${c.config.name}: HAProxy's worker pid`).to.match(/^\d+$/);
      expect(c.workerAfter, `${c.config.name}: HAProxy was reloaded`).to.equal(c.workerBefore);
      expect(c.serversAfter, c.config.name).to.deep.equal(c.serversBefore);
      expect(c.serversAfter, c.config.name).to.deep.equal([{ name: `server_${cellIp}_${truth.backend_tls_port}`, address: cellIp, port: truth.backend_tls_port, ssl: true }]);
      expect(routedVerdict(cf, c.route), `${c.config.name}: ${JSON.stringify(c.route.evidence)}`).to.equal('allowed:tls');
    }
  });

  it('every cell has the hand-written verdict on live traffic', () => {
    const wrong = cells
      .filter((c) => c.verdict !== c.row.verdict)
      .map((c) => `${c.config.name} tls=${c.row.tls_port} id=${c.row.instance_id}: want ${c.row.verdict}, got ${c.verdict} legs=${JSON.stringify(c.legs)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('HAProxy itself reports the outcome: the servers it loaded (show servers state) and its session line', () => {
    expect(cells.flatMap((c) => haproxyMismatches(c, cellIp))).to.deep.equal([]);
  });

  it('TLS cells reach the app with no plaintext on the router → cell leg; plaintext cells cross router → cell:backend_port in clear', () => {
    const reached = cells.filter((x) => x.row.outcome === 'tls' || x.row.outcome === 'plaintext');
    // enabled: 6 plaintext + 1 tls, twice; disabled: 6 plaintext, three times
    expect(reached.map((c) => c.row.outcome).filter((o) => o === 'tls')).to.have.length(2);
    expect(reached.map((c) => c.row.outcome).filter((o) => o === 'plaintext')).to.have.length(30);
    for (const c of reached) {
      expect(c.body, `${c.config.name} ${c.port}`).to.match(/^server1:Time is /);
      const toCell = c.legs.filter((l) => l.startsWith(`${cf.tcpRouterIp}→${cellIp}:`));
      if (c.row.outcome === 'tls') expect(toCell, `${c.config.name} ${c.port}`).to.deep.equal([]);
      else expect(toCell, `${c.config.name} ${c.port} legs=${JSON.stringify(c.legs)}`).to.deep.equal([`${cf.tcpRouterIp}→${cellIp}:${truth.backend_port}`]);
    }
  });

  it('a wrong instance_id fails verifyhost in HAProxy (SC, certificate verify failed) and no byte reaches the app', () => {
    const failed = cells.filter((c) => c.row.outcome === 'verify-failed');
    // the N × wrong row of the enabled table, in its two configurations
    expect(failed.map((c) => c.config.name)).to.deep.equal(['tls, CA, client cert', 'tls, CA, no client cert']);
    for (const c of failed) {
      expect(c.sessions.map((s) => `${s.termination} ${s.sslError}`), `${c.config.name} ${c.port}`).to.satisfy((l: string[]) => l.length === 1 && /^SC .*certificate verify failed/.test(l[0]!));
      expect(c.legs.filter((l) => !l.endsWith(`:${c.port}`)), 'only the client → router leg carries the bytes').to.deep.equal([]);
      expect(c.body ?? '', 'the app never answered').to.equal('');
    }
  });
});
