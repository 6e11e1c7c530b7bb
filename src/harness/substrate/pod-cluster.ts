// What a substrate's Cluster is before it knows where its pods run: the pods and services it holds, its run record,
// the files pods see (the run's state and reports dirs, at the same path in every pod), probes through each pod's
// agent with one canary sync per batch, the service VIPs and network policy in the namespace that routes between the
// pods, and the first steps of a start. netns and docker extend it.
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentClient } from '../probe/client.ts';
import { openTunnel } from '../probe/client.ts';
import type { WireCanary } from '../probe/canary.ts';
import type { ProbeRequest, ProbeResult } from '../probe/types.ts';
import { currentRules, renderNetworkPolicy, type NetworkPolicyInput } from '../dataplane/iptables/network-policy.ts';
import { buildPodBundle } from './bundle.ts';
import { onTeardown } from './lifecycle.ts';
import { findPod, matches, probeBatch, serviceRules, serviceVip, writeRunFile } from './pods.ts';
import { run } from './sh.ts';
import { mountStateTmpfs, newRunId, processStart, REPORTS_DIR_ENV, stateDirOf, writeRecord } from './state.ts';
import { Supervisor } from './supervisor.ts';
import type { FileOptions, RunningPod, RunningService, Topology } from './types.ts';
import type { UpOptions } from './netns/index.ts';

/** A pod as every substrate keeps it: its place in the run, its probe agent and the agent's socket. */
export interface AgentPod extends RunningPod {
  index: number;
  agent?: AgentClient;
  socket: string;
}

export abstract class PodCluster<P extends AgentPod> {
  readonly pods = new Map<string, P>();
  readonly services = new Map<string, RunningService>();
  readonly supervisor: Supervisor;
  canary?: WireCanary;
  /** The pod bundle (workloads and probe agent), built into the state dir at start. */
  bundle = '';
  protected nextIndex: number;
  /** The PREROUTING jump to the VIP chain exists (programServices). */
  private servicesJumped = false;
  /** Network policy calls, one after another (each reads the rules, then replaces them), and the input last applied. */
  private policyQueue: Promise<unknown> = Promise.resolve();
  private appliedPolicy?: string;
  protected unregister: () => void = () => undefined;

  constructor(
    readonly runId: string,
    readonly short: string,
    readonly runDir: string,
    readonly stateDir: string,
    readonly topology: Topology,
    protected readonly opts: UpOptions,
  ) {
    this.supervisor = new Supervisor(join(runDir, 'logs'));
    this.nextIndex = topology.pods.length;
  }

  protected log(line: string): void {
    this.opts.log?.(line);
  }

  pod(ref: string): P {
    return findPod(this.pods, ref);
  }

  /**
   * A start's first steps on every substrate: teardown on Ctrl-C, the state dir on tmpfs, the reports and socket
   * dirs, the run record; resolves with the pod bundle being built meanwhile.
   */
  protected async prologue(): Promise<Promise<string>> {
    this.unregister = onTeardown(() => this.down());
    await mountStateTmpfs(this.short);
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(join(this.stateDir, 'sock'), { recursive: true, mode: 0o711 });
    this.record();
    return buildPodBundle(join(this.stateDir, 'pod.mjs'));
  }

  /** The run record (state.ts): what `meshproof exec`/`down` and the janitor find the run by. */
  protected record(): void {
    writeRecord({
      runId: this.runId,
      short: this.short,
      ownerPid: process.pid,
      ownerStart: processStart(process.pid) ?? '',
      runDir: this.runDir,
      topology: this.topology.name,
      origin: this.opts.origin ?? 'run',
      created: new Date().toISOString(),
      // a kube Pod is also listed under its Deployment's name (the newest pod wins), so `meshproof exec sleep` finds it
      pods: Object.fromEntries([...this.pods.values()].sort((a, b) => a.index - b.index).flatMap((p) => [...(p.spec.aliases ?? []).map((a) => [`${p.spec.namespace}/${a}`, p.netns]), [p.key, p.netns]])),
    });
  }

