// Unit tests of the cf-for-k8s profile: the oracle (model/cf-for-k8s/oracle.ts) against every row of the hand-written
// truth table (fixtures/cf-for-k8s/truth.yaml) and against ADR 0004's matrix read directly, the truth loader's one-line
// refusals, the curl reading of mtls_test.go's proxy-container calls, and the driver's pure helpers.
import { expect } from 'chai';
import { expectCf, type CfCell, type Enablement } from '../src/harness/model/cf-for-k8s/oracle.ts';
import { curlVerdict } from '../src/harness/model/cf-for-k8s/curl.ts';
import { cellOf, cfRowName, loadCfTruth, parseCfTruth, stepTable } from '../src/harness/profiles/cf-for-k8s/truth.ts';
import { clusterStat, outsidePod, platformModel, stepObjects } from '../src/harness/profiles/cf-for-k8s/index.ts';
import { deployments, isInjected, peerAuthentications } from '../src/harness/profiles/istio/resources.ts';
import { UserError } from '../src/harness/model/errors.ts';
import { profileOf } from '../src/harness/cli/suites.ts';

const truth = loadCfTruth();

describe('cf-for-k8s truth table (fixtures/cf-for-k8s/truth.yaml)', () => {
  it('three steps of 10, 12 and 3 rows, none pending; every cell of the ADR matrix but N/A has a row', () => {
    expect(truth.steps.map((s) => [s.name, s.rows.length])).to.deep.equal([
      ['installed', 10],
      ['operator-enabled', 12],
      ['apps-sidecar-widened', 3],
    ]);
    expect(truth.steps.flatMap((s) => s.rows.filter((r) => r.pending))).to.deep.equal([]);
    const cells = new Set(truth.steps.flatMap((s) => s.rows.map((r) => `${truth.callers[r.from]!.category}→${truth.targets[r.to]!.category}`)));
    expect([...cells].sort()).to.deep.equal(['Apps→Apps', 'Apps→External', 'Apps→System', 'External→Apps', 'External→System', 'System→Apps', 'System→External', 'System→System']);
  });

  it('every row agrees with the oracle on its verdict and on what enforced it (25 rows)', () => {
    const rows = truth.steps.flatMap((s) => s.rows.map((r) => ({ s, r })));
    expect(rows).to.have.length(25);
    const wrong = rows
      .map(({ s, r }) => ({ name: `${s.name}: ${cfRowName(r)}`, r, o: expectCf(cellOf(truth, s, r)) }))
      .filter(({ r, o }) => o.verdict !== r.verdict || JSON.stringify(o.enforcedBy) !== JSON.stringify(r.enforcedBy))
      .map(({ name, r, o }) => `${name}: row ${r.verdict} by ${r.enforcedBy.join('+')}, oracle ${o.verdict} by ${o.enforcedBy.join('+')}`);
    expect(wrong).to.deep.equal([]);
  });

  it("a step's runner table: the target's port, or the gateway's and the route for a call through it; pending rows left out", () => {
    const { table, rowOf } = stepTable(truth, truth.steps[0]!);
    expect(table.rows).to.have.length(10);
    expect(table.rows.map((r) => `${r.from}→${r.to}:${r.port}`)).to.include.members(['proxy→dora:8080', 'proxy→httpbin:80', 'outside→dora:8080', 'outside→dora.apps.example.com:443', 'outside→httpbin.sys.example.com:443']);
    const pending = { ...truth, steps: [{ ...truth.steps[0]!, rows: truth.steps[0]!.rows.map((r, i) => (i === 0 ? { ...r, pending: 'not yet' } : r)) }] };
    expect(stepTable(pending, pending.steps[0]!).table.rows).to.have.length(9);
    expect([...rowOf.values()].every((r) => !r.pending)).to.equal(true);
  });
});

