// istio-protocols: the protocols reachability_test.go's strict case adds beyond http/tcp — HTTP/2 with prior
// knowledge (http2 port), gRPC (grpc port), WebSocket (http port) — under STRICT and PERMISSIVE, from a caller with
// a sidecar and one without, into a sidecar; and a server-first TCP port (the echo writes its banner before reading)
// under PERMISSIVE with the Service port declared tcp or left to protocol detection. Every cell is pinned to the
// hand-written rows of fixtures/istio/truth/protocols.yaml (verdict, wire canary, what the wire gave: status,
// grpc-status, the banner, the caller's identity in XFCC, the server sidecar's handshake) and to the oracle.
// Every row runs on both control planes: the emulation renders what istiod 1.28.2's config_dump shows for these ports
// (HTTP/2 clusters for grpc/http2, WebSocket upgrades on every HCM, an http_inspector on a sniffed port's outbound
// listener, no protocol-detection limit).
import { expect } from 'chai';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { loadTruthTables, rowName } from '../src/harness/profiles/istio/truth.ts';
import type { ProbeEvidence } from '../src/harness/probe/types.ts';
import { SERVER_FIRST_BANNER } from '../src/harness/workloads/tcp-listener.ts';
import { deploymentOf, useMesh, useScenario } from './lib/istio.ts';

const SUITE = 'istio-protocols';
const TABLES = loadTruthTables('fixtures/istio/truth/protocols.yaml');
// hand-counted: STRICT {sleep, sleep-naked} × {h2c, grpc, websocket}; PERMISSIVE the same + {sleep, sleep-naked} × {tcp-server, auto-tcp-server}
const CELLS = [6, 10];
/** The caller with a sidecar, as the server's sidecar names it in XFCC (fixtures/istio/reachability/clients.yaml). */
const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';

describe(`${SUITE}: h2c, gRPC, WebSocket and a server-first port through sidecars (real Envoy)`, function () {
  this.timeout(300_000);
  const cases = TABLES.map((t, i) => ({ t, cells: CELLS[i]! }));
  // The one place this suite gets its mesh: the run's control plane (istiod or the emulation, controlplane/index.ts).
  const mesh = useMesh(cases[0]!.t);
  const all: RowOutcome[] = [];
  after(() => {
    const wrong = all.filter((o) => !o.record.pass).length;
    console.log(`\n    ${SUITE}: ${wrong} wrong, ${all.length - wrong} correct`);
  });

  it(`the table has ${CELLS.join(' + ')} rows in ${CELLS.length} scenarios`, () => {
    expect(TABLES.map((t) => t.rows.length)).to.deep.equal(CELLS);
  });

  for (const { t, cells } of cases) {
    describe(t.scenario, () => {
      const { of } = useScenario(mesh, t, SUITE, all, cells);

      for (const row of t.rows) {
        const title = `${rowName(row)}: ${row.verdict}${row.wire ? `, ${row.wire}` : ''}`;
        it(title, () => {
          const o = of(row);
          const ev: ProbeEvidence = o.result.evidence;
          expect(o.oracle, 'the oracle disagrees with the hand-written row').to.equal(row.verdict);
          expect(o.result.verdict, JSON.stringify(ev)).to.equal(row.verdict);
          if (row.wire) expect(ev.wire, 'the wire canary').to.equal(row.wire);
          if (row.expected === 'allowed') {
            expect(deploymentOf(mesh(), ev.servedBy), 'who answered').to.equal(row.to);
            if (row.call === 'h2c') expect(ev.status, 'the :status of the HTTP/2 answer').to.equal(200);
            if (row.call === 'grpc') expect([ev.status, ev.grpcStatus], ':status and grpc-status').to.deep.equal([200, 0]);
            if (row.call === 'websocket') expect([ev.status, ev.upgraded], '101 with the right Sec-WebSocket-Accept, the message echoed').to.deep.equal([101, true]);
            if (row.call === 'tcp-server-first') expect(ev.banner, 'the banner the server sent before the client wrote').to.equal(SERVER_FIRST_BANNER);
            if (row.verdict === 'allowed:mtls' && row.call !== 'tcp-server-first') expect(ev.peer, "the caller's identity in XFCC").to.equal(SLEEP_ID);
            if (row.verdict === 'allowed:plaintext') expect(ev.xfcc, 'no XFCC: no sidecar authenticated a caller').to.equal(null);
          }
          if (row.verdict === 'allowed:mtls' && row.call === 'tcp-server-first') {
            expect((o.result.evidence as { serverHandshakes?: number }).serverHandshakes, "handshakes of the server's sidecar during the call").to.equal(1);
          }
          if (row.verdict === 'denied:timeout') expect(ev.banner ?? null, 'no banner reached the caller').to.equal(null);
          expect(o.record.pass, 'the recorded cell').to.equal(true);
        });
      }
    });
  }
});
