// c2c-policy: Cloud Foundry container-to-container network policy on the overlay (the CATS service_discovery
// analogue). Without a policy, frontend cannot reach backend on 8080, 61443 or 62443 (silk's REJECT: refused); after
// `cf add-network-policy` (fixtures/c2c/policies/*.json) it can, on exactly the policy's ports, in one direction, from
// that source app only; removing the policy closes it again; routers keep reaching containers through cells. Internal
// DNS: backend.apps.internal resolves to both backend instances. Rows: fixtures/c2c/truth/policy.yaml; each row is
// also checked against the policy oracle (model/c2c/policy.ts allowedByPolicy).
import { expect } from 'chai';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeRequest, ProbeResult } from '../src/harness/probe/types.ts';
import { allowedByPolicy } from '../src/harness/model/c2c/policy.ts';
import { CF_INSTANCE_MTLS_PROXY } from '../src/harness/dataplane/envoy/egress-proxy.ts';
import { mtlsProxyOf } from '../src/harness/model/c2c/proxy-env.ts';
import type { C2cFoundation } from '../src/harness/profiles/c2c/index.ts';
import { C2C_TIMEOUT_MS, observedOf, policyFile, record, report, startC2c, truthRows, urlProbe } from './lib/c2c.ts';

const SUITE = 'c2c-policy';
type Step = 'none' | 'frontend' | 'range' | 'removed';
type Call = 'http' | 'https' | 'mtls' | 'proxy' | 'tcp' | 'route-tls';
interface Row { step: Step; from: string; to: string; port: number; call: Call; pooled?: boolean; verdict: Verdict }
interface Outcome { row: Row; result: ProbeResult; oracle: boolean | null }
const rows = truthRows<Row>('policy');
const STEPS: Step[] = ['none', 'frontend', 'range', 'removed'];

