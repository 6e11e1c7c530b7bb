// The Cluster port (substrate/types.ts) for the pods of a kind cluster: the API's Pods (key `<ns>/<name>`, found by
// their Deployment's name as on netns), exec and logs through the API (the real kubelet serves them), and probes made
// by meshproof's own probe agent (workloads/agent.ts) running inside the pod from the workload image's pod bundle. The
// harness reaches each agent through a Unix socket of its own in the run's state dir: every connection to it is one
// API exec into the pod piping bytes to the agent's socket there, so the probe client, its tunnels and the
// truth-table runner are the netns ones. The wire canary captures every node's pod links (KindCluster.
// startWireCanary), so a call between two pods of one node is on the wire as much as one between nodes. What kind cannot do yet (start/stop containers, iptables, samples, the node agent's members, network
// policy) is one line naming the substrates that can.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Writable, type Duplex } from 'node:stream';
import { CoreV1Api, DiscoveryV1Api, Exec, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { UserError } from '../../model/errors.ts';
import { AgentClient, openTunnel } from '../../probe/client.ts';
import type { Canary } from '../../probe/canary.ts';
import type { ProbeRequest, ProbeResult } from '../../probe/types.ts';
import { WORKLOAD_BUNDLE_PATH } from '../docker/images.ts';
import { findPod, probeBatch } from '../pods.ts';
import { pollUntil } from '../poll.ts';
import type { Cluster, ContainerSample, ContainerStatus, ContainerSpec, ExecResult, MachineSample, PodSpec, RunningPod, RunningService } from '../types.ts';
import type { KindCluster } from './cluster.ts';

/** Where the agent listens inside a pod (its container's own /tmp). */
const POD_AGENT_SOCKET = '/tmp/meshproof-agent.sock';
/** The system's namespaces: no pod of a suite runs there (istiod is reached through `pilot-discovery request`). */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);
/**
 * Runs in the pod with the image's node: connects to the agent's socket (retrying while the agent starts) and pipes
 * stdin and stdout through it, as socat would (the workload image has no socat).
 */
const PIPE = [
  "const net=require('net');const p=process.argv[1];let n=0;",
  "(function go(){const s=net.connect(p);",
  "s.once('connect',()=>{process.stdin.pipe(s);s.pipe(process.stdout);s.on('close',()=>process.exit(0));process.stdin.on('end',()=>s.end());});",
  "s.once('error',(e)=>{if(++n>200){process.stderr.write(e.message+'\\n');process.exit(1);}setTimeout(go,50);});})();",
].join('');

/** Probes in flight at once by default. */
const KIND_CONCURRENCY = 8;

/** A pod of the API as the Cluster port sees it, with where it runs and what runs the agent. */
export interface KindPod extends RunningPod {
  index: number;
  node: string;
  /** The container of the workload image the probe agent runs in (undefined: the pod has none, it cannot probe). */
  agentContainer?: string;
  /** Its containers (init containers too) by name. */
  containers: string[];
}

/** `<deployment>` of a pod a ReplicaSet `<deployment>-<pod-template-hash>` owns. */
export function deploymentOfPod(p: V1Pod): string | undefined {
  const rs = p.metadata?.ownerReferences?.find((o) => o.kind === 'ReplicaSet')?.name;
  const hash = p.metadata?.labels?.['pod-template-hash'];
  return rs && hash && rs.endsWith(`-${hash}`) ? rs.slice(0, -hash.length - 1) : undefined;
}

const notOnKind = (what: string): UserError =>
  new UserError(`${what} is not offered by the kind substrate yet (issue 14): use --substrate netns or docker`);

export class KindPodsCluster implements Cluster {
  readonly substrate = 'kind';
  readonly runId: string;
  readonly stateDir: string;
  pods = new Map<string, KindPod>();
  services = new Map<string, RunningService>();
  private readonly agents = new Map<string, { client: AgentClient; server: net.Server; path: string }>();
  private readonly core: CoreV1Api;
  private canaryStarted: Promise<{ canary: Canary; marker: (token: string) => Promise<void> }> | undefined;
  private index = 0;
  private readonly copied = new Map<string, Promise<void>>();

