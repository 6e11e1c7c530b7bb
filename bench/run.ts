// npm run bench → reports/bench.json: substrate up/down for 2, 10 and 50 pods (and netns vs docker side by side: --substrates-only runs just that;
// real Istio on kind: --kind-only), probe throughput
// over an N×N plaintext matrix, deny-verdict latency, memory per pod, and the throughput-budget
// run (paths on real Envoy and HAProxy, interleaved rounds, fixtures/budgets.yaml), and the wall
// time of each profile's suites (cf-*, c2c-*). Figures, never
// assertions: each target is recorded next to its measurement with `met: true|false`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { SUBSTRATE_ENV, upCluster } from '../src/harness/substrate/index.ts';
import { versions } from '../src/harness/cli/doctor.ts';
import type { Cluster, PodSpec, Topology } from '../src/harness/substrate/types.ts';
import { runBudgets } from '../src/harness/load/index.ts';
import { renderRateTable, renderTable } from '../src/harness/load/report.ts';
import { RATE_SPREAD_MAX } from '../src/harness/load/rate-summary.ts';
import { resolveIstio, resolveKube } from '../src/harness/controlplane/provision.ts';
import { DEFAULT_ISTIO_VERSION } from '../src/harness/controlplane/versions.ts';
import { benchControlPlanes } from './controlplane.ts';
import { benchIstioProfile, benchKind, benchKindImages } from './kind.ts';

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

function echoPods(n: number): PodSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `pod-${i}`,
    namespace: 'default',
    labels: { app: 'echo' },
    containers: [{ name: 'echo', workload: 'echo', args: ['--port', '8080'], ready: { kind: 'http' as const, port: 8080, path: '/echo' } }],
  }));
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The pods' echo containers' resident memory, through the port (Cluster.sample): the same reading on every substrate. */
async function rssMiB(cluster: Cluster): Promise<number> {
  const samples = await Promise.all([...cluster.pods.keys()].map((k) => cluster.sample(k, 'echo')));
  return samples.reduce((n, x) => n + x.rssBytes, 0) / 2 ** 20;
}

type SubstrateName = 'netns' | 'docker';
/** The environment that makes upCluster (and a child mocha) use `substrate`. */
const onSubstrate = (substrate: SubstrateName): NodeJS.ProcessEnv => ({ ...process.env, [SUBSTRATE_ENV]: substrate });

async function upDown(n: number, substrate: SubstrateName = 'netns') {
  const topology: Topology = { name: `bench-${n}`, pods: echoPods(n), services: [] };
  const t0 = performance.now();
  const cluster = await upCluster(topology, { wire: false }, onSubstrate(substrate));
  const upMs = performance.now() - t0;
  const mem = await rssMiB(cluster);
  const t1 = performance.now();
  await cluster.down();
  const downMs = performance.now() - t1;
  log(`${substrate}: ${n} pods: up ${upMs.toFixed(0)} ms, down ${downMs.toFixed(0)} ms, ${(mem / n).toFixed(1)} MiB per pod`);
  return { pods: n, upMs: Math.round(upMs), downMs: Math.round(downMs), rssMiBPerPod: +(mem / n).toFixed(1) };
}

async function matrix(n: number, wire: boolean, substrate: SubstrateName = 'netns') {
  // the matrix is probed in batches, one wire-canary sync each (probeMany)
  const cluster = await upCluster({ name: 'bench-matrix', pods: echoPods(n), services: [] }, { wire }, onSubstrate(substrate));
  try {
    const calls = [];
    for (const a of cluster.pods.values()) for (const b of cluster.pods.values()) calls.push({ from: a.key, req: { protocol: 'http' as const, host: b.ip, port: 8080, path: '/echo' } });
    await cluster.probeMany(calls.slice(0, n), { wire }); // warm-up
    const t0 = performance.now();
    const rounds = 3;
    let allowed = 0;
    for (let r = 0; r < rounds; r++) allowed += (await cluster.probeMany(calls, { wire })).filter((x) => x.verdict === 'allowed:plaintext').length;
    const s = (performance.now() - t0) / 1000;
    const cellsPerS = (calls.length * rounds) / s;
    log(`${substrate}: ${n}x${n} matrix (wire ${wire ? 'on' : 'off'}): ${cellsPerS.toFixed(0)} cells/s, ${allowed}/${calls.length * rounds} allowed`);
    return { size: `${n}x${n}`, wire, cells: calls.length * rounds, cellsPerS: Math.round(cellsPerS), allowed };
  } finally {
    await cluster.down();
  }
}

