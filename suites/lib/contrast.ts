// Shared by the contrast-* suites: start the emojivoto deployment as Contrast's CLI injects it (admin interface on
// 9901, as the e2e test patches it), probe a truth table's rows and record them (probeRows asserts nothing, so a
// before() hook may call it), then pin each row in it()s (assertRows). A call through Envoy's tcp_proxy shows the
// caller no sign of mTLS (no XFCC), so the answering sidecar's own counters decide: a caller that presented a
// certificate the server's Envoy verified is one ingress handshake (`ssl.handshake`) without `ssl.no_certificate`.
import { expect } from 'chai';
import { ContrastMesh, CONTROL_PLANE, type ContrastStartOptions } from '../../src/harness/profiles/contrast/index.ts';
import { loadContrastTable, oracleFor, rowName, rowPhase, rowTarget, type ContrastRow, type ContrastTable, type RowTarget } from '../../src/harness/profiles/contrast/truth.ts';
import type { PodPhase } from '../../src/harness/model/contrast/oracle.ts';
import { ENVOY_INGRESS_PORT, ENVOY_INGRESS_PORT_NO_CLIENT_CERT } from '../../src/harness/model/contrast/annotations.ts';
import { appendResults, toRecord, truthTable } from '../../src/harness/report/results.ts';
import type { Evidence, ResultRecord, Verdict } from '../../src/harness/model/verdict.ts';
import type { ProbeRequest, ProbeResult } from '../../src/harness/probe/types.ts';

export const EMOJIVOTO = 'fixtures/contrast/emojivoto';
export const CALLERS = 'fixtures/contrast/callers';
/** PatchServiceMeshAdminInterface(resources, 9901) in e2e/internal/contrasttest. */
export const ADMIN_PORT = 9901;
/** Probe budget: an active denial answers in milliseconds; only a dropped SYN waits it out (denied:timeout). */
export const CONTRAST_TIMEOUT_MS = 2000;

export const table = (name: string): ContrastTable => loadContrastTable(`fixtures/contrast/truth/${name}.yaml`);

export function startContrast(paths: string[], opts: ContrastStartOptions = {}): Promise<ContrastMesh> {
  return ContrastMesh.fromYaml(paths, { adminInterfacePort: ADMIN_PORT, log: (l) => console.log(`    ${l}`), ...opts });
}

/** Which ingress listener took the call, from the sidecar's counters. */
export type IngressListener = 'ingress' | 'ingressWithoutClientAuth';

export type ContrastEvidence = Evidence & {
  /** The answering pod's Envoy: TLS handshakes its ingress listeners completed during the call. */
  serverHandshakes?: number;
  /** …of which without a client certificate. */
  serverNoCertificate?: number;
  listener?: IngressListener | null;
  /** The calling pod's Envoy: upstream connections its egress clusters opened during the call. */
  callerEgressCx?: number;
  /** The address the app saw the connection come from (the echo's IP= line). */
  appSawFrom?: string | null;
};

export type ContrastRecord = ResultRecord & { controlPlane: string };

export interface Outcome {
  row: ContrastRow;
  oracle: Verdict;
  result: ProbeResult & { evidence: ContrastEvidence };
  record: ContrastRecord;
  target: RowTarget;
  fromIp: string;
  targetIp: string;
  /** The target pod's phase as the kernel showed it when the row was probed. */
  phase: PodPhase;
}

