// The Cloud Foundry Envoy configs (the Diego sidecar and its SDS files, the gorouter stand-in) judged by the real
// `envoy --mode validate` with real certificates; their exact text is unit-tested in test/cf-envoy.spec.ts.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { resolveEnvoy } from '../../src/harness/cli/doctor.ts';
import { renderDiegoSdsFiles, renderDiegoSidecar, renderSdsCertAndKey, SupportedCipherSuites, type DiegoSidecarPlan } from '../../src/harness/dataplane/envoy/diego.ts';
import { renderFrontRouter } from '../../src/harness/dataplane/envoy/front-router.ts';
import { CertificateAuthority, issueClient, issueInstanceIdentity, PkiStore } from '../../src/harness/pki/index.ts';
import { cfg, diegoPlan, G1, routerPlan, type Obj } from '../lib/diego-plans.ts';
import { validateEnvoy } from './lib/envoy.ts';

describe('cf Envoy configs accepted by the real Envoy (--mode validate)', function () {
  let envoy: string | undefined;
  let dir = '';
  let sdsDir = '';
  const paths = { ca: '', gorouterCert: '', gorouterKey: '', frontCert: '', frontKey: '' };

  before(async () => {
    envoy = resolveEnvoy().bin; // no Envoy is a failure naming the fix, never a silent skip
    dir = mkdtempSync(join(tmpdir(), 'mp-cf-envoy-'));
    sdsDir = join(dir, 'envoy_config');
    mkdirSync(sdsDir);
    const ca = await CertificateAuthority.create('iid', { cn: 'instance identity CA' });
    const id = await issueInstanceIdentity(ca, { instanceGuid: G1, appGuid: 'app-guid', spaceGuid: 'space-guid', orgGuid: 'org-guid', ip: '10.255.0.7' });
    const c2c = await ca.issue('c2c', { subject: { CN: G1 }, dns: [G1, 'dora.apps.internal'], eku: ['serverAuth', 'clientAuth'] });
    const gorouter = await issueClient(ca, { cn: 'gorouter.service.cf.internal' });
    const front = await ca.issue('front', { subject: { CN: 'dora.apps.example.com' }, dns: ['dora.apps.example.com'], eku: ['serverAuth'] });
    const store = new PkiStore(join(dir, 'pki'));
    paths.ca = store.writeCa(ca);
    const g = store.writeIdentity(gorouter);
    const f = store.writeIdentity(front);
    Object.assign(paths, { gorouterCert: g.cert, gorouterKey: g.key, frontCert: f.cert, frontKey: f.key });
    const files = renderDiegoSdsFiles({
      instanceIdentity: { cert: id.certPem + id.caPem, key: id.keyPem }, // credmanager appends the CA to the leaf
      c2c: { cert: c2c.certPem + c2c.caPem, key: c2c.keyPem },
      trustedCaCertificates: [ca.certPem],
      verifySubjectAltName: ['gorouter.service.cf.internal', 'ssh-proxy.service.cf.internal', 'tcp-router.service.cf.internal'],
      instanceIdentityCa: [ca.certPem],
    });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(sdsDir, name), text);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const validate = (name: string, yaml: string) => validateEnvoy(envoy!, dir, name, yaml);

  /** Exit 0 and nothing but the OK line: no deprecation warning, no envoy_bug, no SDS complaint. */
  function expectClean(r: { status: number | null; text: string }): void {
    expect(r.status, r.text).to.equal(0);
    expect(r.text.split('\n'), r.text).to.have.length(1);
    expect(r.text).to.match(/^configuration '.*' OK$/);
  }

  const plans: [string, Partial<DiegoSidecarPlan> & { c2cMtls?: boolean }][] = [
    ['diego-default', {}],
    ['diego-c2c-mtls', { c2cMtls: true }],
    ['diego-no-client-certs-no-h2', { requireAndVerifyClientCertificates: false, enableHttp2: false }],
    ['diego-executor-ciphers', { cipherSuites: SupportedCipherSuites }],
  ];
  for (const [name, o] of plans) {
    it(`${name} validates cleanly`, () => {
      expectClean(validate(name, renderDiegoSidecar(diegoPlan({ ...o, sdsDir }))));
    });
  }

  it('validate is not vacuous for the sidecar: a missing SDS file is fatal', () => {
    const yaml = renderDiegoSidecar(diegoPlan({ sdsDir: join(dir, 'no-such-dir') }));
    const r = validate('diego-missing-sds', yaml);
    expect(r.status).to.not.equal(0);
    expect(r.text).to.match(/sds-id-cert-and-key\.yaml' does not exist/);
  });

  /**
   * Envoy's validate mode never initialises listener TLS, so the SDS files' CONTENT is judged through clusters,
   * whose SDS subscriptions do start: one cluster per cert/key file and per validation-context file.
   */
  function sdsProbe(files: Record<string, string>): string {
    const secretSource = (file: string, name: string): Obj => ({
      name,
      sds_config: { path_config_source: { path: join(sdsDir, file), watched_directory: { path: sdsDir } } },
    });
    const cl = Object.entries(files).map(([file, secret], i) => {
      const isValidation = secret.endsWith('validation-context');
      return {
        name: `probe-${i}`,
        type: 'STATIC',
        connect_timeout: '1s',
        load_assignment: { cluster_name: `probe-${i}`, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] },
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            common_tls_context: isValidation
              ? { validation_context_sds_secret_config: secretSource(file, secret) }
              : { tls_certificate_sds_secret_configs: [secretSource(file, secret)] },
          },
        },
      };
    });
    return stringify({ node: { id: 'sds-probe', cluster: 'sds-probe' }, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, static_resources: { clusters: cl } });
  }

  const SECRETS = {
    'sds-id-cert-and-key.yaml': 'id-cert-and-key',
    'sds-c2c-cert-and-key.yaml': 'c2c-cert-and-key',
    'sds-id-validation-context.yaml': 'id-validation-context',
    'sds-c2c-mtls-validation-context.yaml': 'c2c-mtls-validation-context',
  };

  it('every SDS file loads: certificates, keys, CAs and typed SAN matchers are accepted', () => {
    expectClean(validate('sds-probe', sdsProbe(SECRETS)));
  });

  it('the SDS probe is not vacuous: a corrupt certificate or a wrong secret name is rejected', () => {
    writeFileSync(join(sdsDir, 'sds-corrupt.yaml'), renderSdsCertAndKey('corrupt', { cert: '-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n' }));
    const r = validate('sds-probe-corrupt', sdsProbe({ 'sds-corrupt.yaml': 'corrupt', 'sds-id-cert-and-key.yaml': 'c2c-cert-and-key' }));
    expect(r.text).to.match(/Filesystem config update rejected: Failed to load certificate chain/);
    expect(r.text).to.match(/Filesystem config update rejected: Unexpected SDS secret \(expecting c2c-cert-and-key\): id-cert-and-key/);
  });

  it('why the runtime layer is omitted: 1.36.4 flags the executor\'s new_tcp_connection_pool as a removed guard', () => {
    const c = cfg(renderDiegoSidecar(diegoPlan({ sdsDir })));
    c.layered_runtime = { layers: [{ name: 'static-layer', static_layer: { envoy: { reloadable_features: { new_tcp_connection_pool: false } } } }] };
    const r = validate('diego-runtime', JSON.stringify(c));
    expect(r.text).to.match(/Using a removed guard envoy\.reloadable_features\.new_tcp_connection_pool/);
  });

  it('front router (client cert to backends, frontend TLS requesting client certs, sanitize_set) validates cleanly', () => {
    const backendTls = { ca: paths.ca, clientCert: { cert: paths.gorouterCert, key: paths.gorouterKey } };
    expectClean(validate('front-router', renderFrontRouter(routerPlan({ backendTls }))));
    expectClean(validate('front-router-tls', renderFrontRouter(routerPlan({
      backendTls: { ca: paths.ca }, forwardedClientCert: 'sanitize_set', maxAttempts: 1,
      tls: { cert: paths.frontCert, key: paths.frontKey, clientCa: paths.ca },
    }))));
  });

  it('validate is not vacuous for the front router: a backend CA that is not a certificate is rejected', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const r = validate('front-router-bad-ca', renderFrontRouter(routerPlan({ backendTls: { ca: junk } })));
    expect(r.status).to.not.equal(0);
    expect(r.text).to.match(/Failed to load trusted CA certificates from .*junk\.pem/);
  });
});