/**
 * The throughput-budget run in Istio's units (fortio at a fixed rate, fixtures/budgets.yaml's full settings: ≥ 5
 * interleaved rounds) per Istio control plane: the emulation, and istiod when it is provisioned (then only the
 * baseline and the Istio paths: CF and C2C do not depend on it). Per path and connection count: rate,
 * connections, payloadBytes, achievedRps, latencyAddedMs, vcpuPer1kRps and rssMiB per data-plane process, rounds,
 * spread; the closed-loop maximum as the secondary ratio.
 */
async function budgets() {
  const runs = [];
  for (const cp of ['emulated', 'istiod'] as const) {
    if (cp === 'istiod') {
      try {
        resolveIstio(process.env.MESHPROOF_ISTIO_VERSION ?? DEFAULT_ISTIO_VERSION);
        resolveKube();
      } catch (e) {
        log(`budget: istiod not provisioned, the Istio paths are measured on the emulation only (${(e as Error).message})`);
        continue;
      }
    }
    const prior = process.env.MESHPROOF_CONTROL_PLANE;
    process.env.MESHPROOF_CONTROL_PLANE = cp;
    try {
      const run = await runBudgets({ log: (l) => log(`budget ${cp}: ${l}`), ...(cp === 'istiod' ? { only: ['istio-mtls', 'istio-permissive-plaintext'], settings: false as const } : {}) });
      log(`budget run (${cp}) ${run.seconds.toFixed(1)} s (${run.runDir})\n${renderRateTable(run.rate, run.budgets)}${run.summary ? `\nclosed loop:\n${renderTable(run.summary)}` : ''}`);
      const s = run.summary;
      runs.push({
        controlPlane: cp,
        runDir: run.runDir,
        seconds: +run.seconds.toFixed(1),
        phases: Object.fromEntries(Object.entries(run.phases).map(([k, v]) => [k, +v.toFixed(1)])),
        fortio: run.rate.fortio,
        settings: run.rate.settings,
        verified: run.verified,
        paths: run.rate.rows,
        warnings: run.rate.warnings,
        discarded: run.rate.discarded,
        waitedS: run.rate.waitedS,
        budgets: run.budgets,
        closedLoop: s
          ? {
              settings: s.settings,
              paths: s.paths.map((p) => ({ id: p.id, limitedBy: p.limitedBy, rps: p.metrics.rps.median, rpsRatio: p.metrics.rps_ratio.median, rpsRatioSpread: p.metrics.rps_ratio.spread, rounds: p.metrics.rps_ratio.rounds })),
              ceiling: s.ceiling ?? null,
              warnings: s.warnings,
            }
          : null,
      });
    } finally {
      if (prior === undefined) delete process.env.MESHPROOF_CONTROL_PLANE;
      else process.env.MESHPROOF_CONTROL_PLANE = prior;
    }
  }
  return { runs };
}

/** The load targets: the issue's spread ≤ 10% on vCPU per 1000 req/s (each data-plane process) and on p90 added, the budgets. */
function loadTargets(b: Awaited<ReturnType<typeof budgets>>) {
  const out: { name: string; target: string; value: number | string; met: boolean }[] = [];
  for (const run of b.runs) {
    out.push({ name: `throughput-budget run (${run.controlPlane})`, target: '<= 600 s', value: run.seconds, met: run.seconds <= 600 });
    for (const r of run.paths) {
      const at = `${r.path} c=${r.connections} (${r.controlPlane}${r.istioVersion ? ` ${r.istioVersion}` : ''}) over ${r.validRounds} rounds`;
      for (const [role, x] of Object.entries(r.spread.vcpuPer1kRps)) out.push({ name: `spread of ${role} vCPU per 1000 req/s, ${at}`, target: `<= ${RATE_SPREAD_MAX * 100}%`, value: +(x * 100).toFixed(1), met: x <= RATE_SPREAD_MAX });
      const p90 = r.spread.latencyAddedMs?.p90;
      if (p90 !== undefined) out.push({ name: `spread of p90 added, ${at}`, target: `<= ${RATE_SPREAD_MAX * 100}%`, value: +(p90 * 100).toFixed(1), met: p90 <= RATE_SPREAD_MAX });
    }
    out.push({ name: `throughput budgets met (${run.controlPlane})`, target: 'all', value: `${run.budgets.filter((x) => x.pass).length}/${run.budgets.length}`, met: run.budgets.every((x) => x.pass) });
  }
  return out;
}

