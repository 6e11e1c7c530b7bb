// The istio-reachability tables (fixtures/istio/truth/reachability, hand-written from Istio's
// reachability_test.go, checkers.go, mtls_checker.go and the authn-policy task) against the oracle,
// the loader's checks of the row fields they add, and the model facts the matrix depends on.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scenarioModel } from '../src/harness/matrix/istio.ts';
import { expectIstio } from '../src/harness/profiles/istio/oracle.ts';
import { buildPlans, cellFor, toTopology, type PlanInputs } from '../src/harness/profiles/istio/policy.ts';
import { loadTruthTable, rowName } from '../src/harness/profiles/istio/truth.ts';
import { userError } from './lib/user-error.ts';

const DIR = 'fixtures/istio/truth/reachability';
// hand-counted: six cases of reachability_test.go, 4 callers × 2 servers × 2 protocols each
const TABLES = ['global-mtls-strict', 'global-mtls-permissive', 'global-plaintext-to-mtls-permissive', 'global-automtls-strict', 'mtls-port-override', 'migration'];
const CELLS = 16;

describe('istio-reachability tables × the oracle', () => {
  for (const name of TABLES) {
    it(`the oracle agrees with all ${CELLS} rows of ${name}`, () => {
      const t = loadTruthTable(join(DIR, `${name}.yaml`));
      expect(t.rows).to.have.length(CELLS);
      const m = scenarioModel(t);
      const wrong = t.rows.flatMap((r) => {
        const got = expectIstio(cellFor(m, r.from, { service: r.to, port: r.port, subset: r.subset }, r.client));
        return got.verdict === r.verdict && got.observed === r.expected ? [] : [`${rowName(r)}: table ${r.verdict}, oracle ${got.verdict}`];
      });
      expect(wrong, t.scenario).to.deep.equal([]);
    });
  }
});

describe('istio oracle: naked TLS callers and auto-mTLS per endpoint', () => {
  const cell = { fromSidecar: false, toSidecar: true, serverMode: 'STRICT' as const, clientTls: 'AUTO' as const };

  it('a TLS caller without a mesh certificate fails the handshake of STRICT and PERMISSIVE, of a DISABLE port (its bytes reach the app), and against plaintext', () => {
    for (const client of ['tls-no-cert', 'other-ca'] as const) {
      expect(expectIstio({ ...cell, client }).verdict).to.equal('denied:tls-handshake');
      expect(expectIstio({ ...cell, client, serverMode: 'PERMISSIVE' }).verdict).to.equal('denied:tls-handshake');
      expect(expectIstio({ ...cell, client, serverMode: 'DISABLE' }).verdict).to.equal('denied:tls-handshake');
      expect(expectIstio({ ...cell, client, toSidecar: false }).verdict).to.equal('denied:tls-handshake');
    }
  });

  it('a TLS caller from a pod with a sidecar is not modelled', () => {
    expect(() => expectIstio({ ...cell, fromSidecar: true, client: 'other-ca' })).to.throw(/not modelled/);
  });

  it('mtls_checker.go: auto-mTLS sends plaintext to a workload port whose own policy is DISABLE', () => {
    expect(expectIstio({ ...cell, fromSidecar: true, serverMode: 'DISABLE', inferredServiceMode: 'STRICT' }).verdict).to.equal('allowed:plaintext');
  });
});

