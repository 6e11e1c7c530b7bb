// The Istio data plane builders judged by real programs: the istio-iptables rules by the kernel (iptables-restore in a
// throwaway network namespace, root; `iptables -t nat -S` listed back) and the sidecar config by `envoy --mode
// validate` with an openssl-made certificate. The exact text is unit-tested in test/dataplane-istio.spec.ts.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { resolveEnvoy } from '../../src/harness/cli/doctor.ts';
import { renderSidecar } from '../../src/harness/dataplane/envoy/sidecar.ts';
import { renderIstioIptables } from '../../src/harness/dataplane/iptables/istio.ts';
import { arr, endpoint, listener, obj, plan, SA } from '../lib/istio-sidecar-plan.ts';
import { run, scratchNetns } from './lib/scratch-netns.ts';
import { validateEnvoy } from './lib/envoy.ts';

/** What the kernel reports back (`iptables -t nat -S`, iptables 1.8.9 nf_tables): canonical match order, `-m tcp`, per-chain. */
const KERNEL_RULES = [
  '-A PREROUTING -p tcp -j ISTIO_INBOUND',
  '-A OUTPUT -j ISTIO_OUTPUT',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN',
  '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
  '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
  '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
  '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
  '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
];

describe('dataplane/iptables istio: the istio-init rules applied by the kernel in a throwaway namespace', function () {
  const { ns } = scratchNetns();

  it('iptables-restore --noflush accepts the text and `iptables -t nat -S` lists the golden rules', () => {
    const applied = run('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], renderIstioIptables({}));
    expect(applied.status, applied.err).to.equal(0);
    const listed = run('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-S']);
    expect(listed.status, listed.err).to.equal(0);
    const lines = listed.out.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('-N '))).to.deep.equal([
      '-N ISTIO_INBOUND', '-N ISTIO_IN_REDIRECT', '-N ISTIO_OUTPUT', '-N ISTIO_REDIRECT',
    ]);
    expect(lines.filter((l) => l.startsWith('-A '))).to.deep.equal(KERNEL_RULES);
  });
});

describe('dataplane/envoy sidecar: accepted by the real Envoy (--mode validate)', function () {
  let envoy: string | undefined;
  let dir = '';

  before(() => {
    envoy = resolveEnvoy().bin; // no Envoy is a failure naming the fix, never a silent skip
    dir = mkdtempSync(join(tmpdir(), 'mp-sidecar-'));
    const r = run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=name', '-addext', `subjectAltName=URI:${SA}`,
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert-chain.pem'),
    ]);
    expect(r.status, r.err).to.equal(0);
    run('cp', [join(dir, 'cert-chain.pem'), join(dir, 'root-cert.pem')]);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const validate = (name: string, yaml: string) => validateEnvoy(envoy!, dir, name, yaml, 'error');

  for (const mode of ['STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
    it(`${mode} plan validates`, () => {
      const r = validate(mode, renderSidecar(plan(mode, dir)));
      expect(r.status, r.text).to.equal(0);
      expect(r.text).to.match(/OK$/);
    });
  }

  it('a plan with every client TLS mode, weighted TCP routes and no inbound ports validates', () => {
    const p = plan('PERMISSIVE', dir);
    p.inbound = [];
    p.defaultMode = 'STRICT';
    p.outbound[0]!.subsets.push(
      { name: 's', endpoints: [endpoint('10.0.0.9', false)], tls: 'SIMPLE', subjectAltNames: ['name.example.com'] },
      { name: 'm', endpoints: [endpoint('10.0.0.9', false)], tls: 'MUTUAL', subjectAltNames: [] },
    );
    p.outbound[1]!.subsets.push({ name: 'v2', endpoints: [{ ...endpoint('10.0.0.5', false), port: 6000 }], tls: 'AUTO', subjectAltNames: [SA] });
    p.outbound[1]!.routes = [{ subset: '', weight: 80 }, { subset: 'v2', weight: 20 }];
    const r = validate('all-modes', renderSidecar(p));
    expect(r.status, r.text).to.equal(0);
  });

  it('validate is not vacuous: a duplicated filter chain match is rejected', () => {
    const cfg = obj(parse(renderSidecar(plan('STRICT', dir))));
    const fc = arr(listener(cfg, 'virtualInbound').filter_chains);
    fc.push(structuredClone(fc[fc.length - 1]!));
    const r = validate('dup', JSON.stringify(cfg));
    expect(r.status).to.not.equal(0);
    expect(r.text).to.match(/same matching rules/);
  });
});