describe('cf-for-k8s oracle: ADR 0004 read cell by cell', () => {
  const all: Enablement = { appToApp: true, appsSeeApps: true, appsToSystem: true, systemToApps: true, systemToSystem: true, gatewayToSystem: true };
  const cell = (c: Partial<CfCell>): CfCell => ({ from: 'Apps', caller: 'app', to: 'Apps', enabled: {}, ...c });

  it('"Istio Mesh mTLS": with everything enabled every Apps/System → Apps/System cell is allowed:mtls (4 cells)', () => {
    const cells = (['Apps', 'System'] as const).flatMap((from) => (['Apps', 'System'] as const).map((to) => expectCf(cell({ from, to, enabled: all }))));
    expect(cells.map((c) => c.verdict)).to.deep.equal(['allowed:mtls', 'allowed:mtls', 'allowed:mtls', 'allowed:mtls']);
  });

  it('"App-to-app traffic will be denied by default": dropped by the NetworkPolicy, whatever the Sidecar', () => {
    expect(expectCf(cell({}))).to.deep.equal({ verdict: 'denied:reset', enforcedBy: ['meshproof-networkpolicy'] });
    expect(expectCf(cell({ enabled: { appsSeeApps: true } }))).to.deep.equal({ verdict: 'denied:http-503', enforcedBy: ['meshproof-networkpolicy'] });
  });

  it('External → Apps/System: only through the ingress gateway (TLS there); a direct caller is dropped in silence', () => {
    expect(expectCf(cell({ from: 'External', caller: 'outside', via: 'ingress-gateway' })).verdict).to.equal('allowed:tls');
    expect(expectCf(cell({ from: 'External', caller: 'outside', enabled: all })).verdict).to.equal('denied:timeout');
    expect(expectCf(cell({ from: 'External', caller: 'outside', to: 'System', enabled: all })).verdict).to.equal('denied:timeout');
  });

  it('Apps → External is PERMISSIVE egress; System → External with the provided CA is TLS, with another CA refused', () => {
    expect(expectCf(cell({ to: 'External' })).verdict).to.equal('allowed:plaintext');
    expect(expectCf(cell({ from: 'System', to: 'External', tls: 'operator-ca' })).verdict).to.equal('allowed:tls');
    expect(expectCf(cell({ from: 'System', to: 'External', tls: 'other-ca' })).verdict).to.equal('denied:http-503');
  });

  it("the proxy container's own plaintext and no-certificate calls are refused by STRICT once a policy admits them", () => {
    const proxy = (client: 'plaintext' | 'tls-no-cert', enabled: Enablement) => expectCf(cell({ caller: 'proxy-container', client, to: 'System', enabled }));
    expect(proxy('plaintext', { appsToSystem: true })).to.deep.equal({ verdict: 'denied:reset', enforcedBy: ['istio'] });
    expect(proxy('tls-no-cert', { appsToSystem: true })).to.deep.equal({ verdict: 'denied:tls-handshake', enforcedBy: ['istio'] });
    expect(proxy('plaintext', {})).to.deep.equal({ verdict: 'denied:timeout', enforcedBy: ['meshproof-networkpolicy'] });
  });

  it('cells the ADR marks N/A or the scenario has no caller for are refused', () => {
    expect(() => expectCf(cell({ from: 'External', caller: 'outside', to: 'External' }))).to.throw(/N\/A/);
    expect(() => expectCf(cell({ caller: 'outside', to: 'External' }))).to.throw(/not in the scenario/);
    expect(() => expectCf(cell({ client: 'tls-no-cert' }))).to.throw(/plaintext to its own sidecar/);
  });
});

