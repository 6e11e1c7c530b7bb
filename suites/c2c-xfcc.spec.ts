// c2c-xfcc: the draft RFC's 62443 listener tells the server app who called. frontend → backend:62443 through its
// egress proxy: backend sees CN = frontend's instance guid, frontend's app/space/organization OUs, and Hash = SHA-256
// of frontend's certificate (its CF_INSTANCE_CERT, hashed here independently); an XFCC the app sends itself is
// replaced, never passed on; a caller without a certificate, with one from another CA, or with an expired one is
// refused in the TLS handshake. The exact header Envoy 1.36.4 writes is pinned (Subject in RFC 2253 order, `URI=`
// empty), and the XFCC parser (model/xfcc.ts) reads it and the slash form alike. Rows: fixtures/c2c/truth/xfcc.yaml.
import { expect } from 'chai';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ResultRecord, Verdict } from '../src/harness/model/verdict.ts';
import type { ProbeResult } from '../src/harness/probe/types.ts';
import { expired } from '../src/harness/pki/index.ts';
import { formatSlash, parseDistinguishedName, parseXfcc, sameDistinguishedName } from '../src/harness/model/xfcc.ts';
import { mtlsProxyOf } from '../src/harness/model/c2c/proxy-env.ts';
import type { CfInstance } from '../src/harness/profiles/cf/model.ts';
import { c2cTruth, identityOf, observedOf, policyFile, record, report, startC2c, urlProbe, xfccIdentity } from './lib/c2c.ts';

const SUITE = 'c2c-xfcc';
type Cert = 'proxy' | 'own' | 'none' | 'other-ca' | 'expired';
interface Row { case: string; caller: string; via: 'proxy' | 'direct'; cert: Cert; spoof?: boolean; verdict: Verdict; xfcc?: string; error?: string }
const truth = c2cTruth<{ format: string; rows: Row[] }>('xfcc');
interface Outcome { row: Row; result: ProbeResult; caller: CfInstance; certSha256: string | null; expectedHeader: string | null }

