// Unit tests of src/harness/pki. Every claim is checked with an independent parser (node:crypto X509Certificate, a
// real node:tls handshake), never with @peculiar/x509 or the code under test; openssl's and HAProxy's own reading of
// the same certificates is test/integration/pki.spec.ts.
import { expect } from 'chai';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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
  PodPkiStore,
  spiffeId,
  type IssuedCert,
} from '../src/harness/pki/index.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;

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

  });

  describe('broken variants', function () {
    it('expired(): validTo in the past', async function () {
      const c = await ca.issue('expired-leaf', { subject: { CN: 'expired.example.com' }, dns: ['expired.example.com'], ...expired() });
      expect(new Date(new X509Certificate(c.certPem).validTo).getTime()).to.be.below(Date.now());
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
      expect(readdirSync(join(dir, 'store', 'run2'))).to.deep.equal(['mesh-ca.crt']);
    });
  });

  describe('PodPkiStore', function () {
    type Write = { path: string; content: string; opts: { mode: number; uid?: number; gid?: number } };
    const recorder = (): { writes: Write[]; store: PodPkiStore } => {
      const writes: Write[] = [];
      const store = new PodPkiStore('/state/pki', async (path, content, opts) => {
        writes.push({ path, content, opts });
      });
      return { writes, store };
    };

    it("hands every file to its write function with PkiStore's names and modes (keys 0600, owned by the reader) and touches no host file", async function () {
      const { writes, store } = recorder();
      expect(existsSync('/state/pki')).to.equal(false);
      expect(await store.writeCa(ca)).to.equal('/state/pki/mesh-ca.crt');
      const c = await issueSpiffe(ca, { ns: 'default', sa: 'sleep' });
      const p = await store.writeIdentity({ ...c, name: 'default.sleep' }, { uid: 1337, gid: 1337 });
      expect(p).to.deep.equal({ cert: '/state/pki/default.sleep.crt', key: '/state/pki/default.sleep.key', ca: '/state/pki/default.sleep.ca.crt', bundle: '/state/pki/default.sleep.pem' });
      expect(await store.writeSecret('token', 't0k3n')).to.equal('/state/pki/token');
      expect(await store.writePublicKey('sa.pub', 'PUB')).to.equal('/state/pki/sa.pub');
      expect(writes).to.deep.equal([
        { path: '/state/pki/mesh-ca.crt', content: ca.certPem, opts: { mode: 0o644 } },
        { path: '/state/pki/default.sleep.crt', content: c.certPem, opts: { mode: 0o644 } },
        { path: '/state/pki/default.sleep.ca.crt', content: ca.certPem, opts: { mode: 0o644 } },
        { path: '/state/pki/default.sleep.key', content: c.keyPem, opts: { mode: 0o600, uid: 1337, gid: 1337 } },
        { path: '/state/pki/default.sleep.pem', content: c.certPem + c.keyPem, opts: { mode: 0o600, uid: 1337, gid: 1337 } },
        { path: '/state/pki/token', content: 't0k3n', opts: { mode: 0o600 } },
        { path: '/state/pki/sa.pub', content: 'PUB', opts: { mode: 0o644 } },
      ]);
      expect(existsSync('/state/pki')).to.equal(false);
    });

    it('refuses a CA/identity file-name collision before writing anything of it', async function () {
      const { writes, store } = recorder();
      await store.writeCa(ca); // mesh-ca.crt
      const c = await ca.issue('mesh-ca', { subject: { CN: 'x' } });
      let refused: unknown;
      await store.writeIdentity(c).catch((e: unknown) => (refused = e));
      expect(String(refused)).to.match(/identity mesh-ca would overwrite \/state\/pki\/mesh-ca\.crt, already written for CA mesh; choose another name$/);
      expect(writes.map((w) => w.path)).to.deep.equal(['/state/pki/mesh-ca.crt']);
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
