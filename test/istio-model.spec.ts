// The Istio profile's model: loading the YAML users apply, PeerAuthentication inheritance,
// injection, sidecar plans, and the oracle checked against hand-written truth tables
// (fixtures/istio/truth, written from Istio's docs and reachability tests, not from the oracle).

import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expectIstio } from '../src/harness/profiles/istio/oracle.ts';
import { renderGateway } from '../src/harness/dataplane/envoy/gateway.ts';
import { buildPlans, cellFor, clientTls, effectiveMtls, inferServiceMtls, meshPods, toTopology, type PlanInputs } from '../src/harness/profiles/istio/policy.ts';
import { apply, deployments, isInjected, loadIstio, parseIstio, withInjection, type IstioModel } from '../src/harness/profiles/istio/resources.ts';
import { loadTruthTable } from '../src/harness/profiles/istio/truth.ts';
import { validateTopology } from '../src/harness/substrate/topology.ts';
import { userError } from './lib/user-error.ts';

const SENTENCES = 'fixtures/istio/sentences';
const TRUTH = 'fixtures/istio/truth';
const APPS = ['age', 'name', 'name-v2', 'sentences'];

const model = (yaml: string): IstioModel => ({ resources: parseIstio(yaml, 'test.yaml') });

const pa = (name: string, ns: string, mode: string, extra = ''): string => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns} }
spec:
  mtls: { mode: ${mode} }
${extra}
`;

const pod = { namespace: 'default', labels: { app: 'name', version: 'v1' } };

describe('istio profile: PeerAuthentication inheritance', () => {
  it('nothing set → PERMISSIVE', () => {
    expect(effectiveMtls({ resources: [] }, pod, 5000)).to.equal('PERMISSIVE');
  });

  it('mesh STRICT + namespace PERMISSIVE → PERMISSIVE', () => {
    const m = model(pa('default', 'istio-system', 'STRICT') + pa('default', 'default', 'PERMISSIVE'));
    expect(effectiveMtls(m, pod, 5000)).to.equal('PERMISSIVE');
    expect(effectiveMtls(m, { namespace: 'other', labels: {} }, 5000)).to.equal('STRICT');
  });

  it('workload DISABLE overrides namespace STRICT, only for the selected pods', () => {
    const m = model(pa('default', 'default', 'STRICT') + pa('name-off', 'default', 'DISABLE', '  selector: { matchLabels: { app: name } }'));
    expect(effectiveMtls(m, pod, 5000)).to.equal('DISABLE');
    expect(effectiveMtls(m, { namespace: 'default', labels: { app: 'age' } }, 5000)).to.equal('STRICT');
  });

  it('portLevelMtls holds on its port only', () => {
    const m = model(pa('name', 'default', 'STRICT', '  selector: { matchLabels: { app: name } }\n  portLevelMtls:\n    5000: { mode: DISABLE }'));
    expect(effectiveMtls(m, pod, 5000)).to.equal('DISABLE');
    expect(effectiveMtls(m, pod, 8000)).to.equal('STRICT');
    expect(effectiveMtls(m, pod)).to.equal('STRICT');
  });

  it('UNSET inherits from the parent level (workload → namespace → mesh; port → workload)', () => {
    const m = model(
      pa('mesh', 'istio-system', 'STRICT') +
        pa('ns', 'default', 'UNSET') +
        pa('wl', 'default', 'UNSET', '  selector: { matchLabels: { app: name } }\n  portLevelMtls:\n    5000: { mode: UNSET }\n    8000: { mode: PERMISSIVE }'),
    );
    expect(effectiveMtls(m, pod, 5000)).to.equal('STRICT');
    expect(effectiveMtls(m, pod, 8000)).to.equal('PERMISSIVE');
    // a PeerAuthentication without spec.mtls is UNSET too
    expect(effectiveMtls(model(pa('mesh', 'istio-system', 'DISABLE') + '---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: { name: x }\nspec: {}\n'), pod)).to.equal('DISABLE');
  });

  it('among policies of one level the oldest (first applied) wins', () => {
    const m = model(pa('a', 'default', 'DISABLE', '  selector: { matchLabels: { app: name } }') + pa('b', 'default', 'STRICT', '  selector: { matchLabels: { version: v1 } }'));
    expect(effectiveMtls(m, pod, 5000)).to.equal('DISABLE');
  });

  it('auto-mTLS infers the service mode from mesh and namespace policies only', () => {
    const m = model(pa('default', 'default', 'PERMISSIVE') + pa('wl', 'default', 'DISABLE', '  selector: { matchLabels: { app: name } }'));
    expect(inferServiceMtls(m, { namespace: 'default' })).to.equal('PERMISSIVE');
    expect(inferServiceMtls(model(pa('default', 'istio-system', 'DISABLE')), { namespace: 'default' })).to.equal('DISABLE');
  });
});

describe('istio profile: loading', () => {
  it('unknown fields and kinds are errors naming them', () => {
    const dr = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: name }
spec:
  host: name
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
`;
    expect(userError(() => parseIstio(dr, 'dr.yaml'))).to.equal("dr.yaml: DestinationRule name: field spec.trafficPolicy.loadBalancer is not implemented by meshproof's istio profile");
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: name }
spec:
  hosts: [name]
  http:
  - fault: { abort: { httpStatus: 500 } }
    route: [{ destination: { host: name } }]
