// The certificates src/harness/pki issues, read by programs that are not node: openssl (x509 -text, verify) and
// HAProxy's own config check loading them as ca-file and crt. The node:crypto and node:tls checks are the unit
// tests in test/pki.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, expired, issueInstanceIdentity, issueServer, issueSpiffe, PkiStore } from '../../src/harness/pki/index.ts';
import { run } from './lib/run.ts';

/** openssl or haproxy, with everything it printed (stdout then stderr) as one text. */
const tool = (cmd: string) => (args: string[]): { status: number | null; out: string } => {
  const r = run(cmd, args);
  return { status: r.status, out: `${r.out}${r.err}` };
};
const openssl = tool('openssl');
const haproxy = tool('haproxy');

describe('pki read by openssl and HAProxy', function () {
  let ca: CertificateAuthority;
  let other: CertificateAuthority;
  let dir: string;

  before(async function () {
    ca = await CertificateAuthority.create('mesh');
    other = await CertificateAuthority.create('other', { cn: 'Other Root' });
    dir = mkdtempSync(join(tmpdir(), 'meshproof-pki-'));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('has CA:TRUE critical, keyCertSign|cRLSign critical and a subjectKeyIdentifier (openssl)', function () {
    const path = join(dir, 'ca-text.crt');
    writeFileSync(path, ca.certPem);
    const { status, out } = openssl(['x509', '-noout', '-text', '-in', path]);
    expect(status).to.equal(0);
    expect(out).to.match(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(out).to.match(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(out).to.match(/X509v3 Subject Key Identifier: ?\n\s+[0-9A-F:]{59}\n/);
    expect(out).to.contain('Signature Algorithm: ecdsa-with-SHA256');
    expect(out).to.contain('NIST CURVE: P-256');
  });

  it('is well-formed per openssl: critical URI SAN, CA:FALSE, AKI = CA SKI, and verifies against its CA', async function () {
    const c = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
    const leaf = join(dir, 'spiffe-text.crt');
    const caFile = join(dir, 'spiffe-text-ca.crt');
    writeFileSync(leaf, c.certPem);
    writeFileSync(caFile, ca.certPem);
    const text = openssl(['x509', '-noout', '-text', '-in', leaf]).out;
    expect(text).to.match(/X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep\n/);
    expect(text).to.match(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(text).to.match(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(text).to.match(/X509v3 Extended Key Usage: ?\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    const caText = openssl(['x509', '-noout', '-text', '-in', caFile]).out;
    const ski = /X509v3 Subject Key Identifier: ?\n\s+([0-9A-F:]+)\n/.exec(caText)?.[1];
    const aki = /X509v3 Authority Key Identifier: ?\n\s+(?:keyid:)?([0-9A-F:]+)\n/.exec(text)?.[1];
    expect(ski).to.be.a('string');
    expect(aki).to.equal(ski);
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, leaf])).to.deep.equal({ status: 0, out: `${leaf}: OK\n` });
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, leaf]).status).to.equal(0);
  });

  it('verifies against the issuing CA and not against another CA (openssl verify)', async function () {
    const c = await issueInstanceIdentity(ca, { instanceGuid: 'chain-guid', appGuid: 'a', spaceGuid: 's', orgGuid: 'o', ip: '10.0.0.1' });
    const leaf = join(dir, 'chain-leaf.crt');
    const right = join(dir, 'chain-right.crt');
    const wrong = join(dir, 'chain-wrong.crt');
    writeFileSync(leaf, c.certPem);
    writeFileSync(right, ca.certPem);
    writeFileSync(wrong, other.certPem);
    expect(openssl(['verify', '-x509_strict', '-CAfile', right, leaf])).to.deep.equal({ status: 0, out: `${leaf}: OK\n` });
    const bad = openssl(['verify', '-x509_strict', '-CAfile', wrong, leaf]);
    expect(bad.status).to.not.equal(0);
    expect(bad.out).to.contain('unable to get local issuer certificate');
  });

  it('expired(): openssl says the certificate has expired', async function () {
    const c = await ca.issue('expired-leaf', { subject: { CN: 'expired.example.com' }, dns: ['expired.example.com'], ...expired() });
    const leaf = join(dir, 'expired.crt');
    const caFile = join(dir, 'expired-ca.crt');
    writeFileSync(leaf, c.certPem);
    writeFileSync(caFile, ca.certPem);
    const r = openssl(['verify', '-CAfile', caFile, leaf]);
    expect(r.status).to.not.equal(0);
    expect(r.out).to.contain('certificate has expired');
  });

  it('PkiStore writes a bundle HAProxy accepts as `crt` (haproxy -c)', async function () {
    const store = new PkiStore(join(dir, 'store', 'haproxy'));
    const p = store.writeIdentity(await issueServer(ca, { cn: 'sentences.example.com', o: 'ACMEorg' }));
    const cfg = join(dir, 'store', 'haproxy.cfg');
    writeFileSync(cfg, [
      'defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 1s', '  timeout server 1s',
      'frontend fe', `  bind 127.0.0.1:18443 ssl crt ${p.bundle} ca-file ${p.ca} verify required`, '  default_backend be',
      'backend be', `  server s1 127.0.0.1:1 ssl verify required ca-file ${p.ca} crt ${p.bundle} verifyhost sentences.example.com`, '',
    ].join('\n'));
    const r = haproxy(['-c', '-f', cfg]); // -c parses and loads the PEMs; it binds nothing
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.contain('Configuration file is valid');
  });
});
