// The istio-protocols table (fixtures/istio/truth/protocols.yaml, hand-written from reachability_test.go,
// routing.go's serverFirstTestCases and the protocol-selection docs) against the oracle, Istio protocol selection
// of its ports, the loader's checks of the `call` field, and which program each of b's ports runs.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { programsOf } from '../src/harness/kube/pods.ts';
import { scenarioModel } from '../src/harness/matrix/istio.ts';
import { buildPlans, cellFor, findService, toTopology } from '../src/harness/profiles/istio/policy.ts';
import { expectProtocolCell, protocolSelection } from '../src/harness/profiles/istio/protocol-oracle.ts';
import { loadTruthTable, loadTruthTables, rowName } from '../src/harness/profiles/istio/truth.ts';
import { userError } from './lib/user-error.ts';

const FILE = 'fixtures/istio/truth/protocols.yaml';

describe('istio-protocols table × the oracle', () => {
  const tables = loadTruthTables(FILE);

  it('has the hand-counted 6 STRICT and 10 PERMISSIVE rows, each scenario citing its sources', () => {
    expect(tables.map((t) => [t.scenario, t.rows.length])).to.deep.equal([
      ['protocols under global mtls strict', 6],
      ['protocols under global mtls permissive', 10],
    ]);
    for (const t of tables) expect(t.source).to.match(/^R; E; C; A; F; D; I; R 'global mtls/);
  });

  for (const t of tables) {
    it(`the oracle agrees with every row of "${t.scenario}"`, () => {
      const m = scenarioModel(t);
      const wrong = t.rows.flatMap((r) => {
        const port = findService(m, r.to).ports.find((p) => p.port === r.port)!;
        const got = expectProtocolCell({ ...cellFor(m, r.from, { service: r.to, port: r.port }), call: r.call!, port: protocolSelection(port) });
        return got.verdict === r.verdict && got.observed === r.expected ? [] : [`${rowName(r)}: table ${r.verdict}, oracle ${got.verdict}`];
      });
      expect(wrong).to.deep.equal([]);
    });
  }

  it("every row's protocol is Istio's protocol selection of b's Service port", () => {
    const m = scenarioModel(tables[1]!);
    const b = findService(m, 'b');
    for (const r of tables.flatMap((t) => t.rows)) expect(protocolSelection(b.ports.find((p) => p.port === r.port)!), rowName(r)).to.equal(r.protocol);
  });
});

describe('istio protocol selection and the protocol oracle', () => {
  const cell = { fromSidecar: true, toSidecar: true, serverMode: 'PERMISSIVE' as const, clientTls: 'ISTIO_MUTUAL' as const };

  it('appProtocol, then the name prefix, then the ports the docs treat as TCP; anything else is auto', () => {
    expect(protocolSelection({ name: 'grpc-echo', port: 1, targetPort: 1 })).to.equal('http');
    expect(protocolSelection({ name: 'http2', port: 1, targetPort: 1 })).to.equal('http');
    expect(protocolSelection({ name: 'tcp-server', port: 1, targetPort: 1 })).to.equal('tcp');
    expect(protocolSelection({ name: 'auto-tcp-server', port: 1, targetPort: 1 })).to.equal('auto');
    expect(protocolSelection({ name: 'auto-tcp-server', appProtocol: 'tcp', port: 1, targetPort: 1 })).to.equal('tcp');
    expect(protocolSelection({ name: 'http', appProtocol: 'mysql', port: 1, targetPort: 1 })).to.equal('tcp');
    expect(protocolSelection({ port: 3306, targetPort: 3306 })).to.equal('tcp');
    expect(protocolSelection({ port: 3307, targetPort: 3307 })).to.equal('auto');
  });

  it('routing.go serverFirstTestCases: a declared tcp port under DISABLE has no sniffer; plaintext into STRICT waits as into PERMISSIVE', () => {
    const plain = { ...cell, clientTls: 'DISABLE' as const, call: 'tcp-server-first' as const, port: 'tcp' as const };
    expect(expectProtocolCell({ ...plain, serverMode: 'DISABLE' }).verdict).to.equal('allowed:plaintext');
    expect(expectProtocolCell({ ...plain, serverMode: 'DISABLE', port: 'auto' }).verdict).to.equal('denied:timeout');
    expect(expectProtocolCell({ ...plain, serverMode: 'STRICT' }).verdict).to.equal('denied:timeout');
    expect(expectProtocolCell({ ...cell, call: 'tcp-server-first', port: 'tcp', serverMode: 'STRICT' }).verdict).to.equal('allowed:mtls');
  });

  it('h2c, gRPC and WebSocket follow the HTTP cells (a client sidecar answers a failed upstream with 503); on a tcp port they are not modelled', () => {
    expect(expectProtocolCell({ ...cell, toSidecar: false, call: 'grpc', port: 'http' }).verdict).to.equal('denied:http-503');
    expect(expectProtocolCell({ ...cell, fromSidecar: false, serverMode: 'STRICT', call: 'websocket', port: 'http' }).verdict).to.equal('denied:reset');
    expect(() => expectProtocolCell({ ...cell, call: 'h2c', port: 'tcp' })).to.throw(/not modelled/);
  });
});

describe('istio-protocols fixture', () => {
  const m = scenarioModel(loadTruthTables(FILE)[1]!);

  it("b's ports run the HTTP echo (h2c, gRPC, WebSocket) and the server-first TCP echo, by their names", () => {
    const b = toTopology(m).pods.find((p) => p.name === 'b')!;
    expect((b.containers ?? []).map((c) => [c.workload, c.args])).to.deep.equal([
      ['echo', ['--port', '18080']],
      ['echo', ['--port', '17070']],
      ['echo', ['--port', '18085']],
      ['tcp-listener', ['--port', '16060', '--id', 'b', '--server-first', '16060']],
      ['tcp-listener', ['--port', '16061', '--id', 'b', '--server-first', '16061']],
    ]);
  });

  it("the sidecar plans carry each of b's ports as istiod selects it: http2 for grpc and http2, auto for auto-tcp-server", () => {
    const io = {
      podIp: () => '10.0.0.9',
      serviceVip: () => '10.1.0.9',
      certs: () => ({ cert: 'c', key: 'k', ca: 'ca' }),
      credential: () => ({ cert: 'c', key: 'k', cacert: 'ca' }),
    };
    const plans = buildPlans(m, io);
    // hand-written from b.yaml's Service (name → port → targetPort) and protocol.Parse / IsHTTP2
    expect(plans.find((p) => p.pod === 'b')!.inbound.map((p) => [p.port, p.protocol, p.http2 ?? false])).to.deep.equal([
      [16060, 'tcp', false],
      [16061, 'auto', false],
      [17070, 'http', true],
      [18080, 'http', false],
      [18085, 'http', true],
    ]);
    expect(plans.find((p) => p.pod === 'sleep')!.outbound.filter((s) => s.fqdn.startsWith('b.')).map((s) => [s.port, s.protocol, s.http2 ?? false])).to.deep.equal([
      [80, 'http', false],
      [7070, 'http', true],
      [85, 'http', true],
      [9091, 'tcp', false],
      [9093, 'auto', false],
    ]);
  });

  it("the kube layer's image map runs the same programs for the Deployment's container", () => {
    const c: V1Container = { name: 'app', image: 'gcr.io/istio-testing/app:latest', ports: [{ containerPort: 19090, name: 'tcp' }, { containerPort: 16060, name: 'tcp-server' }, { containerPort: 18085, name: 'http2' }] };
    const progs = programsOf(c, {}, { pilotAgent: '/pa', pilotDiscovery: '/pd', envoy: '/e' }, 'b');
    expect(progs.map((p) => (p.kind === 'workload' ? [p.workload, p.args, p.what] : [p.kind]))).to.deep.equal([
      ['tcp-listener', ['--port', '19090', '--id', 'b'], 'tcp echo :19090'],
      ['tcp-listener', ['--port', '16060', '--id', 'b', '--server-first', '16060'], 'server-first tcp echo :16060'],
      ['echo', ['--port', '18085'], 'echo :18085'],
    ]);
  });
});

describe('istio truth tables: the call field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp-protocols-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (rows: string): string => {
    const f = join(dir, 't.yaml');
    writeFileSync(f, `scenario: s\napply: []\ninject: []\nrows:\n${rows}`);
    return f;
  };

  it('rejects an unknown call, a call from a TLS client, and protocol auto without a server-first call, naming the row', () => {
    expect(userError(() => loadTruthTable(write('  - { from: a, to: b, port: 1, call: h3, expected: allowed, verdict: "allowed:mtls" }\n')))).to.match(/rows\[0\]\.call "h3" must be one of h2c\|grpc\|websocket\|tcp-server-first/);
    expect(userError(() => loadTruthTable(write('  - { from: a, to: b, port: 1, call: grpc, client: other-ca, expected: denied, verdict: "denied:tls-handshake" }\n')))).to.match(/rows\[0\]: a call is the pod's own app/);
    expect(userError(() => loadTruthTable(write('  - { from: a, to: b, port: 1, protocol: auto, expected: allowed, verdict: "allowed:plaintext" }\n')))).to.match(/rows\[0\]: protocol auto is probed with call tcp-server-first only/);
  });

  it('a file of scenarios needs a non-empty scenarios list', () => {
    const f = join(dir, 'many.yaml');
    writeFileSync(f, 'source: x\nscenarios: []\n');
    expect(userError(() => loadTruthTables(f))).to.match(/scenarios/);
  });
});