`;
    expect(userError(() => parseIstio(vs, 'vs.yaml'))).to.equal("vs.yaml: VirtualService name: field spec.http[0].fault is not implemented by meshproof's istio profile");
    const pauth = pa('default', 'default', 'STRICT', '  action: ALLOW');
    expect(userError(() => parseIstio(pauth, 'pa.yaml'))).to.equal("pa.yaml: PeerAuthentication default: field spec.action is not implemented by meshproof's istio profile");
    const ap = 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-sentences }\nspec: {}\n';
    expect(userError(() => parseIstio(ap, 'ap.yaml'))).to.equal("ap.yaml: AuthorizationPolicy allow-sentences: kind AuthorizationPolicy is not implemented by meshproof's istio profile");
    expect(userError(() => parseIstio('apiVersion: v1\nkind: Service\nmetadata: { name: s }\nspec: { selector: { a: b }, ports: [{ port: 80 }], type: NodePort }\n', 's.yaml'))).to.equal(
      "s.yaml: Service s: field spec.type \"NodePort\" is not implemented by meshproof's istio profile (ClusterIP only)",
    );
    expect(userError(() => parseIstio(pa('x', 'default', 'LOOSE'), 'pa.yaml'))).to.equal('pa.yaml: PeerAuthentication x: field spec.mtls.mode must be one of STRICT|PERMISSIVE|DISABLE|UNSET, got "LOOSE"');
  });

  it('malformed YAML is one line naming the file and line', () => {
    const msg = userError(() => parseIstio('kind: Service\nmetadata:\n  name: [a\n', 'bad.yaml'));
    expect(msg).to.match(/^bad\.yaml: malformed YAML at line \d+: /);
    expect(msg).to.not.include('\n');
  });

  it('metadata labels/annotations, status and List wrappers are accepted; namespace defaults to default', () => {
    const list = `apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1beta1
  kind: PeerAuthentication
  metadata: { name: default, labels: { a: b }, annotations: { c: d } }
  spec: { mtls: { mode: STRICT } }
  status: {}
