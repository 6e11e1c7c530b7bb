// The istiod path leaves nothing behind (README "Teardown"; the charter: no namespace, mount, process, iptables rule
// or key survives a run, a failed run or Ctrl-C; a janitor removes what a killed run left): `meshproof up
// --control-plane istiod` as a real process, killed (SIGKILL + `meshproof janitor`), stopped by Ctrl-C once up, and
// stopped by Ctrl-C while it is still starting. Every check is scoped to this test's own run: other engineers' runs
// share the machine, and the janitor must keep the live ones.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { netnsPrefix, newRunId, ownerAlive, processStart, readRecords, STATE_ROOT, stateDirOf, teardownRun, type RunRecord } from '../../src/harness/substrate/state.ts';

const BIN = 'bin/meshproof.js';
/** Where in-cluster clients read their service-account files (client-go rest.InClusterConfig); /var/run → /run here. */
const SA_MOUNTS = ['/var/run/secrets/kubernetes.io/serviceaccount', '/run/secrets/kubernetes.io/serviceaccount'];
/** A loaded 2-core machine: istiod's mesh takes 15-60 s there. */
const START_BUDGET_MS = 240_000;

interface Proc {
  pid: number;
  start: string;
  /** basename of argv[0]: etcd, kube-apiserver, pilot-agent, envoy, ... */
  name: string;
}

interface Snapshot {
  netns: string[];
  /** Mount points in the host's mount table: the state tmpfs, /run/netns/<name> of each namespace, the SA mountpoint. */
  mounts: string[];
  procs: Proc[];
  stateDir: boolean;
  /** Whatever is named after the run in the state root (its directory, its owner claim). */
  stateEntries: string[];
  etcNetns: string[];
}

function netnsOf(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
}

