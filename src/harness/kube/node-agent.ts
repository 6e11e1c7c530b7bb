// meshproof's kubelet: registers a Node, binds every unscheduled Pod to it, and runs each Pod as a
// pod of the substrate (a network namespace on netns): volumes materialised (projected service-
// account tokens by TokenRequest, ConfigMaps, Secrets, downward API, emptyDirs), init containers in
// order (a restartable one — Istio's native sidecar — started and gated on its probe), then the
// containers as processes mapped from their image (pods.ts). It writes Pod status and conditions,
// confirms deletions, and programs Service VIPs and DNS names from Services and EndpointSlices. It serves the kubelet
// API (kubelet-api.ts: logs, exec, port-forward) at the node's address for the API server.
// Everything it reads or writes goes through the Kubernetes API (@kubernetes/client-node).
import { chmodSync, chownSync, copyFileSync, linkSync, readdirSync, readFileSync, existsSync, mkdirSync, rmdirSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  CoreV1Api, DiscoveryV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions,
  type V1Container, type V1EndpointSlice, type V1Pod, type V1Service, type V1Volume, type V1VolumeProjection,
} from '@kubernetes/client-node';
import { Supervisor } from '../substrate/supervisor.ts';
import { KUBE_PORTS, KUBELET_CLIENT_USER, kubeletTlsFiles } from './apiserver.ts';
import { KubeletApi, type KubeletHost, type KubeletPod } from './kubelet-api.ts';
import type { KubeNode } from './node-netns.ts';
import { onTeardown } from '../substrate/lifecycle.ts';
import { STATE_ROOT } from '../substrate/state.ts';
import { pollUntil } from '../substrate/poll.ts';
import type { Cluster, ContainerSpec, RunningService } from '../substrate/types.ts';
import {
  containerEnv, fieldRef, formatMap, identityOf, ownerAppName, probeCheck, programsOf, serviceEnv, UnmappedImage, withEnvoyBinary,
  type ImageBinaries, type NodeFacts, type ProbeCheck, type Program,
} from './pods.ts';
import { syncNetworkPolicies } from './network-policy.ts';

/** The kubelet version the Node reports: istiod injects the native-sidecar form from 1.33 on (reference §2b). */
export const KUBELET_VERSION = 'v1.34.4';
/** Where client-go's in-cluster config reads the service-account files (rest.InClusterConfig). */
const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface NodeAgentOptions {
  bins: ImageBinaries & { bootstrapTemplate: string };
  /** The node it runs on (kube/node-netns.ts): its name, its address, the kubelet API's relay and containers' processes. */
  node: KubeNode;
  /** The API server as pods reach it (the node namespace's address). */
  apiServer: { host: string; port: number };
  log?: (line: string) => void;
  /** Budget for one Pod to become Ready (init containers, probes). */
  podTimeoutMs?: number;
}

interface LocalPod {
  uid: string;
  key: string;
  ip: string;
  dir: string;
  /** Names of the Pod's init containers and containers (the kubelet API finds their processes by them). */
  containers: string[];
  stopping?: Promise<void>;
  timers: NodeJS.Timeout[];
}

