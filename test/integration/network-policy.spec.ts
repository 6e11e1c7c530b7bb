// meshproof's NetworkPolicy engine judged by the real kernel, on each substrate that routes pods through a namespace
// of its own (netns: the node namespace; docker: the run's router container):
// a cluster of pods x/a, x/b, y/c serving TCP on 80 and 81, each Cyclonus-style case of test/lib/network-policy-cases.ts
// applied through the Cluster port (applyNetworkPolicy), then every (from, to, port) probed from the pods: a denied cell
// must be a silent drop (`denied:timeout`), an allowed one answered by the server it names. Also: a call to a service VIP
// is judged after its DNAT (the destination pod's policy applies), a pod's own probe of itself (how the node agent checks
// readiness) is never filtered, and the rules are replaced in place (one FORWARD jump, no stale chain).
import { expect } from 'chai';
import { upCluster } from '../../src/harness/substrate/index.ts';
import type { NetnsCluster } from '../../src/harness/substrate/netns/index.ts';
import type { DockerCluster } from '../../src/harness/substrate/docker/cluster.ts';
import { run } from '../../src/harness/substrate/sh.ts';
import type { Cluster } from '../../src/harness/substrate/types.ts';
import type { NetworkPolicyInput } from '../../src/harness/dataplane/iptables/network-policy.ts';
import { cyclonusTable } from '../../src/harness/report/cyclonus.ts';
import type { ProbeResult } from '../../src/harness/probe/types.ts';
import { allCells, cellKey, NP_CASES, NP_NAMESPACES, NP_PODS, type NpCase } from '../lib/network-policy-cases.ts';

/** Long enough for an answer on a loaded machine, short enough for a drop to be seen as one. */
const PROBE_TIMEOUT_MS = 800;

/** Where a substrate's pod-to-pod packets are routed, so where the rules live (the test looks at them there). */
function routerNetns(cluster: Cluster): string {
  // by name: upCluster loads the docker substrate itself, as a module instance of its own
  if (cluster.substrate === 'netns') return (cluster as NetnsCluster).nodeNetns;
  if (cluster.substrate === 'docker') return (cluster as DockerCluster).routerNetns;
  throw new Error(`no router namespace known for ${cluster.substrate}`);
}

