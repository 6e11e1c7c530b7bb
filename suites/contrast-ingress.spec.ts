// contrast-ingress: Contrast's ingress on the emojivoto reference deployment (and the docs' frontend example), with
// the rules and Envoy config rendered as service-mesh/iptables.go and config.go do, on real TPROXY and a real Envoy.
// Every port is mTLS on 15006 unless an entry says otherwise: a plaintext caller is ended by Envoy, a caller without a
// client certificate or with another CA's is refused in the handshake, a mesh certificate gets mTLS; a
// `<name>#<port>#false` port takes TLS without a client certificate on 15007; a `true` port and the admin port are
// plaintext and reachable; DISABLED (vote-bot) sets no rules at all; a connection to 15006 itself is blackholed.
// The wire canary pins which legs carried plaintext. Rows: fixtures/contrast/truth/ingress.yaml (and the oracle).
import { expect } from 'chai';
import type { ContrastMesh } from '../src/harness/profiles/contrast/index.ts';
import { assertRows, CALLERS, EMOJIVOTO, find, probeRows, startContrast, table, type Outcome } from './lib/contrast.ts';

const SUITE = 'contrast-ingress';
const BLACKHOLE = /^cluster\.BlackHoleCluster\.upstream_cx_none_healthy$/;

describe(`${SUITE}: TPROXY to Envoy's 15006/15007 with per-port exemptions (real Envoy, real kernel rules)`, function () {
  this.timeout(90_000);
  const t = table('ingress');
  let mesh: ContrastMesh | undefined;
  let outcomes: Outcome[] = [];
  let blackholed = 0;
  const mangle: Record<string, string> = {};

  before(async () => {
    mesh = await startContrast([EMOJIVOTO, CALLERS, 'fixtures/contrast/docs']);
    const before = await mesh.stat('emoji', BLACKHOLE);
    outcomes = await probeRows(mesh, t, t.rows, SUITE);
    blackholed = (await mesh.stat('emoji', BLACKHOLE)) - before;
    for (const pod of ['emoji', 'web', 'vote-bot']) mangle[pod] = (await mesh.cluster.exec(pod, ['iptables', '-t', 'mangle', '-S'])).stdout;
  });
  after(async () => mesh?.down());

  it('every row has the hand-written verdict, the oracle\'s and the pinned wire finding', () => {
    // ingress.yaml: 7 emoji, 2 voting, 5 web, 1 vote-bot, 3 frontend rows
    assertRows(outcomes, 18);
  });

  it('a plaintext caller to an mTLS port is ended by Envoy at once, and its request crossed the pod link in clear', () => {
    const rows = find(outcomes, (r) => (r.caller ?? 'plaintext') === 'plaintext' && r.verdict === 'denied:reset' && r.wire !== undefined, 'plaintext → reset');
    expect(rows, 'emoji 8080, emoji 8801, voting 8801, web 443').to.have.length(4);
    for (const o of rows) {
      expect(o.result.evidence.error, rowOf(o)).to.equal('EMPTY_REPLY');
      expect(o.result.evidence.ms, rowOf(o)).to.be.below(500);
      expect(o.result.evidence.plaintextLegs, rowOf(o)).to.include(`${o.fromIp}→${o.targetIp}:${o.target.targetPort}`);
    }
  });

  it('no client certificate on 15006 is TLS 1.3\'s certificate_required; another CA\'s certificate is unknown_ca on 15006 and 15007', () => {
    const noCert = find(outcomes, (r) => r.caller === 'tls-no-cert' && r.verdict === 'denied:tls-handshake' && r.to === 'emoji-svc', 'no cert → emoji');
    expect(noCert).to.have.length(1);
    expect(noCert[0]!.result.evidence.error).to.equal('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const other = find(outcomes, (r) => r.caller === 'other-ca', 'other CA');
    expect(other.map((o) => o.row.to), 'emoji-svc (15006), web-svc (15007)').to.deep.equal(['emoji-svc', 'web-svc']);
    for (const o of other) expect(o.result.evidence.error, rowOf(o)).to.equal('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
  });

  it('a mesh certificate gets mTLS: the target\'s Envoy verified it (one handshake, with a certificate) and the app was reached from its own pod address', () => {
    const rows = find(outcomes, (r) => r.caller === 'mesh-cert', 'mesh-cert');
    expect(rows.map((o) => `${o.row.from}→${o.row.to}:${o.result.evidence.listener}`), 'ingress.yaml: three mesh-cert rows').to.deep.equal([
      'web→emoji-svc:ingress',
      'web→voting-svc:ingress',
      'emoji→web-svc:ingressWithoutClientAuth',
    ]);
    for (const o of rows) {
      expect(o.result.verdict, rowOf(o)).to.equal('allowed:mtls');
      expect([o.result.evidence.serverHandshakes, o.result.evidence.serverNoCertificate], rowOf(o)).to.deep.equal([1, 0]);
      expect(o.result.evidence.servedBy, rowOf(o)).to.equal(o.target.plan.deployment.name);
      // Envoy dials the original destination from inside the pod: no source spoofing [I], now observed
      expect(o.result.evidence.appSawFrom, rowOf(o)).to.equal(o.targetIp);
    }
  });

  it('a `false` port takes TLS without a client certificate on 15007 (counted there as no_certificate)', () => {
    const rows = find(outcomes, (r) => r.verdict === 'allowed:tls', 'allowed:tls');
    expect(rows.map((o) => o.row.to), 'web-svc:443 (web#8080#false), frontend:8080 (web#8080#false)').to.deep.equal(['web-svc', 'frontend']);
    for (const o of rows) {
      expect(o.result.evidence.listener, rowOf(o)).to.equal('ingressWithoutClientAuth');
      expect([o.result.evidence.serverHandshakes, o.result.evidence.serverNoCertificate], rowOf(o)).to.deep.equal([1, 1]);
      expect(o.result.evidence.serverIdentity, rowOf(o)).to.equal(o.target.plan.deployment.name);
      expect(o.result.evidence.appSawFrom, rowOf(o)).to.equal(o.targetIp);
    }
  });

  it('`true` and admin ports are not redirected: plaintext, answered, seen from the caller\'s own address', () => {
    const rows = find(outcomes, (r) => r.verdict === 'allowed:plaintext', 'allowed:plaintext');
    expect(rows.map((o) => `${o.row.to}:${o.row.port}`), 'the admin ports of emoji, web, vote-bot and frontend\'s metrics#7890#true').to.deep.equal(['emoji:9901', 'web:9901', 'vote-bot:9901', 'frontend:7890']);
    for (const o of rows) {
      expect(o.result.evidence.plaintextLegs, rowOf(o)).to.include(`${o.fromIp}→${o.targetIp}:${o.row.port}`);
      if (o.row.path === '/stats/prometheus') expect(o.result.evidence.body, rowOf(o)).to.match(/^# TYPE envoy_/m);
      else expect(o.result.evidence.appSawFrom, rowOf(o)).to.equal(o.fromIp);
    }
    const tlsToPlain = find(outcomes, (r) => r.to === 'frontend' && r.port === 7890 && r.caller === 'tls-no-cert', 'TLS to 7890');
    expect(tlsToPlain[0]!.result.evidence.error, 'the app on a true port speaks no TLS').to.match(/^ERR_SSL_WRONG_VERSION_NUMBER$|^EPROTO$/);
  });

  it('the loop guard: a connection whose original destination is 15006 itself goes to BlackHoleCluster', () => {
    const o = find(outcomes, (r) => r.port === 15006, ':15006')[0]!;
    expect(o.result.verdict).to.equal('denied:reset');
    expect(blackholed, 'emoji\'s BlackHoleCluster upstream_cx_none_healthy').to.equal(1);
  });

  it('the kernel holds each pod\'s rules: DISABLED (vote-bot) none; emoji only the admin exemption; web 8080 to 15007', () => {
    expect(mangle['vote-bot']).to.not.include('CONTRAST');
    expect(mangle.emoji!.split('\n').filter((l) => l.startsWith('-A CONTRAST_IN_REDIRECT'))).to.deep.equal([
      '-A CONTRAST_IN_REDIRECT -p tcp -m tcp --dport 9901 -j RETURN',
      '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
    ]);
    expect(mangle.web!.split('\n').filter((l) => l.startsWith('-A CONTRAST_IN_REDIRECT'))).to.deep.equal([
      '-A CONTRAST_IN_REDIRECT -p tcp -m tcp --dport 8080 -j TPROXY --on-port 15007 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
      '-A CONTRAST_IN_REDIRECT -p tcp -m tcp --dport 9901 -j RETURN',
      '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
    ]);
  });
});

function rowOf(o: Outcome): string {
  return `${o.row.from}/${o.row.caller ?? 'plaintext'} → ${o.row.to}:${o.row.port} ${JSON.stringify(o.result.evidence)}`;
}
