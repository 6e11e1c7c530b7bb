// istio-reachability: Istio's tests/integration/security/reachability_test.go as one matrix. Six of
// its cases (global mtls strict, global mtls permissive, global plaintext to mtls permissive, global
// automtls strict, mtls port override, migration) × from {sidecar, naked plaintext, naked TLS
// without a client certificate, naked TLS with another CA's certificate} × to {sidecar, naked} ×
// {http, tcp}, on one mesh whose policy is replaced per case (as the test applies and removes each
// case's config). Every cell is pinned to the hand-written rows of fixtures/istio/truth/reachability
// (verdict and wire canary) and to the oracle, and printed Cyclonus-style.
import { expect } from 'chai';
import type { RowOutcome } from '../src/harness/matrix/istio.ts';
import { rowName } from '../src/harness/profiles/istio/truth.ts';
import { deploymentOf, table, useMesh, useScenario } from './lib/istio.ts';

const SUITE = 'istio-reachability';

// hand-counted: 4 callers × 2 servers × 2 protocols per case
const CASES: [file: string, cells: number][] = [
  ['global-mtls-strict', 16],
  ['global-mtls-permissive', 16],
  ['global-plaintext-to-mtls-permissive', 16],
  ['global-automtls-strict', 16],
  ['mtls-port-override', 16],
  ['migration', 16],
];

/** Who must answer an allowed call (fixtures/istio/reachability): the echo's x-echo-pod, the TCP echo's prefix. */
const SERVER: Record<string, string> = { b: 'b', naked: 'naked', 'migration/vistio': 'migration-vistio', 'migration/vlegacy': 'migration-vlegacy' };
/** The caller with a sidecar, as the server's sidecar names it in XFCC (fixtures/istio/reachability/clients.yaml). */
const SLEEP_ID = 'spiffe://cluster.local/ns/default/sa/sleep';

describe(`${SUITE}: reachability_test.go as one matrix (real Envoy)`, function () {
  this.timeout(180_000);
  const cases = CASES.map(([file, cells]) => ({ t: table(`reachability/${file}`), cells }));
  // The one place this suite gets its mesh: the run's control plane (istiod or the emulation, controlplane/index.ts).
  const mesh = useMesh(cases[0]!.t);
  const all: RowOutcome[] = [];
  after(() => {
    const wrong = all.filter((o) => !o.record.pass).length;
    console.log(`\n    ${SUITE}: ${wrong} wrong, ${all.length - wrong} correct over ${cases.length} cases`);
  });

  for (const { t, cells } of cases) {
    describe(t.scenario, () => {
      const { of } = useScenario(mesh, t, SUITE, all, cells);

      for (const row of t.rows) {
        it(`${rowName(row)}: ${row.verdict}, ${row.wire}`, () => {
          const o = of(row);
          const to = row.subset ? `${row.to}/${row.subset}` : row.to;
          expect(o.oracle, 'the oracle disagrees with the hand-written row').to.equal(row.verdict);
          expect(o.result.verdict, JSON.stringify(o.result.evidence)).to.equal(row.verdict);
          expect(o.result.evidence.wire, 'the wire canary').to.equal(row.wire);
          if (row.expected === 'allowed') expect(deploymentOf(mesh(), o.result.evidence.servedBy), 'who answered').to.equal(SERVER[to]);
          if (row.verdict === 'allowed:mtls' && row.protocol === 'http') expect(o.result.evidence.peer, "the caller's identity in XFCC").to.equal(SLEEP_ID);
          if (row.verdict === 'allowed:mtls' && row.protocol === 'tcp') expect(o.result.evidence.serverHandshakes, "handshakes of the server's sidecar during the call").to.equal(1);
          expect(o.record.pass, 'the recorded cell (a subset row needs a call attributed to its subset)').to.equal(true);
        });
      }
    });
  }
});
