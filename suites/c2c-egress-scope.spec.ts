// c2c-egress-scope: the draft RFC's egress proxy lends the caller's identity to http:// calls to *.apps.internal:62443
// and to nothing else: another port on an internal host, an outside host (also on 62443, also a look-alike name that
// merely contains apps.internal) get a plain forward and no client certificate; CONNECT (https://) is tunnelled
// untouched (the app's own TLS, end to end: it verifies the destination's own certificate, and without a cert of its
// own 62443 refuses it); the proxy checks the server it reached (a name the server's certificate lacks: 503, nothing
// sent); NO_PROXY bypasses the proxy (its request counter does not move) — and NO_PROXY=apps.internal, the usual
// advice for outbound proxies on CF, sends 62443 calls in plaintext to a TLS listener; loopback is never proxied;
// 61445 is bound to loopback only. Rows: fixtures/c2c/truth/egress-scope.yaml.
import { expect } from 'chai';
import type { ResultRecord, Verdict, Wire } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { CF_INSTANCE_MTLS_PROXY, EGRESS_PROXY_PORT } from '../src/harness/dataplane/envoy/egress-proxy.ts';
import { mtlsProxyOf, proxyFor, type ProxyEndpoint } from '../src/harness/model/c2c/proxy-env.ts';
import { observedOf, policyFile, record, report, startC2c, truthRows, urlProbe, xfccIdentity } from './lib/c2c.ts';

const SUITE = 'c2c-egress-scope';
interface Row {
  case: string;
  from?: string;
  url: string;
  via: 'mtls-proxy' | 'env' | 'direct';
  no_proxy?: string;
  cert?: 'own';
  route: 'proxy' | 'direct';
  in_scope?: boolean;
  verdict: Verdict;
  xfcc?: string;
  server?: string;
  wire: Wire;
}
interface Outcome { row: Row; result: ProbeResult; chosen: 'proxy' | 'direct'; counted: number; injected: number; sanFailures: number; inScope: boolean; wantIdentity: string | null; wantServer: string | null }
const rows = truthRows<Row>('egress-scope');

/**
 * The mTLS cluster serves exactly the in-scope calls: an allowed one is one request over it; a refused one is a server
 * whose certificate did not name the host (ssl.fail_verify_san), with no request sent.
 */
function mtlsAsExpected(o: Outcome): boolean {
  const allowed = o.row.verdict.startsWith('allowed');
  return o.injected === (o.inScope && allowed ? 1 : 0) && (o.inScope && !allowed ? o.sanFailures > 0 : o.sanFailures === 0);
}

