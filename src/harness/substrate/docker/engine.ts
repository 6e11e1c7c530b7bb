// meshproof's own docker engine: dockerd inside a private network namespace (its data root may persist under
// ~/.cache/meshproof/docker for the image cache; exec root and socket on the run's tmpfs state dir), or the engine a
// user names with DOCKER_HOST, which is used as it is and left running.
import { request } from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../model/errors.ts';
import { findOnPath } from '../../cli/tools.ts';
import { onTeardown } from '../lifecycle.ts';
import { pollUntil } from '../poll.ts';
import { run, runCapture } from '../sh.ts';
import { mountStateTmpfs, newRunId, processStart, stateDirOf, teardownRun, writeRecord } from '../state.ts';
import { Supervisor, type Proc } from '../supervisor.ts';
import { dockerCacheDir, engineArgv, engineLayout, runDataRoot, sharedDataRoot, sharedDataRootLock, type EngineLayout } from './layout.ts';
import { removeEngineLeftovers } from './janitor.ts';

/** What engine.json holds: enough for the janitor to remove a killed run's engine. */
export interface EngineRecord {
  layout: EngineLayout;
  ownerPid: number;
  ownerStart: string;
  /** The data root is the shared cache (`root`, held through root.lock) rather than the run's own `run-<short>`. */
  sharedRoot: boolean;
}