`;
    const [r] = parseIstio(list, 'l.yaml');
    expect(r).to.include({ kind: 'PeerAuthentication', name: 'default', namespace: 'default', mode: 'STRICT' });
  });

  it('loads the sentences fixture directory (top level only) and applies the exercise files', () => {
    const m = loadIstio(SENTENCES);
    expect(deployments(m).map((d) => d.name)).to.deep.equal(['age', 'name', 'name-v2', 'sentences', 'sleep-naked', 'sleep']);
    const v2 = deployments(m).find((d) => d.name === 'name-v2');
    expect(v2?.env).to.deep.equal({ SENTENCE_MODE: 'name', SENTENCE_NAMES: "Athos (v2),Porthos (v2),Aramis (v2),d'Artagnan (v2)" });
    expect(m.resources.some((r) => r.kind === 'PeerAuthentication')).to.equal(false);
    const strict = apply(m, loadIstio(join(SENTENCES, 'peer-auth/strict.yaml')));
    expect(effectiveMtls(strict, { namespace: 'default', labels: {} }, 5000)).to.equal('STRICT');
    // same kind/ns/name: replaced, not added
    const permissive = apply(strict, loadIstio(join(SENTENCES, 'peer-auth/permissive.yaml')));
    expect(permissive.resources.filter((r) => r.kind === 'PeerAuthentication')).to.have.length(1);
    expect(effectiveMtls(permissive, { namespace: 'default', labels: {} }, 5000)).to.equal('PERMISSIVE');
    const igw = loadIstio([join(SENTENCES, 'igw/gateway.yaml'), join(SENTENCES, 'igw/virtual-service.yaml')]);
    const gw = igw.resources.find((r) => r.kind === 'Gateway');
    expect(gw).to.deep.include({ name: 'sentences', namespace: 'istio-system' });
    expect(gw?.kind === 'Gateway' && gw.servers[0]).to.deep.equal({
      port: { number: 443, name: 'https', protocol: 'HTTPS' },
      hosts: ['sentences.example.com'],
      tls: { mode: 'MUTUAL', credentialName: 'sentences-tls-secret' },
    });
  });
});

describe('istio profile: injection', () => {
  const m = loadIstio(SENTENCES);
  const injected = (mm: IstioModel): string[] => deployments(mm).filter((d) => isInjected(mm, d)).map((d) => d.name);

  it('as written: the workshop apps carry inject "false"; sleep has the "true" label', () => {
    expect(injected(m)).to.deep.equal(['sleep']);
  });

  it("the namespace label injects once the annotation is gone (grep -v inject)", () => {
    const text = `apiVersion: v1
kind: Namespace
metadata: { name: default, labels: { istio-injection: enabled } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: a }
spec:
  template:
    metadata: { labels: { app: a } }
    spec: { containers: [{ name: a, image: istio-katas }] }
