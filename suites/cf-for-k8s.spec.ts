// cf-for-k8s: ADR 0004's traffic matrix ("Strategy for Securing Network Traffic", cf-k8s-networking) on a real istiod
// (Istio 1.28.2) with cf-for-k8s's own enforcement objects, pinned to fixtures/cf-for-k8s/truth.yaml and to the
// cf-for-k8s oracle. The platform is installed as cf-for-k8s installs it — mesh-wide STRICT, the apps' Sidecar
// (cf-system/*), allow-app-ingress-from-ingressgateway in cf-workloads, default-deny-ingress in cf-system — before any
// workload runs; then the operator enables what the ADR says "if enabled" (NetworkPolicies, an external CA as a
// DestinationRule with caCertificates), then widens the apps' Sidecar. Sources: Apps (proxy → dora, eirini's
// ServiceAccount; the proxy container's own curl as mtls_test.go makes it), System (httpbin, cf-k8s-networking's test
// system component; a Prometheus scraping /metrics, footnote 2), External (a pod outside the platform: no Kubernetes
// Pod, no namespace, no sidecar). NetworkPolicies are enforced by meshproof's own engine (kube/network-policy.ts, in
// the node namespace), every other decision by istiod's config in the real Envoys: each record says which
// (`enforcedBy`). External comes in through cf-for-k8s's ingress gateway (its Gateway in cf-system, the operator's
// wildcard certificates, a route controller's VirtualService per route) or, bypassing it, straight to a pod.
import { expect } from 'chai';
import { controlPlaneOfRun } from '../src/harness/controlplane/index.ts';
import { IstiodMesh } from '../src/harness/controlplane/istiod/mesh.ts';
import { applyObjects } from '../src/harness/kube/apply.ts';
import { appliedNetworkPolicies, syncNetworkPolicies } from '../src/harness/kube/network-policy.ts';
import { runTable, type RowOutcome } from '../src/harness/matrix/istio.ts';
import { CertificateAuthority, issueServer } from '../src/harness/pki/index.ts';
import { cfPlanner, clusterStat, outsidePod, platformModel, stepObjects } from '../src/harness/profiles/cf-for-k8s/index.ts';
import { cfRowName, loadCfTruth, stepTable, type CfRow } from '../src/harness/profiles/cf-for-k8s/truth.ts';
import { cyclonusTable } from '../src/harness/report/cyclonus.ts';
import { appendResults } from '../src/harness/report/results.ts';
import type { TruthRow } from '../src/harness/profiles/istio/truth.ts';

const SUITE = 'cf-for-k8s';
const NEEDS = 'needs the real Istio control plane (AuthorizationPolicy, Sidecar, NetworkPolicy)';
const truth = loadCfTruth();
/** Hand-counted probed cells per step (pending rows aside). */
const CELLS: Record<string, number> = { installed: 10, 'operator-enabled': 12, 'apps-sidecar-widened': 3 };
const indent = (text: string): string => text.replace(/^/gm, '    ');
const log = (l: string): void => console.log(`    ${l}`);