describe('istio-reachability model', () => {
  const t = loadTruthTable(join(DIR, 'mtls-port-override.yaml'));
  const m = scenarioModel(t);
  const ips: Record<string, string> = {};
  const io: PlanInputs = {
    podIp: (k) => (ips[k] ??= `10.0.0.${Object.keys(ips).length + 2}`),
    serviceVip: (k) => ({ 'default/b': '10.1.0.1', 'default/naked': '10.1.0.2', 'default/migration': '10.1.0.3' })[k] ?? '',
    certs: (k) => ({ cert: `/state/${k}/cert.pem`, key: `/state/${k}/key.pem`, ca: '/state/ca.pem' }),
    credential: () => ({ cert: '', key: '', cacert: '' }),
  };

  it("auto-mTLS: b's endpoint keeps tlsMode=istio only where b's policy is not DISABLE", () => {
    const sleep = buildPlans(m, io).find((p) => p.pod === 'sleep')!;
    const b = sleep.outbound.filter((o) => o.fqdn === 'b.default.svc.cluster.local');
    expect(b.map((o) => [o.port, o.subsets[0]!.endpoints.map((e) => e.istio)])).to.deep.equal([
      [80, [false]],
      [9090, [false]],
    ]);
    const strict = scenarioModel(loadTruthTable(join(DIR, 'global-automtls-strict.yaml')));
    const b2 = buildPlans(strict, io).find((p) => p.pod === 'sleep')!.outbound.find((o) => o.fqdn === 'b.default.svc.cluster.local' && o.port === 9090)!;
    expect(b2.subsets[0]!.endpoints.map((e) => e.istio)).to.deep.equal([true]);
  });

  it('a containerPort named tcp runs the TCP echo named after its Deployment, the others the HTTP echo', () => {
    expect(toTopology(m).pods.find((p) => p.name === 'naked')!.containers).to.deep.equal([
      { name: 'app-18080', workload: 'echo', args: ['--port', '18080'], ready: { kind: 'http', port: 18080, path: '/' } },
      { name: 'app-19090', workload: 'tcp-listener', args: ['--port', '19090', '--id', 'naked'], ready: { kind: 'tcp', port: 19090 } },
    ]);
  });

  it('a TLS caller must be a pod without a sidecar', () => {
    expect(userError(() => cellFor(m, 'sleep', { service: 'b', port: 80 }, 'tls-no-cert'))).to.equal(
      'sleep has a sidecar: a tls-no-cert caller is a pod without one originating TLS itself (choose a Deployment with sidecar.istio.io/inject: "false")',
    );
  });
});

describe('istio truth tables: the reachability row fields', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'mp-truth-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (rows: string, head = 'scenario: s\n'): string => {
    const f = join(dir, 't.yaml');
    writeFileSync(f, `${head}rows:\n${rows}`);
    return userError(() => loadTruthTable(f));
  };
  const row = (extra: string) => `  - { from: a, to: b, port: 80, expected: allowed, verdict: "allowed:mtls"${extra} }\n`;

  it('rejects an unknown protocol, client or wire, and a repeated row, naming the row', () => {
    expect(load(row(', protocol: udp'))).to.equal(`${join(dir, 't.yaml')}: rows[0].protocol "udp" must be one of http|tcp|auto`);
    expect(load(row(', client: mtls'))).to.equal(`${join(dir, 't.yaml')}: rows[0].client "mtls" must be one of plaintext|tls-no-cert|other-ca`);
    expect(load(row(', wire: clear'))).to.equal(`${join(dir, 't.yaml')}: rows[0].wire "clear" must be one of plaintext-seen|no-plaintext`);
    expect(load(row('') + row(', client: plaintext'))).to.equal(`${join(dir, 't.yaml')}: rows[1] (a → b:80) repeats rows[0]`);
    expect(load(row(''), 'scenario: s\nfixture: [a]\n')).to.equal(`${join(dir, 't.yaml')}: 'fixture' must be a directory path`);
  });

  it('keeps the fields and the fixture directory', () => {
    const t = loadTruthTable(join(DIR, 'migration.yaml'));
    expect(t.fixture).to.equal('fixtures/istio/reachability');
    expect(t.rows[9]).to.deep.equal({ from: 'sleep-naked', client: 'tls-no-cert', to: 'migration', subset: 'vistio', port: 9090, protocol: 'tcp', expected: 'denied', verdict: 'denied:tls-handshake', wire: 'no-plaintext' });
  });
});
