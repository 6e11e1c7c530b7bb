// c2c-61443: port 61443 is unchanged by the draft RFC. With the RFC's listener and egress proxy on and off alike:
// TLS without a client certificate works, the server is the backend instance (C2C certificate, verified for
// backend.apps.internal), and the app gets whatever X-Forwarded-Client-Cert the caller wrote (an L4 proxy reads no
// header); the live Envoy's 61443 listener is the same config in both. 62443 answers only with the listener on.
// Rows: fixtures/c2c/truth/61443.yaml.
import { expect } from 'chai';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeRequest, ProbeResult } from '../src/harness/probe/types.ts';
import type { C2cFoundation } from '../src/harness/profiles/c2c/index.ts';
import { C2C_TIMEOUT_MS, observedOf, policyFile, record, report, startC2c, truthRows, urlProbe, xfccIdentity } from './lib/c2c.ts';

const SUITE = 'c2c-61443';
interface Row { rfc: 'on' | 'off'; case: string; port: number; call: 'https' | 'tls' | 'mtls'; spoof?: boolean; verdict: Verdict; xfcc?: 'none' | 'spoofed' | 'frontend' }
interface Outcome { row: Row; result: ProbeResult; backendGuid: string; frontendGuid: string }
const rows = truthRows<Row>('61443');
const SPOOF = `Hash=${'f'.repeat(64)};Subject="CN=spoofed"`;

/** The live Envoy's listener config as its admin API dumps it, the run's state directory written as `<state>`. */
async function liveListener(f: C2cFoundation, name: string): Promise<unknown> {
  const inst = f.cf.instance('backend', 0);
  const r = await f.cluster.probe(inst.key, { protocol: 'http', host: '127.0.0.1', port: inst.adminPort, path: '/config_dump?resource=static_listeners', bodyLimit: 1 << 22 }, { wire: false });
  const dump = JSON.parse(r.evidence.body ?? '{}') as { configs?: { listener?: { name?: string } }[] };
  const l = (dump.configs ?? []).find((c) => c.listener?.name === name);
  if (!l) throw new Error(`no ${name} in the live config dump`);
  return JSON.parse(JSON.stringify(l.listener).replaceAll(f.cluster.stateDir, '<state>'));
}

describe(`${SUITE}: the C2C TLS port is unchanged by the RFC (real Envoy)`, function () {
  this.timeout(60_000);
  const outcomes: Outcome[] = [];
  const listeners: Record<string, unknown> = {};

  before(async () => {
    for (const rfc of ['off', 'on'] as const) {
      const f = await startC2c({ external: false, cell: { enableC2cMtlsListener: rfc === 'on', enableEgressProxy: rfc === 'on' } });
      try {
        await f.addPolicies(policyFile('frontend-to-backend'));
        const frontend = f.cf.instance('frontend', 0);
        const backend = f.cf.instance('backend', 0);
        const ca = f.cf.caFiles.identity;
        const own = f.cf.credentialsOf(frontend).files;
        const records: ResultRecord[] = [];
        for (const row of rows.filter((r) => r.rfc === rfc)) {
          const headers = row.spoof ? { 'x-forwarded-client-cert': SPOOF } : undefined;
          const url = `https://backend.apps.internal:${row.port}/id`;
          const req: ProbeRequest = row.call === 'tls'
            ? { protocol: 'tls', host: 'backend.apps.internal', port: row.port, tls: { ca }, timeoutMs: C2C_TIMEOUT_MS }
            : urlProbe(url, { headers, tls: { ca, ...(row.call === 'mtls' ? { cert: own.cert, key: own.key } : {}) } });
          const result = await f.cluster.probe(frontend.key, req);
          outcomes.push({ row, result, backendGuid: backend.guid, frontendGuid: frontend.guid });
          records.push(record(f, { suite: SUITE, scenario: `RFC ${rfc}`, from: `frontend: ${row.case}`, to: 'backend.apps.internal', port: row.port, protocol: row.call }, observedOf(row.verdict), result.verdict, result, result.verdict === row.verdict));
        }
        report(f, SUITE, `RFC listener and egress proxy ${rfc}`, records);
        listeners[rfc] = await liveListener(f, 'listener-8080-61443');
      } finally {
        await f.down();
      }
    }
  });

  it('every row has the hand-written verdict', () => {
    // 61443.yaml: 4 rows with the RFC off, 4 with it on
    expect(outcomes.map((o) => o.row.rfc)).to.deep.equal(['off', 'off', 'off', 'off', 'on', 'on', 'on', 'on']);
    const wrong = outcomes.filter((o) => o.result.verdict !== o.row.verdict).map((o) => `RFC ${o.row.rfc} ${o.row.case}: want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('61443 serves the backend instance\'s C2C certificate (verified for backend.apps.internal), no ALPN, and the app answers', () => {
    const tls = outcomes.filter((x) => x.row.port === 61443);
    // 61443.yaml: "TLS, no client certificate", "caller's own XFCC" and "raw TLS", RFC off and on
    expect(tls.map((o) => `${o.row.rfc} ${o.row.call}`)).to.deep.equal(['off https', 'off https', 'off tls', 'on https', 'on https', 'on tls']);
    for (const o of tls) {
      expect(o.result.evidence.serverIdentity, `${o.row.rfc} ${o.row.case}`).to.equal(o.backendGuid);
      expect(o.result.evidence.alpn ?? null, `${o.row.rfc} ${o.row.case}`).to.equal(null);
      if (o.row.call === 'https') expect(o.result.evidence.body, `${o.row.rfc} ${o.row.case}`).to.equal(o.backendGuid);
    }
  });

  it('61443 neither adds nor removes X-Forwarded-Client-Cert: the caller\'s own header arrives as written', () => {
    const withXfcc = outcomes.filter((x) => x.row.xfcc !== undefined);
    expect(withXfcc.map((o) => `${o.row.rfc} ${o.row.xfcc}`), '61443.yaml: the rows that name what the app saw').to.deep.equal(['off none', 'off spoofed', 'on none', 'on spoofed', 'on frontend']);
    for (const o of withXfcc) {
      const seen = o.result.evidence.xfcc;
      if (o.row.xfcc === 'none') expect(seen, `${o.row.rfc} ${o.row.case}`).to.equal(null);
      if (o.row.xfcc === 'spoofed') expect(seen, `${o.row.rfc} ${o.row.case}`).to.equal(SPOOF);
      if (o.row.xfcc === 'frontend') expect(xfccIdentity(o.result)?.instanceGuid, `${o.row.rfc} ${o.row.case}`).to.equal(o.frontendGuid);
    }
  });

  it('the live 61443 listener is the same config with the RFC on and off', () => {
    expect(listeners.on).to.not.equal(undefined);
    expect(listeners.on).to.deep.equal(listeners.off);
  });
});
