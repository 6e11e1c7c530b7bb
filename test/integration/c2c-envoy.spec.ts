// The draft RFC's sidecar (62443 listener, egress proxy) judged by the real `envoy --mode validate`, with real
// certificates in its SDS files; the exact objects are unit-tested in test/c2c-envoy.spec.ts.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { resolveEnvoy } from '../../src/harness/cli/doctor.ts';
import { renderDiegoSdsFiles, renderDiegoSidecar } from '../../src/harness/dataplane/envoy/diego.ts';
import { CertificateAuthority, issueInstanceIdentity } from '../../src/harness/pki/index.ts';
import { arr, GUID, listeners, obj, rfcPlan as plan } from '../lib/diego-plans.ts';
import { validateEnvoy } from './lib/envoy.ts';

describe('dataplane/envoy diego: the RFC sidecar accepted by the real Envoy (--mode validate)', function () {
  let envoy: string | undefined;
  let dir = '';

  before(async () => {
    envoy = resolveEnvoy().bin; // no Envoy is a failure naming the fix, never a silent skip
    dir = mkdtempSync(join(tmpdir(), 'mp-c2c-envoy-'));
    const sdsDir = join(dir, 'sds');
    mkdirSync(sdsDir);
    const ca = await CertificateAuthority.create('iid');
    const id = await issueInstanceIdentity(ca, { instanceGuid: GUID, appGuid: 'app', spaceGuid: 'space', orgGuid: 'org', ip: '10.255.0.7' });
    const files = renderDiegoSdsFiles({
      instanceIdentity: { cert: id.certPem + id.caPem, key: id.keyPem },
      c2c: { cert: id.certPem + id.caPem, key: id.keyPem },
      trustedCaCertificates: [ca.certPem],
      verifySubjectAltName: [],
      instanceIdentityCa: [ca.certPem],
    });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(sdsDir, name), text);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the sidecar with the 62443 listener and the egress proxy validates cleanly', () => {
    const { status, text } = validateEnvoy(envoy!, dir, 'envoy', renderDiegoSidecar(plan({ c2cMtls: true, egress: true, sdsDir: join(dir, 'sds') })));
    expect(status, text).to.equal(0);
    expect(text.split('\n'), text).to.have.length(1);
    expect(text).to.match(/^configuration '.*' OK$/);
  });

  it('validate is not vacuous: the in-scope virtual host also claiming `*` is rejected', () => {
    const c = obj(parse(renderDiegoSidecar(plan({ c2cMtls: true, egress: true, sdsDir: join(dir, 'sds') }))));
    const egress = listeners(c).find((l) => l.name === 'egress-proxy')!;
    const hcm = obj(arr(arr(egress.filter_chains)[0]!.filters)[0]!.typed_config);
    arr(obj(hcm.route_config).virtual_hosts)[0]!.domains = ['*'];
    const r = validateEnvoy(envoy!, dir, 'bad', JSON.stringify(c));
    expect(r.status).to.not.equal(0);
    expect(r.text).to.match(/Only a single wildcard domain is permitted/);
  });
});