describe("cf-for-k8s: mtls_test.go's curl read as a verdict", () => {
  const v = (code: number, stderr = '', httpCode = 0, https = false) => curlVerdict({ code, stderr, httpCode, https, ms: 1 });
  it("curl's exit codes: 0 by scheme and status, 7 refused, 28 timeout, 35/60 handshake, 52 reset, 56 reset or a TLS alert", () => {
    expect(v(0, '', 200)).to.equal('allowed:plaintext');
    expect(v(0, '', 200, true)).to.equal('allowed:tls');
    expect(v(0, '', 503)).to.equal('denied:http-503');
    expect(v(7)).to.equal('denied:refused');
    expect(v(28)).to.equal('denied:timeout');
    expect(v(35, 'curl: (35) OpenSSL SSL_connect: Connection reset by peer')).to.equal('denied:tls-handshake');
    expect(v(52, 'curl: (52) Empty reply from server')).to.equal('denied:reset');
    expect(v(56, 'curl: (56) Recv failure: Connection reset by peer')).to.equal('denied:reset');
    expect(v(56, 'curl: (56) OpenSSL SSL_read: OpenSSL/3.0.22: error:0A00045C:SSL routines::tlsv13 alert certificate required, errno 0', 0, true)).to.equal('denied:tls-handshake');
    expect(v(16, 'curl: (16) Send failure: Broken pipe')).to.equal('denied:reset');
    expect(() => v(6, 'curl: (6) Could not resolve host: x')).to.throw(/curl exit 6 .*Could not resolve host/);
    expect(() => v(16, 'curl: (16) Error in the HTTP2 framing layer')).to.throw(/curl exit 16/);
  });

  it('TLS 1.3 to a server that asked for a client certificate: refused in the handshake, whether curl failed sending or reading', () => {
    // curl -v -k https://httpbin.cf-system.svc.cluster.local:80/headers from the istio-proxy container (trimmed)
    const trace = (tail: string) =>
      ['* ALPN: offers h2,http/1.1', '* TLSv1.3 (IN), TLS handshake, Request CERT (13):', '* TLSv1.3 (OUT), TLS handshake, Certificate (11):', '} [8 bytes data]', '* ALPN: server accepted h2', tail].join('\n');
    expect(v(16, trace('curl: (16) Send failure: Broken pipe'), 0, true)).to.equal('denied:tls-handshake');
    expect(v(55, trace('curl: (55) getpeername() failed with errno 107: Transport endpoint is not connected'), 0, true)).to.equal('denied:tls-handshake');
    expect(v(56, trace('curl: (56) OpenSSL SSL_read: OpenSSL/3.0.22: error:0A00045C:SSL routines::tlsv13 alert certificate required, errno 0'), 0, true)).to.equal('denied:tls-handshake');
    // no CertificateRequest: a reset is a reset
    expect(v(56, '* TLSv1.3 (IN), TLS handshake, Server hello (2):\ncurl: (56) Recv failure: Connection reset by peer', 0, true)).to.equal('denied:reset');
  });
});