type Status = NonNullable<V1Pod['status']>;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class NodeAgent {
  readonly nodeName: string;
  private readonly core: CoreV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly local = new Map<string, LocalPod>();
  private readonly bound = new Set<string>();
  private readonly aborts: AbortController[] = [];
  private servicesKey = '';
  private servicesList: { name: string; namespace: string; clusterIP: string; ports: { name?: string; port: number }[] }[] = [];
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private unregister: () => void = () => undefined;
  private poll?: NodeJS.Timeout;
  /** The run's copy of the cached Envoy, reachable by pilot-agent's uid. */
  private envoy = '';
  private kubelet?: KubeletApi;
  readonly facts: NodeFacts;

  constructor(
    readonly cluster: Cluster,
    readonly kc: KubeConfig,
    private readonly opts: NodeAgentOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.nodeName = opts.node.name;
    this.facts = { nodeName: this.nodeName, hostIP: opts.node.address, cpu: 2, memory: 8 * 1024 ** 3 };
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Registers the Node, starts watching Pods, Services and EndpointSlices, and reconciles on every change. */
  async start(): Promise<void> {
    // Ctrl-C while the mesh is still starting (before its owner registers its own teardown): the mountpoint goes too
    this.unregister = onTeardown(() => this.stop());
    // the mountpoint for in-cluster clients' service-account files; made here (never present on a plain host) and
    // removed at stop() once no run mounts on it
    if (!existsSync(SA_MOUNT)) mkdirSync(SA_MOUNT, { recursive: true, mode: 0o755 });
    // pilot-agent (uid 1337) execs Envoy itself: the cached binary under a 0700 home is out of its reach, so the
    // run gets its own copy (a hard link where the filesystem allows)
    const bin = join(this.cluster.stateDir, 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 });
    this.envoy = join(bin, 'envoy');
    try {
      linkSync(this.opts.bins.envoy, this.envoy);
    } catch {
      copyFileSync(this.opts.bins.envoy, this.envoy);
    }
    chmodSync(this.envoy, 0o755);
    await this.startKubeletApi();
    await this.registerNode();
    const w = new Watch(this.kc);
    for (const path of ['/api/v1/pods', '/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices']) {
      const watchOnce = async (): Promise<void> => {
        if (this.stopped) return;
        try {
          this.aborts.push(await w.watch(path, {}, () => this.kick(), () => setTimeout(() => void watchOnce(), 500).unref()));
        } catch {
          setTimeout(() => void watchOnce(), 500).unref();
        }
      };
      // not awaited: the API server sends a watch's headers only with its first event
      void watchOnce();
    }
    // a watch can miss an event across a reconnect: a slow relist catches up
    this.poll = setInterval(() => this.kick(), 2000);
    this.poll.unref();
    this.kick();
  }

  private async registerNode(): Promise<void> {
    const allocatable = { cpu: String(this.facts.cpu), memory: `${Math.floor(this.facts.memory / 1024 ** 2)}Mi`, pods: '250' };
    await this.core.createNode({ body: { metadata: { name: this.nodeName, labels: { 'kubernetes.io/hostname': this.nodeName, 'kubernetes.io/os': 'linux' } } } });
    const now = new Date();
    await this.core.patchNodeStatus(
      {
        name: this.nodeName,
        body: {
          status: {
            capacity: allocatable,
            allocatable,
            addresses: [{ type: 'InternalIP', address: this.facts.hostIP }, { type: 'Hostname', address: this.nodeName }],
            conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'meshproof node agent is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
            // the port the API server dials at the InternalIP for logs, exec and port-forward (DaemonEndpoint's JSON name is `Port`)
            daemonEndpoints: { kubeletEndpoint: { Port: KUBE_PORTS.kubelet } },
            nodeInfo: { kubeletVersion: KUBELET_VERSION, kubeProxyVersion: KUBELET_VERSION, operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'meshproof://netns', kernelVersion: '', osImage: 'meshproof netns substrate', bootID: '', machineID: '', systemUUID: '' },
          },
        },
      },
      mergePatch,
    );
  }

  /**
   * The kubelet API: HTTPS on a Unix socket in the run's state directory, with the serving certificate startKubeApi
   * issued, and a relay in the node namespace from the node's address (what the Node's status advertises) to it.
   */
  private async startKubeletApi(): Promise<void> {
    const files = kubeletTlsFiles(this.cluster.stateDir);
    const host: KubeletHost = {
      pod: (namespace, name) => this.kubeletPod(namespace, name),
      tunnel: (pod, port) => this.cluster.openTunnel(`${pod.namespace}/${pod.name}`, port),
    };
    this.kubelet = new KubeletApi(host, { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) }, KUBELET_CLIENT_USER, (l) => this.log(l));
    const sock = join(this.cluster.stateDir, 'kube', 'kubelet.sock');
    await this.kubelet.listen(sock);
    await this.opts.node.relay(KUBE_PORTS.kubelet, sock);
  }

  /** A Pod this node runs, with its containers' processes, for the kubelet API. */
  private kubeletPod(namespace: string, name: string): KubeletPod | undefined {
    const mine = this.local.get(`${namespace}/${name}`);
    if (!mine || mine.stopping || this.stopped) return undefined;
    if (!this.cluster.pods.has(mine.key)) return undefined;
    return { namespace, name, uid: mine.uid, containers: new Map(mine.containers.map((c) => [c, this.opts.node.process(mine.key, c)])) };
  }

  /** Schedules a reconcile; reconciles never overlap, and a kick during one runs it once more. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.reconcile();
        } catch (e) {
          if (!this.stopped) this.log(`node agent: reconcile failed: ${(e as Error).message}`);
        }
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
  }

  /** Waits until the current reconcile (if any) is done. */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async reconcile(): Promise<void> {
    const [pods, svcs, slices] = await Promise.all([
      this.core.listPodForAllNamespaces({}),
      this.core.listServiceForAllNamespaces({}),
      this.discovery.listEndpointSliceForAllNamespaces({}),
    ]);
    await this.syncServices(svcs.items, slices.items);
    const seen = new Set<string>();
    for (const pod of pods.items) {
      const m = pod.metadata!;
      const key = `${m.namespace}/${m.name}`;
      if (!pod.spec?.nodeName) {
        if (!this.bound.has(m.uid!)) {
          this.bound.add(m.uid!);
          await this.core.createNamespacedPodBinding({ name: m.name!, namespace: m.namespace!, body: { metadata: { name: m.name! }, target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName } } }).catch((e: Error) => {
            this.bound.delete(m.uid!);
            this.log(`node agent: binding ${key}: ${e.message}`);
          });
        }
        continue;
      }
      if (pod.spec.nodeName !== this.nodeName) continue;
      seen.add(key);
      const mine = this.local.get(key);
      if (m.deletionTimestamp) {
        void this.deletePod(pod, mine);
        continue;
      }
      if (mine && mine.uid !== m.uid) {
        // a new Pod with the old one's name: the old one must be gone first (fixed ports inside the pod)
        void this.stopPod(mine);
        continue;
      }
      if (!mine && !['Succeeded', 'Failed'].includes(pod.status?.phase ?? '')) void this.runPod(pod);
    }
    for (const [key, mine] of this.local) if (!seen.has(key)) void this.stopPod(mine);
    await syncNetworkPolicies(this.kc, this.cluster, pods.items);
  }

  private async syncServices(svcs: V1Service[], slices: V1EndpointSlice[]): Promise<void> {
    const out: RunningService[] = [];
    this.servicesList = [];
    for (const s of svcs) {
      const ip = s.spec?.clusterIP;
      const name = s.metadata!.name!;
      const namespace = s.metadata!.namespace!;
      const ports = (s.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
      this.servicesList.push({ name, namespace, clusterIP: ip ?? '', ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port })) });
      if (!ip || ip === 'None') continue;
      const backends: Record<number, { ip: string; port: number }[]> = {};
      for (const p of ports) {
        if (namespace === 'default' && name === 'kubernetes') {
          // the API server's own Service (--endpoint-reconciler-type=none: no endpoints are written for it)
          backends[p.port] = [{ ip: this.opts.apiServer.host, port: this.opts.apiServer.port }];
          continue;
        }
        backends[p.port] = slices
          .filter((sl) => sl.metadata?.namespace === namespace && sl.metadata?.labels?.['kubernetes.io/service-name'] === name && sl.addressType === 'IPv4')
          .flatMap((sl) => {
            const sp = (sl.ports ?? []).find((x) => (x.name ?? '') === (p.name ?? ''));
            if (!sp?.port) return [];
            return (sl.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses.map((a) => ({ ip: a, port: sp.port! })));
          });
      }
      out.push({
        spec: { name, namespace, selector: s.spec?.selector ?? {}, ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })) },
        vip: ip,
        endpoints: [],
        backends,
      });
    }
    const key = JSON.stringify(out.map((s) => [s.spec.namespace, s.spec.name, s.vip, s.backends]));
    if (key === this.servicesKey) return;
    this.servicesKey = key;
    await this.cluster.setServices(out);
  }

  // ---------------------------------------------------------------------------------------------
  // Running a Pod

  private async runPod(pod: V1Pod): Promise<void> {
    const m = pod.metadata!;
    const key = `${m.namespace}/${m.name}`;
    const dir = join(this.cluster.stateDir, 'kube', 'pods', `${m.namespace}_${m.name}`);
    const app = ownerAppName(pod);
    // claimed before the first await: a reconcile running meanwhile must not start the pod twice
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name);
    const t0 = Date.now();
    let at = t0;
    const marks: string[] = [];
    const mark = (what: string): void => {
      const now = Date.now();
      marks.push(`${what} ${now - at}`);
      at = now;
    };
    const mine: LocalPod = { uid: m.uid!, key, ip: '', dir, containers, timers: [] };
    this.local.set(key, mine);
    const status: Status = { phase: 'Pending', hostIP: this.facts.hostIP, hostIPs: [{ ip: this.facts.hostIP }], startTime: new Date(), conditions: [cond('PodScheduled', true), cond('Initialized', false), cond('ContainersReady', false), cond('Ready', false)] };
    try {
      const running = await this.cluster.addPod({
        name: m.name!,
        namespace: m.namespace!,
        serviceAccount: pod.spec?.serviceAccountName ?? 'default',
        labels: { ...(m.labels ?? {}) },
        annotations: { ...(m.annotations ?? {}) },
        ...(app ? { aliases: [app] } : {}),
      });
      mark('network');
      mine.ip = running.ip;
      status.podIP = running.ip;
      status.podIPs = [{ ip: running.ip }];
      await this.writeStatus(pod, status);
      const vols = await this.materialiseVolumes(pod, mine);
      mark('volumes');
      const svcEnv = serviceEnv(this.servicesList, m.namespace!);
      const initStatuses: NonNullable<Status['initContainerStatuses']> = [];
      const deadline = Date.now() + (this.opts.podTimeoutMs ?? 90_000);
      for (const c of pod.spec?.initContainers ?? []) {
        const restartable = c.restartPolicy === 'Always';
        await this.startContainer(pod, mine, c, vols, svcEnv);
        if (restartable) {
          // a native sidecar: started, then gated on its startup (else readiness) probe; never waited on to exit
          await this.waitProbe(mine, c, c.startupProbe ?? c.readinessProbe, deadline);
          initStatuses.push(containerStatus(c, true, true));
        } else {
          const code = await this.waitExit(mine, c, deadline);
          if (code !== 0) throw new PodFailure('InitContainerFailed', `init container ${c.name} exited with code ${code}: ${this.tail(mine, c)}`);
          // kubelet reports a completed init container ready (pkg/kubelet/status)
          initStatuses.push({ ...containerStatus(c, true, false), state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: new Date(), finishedAt: new Date() } } });
        }
        status.initContainerStatuses = [...initStatuses];
        await this.writeStatus(pod, status);
        mark(c.name);
      }
      setCond(status, 'Initialized', true);
      const containers = pod.spec?.containers ?? [];
      for (const c of containers) await this.startContainer(pod, mine, c, vols, svcEnv);
      status.phase = 'Running';
      status.containerStatuses = containers.map((c) => containerStatus(c, false, true));
      await this.writeStatus(pod, status);
      mark('start');
      for (const c of containers) await this.waitProbe(mine, c, c.readinessProbe, deadline);
      mark('ready');
      status.containerStatuses = containers.map((c) => containerStatus(c, true, true));
      setCond(status, 'ContainersReady', true);
      setCond(status, 'Ready', true);
      await this.writeStatus(pod, status);
      this.log(`node agent: pod ${key} ready (${mine.ip}) in ${Date.now() - t0} ms (${marks.join(', ')})`);
    } catch (e) {
      if (mine.stopping || this.stopped) return;
      const reason = e instanceof PodFailure ? e.reason : e instanceof UnmappedImage ? e.reason : 'NodeAgentError';
      const message = (e as Error).message;
      this.log(`node agent: pod ${key}: ${reason}: ${message}`);
      status.phase = 'Failed';
      status.reason = reason;
      status.message = message;
      await this.writeStatus(pod, status).catch(() => undefined);
    }
  }

  private async writeStatus(pod: V1Pod, status: Status): Promise<void> {
    if (this.stopped) return;
    await this.core.patchNamespacedPodStatus({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } }, mergePatch);
  }

  /** The process(es) of one container, started in the pod with its root as working directory and its volumes linked in. */
  private async startContainer(pod: V1Pod, mine: LocalPod, c: V1Container, vols: Map<string, string>, svcEnv: Record<string, string>): Promise<void> {
    const env0 = containerEnv(c, pod, mine.ip, this.facts, svcEnv);
    const programs = programsOf(c, env0, this.opts.bins, ownerAppName(pod) ?? pod.metadata!.name!);
    const id = identityOf(c, pod);
    const root = join(mine.dir, 'root', c.name);
    const mounts: { source: string; target: string }[] = [];
    mkdirSync(root, { recursive: true, mode: 0o755 });
    for (const vm of c.volumeMounts ?? []) {
      const src = vols.get(vm.name);
      if (!src) throw new PodFailure('VolumeNotFound', `container ${c.name}: volumeMount ${vm.name} names no volume`);
      const target = join(root, vm.mountPath);
      mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      if (!existsSync(target)) symlinkSync(vm.subPath ? join(src, vm.subPath) : src, target);
      if (vm.mountPath.replace(/\/$/, '') === SA_MOUNT) mounts.push({ source: src, target: SA_MOUNT });
    }
    const isProxy = programs.some((p) => p.kind === 'binary' && p.what === 'pilot-agent');
    if (isProxy) {
      // what the proxyv2 image ships besides its binaries: Istio's bootstrap template, read relative to the working directory
      const tmpl = join(root, 'var/lib/istio/envoy/envoy_bootstrap_tmpl.json');
      mkdirSync(dirname(tmpl), { recursive: true, mode: 0o755 });
      if (!existsSync(tmpl)) copyFileSync(this.opts.bins.bootstrapTemplate, tmpl);
    }
    const env = isProxy ? withEnvoyBinary(env0, this.envoy) : env0;
    for (const [i, prog] of programs.entries()) {
      const spec: ContainerSpec = { name: i === 0 ? c.name : `${c.name}-${i}`, ...progSpec(prog), env: { ...env, HOSTNAME: pod.metadata!.name! }, uid: id.uid, gid: id.gid, caps: id.caps, cwd: root, mounts };
      await this.cluster.startContainer(mine.key, spec);
    }
  }

  private async waitExit(mine: LocalPod, c: V1Container, deadline: number): Promise<number | null> {
    const proc = this.cluster.containerStatus(mine.key, c.name);
    if (!proc) throw new PodFailure('NodeAgentError', `container ${c.name} has no process`);
    const left = Math.max(0, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([proc.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left)))]);
    clearTimeout(timer);
    if (code === 'timeout') throw new PodFailure('InitContainerTimeout', `init container ${c.name} did not exit: ${this.tail(mine, c)}`);
    return code;
  }

  private tail(mine: LocalPod, c: V1Container): string {
    const proc = this.opts.node.process(mine.key, c.name);
    return proc ? `log ${proc.logFile}: ${Supervisor.tail(proc, 6).replace(/\n/g, ' | ')}` : '';
  }

  /** Runs a probe from inside the pod until it passes (as kubelet's prober would, from the node), bounded by the pod's deadline. */
  private async waitProbe(mine: LocalPod, c: V1Container, probe: V1Container['readinessProbe'], deadline: number): Promise<void> {
    const check = probeCheck(probe, c, mine.ip);
    if (!check) return;
    const notReady = () => new PodFailure('NotReady', `container ${c.name}: ${describe(check)} did not pass in time: ${this.tail(mine, c)}`);
    // a pod's gates (the native sidecar's startup probe, then each container's readiness) follow one another
    await pollUntil(async () => {
      const proc = this.cluster.containerStatus(mine.key, c.name);
      if (proc && proc.exitCode !== undefined) throw new PodFailure('CrashLoopBackOff', `container ${c.name} exited (code ${proc.exitCode}) before it was ready: ${this.tail(mine, c)}`);
      if (await this.probeOnce(mine, check)) return true;
      if (mine.stopping || this.stopped) throw notReady();
      return undefined;
    }, { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 100, what: `container ${c.name}'s probe` }).catch((e: unknown) => {
      throw /: not ready after \d+ ms$/.test((e as Error).message ?? '') ? notReady() : e;
    });
  }

  private async probeOnce(mine: LocalPod, check: ProbeCheck): Promise<boolean> {
    if (check.kind === 'exec') return (await this.cluster.exec(mine.key, check.command, { timeoutMs: 5000 })).code === 0;
    const r = await this.cluster.probe(mine.key, check.kind === 'http' ? { protocol: 'http', host: check.host, port: check.port, path: check.path, timeoutMs: 1000 } : { protocol: 'tcp', host: check.host, port: check.port, timeoutMs: 1000 }, { wire: false });
    if (check.kind === 'tcp') return r.verdict !== 'denied:refused' && r.verdict !== 'denied:timeout';
    const s = r.evidence.status ?? 0;
    return s >= 200 && s < 400;
  }

  // ---------------------------------------------------------------------------------------------
  // Volumes

  /** Writes every volume of the pod under its directory; returns volume name → path. */
  private async materialiseVolumes(pod: V1Pod, mine: LocalPod): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    const filling: Promise<void>[] = [];
    for (const v of pod.spec?.volumes ?? []) {
      const dir = join(mine.dir, 'vol', v.name);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      // files belong to the (non-root) user of the containers that mount the volume, group fsGroup as kubelet sets it
      const users = all.filter((c) => c.volumeMounts?.some((vm) => vm.name === v.name)).map((c) => identityOf(c, pod));
      const uid = Math.max(0, ...users.map((u) => u.uid));
      const gid = users[0]?.fsGroup ?? Math.max(0, ...users.map((u) => u.gid));
      chownSync(dir, uid, gid);
      // each volume its own directory, filled by its own API reads (TokenRequests, ConfigMaps, Secrets): side by side
      filling.push(this.fillVolume(pod, mine, v, dir, { uid, gid }));
      out.set(v.name, dir);
    }
    await Promise.all(filling);
    return out;
  }

  private async fillVolume(pod: V1Pod, mine: LocalPod, v: V1Volume, dir: string, owner: { uid: number; gid: number }): Promise<void> {
    const ns = pod.metadata!.namespace!;
    // through the port: written aside and renamed (a refreshed token is never seen half-written), owned by the reader
    const write = (path: string, content: string, secret = false): Promise<void> =>
      this.cluster.writeFile(mine.key, join(dir, path), content, { mode: secret ? 0o600 : 0o644, uid: owner.uid, gid: owner.gid });
    if (v.emptyDir) return;
    if (v.configMap) return this.writeConfigMap(ns, v.configMap.name!, v.configMap.items, v.configMap.optional, write);
    if (v.secret) return this.writeSecret(ns, v.secret.secretName!, v.secret.items, v.secret.optional, write);
    if (v.downwardAPI) {
      for (const item of v.downwardAPI.items ?? []) if (item.fieldRef) await write(item.path, fieldRef(item.fieldRef.fieldPath, pod, mine.ip, this.facts));
      return;
    }
    if (v.projected) {
      await Promise.all((v.projected.sources ?? []).map((src) => this.projectSource(pod, mine, src, write)));
      return;
    }
    throw new PodFailure('VolumeNotSupported', `volume ${v.name}: only emptyDir, configMap, secret, downwardAPI and projected volumes are run by meshproof's node agent`);
  }

  private async projectSource(pod: V1Pod, mine: LocalPod, src: V1VolumeProjection, write: (p: string, c: string, secret?: boolean) => Promise<void>): Promise<void> {
    const ns = pod.metadata!.namespace!;
    if (src.serviceAccountToken) {
      const t = src.serviceAccountToken;
      const refresh = async (): Promise<void> => {
        const expirationSeconds = t.expirationSeconds ?? 3600;
        const res = await this.core.createNamespacedServiceAccountToken({
          name: pod.spec?.serviceAccountName ?? 'default',
          namespace: ns,
          body: { spec: { audiences: t.audience ? [t.audience] : [], expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! } } },
        });
        await write(t.path, res.status!.token, true);
        // kubelet refreshes a projected token at 80% of its life (pkg/kubelet/token)
        const timer = setTimeout(() => void refresh().catch((e: Error) => this.log(`node agent: token refresh for ${mine.key}: ${e.message}`)), expirationSeconds * 800);
        timer.unref();
        mine.timers.push(timer);
      };
      await refresh();
    } else if (src.configMap) {
      await this.writeConfigMap(ns, src.configMap.name!, src.configMap.items, src.configMap.optional, write);
    } else if (src.secret) {
      await this.writeSecret(ns, src.secret.name!, src.secret.items, src.secret.optional, write);
    } else if (src.downwardAPI) {
      for (const item of src.downwardAPI.items ?? []) {
        if (item.fieldRef) await write(item.path, item.fieldRef.fieldPath.match(/^metadata\.(labels|annotations)$/) ? formatMap(item.fieldRef.fieldPath.endsWith('labels') ? pod.metadata?.labels : pod.metadata?.annotations) : fieldRef(item.fieldRef.fieldPath, pod, mine.ip, this.facts));
      }
    }
  }

  /** A ConfigMap's keys as files; a missing one that is not optional is waited for (istiod writes istio-ca-root-cert after it starts). */
  private async writeConfigMap(ns: string, name: string, items: { key: string; path: string }[] | undefined, optional: boolean | undefined, write: (p: string, c: string) => Promise<void>): Promise<void> {
    const cm = await this.waitObject(() => this.core.readNamespacedConfigMap({ name, namespace: ns }), optional, `ConfigMap ${ns}/${name}`);
    if (!cm) return;
    const data = cm.data ?? {};
    for (const { key, path } of items ?? Object.keys(data).map((k) => ({ key: k, path: k }))) if (key in data) await write(path, data[key]!);
  }

  private async writeSecret(ns: string, name: string, items: { key: string; path: string }[] | undefined, optional: boolean | undefined, write: (p: string, c: string, secret?: boolean) => Promise<void>): Promise<void> {
    const s = await this.waitObject(() => this.core.readNamespacedSecret({ name, namespace: ns }), optional, `Secret ${ns}/${name}`);
    if (!s) return;
    const data = s.data ?? {};
    for (const { key, path } of items ?? Object.keys(data).map((k) => ({ key: k, path: k }))) if (key in data) await write(path, Buffer.from(data[key]!, 'base64').toString(), true);
  }

  private async waitObject<T>(read: () => Promise<T>, optional: boolean | undefined, what: string): Promise<T | null> {
    const notFound = () => new PodFailure('CreateContainerConfigError', `${what} not found`);
    return pollUntil(async (): Promise<{ v: T | null } | undefined> => {
      try {
        return { v: await read() };
      } catch (e) {
        if ((e as { code?: number }).code !== 404) throw e;
        if (optional) return { v: null };
        if (this.stopped) throw notFound();
        return undefined;
      }
    }, { timeoutMs: 60_000, intervalMs: 250, what }).then((x) => x.v, (e: unknown) => {
      // out of time: still not there; any other error is the API's own
      throw /: not ready after \d+ ms$/.test((e as Error).message ?? '') ? notFound() : e;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Stopping

  private stopPod(mine: LocalPod): Promise<void> {
    mine.stopping ??= (async () => {
      const t0 = Date.now();
      for (const t of mine.timers) clearTimeout(t);
      const [namespace, name] = mine.key.split('/') as [string, string];
      this.kubelet?.closePod(namespace, name);
      await this.cluster.removePod(mine.key).catch(() => undefined);
      this.log(`node agent: pod ${mine.key} stopped in ${Date.now() - t0} ms`);
      this.local.delete(mine.key);
      this.kick();
    })();
    return mine.stopping;
  }

  /** A Pod being deleted: its processes stop, then the deletion is confirmed (grace 0), as kubelet does. */
  private async deletePod(pod: V1Pod, mine: LocalPod | undefined): Promise<void> {
    if (mine) await this.stopPod(mine);
    await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 }).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.unregister();
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    for (const a of this.aborts) a.abort();
    await this.running?.catch(() => undefined);
    for (const mine of this.local.values()) for (const t of mine.timers) clearTimeout(t);
    await this.kubelet?.close();
    await this.opts.node.stop();
    removeSaMountpoint(basename(this.cluster.stateDir));
  }
}

