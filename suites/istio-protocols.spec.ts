// istio-protocols: the protocols reachability_test.go's strict case adds beyond http/tcp — HTTP/2 with prior
// knowledge (http2 port), gRPC (grpc port), WebSocket (http port) — under STRICT and PERMISSIVE, from a caller with
// a sidecar and one without, into a sidecar; and a server-first TCP port (the echo writes its banner before reading)
// under PERMISSIVE with the Service port declared tcp or left to protocol detection. Every cell is pinned to the
// hand-written rows of fixtures/istio/truth/protocols.yaml (verdict, wire canary, what the wire gave: status,
// grpc-status, the banner, the caller's identity in XFCC, the server sidecar's handshake) and to the oracle.
// On the emulation the rows it cannot render as istiod does are skipped with the reason, in the test title and in
// results.json `skipped`; nothing is passed for them.
import { expect } from 'chai';
import { controlPlaneOfRun } from '../src/harness/controlplane/index.ts';
import { runTable, scenarioModel, type RowOutcome } from '../src/harness/matrix/istio.ts';
import { loadTruthTables, rowName, type TruthRow, type TruthTable } from '../src/harness/profiles/istio/truth.ts';
import { cyclonusTable } from '../src/harness/report/cyclonus.ts';
import { appendBudgets, appendResults } from '../src/harness/report/results.ts';
import type { SkippedTest } from '../src/harness/report/meta.ts';
import type { ProbeEvidence } from '../src/harness/probe/types.ts';
import { SERVER_FIRST_BANNER } from '../src/harness/workloads/tcp-listener.ts';
import { deploymentOf, useMesh } from './lib/istio.ts';

const SUITE = 'istio-protocols';
const TABLES = loadTruthTables('fixtures/istio/truth/protocols.yaml');
// hand-counted: STRICT {sleep, sleep-naked} × {h2c, grpc, websocket}; PERMISSIVE the same + {sleep, sleep-naked} × {tcp-server, auto-tcp-server}
const CELLS = [6, 10];
/** The caller with a sidecar, as the server's sidecar names it in XFCC (fixtures/istio/reachability/clients.yaml). */
const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';

/**
 * What meshproof's emulation (dataplane/envoy/sidecar.ts) renders differently from istiod 1.28.2 for these rows,
 * so that the emulated run cannot say what Istio does: those rows are skipped on it, with this reason.
 */
function emulationGap(row: TruthRow): string | undefined {
  // a row whose truth is a sniffer waiting for a client that waits for the server
  if (row.call === 'tcp-server-first' && row.verdict === 'denied:timeout') {
    return row.protocol === 'auto'
      ? 'the emulation renders a port that declares no protocol as TCP (policy.ts portProtocol): no outbound sniffer waits for the client, the banner comes at once'
      : "the emulation's virtualInbound gives up protocol detection after listener_filters_timeout 0.1s and continues (the banner comes ~0.1 s late); istiod 1.28.2 renders 0s, no limit";
  }
  if (row.call === 'grpc') return "the emulation's inbound clusters speak HTTP/1.1 to the app (no http2_protocol_options); istiod uses HTTP/2 for a grpc port, which gRPC needs";
  if (row.call === 'websocket') return "the emulation's HTTP connection managers have no upgrade_configs: Envoy answers the upgrade 403 (istiod's allow websocket)";
  return undefined;
}

const indent = (text: string): string => text.replace(/^/gm, '    ');

describe(`${SUITE}: h2c, gRPC, WebSocket and a server-first port through sidecars (real Envoy)`, function () {
  this.timeout(300_000);
  const emulated = controlPlaneOfRun() !== 'istiod';
  const cases = TABLES.map((t, i) => {
    const skipped = emulated ? t.rows.filter((r) => emulationGap(r) !== undefined) : [];
    const probed: TruthTable = { ...t, rows: t.rows.filter((r) => !skipped.includes(r)) };
    return { t, probed, skipped, cells: CELLS[i]! };
  });
  // The one place this suite gets its mesh: the run's control plane (istiod or the emulation, controlplane/index.ts).
  const mesh = useMesh(cases[0]!.t);
  const all: RowOutcome[] = [];
  after(() => {
    const wrong = all.filter((o) => !o.record.pass).length;
    console.log(`\n    ${SUITE}: ${wrong} wrong, ${all.length - wrong} correct, ${cases.reduce((n, c) => n + c.skipped.length, 0)} skipped`);
  });

  it(`the table has ${CELLS.join(' + ')} rows in ${CELLS.length} scenarios`, () => {
    expect(TABLES.map((t) => t.rows.length)).to.deep.equal(CELLS);
  });

  for (const { t, probed, skipped, cells } of cases) {
    describe(t.scenario, () => {
      let outcomes: RowOutcome[] = [];
      const of = (row: TruthRow): RowOutcome => {
        const o = outcomes.find((x) => x.row === row);
        if (!o) throw new Error(`${rowName(row)} was not probed`);
        return o;
      };

      before(async () => {
        await mesh().update(scenarioModel(t));
        if (skipped.length > 0) {
          const entries: SkippedTest[] = skipped.map((r) => ({ profile: 'istio', suite: SUITE, scenario: `${t.scenario}: ${rowName(r)}`, reason: `emulated control plane: ${emulationGap(r)!}` }));
          appendBudgets(mesh().cluster.runDir, [], entries);
        }
        outcomes = await runTable(mesh(), probed, SUITE);
        all.push(...outcomes);
        appendResults(mesh().cluster.runDir, outcomes.map((o) => o.record));
        const detail = (o: RowOutcome): string =>
          `want ${o.row.verdict}${o.row.wire ? ` ${o.row.wire}` : ''}, got ${o.result.verdict} ${o.result.evidence.wire}, oracle ${o.oracle} (${JSON.stringify(o.result.evidence)})`;
        console.log(indent(`\n${cyclonusTable(`${SUITE}: ${t.scenario} [${mesh().controlPlane}]`, outcomes.map((o) => ({ ...o.record, detail: detail(o) })))}`));
      });

      it(`probes ${skipped.length > 0 ? `the ${cells - skipped.length} of ${cells} cells the emulation renders` : `the ${cells} cells of the table`}`, () => {
        expect(probed.rows.length + skipped.length, 'rows probed + rows skipped').to.equal(cells);
        expect(outcomes).to.have.length(cells - skipped.length);
        expect(new Set(outcomes.map((o) => o.row)).size, 'one outcome per row').to.equal(cells - skipped.length);
      });

      for (const row of t.rows) {
        const title = `${rowName(row)}: ${row.verdict}${row.wire ? `, ${row.wire}` : ''}`;
        if (skipped.includes(row)) {
          it(`${title} — skipped on the emulated control plane: ${emulationGap(row)!}`);
          continue;
        }
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
