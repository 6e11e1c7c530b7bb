// Unit tests of src/harness/pki. Every claim is checked with an independent parser (node:crypto X509Certificate,
// openssl, HAProxy's own config check, a real node:tls handshake), never with @peculiar/x509 or the code under test.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import {
  CertificateAuthority,
  expired,
  issueClient,
  issueInstanceIdentity,
  issueServer,
  issueSpiffe,
  notYetValid,
  PkiStore,
  spiffeId,
  type IssuedCert,
} from '../src/harness/pki/index.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function hasBinary(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

interface HandshakeResult {
  ok: boolean;
  error?: string;
  serverName?: string;
  peerSubject?: string;
  clientPeerSubject?: string;
}

/** One TLS handshake on 127.0.0.1: the server answers with its cert; the client verifies it (and may present one). */
async function handshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<HandshakeResult> {
  let clientPeerSubject: string | undefined;
  const srv = tls.createServer(server, (sock) => {
    const peer = sock.getPeerX509Certificate();
    clientPeerSubject = peer?.subject;
    sock.end('hello\n');
  });
  srv.on('tlsClientError', () => undefined); // the failing cases abort on the client side
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise<HandshakeResult>((res) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ...client });
      sock.on('secureConnect', () => {
        const peerSubject = sock.getPeerX509Certificate()?.subject;
        sock.once('data', () => {
          res({ ok: true, peerSubject, clientPeerSubject });
          sock.end();
        });
      });
      sock.on('error', (err: NodeJS.ErrnoException) => res({ ok: false, error: err.code ?? err.message }));
    });
  } finally {
    await new Promise<void>((res) => srv.close(() => res()));
  }
}