describe(`${SUITE}: app-to-app traffic needs a network policy (real iptables on the overlay)`, function () {
  this.timeout(60_000);
  const outcomes: Outcome[] = [];
  let dns = '';
  let dnsIps: string[] = [];
  let vpa = '';
  const upstreamCx: Partial<Record<Step, number>> = {};

  /** The probe a row describes, sent from the caller's container. */
  function probeFor(f: C2cFoundation, row: Row): { from: string; req: ProbeRequest } {
    const ca = f.cf.caFiles.identity;
    if (row.call === 'route-tls') {
      const [app, index] = row.to.replace(/^cell /, '').split('/');
      const inst = f.cf.instance(app!, Number(index));
      return { from: `cf/${row.from}`, req: { protocol: 'tls', host: inst.cellIp, port: row.port, tls: { ca, servername: inst.guid }, timeoutMs: C2C_TIMEOUT_MS } };
    }
    const from = f.cf.instance(row.from, 0);
    const m = /^([a-z0-9-]+)\/(\d+)$/.exec(row.to);
    const host = m ? f.cf.instance(m[1]!, Number(m[2])).ip : row.to;
    const own = f.cf.credentialsOf(from).files;
    switch (row.call) {
      case 'http':
        return { from: from.key, req: urlProbe(`http://${host}:${row.port}/id`) };
      case 'https':
        return { from: from.key, req: urlProbe(`https://${host}:${row.port}/id`, { tls: { ca } }) };
      case 'mtls':
        return { from: from.key, req: urlProbe(`https://${host}:${row.port}/id`, { tls: { ca, cert: own.cert, key: own.key } }) };
      case 'proxy':
        return { from: from.key, req: urlProbe(`http://${host}:${row.port}/id`, { proxy: mtlsProxyOf({ CF_INSTANCE_MTLS_PROXY }) }) };
      case 'tcp':
        return { from: from.key, req: { protocol: 'tcp', host, port: row.port, timeoutMs: C2C_TIMEOUT_MS } };
    }
  }

  /** What the oracle says for app → app rows (null for routers, not overlay traffic, and for pooled connections). */
  function oracle(f: C2cFoundation, row: Row): boolean | null {
    if (row.call === 'route-tls' || row.pooled) return null;
    const app = (name: string) => f.cf.model.apps.find((a) => a.name === name.replace(/\.apps\.internal$|\/\d+$/, ''))!;
    return allowedByPolicy(f.policyServer, app(row.from).guid, app(row.to).guid, row.port);
  }

  before(async () => {
    const f = await startC2c();
    try {
      for (const step of STEPS) {
        if (step === 'frontend') await f.addPolicies(policyFile('frontend-to-backend'));
        if (step === 'range') await f.addPolicies(policyFile('other-to-backend-range'));
        if (step === 'removed') await f.removePolicies(policyFile('frontend-to-backend'));
        const stepRows = rows.filter((r) => r.step === step);
        const calls = stepRows.map((r) => probeFor(f, r));
        const results: ProbeResult[] = [];
        // one at a time: a REJECT's ICMP is rate limited per peer, and concurrency would only bunch them up
        for (const c of calls) results.push(await f.cluster.probe(c.from, c.req));
        const records: ResultRecord[] = [];
        stepRows.forEach((row, i) => {
          const result = results[i]!;
          const o = oracle(f, row);
          outcomes.push({ row, result, oracle: o });
          const from = row.call === 'proxy' ? `${row.from} via 61445` : row.from;
          const pass = result.verdict === row.verdict && (o === null || o === (observedOf(row.verdict) === 'allowed'));
          records.push(record(f, { suite: SUITE, scenario: `policies: ${step}`, from, to: row.to, port: row.port, protocol: row.call }, observedOf(row.verdict), result.verdict, result, pass));
        });
        report(f, SUITE, `policies: ${step}`, records);
        upstreamCx[step] = await f.cf.envoyStat(f.cf.instance('frontend', 0), /^cluster\.egress-c2c-mtls\.upstream_cx_total$/);
        if (step === 'frontend') vpa = (await f.cluster.exec(f.cf.instance('backend', 0).key, ['iptables', '-S', 'vpa'])).stdout;
      }
      dns = (await f.cluster.exec(f.cf.instance('frontend', 0).key, ['getent', 'ahostsv4', 'backend.apps.internal'])).stdout;
      dnsIps = [f.cf.instance('backend', 0).ip, f.cf.instance('backend', 1).ip];
    } finally {
      await f.down();
    }
  });

  it('every row has the hand-written verdict', () => {
    // policy.yaml: 6 rows without a policy, 9 with frontend's, 3 with the range, 4 after the removal
    expect(STEPS.map((step) => outcomes.filter((o) => o.row.step === step).length)).to.deep.equal([6, 9, 3, 4]);
    const wrong = outcomes.filter((o) => o.result.verdict !== o.row.verdict).map((o) => `${o.row.step}: ${o.row.from} → ${o.row.to}:${o.row.port} (${o.row.call}): want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('the policy oracle agrees with every app-to-app row', () => {
    // every row but the two router rows and the pooled one
    expect(outcomes.filter((o) => o.oracle !== null)).to.have.length(19);
    const wrong = outcomes.filter((o) => o.oracle !== null && o.oracle !== (observedOf(o.row.verdict) === 'allowed')).map((o) => `${o.row.step}: ${o.row.from} → ${o.row.to}:${o.row.port}`);
    expect(wrong).to.deep.equal([]);
  });

  it('a denial is silk\'s REJECT, signalled at once (ICMP port unreachable → ECONNREFUSED), never a timeout', () => {
    const refused = outcomes.filter((x) => x.row.verdict === 'denied:refused');
    expect(refused, 'policy.yaml: ten refused rows').to.have.length(10);
    for (const o of refused) {
      expect(o.result.evidence.error, `${o.row.step} ${o.row.from} → ${o.row.to}:${o.row.port}`).to.equal('ECONNREFUSED');
    }
  });

  it('an allowed call reaches the app it names: dora /id is a backend instance guid', () => {
    const answered = outcomes.filter((x) => x.row.verdict.startsWith('allowed') && x.row.call !== 'tcp' && x.row.call !== 'route-tls');
    expect(answered, 'policy.yaml: nine allowed app-to-app calls').to.have.length(9);
    for (const o of answered) {
      expect(o.result.evidence.body ?? '', `${o.row.step} ${o.row.from} → ${o.row.to}:${o.row.port}`).to.match(/^b2e1d3c4-5f6a-4b7c-9d8e-00000000b00[12]$/);
    }
  });

  it('the policy is kernel rules: backend/0 marks frontend\'s address and accepts its tag on 8080, 61443, 62443', () => {
    expect(vpa).to.match(/-A vpa -s 10\.244\.\d+\.\d+\/32 -m comment --comment "src:a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c01" -j MARK --set-xmark 0x1\/0xffffffff/);
    for (const port of [8080, 61443, 62443]) {
      expect(vpa).to.include(`--dport ${port} -m mark --mark 0x1 -m comment --comment "src:a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c01_dst:b2e1d3c4-5f6a-4b7c-9d8e-1f2a3b4c5d02" -j ACCEPT`);
    }
  });

  it('after the policy is removed the proxied request rode the connection pooled before (no new upstream connection)', () => {
    expect(upstreamCx.frontend, 'the frontend step connected').to.be.greaterThan(upstreamCx.none ?? 0);
    expect(upstreamCx.removed, 'no new upstream connection after the removal').to.equal(upstreamCx.frontend);
  });

  it('internal DNS: backend.apps.internal resolves to both backend instances, instance 0 first', () => {
    const ips = [...new Set(dns.trim().split('\n').map((l) => l.split(/\s+/)[0]))];
    expect(ips).to.deep.equal(dnsIps);
  });
});