  /** Pods see the run's state and reports dirs at the harness's own paths: the file is written where the pod sees it. */
  async writeFile(pod: string, path: string, content: string, opts: FileOptions = {}): Promise<void> {
    this.pod(pod);
    writeRunFile(this, pod, path, content, opts);
  }

  readFile(pod: string, path: string): Promise<string> {
    this.pod(pod);
    return readFile(path, 'utf8');
  }

  async probe(from: string, req: ProbeRequest, opts: { wire?: boolean } = {}): Promise<ProbeResult> {
    const [r] = await this.probeMany([{ from, req }], opts);
    return r!;
  }

  /** Runs many probes concurrently, then one canary sync for all of them (pods.ts probeBatch). */
  probeMany(calls: { from: string; req: ProbeRequest }[], opts: { wire?: boolean; concurrency?: number } = {}): Promise<ProbeResult[]> {
    return probeBatch(calls, (from) => this.pod(from).agent!, this.canary, opts);
  }

  /** A byte stream to 127.0.0.1:`port` inside the pod, through its probe agent. */
  openTunnel(pod: string, port: number): Promise<Duplex> {
    return openTunnel(this.pod(pod).socket, port);
  }

  /** The topology's services, each with a VIP and the pods its selector picks (kube-proxy's endpoints). */
  protected topologyServices(): void {
    (this.topology.services ?? []).forEach((spec, i) => {
      const endpoints = [...this.pods.values()].filter((p) => p.spec.namespace === spec.namespace && matches(spec.selector, p.spec.labels));
      this.services.set(`${spec.namespace}/${spec.name}`, { spec, vip: serviceVip(i), endpoints });
    });
  }

  /** Replaces the services (VIPs and backends, e.g. from an API's Services and EndpointSlices) and reprograms VIPs and names. */
  async setServices(services: RunningService[]): Promise<void> {
    this.services.clear();
    for (const s of services) this.services.set(`${s.spec.namespace}/${s.spec.name}`, s);
    await this.programServices();
    this.writeDns();
  }

  /** The network namespace that routes between the pods: where the service VIPs live (the netns node, docker's engine). */
  protected abstract get routerNetns(): string;

  /** (Re)programs the service VIPs: declaring a chain in iptables-restore --noflush flushes it, so this can run again. */
  protected async programServices(): Promise<void> {
    await run(['ip', 'netns', 'exec', this.routerNetns, 'iptables-restore', '--noflush'], { input: serviceRules(this.services.values(), this.servicesJumped) });
    this.servicesJumped = true;
  }

  /**
   * Network policy as the FORWARD rules of the namespace that routes between the pods, where every pod-to-pod packet
   * passes after the VIP DNAT (dataplane/iptables/network-policy.ts renders them against the chains there now).
   */
  applyNetworkPolicy(policy: NetworkPolicyInput): Promise<boolean> {
    const job = async (): Promise<boolean> => {
      const key = JSON.stringify(policy);
      if (this.appliedPolicy === key) return false;
      const router = ['ip', 'netns', 'exec', this.routerNetns];
      const text = renderNetworkPolicy(policy, currentRules(await run([...router, 'iptables-save', '-t', 'filter'])));
      await run([...router, 'iptables-restore', '--noflush'], { input: text });
      this.appliedPolicy = key;
      return true;
    };
    const next = this.policyQueue.then(job, job);
    this.policyQueue = next.catch(() => undefined);
    return next;
  }

  /** Writes every pod's names (hosts file). */
  protected abstract writeDns(): void;
  abstract down(): Promise<void>;
}

/** A new run of `make`'s cluster, started; on any failure everything it started is removed. */
export async function startCluster<C extends { start(): Promise<void>; down(): Promise<void> }>(
  opts: UpOptions,
  make: (run: { runId: string; short: string; runDir: string; stateDir: string }) => C,
): Promise<C> {
  const { runId, short } = newRunId();
  const runDir = resolve(opts.reportsDir ?? process.env[REPORTS_DIR_ENV] ?? 'reports', runId);
  const cluster = make({ runId, short, runDir, stateDir: stateDirOf(short) });
  try {
    await cluster.start();
  } catch (e) {
    await cluster.down();
    throw e;
  }
  return cluster;
}
