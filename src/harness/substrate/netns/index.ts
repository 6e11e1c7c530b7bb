// The netns substrate: each pod is a Linux network namespace with a veth into a run-private
// "node" namespace that routes between pods and holds the service VIP rules (kube-proxy style
// DNAT) and the network policy's FORWARD rules. Nothing is added to the host namespace but the namespace mounts: no bridge, no uplink,
// no NAT out, no default route. Pods only have routes to the pod and service ranges.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster, ContainerSample, ContainerSpec, ContainerStatus, ExecResult, MachineSample, PodSpec, RunningPod, Topology } from '../types.ts';
import { AgentClient } from '../../probe/client.ts';
import { POD_DEV, podLinkCmd, routerLinkCmds, assertPortFree, diedAfterStart, startWireCanary, settle, GATEWAY, hostsFile, podAddrCmds, podIp, POD_CIDR, RESOLV_CONF, SERVICE_CIDR, waitReady, type Started } from '../pods.ts';
import { PodCluster, startCluster, type AgentPod } from '../pod-cluster.ts';
import { run, runCapture } from '../sh.ts';
import { Supervisor, type Proc } from '../supervisor.ts';
import { netnsPrefix, stopNetnsProcesses, teardownRun } from '../state.ts';
import { sampleContainer, sampleMachine } from './proc.ts';
import { validateTopology, podKey } from '../topology.ts';
import { requireRoot, requireTools } from '../../cli/doctor.ts';

/** The node namespace holds the gateway address on each node-side veth (pods.ts). */
export { GATEWAY, POD_CIDR, SERVICE_CIDR };

export interface UpOptions {
  /** Where reports/<run>/ goes (default $MESHPROOF_REPORTS_DIR, else ./reports). */
  reportsDir?: string;
  /** Capture the node's links for the wire canary (default true). */
  wire?: boolean;
  /** A line per phase. */
  log?: (line: string) => void;
  /** Readiness budget per container (default 20 s). */
  readyTimeoutMs?: number;
  /** How long every container must stay up once all have started (default 300 ms; `meshproof up` waits longer). */
  settleMs?: number;
  /** 'up' when kept running for `meshproof exec`/`down`; those commands never pick a suite's run by default. */
  origin?: 'up' | 'run';
  /** Pods come later, one by one (addPod: the kube layer's node agent), so the topology may start empty. */
  dynamic?: boolean;
}


/** Host namespace commands: the pod's namespace and its veth pair, created directly inside their namespaces. */
function hostLinkCmds(p: PodRuntime, nodeNetns: string): string[] {
  return [`netns add ${p.netns}`, podLinkCmd(p.netns, p.index, nodeNetns)];
}

/** Node namespace commands: the gateway address on the pod's veth and a /32 route to the pod (pods.ts). */
function nodeLinkCmds(p: PodRuntime): string[] {
  return routerLinkCmds(p.index, p.ip);
}


interface PodRuntime extends AgentPod {
  procs: Map<string, Proc>;
}

export class NetnsCluster extends PodCluster<PodRuntime> implements Cluster {
  readonly substrate = 'netns';
  readonly nodeNetns: string;
  private downPromise?: Promise<void>;