describe(`${SUITE}: what the egress proxy (127.0.0.1:61445) does and does not do (real Envoy)`, function () {
  this.timeout(60_000);
  const outcomes: Outcome[] = [];
  let listening = '';

  before(async () => {
    const f = await startC2c({ runningEnvironment: { HTTP_PROXY: CF_INSTANCE_MTLS_PROXY, HTTPS_PROXY: CF_INSTANCE_MTLS_PROXY }, routesMappedLater: { backend: ['backend-late.apps.internal'] } });
    try {
      await f.addPolicies([...policyFile('frontend-to-backend'), ...policyFile('backend-to-frontend-61445')]);
      const frontend = f.cf.instance('frontend', 0);
      const ca = f.cf.caFiles.identity;
      const records: ResultRecord[] = [];
      for (const row of rows) {
        const caller = f.cf.instance(row.from ?? 'frontend', 0);
        const env = await f.appEnv(caller);
        const url = row.url.replace('{frontend}', frontend.ip);
        let proxy: ProxyEndpoint | null = null;
        if (row.via === 'mtls-proxy') proxy = mtlsProxyOf(env);
        if (row.via === 'env') proxy = proxyFor(url, { ...env, NO_PROXY: row.no_proxy ?? '' });
        const https = url.startsWith('https:');
        const tlsCa = url.includes('external.example.com') ? f.externalCa : ca;
        const own = f.cf.credentialsOf(caller).files;
        const req = urlProbe(url, { proxy, tls: https ? { ca: tlsCa, ...(row.cert === 'own' ? { cert: own.cert, key: own.key } : {}) } : undefined });
        const before = await f.egressRequests(caller);
        const mtlsBefore = await f.egressMtlsRequests(caller);
        const sanBefore = await f.egressSanFailures(caller);
        const result = await f.cluster.probe(caller.key, req);
        const counted = (await f.egressRequests(caller)) - before;
        const injected = (await f.egressMtlsRequests(caller)) - mtlsBefore;
        const sanFailures = (await f.egressSanFailures(caller)) - sanBefore;
        // the RFC's scope as the hand-written table states it (never the renderer's own predicate)
        const inScope = row.in_scope === true;
        const wantIdentity = row.xfcc && row.xfcc !== 'none' ? f.cf.instance(row.xfcc, 0).guid : null;
        const wantServer = row.server === undefined ? null : row.server === 'backend' ? f.cf.instance('backend', 0).guid : row.server;
        const o: Outcome = { row, result, chosen: proxy ? 'proxy' : 'direct', counted, injected, sanFailures, inScope, wantIdentity, wantServer };
        outcomes.push(o);
        const pass = result.verdict === row.verdict && (proxy ? 'proxy' : 'direct') === row.route && counted === (row.route === 'proxy' ? 1 : 0) && mtlsAsExpected(o) && result.evidence.wire === row.wire;
        const target = new URL(url);
        records.push(record(f, { suite: SUITE, scenario: row.via === 'env' ? `HTTP(S)_PROXY=61445, NO_PROXY=${row.no_proxy ?? ''}` : row.via, from: `${row.from ?? 'frontend'}: ${row.case}`, to: target.hostname, port: Number(target.port), protocol: `${target.protocol.replace(':', '')} ${row.route}` }, observedOf(row.verdict), result.verdict, result, pass));
      }
      listening = (await f.cluster.exec(frontend.key, ['ss', '-Htln', `sport = :${EGRESS_PROXY_PORT}`])).stdout;
      report(f, SUITE, 'calls from an app container', records);
    } finally {
      await f.down();
    }
  });

  it('every row has the hand-written verdict', () => {
    // egress-scope.yaml: 21 calls
    expect(outcomes).to.have.length(21);
    const wrong = outcomes.filter((o) => o.result.verdict !== o.row.verdict).map((o) => `${o.row.case}: want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('HTTP_PROXY/NO_PROXY route each call as written by hand (proxyFor), and the proxy counted exactly the proxied ones', () => {
    const wrong = outcomes.filter((o) => o.chosen !== o.row.route || o.counted !== (o.row.route === 'proxy' ? 1 : 0)).map((o) => `${o.row.case}: want ${o.row.route}, chose ${o.chosen}, proxy counted ${o.counted}`);
    expect(wrong).to.deep.equal([]);
  });

  it('only *.apps.internal:62443 over plain http:// gets the instance identity; everything else arrives without XFCC', () => {
    const named = outcomes.filter((x) => x.row.xfcc !== undefined);
    // egress-scope.yaml: 16 rows name what the destination saw, 4 of them the frontend's identity
    expect(named).to.have.length(16);
    expect(named.filter((o) => o.wantIdentity !== null).map((o) => o.row.case)).to.deep.equal([
      'in scope: internal host, 62443', 'CONNECT to 62443, own cert', 'NO_PROXY=external.example.com, internal', 'NO_PROXY=backend.apps.internal:8080, 62443',
    ]);
    for (const o of named) {
      if (o.wantIdentity === null) expect(o.result.evidence.xfcc, o.row.case).to.equal(null);
      else expect(xfccIdentity(o.result)?.instanceGuid, o.row.case).to.equal(o.wantIdentity);
    }
  });

  it('the proxy\'s certificate-presenting cluster served exactly the in-scope calls (no other destination saw TLS from it)', () => {
    const wrong = outcomes.filter((o) => !mtlsAsExpected(o)).map((o) => `${o.row.case}: in scope ${o.inScope}, egress-c2c-mtls requests ${o.injected}, SAN failures ${o.sanFailures}`);
    expect(wrong).to.deep.equal([]);
    expect(outcomes.filter((o) => o.inScope).map((o) => o.row.case)).to.deep.equal([
      'in scope: internal host, 62443', 'in scope, name not in the server\'s certificate', 'NO_PROXY=external.example.com, internal', 'NO_PROXY=backend.apps.internal:8080, 62443',
    ]);
  });

  it('the proxy checks whom it reached: a server certificate that does not name the host is refused before any request', () => {
    const late = outcomes.filter((o) => o.inScope && o.row.verdict.startsWith('denied'));
    expect(late).to.have.length(1);
    expect(late[0]!.sanFailures).to.be.greaterThan(0);
    expect(late[0]!.result.evidence.servedBy ?? null).to.equal(null);
    expect(late[0]!.result.evidence.body ?? '').to.match(/upstream connect error|TLS_error|CERTIFICATE_VERIFY_FAILED/);
  });

  it('CONNECT is not intercepted: the app verifies the destination\'s own certificate', () => {
    const verified = outcomes.filter((x) => x.wantServer !== null);
    expect(verified.map((o) => o.row.case), 'egress-scope.yaml: the rows naming the certificate the app verified').to.deep.equal(['CONNECT to 61443', 'CONNECT to an outside host', 'NO_PROXY=*, outside https']);
    for (const o of verified) expect(o.result.evidence.serverIdentity, o.row.case).to.equal(o.wantServer);
  });

  it('the wire canary agrees: plain forwards and NO_PROXY bypasses cross the overlay in clear, the mTLS leg never', () => {
    const wrong = outcomes.filter((o) => o.result.evidence.wire !== o.row.wire).map((o) => `${o.row.case}: want ${o.row.wire}, got ${o.result.evidence.wire} ${JSON.stringify(o.result.evidence.plaintextLegs)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('61445 listens on 127.0.0.1 only', () => {
    expect(listening.trim().split(/\s+/)).to.include(`127.0.0.1:${EGRESS_PROXY_PORT}`);
    expect(listening).to.not.match(/0\.0\.0\.0:61445|\*:61445|10\.244\./);
  });
});
