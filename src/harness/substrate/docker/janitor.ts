// What a killed run's docker engine leaves: dockerd's shims in its namespace, container processes in their cgroups
// (they have network namespaces of their own), the namespace, the cgroups, a per-run data root and the shared root's lock.
// `meshproof janitor` calls dockerJanitor before the run janitor (state.ts) removes the state directories.
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../poll.ts';
import { runCapture } from '../sh.ts';
import { ownerAlive, pidsInNetns, processStart, readRecords, STATE_ROOT } from '../state.ts';
import { dockerCacheDir, engineLayout, runDataRoot, sharedDataRoot, sharedDataRootLock } from './layout.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';
const SHORT = /^[0-9a-f]{4}$/;

/** Every cgroup directory under `<controller>/meshproof-<short>`, deepest first (cgroup v1 controllers, or v2's one tree). */
function engineCgroups(short: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(dir, e));
    out.push(dir);
  };
  const roots = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? [CGROUP_ROOT] : safeList(CGROUP_ROOT).map((c) => join(CGROUP_ROOT, c));
  for (const root of roots) walk(join(root, `meshproof-${short}`));
  return out;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function cgroupPids(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l.trim()) pids.add(Number(l));
    } catch {
      // gone meanwhile
    }
  }
  return [...pids];
}

const alive = (pid: number): boolean => {
  const stat = processStart(pid);
  if (stat === null) return false;
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

/** SIGTERM, then SIGKILL whatever is still there after `graceMs`. */
async function killPids(pids: number[], graceMs: number): Promise<void> {
  if (pids.length === 0) return;
  signal(pids, 'SIGTERM');
  try {
    await pollUntil(() => (pids.some(alive) ? undefined : true), { timeoutMs: graceMs, intervalMs: 20, what: 'processes to exit' });
  } catch {
    signal(pids.filter(alive), 'SIGKILL');
  }
}

/** Mount points at or below any of `dirs` in this mount namespace, deepest first. */
export function mountsUnder(dirs: string[]): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && dirs.some((d) => mp === d || mp.startsWith(`${d}/`))) found.push(mp);
  }
  return found.sort((a, b) => b.length - a.length);
}

/**
 * Removes a stopped or killed engine of run `short`: processes left in its namespace (containerd, shims) and in its
 * containers' cgroups, the namespace, the cgroups, its exec root and, unless it is the shared cache, its data root.
 */
export async function removeEngineLeftovers(short: string, o: { keepDataRoot?: boolean; graceMs?: number } = {}): Promise<void> {
  const layout = engineLayout(short, runDataRoot(short));
  const netnsPath = join('/run/netns', layout.netns);
  const pids = [...new Set([...pidsInNetns([layout.netns]), ...cgroupPids(engineCgroups(short))])];
  await killPids(pids, o.graceMs ?? 2000);
  // a container started between the two reads, or a process that ignored SIGTERM in a cgroup
  const late = cgroupPids(engineCgroups(short)).filter(alive);
  if (late.length) await killPids(late, 200);
  if (existsSync(netnsPath)) await runCapture(['ip', 'netns', 'delete', layout.netns]);
  const dirs = engineCgroups(short);
  if (dirs.length) {
    await pollUntil(() => {
      for (const d of engineCgroups(short)) {
        try {
          rmdirSync(d);
        } catch {
          // still has a dying task
        }
      }
      return engineCgroups(short).length === 0 ? true : undefined;
    }, { timeoutMs: 5000, intervalMs: 50, what: `cgroups meshproof-${short}`, detail: () => engineCgroups(short).join(' ') }).catch(() => undefined);
  }
  // dockerd's mounts (overlays, shm, container netns files) are under its exec and data roots in this mount namespace:
  // a clean stop has removed them; a SIGKILL leaves them
  let holder: string | undefined;
  try {
    holder = (JSON.parse(readFileSync(sharedDataRootLock(), 'utf8')) as { short?: string }).short;
  } catch {
    // no lock
  }
  const roots = [layout.dir, runDataRoot(short), ...(o.keepDataRoot || holder === short ? [sharedDataRoot()] : [])];
  for (const m of mountsUnder(roots)) await runCapture(['umount', '--lazy', m]);
  rmSync(layout.dir, { recursive: true, force: true });
  if (!o.keepDataRoot) {
    rmSync(runDataRoot(short), { recursive: true, force: true });
    if (holder === short) rmSync(sharedDataRootLock(), { force: true });
  }
}

