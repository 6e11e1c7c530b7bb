// `meshproof run`: provision, run the selected suites (mocha's programmatic API), write
// <out>/results.json with the run metadata and every mocha test, render the reports, and gate
// against a baseline.
//
// One Envoy and one Istio version: the suites run in this process. Several: one child `meshproof run`
// per version (a Mocha instance runs once, and spec modules loaded once are not loaded again), each
// into <out>/envoy-<version>/ (or <out>/istio-<version>/) with its own results.json and reports;
// then <out>/results.json merges them (records stamped with their envoyVersion and istioVersion)
// and the reports there have a column per version. Several versions of one axis only: several
// Istio versions with several Envoy versions, or with --control-plane both, is refused.
import { ISTIO_DEVIATIONS } from '../controlplane/istiod/install.ts';
import { controlPlaneProvenance, resolveIstio } from '../controlplane/provision.ts';
import { CONTROL_PLANE_ENV, CONTROL_PLANES, ISTIO_VERSION_ENV } from '../controlplane/index.ts';
import { DEFAULT_ISTIO_VERSION, ISTIO_VERSIONS, parseIstioVersions } from '../controlplane/versions.ts';
import type { ControlPlaneKind } from '../profiles/istio/mesh.ts';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { DEFAULT_ENVOY_VERSION, assertEnvoyVersion, runDoctor, versions as toolVersions } from './doctor.ts';
import { EXIT, UserError } from '../model/errors.ts';
import { runSuiteFiles } from './mocha.ts';
import { listSuites, matrixUnits, parseList, parseShard, selectSuites, type Shard, type SuiteFile, type Unit } from './suites.ts';
import { conformanceFailures, printGate, printIncomplete, readResultsPath, resolveResultsPath } from './reports.ts';
import { completeness, incompleteLine, mergePlans } from '../report/completeness.ts';
import { columnLabel, varyingAxes, type PlannedUnit, type ResultsFile, type RunMetadata, type RunPass, type TestResult } from '../report/meta.ts';
import { diffRuns, loadResults, machineInfo, mergeResults, patchResultsFile, renderRunReports, RESULTS_FILE, writeResultsFile, writeRunMetadata } from '../report/render.ts';
import { readImageRewrites, RESULTS_DIR_ENV } from '../report/results.ts';
import { REPORTS_DIR_ENV } from '../substrate/state.ts';
import { assertSubstrate, DEFAULT_SUBSTRATE, KIND_SCOPE, SUBSTRATE_ENV, useExistingCluster, type SubstrateName } from '../substrate/index.ts';
import { requireRoot } from './doctor.ts';

/** The profiles whose suites run on the run's control plane (istiod or the emulation): Istio's own, cf-for-k8s on Istio, the load suite's Istio bed. */
export const ISTIOD_PROFILES: readonly string[] = ['istio', 'cf-for-k8s', 'load'];
const onIstiod = (profile: string) => ISTIOD_PROFILES.includes(profile);

/** A unit of the plan: a suite under one Envoy version and, over several Istio versions, one Istio release. */
export type RunUnit = Unit & { istioVersion?: string };

export interface RunFlags {
  substrate?: string;
  profile?: string;
  suite?: string;
  envoyVersion?: string;
  /** Where the Istio suites' sidecar config comes from: istiod (Istio's own code) or emulated. */
  controlPlane?: string;
  istioVersion?: string;
  out?: string;
  baseline?: string;
  gate?: boolean;
  shard?: string;
  /** --no-provision (hidden): the parent `meshproof run` already provisioned. */
  provision?: boolean;
  /** --run-id (hidden): the id a parent chose for this version's run. */
  runId?: string;
  /** --kubeconfig/--image-registry: the kind substrate on a cluster the user already has. */
  kubeconfig?: string;
  imageRegistry?: string;
}

export interface RunContext {
  repoRoot: string;
  print: (line: string) => void;
}

