// Running an Istio truth table (fixtures/istio/truth/**/*.yaml) on a live mesh: each row is probed
// and compared with the row itself (hand-written from Istio's docs) AND with the oracle.
import { join } from 'node:path';
import { apply, loadIstio, type IstioModel } from '../profiles/istio/resources.ts';
import { cellFor, destinationRuleFor, findService, meshPods, podsOf, selects, spiffeId, type MeshPod } from '../profiles/istio/policy.ts';
import { expectIstio } from '../profiles/istio/oracle.ts';
import { expectProtocolCell, protocolSelection } from '../profiles/istio/protocol-oracle.ts';
import { ISTIO_PORTS } from '../model/istio/plan.ts';
import type { Cluster } from '../substrate/types.ts';
import type { CertificateStore } from '../pki/index.ts';
import { rowName, type ClientKind, type TruthRow, type TruthTable } from '../profiles/istio/truth.ts';
import { CertificateAuthority, issueSpiffe, type IdentityPaths } from '../pki/index.ts';
import { toRecord } from '../report/results.ts';
import { UserError } from '../model/errors.ts';
import type { Evidence, ResultRecord, Verdict } from '../model/verdict.ts';
import type { ProbeRequest, ProbeResult } from '../probe/types.ts';

export const SENTENCES_FIXTURE = 'fixtures/istio/sentences';

/** The table's fixture directory (default: the workshop topology) with the table's files applied and its injection choice. */
export function scenarioModel(table: Pick<TruthTable, 'apply' | 'inject' | 'fixture'>, dir = table.fixture ?? SENTENCES_FIXTURE): IstioModel {
  let model = loadIstio(dir, { inject: table.inject });
  for (const f of table.apply) model = apply(model, loadIstio(join(dir, f)));
  return model;
}

/**
 * What the runner needs of a mesh, whichever control plane programs its sidecars (today the
 * emulated IstioMesh, profiles/istio/index.ts); `controlPlane` goes into every record.
 */
export interface ProbedMesh {
  readonly controlPlane: string;
  /** The Istio release whose istiod programmed the sidecars (istiod only). */
  readonly istioVersion?: string;
  readonly cluster: Cluster;
  /** The model the oracle reads: the YAML the control plane was given. */
  readonly current: IstioModel;
  /** Where the run keeps its keys; the other-CA caller identity goes there. */
  readonly pkiStore: CertificateStore;
  /** A counter from a sidecar's Envoy admin API. */
  stat(podRef: string, name: RegExp): Promise<number>;
}

/** A record of an Istio cell: the DESIGN.md contract's `controlPlane` says what programmed the sidecars. */
export type IstioRecord = ResultRecord & { controlPlane: string; istioVersion?: string };

/**
 * Evidence of a TCP call made through sidecars: `serverHandshakes` is how many TLS handshakes the
 * answering pod's sidecar completed on its inbound listener during the call (read from its admin stats).
 */
export type IstioEvidence = Evidence & { serverHandshakes?: number };

export interface RowOutcome {
  row: TruthRow;
  oracle: Verdict;
  result: ProbeResult & { evidence: IstioEvidence };
  record: IstioRecord;
}

/** How many calls a subset row gets: a VirtualService or a load balancer spreads them, each call names its subset by who answered. */
const SUBSET_CALLS = 16;
/** TCP subset calls go one at a time (their server-side handshake counters are read around each). */
const TCP_SUBSET_CALLS = 12;
/**
 * How long a server-first caller waits for the banner. istiod's listeners that sniff have listener_filters_timeout 0s
 * (no limit): a stuck call stays stuck, so this only bounds the wait; an answered call takes milliseconds.
 */
export const SERVER_FIRST_WAIT_MS = 3000;

/**
 * What a client sidecar offers on an ISTIO_MUTUAL cluster (cluster_tls.go: ["istio-peer-exchange","istio"]):
 * a naked TLS caller offering it is taken by the server sidecar's mTLS filter chain (allIstioMtlsALPNs).
 */
export const ISTIO_MTLS_ALPN = ['istio-peer-exchange', 'istio'];

/**
 * Completed handshakes of a sidecar's virtualInbound listener (Envoy listener stats `ssl.handshake`).
 * Its DownstreamTlsContext has require_client_certificate, so each one is a caller that presented
 * a certificate of the mesh CA: Istio's echo cannot show mTLS on TCP ("fail open", checkers.go),
 * the server's own Envoy can.
 */
const INBOUND_HANDSHAKES = new RegExp(`^listener\\.0\\.0\\.0\\.0_${ISTIO_PORTS.inbound}\\.ssl\\.handshake$`);

