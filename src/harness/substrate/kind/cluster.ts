// A real kind cluster on meshproof's own docker engine (dockerd in a private network namespace): the offline node
// image (node-image.ts), the runc wrapper as dockerd's default runtime where the host lacks CAP_SYS_RESOURCE, an
// internal docker network, clusters/kind.yaml with the run's name, a bridge CNI config per node from its podCIDR and
// routes between the nodes. The API server's published port stays inside the engine's namespace; the harness reaches it
// on a 127.0.0.1 port relayed over a Unix socket into that namespace, as the kube layer's (kube/apiserver.ts).
// Not wired into the suites yet: substrate/index.ts still refuses kind.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { resolveKube, runLogged, stepFailed, type Log } from '../../controlplane/provision.ts';
import { UserError } from '../../model/errors.ts';
import { pollUntil } from '../poll.ts';
import { run, runCapture } from '../sh.ts';
import type { ExecResult } from '../types.ts';
import { Supervisor } from '../supervisor.ts';
import { buildPodBundle } from '../bundle.ts';
import { startRelay, type RelayHandle } from '../../workloads/relay.ts';
import { MARKER_PORT, startWireCanary } from '../pods.ts';
import { WireCanaries, type Canary } from '../../probe/canary.ts';
import { netnsPrefix, stateDirOf } from '../state.ts';
import { docker, dockerCapture, startEngine, type DockerEngine } from '../docker/engine.ts';
import { bridgeConflist, clusterNameOf, daemonConfigWithRuntime, nodeRoutes, renderKindConfig, type NodeNet } from './config.ts';
import { ensureNodeImage } from './node-image.ts';
import { KIND_FIX, kindBinary, needsRuncWrapper, runcWrapperPath } from './provision.ts';

const REPO = new URL('../../../../', import.meta.url).pathname;
export const KIND_CONFIG_TEMPLATE = join(REPO, 'clusters', 'kind.yaml');
/** dockerd's name for the wrapper runtime. */
const WRAPPER_RUNTIME = 'meshproof-runc';
const logsDir = (): string => join(kindBinary('kind').path, '..', '..', 'logs');

/** A cluster the user already has (external.ts): images are pushed to their registry, and nothing of it is meshproof's to delete. */
export interface ExternalCluster {
  /** `host:port` the kubelet pulls meshproof's images from (`<registry>/meshproof/...`). */
  registry: string;
  /** Why no probe's wire is checked (no access to the user's node links): every record's `wireUnchecked`. */
  wireUnchecked: string;
  /** The images of meshproof's engine tagged `<registry>/<tag>` and pushed there; → the references, in order. */
  pushImages(tags: string[]): Promise<string[]>;
  /** Objects meshproof applied (deleted, with the namespaces meshproof created, by `delete()`). */
  track(objs: KubernetesObject[]): void;
}