describe('pki', function () {
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

  describe('CertificateAuthority', function () {
    it('is a self-signed CA certificate with a PKCS#8 P-256 key', function () {
      const x = new X509Certificate(ca.certPem);
      expect(x.ca).to.equal(true);
      expect(x.subject).to.equal('O=meshproof\nCN=meshproof mesh CA');
      expect(x.issuer).to.equal(x.subject);
      expect(x.verify(x.publicKey)).to.equal(true);
      expect(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).to.equal(true);
      const key = createPrivateKey(ca.keyPem);
      expect(key.asymmetricKeyType).to.equal('ec');
      expect(key.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
      expect(x.checkPrivateKey(key)).to.equal(true);
      expect(new X509Certificate(other.certPem).subject).to.equal('O=meshproof\nCN=Other Root');
    });

    it('has CA:TRUE critical, keyCertSign|cRLSign critical and a subjectKeyIdentifier (openssl)', function () {
      const path = join(dir, 'ca-text.crt');
      writeFileSync(path, ca.certPem);
      const { status, out } = run('openssl', ['x509', '-noout', '-text', '-in', path]);
      expect(status).to.equal(0);
      expect(out).to.match(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
      expect(out).to.match(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
      expect(out).to.match(/X509v3 Subject Key Identifier: ?\n\s+[0-9A-F:]{59}\n/);
      expect(out).to.contain('Signature Algorithm: ecdsa-with-SHA256');
      expect(out).to.contain('NIST CURVE: P-256');
    });

    it('rejects names that are not safe file names', async function () {
      let err: unknown;
      try {
        await CertificateAuthority.create('../evil');
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.contain('must match');
    });
  });

  describe('spiffeId / issueSpiffe', function () {
    it('formats the Istio SPIFFE identity', function () {
      expect(spiffeId('cluster.local', 'default', 'sleep')).to.equal('spiffe://cluster.local/ns/default/sa/sleep');
      expect(spiffeId('td.example', 'foo', 'bar')).to.equal('spiffe://td.example/ns/foo/sa/bar');
    });

    it('puts the SPIFFE ID as the only URI SAN, with an empty subject', async function () {
      const c = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
      const x = new X509Certificate(c.certPem);
      expect(x.subjectAltName).to.equal('URI:spiffe://cluster.local/ns/default/sa/sleep');
      expect(x.subject, 'node reports an empty subject as undefined').to.be.oneOf([undefined, '']);
      expect(x.ca).to.equal(false);
      expect(x.keyUsage).to.have.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
      expect(x.checkIssued(new X509Certificate(ca.certPem))).to.equal(true);
      expect(x.checkPrivateKey(createPrivateKey(c.keyPem))).to.equal(true);
    });

    it('honours trustDomain and extra DNS SANs', async function () {
      const c = await issueSpiffe(ca, { ns: 'sentences', sa: 'name-v1', trustDomain: 'mesh.test', dns: ['name.sentences.svc'] });
      expect(new X509Certificate(c.certPem).subjectAltName).to.equal('DNS:name.sentences.svc, URI:spiffe://mesh.test/ns/sentences/sa/name-v1');
    });

    it('is well-formed per openssl: critical URI SAN, CA:FALSE, AKI = CA SKI, and verifies against its CA', async function () {
      const c = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
      const leaf = join(dir, 'spiffe-text.crt');
      const caFile = join(dir, 'spiffe-text-ca.crt');
      writeFileSync(leaf, c.certPem);
      writeFileSync(caFile, ca.certPem);
      const text = run('openssl', ['x509', '-noout', '-text', '-in', leaf]).out;
      expect(text).to.match(/X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep\n/);
      expect(text).to.match(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
      expect(text).to.match(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
      expect(text).to.match(/X509v3 Extended Key Usage: ?\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
      const caText = run('openssl', ['x509', '-noout', '-text', '-in', caFile]).out;
      const ski = /X509v3 Subject Key Identifier: ?\n\s+([0-9A-F:]+)\n/.exec(caText)?.[1];
      const aki = /X509v3 Authority Key Identifier: ?\n\s+(?:keyid:)?([0-9A-F:]+)\n/.exec(text)?.[1];
      expect(ski).to.be.a('string');
      expect(aki).to.equal(ski);
      expect(run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, leaf])).to.deep.equal({ status: 0, out: `${leaf}: OK\n` });
      expect(run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, leaf]).status).to.equal(0);
    });
  });

  describe('issueInstanceIdentity (Cloud Foundry Diego)', function () {
    const guid = '5b3c0f4e-8a1d-4c52-9e7b-2f6a1d0c9e84';
    let c: IssuedCert;
    let issuedAt: number;

    before(async function () {
      issuedAt = Date.now();
      c = await issueInstanceIdentity(ca, {
        instanceGuid: guid,
        appGuid: 'a7e1c2d3-0000-4000-8000-000000000001',
        spaceGuid: 's9f8e7d6-0000-4000-8000-000000000002',
        orgGuid: 'o1a2b3c4-0000-4000-8000-000000000003',
        ip: '10.255.0.7',
      });
    });

    it('has CN=<instance guid> and the three OUs in order organization, space, app', function () {
      const x = new X509Certificate(c.certPem);
      expect(x.subject).to.equal(
        'OU=organization:o1a2b3c4-0000-4000-8000-000000000003\n' +
          'OU=space:s9f8e7d6-0000-4000-8000-000000000002\n' +
          'OU=app:a7e1c2d3-0000-4000-8000-000000000001\n' +
          'CN=5b3c0f4e-8a1d-4c52-9e7b-2f6a1d0c9e84',
      );
      expect(c.name).to.equal(guid);
    });

    it('has DNS SAN = guid, IP SAN = container ip, EKU clientAuth + serverAuth', function () {
      const x = new X509Certificate(c.certPem);
      expect(x.subjectAltName).to.equal('DNS:5b3c0f4e-8a1d-4c52-9e7b-2f6a1d0c9e84, IP Address:10.255.0.7');
      expect(x.keyUsage).to.have.members(['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']);
      expect(x.checkHost(guid)).to.equal(guid);
      expect(x.checkIP('10.255.0.7')).to.equal('10.255.0.7');
    });

    it('is valid for 24 h (±5 min) starting now', function () {
      const x = new X509Certificate(c.certPem);
      const from = new Date(x.validFrom).getTime();
      const to = new Date(x.validTo).getTime();
      expect(to - from).to.be.within(24 * HOUR - 5 * MINUTE, 24 * HOUR + 5 * MINUTE);
      expect(from).to.be.within(issuedAt - 5 * MINUTE, issuedAt);
      expect(c.notBefore.getTime()).to.equal(from);
      expect(c.notAfter.getTime()).to.equal(to);
    });

    it('reports der and sha256 as Envoy would hash the leaf', function () {
      const x = new X509Certificate(c.certPem);
      expect(c.der.equals(x.raw)).to.equal(true);
      expect(c.sha256).to.equal(createHash('sha256').update(x.raw).digest('hex'));
      expect(c.sha256).to.equal(x.fingerprint256.replace(/:/g, '').toLowerCase());
      expect(c.sha256).to.match(/^[0-9a-f]{64}$/);
    });

    it('has a random positive 128-bit serial', async function () {
      const a = new X509Certificate(c.certPem).serialNumber;
      const b = new X509Certificate((await issueClient(ca, { cn: 'serial.example.com' })).certPem).serialNumber;
      expect(a).to.match(/^[4-7][0-9A-F]{31}$/);
      expect(b).to.match(/^[4-7][0-9A-F]{31}$/);
      expect(a).to.not.equal(b);
    });
  });

  describe('chain verification', function () {
    it('verifies against the issuing CA and not against another CA (node:crypto)', async function () {
      const c = await issueServer(ca, { cn: 'sentences.example.com', o: 'ACMEorg' });
      const x = new X509Certificate(c.certPem);
      const mine = new X509Certificate(ca.certPem);
      const theirs = new X509Certificate(other.certPem);
      expect(x.checkIssued(mine)).to.equal(true);
      expect(x.verify(mine.publicKey)).to.equal(true);
      expect(x.verify(theirs.publicKey)).to.equal(false);
      expect(new X509Certificate(c.caPem).fingerprint256).to.equal(mine.fingerprint256);
    });

    it('verifies against the issuing CA and not against another CA (openssl verify)', async function () {
      const c = await issueInstanceIdentity(ca, { instanceGuid: 'chain-guid', appGuid: 'a', spaceGuid: 's', orgGuid: 'o', ip: '10.0.0.1' });
      const leaf = join(dir, 'chain-leaf.crt');
      const right = join(dir, 'chain-right.crt');
      const wrong = join(dir, 'chain-wrong.crt');
      writeFileSync(leaf, c.certPem);
      writeFileSync(right, ca.certPem);
      writeFileSync(wrong, other.certPem);
      expect(run('openssl', ['verify', '-x509_strict', '-CAfile', right, leaf])).to.deep.equal({ status: 0, out: `${leaf}: OK\n` });
      const bad = run('openssl', ['verify', '-x509_strict', '-CAfile', wrong, leaf]);
      expect(bad.status).to.not.equal(0);
      expect(bad.out).to.contain('unable to get local issuer certificate');
    });
  });

  describe('broken variants', function () {
    it('expired(): validTo in the past, and openssl says so', async function () {
      const c = await ca.issue('expired-leaf', { subject: { CN: 'expired.example.com' }, dns: ['expired.example.com'], ...expired() });
      const x = new X509Certificate(c.certPem);
      expect(new Date(x.validTo).getTime()).to.be.below(Date.now());
      const leaf = join(dir, 'expired.crt');
      const caFile = join(dir, 'expired-ca.crt');
      writeFileSync(leaf, c.certPem);
      writeFileSync(caFile, ca.certPem);
      const r = run('openssl', ['verify', '-CAfile', caFile, leaf]);
      expect(r.status).to.not.equal(0);
      expect(r.out).to.contain('certificate has expired');
    });

    it('notYetValid(): validFrom in the future', async function () {
      const c = await issueSpiffe(ca, { ns: 'default', sa: 'future', ...notYetValid() });
      expect(new Date(new X509Certificate(c.certPem).validFrom).getTime()).to.be.above(Date.now());
    });

    it('wrong SAN: a DNS SAN that does not match the name asked for', async function () {
      const c = await ca.issue('wrong-san', { subject: { CN: 'sentences.example.com' }, dns: ['wrong.example.com'] });
      const x = new X509Certificate(c.certPem);
      expect(x.subjectAltName).to.equal('DNS:wrong.example.com');
      expect(x.checkHost('sentences.example.com')).to.equal(undefined);
    });
  });

  describe('PkiStore', function () {
    it('writes keys 0600 and certs 0644, chowns keys to the owner, and removeKeys() deletes only keys', async function () {
      const storeDir = join(dir, 'store', 'run1');
      const store = new PkiStore(storeDir);
      expect(statSync(storeDir).mode & 0o777).to.equal(0o711);
      const caPath = store.writeCa(ca);
      expect(caPath).to.equal(join(storeDir, 'mesh-ca.crt'));
      const c = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
      const isRoot = process.getuid?.() === 0;
      const owner = isRoot ? { uid: 65534, gid: 65534 } : undefined;
      const p = store.writeIdentity(c, owner);
      for (const f of [caPath, p.cert, p.ca]) expect(statSync(f).mode & 0o777, f).to.equal(0o644);
      for (const f of [p.key, p.bundle]) {
        const st = statSync(f);
        expect(st.mode & 0o777, f).to.equal(0o600);
        if (owner) expect([st.uid, st.gid], f).to.deep.equal([65534, 65534]);
      }
      expect(readFileSync(p.cert, 'utf8')).to.equal(c.certPem);
      expect(readFileSync(p.key, 'utf8')).to.equal(c.keyPem);
      expect(readFileSync(p.ca, 'utf8')).to.equal(ca.certPem);
      expect(readFileSync(p.bundle, 'utf8')).to.equal(c.certPem + c.keyPem);

      // Rewriting (rotation) replaces the files and keeps the modes.
      const c2 = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
      store.writeIdentity(c2, owner);
      expect(statSync(p.key).mode & 0o777).to.equal(0o600);
      expect(readFileSync(p.key, 'utf8')).to.equal(c2.keyPem);

      store.removeKeys();
      expect(existsSync(p.key)).to.equal(false);
      expect(existsSync(p.bundle)).to.equal(false);
      expect(existsSync(p.cert)).to.equal(true);
      expect(existsSync(p.ca)).to.equal(true);
      expect(existsSync(caPath)).to.equal(true);
      store.removeKeys(); // idempotent
    });

    it('gives keys exactly 0600 whatever the umask', async function () {
      const store = new PkiStore(join(dir, 'store', 'umask'));
      const c = await issueClient(ca, { cn: 'umask.example.com' });
      for (const mask of [0o000, 0o277]) {
        const prev = process.umask(mask);
        try {
          const p = store.writeIdentity(c);
          expect(statSync(p.key).mode & 0o777, `umask ${mask.toString(8)}`).to.equal(0o600);
          expect(statSync(p.cert).mode & 0o777, `umask ${mask.toString(8)}`).to.equal(0o644);
        } finally {
          process.umask(prev);
        }
      }
    });

    it('never leaves a temp file behind and refuses a CA/identity file-name collision', async function () {
      const store = new PkiStore(join(dir, 'store', 'run2'));
      store.writeCa(ca); // mesh-ca.crt
      const c = await ca.issue('mesh-ca', { subject: { CN: 'x' } });
      expect(() => store.writeIdentity(c)).to.throw(/would overwrite/);
      const ls = run('ls', ['-A', join(dir, 'store', 'run2')]).out.split('\n').filter(Boolean);
      expect(ls).to.deep.equal(['mesh-ca.crt']);
    });

    it('writes a bundle HAProxy accepts as `crt` (haproxy -c)', async function () {
      if (!hasBinary('haproxy')) this.skip();
      const store = new PkiStore(join(dir, 'store', 'haproxy'));
      const p = store.writeIdentity(await issueServer(ca, { cn: 'sentences.example.com', o: 'ACMEorg' }));
      const cfg = join(dir, 'store', 'haproxy.cfg');
      writeFileSync(cfg, [
        'defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 1s', '  timeout server 1s',
        'frontend fe', `  bind 127.0.0.1:18443 ssl crt ${p.bundle} ca-file ${p.ca} verify required`, '  default_backend be',
        'backend be', `  server s1 127.0.0.1:1 ssl verify required ca-file ${p.ca} crt ${p.bundle} verifyhost sentences.example.com`, '',
      ].join('\n'));
      const r = run('haproxy', ['-c', '-f', cfg]); // -c parses and loads the PEMs; it binds nothing
      expect(r.status, r.out).to.equal(0);
      expect(r.out).to.contain('Configuration file is valid');
    });
  });

  describe('TLS handshake on 127.0.0.1 (node:tls)', function () {
    let server: IssuedCert;
    let client: IssuedCert;

    before(async function () {
      server = await issueServer(ca, { cn: 'sentences.example.com', o: 'ACMEorg' });
      client = await issueClient(ca, { cn: 'client.example.com', o: 'ACMEorg' });
    });

    it('succeeds when the client trusts the issuing CA and asks for sentences.example.com', async function () {
      const r = await handshake(
        { cert: server.certPem, key: server.keyPem },
        { ca: ca.certPem, servername: 'sentences.example.com', rejectUnauthorized: true },
      );
      expect(r).to.include({ ok: true, peerSubject: 'O=ACMEorg\nCN=sentences.example.com' });
    });

    it('fails when the client trusts another CA', async function () {
      const r = await handshake(
        { cert: server.certPem, key: server.keyPem },
        { ca: other.certPem, servername: 'sentences.example.com', rejectUnauthorized: true },
      );
      expect(r.ok).to.equal(false);
      expect(r.error).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('fails when the server name is not in the SAN', async function () {
      const r = await handshake(
        { cert: server.certPem, key: server.keyPem },
        { ca: ca.certPem, servername: 'other.example.com', rejectUnauthorized: true },
      );
      expect(r).to.deep.equal({ ok: false, error: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });

    it('fails when the server certificate has expired', async function () {
      const old = await issueServer(ca, { cn: 'sentences.example.com', ...expired() });
      const r = await handshake(
        { cert: old.certPem, key: old.keyPem },
        { ca: ca.certPem, servername: 'sentences.example.com', rejectUnauthorized: true },
      );
      expect(r).to.deep.equal({ ok: false, error: 'CERT_HAS_EXPIRED' });
    });

    it('mutual TLS: the server requiring a client cert sees client.example.com', async function () {
      const r = await handshake(
        { cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
        { ca: ca.certPem, servername: 'sentences.example.com', cert: client.certPem, key: client.keyPem },
      );
      expect(r).to.include({ ok: true, clientPeerSubject: 'O=ACMEorg\nCN=client.example.com' });
    });
  });
});