describe(`${SUITE}: 62443 replaces X-Forwarded-Client-Cert with the verified caller (real Envoy)`, function () {
  this.timeout(60_000);
  const outcomes: Outcome[] = [];
  let spoofText = '';
  let derOrder: string[] = [];

  before(async () => {
    const f = await startC2c({ external: false });
    try {
      await f.addPolicies([...policyFile('frontend-to-backend'), ...policyFile('other-to-backend-range')]);
      const ca = f.cf.caFiles.identity;
      const other = f.cf.instance('other', 0);
      // the spoof claims to be `other`, with a made-up hash
      spoofText = `Hash=${'0'.repeat(64)};Subject="CN=${other.guid},OU=app:${other.app.guid},OU=space:${f.cf.model.space},OU=organization:${f.cf.model.organization}"`;
      const records: ResultRecord[] = [];
      for (const row of truth.rows) {
        const caller = f.cf.instance(row.caller, 0);
        const own = f.cf.credentialsOf(caller);
        const subject = { CN: caller.guid, OU: [`organization:${f.cf.model.organization}`, `space:${f.cf.model.space}`, `app:${caller.app.guid}`] };
        let files: { cert: string; key: string } | undefined;
        if (row.cert === 'own') files = own.files;
        if (row.cert === 'other-ca') files = (await f.cf.issueCredential(`${caller.guid}-other-ca`, { subject, dns: [caller.guid], eku: ['clientAuth', 'serverAuth'] }, 'other')).files;
        if (row.cert === 'expired') files = (await f.cf.issueCredential(`${caller.guid}-expired`, { subject, dns: [caller.guid], eku: ['clientAuth', 'serverAuth'], ...expired() })).files;
        const headers = row.spoof ? { 'x-forwarded-client-cert': spoofText } : undefined;
        const env = await f.appEnv(caller);
        const req = row.via === 'proxy'
          ? urlProbe('http://backend.apps.internal:62443/id', { proxy: mtlsProxyOf(env), headers })
          : urlProbe('https://backend.apps.internal:62443/id', { tls: { ca, ...(files ? { cert: files.cert, key: files.key } : {}) }, headers });
        const result = await f.cluster.probe(caller.key, req);
        // the certificate the server should have seen, hashed from the PEM file the app has (not from the PKI's own figure)
        const presented = row.cert === 'proxy' || row.cert === 'own' ? own.files.cert : null;
        const certSha256 = presented ? createHash('sha256').update(new X509Certificate(readFileSync(presented)).raw).digest('hex') : null;
        const id = row.xfcc ? identityOf(f, f.cf.instance(row.xfcc, 0)) : null;
        const expectedHeader = id && certSha256
          ? truth.format.replace('{hash}', certSha256).replaceAll('{instance}', id.instanceGuid).replace('{app}', id.appGuid).replace('{space}', id.spaceGuid).replace('{organization}', id.organizationGuid)
          : null;
        outcomes.push({ row, result, caller, certSha256, expectedHeader });
        const pass = result.verdict === row.verdict && (expectedHeader === null || result.evidence.xfcc === expectedHeader);
        records.push(record(f, { suite: SUITE, scenario: 'backend.apps.internal:62443', from: `${row.caller}: ${row.case}`, to: 'backend.apps.internal', port: 62443, protocol: row.via === 'proxy' ? 'http via 61445' : 'https' }, observedOf(row.verdict), result.verdict, result, pass));
      }
      derOrder = new X509Certificate(readFileSync(f.cf.credentialsOf(f.cf.instance('frontend', 0)).files.cert)).subject.split('\n');
      report(f, SUITE, 'callers of backend.apps.internal:62443', records);
    } finally {
      await f.down();
    }
  });

  it('every row has the hand-written verdict (and the TLS alert a refused caller gets)', () => {
    // xfcc.yaml: five allowed callers, three refused
    expect(outcomes).to.have.length(8);
    const wrong = outcomes
      .filter((o) => o.result.verdict !== o.row.verdict || (o.row.error !== undefined && o.result.evidence.error !== o.row.error))
      .map((o) => `${o.row.case}: want ${o.row.verdict} ${o.row.error ?? ''}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`);
    expect(wrong).to.deep.equal([]);
  });

  it('the server sees exactly the pinned header: the caller\'s Hash, RFC 2253 Subject, empty URI=, DNS SAN', () => {
    const pinned = outcomes.filter((x) => x.expectedHeader !== null);
    // xfcc.yaml: every allowed row names whose identity the server must see
    expect(pinned.map((o) => o.row.case)).to.deep.equal(['egress proxy', 'egress proxy, spoofed XFCC', 'egress proxy of another app', 'own instance identity', 'own identity, spoofed XFCC']);
    for (const o of pinned) {
      expect(o.result.evidence.xfcc, o.row.case).to.equal(o.expectedHeader);
    }
  });

  it('CN is the caller\'s instance guid and the OUs its app, space and organization; Hash is the SHA-256 of its certificate', () => {
    const named = outcomes.filter((x) => x.row.xfcc !== undefined);
    expect(named.map((o) => `${o.row.caller}→${o.row.xfcc}`), 'xfcc.yaml: the five allowed rows').to.deep.equal(['frontend→frontend', 'frontend→frontend', 'other→other', 'frontend→frontend', 'frontend→frontend']);
    for (const o of named) {
      const want = { instanceGuid: o.caller.guid, appGuid: o.caller.app.guid, spaceGuid: '8d1b8a2e-6d3f-4f7e-8b1a-1f6c3f9d0b02', organizationGuid: '5e3c5c1c-0b6f-4b8e-9f57-3a0f3b7f0a01' };
      expect(xfccIdentity(o.result), o.row.case).to.deep.equal(want);
      const elements = parseXfcc(o.result.evidence.xfcc!);
      expect(elements, `${o.row.case}: one element, the immediate caller`).to.have.length(1);
      expect(elements[0]!.hash, o.row.case).to.equal(o.certSha256);
      expect(elements[0]!.dns, o.row.case).to.deep.equal([o.caller.guid]);
      expect(elements[0]!.uri, o.row.case).to.deep.equal([]);
    }
  });

  it('a spoofed XFCC never reaches the app: replaced through the proxy and on a direct call alike', () => {
    const spoofed = outcomes.filter((o) => o.row.spoof);
    expect(spoofed).to.have.length(2);
    for (const o of spoofed) {
      expect(o.result.evidence.xfcc ?? '', o.row.case).to.not.include('0'.repeat(64));
      expect(xfccIdentity(o.result)?.instanceGuid, o.row.case).to.equal(o.caller.guid);
    }
  });

  it('a refused caller never reaches the app (no answer from backend)', () => {
    const refused = outcomes.filter((x) => x.row.verdict.startsWith('denied'));
    expect(refused.map((o) => o.row.cert), 'xfcc.yaml: no certificate, another CA, expired').to.deep.equal(['none', 'other-ca', 'expired']);
    for (const o of refused) {
      expect(o.result.evidence.servedBy ?? null, o.row.case).to.equal(null);
      expect(o.result.evidence.status, o.row.case).to.equal(null);
    }
  });

  it('Envoy\'s Subject is the certificate\'s RDNs reversed; the parser reads it and the slash form as the same name', () => {
    expect(derOrder, 'DER order of the instance identity subject').to.deep.equal([
      'OU=organization:5e3c5c1c-0b6f-4b8e-9f57-3a0f3b7f0a01', 'OU=space:8d1b8a2e-6d3f-4f7e-8b1a-1f6c3f9d0b02', 'OU=app:a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c01', 'CN=a1f0c2d3-4e5f-4a6b-8c7d-00000000a001',
    ]);
    const seen = parseXfcc(outcomes[0]!.result.evidence.xfcc!)[0]!.subject!;
    expect(seen.form).to.equal('rfc2253');
    expect(seen.text).to.equal([...derOrder].reverse().join(','));
    const slash = parseDistinguishedName(`/${derOrder.join('/')}`);
    expect(slash.form).to.equal('slash');
    expect(sameDistinguishedName(seen, slash)).to.equal(true);
    expect(formatSlash(seen)).to.equal(`/${derOrder.join('/')}`);
  });
});