export interface KindCluster {
  name: string;
  /** This cluster's own directory in the run's state dir (kubeconfigs, Istio's manifest, agent sockets). */
  stateDir: string;
  /** Set for a cluster the user already has (MESHPROOF_KUBECONFIG): not created by meshproof, never deleted by it. */
  external?: ExternalCluster;
  engine: DockerEngine;
  /** The kubeconfig (server: the control-plane node's IP on the internal network), usable inside `netns`. */
  kubeconfig: string;
  /** dockerd's private network namespace, where the nodes' addresses are reachable. */
  netns: string;
  /** The node containers (= Kubernetes node names), control plane first. */
  nodes: NodeNet[];
  /** The cached kubectl against the cluster, run inside the engine's namespace. */
  kubectl(args: string[], o?: { timeoutMs?: number; input?: string }): Promise<string>;
  /** The same, with its exit code, stdout and stderr (a command that is meant to fail). */
  kubectlCapture(args: string[], o?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** The API server on the host's loopback: https://127.0.0.1:<port>, relayed into the engine's namespace. */
  loopback: { server: string; kubeconfig: string; kc: KubeConfig };
  /** The pod bundle (workloads and probe agent) this cluster's relay runs, for the workload image. */
  bundle: string;
  /** `kind load docker-image` of images of the engine into `nodes` (default every node; containerd's k8s.io namespace). */
  loadImages(tags: string[], nodes?: string[]): Promise<void>;
  /** Each node container's memory use in MiB, as the engine reports it (`docker stats`: the container's cgroup). */
  nodeMemoryMiB(): Promise<Record<string, number>>;
  /** The nodes a Pod without tolerations can be scheduled on (no NoSchedule or NoExecute taint). */
  schedulableNodes(): Promise<string[]>;
  /**
   * The wire canary on the pods' links: tcpdump (the netns substrate's capture, pods.ts captureArgv) in each node's
   * network namespace, which holds its pods' veths and bridge, so every packet a pod sends or gets is seen on its node
   * (and a call between nodes on both). `marker` makes each node send a canary marker.
   */
  startWireCanary(): Promise<{ canary: Canary; marker: (token: string) => Promise<void> }>;
  /** kind delete cluster, then the engine goes (containers, networks, dockerd, its namespace). */
  delete(): Promise<void>;
}

/** Makes the wrapper dockerd's default runtime: daemon.json rewritten, SIGHUP (a live-reloadable option), then checked. */
async function useWrapperRuntime(engine: DockerEngine, log: Log): Promise<void> {
  const l = engine.layout!;
  writeFileSync(l.configFile, daemonConfigWithRuntime(WRAPPER_RUNTIME, runcWrapperPath()));
  const pid = Number(readFileSync(l.pidfile, 'utf8').trim());
  process.kill(pid, 'SIGHUP');
  let seen = '';
  await pollUntil(async () => {
    seen = (await dockerCapture(engine, ['info', '--format', '{{.DefaultRuntime}}'])).stdout.trim();
    return seen === WRAPPER_RUNTIME ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100, what: `dockerd's default runtime ${WRAPPER_RUNTIME}`, detail: () => `docker info says ${seen}` });
  log(`kind: dockerd's default runtime is ${runcWrapperPath()} (the host lacks CAP_SYS_RESOURCE)`);
}

async function inspectIp(engine: DockerEngine, container: string): Promise<string> {
  const ip = (await docker(engine, ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container])).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) throw new Error(`node ${container} has no IPv4 address (${JSON.stringify(ip)})`);
  return ip;
}

/** The last lines of a node's kubelet journal, for a failed create (the fault: "the node's kubelet journal tail shown"). */
async function kubeletTail(engine: DockerEngine, node: string): Promise<string> {
  const r = await dockerCapture(engine, ['exec', node, 'journalctl', '-u', 'kubelet', '--no-pager', '-n', '3', '-o', 'cat']);
  return (r.stdout || r.stderr).trim().split('\n').slice(-3).map((l) => l.slice(0, 200)).join(' | ');
}

export interface CreateKindOptions {
  log?: Log;
  readyTimeoutMs?: number;
  /** kind's `kubeadmConfigPatches` (kubeadm's own config documents), e.g. a kubelet setting. */
  kubeadmConfigPatches?: string[];
  /**
   * Work on the cluster's engine that runs while kind creates the nodes (building the pods' images: `bundle` is the pod
   * bundle being built meanwhile); awaited before createKindCluster resolves, and its failure fails the create.
   */
  alongside?: (engine: DockerEngine, bundle: Promise<string>) => Promise<void>;
  /** kind's `containerdConfigPatches` (TOML merged into each node's containerd config before it starts), e.g. a registry's config_path. */
  containerdConfigPatches?: string[];
}

/**
 * From `<node> <effect>,<effect>,…` lines, the nodes without a NoSchedule or NoExecute taint: with a worker, kubeadm's
 * `node-role.kubernetes.io/control-plane:NoSchedule` stays on the control plane (kind removes it only on a one-node cluster).
 */
export function schedulable(lines: string): string[] {
  return lines.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(' ') as [string, string?])
    .filter(([, effects]) => !(effects ?? '').split(',').some((e) => e === 'NoSchedule' || e === 'NoExecute')).map(([n]) => n);
}

/** `docker stats --format '{{.Name}} {{.MemUsage}}'` lines (`n 512.3MiB / 23.5GiB`) → MiB per container. */
export function parseMemUsage(lines: string): Record<string, number> {
  const unit: Record<string, number> = { B: 2 ** -20, KiB: 2 ** -10, MiB: 1, GiB: 1024, kB: 1e3 / 2 ** 20, MB: 1e6 / 2 ** 20, GB: 1e9 / 2 ** 20 };
  const out: Record<string, number> = {};
  for (const l of lines.split('\n').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\S+) ([\d.]+)([A-Za-z]+) \//.exec(l);
    if (!m || unit[m[3]!] === undefined) throw new Error(`docker stats: cannot read ${JSON.stringify(l)}`);
    out[m[1]!] = Math.round(Number(m[2]) * unit[m[3]!]!);
  }
  return out;
}