/** Everything checked before anything starts: a bad flag is exit 2 before provisioning or root is needed. */
export interface RunPlan {
  runId: string;
  substrate: string;
  envoyVersions: string[];
  controlPlane: ControlPlaneKind | 'both';
  /** The Istio release of a run over one (istioVersions[0]). */
  istioVersion: string;
  /** `--istio-version a,b`: several means one child run per version into <out>/istio-<version>/. */
  istioVersions: string[];
  suites: SuiteFile[];
  shard?: Shard;
  units: RunUnit[];
  /** A run over several versions: one child `meshproof run` per entry, into <out>/<dir>/; empty: the suites run in this process. */
  passes: RunPass[];
  /** Profiles of the default selection a run over several Istio versions does not run (not on istiod). */
  leftOut: string[];
  out: string;
  baseline?: { path: string; file: ResultsFile };
  gate: boolean;
  provision: boolean;
}

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}-run-${randomBytes(2).toString('hex')}`;
}

export function planRun(flags: RunFlags, repoRoot: string): RunPlan {
  // an unknown substrate is refused here, never run on another
  const substrate = assertSubstrate(flags.substrate ?? DEFAULT_SUBSTRATE);
  const givenEnvoy = parseList(flags.envoyVersion);
  for (const v of givenEnvoy ?? []) assertEnvoyVersion(v);
  // the kube layer (istiod's API server and node agent) runs on netns only: on docker the Istio suites run on the emulation
  if (substrate === 'docker' && flags.controlPlane !== undefined && flags.controlPlane !== 'emulated') {
    throw new UserError(`--control-plane ${flags.controlPlane} needs the kube layer, which runs on the netns substrate only: use --substrate netns, or --control-plane emulated on docker`);
  }
  if (substrate === 'kind' && flags.controlPlane !== undefined && flags.controlPlane !== KIND_SCOPE.controlPlane) {
    throw new UserError(`--control-plane ${flags.controlPlane} on kind: the kind substrate runs Istio's own istiod (the emulation needs pods the harness runs itself): use --control-plane istiod, or --substrate netns or docker`);
  }
  const controlPlane = (flags.controlPlane ?? (substrate === 'docker' ? 'emulated' : 'istiod')) as ControlPlaneKind | 'both';
  if (!([...CONTROL_PLANES, 'both'] as readonly string[]).includes(controlPlane)) throw new UserError(`unknown control plane ${JSON.stringify(flags.controlPlane)}: the control planes are ${CONTROL_PLANES.join(', ')} (or both)`);
  if (controlPlane === 'both' && (givenEnvoy?.length ?? 1) > 1) throw new UserError('--control-plane both runs one Envoy version: give one --envoy-version');
  const istioList = flags.istioVersion ?? DEFAULT_ISTIO_VERSION;
  const istioVersions = parseIstioVersions(istioList);
  const istioVersion = istioVersions[0]!;
  const selected = selectSuites(listSuites(join(repoRoot, 'suites')), { suites: parseList(flags.suite), profiles: parseList(flags.profile) });
  const shard = flags.shard === undefined ? undefined : parseShard(flags.shard);
  // Several Istio versions: each pass runs the suites on istiod with that release's own Envoy (one --envoy-version: that one).
  const multiIstio = istioVersions.length > 1;
  const envoyOf = (istio: string) => givenEnvoy?.[0] ?? ISTIO_VERSIONS[istio]!.envoyVersion;
  if (multiIstio) {
    const list = istioVersions.join(',');
    if (controlPlane === 'both') throw new UserError(`--control-plane both compares the emulation with one istiod: give one --istio-version, or run --control-plane istiod --istio-version ${list}`);
    if (controlPlane !== 'istiod') throw new UserError(`--istio-version ${list} runs each release's istiod: use --control-plane istiod (the emulation has no Istio version)`);
    if ((givenEnvoy?.length ?? 0) > 1) throw new UserError(`--istio-version ${list} with --envoy-version ${givenEnvoy!.join(',')}: vary one of them per run (one --envoy-version for every Istio version, or none for each release's own: ${istioVersions.map((v) => `${v} → ${ISTIO_VERSIONS[v]!.envoyVersion}`).join(', ')})`);
    if (shard) throw new UserError(`--shard splits a run over one Istio version: run --shard once per --istio-version (e.g. --istio-version ${istioVersion} --envoy-version ${envoyOf(istioVersion)} --shard ${shard.index}/${shard.total}) and join them with meshproof merge`);
    // named with --profile or --suite: a suite not on istiod is a mistake; by default only the suites on istiod are selected (the run says so)
    const off = [...new Set(selected.filter((x) => !onIstiod(x.profile)).map((x) => x.profile))];
    if (off.length && (flags.profile !== undefined || flags.suite !== undefined)) {
      throw new UserError(`--istio-version ${list} runs only the suites on istiod (profiles ${ISTIOD_PROFILES.join(', ')}), not profile ${off.join(', ')}: use --profile istio (or --suite istio-...), and run the others without --istio-version`);
    }
  }
  // kind runs the Istio profile only (KIND_SCOPE): named others are a mistake, by default they are left out (the run says so)
  const onKind = (profile: string) => (KIND_SCOPE.profiles as readonly string[]).includes(profile);
  if (substrate === 'kind') {
    const off = [...new Set(selected.filter((x) => !onKind(x.profile)).map((x) => x.profile))];
    if (off.length && (flags.profile !== undefined || flags.suite !== undefined)) {
      throw new UserError(`--substrate kind runs only the suites of profile ${KIND_SCOPE.profiles.join(', ')} (on istiod), not profile ${off.join(', ')}: use --profile istio (or --suite istio-...), and run the others on --substrate netns or docker`);
    }
  }
  const suites = selected.filter((x) => (!multiIstio || onIstiod(x.profile)) && (substrate !== 'kind' || onKind(x.profile)));
  const leftOut = [...new Set(selected.filter((x) => !suites.includes(x)).map((x) => x.profile))];
  // one release on istiod pairs with its own Envoy as several do (1.29.2 → 1.37.0); the emulation has no release
  const envoyVersions = multiIstio ? [...new Set(istioVersions.map(envoyOf))] : (givenEnvoy ?? [controlPlane === 'emulated' ? DEFAULT_ENVOY_VERSION : envoyOf(istioVersion)]);
  const units: RunUnit[] = multiIstio ? istioVersions.flatMap((i) => suites.map((suite) => ({ envoyVersion: envoyOf(i), istioVersion: i, suite }))) : matrixUnits(envoyVersions, suites, shard);
  const envoyRun = [...new Set(units.map((u) => u.envoyVersion))];
  const passes: RunPass[] = multiIstio
    ? istioVersions.map((i) => ({ dir: `istio-${i}`, controlPlane, envoyVersion: envoyOf(i), istioVersion: i }))
    : controlPlane !== 'both' && envoyRun.length > 1
      ? envoyRun.map((v) => ({ dir: `envoy-${v}`, controlPlane, envoyVersion: v, ...(controlPlane === 'istiod' ? { istioVersion } : {}) }))
      : [];
  if (flags.gate && !flags.baseline) throw new UserError('--gate needs --baseline <results.json or run directory> to gate against');
  const baseline = flags.baseline ? { path: resolveResultsPath(flags.baseline), file: readResultsPath(flags.baseline) } : undefined;
  const runId = flags.runId ?? newRunId();
  const out = resolve(flags.out ?? join(repoRoot, 'reports', runId));
  if (existsSync(join(out, RESULTS_FILE))) {
    throw new UserError(`${join(out, RESULTS_FILE)} already exists: choose another --out, or remove it (meshproof report ${out} re-renders it)`);
  }
  return {
    runId,
    substrate,
    envoyVersions,
    controlPlane,
    istioVersion,
    istioVersions,
    suites,
    shard,
    units,
    passes,
    leftOut,
    out,
    baseline,
    gate: !!flags.gate,
    provision: flags.provision !== false,
  };
}

