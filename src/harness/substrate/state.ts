// Run registry and janitor. Every run owns /run/meshproof/<short>/ (tmpfs: keys never touch disk)
// and every namespace named mp<short>-*. A run whose owner process is gone is a leftover.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, statfsSync, writeFileSync, readlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pollUntil } from './poll.ts';
import { run, runCapture } from './sh.ts';
import { assertNotInterrupted } from './lifecycle.ts';

export const STATE_ROOT = process.env.MESHPROOF_STATE_ROOT ?? '/run/meshproof';
/**
 * Where a cluster puts its reports/<cluster run>/ (logs, wire.pcap, results.json) when the caller
 * names no directory: `meshproof run` sets it to <run dir>/suites/<suite> while each suite runs.
 */
export const REPORTS_DIR_ENV = 'MESHPROOF_REPORTS_DIR';
/** Prefix of every namespace, interface and container the harness creates. */
export const PREFIX = 'mp';

export interface RunRecord {
  runId: string;
  short: string;
  ownerPid: number;
  ownerStart: string;
  runDir: string;
  topology?: string;
  /** 'up' for a topology kept running for exploration (meshproof up); 'run' for a suite's own. */
  origin: 'up' | 'run';
  created: string;
  /** Pod key → netns name, for `meshproof exec`. */
  pods: Record<string, string>;
  /** The user who started it (under sudo, the invoking user): `down`/`exec` without --run pick only the caller's own. */
  ownerUid?: number;
}

/** The caller's uid as a user knows it: SUDO_UID under sudo (everyone is root there), else the real uid. */
export function callerUid(): number {
  const sudo = process.env.SUDO_UID ? Number(process.env.SUDO_UID) : NaN;
  return Number.isInteger(sudo) && sudo >= 0 ? sudo : (process.getuid?.() ?? 0);
}

/** The kernel's start time of a process: pid plus this identify it across pid reuse. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * <root>/<short>.owner: the owner (pid, start) of a run, written before anything of the run exists and removed last by
 * teardownRun. The run's own record is inside its state directory, which exists before its first record (and a tmpfs
 * mounted on it hides what was there): the claim is what tells the janitor a run that is starting is alive.
 */
function claimPath(short: string): string {
  return join(STATE_ROOT, `${short}.owner`);
}