/** kind's kubeconfig with every cluster's server replaced by `server` (the loopback relay). */
export function kubeconfigWithServer(text: string, server: string): string {
  const k = parse(text) as { clusters?: { cluster?: { server?: string } }[] };
  if (!k?.clusters?.length) throw new Error('kind wrote a kubeconfig without clusters');
  for (const c of k.clusters) if (c.cluster) c.cluster.server = server;
  return stringify(k);
}

/**
 * 127.0.0.1:<ephemeral> on the host → a Unix socket → the relay workload inside the engine's namespace → `target`
 * (the control-plane node's 6443): the kube layer's relay pair (kube/apiserver.ts), no host port beyond loopback.
 */
export async function loopbackRelay(sup: Supervisor, netns: string, bundle: string, socket: string, target: string): Promise<RelayHandle> {
  const proc = sup.start({ pod: 'kind', name: 'kube-relay', netns, argv: [process.execPath, bundle, 'relay', '--listen', socket, '--connect', target] });
  await pollUntil(() => {
    if (proc.exitCode !== undefined) throw new Error(`the API server relay exited (code ${proc.exitCode}): ${Supervisor.tail(proc, 5)}`);
    return Supervisor.tail(proc, 5).includes('relay listening on') ? true : undefined;
  }, { timeoutMs: 20_000, intervalMs: 25, what: 'the API server relay in the engine namespace', detail: () => Supervisor.tail(proc, 3) });
  const host = await startRelay({ listen: { host: '127.0.0.1', port: 0 }, connect: { path: socket }, log: () => undefined });
  void proc.exited.then(() => host.close());
  return host;
}

/**
 * Creates the cluster of clusters/kind.yaml (one control-plane node, one worker) with a per-run name, and waits until
 * every node is Ready. Everything it made goes on failure and on Ctrl-C (the engine's teardown).
 */
