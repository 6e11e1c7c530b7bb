// The substrate contract: a topology of pods and services in, running pods out.
// A substrate never knows what Envoy is: profiles hand it containers (argv + uid + readiness).
import type { Duplex } from 'node:stream';
import type { ProbeRequest, ProbeResult } from '../probe/types.ts';
import type { NetworkPolicyInput } from '../dataplane/iptables/network-policy.ts';

export type Labels = Record<string, string>;

/** How the substrate decides a container is ready (checked from inside the pod). */
export type ReadyCheck =
  | { kind: 'tcp'; port: number }
  | { kind: 'http'; port: number; path: string; status?: number }
  | { kind: 'none' };

export interface ContainerSpec {
  name: string;
  /** A meshproof workload (`sentences`, `dora`, `tcp-listener`, `echo`) run with the pod bundle ... */
  workload?: string;
  /** ... or any command. */
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Run as this uid/gid (default 0). The Istio sidecar runs as 1337. */
  uid?: number;
  gid?: number;
  /** Ambient capabilities, e.g. `net_admin` for transparent listeners. */
  caps?: string[];
  ready?: ReadyCheck;
  /** Working directory of the process (a kube Pod's container root, where its volumes are linked). */
  cwd?: string;
  /** Bind mounts in the process's own mount namespace (see supervisor.ts ProcessSpec.mounts). */
  mounts?: { source: string; target: string }[];
}

export interface PodSpec {
  name: string;
  namespace: string;
  serviceAccount?: string;
  labels?: Labels;
  annotations?: Record<string, string>;
  containers?: ContainerSpec[];
  /** iptables-restore text applied in the pod's namespace before its containers start. */
  iptables?: string;
  /** Extra names resolving to this pod's IP (e.g. `<app>.apps.internal`). */
  hostAliases?: string[];
  /** Other names `Cluster.pod()` finds this pod by: a kube Pod is found by its Deployment's name (`age` for `age-5d8f…-x2x9z`). */
  aliases?: string[];
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number;
  appProtocol?: string;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  selector: Labels;
  ports: ServicePort[];
}

export interface Topology {
  name?: string;
  pods: PodSpec[];
  services?: ServiceSpec[];
}

export interface RunningPod {
  spec: PodSpec;
  /** `<namespace>/<name>`, also the key used everywhere. */
  key: string;
  ip: string;
  /** Name of the pod's Linux network namespace. */
  netns: string;
}

