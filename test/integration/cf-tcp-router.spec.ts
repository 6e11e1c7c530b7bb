// The tcp-router config meshproof renders (dataplane/haproxy/tcp-router.ts) judged by Debian's real `haproxy -c`,
// with a real CA and client bundle; the exact text is unit-tested in test/cf-tcp-router.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHaproxyConfig, haproxyBaseConfig, validateBackendTls, type BackendTlsConfig } from '../../src/harness/dataplane/haproxy/tcp-router.ts';
import { CertificateAuthority, PkiStore } from '../../src/harness/pki/index.ts';
import { goldenRoutes, TLS_OFF } from '../lib/tcp-routes.ts';
import { run } from './lib/run.ts';

describe('dataplane/haproxy tcp-router: the real haproxy -c accepts the rendered config', () => {
  let dir: string;
  let store: PkiStore;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-tcp-router-'));
    store = new PkiStore(join(dir, 'pki'));
  });

  after(() => {
    store?.removeKeys();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function check(config: string): { status: number | null; out: string } {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, config);
    const r = run('haproxy', ['-c', '-f', file]); // parses and loads ca-file/crt; binds nothing (no haproxy: ENOENT, a failure)
    return { status: r.status, out: `${r.out}${r.err}` };
  }

  it('base + marshalled table with real CA and client bundle: exit 0', async () => {
    const ca = await CertificateAuthority.create('diego-instance-identity');
    const client = await ca.issue('tcp-router-backend-tls', { subject: { CN: 'tcp-router_backend_tls' }, dns: ['tcp-router.service.cf.internal'], eku: ['clientAuth'] });
    const caFile = store.writeCa(ca);
    const { bundle } = store.writeIdentity(client);
    const cfg: BackendTlsConfig = { enabled: true, caCertPath: caFile, clientCertAndKeyPath: bundle };
    validateBackendTls(cfg, { ca: readFileSync(caFile, 'utf8'), clientCertAndKey: readFileSync(bundle, 'utf8') });

    const { text } = buildHaproxyConfig(goldenRoutes(), cfg, { caFile, clientPemFile: bundle });
    expect(text).to.contain(`ssl verify required ca-file ${caFile} crt ${bundle} verifyhost aaaa-1111`);
    const base = haproxyBaseConfig({ statsSocket: join(dir, 'haproxy.sock'), pidFile: join(dir, 'haproxy.pid'), requestTimeoutSeconds: 300, healthPort: 8080 });
    const r = check(base + text);
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.contain('Configuration file is valid');
  });

  it('with backend_tls disabled (a backend left with no servers): exit 0', () => {
    const { text } = buildHaproxyConfig(goldenRoutes(), TLS_OFF, { caFile: join(dir, 'unused-ca.crt') });
    expect(text).to.contain('\nbackend backend_1024\n  mode tcp\n\nfrontend frontend_1025\n');
    const r = check(haproxyBaseConfig({ statsSocket: join(dir, 'haproxy.sock') }) + text);
    expect(r.status, r.out).to.equal(0);
  });

  it('the judge is real: a missing ca-file fails the check', () => {
    const { text } = buildHaproxyConfig(goldenRoutes(), { enabled: true, caCertPath: '/nonexistent/ca.crt' }, { caFile: join(dir, 'no-such-ca.crt') });
    const r = check(haproxyBaseConfig({ statsSocket: join(dir, 'haproxy.sock') }) + text);
    expect(r.status, r.out).to.not.equal(0);
    expect(r.out).to.contain(`Couldn't open the ca-file '${join(dir, 'no-such-ca.crt')}'`);
  });
});