  constructor(runId: string, short: string, runDir: string, stateDir: string, topology: Topology, opts: UpOptions) {
    super(runId, short, runDir, stateDir, topology, opts);
    this.nodeNetns = `${netnsPrefix(short)}-node`;
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    const bundling = await this.prologue();
    const pods = this.topology.pods;
    pods.forEach((spec, index) => {
      const key = podKey(spec);
      this.pods.set(key, {
        spec,
        key,
        index,
        ip: podIp(index),
        netns: `${netnsPrefix(this.short)}${spec.namespace}-${spec.name}`,
        socket: join(this.stateDir, 'sock', `${index}.sock`),
        procs: new Map(),
      });
    });
    this.topologyServices();
    this.record();

    // 1. namespaces and veth pairs, created directly inside their namespaces (never in the host's)
    const host: string[] = [`netns add ${this.nodeNetns}`];
    for (const p of this.pods.values()) host.push(...hostLinkCmds(p, this.nodeNetns));
    await run(['ip', '-batch', '-'], { input: host.join('\n') + '\n' });

    // 2. the node: one /32 route per pod, the gateway address on every veth, forwarding on. The
    // service range is local to the node (as kube-proxy's IPVS dummy interface binds ClusterIPs):
    // a declared port is DNATed before routing; any other port meets the node's own TCP stack and
    // is refused with a RST, like a host with no listener (not with rate-limited ICMP).
    const node: string[] = ['link set lo up', `route add local ${SERVICE_CIDR} dev lo`];
    for (const p of this.pods.values()) node.push(...nodeLinkCmds(p));
    await run(['ip', '-n', this.nodeNetns, '-batch', '-'], { input: node.join('\n') + '\n' });
    await run(['ip', 'netns', 'exec', this.nodeNetns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await this.programServices();

    // 3. the pods: address, routes to the pod and service ranges only, DNS files
    await Promise.all([...this.pods.values()].map((p) => run(['ip', '-n', p.netns, '-batch', '-'], { input: podAddrCmds(p.ip, POD_DEV).join('\n') + '\n' })));
    this.writeDns();
    this.log(`netns: ${this.pods.size} pods, ${this.services.size} services wired in ${Date.now() - t0} ms`);

    if (this.opts.wire !== false) await this.startCapture();
    this.bundle = await bundling;

    // 4. per pod: its iptables, its probe agent, then its containers
    await Promise.all([...this.pods.values()].map((p) => this.startPod(p)));
    await this.settle();
    this.record();
    this.log(`netns: run ${this.runId} up in ${Date.now() - t0} ms`);
  }

  protected get routerNetns(): string {
    return this.nodeNetns;
  }

  /**
   * Adds a pod to the running cluster (the kube layer's node agent does, for each Pod bound to its node): its
   * namespace, veth, address, routes, DNS file and probe agent. Its containers are started with startContainer().
   */
  async addPod(spec: PodSpec): Promise<RunningPod> {
    const key = podKey(spec);
    if (this.pods.has(key)) throw new Error(`pod ${key} already exists in run ${this.runId}`);
    const index = this.nextIndex++;
    const p: PodRuntime = { spec, key, index, ip: podIp(index), netns: `${netnsPrefix(this.short)}${spec.namespace}-${spec.name}`, socket: join(this.stateDir, 'sock', `${index}.sock`), procs: new Map() };
    this.pods.set(key, p);
    this.record();
    await run(['ip', '-batch', '-'], { input: hostLinkCmds(p, this.nodeNetns).join('\n') + '\n' });
    await run(['ip', '-n', this.nodeNetns, '-batch', '-'], { input: nodeLinkCmds(p).join('\n') + '\n' });
    await run(['ip', '-n', p.netns, '-batch', '-'], { input: podAddrCmds(p.ip, POD_DEV).join('\n') + '\n' });
    this.writeDns();
    await this.startPod(p, false);
    return p;
  }

  /** Stops a pod's processes and removes its namespace (its veth goes with it) and DNS files. */
  async removePod(ref: string): Promise<void> {
    const p = this.pod(ref);
    p.agent?.close();
    await Promise.all([...p.procs.values()].map((proc) => this.supervisor.stop(proc, 2000)));
    // what its processes started and left behind (pilot-agent's Envoy), before the namespace loses its name
    await stopNetnsProcesses([p.netns]);
    await runCapture(['ip', 'netns', 'del', p.netns]);
    rmSync(join('/etc/netns', p.netns), { recursive: true, force: true });
    this.pods.delete(p.key);
    this.record();
  }

  /** Names resolvable in a pod: /etc/netns/<netns>/hosts, bind-mounted by `ip netns exec`. */
  protected writeDns(): void {
    for (const p of this.pods.values()) {
      const dir = join('/etc/netns', p.netns);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'hosts'), hostsFile(p, this.services.values(), this.pods.values()));
      writeFileSync(join(dir, 'resolv.conf'), RESOLV_CONF);
    }
  }