const clock = () => new Date().toISOString().slice(11, 19);

function meshproofVersion(repoRoot: string): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Several Istio versions: every one must be built before anything starts (a build is 15 min cold and
 * belongs to doctor); one line naming the fix for all that are not.
 */
export function requireIstioBuilt(versions: string[]): void {
  const missing: { version: string; why: string }[] = [];
  for (const version of versions) {
    try {
      resolveIstio(version);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      missing.push({ version, why: e.message.replace(/: run meshproof doctor .*$/, '') });
    }
  }
  if (!missing.length) return;
  throw new UserError(
    `--istio-version ${versions.join(',')} needs every version built first (${missing.map((m) => m.why).join('; ')}): run meshproof doctor --fix --istio-version ${missing.map((m) => m.version).join(',')}`,
  );
}

export async function runCommand(flags: RunFlags, ctx: RunContext): Promise<number> {
  const plan = planRun(flags, ctx.repoRoot);
  await useExistingCluster(plan.substrate as SubstrateName, flags.kubeconfig, flags.imageRegistry);
  const { print } = ctx;
  const phase = (what: string) => print(`\n==> [${clock()}] ${what}`);
  if (plan.provision && plan.istioVersions.length > 1) requireIstioBuilt(plan.istioVersions);
  // Network namespaces need root: say so before anything is written, not as an EACCES halfway through.
  if (plan.units.length) requireRoot('run');
  mkdirSync(plan.out, { recursive: true });
  const versionsRun = [...new Set(plan.units.map((u) => u.envoyVersion))];
  const matrixSize = plan.istioVersions.length > 1 ? plan.units.length : plan.envoyVersions.length * plan.suites.length;
  const istioLine = plan.controlPlane === 'istiod' ? ` ${plan.istioVersions.join(', ')}` : '';
  const started = new Date().toISOString();
  phase(
    `meshproof run ${plan.runId}: ${plan.units.length} of ${matrixSize} (version × suite) units` +
      `${plan.shard ? ` in shard ${plan.shard.index}/${plan.shard.total}` : ''}, substrate ${plan.substrate}, control plane ${plan.controlPlane}${istioLine}, envoy ${versionsRun.join(', ') || plan.envoyVersions.join(', ')}, out ${plan.out}`,
  );
  if (plan.leftOut.length && plan.substrate === 'kind') print(`    kind: the suites of profile ${KIND_SCOPE.profiles.join(', ')} on istiod only; not run here: profile ${plan.leftOut.join(', ')} (run them on --substrate netns or docker)`);
  else if (plan.leftOut.length) print(`    several Istio versions: the suites on istiod only (profiles ${ISTIOD_PROFILES.join(', ')}); not run here: profile ${plan.leftOut.join(', ')} (run them without --istio-version)`);

  if (plan.provision && plan.units.length) {
    for (const [i, v] of versionsRun.entries()) {
      // the Istio releases run with this Envoy (doctor also checks each release's own Envoy wheel)
      const istioVersions = plan.controlPlane === 'emulated' ? [] : [...new Set(plan.units.filter((u) => u.envoyVersion === v).map((u) => u.istioVersion ?? plan.istioVersion))];
      // docker and kind also need their engine, images and (kind) node image and tools
      const substrates = plan.substrate === DEFAULT_SUBSTRATE ? [] : [plan.substrate];
      phase(`[provision ${i + 1}/${versionsRun.length}] meshproof doctor --fix --envoy-version ${v}${istioVersions.length ? ` --istio-version ${istioVersions.join(',')}` : ''}${substrates.length ? ` --substrate ${substrates.join(',')}` : ''}`);
      const lines: string[] = [];
      const code = await runDoctor({ fix: true, envoyVersion: v, istioVersions, scope: 'run', substrates, log: (l) => (l.startsWith('ok ') ? lines.push(l) : print(`    ${l}`)) });
      if (code !== 0) {
        print('    environment not ready (above); meshproof doctor lists what is missing');
        return EXIT.usage;
      }
      print(`    ok: ${lines.map((l) => l.replace(/^ok\s+/, '').replace(/ \(.*\)$/, '')).join(', ')}`);
    }
  }

  let envFailed = false;
  let interrupted = false;
  if (!plan.units.length) {
    phase(`nothing to run: this shard has no units (the matrix has ${matrixSize})`);
    writeRunMetadata(plan.out, await metadata(plan, ctx, started, [], versionsRun), { planned: [], completed: [] });
  } else if (plan.controlPlane === 'both') {
    return runBothControlPlanes(plan, ctx);
  } else if (!plan.passes.length) {
    const v = versionsRun[0]!;
    await runOneVersion(plan, ctx, v, plan.units.map((u) => u.suite), started);
  } else {
    const r = await runPassChildren(plan, ctx, started);
    envFailed = r.envFailed;
    interrupted = r.interrupted;
  }

  // Reports, then the verdict.
  phase('reports');
  const current = loadResults(plan.out);
  const { files } = renderRunReports(plan.out);
  for (const f of [join(plan.out, RESULTS_FILE), ...files]) print(`    ${f}`);
  for (const p of plan.passes) {
    const dir = join(plan.out, p.dir);
    if (existsSync(join(dir, RESULTS_FILE))) print(`    ${dir}/ (${passLabel(p)} alone: its conformance-report.yaml, summary.md, report.html, ...)`);
  }

  const fails = conformanceFailures(current);
  let regressed = 0;
  if (plan.baseline) {
    phase(`against the baseline ${plan.baseline.path}${plan.gate ? ' (gate)' : ''}`);
    regressed = printGate(plan.baseline.file, current, plan.gate, print, '    ');
  }

  const t = tallyLine(current);
  phase(`${t}; ${fails.tests} failed tests, ${fails.cells} wrong cells, ${fails.budgets} missed budgets`);
  const incomplete = printIncomplete(current, print, '', '    ');
  if (interrupted) return 130;
  if (envFailed) {
    print('    a version\'s run stopped on an environment error (exit 2): see its output above');
    return EXIT.usage;
  }
  // Bad input met by a suite (budgets.yaml, a route table, a fixture) is the user's to fix, not a conformance failure.
  const bad = (current.tests ?? []).find((x) => x.userError);
  if (bad) throw new UserError(`${bad.suite}: ${(bad.error ?? 'bad input').split('\n')[0]}`);
  if (incomplete || fails.tests || fails.cells || fails.budgets) return EXIT.failure;
  if (plan.gate && regressed) return EXIT.failure;
  return EXIT.ok;
}