/**
 * Removes the service-account mountpoint (and its parents /run/secrets/kubernetes.io, /run/secrets) when empty: rmdir
 * fails on a directory another live run still mounts on, so whichever run stops last removes it; the janitor too.
 */
export function removeSaMountpoint(except?: string): void {
  // mounts live in each container's own mount namespace, so rmdir cannot tell the host directory is in use: another
  // live run with a kube layer (its state directory has kube/) keeps it
  if (existsSync(STATE_ROOT) && readdirSync(STATE_ROOT).some((d) => d !== except && existsSync(join(STATE_ROOT, d, 'kube')))) return;
  for (const d of [SA_MOUNT, dirname(SA_MOUNT), dirname(dirname(SA_MOUNT))]) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

class PodFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function progSpec(p: Program): Pick<ContainerSpec, 'workload' | 'command' | 'args'> {
  if (p.kind === 'workload') return { workload: p.workload, args: p.args };
  if (p.kind === 'binary') return { command: p.argv };
  return { command: ['sleep', 'infinity'] };
}

function cond(type: string, ok: boolean): NonNullable<Status['conditions']>[number] {
  return { type, status: ok ? 'True' : 'False', lastTransitionTime: new Date() };
}

function setCond(s: Status, type: string, ok: boolean): void {
  s.conditions = (s.conditions ?? []).map((c) => (c.type === type ? cond(type, ok) : c));
}

function containerStatus(c: V1Container, ready: boolean, started: boolean): NonNullable<Status['containerStatuses']>[number] {
  return { name: c.name, image: c.image ?? '', imageID: '', ready, started, restartCount: 0, containerID: `meshproof://${c.name}`, state: { running: { startedAt: new Date() } } };
}

function describe(c: ProbeCheck): string {
  return c.kind === 'exec' ? `exec ${c.command.join(' ')}` : c.kind === 'http' ? `GET ${c.host}:${c.port}${c.path}` : `tcp ${c.host}:${c.port}`;
}