const stat = (port: number, name: string) => new RegExp(`^listener\\.0\\.0\\.0\\.0_${port}\\.ssl\\.${name}$`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Planned {
  row: ContrastRow;
  target: RowTarget;
  req: ProbeRequest;
  counted: boolean;
  callerCounted: boolean;
  phase: PodPhase;
}

/** Probes the rows (a table's, or one step's) and records them. Asserts nothing. */
export async function probeRows(mesh: ContrastMesh, t: ContrastTable, rows: ContrastRow[], suite: string, scenario = t.scenario): Promise<Outcome[]> {
  const plans = await Promise.all(rows.map((row) => plan(row)));
  const results = new Map<Planned, ProbeResult>();
  const loose = plans.filter((p) => !p.counted && !p.callerCounted);
  const answers = await mesh.cluster.probeMany(loose.map((p) => ({ from: p.row.from, req: p.req })));
  loose.forEach((p, i) => results.set(p, answers[i]!));
  for (const p of plans.filter((x) => x.counted || x.callerCounted)) results.set(p, await counted(p));

  const outcomes = plans.map((p) => outcome(p, results.get(p)!));
  appendResults(mesh.cluster.runDir, outcomes.map((o) => o.record));
  console.log(truthTable(`\n    ${suite}: ${scenario}`, outcomes.map((o) => o.record)).replace(/\n/g, '\n    '));
  return outcomes;

  async function plan(row: ContrastRow): Promise<Planned> {
    const from = mesh.plan(row.from);
    const target = rowTarget(row, mesh.plans, mesh.services);
    const caller = row.caller ?? 'plaintext';
    const base = { path: row.path ?? '/echo', bodyLimit: 4096, timeoutMs: CONTRAST_TIMEOUT_MS };
    let req: ProbeRequest;
    if (row.egress) {
      const [host, port] = row.egress.split(':') as [string, string];
      req = { protocol: 'http', host, port: Number(port), ...base };
    } else {
      const host = target.service ? target.service.name : mesh.cluster.pod(target.plan.key).ip;
      req = { protocol: caller === 'plaintext' ? 'http' : 'https', host, port: row.port, ...base };
      if (caller !== 'plaintext') {
        // the e2e's curl: trust mesh-ca.pem, name the workload (its certificate's CN and DNS SAN), as --connect-to does
        const own = from.contrast ? mesh.tlsConfig(row.from) : null;
        req.tls = { ca: own?.meshCa ?? mesh.meshCaFile, servername: target.plan.deployment.name };
        if (caller === 'mesh-cert') {
          if (!own) throw new Error(`${rowName(row)}: ${row.from} has no mesh certificate (not a contrast-cc pod)`);
          req.tls = { ...req.tls, cert: own.certChain, key: own.key };
        }
        if (caller === 'other-ca') {
          const other = await mesh.otherCaIdentity();
          req.tls = { ...req.tls, cert: other.cert, key: other.key };
        }
      }
    }
    const phase = await mesh.phase(target.plan.deployment.name);
    const sidecarStats = (p: typeof from) => p.injected && p.proxy?.adminPort !== undefined;
    const counted = sidecarStats(target.plan) && phase === 'meshed' && (row.egress !== undefined || caller !== 'plaintext');
    // the caller's own Envoy, when it runs and has egress listeners: did the call go through it?
    const callerCounted = sidecarStats(from) && (from.proxy?.egress.length ?? 0) > 0 && (await mesh.phase(row.from)) === 'meshed';
    return { row, target, req, counted, callerCounted, phase };
  }

  /** One call with the server's ingress handshake counters (and the caller's egress connections) read around it. */
  async function counted(p: Planned): Promise<ProbeResult> {
    const server = p.target.plan.deployment.name;
    const from = mesh.plan(p.row.from);
    const egressCx = new RegExp(`^cluster\\.(${(from.proxy?.egress ?? []).map((e) => escape(e.name)).join('|') || '$^'})\\.upstream_cx_total$`);
    const read = async () => ({
      hs15006: p.counted ? await mesh.stat(server, stat(ENVOY_INGRESS_PORT, 'handshake')) : 0,
      hs15007: p.counted ? await mesh.stat(server, stat(ENVOY_INGRESS_PORT_NO_CLIENT_CERT, 'handshake')) : 0,
      noCert: p.counted ? (await mesh.stat(server, stat(ENVOY_INGRESS_PORT, 'no_certificate'))) + (await mesh.stat(server, stat(ENVOY_INGRESS_PORT_NO_CLIENT_CERT, 'no_certificate'))) : 0,
      cx: p.callerCounted ? await mesh.stat(p.row.from, egressCx) : 0,
    });
    const before = await read();
    const r = await mesh.cluster.probe(p.row.from, p.req);
    const after = await read();
    const evidence: ContrastEvidence = { ...r.evidence };
    if (p.callerCounted) evidence.callerEgressCx = after.cx - before.cx;
    if (!p.counted) return { ...r, evidence };
    const d6 = after.hs15006 - before.hs15006;
    const d7 = after.hs15007 - before.hs15007;
    evidence.serverHandshakes = d6 + d7;
    evidence.serverNoCertificate = after.noCert - before.noCert;
    evidence.listener = d6 === 1 && d7 === 0 ? 'ingress' : d7 === 1 && d6 === 0 ? 'ingressWithoutClientAuth' : null;
    const mutual = evidence.serverHandshakes === 1 && evidence.serverNoCertificate === 0;
    if ((r.verdict === 'allowed:tls' || r.verdict === 'allowed:plaintext') && mutual) return { ...r, verdict: 'allowed:mtls', evidence };
    return { ...r, evidence };
  }

  function outcome(p: Planned, r: ProbeResult): Outcome {
    const evidence: ContrastEvidence = { ...r.evidence };
    evidence.appSawFrom = /^IP=(.*)$/m.exec(evidence.body ?? '')?.[1] ?? null;
    const result = { ...r, evidence };
    const oracle = oracleFor(p.row, mesh.plans, mesh.services);
    const pass = r.verdict === p.row.verdict && oracle === p.row.verdict && (p.row.wire === undefined || evidence.wire === p.row.wire) && p.phase === rowPhase(p.row, p.target);
    const how = p.row.egress ? ` via ${p.row.egress}` : `/${p.row.caller ?? 'plaintext'}`;
    const cell = { suite, scenario, from: `${p.row.from}${how}`, to: p.row.to, port: p.row.port, protocol: p.req.protocol };
    const record: ContrastRecord = { ...toRecord({ run: mesh.cluster.runId, substrate: mesh.cluster.substrate, profile: 'contrast' }, cell, p.row.expected, result, pass), controlPlane: CONTROL_PLANE };
    return { row: p.row, oracle, result, record, target: p.target, fromIp: mesh.cluster.pod(mesh.plan(p.row.from).key).ip, targetIp: mesh.cluster.pod(p.target.plan.key).ip, phase: p.phase };
  }
}

/** Every probed row has the hand-written verdict, the oracle's, the pinned wire finding and the assumed phase. */
export function assertRows(outcomes: Outcome[], count: number): void {
  expect(outcomes, 'rows probed (hand-counted in the table)').to.have.length(count);
  const bad = (what: string, f: (o: Outcome) => string | null) => expect(outcomes.map(f).filter((x) => x !== null), what).to.deep.equal([]);
  bad('the oracle disagrees with the table', (o) => (o.oracle === o.row.verdict ? null : `${rowName(o.row)}: row ${o.row.verdict}, oracle ${o.oracle}`));
  bad('the target pod was not in the phase the row assumes', (o) => (o.phase === rowPhase(o.row, o.target) ? null : `${rowName(o.row)}: row assumes ${rowPhase(o.row, o.target)}, the kernel showed ${o.phase}`));
  bad('observed verdicts that differ from the table', (o) => (o.result.verdict === o.row.verdict ? null : `${rowName(o.row)}: want ${o.row.verdict}, got ${o.result.verdict} ${JSON.stringify(o.result.evidence)}`));
  bad('wire findings that differ from the table', (o) => (o.row.wire === undefined || o.result.evidence.wire === o.row.wire ? null : `${rowName(o.row)}: want ${o.row.wire}, got ${o.result.evidence.wire}`));
}

export function find(outcomes: Outcome[], pred: (r: ContrastRow) => boolean, what: string): Outcome[] {
  const found = outcomes.filter((o) => pred(o.row));
  if (found.length === 0) throw new Error(`no row ${what} in the table`);
  return found;
}