/** The tcp-listener answers `<server id>:<bytes>`; the Istio profile names it after the Deployment. */
const tcpServer = (body: string | null | undefined): string | null => /^([A-Za-z0-9][A-Za-z0-9.-]*):/.exec(body ?? '')?.[1] ?? null;

/** A caller identity from a CA that is not the mesh's, per mesh and pod (the mesh's PkiStore keeps it; removed at teardown). */
const foreignIdentities = new WeakMap<ProbedMesh, Map<string, Promise<IdentityPaths>>>();
function otherCaIdentity(mesh: ProbedMesh, pod: MeshPod): Promise<IdentityPaths> {
  let byPod = foreignIdentities.get(mesh);
  if (!byPod) foreignIdentities.set(mesh, (byPod = new Map()));
  let id = byPod.get(pod.key);
  if (!id) {
    // the same SPIFFE shape the mesh CA issues, from another root
    id = (async () => {
      const ca = await CertificateAuthority.create('other-ca', { cn: 'other-ca' });
      const cert = await issueSpiffe(ca, { ns: pod.namespace, sa: pod.serviceAccount });
      return mesh.pkiStore.writeIdentity({ ...cert, name: `other-ca.${pod.namespace}.${pod.name}` });
    })();
    byPod.set(pod.key, id);
  }
  return id;
}

interface Planned {
  row: TruthRow;
  client: ClientKind;
  req: ProbeRequest;
  oracle: Verdict;
  /** A TCP call in plaintext whose target has sidecars: made alone, their handshake counters read around it. */
  counted: MeshPod[];
  /** The pod the call is made from (a cluster reference), when a planner names it; else the row's `from`. */
  fromPod?: string;
  /** The caller as the record names it, when a planner names it. */
  caller?: string;
}

/**
 * A profile whose cells run on an Istio mesh but are not the Istio model's (cf-for-k8s: namespaces, objects applied
 * beside the model, its own oracle): it plans each row's call and verdict, and runTable probes, records and compares
 * as for any table. Rows with a subset are not planned this way.
 */
export interface CellPlanner {
  /** The records' `profile`. */
  profile: string;
  /** Where the row's call is made from (a cluster pod reference), the request, the profile oracle's verdict, the caller's name in the record. */
  plan(row: TruthRow): { from: string; req: ProbeRequest; oracle: Verdict; caller?: string };
  /** A row made some other way than a probe (a command in a container, as the profile's own tests do); undefined: probed. */
  call?(row: TruthRow, req: ProbeRequest, from: string): Promise<ProbeResult> | undefined;
  /** The result as the profile reads it (e.g. TLS the caller's sidecar originated, which the server shows). */
  refine?(row: TruthRow, result: ProbeResult): ProbeResult;
  /** What else the cell's record must agree with (an identity the server saw, a body): the mismatches, none to pass. */
  check?(row: TruthRow, result: ProbeResult): string[];
  /** Fields added to the row's record (e.g. what enforced the cell). */
  annotate?(row: TruthRow): Record<string, unknown>;
}

/**
 * Probes every row. A row without a subset is one call. Rows with a subset are probed together
 * per (from, client, to, port): the calls are spread by the VirtualService or the load balancer,
 * and each call is attributed to a subset by who answered (echo headers, the tcp-listener's
 * prefix) or by the certificate a refusing sidecar presented; a call that shows neither belongs
 * to the one row no call was attributed to. A subset row no call can be attributed to fails.
 * A TCP call cannot show mTLS to the caller: it is `allowed:mtls` when the answering pod's
 * sidecar completed exactly one inbound handshake during it.
 */