for (const substrate of ['netns', 'docker'] as const) describe(`Cluster.applyNetworkPolicy: the NetworkPolicy engine enforced by the kernel on a ${substrate} cluster`, function () {
  this.timeout(180_000);
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (!cluster) throw new Error(`the ${substrate} cluster did not start`);
    return cluster;
  };
  const ipOf = (pod: string): string => c().pod(pod).ip;
  const inputOf = (k: NpCase): NetworkPolicyInput => ({
    policies: k.policies(ipOf),
    pods: NP_PODS.map((p) => ({ namespace: p.namespace, name: p.name, ip: ipOf(`${p.namespace}/${p.name}`), labels: { ...p.labels }, ports: p.ports.map((x) => ({ ...x })) })),
    namespaces: NP_NAMESPACES,
  });
  /** A command in the namespace that routes between the pods (where the rules live). */
  const node = (args: string[]): Promise<string> => run(['ip', 'netns', 'exec', routerNetns(c()), ...args]);
  const probeCells = (cells: { from: string; to: string; port: number }[]): Promise<ProbeResult[]> =>
    c().probeMany(cells.map(({ from, to, port }) => ({ from, req: { protocol: 'tcp', host: ipOf(to), port, payload: 'ping', timeoutMs: PROBE_TIMEOUT_MS } })), { wire: false });

  before(async () => {
    const tcp = (port: number, id: string) => ({ name: `tcp-${port}`, workload: 'tcp-listener', args: ['--port', String(port), '--id', id], ready: { kind: 'tcp' as const, port } });
    cluster = await upCluster(
      {
        name: 'network-policy',
        pods: NP_PODS.map((p) => ({ name: p.name, namespace: p.namespace, labels: { ...p.labels }, containers: [tcp(80, p.name), tcp(81, p.name)] })),
        services: [{ name: 'svc-a', namespace: 'x', selector: { pod: 'a' }, ports: [{ port: 8000, targetPort: 80 }] }],
      },
      { wire: false },
      { ...process.env, MESHPROOF_SUBSTRATE: substrate },
    );
  });
  after(async () => cluster?.down());

  for (const k of NP_CASES) {
    it(`${k.name}: the 12 cells as written`, async () => {
      await c().applyNetworkPolicy(inputOf(k));
      const cells = allCells();
      const results = await probeCells(cells);
      expect(results, 'one probe per cell').to.have.length(12);
      const denied = new Set(k.denied);
      const rows = cells.map((cell, i) => {
        const r = results[i]!;
        const want = denied.has(cellKey(cell.from, cell.to, cell.port)) ? 'denied:timeout' : 'allowed:plaintext';
        // an allowed cell is answered by the tcp-listener of the pod it names (`<pod>:<payload>`)
        const answeredBy = /^([a-z]+):/.exec(r.evidence.body ?? '')?.[1] ?? null;
        const pass = r.verdict === want && (want === 'denied:timeout' || answeredBy === cell.to.split('/')[1]);
        return { ...cell, protocol: 'tcp', expected: want.startsWith('allowed') ? ('allowed' as const) : ('denied' as const), observed: r.observed, pass, detail: `want ${want}, got ${r.verdict} (${r.evidence.error ?? r.evidence.body ?? ''})` };
      });
      console.log(cyclonusTable(`    ${k.name}`, rows).replace(/\n/g, '\n    '));
      expect(rows.filter((r) => !r.pass).map((r) => `${cellKey(r.from, r.to, r.port)}: ${r.detail}`)).to.deep.equal([]);
    });
  }

  it("a call to a service VIP meets the destination pod's policy after the DNAT", async () => {
    await c().applyNetworkPolicy(inputOf(NP_CASES.find((k) => k.name.startsWith('allow x/a from the namespace'))!));
    const vip = c().services.get('x/svc-a')!.vip;
    const [fromB, fromC] = await c().probeMany(
      ['x/b', 'y/c'].map((from) => ({ from, req: { protocol: 'tcp' as const, host: vip, port: 8000, payload: 'ping', timeoutMs: PROBE_TIMEOUT_MS } })),
      { wire: false },
    );
    expect(fromB!.verdict, 'x/b → svc-a (x/a allows namespace y only)').to.equal('denied:timeout');
    expect(fromC!.verdict, 'y/c → svc-a').to.equal('allowed:plaintext');
    expect(fromC!.evidence.body).to.match(/^a:/);
  });

  it("under deny-all a pod still reaches itself (the node agent's readiness check runs inside the pod)", async () => {
    await c().applyNetworkPolicy(inputOf(NP_CASES.find((k) => k.name.startsWith('deny-all ingress'))!));
    const [own, loopback, other] = await c().probeMany(
      [
        { from: 'x/a', req: { protocol: 'tcp' as const, host: ipOf('x/a'), port: 80, payload: 'ping', timeoutMs: PROBE_TIMEOUT_MS } },
        { from: 'x/a', req: { protocol: 'tcp' as const, host: '127.0.0.1', port: 81, payload: 'ping', timeoutMs: PROBE_TIMEOUT_MS } },
        { from: 'x/b', req: { protocol: 'tcp' as const, host: ipOf('x/a'), port: 80, payload: 'ping', timeoutMs: PROBE_TIMEOUT_MS } },
      ],
      { wire: false },
    );
    expect(own!.verdict, 'x/a → its own address').to.equal('allowed:plaintext');
    expect(loopback!.verdict, 'x/a → 127.0.0.1').to.equal('allowed:plaintext');
    expect(other!.verdict, 'x/b → x/a (the control: deny-all is in force)').to.equal('denied:timeout');
  });

  it('the rules are replaced in place: one FORWARD jump, and no chain left once no policy isolates a pod', async () => {
    await c().applyNetworkPolicy(inputOf(NP_CASES.find((k) => k.name.startsWith('ipBlock'))!));
    expect((await node(['iptables', '-S'])).split('\n').filter((l) => /^-N MP-NP-/.test(l))).to.deep.equal([`-N MP-NP-I-${ipOf('x/a')}`, `-N MP-NP-I-${ipOf('x/a')}-0`]);
    expect(await c().applyNetworkPolicy(inputOf(NP_CASES[0]!)), 'a new input changes the rules').to.equal(true);
    expect(await c().applyNetworkPolicy(inputOf(NP_CASES[0]!)), 'the same input again changes nothing').to.equal(false);
    const listed = (await node(['iptables', '-S'])).split('\n');
    expect(listed.filter((l) => l.startsWith('-A FORWARD'))).to.deep.equal(['-A FORWARD -j MP-NETPOL']);
    expect(listed.filter((l) => /^-N MP-/.test(l))).to.deep.equal(['-N MP-NETPOL']);
    expect(listed.filter((l) => l.startsWith('-A MP-NETPOL'))).to.deep.equal(['-A MP-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', '-A MP-NETPOL -j MARK --set-xmark 0x0/0x30000']);
  });
});