/** Runs with any docker leftover: engine records, per-run data roots, the shared root's holder, cgroups, namespaces. */
function dockerShorts(): Set<string> {
  const shorts = new Set<string>();
  for (const s of safeList(STATE_ROOT)) if (SHORT.test(s) && existsSync(join(STATE_ROOT, s, 'docker'))) shorts.add(s);
  for (const d of safeList(dockerCacheDir())) {
    const m = /^run-([0-9a-f]{4})$/.exec(d);
    if (m) shorts.add(m[1]!);
  }
  try {
    const holder = JSON.parse(readFileSync(sharedDataRootLock(), 'utf8')) as { short?: string };
    if (holder.short && SHORT.test(holder.short)) shorts.add(holder.short);
  } catch {
    // no lock
  }
  const cgroupRoots = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? [CGROUP_ROOT] : safeList(CGROUP_ROOT).map((c) => join(CGROUP_ROOT, c));
  for (const root of cgroupRoots) {
    for (const d of safeList(root)) {
      const m = /^meshproof-([0-9a-f]{4})$/.exec(d);
      if (m) shorts.add(m[1]!);
    }
  }
  for (const n of safeList('/run/netns')) {
    const m = /^mp([0-9a-f]{4})--docker$/.exec(n);
    if (m) shorts.add(m[1]!);
  }
  return shorts;
}

/** What a run on a user's DOCKER_HOST engine records in its state dir: that engine stays; the run's containers go by their label. */
export interface UserEngineRecord {
  host: string;
  runId: string;
}
export const userEngineRecordOf = (short: string): string => join(engineLayout(short, '').dir, 'user-engine.json');

/** Removes a killed run's containers from the user's engine it ran on, which is left running (one that no longer answers is named). */
export async function removeUserEngineRun(short: string, log: (line: string) => void = () => undefined): Promise<void> {
  let rec: UserEngineRecord;
  try {
    rec = JSON.parse(readFileSync(userEngineRecordOf(short), 'utf8')) as UserEngineRecord;
  } catch {
    return; // not a run on a user's engine
  }
  // loaded here: engine.ts builds on this module
  const [{ userEngine }, { removeRun }] = await Promise.all([import('./engine.ts'), import('./containers.ts')]);
  try {
    const r = await removeRun(await userEngine(rec.host), rec.runId);
    log(`janitor: removed ${r.containers} containers of run ${short} from the engine at ${rec.host}`);
  } catch (e) {
    log(`janitor: run ${short}'s containers on ${rec.host}: ${(e as Error).message}`);
  }
}

/** Removes the docker engine of every run whose owner process is gone; a live run's engine is never touched. */
export async function dockerJanitor(log: (line: string) => void = () => undefined): Promise<string[]> {
  const live = new Set(readRecords().filter(ownerAlive).map((r) => r.short));
  const removed: string[] = [];
  // testcontainers' per-process socket links (containers.ts clientLink) of processes that are gone
  for (const f of safeList(STATE_ROOT)) {
    const m = /^tc-(\d+)\.sock$/.exec(f);
    if (m && processStart(Number(m[1])) === null) rmSync(join(STATE_ROOT, f), { force: true });
  }
  for (const short of dockerShorts()) {
    if (live.has(short)) continue;
    await removeUserEngineRun(short, log);
    log(`janitor: removing the docker engine of run ${short}`);
    await removeEngineLeftovers(short, { graceMs: 500 });
    removed.push(short);
  }
  return removed;
}