`;
    expect(injected(model(text))).to.deep.equal(['a']);
    expect(injected(model(text.replace('enabled', 'disabled')))).to.deep.equal([]);
  });

  it("the inject option: 'all', 'none', or names forced in", () => {
    expect(injected(withInjection(m, 'all'))).to.deep.equal(['age', 'name', 'name-v2', 'sentences', 'sleep-naked', 'sleep']);
    expect(injected(withInjection(m, 'none'))).to.deep.equal([]);
    expect(injected(withInjection(m, ['age']))).to.deep.equal(['age', 'sleep']);
  });

  it('toTopology: pods, tlsMode label on injected pods, sentences containers, no container for sleep', () => {
    const t = toTopology(withInjection(m, ['age']));
    validateTopology(t);
    const age = t.pods.find((p) => p.name === 'age');
    expect(age?.labels).to.deep.equal({ app: 'sentences-age', mode: 'age', 'app.kubernetes.io/part-of': 'sentences', 'security.istio.io/tlsMode': 'istio' });
    expect(age?.serviceAccount).to.equal('default');
    expect(age?.containers).to.deep.equal([{ name: 'app', workload: 'sentences', args: ['--port', '5000'], env: { SENTENCE_MODE: 'age' }, ready: { kind: 'http', port: 5000, path: '/echo' } }]);
    expect(t.pods.find((p) => p.name === 'name')?.labels).to.not.have.property('security.istio.io/tlsMode');
    expect(t.pods.find((p) => p.name === 'sleep')).to.deep.include({ serviceAccount: 'sleep', containers: [] });
    expect(t.services?.find((s) => s.name === 'name')).to.deep.equal({
      name: 'name',
      namespace: 'default',
      selector: { app: 'sentences-name', mode: 'name' },
      ports: [{ name: 'api', port: 5000, targetPort: 5000, appProtocol: 'http' }],
    });
  });

  it('replicas > 1 become <deploy>-1..n', () => {
    const text = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: age }\nspec:\n  replicas: 2\n  template:\n    metadata: { labels: { mode: age } }\n    spec: { containers: [{ name: age }] }\n';
    expect(meshPods(model(text)).map((p) => p.key)).to.deep.equal(['default/age-1', 'default/age-2']);
  });
});

describe('istio profile: plans', () => {
  const base = apply(apply(loadIstio(SENTENCES, { inject: APPS }), loadIstio(join(SENTENCES, 'peer-auth/permissive.yaml'))), loadIstio(join(SENTENCES, 'dest-rule/name.yaml')));
  const ips: Record<string, string> = { 'default/age': '10.0.0.2', 'default/name': '10.0.0.3', 'default/name-v2': '10.0.0.4', 'default/sentences': '10.0.0.5', 'default/sleep': '10.0.0.6', 'default/sleep-naked': '10.0.0.7' };
  const io: PlanInputs = {
    podIp: (k) => ips[k],
    serviceVip: (k) => ({ 'default/age': '10.1.0.1', 'default/name': '10.1.0.2', 'default/sentences': '10.1.0.3' })[k] ?? '',
    certs: (k) => ({ cert: `/state/${k}/cert.pem`, key: `/state/${k}/key.pem`, ca: '/state/ca.pem' }),
    credential: (ns, name) => ({ cert: `/state/${ns}.${name}.crt`, key: `/state/${ns}.${name}.key`, cacert: `/state/${ns}.${name}.ca.crt` }),
  };

  it('clientTls: DestinationRule subsets, AUTO without one', () => {
    const sleep = { namespace: 'default' };
    expect(clientTls(base, sleep, { name: 'name', namespace: 'default' }, 'name-v1')).to.equal('DISABLE');
    expect(clientTls(base, sleep, { name: 'name', namespace: 'default' }, 'name-v2')).to.equal('ISTIO_MUTUAL');
    expect(clientTls(base, sleep, { name: 'name', namespace: 'default' })).to.equal('AUTO');
    expect(clientTls(base, sleep, { name: 'age', namespace: 'default' })).to.equal('AUTO');
  });

  it('the DR fixture gives subsets name-v1 (DISABLE) and name-v2 (ISTIO_MUTUAL) with their endpoints, 50/50', () => {
    const plans = buildPlans(base, io);
    expect(plans.map((p) => p.pod)).to.deep.equal(['age', 'name', 'name-v2', 'sentences', 'sleep']);
    const sleep = plans.find((p) => p.pod === 'sleep');
    expect(sleep?.identity).to.equal('spiffe://cluster.local/ns/default/sa/sleep');
    expect(sleep?.certs).to.deep.equal({ cert: '/state/default/sleep/cert.pem', key: '/state/default/sleep/key.pem', ca: '/state/ca.pem' });
    const name = sleep?.outbound.find((o) => o.fqdn === 'name.default.svc.cluster.local');
    expect(name).to.deep.include({ vip: '10.1.0.2', port: 5000, protocol: 'http', routes: [{ subset: 'name-v1', weight: 50 }, { subset: 'name-v2', weight: 50 }] });
    const brief = name?.subsets.map((s) => ({ name: s.name, tls: s.tls, ips: s.endpoints.map((e) => `${e.ip}:${e.port}`), sans: s.subjectAltNames }));
    expect(brief).to.deep.equal([
      { name: '', tls: 'AUTO', ips: ['10.0.0.3:5000', '10.0.0.4:5000'], sans: ['spiffe://cluster.local/ns/default/sa/default'] },
      { name: 'name-v1', tls: 'DISABLE', ips: ['10.0.0.3:5000'], sans: [] },
      { name: 'name-v2', tls: 'ISTIO_MUTUAL', ips: ['10.0.0.4:5000'], sans: ['spiffe://cluster.local/ns/default/sa/default'] },
    ]);
    expect(name?.subsets[2].endpoints[0]).to.deep.include({ istio: true, identity: 'spiffe://cluster.local/ns/default/sa/default' });
    const age = sleep?.outbound.find((o) => o.fqdn === 'age.default.svc.cluster.local');
    expect(age?.routes).to.deep.equal([]);
    expect(age?.subsets.map((s) => s.name)).to.deep.equal(['']);
    const nameV2 = plans.find((p) => p.pod === 'name-v2');
    expect(nameV2?.inbound).to.deep.equal([{ port: 5000, mode: 'PERMISSIVE', protocol: 'http' }]);
    expect(nameV2?.defaultMode).to.equal('PERMISSIVE');
    expect(sleep?.inbound).to.deep.equal([]);
  });

  it('a gateway-template Deployment becomes a gateway proxy: Gateway servers on the Service targetPort, bound VirtualService routes, no inbound capture', () => {
    const ips2: Record<string, string> = { ...ips, 'istio-system/istio-ingressgateway': '10.0.0.8' };
    const m = ['igw/ingressgateway.yaml', 'igw/gateway.yaml', 'igw/virtual-service.yaml'].reduce((acc, f) => apply(acc, loadIstio(join(SENTENCES, f))), base);
    const gw = buildPlans(m, { ...io, podIp: (k) => ips2[k]!, serviceVip: (k) => (k === 'istio-system/istio-ingressgateway' ? '10.1.0.9' : io.serviceVip(k)) }).find((p) => p.pod === 'istio-ingressgateway')!;
    expect(gw.identity).to.equal('spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
    expect(gw.inbound).to.deep.equal([]);
    expect(gw.gateway?.servers).to.deep.equal([
      {
        bindPort: 8443,
        protocol: 'HTTPS',
        hosts: ['sentences.example.com'],
        tls: { mode: 'MUTUAL', cert: '/state/istio-system.sentences-tls-secret.crt', key: '/state/istio-system.sentences-tls-secret.key', cacert: '/state/istio-system.sentences-tls-secret.ca.crt' },
        virtualHosts: [{ name: 'default/sentences', domains: ['sentences.example.com', 'sentences.example.com:*'], route: [{ fqdn: 'sentences.default.svc.cluster.local', port: 5000, subset: '', weight: 100 }] }],
      },
    ]);
    // the gateway pod is not a mesh endpoint: no tlsMode label, no app container
    const pod = meshPods(m).find((p) => p.name === 'istio-ingressgateway')!;
    expect(pod).to.deep.include({ injected: true, gateway: true });
    expect(pod.labels['security.istio.io/tlsMode']).to.equal(undefined);
    expect(toTopology(m).pods.find((p) => p.name === 'istio-ingressgateway')?.containers).to.deep.equal([]);
    const text = renderGateway(gw);
    expect(text).to.include('require_client_certificate: true');
    expect(text).to.include('forward_client_cert_details: SANITIZE_SET');
    expect(text).to.include('- sentences.example.com');
    expect(text).to.include('port_value: 8443');
  });

  it('auto-mTLS toward a namespace with DISABLE plans plaintext', () => {
    const m = apply(loadIstio(SENTENCES, { inject: APPS }), parseIstio(pa('default', 'default', 'DISABLE'), 'pa.yaml'));
    const sleep = buildPlans(m, io).find((p) => p.pod === 'sleep');
    expect(sleep?.outbound.find((o) => o.fqdn.startsWith('age.'))?.subsets[0].tls).to.equal('DISABLE');
  });

  it('a VirtualService subset no DestinationRule defines is an error', () => {
    const vsOnly = apply(loadIstio(SENTENCES, { inject: APPS }), loadIstio(join(SENTENCES, 'dest-rule/name.yaml')).resources.filter((r) => r.kind === 'VirtualService'));
    expect(userError(() => buildPlans(vsOnly, io))).to.match(/VirtualService name: subset name-v1 is not defined by a DestinationRule for name$/);
  });
});

describe('istio profile: oracle', () => {
  const cell = { fromSidecar: true, toSidecar: true, serverMode: 'STRICT' as const, clientTls: 'AUTO' as const };

  it('covers the documented deny signals', () => {
    expect(expectIstio({ ...cell, fromSidecar: false })).to.deep.equal({ observed: 'denied', verdict: 'denied:reset' });
    expect(expectIstio({ ...cell, clientTls: 'DISABLE' })).to.deep.equal({ observed: 'denied', verdict: 'denied:http-503' });
    expect(expectIstio({ ...cell, clientTls: 'ISTIO_MUTUAL', toSidecar: false })).to.deep.equal({ observed: 'denied', verdict: 'denied:http-503' });
    expect(expectIstio({ ...cell, clientTls: 'AUTO', toSidecar: false })).to.deep.equal({ observed: 'allowed', verdict: 'allowed:plaintext' });
    expect(expectIstio({ ...cell, clientTls: 'ISTIO_MUTUAL', serverMode: 'DISABLE' })).to.deep.equal({ observed: 'denied', verdict: 'denied:http-503' });
    expect(expectIstio({ ...cell, clientTls: 'ISTIO_MUTUAL', sanMatches: false })).to.deep.equal({ observed: 'denied', verdict: 'denied:http-503' });
    expect(expectIstio({ ...cell, clientTls: 'DISABLE', protocol: 'tcp' })).to.deep.equal({ observed: 'denied', verdict: 'denied:reset' });
    // auto-mTLS honours the endpoint's own workload policy (xds/endpoints/mtls_checker.go; reachability "mtls port override": always success, never mTLS)
    expect(expectIstio({ ...cell, serverMode: 'DISABLE', inferredServiceMode: 'PERMISSIVE' })).to.deep.equal({ observed: 'allowed', verdict: 'allowed:plaintext' });
    expect(expectIstio({ ...cell, serverMode: 'DISABLE', inferredServiceMode: 'DISABLE' })).to.deep.equal({ observed: 'allowed', verdict: 'allowed:plaintext' });
  });

  // protocols.yaml has its own fixture, scenarios and oracle (test/istio-protocols-oracle.spec.ts)
  const files = readdirSync(TRUTH).filter((f) => f.endsWith('.yaml') && f !== 'protocols.yaml').sort();
  it('has truth tables', () => expect(files.length).to.be.greaterThanOrEqual(5));
  for (const f of files) {
    it(`agrees with every row of truth/${f}`, () => {
      const table = loadTruthTable(join(TRUTH, f));
      let m = loadIstio(SENTENCES, { inject: table.inject });
      for (const a of table.apply) m = apply(m, loadIstio(join(SENTENCES, a)));
      const wrong = table.rows.flatMap((row) => {
        const got = expectIstio(cellFor(m, row.from, { service: row.to, port: row.port, subset: row.subset }));
        const want = { observed: row.expected, verdict: row.verdict };
        return got.observed === want.observed && got.verdict === want.verdict ? [] : [`${row.from} → ${row.to}${row.subset ? `/${row.subset}` : ''}:${row.port}: table ${want.verdict}, oracle ${got.verdict}`];
      });
      expect(wrong, table.scenario).to.deep.equal([]);
    });
  }
});