/** A fresh run id whose short name this process has claimed (exclusive create: two runs never share one). */
export function newRunId(now = new Date()): { runId: string; short: string } {
  assertNotInterrupted('a new run');
  mkdirSync(STATE_ROOT, { recursive: true, mode: 0o711 });
  for (;;) {
    const short = randomBytes(2).toString('hex');
    if (existsSync(join(STATE_ROOT, short))) continue;
    let fd: number;
    try {
      fd = openSync(claimPath(short), 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    writeSync(fd, JSON.stringify({ ownerPid: process.pid, ownerStart: processStart(process.pid) ?? '' }));
    closeSync(fd);
    const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    return { runId: `${stamp}-${short}`, short };
  }
}

/** Whether a run's claim names a live owner (a claim being written, empty yet, counts as live). */
function claimAlive(short: string): boolean {
  let text: string;
  try {
    text = readFileSync(claimPath(short), 'utf8');
  } catch {
    return false;
  }
  if (text === '') return true;
  try {
    return ownerAlive(JSON.parse(text) as Pick<RunRecord, 'ownerPid' | 'ownerStart'>);
  } catch {
    return false;
  }
}

/** A run id's short name (its last four hex digits, newRunId). */
export function shortOf(runId: string): string {
  return runId.slice(-4);
}

export function stateDirOf(short: string): string {
  return join(STATE_ROOT, short);
}

export function netnsPrefix(short: string): string {
  return `${PREFIX}${short}-`;
}

export function writeRecord(rec: RunRecord): void {
  mkdirSync(stateDirOf(rec.short), { recursive: true, mode: 0o711 });
  // write and rename: a reader (the janitor) never sees a half-written record and takes the run for a dead one
  const file = join(stateDirOf(rec.short), 'run.json');
  writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify({ ...rec, ownerUid: rec.ownerUid ?? callerUid() }, null, 2));
  renameSync(`${file}.${process.pid}.tmp`, file);
}

export function readRecords(): RunRecord[] {
  if (!existsSync(STATE_ROOT)) return [];
  const out: RunRecord[] = [];
  for (const short of readdirSync(STATE_ROOT)) {
    try {
      out.push(JSON.parse(readFileSync(join(STATE_ROOT, short, 'run.json'), 'utf8')) as RunRecord);
    } catch {
      // a directory without a record: a run that died while starting; the janitor handles it by name
    }
  }
  return out;
}

export function ownerAlive(rec: Pick<RunRecord, 'ownerPid' | 'ownerStart'>): boolean {
  return processStart(rec.ownerPid) === rec.ownerStart;
}

function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Pids of every process whose network namespace is one of `names` (read from /proc, no spawning). */
export function pidsInNetns(names: string[]): number[] {
  const inodes = new Set<number>();
  for (const n of names) {
    try {
      inodes.add(statSync(join('/run/netns', n)).ino);
    } catch {
      // already gone
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${entry}/ns/net`));
      if (m && inodes.has(Number(m[1]))) pids.push(Number(entry));
    } catch {
      // process exited meanwhile
    }
  }
  return pids;
}

async function killAll(pids: number[], graceMs: number): Promise<void> {
  const alive = (p: number) => {
    try {
      process.kill(p, 0);
      return processStart(p) !== null && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  };
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      // gone
    }
  }
  // those still alive after the grace get SIGKILL
  await pollUntil(() => (pids.some(alive) ? undefined : true), { timeoutMs: graceMs, intervalMs: 20, what: 'processes to exit' }).catch(() => undefined);
  for (const p of pids.filter(alive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Stops every process in the namespaces `names`, also those no supervisor started: pilot-agent's Envoy outlives a
 * pilot-agent killed while it drains (Istio starts Envoy without a parent-death signal), and once its namespace is
 * deleted it runs on in a namespace nobody can name.
 */
export async function stopNetnsProcesses(names: string[], graceMs = 1000): Promise<void> {
  await killAll(pidsInNetns(names), graceMs);
}

/** Pids of processes that run a file of the run's state directory or work in it (a pod's Envoy copy, pilot-agent). */
function pidsUsingStateDir(short: string): number[] {
  const dir = `${stateDirOf(short)}/`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (argv0.startsWith(dir) || `${readlinkSync(`/proc/${entry}/cwd`)}/`.startsWith(dir)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return pids;
}

/** Pids of processes whose command line names `path` (this process aside). */
function pidsNaming(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(path)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Removes everything a run created: its processes, namespaces (their veths go with them),
 * /etc/netns/<name> files used for per-pod DNS, and the state directory with its keys.
 */
export async function teardownRun(short: string, graceMs = 1000): Promise<void> {
  // a run on the docker substrate: its engine's containers live in cgroups and namespaces of their own (loaded only
  // for such a run; docker/janitor.ts builds on this module)
  if (existsSync(join(stateDirOf(short), 'docker'))) await (await import('./docker/janitor.ts')).removeEngineLeftovers(short, { graceMs });
  const prefix = netnsPrefix(short);
  const names = listNetns().filter((n) => n.startsWith(prefix));
  // also a process left in a namespace already deleted (a removed pod's Envoy): it still runs the run's files
  await killAll([...new Set([...pidsInNetns(names), ...pidsUsingStateDir(short)])], graceMs);
  if (names.length > 0) {
    const r = await runCapture(['ip', '-force', '-batch', '-'], { input: names.map((n) => `netns delete ${n}`).join('\n') + '\n' });
    if (r.code !== 0) {
      // a namespace busy or already gone: retry one by one so one failure does not keep the others
      for (const n of names) await runCapture(['ip', 'netns', 'delete', n]);
    }
  }
  if (existsSync('/etc/netns')) {
    for (const d of readdirSync('/etc/netns')) if (d.startsWith(prefix)) rmSync(join('/etc/netns', d), { recursive: true, force: true });
  }
  await unmountState(short);
  rmSync(stateDirOf(short), { recursive: true, force: true });
  rmSync(claimPath(short), { force: true });
}

/** statfs(2) f_type of tmpfs (linux/magic.h TMPFS_MAGIC). */
const TMPFS_MAGIC = 0x01021994;

function onTmpfs(path: string): boolean {
  try {
    return statfsSync(path).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes a run's state directory (keys, tokens, sockets) live on tmpfs, so keys never touch a disk: where /run is
 * tmpfs (most hosts) it already is; elsewhere the directory gets a tmpfs of its own, unmounted at teardown.
 */
export async function mountStateTmpfs(short: string): Promise<void> {
  const dir = stateDirOf(short);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  if (onTmpfs(dir)) return;
  // a record written before the mount would be hidden by it: it is written again on the tmpfs
  let record: string | undefined;
  try {
    record = readFileSync(join(dir, 'run.json'), 'utf8');
  } catch {
    // none yet
  }
  await run(['mount', '-t', 'tmpfs', '-o', 'mode=0711,size=1g', `meshproof-${short}`, dir]);
  if (record !== undefined) writeRecord(JSON.parse(record) as RunRecord);
}

async function unmountState(short: string): Promise<void> {
  const dir = stateDirOf(short);
  if (!existsSync(dir) || onTmpfs(STATE_ROOT) || !onTmpfs(dir)) return;
  await runCapture(['umount', '--lazy', dir]);
}

export interface JanitorReport {
  removedRuns: string[];
  keptRuns: string[];
}

/** Removes the leftovers of every run whose owner process is gone; never touches a live run. */
export async function janitor(log: (s: string) => void = () => undefined): Promise<JanitorReport> {
  const report: JanitorReport = { removedRuns: [], keptRuns: [] };
  const live = new Set<string>();
  for (const rec of readRecords()) {
    if (ownerAlive(rec)) {
      live.add(rec.short);
      report.keptRuns.push(rec.runId);
    }
  }
  const shorts = new Set<string>();
  if (existsSync(STATE_ROOT)) {
    for (const d of readdirSync(STATE_ROOT)) {
      const m = /^([0-9a-f]{4})(\.owner)?$/.exec(d);
      if (m) shorts.add(m[1]!);
    }
  }
  for (const n of listNetns()) {
    const m = new RegExp(`^${PREFIX}([0-9a-f]{4})-`).exec(n);
    if (m) shorts.add(m[1]!);
  }
  if (existsSync('/etc/netns')) {
    for (const d of readdirSync('/etc/netns')) {
      const m = new RegExp(`^${PREFIX}([0-9a-f]{4})-`).exec(d);
      if (m) shorts.add(m[1]!);
    }
  }
  for (const short of shorts) {
    if (live.has(short)) continue;
    // a run still starting (no record yet, or a record hidden by its tmpfs): its claim names its owner
    if (claimAlive(short)) {
      report.keptRuns.push(short);
      continue;
    }
    log(`janitor: removing leftovers of run ${short}`);
    await teardownRun(short, 200);
    report.removedRuns.push(short);
  }
  return report;
}

/** Everything named mp* that exists right now (for tests and `meshproof doctor`). */
export async function leftovers(short?: string): Promise<string[]> {
  const prefix = short ? netnsPrefix(short) : PREFIX;
  const found = listNetns().filter((n) => n.startsWith(prefix)).map((n) => `netns ${n}`);
  const links = await run(['ip', '-o', 'link', 'show']);
  for (const line of links.split('\n')) {
    const name = line.split(': ')[1]?.split('@')[0];
    if (name?.startsWith(PREFIX)) found.push(`link ${name}`);
  }
  if (existsSync('/etc/netns')) for (const d of readdirSync('/etc/netns')) if (d.startsWith(prefix)) found.push(`/etc/netns/${d}`);
  if (short && existsSync(stateDirOf(short))) found.push(stateDirOf(short));
  // any process still naming the run's files: a pod's process, or (docker) its engine, containerd and shims
  if (short) for (const pid of pidsNaming(`${stateDirOf(short)}/`)) found.push(`process ${pid}`);
  return found;
}