export interface DockerEngine {
  /** `unix:///run/meshproof/<short>/docker/docker.sock`, or the user's DOCKER_HOST. */
  host: string;
  /** Started by meshproof (and stopped by `stop()`), as opposed to the user's DOCKER_HOST engine. */
  owned: boolean;
  layout?: EngineLayout;
  /** The environment for the docker CLI and testcontainers: DOCKER_HOST, no Ryuk (its image cannot be pulled here). */
  env(): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

const FIX_HOST = 'start that engine, or unset DOCKER_HOST so meshproof starts its own';

/** GET /_ping on a docker API endpoint; resolves with the error code (ENOENT, ECONNREFUSED, HTTP 500) when it does not answer OK. */
export function pingDocker(host: string, timeoutMs = 2000): Promise<string | null> {
  return new Promise((resolve) => {
    let target: { socketPath: string } | { host: string; port: number };
    if (host.startsWith('unix://')) target = { socketPath: host.slice('unix://'.length) };
    else {
      const u = new URL(host.replace(/^tcp:/, 'http:'));
      target = { host: u.hostname, port: Number(u.port || 2375) };
    }
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

/** The user's DOCKER_HOST, checked: `unix://<path>` or `tcp://host:port` that answers /_ping; else a one-line UserError. */
export async function userEngine(value: string): Promise<DockerEngine> {
  if (!/^(unix:\/\/\/|tcp:\/\/)/.test(value)) {
    throw new UserError(`DOCKER_HOST=${value} is not unix:///<socket> or tcp://<host>:<port>: fix it, or unset DOCKER_HOST so meshproof starts its own engine`);
  }
  const err = await pingDocker(value);
  if (err) throw new UserError(`DOCKER_HOST=${value}: no docker engine answers there (${err}): ${FIX_HOST}`);
  return {
    host: value,
    owned: false,
    env: () => dockerEnv(value),
    // the user's engine is theirs: left running
    stop: async () => undefined,
  };
}

export function dockerEnv(host: string): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: host, TESTCONTAINERS_RYUK_DISABLED: 'true', DOCKER_BUILDKIT: '0' };
}

/** Takes the shared data root when no live engine holds it (a dead holder's leftovers are removed first). */
async function takeSharedRoot(short: string): Promise<boolean> {
  mkdirSync(dockerCacheDir(), { recursive: true, mode: 0o700 });
  const lock = sharedDataRootLock();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, JSON.stringify({ short, pid: process.pid, start: processStart(process.pid) }), { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { short: string; pid: number; start: string | null } | null = null;
    try {
      holder = JSON.parse(readFileSync(lock, 'utf8')) as { short: string; pid: number; start: string | null };
    } catch {
      // half-written by a process that died writing it
    }
    if (holder && processStart(holder.pid) === holder.start) return false;
    // a killed run's engine: its processes, namespace and cgroups go before its data root is reused
    if (holder) await removeEngineLeftovers(holder.short);
    rmSync(lock, { force: true });
  }
  return false;
}

function releaseSharedRoot(short: string): void {
  try {
    const holder = JSON.parse(readFileSync(sharedDataRootLock(), 'utf8')) as { short: string };
    if (holder.short === short) rmSync(sharedDataRootLock(), { force: true });
  } catch {
    // not ours or already gone
  }
}

export interface StartEngineOptions {
  /** The run the engine belongs to (its state dir exists); default: a run of its own, removed at stop. */
  short?: string;
  log?: (line: string) => void;
  /** How long dockerd may take to answer /_ping (2.9 s measured here, real-control-planes.md §3). */
  readyTimeoutMs?: number;
}

/**
 * DOCKER_HOST's engine when set (checked, left running), else meshproof's own dockerd in a private network namespace.
 * Ctrl-C and SIGTERM stop it (lifecycle.ts); after a SIGKILL `meshproof janitor` removes it (janitor.ts).
 */
export async function startEngine(opts: StartEngineOptions = {}): Promise<DockerEngine> {
  const user = process.env.DOCKER_HOST;
  if (user !== undefined && user !== '') return userEngine(user);
  const log = opts.log ?? (() => undefined);
  for (const tool of ['dockerd', 'nsenter', 'docker']) {
    if (!findOnPath(tool)) throw new UserError(`${tool} not found: run meshproof doctor --fix --substrate docker (or point DOCKER_HOST at a running engine)`);
  }
  let ownRun = false;
  let short = opts.short;
  if (!short) {
    const id = newRunId();
    short = id.short;
    ownRun = true;
    writeRecord({ runId: id.runId, short, ownerPid: process.pid, ownerStart: processStart(process.pid) ?? '', runDir: stateDirOf(short), origin: 'run', created: new Date().toISOString(), pods: {} });
    await mountStateTmpfs(short);
  }
  const runShort = short;
  let sharedRoot = false;
  let layout: EngineLayout;
  try {
    sharedRoot = await takeSharedRoot(runShort);
    layout = engineLayout(runShort, sharedRoot ? sharedDataRoot() : runDataRoot(runShort));
    if (!sharedRoot) log(`docker: the shared image cache ${sharedDataRoot()} is in use by another run; this engine gets ${layout.dataRoot}`);
    mkdirSync(layout.execRoot, { recursive: true, mode: 0o700 });
    mkdirSync(layout.dataRoot, { recursive: true, mode: 0o710 });
    writeFileSync(layout.configFile, '{}\n');
    const record: EngineRecord = { layout, ownerPid: process.pid, ownerStart: processStart(process.pid) ?? '', sharedRoot };
    writeFileSync(layout.recordFile, JSON.stringify(record, null, 2));
  } catch (e) {
    // nothing is running yet: what was made goes
    await removeEngineLeftovers(runShort, { keepDataRoot: sharedRoot });
    if (sharedRoot) releaseSharedRoot(runShort);
    if (ownRun) await teardownRun(runShort);
    throw e;
  }
  const supervisor = new Supervisor(join(layout.dir, 'logs'));
  const host = `unix://${layout.socket}`;
  let proc: Proc | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    // the data root keeps only images: every container and network goes first, then dockerd unmounts and exits
    // (whatever survives a stuck dockerd is removed below)
    if (proc && proc.exitCode === undefined) await clearEngine(host).catch((e: Error) => log(`docker: clearing the engine: ${e.message}`));
    if (proc) await supervisor.stop(proc, 20_000);
    await removeEngineLeftovers(runShort, { keepDataRoot: sharedRoot });
    if (sharedRoot) releaseSharedRoot(runShort);
    if (ownRun) await teardownRun(runShort);
  };
  const unregister = onTeardown(stop);
  try {
    await run(['ip', 'netns', 'add', layout.netns]);
    await run(['ip', '-n', layout.netns, 'link', 'set', 'lo', 'up']);
    log(`docker: starting dockerd in network namespace ${layout.netns} (data root ${layout.dataRoot})`);
    proc = supervisor.start({ pod: 'docker', name: 'dockerd', netns: layout.netns, argv: engineArgv(layout, process.pid) });
    const started = proc;
    let last: string | null = null;
    await pollUntil(async () => {
      if (started.exitCode !== undefined) throw new Error(`dockerd exited (${started.exitCode}) before it answered: ${Supervisor.tail(started).split('\n').join(' | ')}`);
      last = existsSync(layout.socket) ? await pingDocker(host) : 'no socket yet';
      return last === null ? true : undefined;
    }, { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 100, what: `dockerd on ${layout.socket}`, detail: () => last ?? undefined });
    log(`docker: dockerd answers on ${host}`);
    // the shared data root is meshproof's alone: containers and networks in it are a killed run's
    await clearEngine(host);
    return { host, owned: true, layout, env: () => dockerEnv(host), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Removes every container and every user-defined network of meshproof's own engine (never called on DOCKER_HOST's). */
async function clearEngine(host: string): Promise<void> {
  const env = dockerEnv(host);
  const ids = (await run(['docker', 'ps', '-aq'], { env, timeoutMs: 30_000 })).split('\n').filter(Boolean);
  if (ids.length) await run(['docker', 'rm', '-f', '-v', ...ids], { env, timeoutMs: 60_000 });
  await run(['docker', 'network', 'prune', '-f'], { env, timeoutMs: 30_000 });
}

/** The docker CLI against `engine` (DOCKER_BUILDKIT=0: the builder of dockerd 20.10 without the buildx plugin). */
export function docker(engine: DockerEngine, args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  return run(['docker', ...args], { env: engine.env(), timeoutMs: o.timeoutMs ?? 10 * 60_000, input: o.input });
}

export function dockerCapture(engine: DockerEngine, args: string[], timeoutMs = 60_000) {
  return runCapture(['docker', ...args], { env: engine.env(), timeoutMs });
}