async function denyLatency(count: number) {
  const pods: PodSpec[] = [
    { name: 'client', namespace: 'default' },
    {
      name: 'resetter',
      namespace: 'default',
      iptables: '*filter\n-A INPUT -i mpeth0 -p tcp --dport 8080 ! --syn -j REJECT --reject-with tcp-reset\nCOMMIT\n',
      containers: [{ name: 'echo', workload: 'echo', args: ['--port', '8080'], ready: { kind: 'http' as const, port: 8080, path: '/echo' } }],
    },
    { name: 'closed', namespace: 'default' },
  ];
  const cluster = await upCluster({ name: 'bench-deny', pods, services: [] }, { wire: false });
  try {
    const out: Record<string, { count: number; verdicts: string[]; p50Ms: number; p95Ms: number }> = {};
    for (const [label, to] of [['reset', 'resetter'], ['refused', 'closed']] as const) {
      const ms: number[] = [];
      const verdicts = new Set<string>();
      for (let i = 0; i < count; i++) {
        const r = await cluster.probe('client', { protocol: 'http', host: cluster.pod(to).ip, port: 8080, timeoutMs: 1000 }, { wire: false });
        ms.push(r.evidence.ms);
        verdicts.add(r.verdict);
      }
      out[label] = { count, verdicts: [...verdicts], p50Ms: +percentile(ms, 50).toFixed(2), p95Ms: +percentile(ms, 95).toFixed(2) };
      log(`${label}: p50 ${out[label].p50Ms} ms, p95 ${out[label].p95Ms} ms over ${count} (${[...verdicts].join(',')})`);
    }
    return out;
  } finally {
    await cluster.down();
  }
}

/** One profile's suites, run by mocha in a child process as `npm test` runs them: wall time and outcome. */
function profileSuites(glob: string, substrate: SubstrateName = 'netns') {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join('node_modules', 'mocha', 'bin', 'mocha.js'), glob], { encoding: 'utf8', maxBuffer: 64 << 20, env: onSubstrate(substrate) });
  const seconds = +((performance.now() - t0) / 1000).toFixed(1);
  const passing = Number(/(\d+) passing/.exec(r.stdout)?.[1] ?? 0);
  const failing = Number(/(\d+) failing/.exec(r.stdout)?.[1] ?? 0);
  log(`${substrate}: ${glob}: ${seconds} s, ${passing} passing, ${failing} failing`);
  return { glob, seconds, passing, failing, exit: r.status };
}

/**
 * netns and docker side by side (issue 12): pods up for 10 and 50, teardown, the 10×10 matrix with the wire off and on,
 * and the CF profile's suites. No target for docker beyond "every suite passes".
 */
async function sideBySide() {
  const out: Record<string, unknown> = {};
  for (const substrate of ['netns', 'docker'] as const) {
    const upDowns = [await upDown(10, substrate), await upDown(50, substrate)];
    const matrices = [await matrix(10, false, substrate), await matrix(10, true, substrate)];
    out[substrate] = { upDown: upDowns, matrices, cfProfile: profileSuites('suites/cf-*.spec.ts', substrate) };
  }
  return out;
}

/** The bench's report so far (a part run merges into it). */
function priorReport(): { targets?: { name: string }[] } & Record<string, unknown> {
  try {
    return JSON.parse(readFileSync('reports/bench.json', 'utf8')) as { targets?: { name: string }[] } & Record<string, unknown>;
  } catch {
    return {};
  }
}