  private async startCapture(): Promise<void> {
    this.canary = await startWireCanary(this.supervisor, this.nodeNetns, join(this.runDir, 'wire.pcap'));
  }

  private async startPod(p: PodRuntime, containers = true): Promise<void> {
    if (p.spec.iptables) await this.iptables(p.key, p.spec.iptables);
    const agent = this.spawn(p, { name: 'mp-agent', workload: 'agent', args: ['--socket', p.socket] });
    try {
      p.agent = await AgentClient.connect(p.socket, { timeoutMs: this.opts.readyTimeoutMs ?? 20000 });
    } catch (e) {
      throw new Error(`pod ${p.key}: probe agent not ready: ${(e as Error).message}\n${Supervisor.tail(agent)}`, { cause: e });
    }
    if (containers) for (const c of p.spec.containers ?? []) await this.startContainer(p.key, c);
  }

  private spawn(p: PodRuntime, c: ContainerSpec): Proc {
    let argv: string[];
    if (c.workload) argv = [process.execPath, this.bundle, c.workload, ...(c.args ?? [])];
    else if (c.command?.length) argv = [...c.command, ...(c.args ?? [])];
    else throw new Error(`pod ${p.key}: container ${c.name} has neither workload nor command`);
    const proc = this.supervisor.start({
      pod: p.key,
      name: c.name,
      netns: p.netns,
      argv,
      uid: c.uid,
      gid: c.gid,
      caps: c.caps,
      cwd: c.cwd,
      mounts: c.mounts,
      env: {
        POD_NAME: p.spec.name,
        POD_NAMESPACE: p.spec.namespace,
        POD_IP: p.ip,
        SERVICE_ACCOUNT: p.spec.serviceAccount ?? 'default',
        ...(p.spec.labels?.version ? { VERSION: p.spec.labels.version } : {}),
        ...c.env,
      },
    });
    p.procs.set(c.name, proc);
    return proc;
  }

  async startContainer(pod: string, c: ContainerSpec): Promise<void> {
    const p = this.pod(pod);
    if (p.procs.get(c.name)?.exitCode === undefined && p.procs.has(c.name)) throw new Error(`pod ${p.key}: container ${c.name} is already running`);
    await assertPortFree(p.agent, p.key, c, (port) => [...p.procs].find(([, x]) => x.exitCode === undefined && x.spec.argv.includes(String(port)))?.[0]);
    const proc = this.spawn(p, c);
    await waitReady(p.agent!, p.key, c, started(proc), this.opts.readyTimeoutMs ?? 20000);
    // "ready" on a port another container of the pod holds, then dead of EADDRINUSE
    if (proc.exitCode !== undefined) throw new Error(await diedAfterStart(p.key, c.name, started(proc)));
  }

  /** Every container must outlive a short settle window after start (pods.ts settle). */
  private settle(): Promise<void> {
    const all = [...this.pods.values()].flatMap((p) => [...p.procs.values()].map((proc) => ({ pod: p.key, name: proc.spec.name, s: started(proc), exited: proc.exited })));
    return settle(all, this.opts.settleMs);
  }

