// Unit tests of the Contrast model: annotation parsing in Contrast's formats (service-mesh/config.go ParseProxyConfig),
// the CLI's injection rule and admin patch (internal/kuberesource/mutators.go), the YAML reader, and the oracle
// checked against every hand-written row of fixtures/contrast/truth/*.yaml. Expected values are written by hand.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_ANNOTATION,
  EGRESS_ANNOTATION,
  INGRESS_ANNOTATION,
  initializerRemovesDefaultDeny,
  injectsServiceMesh,
  needsServiceMesh,
  parseEgress,
  parseIngress,
  parseProxyConfig,
  patchServiceMeshAdminInterface,
} from '../src/harness/model/contrast/annotations.ts';
import { expectDirect, inboundPath } from '../src/harness/model/contrast/oracle.ts';
import { planPods } from '../src/harness/profiles/contrast/index.ts';
import { loadContrast, parseContrast } from '../src/harness/profiles/contrast/resources.ts';
import { loadContrastTable, oracleFor, rowName } from '../src/harness/profiles/contrast/truth.ts';
import { userError } from './lib/user-error.ts';

const W = 'web.yaml: Deployment web';
const WEB_EGRESS = 'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080';

/** The UserError message of `fn`, or a failure when it does not throw one. */
describe('model/contrast annotations: Contrast\'s formats', () => {
  it('egress: emojivoto web\'s two entries, in order', () => {
    expect(parseEgress(WEB_EGRESS, W)).to.deep.equal([
      { name: 'emoji', listenAddr: '127.137.0.1', listenPort: 8081, remoteDomain: 'emoji-svc', remotePort: 8080 },
      { name: 'voting', listenAddr: '127.137.0.2', listenPort: 8081, remoteDomain: 'voting-svc', remotePort: 8080 },
    ]);
    // empty entries are skipped (a trailing ##), an IP remote is fine
    expect(parseEgress('db#127.0.0.9:3306#10.0.0.7:3306##', W)).to.deep.equal([{ name: 'db', listenAddr: '127.0.0.9', listenPort: 3306, remoteDomain: '10.0.0.7', remotePort: 3306 }]);
    expect(parseEgress('', W)).to.deep.equal([]);
  });

  it('ingress: "" is every port mTLS, DISABLED no rules, entries with Go\'s strconv.ParseBool spellings', () => {
    expect(parseIngress('', W)).to.deep.equal({ entries: [], disabled: false });
    expect(parseIngress('DISABLED', W)).to.deep.equal({ entries: [], disabled: true });
    expect(parseIngress('web#8080#false##metrics#7890#true', W)).to.deep.equal({
      entries: [
        { name: 'web', port: 8080, disableTLS: false },
        { name: 'metrics', port: 7890, disableTLS: true },
      ],
      disabled: false,
    });
    expect(parseIngress('a#1#1##b#2#F##c#3#TRUE##d#4#t', W).entries.map((e) => e.disableTLS)).to.deep.equal([true, false, true, true]);
  });

  it('a malformed annotation is one UserError naming the annotation, the entry and the fix', () => {
    expect(userError(() => parseEgress('emoji#10.0.0.1:8081#emoji-svc:8080', W))).to.equal(
      `${W}: annotation ${EGRESS_ANNOTATION}: entry "emoji#10.0.0.1:8081#emoji-svc:8080": listen address 10.0.0.1 is not in local CIDR 127.0.0.1/8 (Contrast's service mesh refuses it): choose a listen address in 127.0.0.0/8`,
    );
    expect(userError(() => parseEgress('emoji#127.137.0.1:8081#emoji-svc', W))).to.equal(
      `${W}: annotation ${EGRESS_ANNOTATION}: entry "emoji#127.137.0.1:8081#emoji-svc": invalid remote domain: emoji-svc (Contrast's service mesh refuses it): write the remote as <host-or-ip>:<port>`,
    );
    expect(userError(() => parseEgress('emoji#127.137.0.1#emoji-svc:8080', W))).to.match(/entry "emoji#127\.137\.0\.1#emoji-svc:8080": invalid listen address: 127\.137\.0\.1 /);
    expect(userError(() => parseEgress('emoji#127.137.0.1:8081', W))).to.match(/entry "emoji#127\.137\.0\.1:8081": invalid entry: emoji#127\.137\.0\.1:8081 /);
    expect(userError(() => parseEgress('emoji#[::1]:8081#emoji-svc:8080', W))).to.match(/listen address ::1 is not in local CIDR 127\.0\.0\.1\/8/);
    expect(userError(() => parseEgress('emoji#127.137.0.1:0#emoji-svc:8080', W))).to.match(/listener emoji listens on port 0/);
    expect(userError(() => parseEgress('emoji#127.137.0.1:8081#emoji-svc:http', W))).to.match(/invalid remote port: http/);
    expect(userError(() => parseEgress('a#127.0.0.2:81#x:1##a#127.0.0.3:81#y:1', W))).to.match(/a second entry named a/);
    expect(userError(() => parseEgress('a#127.0.0.2:81#x:1##b#127.0.0.2:81#y:1', W))).to.match(/127\.0\.0\.2:81 is already another entry's listen address/);
    expect(userError(() => parseIngress('web#8080#maybe', W))).to.equal(
      `${W}: annotation ${INGRESS_ANNOTATION}: entry "web#8080#maybe": invalid disable TLS: maybe (Contrast's service mesh refuses it): write true (no TLS, no redirect) or false (TLS without client certificate)`,
    );
    expect(userError(() => parseIngress('ENABLED', W))).to.match(/entry "ENABLED": invalid entry: ENABLED .*or DISABLED$/);
    expect(userError(() => parseIngress('web#http#false', W))).to.match(/invalid listen port: http/);
    expect(userError(() => parseIngress('web#8080', W))).to.match(/invalid entry: web#8080/);
    expect(userError(() => parseProxyConfig({ [ADMIN_ANNOTATION]: 'nine' }, W))).to.match(new RegExp(`annotation ${ADMIN_ANNOTATION}: entry "nine": invalid admin port: nine`));
  });

  it('the sidecar\'s ProxyConfig from all three annotations', () => {
    expect(parseProxyConfig({ [INGRESS_ANNOTATION]: 'web#8080#false##admin#9901#true', [EGRESS_ANNOTATION]: 'web#127.137.0.3:8081#web-svc:443', [ADMIN_ANNOTATION]: '9901' }, W)).to.deep.equal({
      ingress: [
        { name: 'web', port: 8080, disableTLS: false },
        { name: 'admin', port: 9901, disableTLS: true },
      ],
      ingressDisabled: false,
      egress: [{ name: 'web', listenAddr: '127.137.0.3', listenPort: 8081, remoteDomain: 'web-svc', remotePort: 443 }],
      adminPort: 9901,
    });
  });

  it('injection: contrast-cc* pods with any of the three annotations (even ""); the initializer frees pods without', () => {
    expect(injectsServiceMesh({ runtimeClassName: 'contrast-cc-metal-qemu-snp-1234', annotations: { [INGRESS_ANNOTATION]: '' } })).to.equal(true);
    expect(injectsServiceMesh({ runtimeClassName: 'contrast-cc', annotations: { [ADMIN_ANNOTATION]: '9901' } })).to.equal(true);
    expect(injectsServiceMesh({ annotations: { [INGRESS_ANNOTATION]: '' } })).to.equal(false);
    expect(injectsServiceMesh({ runtimeClassName: 'kata-qemu', annotations: { [EGRESS_ANNOTATION]: 'a#127.0.0.2:1#b:1' } })).to.equal(false);
    expect(injectsServiceMesh({ runtimeClassName: 'contrast-cc', annotations: { 'other/annotation': 'x' } })).to.equal(false);
    expect(needsServiceMesh({})).to.equal(false);
    expect(initializerRemovesDefaultDeny({ runtimeClassName: 'contrast-cc', annotations: {} })).to.equal(true);
    expect(initializerRemovesDefaultDeny({ runtimeClassName: 'contrast-cc', annotations: { [INGRESS_ANNOTATION]: '' } })).to.equal(false);
    expect(initializerRemovesDefaultDeny({ annotations: {} })).to.equal(false);
  });

  it('PatchServiceMeshAdminInterface appends ##admin#<port>#true to pods with ingress or egress', () => {
    expect(patchServiceMeshAdminInterface({ [INGRESS_ANNOTATION]: 'web#8080#false', [EGRESS_ANNOTATION]: WEB_EGRESS }, 9901)).to.deep.equal({
      [INGRESS_ANNOTATION]: 'web#8080#false##admin#9901#true',
      [EGRESS_ANNOTATION]: WEB_EGRESS,
      [ADMIN_ANNOTATION]: '9901',
    });
    expect(patchServiceMeshAdminInterface({ [INGRESS_ANNOTATION]: '' }, 9901)).to.deep.equal({ [INGRESS_ANNOTATION]: '##admin#9901#true', [ADMIN_ANNOTATION]: '9901' });
    expect(patchServiceMeshAdminInterface({ [EGRESS_ANNOTATION]: 'x#127.0.0.2:1#y:1' }, 9901)).to.deep.equal({ [EGRESS_ANNOTATION]: 'x#127.0.0.2:1#y:1', [INGRESS_ANNOTATION]: '##admin#9901#true', [ADMIN_ANNOTATION]: '9901' });
    expect(patchServiceMeshAdminInterface({ a: 'b' }, 9901)).to.deep.equal({ a: 'b' });
    // vote-bot's DISABLED keeps its meaning: no rules at all, the admin entry changes nothing
    const vb = patchServiceMeshAdminInterface({ [INGRESS_ANNOTATION]: 'DISABLED' }, 9901);
    expect(vb[INGRESS_ANNOTATION]).to.equal('DISABLED##admin#9901#true');
    expect(parseIngress(vb[INGRESS_ANNOTATION]!, W)).to.deep.equal({ entries: [{ name: 'admin', port: 9901, disableTLS: true }], disabled: true });
  });
});

describe('profiles/contrast: the emojivoto YAML as the CLI injects it', () => {
  const model = loadContrast(['fixtures/contrast/emojivoto', 'fixtures/contrast/callers', 'fixtures/contrast/startup', 'fixtures/contrast/docs']);
  const plans = planPods(model, { adminInterfacePort: 9901 });
  const plan = (n: string) => plans.find((p) => p.deployment.name === n)!;

  it('every Deployment and Service of the fixtures is read', () => {
    expect(model.deployments.map((d) => d.name).sort()).to.deep.equal(['client', 'emoji', 'frontend', 'plain', 'vote-bot', 'voting', 'web']);
    expect(model.services.map((s) => `${s.name}:${s.ports.map((p) => `${p.port}>${p.targetPort}`).join(',')}`).sort()).to.deep.equal(['emoji-svc:8080>8080,8801>8801', 'plain-svc:8080>8080', 'voting-svc:8080>8080,8801>8801', 'web-svc:443>8080']);
  });

  it('sidecars go to emoji, voting, web, vote-bot and frontend; plain gets the initializer only; client nothing', () => {
    expect(plans.map((p) => `${p.deployment.name}:${p.contrast ? 'cc' : '-'}:${p.injected ? 'mesh' : '-'}`).sort()).to.deep.equal([
      'client:-:-', 'emoji:cc:mesh', 'frontend:cc:mesh', 'plain:cc:-', 'vote-bot:cc:mesh', 'voting:cc:mesh', 'web:cc:mesh',
    ]);
    expect(plan('web').proxy).to.deep.equal({
      ingress: [
        { name: 'web', port: 8080, disableTLS: false },
        { name: 'admin', port: 9901, disableTLS: true },
      ],
      ingressDisabled: false,
      egress: [
        { name: 'emoji', listenAddr: '127.137.0.1', listenPort: 8081, remoteDomain: 'emoji-svc', remotePort: 8080 },
        { name: 'voting', listenAddr: '127.137.0.2', listenPort: 8081, remoteDomain: 'voting-svc', remotePort: 8080 },
      ],
      adminPort: 9901,
    });
    expect(plan('vote-bot').proxy?.ingressDisabled).to.equal(true);
    expect(plan('emoji').proxy?.ingress).to.deep.equal([{ name: 'admin', port: 9901, disableTLS: true }]);
  });

  it('apps: an echo per containerPort for the emojivoto servers, nothing for vote-bot and the client', () => {
    expect(plan('emoji').apps).to.deep.equal([
      { name: 'emoji-svc', workload: 'echo', args: ['--port', '8080'], ready: { kind: 'tcp', port: 8080 } },
      { name: 'emoji-svc-1', workload: 'echo', args: ['--port', '8801'], ready: { kind: 'tcp', port: 8801 } },
    ]);
    expect(plan('vote-bot').apps).to.deep.equal([]);
    expect(plan('client').apps).to.deep.equal([]);
  });

  it('unknown fields, kinds and images are UserErrors naming them', () => {
    const dep = (extra: string) => `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: "docker.io/buoyantio/emojivoto-web:v11", ports: [{containerPort: 80}]${extra}}]\n`;
    expect(userError(() => parseContrast(dep(', readinessProbe: {}'), 'x.yaml'))).to.equal("x.yaml: Deployment x: field spec.template.spec.containers[0].readinessProbe is not implemented by meshproof's contrast profile");
    expect(userError(() => parseContrast('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n', 'y.yaml'))).to.match(/kind ConfigMap is not implemented/);
    const bad = parseContrast(dep('').replace('buoyantio/emojivoto-web:v11', 'nginx:1'), 'z.yaml');
    expect(userError(() => planPods(bad))).to.match(/^z\.yaml: Deployment x: container c: image "docker\.io\/nginx:1" maps to no program/);
    const annotated = parseContrast(dep('').replace('metadata: {labels: {a: b}}', `metadata: {labels: {a: b}, annotations: {"${EGRESS_ANNOTATION}": "e#10.1.1.1:80#b:80"}}`).replace('    spec:\n', '    spec:\n      runtimeClassName: contrast-cc\n'), 'w.yaml');
    expect(userError(() => planPods(annotated))).to.match(/^w\.yaml: Deployment x: annotation contrast\.edgeless\.systems\/servicemesh-egress: entry "e#10\.1\.1\.1:80#b:80": listen address 10\.1\.1\.1 is not in local CIDR/);
  });
});

describe('model/contrast oracle: agrees with every hand-written row', () => {
  const model = loadContrast(['fixtures/contrast/emojivoto', 'fixtures/contrast/callers', 'fixtures/contrast/startup', 'fixtures/contrast/docs']);
  const plans = planPods(model, { adminInterfacePort: 9901 });

  for (const [name, rows] of [['ingress', 18], ['egress', 10], ['startup', 11]] as const) {
    it(`${name}.yaml: ${rows} rows, each the oracle's verdict`, () => {
      const t = loadContrastTable(`fixtures/contrast/truth/${name}.yaml`);
      expect(t.rows).to.have.length(rows);
      const wrong = t.rows.filter((r) => oracleFor(r, plans, model.services) !== r.verdict).map((r) => `${rowName(r)}: row ${r.verdict}, oracle ${oracleFor(r, plans, model.services)}`);
      expect(wrong).to.deep.equal([]);
    });
  }

  it('the first matching CONTRAST_IN_REDIRECT rule decides, DISABLED and the phases override everything', () => {
    const cfg = { ingress: [{ name: 'a', port: 80, disableTLS: false }, { name: 'b', port: 80, disableTLS: true }], ingressDisabled: false, egress: [] };
    expect(inboundPath(cfg, 80, 'meshed')).to.equal('envoy-tls');
    expect(inboundPath(cfg, 81, 'meshed')).to.equal('envoy-mtls');
    expect(inboundPath({ ...cfg, ingressDisabled: true }, 81, 'meshed')).to.equal('app');
    expect(inboundPath(cfg, 81, 'default-deny')).to.equal('dropped');
    expect(inboundPath(cfg, 81, 'no-rules')).to.equal('app');
    expect(expectDirect('envoy-mtls', 'tls-no-cert')).to.equal('denied:tls-handshake');
    expect(expectDirect('envoy-tls', 'tls-no-cert')).to.equal('allowed:tls');
  });

  it('an egress row whose remote is not the caller\'s entry is refused by name', () => {
    const row = { from: 'web', egress: '127.137.0.1:8081', to: 'voting-svc', port: 8080, expected: 'allowed' as const, verdict: 'allowed:mtls' as const };
    expect(userError(() => oracleFor(row, plans, model.services))).to.match(/web's egress entry emoji on 127\.137\.0\.1:8081 goes to emoji-svc:8080, not voting-svc:8080/);
  });
});

describe('profiles/contrast truth: the loader refuses a malformed table by name', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mp-contrast-truth-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const load = (body: string): string => {
    const f = join(dir, 't.yaml');
    writeFileSync(f, `scenario: s\nsource: Contrast's iptables.go\n${body}`);
    return userError(() => loadContrastTable(f));
  };
  const row = (extra: string) => `rows:\n  - { from: client, to: emoji-svc, port: 8080, ${extra} }\n`;

  it('each problem in one line naming the row', () => {
    expect(load(row('expected: denied, verdict: "denied:nope"'))).to.match(/rows\[0\]\.verdict "denied:nope" is not a verdict$/);
    expect(load(row('expected: allowed, verdict: "denied:reset"'))).to.match(/rows\[0\]: expected allowed contradicts verdict denied:reset$/);
    expect(load(row('caller: root, expected: denied, verdict: "denied:reset"'))).to.match(/rows\[0\]\.caller "root" must be one of plaintext\|tls-no-cert\|mesh-cert\|other-ca$/);
    expect(load(row('egress: "127.0.0.2:81", caller: mesh-cert, expected: denied, verdict: "denied:refused"'))).to.match(/an egress row's app speaks plaintext/);
    expect(load(row('egress: "10.0.0.2:81", expected: denied, verdict: "denied:refused"'))).to.match(/rows\[0\]\.egress "10\.0\.0\.2:81" must be <127\.x\.y\.z>:<port>$/);
    expect(load(`steps: [a]\n${row('step: b, expected: denied, verdict: "denied:reset"')}`)).to.match(/rows\[0\]\.step "b" must be one of a$/);
    expect(load(`${row('expected: denied, verdict: "denied:reset"')}  - { from: client, to: emoji-svc, port: 8080, expected: denied, verdict: "denied:reset" }\n`)).to.match(/rows\[1\] \(client → emoji-svc:8080\) repeats rows\[0\]$/);
    writeFileSync(join(dir, 'n.yaml'), `scenario: s\n${row('expected: denied, verdict: "denied:reset"')}`);
    expect(userError(() => loadContrastTable(join(dir, 'n.yaml')))).to.match(/'source' is required/);
  });
});