export async function runTable(mesh: ProbedMesh, table: TruthTable, suite: string, path = '/echo', planner?: CellPlanner): Promise<RowOutcome[]> {
  const model = mesh.current;
  const pods = meshPods(model);
  const meta = { run: mesh.cluster.runId, substrate: mesh.cluster.substrate, profile: planner?.profile ?? 'istio' };
  const planned = await Promise.all(table.rows.map((row) => (planner ? byPlanner(row, planner) : plan(row))));
  const custom = new Map<Planned, ProbeResult>();

  const single = planned.filter((p) => !p.row.subset);
  const groups = new Map<string, Planned[]>();
  for (const p of planned.filter((x) => x.row.subset)) {
    const key = `${p.row.from}/${p.client}>${p.row.to}:${p.row.port}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const results = new Map<Planned, ProbeResult>();
  const groupCalls = new Map<Planned[], ProbeResult[]>();

  // 1. everything that needs no counter, concurrently, with one wire-canary sync
  const loose = [...groups.values()].filter((g) => g[0]!.counted.length === 0);
  // a planner's own calls first, one at a time (a command in a pod is not a probe and has no canary sync)
  for (const p of planner?.call ? single : []) {
    const made = planner!.call!(p.row, p.req, p.fromPod!);
    if (made) custom.set(p, await made);
  }
  const batch = [...single.filter((p) => p.counted.length === 0 && !custom.has(p)).map((p) => ({ from: p.fromPod ?? p.row.from, req: p.req, p }))];
  for (const g of loose) for (let i = 0; i < SUBSET_CALLS; i++) batch.push({ from: g[0]!.row.from, req: g[0]!.req, p: g[0]! });
  const answers = await mesh.cluster.probeMany(batch.map(({ from, req }) => ({ from, req })));
  batch.forEach((b, i) => {
    if (!b.p.row.subset) results.set(b.p, answers[i]!);
  });
  let at = batch.filter((b) => !b.p.row.subset).length;
  for (const g of loose) {
    groupCalls.set(g, answers.slice(at, at + SUBSET_CALLS));
    at += SUBSET_CALLS;
  }
  // 2. counted TCP calls, one at a time
  for (const p of single.filter((x) => x.counted.length > 0)) results.set(p, await countedCall(p));
  for (const g of [...groups.values()].filter((x) => x[0]!.counted.length > 0)) {
    const calls: ProbeResult[] = [];
    for (let i = 0; i < TCP_SUBSET_CALLS; i++) calls.push(await countedCall(g[0]!));
    groupCalls.set(g, calls);
  }

  const out: RowOutcome[] = [];
  for (const p of single) out.push(outcome(p, custom.get(p) ?? results.get(p)!, true));
  for (const [g, calls] of groupCalls) {
    const subsetOf = (c: ProbeResult): string[] | null => attribute(g[0]!.row, c);
    const unclaimed = g.filter((p) => !calls.some((c) => subsetOf(c)?.includes(p.row.subset!)));
    for (const p of g) {
      const mine = calls.find((c) => subsetOf(c)?.includes(p.row.subset!)) ?? (unclaimed.length === 1 && unclaimed[0] === p ? calls.find((c) => subsetOf(c) === null) : undefined);
      // no call reached this subset: report the first call so the mismatch shows its evidence
      out.push(outcome(p, mine ?? calls[0]!, mine !== undefined));
    }
  }
  // table order
  return table.rows.map((r) => out.find((o) => o.row === r)!);

  function byPlanner(row: TruthRow, by: CellPlanner): Planned {
    if (row.subset) throw new UserError(`${table.scenario}: ${rowName(row)}: a ${by.profile} row names no subset`);
    const p = by.plan(row);
    return { row, client: row.client ?? 'plaintext', req: p.req, oracle: p.oracle, counted: [], fromPod: p.from, ...(p.caller ? { caller: p.caller } : {}) };
  }

  async function plan(row: TruthRow): Promise<Planned> {
    const client = row.client ?? 'plaintext';
    const protocol = row.protocol ?? 'http';
    const from = pods.find((p) => p.name === row.from || p.deployment.name === row.from);
    if (!from) throw new UserError(`${table.scenario}: ${rowName(row)}: no pod or Deployment ${row.from} in the Istio model`);
    const cell = cellFor(model, row.from, { service: row.to, port: row.port, subset: row.subset }, client);
    const svc = findService(model, row.to, from.namespace);
    const servicePort = svc.ports.find((p) => p.port === row.port);
    if (!servicePort) throw new UserError(`${table.scenario}: ${rowName(row)}: Service ${row.to} has no port ${row.port}`);
    const selected = protocolSelection(servicePort);
    // the model's own reading (http or tcp) must agree, and an auto row names a port that declares nothing
    if (protocol === 'auto' ? selected !== 'auto' : (cell.protocol ?? 'http') !== protocol) {
      throw new UserError(`${table.scenario}: ${rowName(row)}: Service ${row.to} port ${row.port} is ${selected === 'auto' ? 'auto (no protocol declared)' : cell.protocol} (Istio protocol selection), the row says ${protocol}`);
    }
    if (row.call) {
      // the pod's own app speaks the call; its sidecar (if any) carries it as the port's protocol says
      const req: ProbeRequest = { protocol: row.call, host: row.to, port: row.port };
      if (row.call === 'h2c' || row.call === 'websocket') req.path = path;
      if (row.call === 'tcp-server-first') req.timeoutMs = SERVER_FIRST_WAIT_MS;
      const counted = row.call === 'tcp-server-first' ? podsOf(model, svc, pods).filter((p) => p.injected && !p.gateway) : [];
      return { row, client, req, oracle: expectProtocolCell({ ...cell, call: row.call, port: selected }).verdict, counted };
    }
    const req: ProbeRequest = { protocol: client === 'plaintext' ? (protocol === 'auto' ? 'tcp' : protocol) : protocol === 'http' ? 'https' : 'tls', host: row.to, port: row.port };
    if (protocol === 'http') req.path = path;
    if (client !== 'plaintext') {
      req.tls = { alpn: ISTIO_MTLS_ALPN };
      if (client === 'other-ca') {
        const id = await otherCaIdentity(mesh, from);
        req.tls = { ...req.tls, cert: id.cert, key: id.key };
      }
    }
    const counted = protocol === 'tcp' && client === 'plaintext' ? podsOf(model, svc, pods).filter((p) => p.injected && !p.gateway) : [];
    return { row, client, req, oracle: expectIstio(cell).verdict, counted };
  }

  /** One TCP call with the inbound handshake counters of the target's sidecars read before and after it. */
  async function countedCall(p: Planned): Promise<ProbeResult> {
    const count = () => Promise.all(p.counted.map((pod) => mesh.stat(pod.key, INBOUND_HANDSHAKES)));
    const before = await count();
    const [r] = await mesh.cluster.probeMany([{ from: p.row.from, req: p.req }]);
    const after = await count();
    const result = r!;
    const server = tcpServer(result.evidence.body);
    const at = server ? p.counted.findIndex((pod) => sameWorkload(pod, server)) : -1;
    const evidence: IstioEvidence = { ...result.evidence, serverHandshakes: at >= 0 ? after[at]! - before[at]! : 0 };
    if (result.verdict === 'allowed:plaintext' && evidence.serverHandshakes === 1) return { ...result, verdict: 'allowed:mtls', evidence };
    return { ...result, evidence };
  }

  /**
   * Whether the pod that answered (its own name, as its workload reports it) is this model pod: the same name, or a
   * pod of its Deployment — on a real API server pods are named `<deployment>-<hash>-<suffix>`, found by the cluster.
   */
  function sameWorkload(m: MeshPod, answered: string): boolean {
    if (m.name === answered || m.deployment.name === answered) return true;
    try {
      const running = mesh.cluster.pod(`${m.namespace}/${answered}`);
      return running.spec.name === answered && (running.spec.aliases ?? []).includes(m.deployment.name);
    } catch {
      return false;
    }
  }

  /** The subsets a call can be attributed to, or null when it shows neither who answered nor who refused. */
  function attribute(row: TruthRow, c: ProbeResult): string[] | null {
    const svc = findService(model, row.to, mesh.cluster.pod(row.from).spec.namespace);
    const dr = destinationRuleFor(model, mesh.cluster.pod(row.from).spec.namespace, svc);
    const subsets = dr?.subsets ?? [];
    const members = podsOf(model, svc, pods);
    const answered = c.evidence.servedBy ?? tcpServer(c.evidence.body);
    let who: MeshPod[] = [];
    if (answered) who = members.filter((m) => sameWorkload(m, answered));
    else if (c.evidence.serverIdentity) who = members.filter((m) => m.injected && spiffeId(m.namespace, m.serviceAccount) === c.evidence.serverIdentity);
    if (who.length === 0) return null;
    return subsets.filter((s) => who.some((m) => selects(s.labels, m.labels))).map((s) => s.name);
  }

  function outcome(p: Planned, raw: ProbeResult, attributed: boolean): RowOutcome {
    const { row, client, oracle } = p;
    const result = planner?.refine ? planner.refine(row, raw) : raw;
    const evidence: IstioEvidence = { ...result.evidence };
    if (evidence.servedBy == null && (row.call === 'tcp-server-first' || (!row.call && (row.protocol ?? 'http') !== 'http'))) evidence.servedBy = tcpServer(evidence.body);
    const observed = { ...result, evidence };
    const agrees = (planner?.check?.(row, observed) ?? []).length === 0;
    const pass = attributed && agrees && result.verdict === row.verdict && oracle === row.verdict && (row.wire === undefined || evidence.wire === row.wire);
    const from = p.caller ?? (client === 'plaintext' ? row.from : `${row.from}/${client}`);
    const to = row.subset ? `${row.to}/${row.subset}` : row.to;
    const cell = { suite, scenario: table.scenario, from, to, port: row.port, protocol: row.call ?? row.protocol ?? 'http' };
    const record: IstioRecord = {
      ...toRecord(meta, cell, row.expected, observed, pass),
      controlPlane: mesh.controlPlane,
      ...(mesh.istioVersion ? { istioVersion: mesh.istioVersion } : {}),
      ...(planner?.annotate?.(row) ?? {}),
    };
    return { row, oracle, result: observed, record };
  }
}