  constructor(
    readonly kind: KindCluster,
    readonly kc: KubeConfig,
    readonly runDir: string,
    private readonly workloadImage: string,
    private readonly opts: { wire?: boolean } = {},
  ) {
    this.runId = kind.name;
    this.stateDir = join(kind.stateDir, 'pods');
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(runDir, { recursive: true });
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Re-reads the API's Pods (Running, not terminating) and Services with their EndpointSlices; agents of gone pods close. */
  async refresh(): Promise<void> {
    const list = (await this.core.listPodForAllNamespaces({})).items.filter(
      (p) => !SYSTEM_NAMESPACES.has(p.metadata?.namespace ?? '') && p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && p.status?.podIP,
    );
    const next = new Map<string, KindPod>();
    for (const p of list) {
      const key = `${p.metadata!.namespace}/${p.metadata!.name}`;
      const old = this.pods.get(key);
      const deployment = deploymentOfPod(p);
      const spec: PodSpec = {
        name: p.metadata!.name!,
        namespace: p.metadata!.namespace!,
        labels: p.metadata?.labels ?? {},
        annotations: p.metadata?.annotations ?? {},
        ...(p.spec?.serviceAccountName ? { serviceAccount: p.spec.serviceAccountName } : {}),
        ...(deployment ? { aliases: [deployment] } : {}),
      };
      const all = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];
      const agentContainer = (p.spec?.containers ?? []).find((c) => c.image === this.workloadImage)?.name;
      next.set(key, {
        spec, key, ip: p.status!.podIP!, netns: '', index: old?.index ?? this.index++, node: p.spec?.nodeName ?? '',
        containers: all.map((c) => c.name), ...(agentContainer ? { agentContainer } : {}),
      });
    }
    for (const [key, a] of this.agents) {
      if (next.has(key)) continue;
      a.client.close();
      a.server.close();
      this.agents.delete(key);
    }
    this.pods = next;
    const [svcs, slices] = await Promise.all([this.core.listServiceForAllNamespaces({}), this.kc.makeApiClient(DiscoveryV1Api).listEndpointSliceForAllNamespaces({})]);
    const services = new Map<string, RunningService>();
    for (const s of svcs.items) {
      const ns = s.metadata!.namespace!;
      if (SYSTEM_NAMESPACES.has(ns)) continue;
      const name = s.metadata!.name!;
      const mine = slices.items.filter((e) => e.metadata?.namespace === ns && e.metadata?.labels?.['kubernetes.io/service-name'] === name);
      const ips = new Set(mine.flatMap((e) => e.endpoints.filter((x) => x.conditions?.ready !== false).flatMap((x) => x.addresses)));
      services.set(`${ns}/${name}`, {
        spec: { name, namespace: ns, selector: s.spec?.selector ?? {}, ports: (s.spec?.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port })) },
        vip: s.spec?.clusterIP ?? '',
        endpoints: [...next.values()].filter((p) => ips.has(p.ip)),
      });
    }
    this.services = services;
  }

  pod(ref: string): KindPod {
    return findPod(this.pods, ref);
  }

  /** The first container that is not Istio's sidecar, or the one named. */
  private containerOf(p: KindPod): string {
    return p.agentContainer ?? p.containers.find((c) => c !== 'istio-proxy') ?? p.containers[0]!;
  }

  async exec(pod: string, argv: string[], opts: { input?: string; uid?: number; timeoutMs?: number; container?: string } = {}): Promise<ExecResult> {
    if (opts.uid !== undefined) throw notOnKind('exec as another uid (the API runs a command as its container\'s user)');
    const p = this.pod(pod);
    const args = ['-n', p.spec.namespace, 'exec', ...(opts.input !== undefined ? ['-i'] : []), p.spec.name, '-c', opts.container ?? this.containerOf(p), '--', ...argv];
    return this.kind.kubectlCapture(args, { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  /** The pod's probe agent: started in its workload-image container once, reached through a host socket piping over the API's exec. */
  private async agent(key: string): Promise<AgentClient> {
    const have = this.agents.get(key);
    if (have) return have.client;
    const p = this.pods.get(key)!;
    if (!p.agentContainer) throw new UserError(`pod ${key} runs no container of meshproof's workload image, so the kind substrate has no probe agent in it: probe from a pod of the workshop's YAML`);
    const started = await this.exec(key, ['sh', '-c', `test -S ${POD_AGENT_SOCKET} || (nohup node ${WORKLOAD_BUNDLE_PATH} agent --socket ${POD_AGENT_SOCKET} >/tmp/meshproof-agent.log 2>&1 &)`], { container: p.agentContainer, timeoutMs: 30_000 });
    if (started.code !== 0) throw new Error(`${key}: starting the probe agent failed (${started.code}): ${started.stderr.trim()}`);
    const path = join(this.stateDir, `agent-${p.index}.sock`);
    rmSync(path, { force: true });
    const server = net.createServer((conn) => this.pipe(p, conn));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    let client: AgentClient | undefined;
    try {
      client = await AgentClient.connect(path, { timeoutMs: 10_000 });
      const c = client;
      // the pipe in the pod retries while the agent starts: a ping answered is the whole path working
      await pollUntil(async () => (await c.ping().then(() => true, () => undefined)), { timeoutMs: 30_000, intervalMs: 200, what: `the probe agent in ${key}` });
    } catch (e) {
      client?.close();
      server.close();
      throw e;
    }
    this.agents.set(key, { client, server, path });
    return client;
  }

  /** One host connection → one API exec of PIPE in the pod; either end closing closes the other. */
  private pipe(p: KindPod, conn: net.Socket): void {
    let err = '';
    const stderr = new Writable({ write: (chunk: Buffer, _e, cb) => ((err += chunk.toString()), cb()) });
    new Exec(this.kc)
      .exec(p.spec.namespace, p.spec.name, p.agentContainer!, ['node', '-e', PIPE, POD_AGENT_SOCKET], conn, stderr, conn, false)
      .then((ws) => {
        ws.on('close', () => conn.destroy(err ? new Error(err.trim()) : undefined));
        conn.on('close', () => ws.close());
      })
      .catch((e: Error) => conn.destroy(e));
    conn.on('error', () => undefined);
  }

  async probe(from: string, req: ProbeRequest, opts: { wire?: boolean } = {}): Promise<ProbeResult> {
    const [r] = await this.probeMany([{ from, req }], opts);
    return r!;
  }

  /** probeBatch with the canary on every node's pod links (KindCluster.startWireCanary) and its marker sent by each node. */
  async probeMany(calls: { from: string; req: ProbeRequest }[], opts: { wire?: boolean; concurrency?: number } = {}): Promise<ProbeResult[]> {
    // a cluster the user already has: meshproof sees none of its node links, so no call's wire is looked at
    const external = this.kind.external?.wireUnchecked;
    const wire = !external && opts.wire !== false && this.opts.wire !== false && calls.length > 0;
    const keys = calls.map((c) => this.pod(c.from).key);
    const clients = new Map<string, AgentClient>();
    for (const k of new Set(keys)) clients.set(k, await this.agent(k));
    // a request's PEM files are the harness's (e.g. another CA's identity in the run's PKI store): a kind pod has its
    // own filesystem, so each is copied into the caller's container at the same path before it is used
    for (const [i, c] of calls.entries()) {
      for (const f of [c.req.tls?.ca, c.req.tls?.cert, c.req.tls?.key]) if (f) await this.copyIn(keys[i]!, f);
    }
    const canary = wire ? await this.wireCanary() : undefined;
    // fewer at once than netns's 32: on 2 cores a burst of 66 calls (reachability's migration case) overflowed the
    // capture three times running
    const results = await probeBatch(calls.map((c, i) => ({ from: keys[i]!, req: c.req })), (k) => clients.get(k)!, canary?.canary, { concurrency: KIND_CONCURRENCY, ...opts, wire }, canary?.marker);
    if (external) {
      for (const r of results) {
        r.evidence.wire = null;
        delete r.evidence.plaintextLegs;
        Object.assign(r.evidence, { wireUnchecked: external });
      }
    }
    return results;
  }

  /** The harness's file at the same path in the pod's agent container, once per pod and path. */
  private copyIn(key: string, path: string): Promise<void> {
    const id = `${key}|${path}`;
    let done = this.copied.get(id);
    if (!done) {
      done = this.writeFile(key, path, readFileSync(path, 'utf8'));
      done.catch(() => this.copied.delete(id));
      this.copied.set(id, done);
    }
    return done;
  }

  private wireCanary(): Promise<{ canary: Canary; marker: (token: string) => Promise<void> }> {
    if (this.kind.external) return Promise.reject(new UserError(`no wire canary on a cluster meshproof did not create: ${this.kind.external.wireUnchecked}`));
    this.canaryStarted ??= this.kind.startWireCanary();
    return this.canaryStarted;
  }

  async readFile(pod: string, path: string): Promise<string> {
    const r = await this.exec(pod, ['cat', path]);
    if (r.code !== 0) throw new Error(`${pod}: ${path}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Written inside the pod's container only (a kind pod has its own filesystem: no other pod sees it). */
  async writeFile(pod: string, path: string, content: string, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
    const mode = (opts.mode ?? 0o600).toString(8);
    const own = opts.uid !== undefined ? ` && chown ${opts.uid}:${opts.gid ?? opts.uid} '${path}.tmp'` : '';
    const r = await this.exec(pod, ['sh', '-c', `mkdir -p "$(dirname '${path}')" && cat > '${path}.tmp' && chmod ${mode} '${path}.tmp'${own} && mv '${path}.tmp' '${path}'`], { input: content });
    if (r.code !== 0) throw new Error(`${pod}: writing ${path}: ${r.stderr.trim()}`);
  }

  async containerLog(pod: string, container: string): Promise<string> {
    const p = this.pod(pod);
    const r = await this.kind.kubectlCapture(['-n', p.spec.namespace, 'logs', p.spec.name, '-c', container]);
    if (r.code !== 0) throw new Error(`${pod}/${container}: kubectl logs: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A byte stream to 127.0.0.1:`port` in the pod: the agent's tunnel over the API's exec. */
  async openTunnel(pod: string, port: number): Promise<Duplex> {
    const p = this.pod(pod);
    await this.agent(p.key);
    return openTunnel(this.agents.get(p.key)!.path, port);
  }

  iptables(): Promise<void> {
    return Promise.reject(notOnKind('iptables in a pod'));
  }
  startContainer(_pod: string, _c: ContainerSpec): Promise<void> {
    return Promise.reject(notOnKind('startContainer (the kubelet starts a Pod\'s containers)'));
  }
  stopContainer(): Promise<void> {
    return Promise.reject(notOnKind('stopContainer'));
  }
  signalContainer(): void {
    throw notOnKind('signalContainer');
  }
  sample(): Promise<ContainerSample> {
    return Promise.reject(notOnKind('sample (a container\'s CPU and memory)'));
  }
  machine(): Promise<MachineSample> {
    return Promise.reject(notOnKind('machine (the node\'s CPU)'));
  }
  addPod(): Promise<RunningPod> {
    return Promise.reject(notOnKind('addPod (pods come from the API)'));
  }
  removePod(): Promise<void> {
    return Promise.reject(notOnKind('removePod'));
  }
  setServices(): Promise<void> {
    return Promise.reject(notOnKind('setServices (Services come from the API)'));
  }
  containerStatus(): ContainerStatus | undefined {
    throw notOnKind('containerStatus');
  }
  applyNetworkPolicy(): Promise<boolean> {
    return Promise.reject(notOnKind('applyNetworkPolicy (kind\'s bridge CNI enforces no NetworkPolicy)'));
  }

  /** Closes the agents' connections and host sockets, then deletes the kind cluster (its supervisor stops the canary's tcpdump). */
  async down(): Promise<void> {
    for (const a of this.agents.values()) {
      a.client.close();
      a.server.close();
    }
    this.agents.clear();
    await this.canaryStarted?.catch(() => undefined);
    await this.kind.delete();
  }
}