const started = new Date();
// `npm run bench -- --load-only`: only the throughput-budget part, merged into reports/bench.json
if (process.argv.includes('--load-only')) {
  const budgetRun = await budgets();
  const prior = priorReport();
  const isLoad = (t: { name: string }) => /^(spread of .*(vCPU per 1000 req\/s|p90 added)|throughput-budget run|throughput budgets met)/.test(t.name);
  const report = { ...prior, kind: 'meshproof-bench', loadFinished: new Date().toISOString(), budgets: budgetRun, targets: [...(prior.targets ?? []).filter((t) => !isLoad(t)), ...loadTargets(budgetRun)] };
  mkdirSync('reports', { recursive: true });
  writeFileSync('reports/bench.json', JSON.stringify(report, null, 2));
  for (const t of loadTargets(budgetRun)) log(`${t.met ? 'met ' : 'MISS'} ${t.name}: ${t.value} (target ${t.target})`);
  log('wrote reports/bench.json (load part)');
  process.exit(0);
}
// `npm run bench -- --substrates-only`: only netns vs docker, merged into reports/bench.json
if (process.argv.includes('--substrates-only')) {
  const report = { ...priorReport(), kind: 'meshproof-bench', substratesFinished: new Date().toISOString(), substrates: await sideBySide() };
  mkdirSync('reports', { recursive: true });
  writeFileSync('reports/bench.json', JSON.stringify(report, null, 2));
  log('wrote reports/bench.json (substrates part)');
  process.exit(0);
}
// `npm run bench -- --kind-only`: only real Istio on a kind cluster (issue 14: create, image load, Istio, sentences mesh), merged into reports/bench.json
if (process.argv.includes('--kind-only')) {
  const kindImages = await benchKindImages(log);
  const kindIstio = await benchKind(log);
  // the whole Istio profile, netns then kind (~10 min): only when asked
  const istioProfile = process.argv.includes('--with-profile') ? benchIstioProfile(log) : priorReport().istioProfile;
  const report = { ...priorReport(), kind: 'meshproof-bench', kindFinished: new Date().toISOString(), kindImages, kindIstio, ...(istioProfile ? { istioProfile } : {}) };
  mkdirSync('reports', { recursive: true });
  writeFileSync('reports/bench.json', JSON.stringify(report, null, 2));
  log('wrote reports/bench.json (kind part)');
  process.exit(0);
}
const upDowns: Awaited<ReturnType<typeof upDown>>[] = [];
for (const n of [2, 10, 50]) upDowns.push(await upDown(n));
const matrices = [await matrix(10, false), await matrix(10, true)];
const deny = await denyLatency(200);
const budgetRun = await budgets();
const profiles = { cf: profileSuites('suites/cf-*.spec.ts'), c2c: profileSuites('suites/c2c-*.spec.ts') };
const controlPlanes = await benchControlPlanes(log);
const substrates = await sideBySide();
// the kind substrate beside the netns kube layer (controlPlanes): images cold and cached, its phases, the Istio profile on both
const kindSubstrate = { images: await benchKindImages(log), istio: await benchKind(log), istioProfile: benchIstioProfile(log) };

const by = (n: number) => upDowns.find((u) => u.pods === n)!;
const targets = [
  { name: '10 pods up', target: '<= 3000 ms', value: by(10).upMs, met: by(10).upMs <= 3000 },
  { name: '50 pods up', target: '<= 15000 ms', value: by(50).upMs, met: by(50).upMs <= 15000 },
  { name: 'teardown (50 pods)', target: '<= 2000 ms', value: by(50).downMs, met: by(50).downMs <= 2000 },
  { name: 'probed cells/s (10x10, wire off)', target: '>= 200', value: matrices[0]!.cellsPerS, met: matrices[0]!.cellsPerS >= 200 },
  { name: 'p95 RST verdict', target: '<= 50 ms', value: deny.reset!.p95Ms, met: deny.reset!.p95Ms <= 50 },
  { name: 'CF profile suites (cf-*)', target: '<= 60 s, all passing', value: profiles.cf.seconds, met: profiles.cf.seconds <= 60 && profiles.cf.failing === 0 && profiles.cf.exit === 0 },
  { name: 'C2C profile suites (c2c-*)', target: '<= 45 s, all passing', value: profiles.c2c.seconds, met: profiles.c2c.seconds <= 45 && profiles.c2c.failing === 0 && profiles.c2c.exit === 0 },
  ...loadTargets(budgetRun),
];
const report = {
  kind: 'meshproof-bench',
  started: started.toISOString(),
  finished: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1) },
  versions: await versions(),
  substrate: { netns: { upDown: upDowns, matrices, deny } },
  substrates,
  budgets: budgetRun,
  profiles,
  controlPlanes,
  kindSubstrate,
  targets,
};
mkdirSync('reports', { recursive: true });
writeFileSync('reports/bench.json', JSON.stringify(report, null, 2));
for (const t of targets) log(`${t.met ? 'met ' : 'MISS'} ${t.name}: ${t.value} (target ${t.target})`);
log('written reports/bench.json');