describe('cf-for-k8s driver: pure parts', () => {
  it('suites/cf-for-k8s.spec.ts is the cf-for-k8s profile (meshproof run --profile cf-for-k8s), cf-* suites stay cf', () => {
    expect(['cf-for-k8s', 'cf-tcp-routes-tls'].map(profileOf)).to.deep.equal(['cf-for-k8s', 'cf']);
  });

  it("the platform loads through the Istio profile's reader; both namespaces inject every Deployment; the system part has no app and no policy", () => {
    const model = platformModel(truth, 'all');
    expect(deployments(model).map((d) => `${d.namespace}/${d.name}:${isInjected(model, d)}`)).to.deep.equal([
      'cf-system/httpbin:true',
      'cf-system/prometheus:true',
      'istio-system/istio-ingressgateway:true',
      'cf-workloads/proxy:true',
      'cf-workloads/dora:true',
    ]);
    expect(peerAuthentications(model).map((p) => `${p.namespace}/${p.name}:${p.mode}`)).to.deep.equal(['istio-system/default:STRICT']);
    const system = platformModel(truth, 'system');
    expect(deployments(system).map((d) => d.name)).to.deep.equal(['httpbin', 'prometheus']);
    expect(peerAuthentications(system)).to.deep.equal([]);
  });

  it("a step's files with ((operator_ca)) resolved; a placeholder without a value is one line naming it", () => {
    const step = truth.steps.find((s) => s.name === 'operator-enabled')!;
    const objs = stepObjects(step, { operator_ca: '/run/x/operator-ca.crt', other_ca: '/run/x/other-ca.crt' });
    expect(objs.map((o) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`)).to.deep.equal([
      'NetworkPolicy/cf-system/allow-ingress-from-apps',
      'NetworkPolicy/cf-workloads/allow-app-to-app',
      'NetworkPolicy/cf-workloads/allow-app-ingress-from-prometheus',
      'NetworkPolicy/cf-system/allow-httpbin-from-prometheus',
      'NetworkPolicy/cf-system/allow-httpbin-from-ingressgateway',
      'ServiceEntry/cf-system/external-idp',
      'DestinationRule/cf-system/external-idp',
      'DestinationRule/cf-system/external-idp-other-ca',
    ]);
    const dr = objs.find((o) => o.metadata?.name === 'external-idp' && o.kind === 'DestinationRule') as unknown as { spec: { trafficPolicy: { tls: Record<string, unknown> } } };
    expect(dr.spec.trafficPolicy.tls).to.deep.include({ mode: 'SIMPLE', caCertificates: '/run/x/operator-ca.crt', sni: 'external.example.com' });
    expect(() => stepObjects(step, { operator_ca: '/x' })).to.throw(UserError, /external-ca\.yaml: \(\(other_ca\)\) has no value in this run/);
  });

  it('the server outside the platform: every external name, plain HTTP on 8080 and TLS on 8443', () => {
    const { spec, containers } = outsidePod(truth, { cert: '/c.crt', key: '/c.key' });
    expect(spec).to.deep.equal({ name: 'outside', namespace: 'external', hostAliases: ['external.example.com', 'other.example.com'] });
    expect(containers.map((c) => c.args)).to.deep.equal([['--port', '8080'], ['--port', '8443', '--tls-cert', '/c.crt', '--tls-key', '/c.key']]);
  });

  it("a cluster stat matches with or without istiod's `;` after the cluster name", () => {
    const re = clusterStat('cluster.outbound|80||httpbin.cf-system.svc.cluster.local.upstream_cx_connect_timeout');
    expect(re.test('cluster.outbound|80||httpbin.cf-system.svc.cluster.local;.upstream_cx_connect_timeout')).to.equal(true);
    expect(re.test('cluster.outbound|80||httpbin.cf-system.svc.cluster.local.upstream_cx_connect_timeout')).to.equal(true);
    expect(re.test('cluster.outbound|80||httpbin.cf-system.svc.cluster.local;.upstream_cx_total')).to.equal(false);
  });

  it('the loader refuses a bad table in one line naming the field', () => {
    const base = { scenario: 's', source: 's', fixture: 'f', ingressGateway: { host: 'gw', port: 443 }, callers: { a: { category: 'Apps', caller: 'app', pod: 'ns/a' } }, targets: { b: { category: 'System', host: 'b', port: 80 } } };
    const row = { from: 'a', to: 'b', verdict: 'allowed:mtls', enforcedBy: ['istio'], cite: 'x' };
    const step = (r: Record<string, unknown>) => ({ ...base, steps: [{ name: 'n', title: 't', apply: [], enabled: {}, rows: [r] }] });
    expect(parseCfTruth(step(row), 't.yaml').steps[0]!.rows[0]!.expected).to.equal('allowed');
    expect(() => parseCfTruth(step({ ...row, verdict: 'allowed' }), 't.yaml')).to.throw(UserError, /^t\.yaml: steps\[0\]\.rows\[0\]\.verdict "allowed" is not a verdict$/);
    expect(() => parseCfTruth(step({ ...row, to: 'c' }), 't.yaml')).to.throw(UserError, /rows\[0\]\.to "c" is not one of the targets \(b\)/);
    expect(() => parseCfTruth(step({ ...row, cite: '' }), 't.yaml')).to.throw(UserError, /cite is required/);
    expect(() => parseCfTruth(step({ ...row, enforcedBy: ['calico'] }), 't.yaml')).to.throw(UserError, /enforcedBy must list istio and\/or meshproof-networkpolicy/);
    expect(() => parseCfTruth(step({ ...row, port: 81 }), 't.yaml')).to.throw(UserError, /unknown field port/);
    expect(() => parseCfTruth(step({ ...row, via: 'ingress-gateway' }), 't.yaml')).to.throw(UserError, /target b has no route for the ingress gateway/);
    expect(() => parseCfTruth({ ...step(row), steps: [{ name: 'n', title: 't', apply: [], enabled: { appToApps: true }, rows: [row] }] }, 't.yaml')).to.throw(UserError, /enabled\.appToApps: the switches are appToApp/);
  });
});