/** `istio 1.29.2 · envoy 1.37.0` (a pass over Istio versions), `envoy 1.37.0` (over Envoy versions). */
const passLabel = (p: RunPass): string => (p.dir.startsWith('istio-') ? `istio ${p.istioVersion} · envoy ${p.envoyVersion}` : `envoy ${p.envoyVersion}`);

function tallyLine(f: ResultsFile): string {
  const tests = f.tests ?? [];
  const passed = tests.filter((t) => t.state === 'passed').length;
  const axes = varyingAxes(f);
  const over = [...new Set(f.records.map((r) => columnLabel(r, axes)).filter(Boolean))].join(', ');
  return `${tests.length} tests (${passed} passed), ${f.records.length} cells${over ? ` over ${over}` : ''}`;
}

/** The user's images the run replaced with offline builds (the kind substrate), as deviations from the YAML as written. */
function imageDeviations(out: string): { setting: string; why: string }[] {
  return readImageRewrites(out).map((setting) => ({ setting, why: 'image rewritten before apply: this machine pulls no image, so the workload runs from meshproof\'s offline build (kind substrate)' }));
}

async function metadata(plan: RunPlan, ctx: RunContext, started: string, profiles: string[], envoyVersions: string[]): Promise<RunMetadata> {
  const versions: Record<string, string> = { meshproof: meshproofVersion(ctx.repoRoot) };
  if (envoyVersions.length === 1) Object.assign(versions, await toolVersions(envoyVersions[0]));
  else if (envoyVersions.length > 1) {
    Object.assign(versions, await toolVersions(envoyVersions[0]));
    versions.envoy = envoyVersions.join(', ');
  }
  // the profiles whose suites ran on istiod
  const istiod = plan.controlPlane === 'istiod' && profiles.some(onIstiod);
  const multi = plan.istioVersions.length > 1;
  if (istiod) versions.istio = plan.istioVersions.join(', ');
  const provenance = istiod ? (await Promise.all(plan.istioVersions.map((v) => controlPlaneProvenance(v)))).flat() : [];
  return {
    run: plan.runId,
    substrate: plan.substrate,
    controlPlane: plan.controlPlane,
    ...(istiod ? { ...(multi ? { istioVersions: plan.istioVersions } : { istioVersion: plan.istioVersion }), istioDeviations: [...ISTIO_DEVIATIONS, ...imageDeviations(plan.out)], provenance } : {}),
    profiles,
    started,
    finished: new Date().toISOString(),
    machine: machineInfo(),
    versions,
    envoyVersions,
    ...(plan.shard ? { shard: `${plan.shard.index}/${plan.shard.total}` } : {}),
    suites: [...new Set(plan.units.map((u) => u.suite.name))],
    ...(plan.passes.length ? { passes: plan.passes } : {}),
  };
}