function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Every process that belongs to the run: its cmdline names the state dir or the run id, or it lives in one of its namespaces. */
function procsOf(rec: RunRecord, netns: string[]): Proc[] {
  const inodes = new Set<number>();
  for (const n of netns) {
    try {
      inodes.add(statSync(join('/run/netns', n)).ino);
    } catch {
      // gone meanwhile
    }
  }
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const netMatch = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      // pilot-agent and pilot-discovery name neither, but run in a pod's root under the state dir
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const mine =
        argv.some((a) => a.includes(stateDirOf(rec.short)) || a.includes(rec.runId)) || cwd.startsWith(`${stateDirOf(rec.short)}/`) || (netMatch !== null && inodes.has(Number(netMatch[1])));
      const start = processStart(pid);
      if (mine && start !== null && !zombie(pid)) out.push({ pid, start, name: basename(argv[0] ?? '') });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function mountsOf(rec: RunRecord): string[] {
  const dir = stateDirOf(rec.short);
  const netnsDir = join('/run/netns', netnsPrefix(rec.short));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`) || m.startsWith(netnsDir) || SA_MOUNTS.some((s) => m.startsWith(s)));
}

function snapshot(rec: RunRecord): Snapshot {
  const netns = netnsOf(netnsPrefix(rec.short));
  const etc = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((d) => d.startsWith(netnsPrefix(rec.short))) : [];
  const entries = existsSync(STATE_ROOT) ? readdirSync(STATE_ROOT).filter((d) => d.startsWith(rec.short)) : [];
  return { netns, mounts: mountsOf(rec), procs: procsOf(rec, netns), stateDir: existsSync(stateDirOf(rec.short)), stateEntries: entries, etcNetns: etc };
}

/** The host namespace's rules, without iptables-save's timestamped comment lines. */
function hostIptables(): string {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iptables-save: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

/** Files under `dir` holding a PEM private key (none may: keys live in the state dir only). */
function filesWithKeys(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if (readFileSync(p).includes('PRIVATE KEY-----')) out.push(p);
  }
  return out;
}

interface Up {
  child: ChildProcess;
  rec: RunRecord;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `meshproof up <dir> --foreground --control-plane istiod` in its own process group, until `until` shows in its output. */
async function startUp(dir: string, reports: string, until: { stream: 'stdout' | 'stderr'; pattern: RegExp }): Promise<Up> {
  const child = spawn(process.execPath, [BIN, 'up', dir, '--foreground', '--control-plane', 'istiod', '--reports', reports], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  let exited = false;
  void exit.then(() => (exited = true));
  await pollUntil(
    () => {
      if ((until.stream === 'stdout' ? out : err).match(until.pattern)) return true;
      if (exited) throw new Error(`meshproof up exited before ${until.pattern}:\n${err.slice(-2000)}`);
      return undefined;
    },
    { timeoutMs: START_BUDGET_MS, intervalMs: 20, what: `meshproof up: ${until.pattern}`, detail: () => err.split('\n').slice(-5).join(' | ') },
  );
  const rec = readRecords().find((r) => r.ownerPid === child.pid);
  if (!rec) throw new Error(`no run record in ${STATE_ROOT} names pid ${child.pid}`);
  return { child, rec, out: () => out, err: () => err, exit };
}

/** What of the snapshot `before` still exists now (process identity = pid + kernel start time). */
function stillThere(before: Snapshot, rec: RunRecord): Snapshot {
  const now = snapshot(rec);
  const alive = before.procs.filter((p) => processStart(p.pid) === p.start && !zombie(p.pid));
  return { ...now, procs: [...alive, ...now.procs.filter((p) => !alive.some((a) => a.pid === p.pid))] };
}

const NOTHING: Snapshot = { netns: [], mounts: [], procs: [], stateDir: false, stateEntries: [], etcNetns: [] };

/** Waits (bounded) for the run's processes to finish exiting, then expects nothing of the run to be left. */
async function expectNothingLeft(before: Snapshot, rec: RunRecord, iptablesBefore: string): Promise<void> {
  let left = stillThere(before, rec);
  await pollUntil(
    () => {
      left = stillThere(before, rec);
      return left.procs.length === 0 ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 100, what: 'the run\'s processes to exit', detail: () => left.procs.map((p) => `${p.name}[${p.pid}]`).join(' ') },
  ).catch(() => undefined);
  expect(left, `left behind by run ${rec.short}`).to.deep.equal(NOTHING);
  expect(hostIptables(), 'host iptables-save').to.equal(iptablesBefore);
  // the shared service-account mountpoint may stay only for another run with a kube layer (node-agent.ts removeSaMountpoint)
  const others = existsSync(STATE_ROOT) ? readdirSync(STATE_ROOT).filter((d) => d !== rec.short && existsSync(join(STATE_ROOT, d, 'kube'))) : [];
  if (others.length === 0) for (const s of SA_MOUNTS) expect(existsSync(s), `${s} with no other kube run`).to.equal(false);
  else console.log(`      (the service-account mountpoint is kept for other runs with a kube layer: ${others.join(', ')}; not checked)`);
  expect(filesWithKeys(rec.runDir), 'private keys in the reports').to.deep.equal([]);
}

describe('istiod run: nothing survives SIGKILL + janitor, Ctrl-C, or Ctrl-C while starting', function () {
  this.timeout(START_BUDGET_MS + 120_000);
  let dir: string;
  let up: Up | undefined;

  before(function () {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root: run the integration tests as root');
    const doctor = spawnSync(process.execPath, [BIN, 'doctor'], { encoding: 'utf8' });
    if (!/istiod|pilot-discovery/.test(doctor.stdout)) throw new Error(`meshproof doctor does not list istiod: run meshproof doctor --fix\n${doctor.stdout}`);
    dir = mkdtempSync(join(tmpdir(), 'meshproof-janitor-istiod-'));
    // the smallest mesh with every kind of process: istiod and one injected pod (pilot-agent + its Envoy)
    mkdirSync(join(dir, 'mesh'));
    for (const f of ['namespace.yaml', 'sleep.yaml']) copyFileSync(join('fixtures/istio/sentences', f), join(dir, 'mesh', f));
  });

  afterEach(async () => {
    // a failed test must not leave its own run for others: stop this run only
    if (!up) return;
    const { child, rec } = up;
    up = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    if (existsSync(stateDirOf(rec.short)) || netnsOf(netnsPrefix(rec.short)).length) spawnSync(process.execPath, [BIN, 'down', '--run', rec.short], { encoding: 'utf8' });
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL of the meshproof process: the janitor removes its namespaces, mounts, processes, state and keys; host iptables unchanged', async () => {
    const iptablesBefore = hostIptables();
    up = await startUp(join(dir, 'mesh'), join(dir, 'reports'), { stream: 'stdout', pattern: /export KUBECONFIG=(\S+)/ });
    const { child, rec } = up;
    expect(/export KUBECONFIG=(\S+)/.exec(up.out())![1]).to.equal(join(stateDirOf(rec.short), 'kube', 'kubeconfig'));
    const before = snapshot(rec);
    expect(before.procs.map((p) => p.name)).to.include.members(['etcd', 'kube-apiserver', 'kube-controller-manager', 'pilot-discovery', 'pilot-agent', 'envoy', 'tcpdump']);
    expect(before.netns.length, 'node + istiod + sleep namespaces').to.equal(3);
    expect(before.mounts.length).to.be.at.least(3);
    expect(before.stateDir).to.equal(true);

    process.kill(child.pid!, 'SIGKILL'); // the meshproof process only, not its group
    expect((await up.exit).signal).to.equal('SIGKILL');
    // what a killed run leaves for the janitor (processes die by --pdeathsig; the rest cannot go without help)
    const orphaned = snapshot(rec);
    expect(orphaned.netns.length, 'namespaces a killed run leaves').to.be.above(0);
    expect(orphaned.stateDir).to.equal(true);

    const others = readRecords().filter((r) => r.short !== rec.short && ownerAlive(r));
    const janitor = spawnSync(process.execPath, [BIN, 'janitor'], { encoding: 'utf8' });
    expect(janitor.status, janitor.stderr).to.equal(0);
    expect(janitor.stderr).to.include(`removing leftovers of run ${rec.short}`);
    await expectNothingLeft(before, rec, iptablesBefore);
    // other engineers' live runs are never touched (one that ended by itself meanwhile is not the janitor's doing)
    const touched = others.filter((r) => ownerAlive(r) && (janitor.stderr.includes(`run ${r.short}`) || !existsSync(stateDirOf(r.short))));
    expect(touched.map((r) => r.short), 'live runs the janitor removed').to.deep.equal([]);
  });

  it('SIGKILL while it is still starting (right after kube-apiserver is ready): the janitor removes everything of the run', async () => {
    const iptablesBefore = hostIptables();
    up = await startUp(join(dir, 'mesh'), join(dir, 'reports'), { stream: 'stderr', pattern: /kube: kube-apiserver ready/ });
    const { child, rec } = up;
    const before = snapshot(rec);
    expect(before.procs.map((p) => p.name)).to.include.members(['etcd', 'kube-apiserver']);
    process.kill(child.pid!, 'SIGKILL');
    await up.exit;
    expect(snapshot(rec).netns.length, 'namespaces a killed run leaves').to.be.above(0);
    const janitor = spawnSync(process.execPath, [BIN, 'janitor'], { encoding: 'utf8' });
    expect(janitor.status, janitor.stderr).to.equal(0);
    expect(janitor.stderr).to.include(`removing leftovers of run ${rec.short}`);
    await expectNothingLeft(before, rec, iptablesBefore);
  });

  it('the janitor keeps a live run that is still starting (its state directory and namespace exist, its record not yet)', async () => {
    // this test process owns the run, as NetnsCluster.start does before its first record (or under its fresh tmpfs)
    const { short } = newRunId();
    const ns = `${netnsPrefix(short)}-node`;
    try {
      mkdirSync(stateDirOf(short), { mode: 0o711 });
      const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
      expect(add.status, add.stderr).to.equal(0);
      const janitor = spawnSync(process.execPath, [BIN, 'janitor'], { encoding: 'utf8' });
      expect(janitor.status, janitor.stderr).to.equal(0);
      expect(janitor.stderr).to.not.include(`run ${short}`);
      expect(netnsOf(netnsPrefix(short))).to.deep.equal([ns]);
      expect(existsSync(stateDirOf(short))).to.equal(true);
    } finally {
      await teardownRun(short);
    }
    expect(netnsOf(netnsPrefix(short))).to.deep.equal([]);
    expect(existsSync(stateDirOf(short))).to.equal(false);
  });

  it('Ctrl-C once the mesh is up: exit 130 and nothing of the run is left, with no janitor', async () => {
    const iptablesBefore = hostIptables();
    up = await startUp(join(dir, 'mesh'), join(dir, 'reports'), { stream: 'stdout', pattern: /export KUBECONFIG=/ });
    const { child, rec } = up;
    const before = snapshot(rec);
    expect(before.procs.map((p) => p.name)).to.include.members(['etcd', 'kube-apiserver', 'kube-controller-manager', 'pilot-discovery', 'pilot-agent', 'envoy', 'tcpdump']);
    expect(before.netns.length).to.equal(3);

    process.kill(-child.pid!, 'SIGINT'); // a terminal's Ctrl-C: the whole foreground process group
    const { code } = await up.exit;
    expect(code, up.err().slice(-2000)).to.equal(130);
    await expectNothingLeft(before, rec, iptablesBefore);
  });

  it('a pod replaced by a rollout leaves no process (its Envoy outlives a pilot-agent killed mid-drain); Ctrl-C then leaves nothing', async () => {
    const iptablesBefore = hostIptables();
    up = await startUp(join(dir, 'mesh'), join(dir, 'reports'), { stream: 'stdout', pattern: /export KUBECONFIG=/ });
    const { child, rec } = up;
    const before = snapshot(rec);
    const envoys = before.procs.filter((p) => p.name === 'envoy');
    expect(envoys.length, 'the sleep pod\'s Envoy').to.equal(1);
    const oldPod = before.netns.find((n) => n.includes('-default-sleep-'))!;
    expect(oldPod).to.be.a('string');
    const kubectl = spawnSync('kubectl', ['rollout', 'restart', 'deployment/sleep', '-n', 'default'], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: join(stateDirOf(rec.short), 'kube', 'kubeconfig') } });
    expect(kubectl.status, kubectl.stderr).to.equal(0);
    // the node agent removes the old pod once its replacement runs
    await pollUntil(
      () => {
        const ns = netnsOf(netnsPrefix(rec.short));
        return !ns.includes(oldPod) && ns.some((n) => n.includes('-default-sleep-')) ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `the old pod ${oldPod} replaced`, detail: () => netnsOf(netnsPrefix(rec.short)).join(' ') },
    );
    const alive = () => envoys.filter((p) => processStart(p.pid) === p.start && !zombie(p.pid));
    await pollUntil(() => (alive().length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the old pod\'s Envoy to exit' }).catch(() => undefined);
    expect(alive().map((p) => p.pid), 'the replaced pod\'s Envoy still runs').to.deep.equal([]);

    const during = snapshot(rec);
    process.kill(-child.pid!, 'SIGINT');
    expect((await up.exit).code, up.err().slice(-2000)).to.equal(130);
    await expectNothingLeft({ ...during, procs: [...before.procs, ...during.procs] }, rec, iptablesBefore);
  });

  it('Ctrl-C of `meshproof up` without --foreground while its detached keeper is still starting: exit 130 and nothing of the run is left', async () => {
    const iptablesBefore = hostIptables();
    // the command a user types: it waits for the keeper (its own process group, so the terminal's Ctrl-C misses it)
    const cmd = spawn(process.execPath, [BIN, 'up', join(dir, 'mesh'), '--control-plane', 'istiod', '--reports', join(dir, 'reports')], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const exit = new Promise<number | null>((res) => cmd.on('exit', (code) => res(code)));
    const upLog = join(dir, 'reports', 'up.log');
    // the keeper's run, once its kube API is up (its log goes to <reports>/up.log)
    const rec = await pollUntil(
      () => {
        const log = existsSync(upLog) ? readFileSync(upLog, 'utf8') : '';
        if (cmd.exitCode !== null) throw new Error(`meshproof up exited (code ${cmd.exitCode}) before its keeper's kube API was up:\n${log.slice(-2000)}`);
        const runs = readRecords().filter((r) => r.runDir.startsWith(join(dir, 'reports')) && ownerAlive(r));
        return runs.length === 1 && new RegExp(`run ${runs[0]!.runId} up in`).test(log) && /kube: kube-apiserver ready/.test(log.slice(log.indexOf(runs[0]!.runId))) ? runs[0] : undefined;
      },
      { timeoutMs: START_BUDGET_MS, intervalMs: 50, what: 'the keeper\'s kube API' },
    );
    const keeper = rec.ownerPid;
    expect(keeper).to.not.equal(cmd.pid);
    up = { child: cmd, rec, out: () => '', err: () => '', exit: exit.then((code) => ({ code, signal: null })) };
    const before = snapshot(rec);
    expect(before.procs.map((p) => p.name)).to.include.members(['etcd', 'kube-apiserver']);

    process.kill(-cmd.pid!, 'SIGINT'); // the terminal's Ctrl-C: the command's process group
    expect(await exit).to.equal(130);
    // the keeper tore its run down and is gone too
    expect(processStart(keeper) === rec.ownerStart && !zombie(keeper), 'keeper still running').to.equal(false);
    await expectNothingLeft(before, rec, iptablesBefore);
  });

  // three moments of provisioning: the node namespace just wired (state tmpfs mounted, the capture starting), the kube
  // API just up (no node agent yet), and istiod's manifest just applied (the node agent made the shared service-account
  // mountpoint and is adding pods). A terminal's Ctrl-C reaches the whole group (the API server dies with it, and the
  // start fails on its own); `kill -INT <pid>` reaches meshproof only, which then tears down while the start goes on.
  const STARTING: { when: string; pattern: RegExp; running: string[]; to: 'group' | 'process' }[] = [
    { when: 'as soon as its node namespace is wired', pattern: /netns: \d+ pods, \d+ services wired/, running: [], to: 'group' },
    { when: 'right after kube-apiserver is ready', pattern: /kube: kube-apiserver ready/, running: ['etcd', 'kube-apiserver'], to: 'group' },
    { when: "right after istiod's manifest is applied", pattern: /istiod: applied \d+ objects of istioctl/, running: ['etcd', 'kube-apiserver', 'kube-controller-manager'], to: 'group' },
    { when: "right after istiod's manifest is applied", pattern: /istiod: applied \d+ objects of istioctl/, running: ['etcd', 'kube-apiserver', 'kube-controller-manager'], to: 'process' },
  ];
  for (const s of STARTING) {
    it(`${s.to === 'group' ? 'Ctrl-C' : 'SIGINT to meshproof alone'} while it is still starting (${s.when}): exit 130 and nothing of the run is left`, async () => {
      const iptablesBefore = hostIptables();
      up = await startUp(join(dir, 'mesh'), join(dir, 'reports'), { stream: 'stderr', pattern: s.pattern });
      const { child, rec } = up;
      const before = snapshot(rec);
      expect(up.out(), 'not up yet').to.not.include('export KUBECONFIG=');
      expect(before.procs.map((p) => p.name)).to.include.members(s.running);
      expect(before.netns.length).to.be.at.least(1);

      process.kill(s.to === 'group' ? -child.pid! : child.pid!, 'SIGINT');
      const { code } = await up.exit;
      expect(code, up.err().slice(-2000)).to.equal(130);
      await expectNothingLeft(before, rec, iptablesBefore);
    });
  }
});