export async function createKindCluster(opts: CreateKindOptions = {}): Promise<KindCluster> {
  const log = opts.log ?? (() => undefined);
  if (process.env.DOCKER_HOST) throw new UserError(`the kind substrate runs on meshproof's own docker engine: unset DOCKER_HOST=${process.env.DOCKER_HOST}`);
  const kind = kindBinary('kind').path;
  const kubectlBin = resolveKube().kubectl;
  const wrapper = needsRuncWrapper();
  if (wrapper.needed && !existsRunc()) throw new UserError(`the host lacks CAP_SYS_RESOURCE and ${runcWrapperPath()} is missing: run ${KIND_FIX}`);
  const engine = await startEngine({ log: (l) => log(l) });
  let sup: Supervisor | undefined;
  let side: Promise<void> | undefined;
  try {
    const l = engine.layout!;
    const name = clusterNameOf(l.short);
    const dir = join(stateDirOf(l.short), 'kind');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(logsDir(), { recursive: true });
    if (wrapper.needed) await useWrapperRuntime(engine, log);
    const image = await ensureNodeImage(engine, log);
    log(`kind: node image ${image.tag} (${image.status})`);
    // no NAT (DESIGN.md): masquerading off; not --internal, since kind reads the API server's published port (which
    // lives in the engine's namespace, whose only links are this bridge and lo: still no uplink)
    const network = `${name}-net`;
    await docker(engine, ['network', 'create', '--driver', 'bridge', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', network]);
    const config = join(dir, 'kind.yaml');
    const rendered = renderKindConfig(readFileSync(KIND_CONFIG_TEMPLATE, 'utf8'), { name, image: image.tag });
    const patches = { ...(opts.containerdConfigPatches?.length ? { containerdConfigPatches: opts.containerdConfigPatches } : {}), ...(opts.kubeadmConfigPatches?.length ? { kubeadmConfigPatches: opts.kubeadmConfigPatches } : {}) };
    writeFileSync(config, Object.keys(patches).length ? stringify({ ...(parse(rendered) as object), ...patches }) : rendered);
    const hostKubeconfig = join(dir, 'kubeconfig.host');
    const logFile = join(logsDir(), `${name}-create.log`);
    // built while kind creates the nodes: the API server relay runs it (and the workload image carries it)
    const bundling = buildPodBundle(join(dir, 'pod-bundle.js'));
    bundling.catch(() => undefined);
    side = opts.alongside?.(engine, bundling);
    side?.catch(() => undefined); // awaited once the nodes are Ready (or before the engine goes, on a failure)
    // the name is the run's own (its claimed short) on the run's own, cleared engine, so this cannot match unless
    // something else made a cluster there: say so rather than let kind fail halfway
    const existing = (await runCapture([kind, 'get', 'clusters'], { env: { ...engine.env() } })).stdout.split('\n').map((x) => x.trim());
    if (existing.includes(name)) throw new UserError(`kind cluster ${name} already exists on the run's engine ${engine.host}: remove it (kind delete cluster --name ${name}) or run meshproof janitor, then run again`);
    log(`kind: kind create cluster --name ${name} (log ${logFile})`);
    const started = Date.now();
    const env = { ...engine.env(), KIND_EXPERIMENTAL_DOCKER_NETWORK: network };
    const created = await runLogged(kind, ['create', 'cluster', '--name', name, '--config', config, '--kubeconfig', hostKubeconfig, '--retain'], { env, logFile, shownEnv: { DOCKER_HOST: engine.host, KIND_EXPERIMENTAL_DOCKER_NETWORK: network } });
    const nodeNames = (await runCapture([kind, 'get', 'nodes', '--name', name], { env })).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    if (created.code !== 0) {
      const cp = nodeNames.find((n) => n.endsWith('-control-plane'));
      const tail = cp ? await kubeletTail(engine, cp) : 'no node container';
      throw stepFailed(`kind create cluster ${name} (kubelet: ${tail})`, created, logFile, KIND_FIX);
    }
    log(`kind: created ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s (nodes ${nodeNames.join(', ')})`);

    const cpName = nodeNames.find((n) => n.endsWith('-control-plane'))!;
    const internal = await run([kind, 'get', 'kubeconfig', '--internal', '--name', name], { env });
    const cpIp = await inspectIp(engine, cpName);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, internal.replace(`https://${cpName}:6443`, `https://${cpIp}:6443`), { mode: 0o600 });
    const kubectlArgv = (args: string[]) => ['ip', 'netns', 'exec', l.netns, kubectlBin, '--kubeconfig', kubeconfig, ...args];
    const kubectl = (args: string[], o: { timeoutMs?: number; input?: string } = {}) => run(kubectlArgv(args), { timeoutMs: o.timeoutMs ?? 60_000, input: o.input });
    const kubectlCapture = (args: string[], o: { timeoutMs?: number; input?: string } = {}) => runCapture(kubectlArgv(args), { timeoutMs: o.timeoutMs ?? 60_000, input: o.input });
    const bundle = await bundling;
    sup = new Supervisor(join(dir, 'logs'));
    const relay = await loopbackRelay(sup, l.netns, bundle, join(dir, 'apiserver.sock'), `${cpIp}:6443`);
    const server = `https://127.0.0.1:${relay.port}`;
    const loopbackConfig = join(dir, 'kubeconfig.loopback');
    writeFileSync(loopbackConfig, kubeconfigWithServer(readFileSync(hostKubeconfig, 'utf8'), server), { mode: 0o600 });
    const kc = new KubeConfig();
    kc.loadFromFile(loopbackConfig);
    log(`kind: the API server on the host at ${server} (export KUBECONFIG=${loopbackConfig})`);

    // every node's podCIDR (kube-controller-manager allocates them) → its bridge config, and routes to the others
    const cidrs = await kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{"\\n"}{end}']);
    const byName = Object.fromEntries(cidrs.split('\n').filter(Boolean).map((line) => line.split(' ') as [string, string]));
    const nodes: NodeNet[] = [];
    for (const n of [cpName, ...nodeNames.filter((x) => x !== cpName)]) {
      const podCIDR = byName[n];
      if (!podCIDR) throw new Error(`node ${n} has no podCIDR (kubectl get nodes: ${cidrs.trim()})`);
      nodes.push({ name: n, ip: await inspectIp(engine, n), podCIDR });
    }
    const routes = nodeRoutes(nodes);
    for (const n of nodes) {
      await docker(engine, ['exec', '-i', n.name, 'sh', '-c', 'cat > /etc/cni/net.d/10-meshproof-bridge.conflist'], { input: bridgeConflist(n.podCIDR) });
      // pods' traffic to another node's pods is forwarded by the node (no sysctl binary in the node: procps is not installed)
      await docker(engine, ['exec', n.name, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
      for (const r of routes[n.name]!) await docker(engine, ['exec', n.name, ...r]);
    }
    let status = '';
    await pollUntil(async () => {
      status = await kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}']);
      const ready = status.trim().split(' ').filter((s) => s.endsWith('=True'));
      return ready.length === nodes.length ? true : undefined;
    }, { timeoutMs: opts.readyTimeoutMs ?? 120_000, intervalMs: 500, what: `kind nodes of ${name} Ready`, detail: () => status });
    log(`kind: ${nodes.length} nodes Ready ${((Date.now() - started) / 1000).toFixed(1)} s after create began`);
    await side;

    let deleted = false;
    const supervisor = sup;
    const attached: string[] = [];
    const podSubnet = (parse(readFileSync(config, 'utf8')) as { networking?: { podSubnet?: string } }).networking?.podSubnet;
    if (!podSubnet) throw new Error(`${config} names no networking.podSubnet: the wire canary captures the pods' traffic by it`);
    return {
      name, stateDir: dir, engine, kubeconfig, netns: l.netns, nodes, kubectl, kubectlCapture, bundle,
      loopback: { server, kubeconfig: loopbackConfig, kc },
      loadImages: async (tags, only) => {
        const loadLog = join(logsDir(), `${name}-load.log`);
        const r = await runLogged(kind, ['load', 'docker-image', '--name', name, ...(only ? ['--nodes', only.join(',')] : []), ...tags], { env, logFile: loadLog, shownEnv: { DOCKER_HOST: engine.host } });
        if (r.code !== 0) throw stepFailed(`kind load docker-image ${tags.join(' ')}`, r, loadLog, KIND_FIX);
      },
      nodeMemoryMiB: async () => {
        const out = await docker(engine, ['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', ...nodes.map((n) => n.name)]);
        return parseMemUsage(out);
      },
      schedulableNodes: async () => {
        const out = await kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name} {range .spec.taints[*]}{.effect},{end}{"\\n"}{end}']);
        return schedulable(out);
      },
      startWireCanary: async () => {
        // one capture in each node's network namespace (attached under the run's prefix, so the janitor knows it),
        // where the node's pods' veths and its bridge are: a call between two pods of one node is seen there too
        const parts = [];
        for (const [i, n] of nodes.entries()) {
          const pid = (await docker(engine, ['inspect', '-f', '{{.State.Pid}}', n.name])).trim();
          const ns = `${netnsPrefix(l.short)}-node${i}`;
          if (!attached.includes(ns)) {
            await run(['ip', 'netns', 'attach', ns, pid]);
            attached.push(ns);
          }
          parts.push(await startWireCanary(supervisor, ns, join(dir, `wire-${n.name}-${Date.now()}.pcap`), podSubnet));
        }
        // each node sends a datagram to the next one's discard port: every capture sees the one its node sends
        const marker = (token: string) =>
          Promise.all(nodes.map((from, i) => docker(engine, ['exec', from.name, 'bash', '-c', `echo ${token} > /dev/udp/${nodes[(i + 1) % nodes.length]!.ip}/${MARKER_PORT}`]))).then(() => undefined);
        return { canary: new WireCanaries(parts), marker };
      },
      delete: async () => {
        if (deleted) return;
        deleted = true;
        await supervisor.stopAll();
        for (const ns of attached) await runCapture(['ip', 'netns', 'delete', ns]);
        // --kubeconfig: kind would otherwise edit the user's ~/.kube/config
        await runCapture([kind, 'delete', 'cluster', '--name', name, '--kubeconfig', hostKubeconfig], { env, timeoutMs: 120_000 });
        await engine.stop();
      },
    };
  } catch (e) {
    await side?.catch(() => undefined);
    await sup?.stopAll();
    await engine.stop();
    throw e;
  }
}

function existsRunc(): boolean {
  try {
    readFileSync(runcWrapperPath());
    return true;
  } catch {
    return false;
  }
}