/** The profiles a run reports: those its records name, plus the profile of each suite that recorded nothing. */
function profilesOf(file: ResultsFile, suites: SuiteFile[]): string[] {
  const recorded = new Set(file.records.map((r) => r.suite));
  return [...new Set([...file.records.map((r) => r.profile), ...suites.filter((s) => !recorded.has(s.name)).map((s) => s.profile)])];
}

/** A planned unit of results.json: a suite under one Envoy version and, when it runs on istiod, its Istio release (parent and child name it alike). */
const unitOf = (suite: SuiteFile, envoyVersion: string, controlPlane: string, istioVersion: string): PlannedUnit => ({
  suite: suite.name,
  profile: suite.profile,
  envoyVersion,
  ...(controlPlane === 'istiod' && onIstiod(suite.profile) ? { istioVersion } : {}),
});

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * This process runs the suites for one Envoy version into plan.out. results.json says what was
 * planned from the start and is updated as each suite finishes; a run that stops early (Ctrl-C,
 * SIGTERM, an error) still writes what it knows, marked `stopped`, and renders its reports
 * (junit.xml included), from a synchronous exit handler when the teardown ends the process.
 */
async function runOneVersion(plan: RunPlan, ctx: RunContext, envoyVersion: string, suites: SuiteFile[], started: string): Promise<void> {
  // Suites append their records to their cluster's results.json and, through this, to ours.
  process.env[RESULTS_DIR_ENV] = plan.out;
  process.env.MESHPROOF_ENVOY_VERSION = envoyVersion;
  process.env[CONTROL_PLANE_ENV] = plan.controlPlane;
  process.env[ISTIO_VERSION_ENV] = plan.istioVersion;
  // the suites start their clusters with upCluster, which reads it
  process.env[SUBSTRATE_ENV] = plan.substrate;
  const meta = await metadata(plan, ctx, started, [...new Set(suites.map((s) => s.profile))], [envoyVersion]);
  const unit = (s: SuiteFile) => unitOf(s, envoyVersion, plan.controlPlane, plan.istioVersion);
  const planned = suites.map(unit);
  // On istiod, what ran under the run's Istio release says so, like the Envoy version (a suite's own records already do).
  const profileOfSuite = new Map(suites.map((s) => [s.name, s.profile]));
  const istioOf = (suite: string | undefined): string | undefined => (plan.controlPlane === 'istiod' && (suite === undefined || onIstiod(profileOfSuite.get(suite) ?? '')) ? plan.istioVersion : undefined);
  const completed: PlannedUnit[] = [];
  const tests: TestResult[] = [];
  writeRunMetadata(plan.out, meta, { planned, completed });

  let stopped: string | undefined;
  let written = false;
  const finalize = (why?: string) => {
    if (written) return;
    written = true;
    const file = loadResults(plan.out);
    for (const r of file.records) {
      r.envoyVersion ??= envoyVersion;
      const istio = istioOf(r.suite);
      if (istio) {
        r.controlPlane ??= 'istiod';
        r.istioVersion ??= istio;
      }
    }
    // budgets come from the load suite, whose Istio bed ran on the run's istiod
    for (const b of file.budgets ?? []) {
      b.envoyVersion ??= envoyVersion;
      const istio = istioOf(undefined);
      if (istio) b.istioVersion ??= istio;
    }
    // A test's profile is the one its suite's records name (the substrate suite's records say `none`).
    const recordProfile = new Map(file.records.map((r) => [r.suite, r.profile]));
    file.tests = tests.map((t) => {
      const istio = istioOf(t.suite);
      return { ...t, profile: recordProfile.get(t.suite) ?? t.profile, ...(istio ? { istioVersion: istio } : {}) };
    });
    // the images the suites' clusters rewrote (kind) are known only now
    const rewrites = imageDeviations(plan.out).filter((d) => !meta.istioDeviations?.some((x) => x.setting === d.setting));
    file.meta = { ...meta, ...(meta.istioDeviations && rewrites.length ? { istioDeviations: [...meta.istioDeviations, ...rewrites] } : {}), profiles: profilesOf(file, suites), finished: new Date().toISOString() };
    file.planned = planned;
    file.completed = completed;
    if (why) file.stopped = why;
    else delete file.stopped;
    writeResultsFile(plan.out, file);
    if (why) {
      // The process is on its way out: the reports are written here, not by runCommand.
      renderRunReports(plan.out);
      ctx.print(`\n==> [${clock()}] stopped (${why}): wrote what is known to ${plan.out} (results.json, junit.xml, ...); ${incompleteLine(completeness(file)) ?? ''}`);
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    stopped ??= sig;
    // No cluster is up, so no teardown handler (substrate/lifecycle.ts) will end the process: end it here.
    if (process.listenerCount(sig) === 1) process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  const onExit = () => {
    try {
      finalize(stopped ?? 'the process exited before the suites finished');
    } catch (e) {
      // on the way out: say it, the exit code stands
      process.stderr.write(`meshproof: could not write the partial results to ${plan.out}: ${(e as Error).message}\n`);
    }
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  process.on('exit', onExit);

  ctx.print(`\n==> [${clock()}] envoy ${envoyVersion}: ${suites.length} suite(s) (${suites.map((s) => s.name).join(', ')})`);
  // Suites read fixtures by paths relative to the repository.
  const cwd = process.cwd();
  process.chdir(ctx.repoRoot);
  try {
    await runSuiteFiles(suites, {
      repoRoot: ctx.repoRoot,
      print: ctx.print,
      envoyVersion,
      tests,
      // One run, one directory: each suite's clusters (logs, wire.pcap, results.json) go under <out>/suites/<suite>/.
      onSuiteStart: (s) => {
        process.env[REPORTS_DIR_ENV] = join(plan.out, 'suites', s.name);
      },
      onSuiteEnd: (s) => {
        if (stopped) return; // torn down under it: not finished
        completed.push(unit(s));
        patchResultsFile(plan.out, { completed, tests });
      },
    });
  } catch (e) {
    stopped ??= `error: ${((e as Error).message ?? String(e)).split('\n')[0]}`;
    throw e;
  } finally {
    process.chdir(cwd);
    delete process.env[RESULTS_DIR_ENV];
    delete process.env[REPORTS_DIR_ENV];
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    process.off('exit', onExit);
    finalize(stopped);
  }
}

/**
 * `--control-plane both`: every selected suite on the emulation into <out>/emulated/, the Istio suites on istiod into
 * <out>/istiod/, then every Istio cell where the two disagree into <out>/control-plane-diff.{json,md}: that list is
 * the simulator's conformance (each entry a fixed emulation or a truth-table row corrected with a source).
 */
async function runBothControlPlanes(plan: RunPlan, ctx: RunContext): Promise<number> {
  const bin = join(ctx.repoRoot, 'bin', 'meshproof.js');
  const codes: number[] = [];
  const istioSuites = plan.suites.filter((s) => s.profile === 'istio').map((s) => s.name);
  for (const [cp, suites] of [['emulated', plan.suites.map((s) => s.name)], ['istiod', istioSuites]] as const) {
    if (suites.length === 0) continue;
    const dir = join(plan.out, cp);
    ctx.print(`\n==> [${clock()}] control plane ${cp}: ${suites.length} suite(s) into ${dir}`);
    const args = [bin, 'run', '--substrate', plan.substrate, '--control-plane', cp, '--istio-version', plan.istioVersion, '--envoy-version', plan.envoyVersions[0]!, '--suite', suites.join(','), '--out', dir, '--no-provision', '--run-id', `${plan.runId}-${cp}`];
    const env = { ...process.env };
    delete env[RESULTS_DIR_ENV];
    const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: ctx.repoRoot });
    const code = await new Promise<number>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 128 : 1))));
    codes.push(code);
    if (code >= 128) return code;
  }
  const [a, b] = ['emulated', 'istiod'].map((cp) => join(plan.out, cp, RESULTS_FILE));
  if (!existsSync(a!) || !existsSync(b!)) return Math.max(EXIT.failure, ...codes);
  const istio = (f: ResultsFile): ResultsFile => ({ ...f, records: f.records.filter((r) => r.profile === 'istio') });
  const d = diffRuns(istio(loadResults(join(plan.out, 'emulated'))), istio(loadResults(join(plan.out, 'istiod'))));
  const lines = [
    `# Emulation vs istiod ${plan.istioVersion}: cells that disagree`,
    '',
    `${d.changed.length} changed, ${d.added.length} only on istiod, ${d.removed.length} only on the emulation.`,
    '',
    ...d.changed.map((c) => `- ${c.key}: emulated ${c.before.verdict}, istiod ${c.after.verdict}`),
    ...d.added.map((r) => `- only on istiod: ${r.suite} ${r.scenario} ${r.from} → ${r.to}:${r.port} ${r.verdict}`),
    ...d.removed.map((r) => `- only on the emulation: ${r.suite} ${r.scenario} ${r.from} → ${r.to}:${r.port} ${r.verdict}`),
    '',
  ];
  writeFileSync(join(plan.out, 'control-plane-diff.md'), lines.join('\n'));
  writeFileSync(join(plan.out, 'control-plane-diff.json'), JSON.stringify(d, null, 2));
  for (const l of lines) ctx.print(l);
  const disagree = d.changed.length + d.added.length + d.removed.length;
  return Math.max(disagree ? EXIT.failure : EXIT.ok, ...codes);
}

