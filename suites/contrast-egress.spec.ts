// contrast-egress: Contrast's egress is opt-in. The app dialling its 127.x address reaches the remote over mTLS (its
// own Envoy presents the pod's mesh certificate, the remote's Envoy verifies it, nothing in clear on the pod link); the
// same app dialling the remote's Service directly goes out in plaintext, the RFC's "not secure by default": its own
// Envoy never sees the call (no OUTPUT capture), a mesh port refuses it and an exempt one answers it. Contrast's e2e:
// from web, TLS trusting only mesh-ca.pem to emoji:8801 fails and with web's certificate succeeds, end to end, so
// outbound connections of a meshed pod are not intercepted. Rows: fixtures/contrast/truth/egress.yaml (and the oracle).
import { expect } from 'chai';
import type { ContrastMesh } from '../src/harness/profiles/contrast/index.ts';
import { assertRows, CALLERS, EMOJIVOTO, find, probeRows, startContrast, table, type Outcome } from './lib/contrast.ts';

const SUITE = 'contrast-egress';

describe(`${SUITE}: 127.x listeners originate mTLS; anything else leaves as the app wrote it (real Envoy)`, function () {
  this.timeout(90_000);
  const t = table('egress');
  let mesh: ContrastMesh | undefined;
  let outcomes: Outcome[] = [];

  before(async () => {
    mesh = await startContrast([EMOJIVOTO, CALLERS]);
    outcomes = await probeRows(mesh, t, t.rows, SUITE);
  });
  after(async () => mesh?.down());

  it('every row has the hand-written verdict, the oracle\'s and the pinned wire finding', () => {
    // egress.yaml: 3 egress-address rows, 3 direct plaintext rows, 2 e2e rows, 2 rows without an egress entry
    assertRows(outcomes, 10);
  });

  it('the app dialling its 127.x address: one upstream connection from its own Envoy, one verified certificate at the remote, no plaintext on the pod link', () => {
    const rows = find(outcomes, (r) => r.egress !== undefined && r.expected === 'allowed', 'egress allowed');
    expect(rows.map((o) => `${o.row.from} ${o.row.egress} → ${o.row.to} (${o.result.evidence.listener})`)).to.deep.equal([
      'web 127.137.0.1:8081 → emoji-svc (ingress)',
      'web 127.137.0.2:8081 → voting-svc (ingress)',
      'vote-bot 127.137.0.3:8081 → web-svc (ingressWithoutClientAuth)',
    ]);
    for (const o of rows) {
      expect(o.result.evidence.callerEgressCx, rowOf(o)).to.equal(1);
      expect([o.result.evidence.serverHandshakes, o.result.evidence.serverNoCertificate], rowOf(o)).to.deep.equal([1, 0]);
      expect(o.result.evidence.servedBy, rowOf(o)).to.equal(o.target.plan.deployment.name);
      expect(o.result.evidence.plaintextLegs ?? [], rowOf(o)).to.deep.equal([]);
    }
  });

  it('"not secure by default": dialled directly, the Service gets the app\'s bytes in clear and the app\'s own Envoy never sees them', () => {
    const rows = find(outcomes, (r) => r.egress === undefined && (r.caller ?? 'plaintext') === 'plaintext', 'direct plaintext');
    expect(rows.map((o) => `${o.row.from} → ${o.row.to}:${o.row.port} ${o.result.verdict}`)).to.deep.equal([
      'web → emoji-svc:8080 denied:reset',
      'vote-bot → web-svc:443 denied:reset',
      'vote-bot → emoji:9901 allowed:plaintext',
    ]);
    for (const o of rows) {
      expect(o.result.evidence.callerEgressCx, rowOf(o)).to.equal(0);
      expect((o.result.evidence.plaintextLegs ?? []).some((l) => l.startsWith(`${o.fromIp}→`)), rowOf(o)).to.equal(true);
    }
  });

  it('the e2e\'s curl from web to emoji:8801: mesh-ca.pem alone fails (certificate_required), with web\'s certificate it succeeds, end to end', () => {
    const rows = find(outcomes, (r) => r.from === 'web' && r.port === 8801, 'web → emoji-svc:8801');
    expect(rows.map((o) => `${o.row.caller} ${o.result.verdict}`)).to.deep.equal(['tls-no-cert denied:tls-handshake', 'mesh-cert allowed:mtls']);
    expect(rows[0]!.result.evidence.error).to.equal('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    // the TLS the app originated is the TLS emoji's Envoy terminated: web's Envoy had no part in it
    for (const o of rows) expect(o.result.evidence.callerEgressCx, rowOf(o)).to.equal(0);
    expect([rows[1]!.result.evidence.serverHandshakes, rows[1]!.result.evidence.serverNoCertificate]).to.deep.equal([1, 0]);
    expect(rows[1]!.result.evidence.serverIdentity).to.equal('emoji');
  });

  it('without an egress entry nothing listens on the 127.x address: refused at once', () => {
    const rows = find(outcomes, (r) => r.verdict === 'denied:refused', 'refused');
    expect(rows.map((o) => o.row.from), 'client (no sidecar), emoji (a sidecar without egress entries)').to.deep.equal(['client', 'emoji']);
    for (const o of rows) expect(o.result.evidence.error, rowOf(o)).to.equal('ECONNREFUSED');
  });
});

function rowOf(o: Outcome): string {
  return `${o.row.from} → ${o.row.to}:${o.row.port} ${JSON.stringify(o.result.evidence)}`;
}