export interface RunningService {
  spec: ServiceSpec;
  vip: string;
  endpoints: RunningPod[];
  /** Service port → its backends, when they come from an API's EndpointSlices rather than from `endpoints` × targetPort. */
  backends?: Record<number, { ip: string; port: number }[]>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  readonly runId: string;
  /** Human outputs (logs, results): `reports/<run>/`. */
  readonly runDir: string;
  /** Files pods read (keys, configs, sockets): a private tmpfs directory. */
  readonly stateDir: string;
  readonly substrate: string;
  pods: Map<string, RunningPod>;
  services: Map<string, RunningService>;
  pod(ref: string): RunningPod;
  /** Runs a command inside a pod and waits for it. */
  exec(pod: string, argv: string[], opts?: { input?: string; uid?: number; timeoutMs?: number }): Promise<ExecResult>;
  /** Applies iptables-restore text (with --noflush) in a pod. */
  iptables(pod: string, rules: string): Promise<void>;
  startContainer(pod: string, c: ContainerSpec): Promise<void>;
  stopContainer(pod: string, name: string): Promise<void>;
  probe(from: string, req: ProbeRequest, opts?: { wire?: boolean }): Promise<ProbeResult>;
  /**
   * Runs many probes at once (at most `concurrency`, default 32), in the order given; with the wire check (`wire`,
   * default on) one canary sync proves all of them, so a truth table's batch costs one sync, not one per cell.
   */
  probeMany(calls: { from: string; req: ProbeRequest }[], opts?: { wire?: boolean; concurrency?: number }): Promise<ProbeResult[]>;
  /**
   * Writes a file the pod sees at `path` (absolute, inside `stateDir`: keys and configs live only as long as the run;
   * or inside `runDir`: what the pod leaves for the report, e.g. a log its process would write),
   * atomically (written aside, then renamed) with `mode` (default 0600) and owned by `uid`/`gid` (default root): a
   * key is 0600 and owned by the uid that reads it. On netns the pods share the host's files, so every pod sees it.
   */
  writeFile(pod: string, path: string, content: string, opts?: FileOptions): Promise<void>;
  /** A file as the pod sees it at `path` (e.g. a log a process writes); rejects when it does not exist. */
  readFile(pod: string, path: string): Promise<string>;
  /** What a container wrote to stdout and stderr so far. */
  containerLog(pod: string, container: string): Promise<string>;
  /** Sends a signal to a running container's main process (e.g. SIGUSR2: HAProxy master-worker reload). */
  signalContainer(pod: string, container: string, signal: NodeJS.Signals): void;
  /** What a running container has cost so far: its process and every process it started. */
  sample(pod: string, container: string): Promise<ContainerSample>;
  /** Node-level: the machine the pods run on, now (a load run's "did another job use the CPU meanwhile"). */
  machine(): Promise<MachineSample>;
  // What the kube layer's node agent runs Pods with (DESIGN.md seam 3): pods come and go while the cluster runs, and
  // the Services come from the API. A substrate that cannot do one yet throws a UserError naming the one that can.
  /**
   * Adds a pod to the running cluster (a cluster started with `dynamic` may start empty): its network, address, DNS
   * names and probe agent. Its containers are started with startContainer().
   */
  addPod(spec: PodSpec): Promise<RunningPod>;
  /** Stops every process of a pod (and what they started) and removes it, its address and its names. */
  removePod(pod: string): Promise<void>;
  /** Replaces the services (VIPs and backends, e.g. from an API's Services and EndpointSlices), reprogramming VIPs and DNS names. */
  setServices(services: RunningService[]): Promise<void>;
  /** A container of a pod as started with startContainer: running (`exitCode` undefined) or exited; undefined if never started. */
  containerStatus(pod: string, container: string): ContainerStatus | undefined;
  /** A byte stream to 127.0.0.1:`port` inside the pod (port-forward); rejects with why it could not connect. */
  openTunnel(pod: string, port: number): Promise<Duplex>;
  /**
   * Node-level: enforces Kubernetes NetworkPolicies between the pods (the policies, the pods they select and the
   * namespaces, as the API holds them), replacing what the last call enforced; the same input again changes nothing.
   * Calls never interleave. Resolves true when the rules changed.
   */
  applyNetworkPolicy(policy: NetworkPolicyInput): Promise<boolean>;
  down(): Promise<void>;
}

export interface ContainerStatus {
  /** undefined while it runs; its exit code once exited (null: killed by a signal). */
  exitCode: number | null | undefined;
  /** Resolves with the exit code when it exits. */
  exited: Promise<number | null>;
}

export interface FileOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A container's cost, cumulative since it started. */
export interface ContainerSample {
  /** CPU seconds (user + system) of its processes, those still running. */
  cpuSeconds: number;
  /** Resident memory of its processes now, bytes. */
  rssBytes: number;
  /** Each process's command line (Envoy's `--concurrency` is read from it). */
  commands: string[][];
}

/** The machine at one instant: cumulative CPU seconds summed over all CPUs (proc(5) /proc/stat). */
export interface MachineSample {
  /** performance.now() of the reading, ms. */
  at: number;
  cpus: number;
  /** user + nice + system. */
  busyS: number;
  /** irq + softirq (packet processing of the pods' links lands here). */
  irqS: number;
  idleS: number;
  stealS: number;
  /** The harness process itself, and the children it has reaped (a command run by exec, on netns). */
  harnessS: number;
  reapedS: number;
  /** Every other process outside this run's pods: `comm[pid]` → CPU seconds used so far. */
  others: Map<string, number>;
}