if (controlPlaneOfRun() !== 'istiod') {
  describe(`${SUITE}: ADR 0004's traffic matrix — pending: ${NEEDS} (MESHPROOF_CONTROL_PLANE=istiod)`, () => {
    for (const step of truth.steps) for (const r of step.rows) it(`${step.name}: ${cfRowName(r)}: ${r.verdict}`);
  });
} else {
  describe(`${SUITE}: ADR 0004's traffic matrix with cf-for-k8s's enforcement objects (istiod)`, function () {
    this.timeout(600_000);
    let mesh: IstiodMesh | undefined;
    const m = (): IstiodMesh => {
      if (!mesh) throw new Error('the cf-for-k8s mesh did not start');
      return mesh;
    };
    /** ((operator_ca)), ((other_ca)): the CA files the DestinationRules name; ((…_b64)): the gateway's wildcard certificates. */
    const vars: Record<string, string> = {};
    const all: RowOutcome[] = [];

    before(async () => {
      // the platform first (its system components: no PeerAuthentication yet, so no config change and no call made)
      mesh = await IstiodMesh.start(platformModel(truth, 'system'), { log });
      const operatorCa = await CertificateAuthority.create('cf-operator', { cn: 'operator CA' });
      const otherCa = await CertificateAuthority.create('cf-other', { cn: 'another CA' });
      vars.operator_ca = mesh.pkiStore.writeCa(operatorCa);
      vars.other_ca = mesh.pkiStore.writeCa(otherCa);
      const server = mesh.pkiStore.writeIdentity({ ...(await issueServer(operatorCa, { cn: 'external.example.com' })), name: 'external.example.com' });
      // the operator's wildcard certificates for the system and apps domains (cf-for-k8s's system_certificate, workloads_certificate)
      const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
      for (const [k, domain] of [['system', 'sys.example.com'], ['workloads', 'apps.example.com']] as const) {
        const c = await operatorCa.issue(`wildcard.${domain}`, { subject: { CN: `*.${domain}` }, dns: [`*.${domain}`], eku: ['serverAuth'] });
        vars[`${k}_cert_b64`] = b64(c.certPem);
        vars[`${k}_key_b64`] = b64(c.keyPem);
      }
      const outside = outsidePod(truth, server);
      const pod = await mesh.cluster.addPod(outside.spec);
      for (const c of outside.containers) await mesh.cluster.startContainer(pod.key, c);
      // cf-for-k8s's own objects, in force before any call between pods (a connection made before a NetworkPolicy
      // would outlive it: its replies are ESTABLISHED), then STRICT and the apps
      await applyObjects(mesh.api.kc, stepObjects(truth.steps[0]!, vars), { source: `cf-for-k8s ${truth.steps[0]!.name}` });
      await syncNetworkPolicies(mesh.api.kc, mesh.cluster);
      await mesh.update(platformModel(truth, 'all'));
      await syncNetworkPolicies(mesh.api.kc, mesh.cluster);
    });
    after(async () => {
      const wrong = all.filter((o) => !o.record.pass).length;
      console.log(`\n    ${SUITE}: ${wrong} wrong, ${all.length - wrong} correct over ${truth.steps.length} steps`);
      await mesh?.down();
    });

    for (const [i, step] of truth.steps.entries()) {
      describe(`${step.name}: ${step.title}`, () => {
        const { table, rowOf } = stepTable(truth, step);
        const truthRowOf = new Map<CfRow, TruthRow>([...rowOf].map(([t, r]) => [r, t]));
        let outcomes: RowOutcome[] = [];
        const grew = new Map<CfRow, number>();
        const outcomeOf = (r: CfRow): RowOutcome => {
          const o = outcomes.find((x) => x.row === truthRowOf.get(r));
          if (!o) throw new Error(`${cfRowName(r)} was not probed`);
          return o;
        };
        const counted = step.rows.filter((r) => r.stat && !r.pending);
        const stat = (r: CfRow): Promise<number> => m().stat(truth.callers[r.from]!.pod, clusterStat(r.stat!));

        before(async () => {
          if (i > 0) {
            await m().applyExtra(stepObjects(step, vars), `cf-for-k8s ${step.name}`);
            await syncNetworkPolicies(m().api.kc, m().cluster);
          }
          const before = await Promise.all(counted.map(stat));
          outcomes = await runTable(m(), table, SUITE, '/headers', cfPlanner(m().cluster, truth, step, rowOf, vars.operator_ca!));
          const after = await Promise.all(counted.map(stat));
          counted.forEach((r, k) => grew.set(r, after[k]! - before[k]!));
          all.push(...outcomes);
          appendResults(m().cluster.runDir, outcomes.map((o) => o.record));
          const detail = (o: RowOutcome): string => `want ${o.row.verdict}${o.row.wire ? ` ${o.row.wire}` : ''}, got ${o.result.verdict} ${o.result.evidence.wire}, oracle ${o.oracle} (${JSON.stringify(o.result.evidence)})`;
          const legend = Object.entries(truth.callers).map(([k, c]) => `${k}=${c.category}`).concat(Object.entries(truth.targets).map(([k, t]) => `${k}=${t.category}`));
          console.log(indent(`\n${cyclonusTable(`${SUITE}: ${step.name} [${m().controlPlane} ${m().istioVersion}] (${[...new Set(legend)].join(', ')})`, outcomes.map((o) => ({ ...o.record, detail: detail(o) })))}`));
        });

        it(`probes the ${CELLS[step.name]} cells of the step`, () => {
          expect(outcomes).to.have.length(CELLS[step.name]!);
          expect(new Set(outcomes.map((o) => o.row)).size, 'one outcome per row').to.equal(CELLS[step.name]);
        });

        it("the node's NetworkPolicy rules are rendered from every policy applied so far", () => {
          const want = truth.steps
            .slice(0, i + 1)
            .flatMap((s) => stepObjects(s, vars))
            .filter((o) => o.kind === 'NetworkPolicy')
            .map((o) => `${o.metadata!.namespace}/${o.metadata!.name}`);
          expect(want.length, 'the steps so far apply NetworkPolicies').to.be.greaterThan(0);
          expect(appliedNetworkPolicies(m().cluster).map((v) => v.split('@')[0])).to.have.members(want);
        });

        for (const r of step.rows) {
          const title = `${cfRowName(r)}: ${r.verdict}${r.wire ? `, ${r.wire}` : ''} (${r.enforcedBy.join(' + ')})`;
          if (r.pending) {
            it(`${title} — pending: ${r.pending}`);
            continue;
          }
          it(title, () => {
            const o = outcomeOf(r);
            expect(o.oracle, 'the oracle disagrees with the hand-written row').to.equal(r.verdict);
            expect(o.result.verdict, JSON.stringify(o.result.evidence)).to.equal(r.verdict);
            if (r.wire) expect(o.result.evidence.wire, 'the wire canary').to.equal(r.wire);
            if (r.peer) expect(o.result.evidence.peer, "the caller's SPIFFE identity the server saw in XFCC").to.equal(r.peer);
            for (const x of r.xfcc ?? []) expect(o.result.evidence.xfcc ?? '', 'the XFCC the server saw').to.include(x);
            for (const b of r.body ?? []) expect(o.result.evidence.body ?? '', 'the body').to.include(b);
            if (r.stat) expect(grew.get(r), `${r.stat} of ${r.from}'s sidecar`).to.be.greaterThan(0);
            expect((o.record as unknown as { enforcedBy: string[] }).enforcedBy, 'what the record says enforced it').to.deep.equal(r.enforcedBy);
            expect(o.record.pass, 'the recorded cell (who answered, the identity, the body)').to.equal(true);
          });
        }
      });
    }
  });
}