/**
 * One child `meshproof run` per pass (an Envoy version into <out>/envoy-<v>/, or an Istio release into
 * <out>/istio-<v>/, each with its control plane, Istio and Envoy version named), then <out>/results.json merges them.
 */
async function runPassChildren(plan: RunPlan, ctx: RunContext, started: string): Promise<{ envFailed: boolean; interrupted: boolean }> {
  const bin = join(ctx.repoRoot, 'bin', 'meshproof.js');
  let envFailed = false;
  let interrupted = false;
  const parts: ResultsFile[] = [];
  const unitsOf = (p: RunPass) => plan.units.filter((u) => u.envoyVersion === p.envoyVersion && (u.istioVersion === undefined || u.istioVersion === p.istioVersion));
  for (const [i, p] of plan.passes.entries()) {
    if (interrupted) break;
    const suites = unitsOf(p).map((u) => u.suite);
    const dir = join(plan.out, p.dir);
    const tag = `[${p.dir.startsWith('istio-') ? 'istio' : 'envoy'} ${i + 1}/${plan.passes.length}] ${passLabel(p)}`;
    ctx.print(`\n==> [${clock()}] ${tag}: ${suites.length} suite(s) into ${dir}`);
    const args = [
      bin, 'run', '--substrate', plan.substrate, '--control-plane', p.controlPlane, '--istio-version', p.istioVersion ?? plan.istioVersion, '--envoy-version', p.envoyVersion,
      '--suite', suites.map((s) => s.name).join(','), '--out', dir, '--no-provision', '--run-id', `${plan.runId}-${p.dir}`,
    ];
    const env = { ...process.env };
    delete env[RESULTS_DIR_ENV];
    const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: ctx.repoRoot });
    // Ctrl-C reaches the child from the terminal too; a SIGTERM to us is passed on. The child tears down its pods.
    const forward = (sig: NodeJS.Signals) => {
      interrupted = true;
      child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 128 : 1))));
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    ctx.print(`==> [${clock()}] ${tag}: exit ${code}`);
    if (code === EXIT.usage) envFailed = true;
    if (code >= 128) interrupted = true;
    if (existsSync(join(dir, RESULTS_FILE))) parts.push(loadResults(dir));
  }
  const merged = mergeResults(parts);
  // What this run planned is every pass's units, whether or not its child got to write them.
  merged.planned = plan.units.map((u) => unitOf(u.suite, u.envoyVersion, plan.controlPlane, u.istioVersion ?? plan.istioVersion));
  merged.completed = mergePlans(parts).completed ?? [];
  if (interrupted) merged.stopped = merged.stopped ?? 'interrupted';
  const profiles = [...new Set(parts.flatMap((p) => p.meta?.profiles ?? []))];
  merged.meta = await metadata(plan, ctx, started, profiles, [...new Set(plan.passes.map((p) => p.envoyVersion))]);
  writeResultsFile(plan.out, merged);
  return { envFailed, interrupted };
}
