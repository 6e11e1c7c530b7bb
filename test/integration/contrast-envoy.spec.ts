// The Envoy bootstrap of Contrast's sidecar (dataplane/envoy/contrast.ts) judged by the real `envoy --mode validate`,
// with real mesh credentials at the three tls-config file names; the exact objects are unit-tested in
// test/contrast-envoy.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveEnvoy } from '../../src/harness/cli/doctor.ts';
import { contrastEnvoyBootstrap, renderContrastEnvoy } from '../../src/harness/dataplane/envoy/contrast.ts';
import { CertificateAuthority } from '../../src/harness/pki/index.ts';
import { planPods } from '../../src/harness/profiles/contrast/index.ts';
import { loadContrast } from '../../src/harness/profiles/contrast/resources.ts';
import { validateEnvoy } from './lib/envoy.ts';

describe('dataplane/envoy contrast: the sidecar configs accepted by the real Envoy (--mode validate)', function () {
  let envoy = '';
  let dir = '';
  const plans = planPods(loadContrast('fixtures/contrast/emojivoto'), { adminInterfacePort: 9901 });

  before(async () => {
    envoy = resolveEnvoy().bin; // no Envoy is a failure naming the fix, never a silent skip
    dir = mkdtempSync(join(tmpdir(), 'mp-contrast-envoy-'));
    const ca = await CertificateAuthority.create('contrast-mesh');
    const leaf = await ca.issue('web', { subject: { CN: 'web' }, dns: ['web', '*'] });
    writeFileSync(join(dir, 'certChain.pem'), leaf.certPem + leaf.caPem);
    writeFileSync(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'mesh-ca.pem'), ca.certPem);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of ['emoji', 'voting', 'web', 'vote-bot']) {
    it(`${name}'s sidecar validates cleanly`, () => {
      const proxy = plans.find((p) => p.deployment.name === name)!.proxy!;
      // 'error': Envoy warns that filter_chain_matcher (the blackhole guard) is a work-in-progress API
      const { status, text } = validateEnvoy(envoy, dir, name, renderContrastEnvoy(proxy, { tlsConfigDir: dir }), 'error');
      expect(status, text).to.equal(0);
      expect(text).to.match(/^configuration '.*' OK$/);
    });
  }

  it('validate is not vacuous: two egress entries of one name (which the annotation parser refuses) are rejected', () => {
    const e = (listenAddr: string) => ({ name: 'emoji', listenAddr, listenPort: 8081, remoteDomain: 'emoji-svc', remotePort: 8080 });
    const text = JSON.stringify(contrastEnvoyBootstrap({ ingress: [], ingressDisabled: false, egress: [e('127.137.0.1'), e('127.137.0.2')] }, { tlsConfigDir: dir }));
    const r = validateEnvoy(envoy, dir, 'bad', text, 'error');
    expect(r.status).to.not.equal(0);
    expect(r.text).to.match(/duplicate cluster 'emoji'/);
  });
});
