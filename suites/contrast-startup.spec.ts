// contrast-startup: Contrast's startup enforcement. The podVM's deny-incoming-traffic rule is in place before any
// container; the sidecar removes it only after its TPROXY rules are in (service-mesh/main.go), the initializer for a
// pod without mesh annotations. emoji's sidecar and plain's initializer are held back while their apps already listen
// (Contrast does not enforce container order): a call then is dropped without an answer (denied:timeout), and flows
// once the sidecar is ready (mTLS; plaintext reset). With the deny step removed (defaultDeny: false) the same early
// call reaches the app in plaintext, on the wire. Rows: fixtures/contrast/truth/startup.yaml (and the oracle).
import { expect } from 'chai';
import type { ContrastMesh } from '../src/harness/profiles/contrast/index.ts';
import { assertRows, CALLERS, CONTRAST_TIMEOUT_MS, EMOJIVOTO, find, probeRows, startContrast, table, type Outcome } from './lib/contrast.ts';

const SUITE = 'contrast-startup';
const t = table('startup');

/** What the kernel held in emoji's namespace at a step: its INPUT and mangle rules. */
interface Kernel {
  input: string[];
  mangle: string[];
}

/** One cluster: emoji's and plain's apps up, their sidecar/initializer held; the two steps probed in turn. */
function scenario(prefix: 'deny' | 'no-deny'): { outcomes: Outcome[]; kernel: Record<string, Kernel> } {
  const state = { outcomes: [] as Outcome[], kernel: {} as Record<string, Kernel> };
  let mesh: ContrastMesh | undefined;
  const kernel = async (): Promise<Kernel> => {
    const list = async (args: string[]) => (await mesh!.cluster.exec('emoji', ['iptables', ...args])).stdout.trim().split('\n').filter((l) => l.startsWith('-A '));
    return { input: await list(['-S', 'INPUT']), mangle: await list(['-t', 'mangle', '-S']) };
  };
  before(async () => {
    mesh = await startContrast([EMOJIVOTO, CALLERS, 'fixtures/contrast/startup'], { hold: ['emoji', 'plain'], defaultDeny: prefix === 'deny' });
    await mesh.startApps('emoji');
    await mesh.startApps('plain');
    for (const step of ['before-sidecar', 'sidecar-ready'] as const) {
      if (step === 'sidecar-ready') {
        await mesh.runInitializer('emoji');
        await mesh.startServiceMesh('emoji');
        await mesh.runInitializer('plain');
      }
      state.kernel[step] = await kernel();
      const rows = t.rows.filter((r) => r.step === `${prefix}/${step}`);
      state.outcomes.push(...(await probeRows(mesh, t, rows, SUITE, `${t.scenario}: ${prefix}/${step}`)));
    }
  });
  after(async () => mesh?.down());
  return state;
}

describe(`${SUITE}: the default deny holds until the sidecar's rules are in (real kernel rules, real Envoy)`, function () {
  this.timeout(90_000);
  const s = scenario('deny');

  it('every row has the hand-written verdict, the oracle\'s, the pinned wire finding and the kernel\'s phase', () => {
    // startup.yaml: 3 rows before the sidecar, 3 after
    assertRows(s.outcomes, 6);
  });

  it('before the sidecar a call is dropped in silence: no answer within the whole budget, no byte of the request on the wire', () => {
    const rows = find(s.outcomes, (r) => r.step === 'deny/before-sidecar', 'deny/before-sidecar');
    expect(rows.map((o) => `${o.row.from}/${o.row.caller} → ${o.row.to}`)).to.deep.equal(['client/plaintext → emoji-svc', 'web/mesh-cert → emoji-svc', 'client/plaintext → plain-svc']);
    for (const o of rows) {
      expect(o.result.evidence.error).to.equal('ETIMEDOUT');
      expect(o.result.evidence.ms).to.be.at.least(CONTRAST_TIMEOUT_MS - 50);
      expect(o.result.evidence.plaintextLegs ?? []).to.deep.equal([]);
    }
  });

  it('the kernel shows the order: the deny rule alone before; after, the CONTRAST chains and no deny rule', () => {
    expect(s.kernel['before-sidecar']).to.deep.equal({ input: ['-A INPUT -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP'], mangle: [] });
    expect(s.kernel['sidecar-ready']!.input).to.deep.equal([]);
    expect(s.kernel['sidecar-ready']!.mangle.at(-1)).to.equal('-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0');
  });

  it('once the sidecar is ready the same calls flow: mTLS for the mesh certificate (verified by emoji\'s Envoy), plaintext reset', () => {
    const rows = find(s.outcomes, (r) => r.step === 'deny/sidecar-ready' && r.to === 'emoji-svc', 'deny/sidecar-ready emoji');
    expect(rows.map((o) => `${o.row.caller} ${o.result.verdict}`)).to.deep.equal(['plaintext denied:reset', 'mesh-cert allowed:mtls']);
    expect([rows[1]!.result.evidence.serverHandshakes, rows[1]!.result.evidence.serverNoCertificate]).to.deep.equal([1, 0]);
    expect(rows[1]!.result.evidence.servedBy).to.equal('emoji');
  });

  it('the initializer frees a pod without mesh annotations: plain answers in plaintext after it ran', () => {
    const o = find(s.outcomes, (r) => r.step === 'deny/sidecar-ready' && r.to === 'plain-svc', 'plain after')[0]!;
    expect(o.result.verdict).to.equal('allowed:plaintext');
    expect(o.result.evidence.servedBy).to.equal('plain');
  });
});

describe(`${SUITE}: with the default-deny step removed, early traffic reaches the app in plaintext (the race)`, function () {
  this.timeout(90_000);
  const s = scenario('no-deny');

  it('every row has the hand-written verdict, the oracle\'s, the pinned wire finding and the kernel\'s phase', () => {
    // startup.yaml: 3 rows before the sidecar, 2 after
    assertRows(s.outcomes, 5);
  });

  it('before the sidecar, the plaintext call is answered by emoji\'s app itself, from the caller\'s address, in clear on the pod link', () => {
    const o = find(s.outcomes, (r) => r.step === 'no-deny/before-sidecar' && r.to === 'emoji-svc' && r.caller === 'plaintext', 'early plaintext')[0]!;
    expect(o.result.verdict).to.equal('allowed:plaintext');
    expect(o.result.evidence.servedBy).to.equal('emoji');
    expect(o.result.evidence.appSawFrom).to.equal(o.fromIp);
    expect(o.result.evidence.plaintextLegs).to.include(`${o.fromIp}→${o.targetIp}:8080`);
    expect(s.kernel['before-sidecar']).to.deep.equal({ input: [], mangle: [] });
  });

  it('a mesh caller meets an app that speaks no TLS; after the sidecar is ready it gets mTLS', () => {
    const rows = find(s.outcomes, (r) => r.to === 'emoji-svc' && r.caller === 'mesh-cert', 'mesh-cert');
    expect(rows.map((o) => `${o.row.step} ${o.result.verdict}`)).to.deep.equal(['no-deny/before-sidecar denied:tls-handshake', 'no-deny/sidecar-ready allowed:mtls']);
  });
});
