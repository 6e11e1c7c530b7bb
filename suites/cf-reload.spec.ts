// cf-reload: tcp-router reloads HAProxy whenever the routing table changes (cf-tcp-router's
// configurer: write the config, run the reloader). A long-lived TCP connection on one route must
// survive routes being added and removed around it: HAProxy master-worker hands the listeners to a
// new worker and the old one keeps serving its established connections.
import { expect } from 'chai';
import type { CfFoundation } from '../src/harness/profiles/cf/index.ts';
import type { ProbeRequest } from '../src/harness/probe/types.ts';
import { record, report, routedVerdict, routerProps, startCf, tcpRoute } from './lib/cf.ts';

const SUITE = 'cf-reload';
const PINGS = 40;

describe(`${SUITE}: a long-lived connection survives route changes (real HAProxy)`, function () {
  this.timeout(120_000);
  let cf: CfFoundation;
  let pinger: string[] = [];
  let control: string[] = [];
  const changes: { step: string; body: string | null }[] = [];

  before(async () => {
    cf = await startCf();
    const props = routerProps(cf, 'tls-mtls');
    const base = tcpRoute(cf, 1024, 'tcp-listener');
    await cf.configureTcpRouter(props, [base]);
    await cf.cluster.startContainer('cf/client', { name: 'pinger', workload: 'tcp-pinger', args: ['--host', cf.tcpRouterIp, '--port', '1024', '--count', String(PINGS), '--interval-ms', '100'] });
    const read = async () => (await cf.cluster.containerLog('cf/client', 'pinger')).trim().split('\n').filter(Boolean);
    const waitFor = async (re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await read()).some((l) => re.test(l))) {
        if (Date.now() > deadline) throw new Error(`pinger: no line matching ${re} within ${ms} ms: ${(await read()).slice(-3).join(' | ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(/^ok 3 /, 5000);
    const steps: [string, ReturnType<typeof tcpRoute>[], ProbeRequest | null][] = [
      ['add a route to server2 on 1025', [base, tcpRoute(cf, 1025, 'tcp-listener-2')], { protocol: 'tcp', host: cf.tcpRouterIp, port: 1025 }],
      ['swap it for a route to dora on 1026', [base, tcpRoute(cf, 1026, 'dora')], { protocol: 'http', host: cf.tcpRouterIp, port: 1026, path: '/id' }],
      ['remove every other route', [base], null],
    ];
    const records = [];
    for (const [step, routes, probe] of steps) {
      await cf.configureTcpRouter(props, routes);
      if (probe !== null) {
        const r = await cf.cluster.probe('cf/client', probe);
        changes.push({ step, body: r.evidence.body ?? null });
        records.push(record(cf, { suite: SUITE, scenario: 'routes changed around a live connection', from: 'client', to: step, port: probe.port, protocol: probe.protocol }, 'allowed', routedVerdict(cf, r), r, r.observed === 'allowed'));
      }
      await new Promise((r) => setTimeout(r, 300)); // let a few pings cross each reload
    }
    await waitFor(/^(done|closed|error) /, PINGS * 100 + 10_000);
    pinger = await read();
    // control: the same check sees a break when HAProxy stops instead of reloading
    await cf.cluster.startContainer('cf/client', { name: 'pinger-control', workload: 'tcp-pinger', args: ['--host', cf.tcpRouterIp, '--port', '1024', '--count', String(PINGS), '--interval-ms', '100'] });
    const readControl = async () => (await cf.cluster.containerLog('cf/client', 'pinger-control')).trim().split('\n').filter(Boolean);
    for (let i = 0; i < 250 && !(await readControl()).some((l) => l.startsWith('ok 3 ')); i++) await new Promise((r) => setTimeout(r, 20));
    await cf.cluster.stopContainer('cf/tcp-router', 'haproxy');
    for (let i = 0; i < 250 && !(await readControl()).some((l) => /^(done|closed|error) /.test(l)); i++) await new Promise((r) => setTimeout(r, 20));
    control = await readControl();
    report(cf, SUITE, 'routes changed around a live connection', records);
  });
  after(async () => cf?.down());

  it('the new routes answer after each reload', () => {
    expect(changes[0]?.body, changes[0]?.step).to.match(/^server2:Time is /);
    expect(changes[1]?.body, changes[1]?.step).to.equal(cf.instance('dora', 0).guid);
  });

  it(`the first connection stayed up through three reloads: one connect, ${PINGS} answers from server1, no close`, () => {
    expect(pinger.filter((l) => l.startsWith('connected'))).to.have.length(1);
    expect(pinger.filter((l) => /^(closed|error) /.test(l)), pinger.slice(-3).join(' | ')).to.deep.equal([]);
    const oks = pinger.filter((l) => l.startsWith('ok '));
    expect(oks).to.deep.equal(Array.from({ length: PINGS }, (_, i) => `ok ${i + 1} server1`));
    expect(pinger[pinger.length - 1]).to.equal(`done ${PINGS}`);
  });

  it('control: when HAProxy stops instead of reloading, the same check sees the connection end', () => {
    expect(control.some((l) => l.startsWith('ok 3 ')), control.join(' | ')).to.equal(true);
    expect(control[control.length - 1], control.join(' | ')).to.match(/^(closed|error) /);
  });
});