  /** Running containers of a pod → the pid of their process (`ip netns exec` and `setpriv` exec into it). */
  pids(pod: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, proc] of this.pod(pod).procs) if (proc.exitCode === undefined && proc.child.pid !== undefined) out[name] = proc.child.pid;
    return out;
  }

  async stopContainer(pod: string, name: string): Promise<void> {
    const p = this.pod(pod);
    const proc = p.procs.get(name);
    if (proc) await this.supervisor.stop(proc);
  }

  /** Sends a signal to a running container's main process (e.g. SIGUSR2: HAProxy master-worker reload). */
  signalContainer(pod: string, name: string, signal: NodeJS.Signals): void {
    const proc = this.pod(pod).procs.get(name);
    if (!proc || proc.exitCode !== undefined) throw new Error(`pod ${pod}: container ${name} is not running`);
    proc.child.kill(signal);
  }

  /** Its log file, reports/<run>/logs/<pod>/<name>.log. */
  async containerLog(pod: string, name: string): Promise<string> {
    const proc = this.pod(pod).procs.get(name);
    if (!proc) throw new Error(`pod ${pod}: no container ${name}`);
    return readFile(proc.logFile, 'utf8');
  }

  /** Pods share the host's files: the file is written where the pod sees it, which must be in the run's state or reports dir. */
  /** From /proc (the pods share the host's): the container's main process and its descendants. */
  async sample(pod: string, name: string): Promise<ContainerSample> {
    const proc = this.pod(pod).procs.get(name);
    const s = proc && proc.exitCode === undefined && proc.child.pid !== undefined ? sampleContainer(proc.child.pid) : undefined;
    if (!s) throw new Error(`pod ${pod}: container ${name} is not running`);
    return s;
  }

  /** From /proc/stat; the processes of this run's pods (and the harness) are not among `others`. */
  async machine(): Promise<MachineSample> {
    const own = [...this.pods.values()].flatMap((p) => [...p.procs.values()].filter((x) => x.exitCode === undefined && x.child.pid !== undefined).map((x) => x.child.pid!));
    return sampleMachine(own);
  }

  private execArgv(p: RunningPod, argv: string[], uid?: number): string[] {
    const priv = uid ? ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--'] : [];
    return ['ip', 'netns', 'exec', p.netns, ...priv, ...argv];
  }

  exec(pod: string, argv: string[], opts: { input?: string; uid?: number; timeoutMs?: number } = {}): Promise<ExecResult> {
    return runCapture(this.execArgv(this.pod(pod), argv, opts.uid), { input: opts.input, timeoutMs: opts.timeoutMs ?? 30000 });
  }

  async iptables(pod: string, rules: string): Promise<void> {
    const p = this.pod(pod);
    await run(['ip', 'netns', 'exec', p.netns, 'iptables-restore', '--noflush'], { input: rules.endsWith('\n') ? rules : rules + '\n' });
  }

  /** Its process (the supervisor's): running until `exited` resolves. */
  containerStatus(pod: string, name: string): ContainerStatus | undefined {
    const proc = this.pod(pod).procs.get(name);
    return proc && { exitCode: proc.exitCode, exited: proc.exited };
  }

  /** Through the pod's probe agent, which connects inside the pod's namespace. */
  down(): Promise<void> {
    this.downPromise ??= (async () => {
      for (const p of this.pods.values()) p.agent?.close();
      await this.supervisor.stopAll(1000);
      await teardownRun(this.short);
      this.unregister();
    })();
    return this.downPromise;
  }
}


/** A supervised process as pods.ts's readiness checks see it. */
function started(proc: Proc): Started {
  return { exitCode: () => proc.exitCode, tail: async () => Supervisor.tail(proc), log: proc.logFile };
}

/** Starts a topology on the netns substrate. On any failure, everything started is removed. */
export async function upNetns(topology: Topology, opts: UpOptions = {}): Promise<NetnsCluster> {
  requireRoot();
  await requireTools(['ip', 'iptables-restore', 'setpriv', ...(opts.wire === false ? [] : ['tcpdump'])]);
  if (!(opts.dynamic && topology.pods.length === 0)) validateTopology(topology);
  return startCluster(opts, (r) => new NetnsCluster(r.runId, r.short, r.runDir, r.stateDir, topology, opts));
}
