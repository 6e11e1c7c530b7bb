// The docker substrate: every pod is a group of containers sharing one network namespace, as a Kubernetes pod does — an
// infra container holding the pod's address and its probe agent (the pause container's place), and one container per
// ContainerSpec joined to it (`container:<infra>` network mode). The engine is meshproof's own dockerd in a private
// network namespace (engine.ts), or the user's DOCKER_HOST engine on this machine. A router container plays the netns
// node's part on either: each pod's one link is a veth pair into it, made in place from the host (pods.ts podLinkCmd),
// so pods hold /32 addresses routed through it, the service VIPs are DNAT rules in its namespace (network policy its
// FORWARD rules), and the wire canary captures on its links; the engine's own namespace is never programmed. Containers
// get docker's `none` network: no docker network, bridge or uplink exists to leave by. Pods see the run's state and
// reports directories at the same paths as the harness (bind mounts), so profiles' files and sockets need no mapping.
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import Dockerode from 'dockerode';
import { UserError } from '../../model/errors.ts';
import { AgentClient } from '../../probe/client.ts';
import { DEFAULT_ENVOY_VERSION, requireRoot, requireTools, resolveEnvoy } from '../../cli/doctor.ts';
import { sampleContainer, sampleMachine } from '../netns/proc.ts';
import { POD_DEV, assertPortFree, diedAfterStart, startWireCanary, settle, hostsFile, podAddrCmds, podIp, podLinkCmd, RESOLV_CONF, routerLinkCmds, SERVICE_CIDR, waitReady, type Started } from '../pods.ts';
import { PodCluster, startCluster, type AgentPod } from '../pod-cluster.ts';
import { run, runCapture } from '../sh.ts';
import { netnsPrefix, teardownRun } from '../state.ts';
import { setprivArgv } from '../supervisor.ts';
import { podKey, validateTopology } from '../topology.ts';
import type { Cluster, ContainerSample, ContainerSpec, ContainerStatus, ExecResult, MachineSample, PodSpec, RunningPod, Topology } from '../types.ts';
import type { UpOptions } from '../netns/index.ts';
import { removeRun, RUN_LABEL } from './containers.ts';
import { startEngine, userEngine, type DockerEngine } from './engine.ts';
import { requireLocalEngine } from './local-engine.ts';
import { engineLayout } from './layout.ts';
import { userEngineRecordOf, type UserEngineRecord } from './janitor.ts';
import { builtLayers, currentInputs, ensureImages, ImageBuildError } from './images.ts';

/** Where the pod images put node (images.ts planLayers); the harness's own node path is mapped to it. */
const IMAGE_NODE = '/usr/local/bin/node';
const IMAGE_ENVOY = '/usr/local/bin/envoy';
/** What every pod's infra container may do: its probe agent sets the pod's address and applies the pod's iptables. */
const INFRA_CAPS = ['NET_ADMIN', 'NET_RAW'];
const FIX_IMAGES = 'run meshproof doctor --fix --substrate docker';

interface DockerContainer extends ContainerStatus {
  name: string;
  id: string;
  spec: ContainerSpec;
  /** Where its output is copied as it comes (followLog): reports/<run>/logs/<pod>/<name>.log, as on netns. */
  logFile: string;
}

interface DockerPod extends AgentPod {
  /** Its infra container, once created. */
  infra?: DockerContainer;
  hostsFile: string;
  containers: Map<string, DockerContainer>;
  /** How many containers of this pod were ever started (a restarted container gets a fresh docker name). */
  started: number;
}

/** The children's user and system time from a POSIX shell's `times` (its second line: `0m1.23s 0m0.45s`), seconds. */
export function childrenCpuS(text: string): number {
  const line = text.trim().split('\n')[1] ?? '';
  return [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((n, m) => n + Number(m[1]) * 60 + Number(m[2]), 0);
}

const infraName = (short: string, index: number): string => `mp${short}-${index}-infra`;

/** Docker's multiplexed log stream (8-byte frame headers, no TTY) as text. */
function demux(buf: Buffer): string {
  const out: Buffer[] = [];
  for (let at = 0; at + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(at + 4);
    out.push(buf.subarray(at + 8, at + 8 + len));
    at += 8 + len;
  }
  return Buffer.concat(out).toString('utf8');
}

export class DockerCluster extends PodCluster<DockerPod> implements Cluster {
  readonly substrate = 'docker';
  engine?: DockerEngine;
  private docker?: Dockerode;
  private nodeImage = '';
  /** Host Envoy binary → the pod image that carries it at /usr/local/bin/envoy. */
  private readonly envoyImages = new Map<string, string>();
  /** Commands run by exec so far, and the CPU seconds their processes used (see exec). */
  private execs = 0;
  private execCpuS = 0;
  private downPromise?: Promise<void>;

  async start(): Promise<void> {
    const t0 = Date.now();
    // before anything starts: unbuilt images are one line naming the fix
    await this.checkImages();
    const bundling = await this.prologue();
    mkdirSync(join(this.stateDir, 'dns'), { recursive: true, mode: 0o711 });
    this.engine = await startEngine({ short: this.short, log: (l) => this.log(l) });
    // a client of this engine's own (testcontainers keeps one per process, and two runs in one process have two engines)
    this.docker = new Dockerode(dockerodeOptions(this.engine.host));
    if (!this.engine.owned) {
      // the janitor removes a killed run's containers from it (janitor.ts removeUserEngineRun); `meshproof exec` enters
      // a pod through the engine socket in the run's state dir (cli/main.ts), for a user's engine a link to its socket
      const record: UserEngineRecord = { host: this.engine.host, runId: this.runId };
      mkdirSync(dirname(userEngineRecordOf(this.short)), { recursive: true, mode: 0o700 });
      writeFileSync(userEngineRecordOf(this.short), JSON.stringify(record));
      if (this.engine.host.startsWith('unix://')) symlinkSync(this.engine.host.slice('unix://'.length), engineLayout(this.short, '').socket);
    }
    await this.images();
    await this.startRouter();
    this.topology.pods.forEach((spec, index) => this.pods.set(podKey(spec), this.newPod(spec, index)));
    this.topologyServices();
    await this.programServices();
    this.writeDns();
    this.log(`docker: router and engine ready in ${Date.now() - t0} ms`);
    if (this.opts.wire !== false) await this.startCapture();
    this.bundle = await bundling;
    await Promise.all([...this.pods.values()].map((p) => this.startPod(p)));
    await this.settle();
    this.record();
    this.log(`docker: run ${this.runId} up in ${Date.now() - t0} ms (${this.pods.size} pods)`);
  }

  /** The Envoy versions the pods may run: the default one and the run's (MESHPROOF_ENVOY_VERSION). */
  private envoys(): { version: string; bin: string }[] {
    const versions = [...new Set([DEFAULT_ENVOY_VERSION, process.env.MESHPROOF_ENVOY_VERSION].filter((v): v is string => !!v))];
    return versions.map((version) => ({ version, bin: resolveEnvoy(version).bin }));
  }

  /** The pod images must be built (meshproof doctor --fix --substrate docker). */
  private async checkImages(): Promise<void> {
    const inputs = await currentInputs({ envoys: this.envoys() });
    const missing = inputs ? builtLayers(inputs).filter((l) => !l.built).map((l) => l.layer.tag) : ['the .debs of the pod packages'];
    if (missing.length) throw new UserError(`the docker pod images are not built (${missing.join(', ')}): ${FIX_IMAGES}`);
  }

  /**
   * The images in this engine: a hit in the shared cache; an engine with a data root of its own loads them from their
   * saved tarballs, or builds them from the cached inputs, and a build that fails stops the run in one line naming its log (the run's teardown removes the rest).
   */
  private async images(): Promise<void> {
    const envoys = this.envoys();
    const started = Date.now();
    const { images, podImages } = await ensureImages(this.engine!, { envoys, log: (l) => this.log(`docker: ${l.trim()}`) }).catch((e: unknown) => {
      if (!(e instanceof ImageBuildError)) throw e;
      throw new UserError(`the docker pod image ${e.layer.tag} (${e.layer.name}) failed to build in this run's engine, see ${e.log}: ${FIX_IMAGES}`);
    });
    const count = (status: string): number => images.filter((i) => i.status === status).length;
    this.log(`docker: images in ${((Date.now() - started) / 1000).toFixed(1)} s (${count('hit')} present, ${count('loaded')} loaded, ${count('built')} built)`);
    this.nodeImage = images.find((i) => i.name === 'node')!.tag;
    for (const e of envoys) this.envoyImages.set(e.bin, podImages[e.version]!);
  }

  /**
   * The router: a container every packet between pods goes through (each pod's link is a veth pair into it), as the
   * netns node. Its network namespace gets the run's name (`ip netns attach`), so the VIP rules, network policy and
   * capture are programmed there as in the node, on any engine of this machine. The service range is local to it (a
   * declared port is DNATed before routing, any other meets its TCP stack and is refused with a RST, as on netns).
   */
  private async startRouter(): Promise<void> {
    const c = await this.docker!.createContainer({
      name: `mp${this.short}-router`,
      Image: this.nodeImage,
      Cmd: ['sleep', 'infinity'],
      Labels: { [RUN_LABEL]: this.runId },
      HostConfig: { NetworkMode: 'none', Init: true, Sysctls: { 'net.ipv4.ip_forward': '1' } },
    });
    await c.start();
    const ns = this.routerNetns;
    await run(['ip', 'netns', 'attach', ns, String(await this.pidOf(c.id, 'the router'))]);
    await run(['ip', '-n', ns, '-batch', '-'], { input: ['link set lo up', `route add local ${SERVICE_CIDR} dev lo`].join('\n') + '\n' });
  }

  /** A running container's main process on this machine (what its namespaces are reached by). */
  private async pidOf(id: string, what: string): Promise<number> {
    const pid = (await this.docker!.getContainer(id).inspect()).State.Pid;
    if (!pid || !existsSync(`/proc/${pid}/ns/net`)) throw new Error(`${what}: its container's process (pid ${pid}) is not on this machine: the docker substrate needs an engine on this machine`);
    return pid;
  }

  private newPod(spec: PodSpec, index: number): DockerPod {
    const key = podKey(spec);
    return {
      spec,
      key,
      index,
      ip: podIp(index),
      // what `meshproof exec` enters (cli/main.ts execIn): the pod's infra container on the run's engine
      netns: `docker:${infraName(this.short, index)}`,
      socket: join(this.stateDir, 'sock', `${index}.sock`),
      hostsFile: join(this.stateDir, 'dns', `${index}.hosts`),
      containers: new Map(),
      started: 0,
    };
  }

  /** What every container of the run sees at the harness's own paths: the run's files, and the pod's names. */
  private binds(p: DockerPod): string[] {
    return [`${this.stateDir}:${this.stateDir}`, `${this.runDir}:${this.runDir}`, `${p.hostsFile}:/etc/hosts:ro`, `${join(this.stateDir, 'dns', 'resolv.conf')}:/etc/resolv.conf:ro`];
  }

  private async createAndStart(p: DockerPod, dockerName: string, body: Dockerode.ContainerCreateOptions, spec: ContainerSpec): Promise<DockerContainer> {
    const c = await this.docker!.createContainer({ ...body, name: dockerName, Labels: { [RUN_LABEL]: this.runId, 'io.meshproof.pod': p.key } });
    const rec: DockerContainer = { name: spec.name, id: c.id, spec, exitCode: undefined, exited: Promise.resolve(null), logFile: join(this.runDir, 'logs', p.key.replace('/', '_'), `${spec.name}.log`) };
    // next-exit: a created container is "not running" yet, and the default condition would answer at once
    rec.exited = c.wait({ condition: 'next-exit' }).then(
      (r: { StatusCode: number }) => (rec.exitCode = r.StatusCode >= 128 ? null : r.StatusCode),
      () => (rec.exitCode = -1),
    );
    await c.start();
    this.followLog(c, rec.logFile);
    return rec;
  }

  /**
   * The pod's infra container (docker's `none` network: only lo) runs its probe agent; its link is made from the host
   * meanwhile: a veth pair into the router, the pod's /32 address and routes to the pod and service ranges only.
   */
  private async startPod(p: DockerPod, containers = true): Promise<void> {
    const agentSpec: ContainerSpec = { name: 'mp-agent' };
    p.infra = await this.createAndStart(p, infraName(this.short, p.index), {
      Image: this.nodeImage,
      Hostname: p.spec.name,
      Cmd: [IMAGE_NODE, this.bundle, 'agent', '--socket', p.socket],
      Env: this.env(p, {}),
      HostConfig: { NetworkMode: 'none', CapAdd: INFRA_CAPS, Binds: this.binds(p), Init: true, AutoRemove: false },
    }, agentSpec);
    const pid = await this.pidOf(p.infra.id, `pod ${p.key}`);
    await run(['ip', '-batch', '-'], { input: podLinkCmd(String(pid), p.index, this.routerNetns) + '\n' });
    await run(['nsenter', `--net=/proc/${pid}/ns/net`, 'ip', '-batch', '-'], { input: podAddrCmds(p.ip, POD_DEV).join('\n') + '\n' });
    await run(['ip', '-n', this.routerNetns, '-batch', '-'], { input: routerLinkCmds(p.index, p.ip).join('\n') + '\n' });
    try {
      p.agent = await AgentClient.connect(p.socket, { timeoutMs: this.opts.readyTimeoutMs ?? 20000 });
    } catch (e) {
      throw new Error(`pod ${p.key}: probe agent not ready: ${(e as Error).message}\n${await this.logOf(p.infra!)}`, { cause: e });
    }
    if (p.spec.iptables) await this.iptables(p.key, p.spec.iptables);
    if (containers) for (const c of p.spec.containers ?? []) await this.startContainer(p.key, c);
  }

  private env(p: DockerPod, own: Record<string, string>): string[] {
    const env: Record<string, string> = {
      LANG: 'C.UTF-8',
      HOME: '/tmp',
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      POD_NAME: p.spec.name,
      POD_NAMESPACE: p.spec.namespace,
      POD_IP: p.ip,
      SERVICE_ACCOUNT: p.spec.serviceAccount ?? 'default',
      ...(p.spec.labels?.version ? { VERSION: p.spec.labels.version } : {}),
      ...own,
    };
    return Object.entries(env).map(([k, v]) => `${k}=${v}`);
  }

  /**
   * A container's image and argv: a meshproof workload runs the pod bundle with the image's node; the harness's node
   * and a cached Envoy map to the copies the images carry; a bare name is the image's (haproxy, iptables, sh); host
   * files the command names are bind-mounted read-only (hostBinds).
   */
  private imageOf(c: ContainerSpec): { image: string; argv: string[]; binds: string[] } {
    const argv = c.workload ? [IMAGE_NODE, this.bundle, c.workload, ...(c.args ?? [])] : [...(c.command ?? []), ...(c.args ?? [])];
    if (argv.length === 0) throw new Error(`container ${c.name} has neither workload nor command`);
    const envoy = this.envoyImages.get(argv[0]!);
    if (envoy) return { image: envoy, argv: [IMAGE_ENVOY, ...argv.slice(1)], binds: this.hostBinds(argv.slice(1)) };
    const mapped = this.mapArgv(argv);
    return { image: this.nodeImage, argv: mapped, binds: this.hostBinds(mapped) };
  }

  /**
   * Read-only binds of the host files a command names that a container would not have: a static tool such as
   * fortio, or a module such as autocannon (its whole node_modules, which its dependencies are resolved in). The
   * run's own directories are bound already; the images' system paths are the images'.
   */
  private hostBinds(argv: string[]): string[] {
    const binds = new Set<string>();
    for (const a of argv) {
      if (!isAbsolute(a) || /^\/(usr|bin|sbin|etc|proc|sys|dev|tmp)(\/|$)/.test(a) || a.startsWith(`${this.stateDir}/`) || a.startsWith(`${this.runDir}/`) || !existsSync(a)) continue;
      const at = a.indexOf('/node_modules/');
      const src = at >= 0 ? a.slice(0, at + '/node_modules'.length) : a;
      binds.add(`${src}:${src}:ro`);
    }
    return [...binds];
  }

  /** The harness's node is the image's node. */
  private mapArgv(argv: string[]): string[] {
    return argv[0] === process.execPath ? [IMAGE_NODE, ...argv.slice(1)] : argv;
  }

  async startContainer(pod: string, c: ContainerSpec): Promise<void> {
    const p = this.pod(pod);
    if (p.containers.get(c.name)?.exitCode === undefined && p.containers.has(c.name)) throw new Error(`pod ${p.key}: container ${c.name} is already running`);
    await assertPortFree(p.agent, p.key, c, (port) => [...p.containers].find(([, x]) => x.exitCode === undefined && JSON.stringify(x.spec).includes(String(port)))?.[0]);
    const { image, argv, binds } = this.imageOf(c);
    const rec = await this.createAndStart(p, `mp${this.short}-${p.index}-${c.name}-${p.started++}`, {
      Image: image,
      // root first: setpriv drops to the container's uid keeping its capabilities as ambient ones (docker gives a
      // non-root user none that survive exec)
      User: '0:0',
      Cmd: [...setprivArgv(c, false), ...argv],
      // docker-init is not pid 1 in the pod's shared pid namespace: as a subreaper it still reaps (and says nothing)
      Env: this.env(p, { TINI_SUBREAPER: '1', ...c.env }),
      ...(c.cwd ? { WorkingDir: c.cwd } : {}),
      HostConfig: {
        // one network and pid namespace per pod (a pod with shareProcessNamespace): exec in the pod sees its processes
        NetworkMode: `container:${p.infra!.id}`,
        PidMode: `container:${p.infra!.id}`,
        CapAdd: (c.caps ?? []).map((x) => x.toUpperCase()),
        Binds: [...this.binds(p), ...binds, ...(c.mounts ?? []).map((m) => `${m.source}:${m.target}`)],
        Init: true,
      },
    }, c);
    p.containers.set(c.name, rec);
    const s = this.started(rec);
    await waitReady(p.agent!, p.key, c, s, this.opts.readyTimeoutMs ?? 20000);
    if (rec.exitCode !== undefined) throw new Error(await diedAfterStart(p.key, c.name, s));
  }

  private started(rec: DockerContainer): Started {
    return { exitCode: () => rec.exitCode, tail: async () => (await this.logOf(rec)).trimEnd().split('\n').slice(-8).join('\n'), log: rec.logFile };
  }

  /** Every container must outlive a short settle window after start (pods.ts settle). */
  private settle(): Promise<void> {
    const all = [...this.pods.values()].flatMap((p) => [...p.containers.values()].map((c) => ({ pod: p.key, name: c.name, s: this.started(c), exited: c.exited })));
    return settle(all, this.opts.settleMs);
  }

  private async logOf(rec: DockerContainer): Promise<string> {
    try {
      return demux(await this.docker!.getContainer(rec.id).logs({ stdout: true, stderr: true, follow: false }) as unknown as Buffer);
    } catch {
      return '';
    }
  }

  /**
   * Copies a container's output, as it comes, to reports/<run>/logs/<pod>/<name>.log, where netns writes it (the
   * container and its docker log go with the run); the stream ends when the container exits.
   */
  private followLog(c: Dockerode.Container, file: string): void {
    mkdirSync(dirname(file), { recursive: true });
    const out = createWriteStream(file, { flags: 'a' });
    c.logs({ stdout: true, stderr: true, follow: true }).then(
      (stream) => {
        this.docker!.modem.demuxStream(stream, out, out);
        stream.on('end', () => out.end());
        stream.on('error', () => out.end());
      },
      () => out.end(),
    );
  }

  async stopContainer(pod: string, name: string): Promise<void> {
    const rec = this.pod(pod).containers.get(name);
    if (!rec || rec.exitCode !== undefined) return;
    await this.docker!.getContainer(rec.id).stop({ t: 1 }).catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 304) throw e;
    });
    await rec.exited;
  }

  signalContainer(pod: string, name: string, signal: NodeJS.Signals): void {
    const rec = this.pod(pod).containers.get(name);
    if (!rec || rec.exitCode !== undefined) throw new Error(`pod ${pod}: container ${name} is not running`);
    // docker-init (the container's pid 1) passes it on to the container's process
    void this.docker!.getContainer(rec.id).kill({ signal }).catch((e: Error) => this.log(`docker: signal ${signal} to ${pod}/${name}: ${e.message}`));
  }

  containerStatus(pod: string, name: string): ContainerStatus | undefined {
    return this.pod(pod).containers.get(name);
  }

  async containerLog(pod: string, name: string): Promise<string> {
    const rec = this.pod(pod).containers.get(name);
    if (!rec) throw new Error(`pod ${pod}: no container ${name}`);
    return this.logOf(rec);
  }

  /** The container's process tree, read from the host's /proc (the engine runs on this kernel, in its pid namespace). */
  async sample(pod: string, name: string): Promise<ContainerSample> {
    const rec = this.pod(pod).containers.get(name);
    const pid = rec && rec.exitCode === undefined ? (await this.docker!.getContainer(rec.id).inspect()).State.Pid : 0;
    const s = pid ? sampleContainer(pid) : undefined;
    if (!s) throw new Error(`pod ${pod}: container ${name} is not running`);
    // docker-init is the container's pid 1: its own cost is none of the container's process, but its commands would be
    return { ...s, commands: s.commands.filter((c) => !/docker-init$/.test(c[0] ?? '')) };
  }

  async machine(): Promise<MachineSample> {
    const live = [...this.pods.values()].flatMap((p) => [...(p.infra ? [p.infra] : []), ...p.containers.values()]).filter((c) => c.exitCode === undefined);
    const pids = await Promise.all(live.map(async (c) => (await this.docker!.getContainer(c.id).inspect()).State.Pid));
    const m = sampleMachine(pids.filter((x) => x > 0));
    return { ...m, reapedS: m.reapedS + this.execCpuS };
  }

  /**
   * Runs a command in the pod: `docker exec` in its infra container, or, when the command needs host files bound (a
   * host tool such as fortio), as a one-shot container joined to the pod (`kubectl debug`'s way). Either runs under a
   * shell that writes its children's CPU time (`times`, getrusage's RUSAGE_CHILDREN) to the run's state dir, which
   * machine() reports as `reapedS`, as the harness's own reaped children are on netns.
   */
  async exec(pod: string, argv: string[], opts: { input?: string; uid?: number; timeoutMs?: number } = {}): Promise<ExecResult> {
    const p = this.pod(pod);
    const mapped = this.mapArgv(argv);
    const binds = this.hostBinds(mapped);
    const times = join(this.stateDir, 'exec', `${this.execs++}.times`);
    mkdirSync(dirname(times), { recursive: true, mode: 0o711 });
    // written by the command's uid (a sidecar's 1337 too)
    writeFileSync(times, '');
    chmodSync(times, 0o666);
    const wrapped = ['sh', '-c', '"$@"; s=$?; times > "$0"; exit $s', times, ...mapped];
    const timeoutMs = opts.timeoutMs ?? 30000;
    let r: ExecResult;
    if (binds.length === 0) {
      const user = opts.uid ? ['--user', `${opts.uid}:${opts.uid}`] : [];
      r = await runCapture(['docker', 'exec', '-i', ...user, this.infraOf(p).id, ...wrapped], { env: this.engine!.env(), input: opts.input, timeoutMs });
    } else {
      if (opts.input !== undefined) throw new Error(`pod ${pod}: a command with host files (${binds.join(', ')}) runs as a container of its own and takes no input`);
      r = await this.oneShot(p, wrapped, binds, opts.uid, timeoutMs);
    }
    this.execCpuS += childrenCpuS(readFileSync(times, 'utf8'));
    rmSync(times, { force: true });
    return r;
  }

  /** A container joined to the pod that runs `argv` once; its stdout and stderr apart, its exit code, then it goes. */
  private async oneShot(p: DockerPod, argv: string[], binds: string[], uid: number | undefined, timeoutMs: number): Promise<ExecResult> {
    const infra = this.infraOf(p);
    const c = await this.docker!.createContainer({
      name: `mp${this.short}-${p.index}-exec-${this.execs}`,
      Image: this.nodeImage,
      User: uid ? `${uid}:${uid}` : '0:0',
      Cmd: argv,
      Env: this.env(p, {}),
      Labels: { [RUN_LABEL]: this.runId, 'io.meshproof.pod': p.key },
      HostConfig: { NetworkMode: `container:${infra.id}`, PidMode: `container:${infra.id}`, Binds: [...this.binds(p), ...binds] },
    });
    try {
      const exited = c.wait({ condition: 'next-exit' }) as Promise<{ StatusCode: number }>;
      await c.start();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<{ StatusCode: number }>((res) => {
        timer = setTimeout(() => void c.kill().catch(() => undefined).then(() => res({ StatusCode: 137 })), timeoutMs);
      });
      const { StatusCode } = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      const [stdout, stderr] = await Promise.all([false, true].map(async (err) => demux(await c.logs({ stdout: !err, stderr: err, follow: false }) as unknown as Buffer)));
      return { code: StatusCode, stdout: stdout!, stderr: stderr! };
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  private infraOf(p: DockerPod): DockerContainer {
    if (!p.infra) throw new Error(`pod ${p.key} is not started yet`);
    return p.infra;
  }

  async iptables(pod: string, rules: string): Promise<void> {
    const r = await this.exec(pod, ['iptables-restore', '--noflush'], { input: rules.endsWith('\n') ? rules : rules + '\n' });
    if (r.code !== 0) throw new Error(`pod ${pod}: iptables-restore failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }

  async addPod(spec: PodSpec): Promise<RunningPod> {
    const key = podKey(spec);
    if (this.pods.has(key)) throw new Error(`pod ${key} already exists in run ${this.runId}`);
    const p = this.newPod(spec, this.nextIndex++);
    this.pods.set(key, p);
    this.record();
    this.writeDns();
    await this.startPod(p, false);
    return p;
  }

  async removePod(ref: string): Promise<void> {
    const p = this.pod(ref);
    p.agent?.close();
    await Promise.all([...p.containers.values()].map((c) => this.stopContainer(p.key, c.name)));
    if (p.infra) await this.docker!.getContainer(p.infra.id).remove({ force: true, v: true });
    this.pods.delete(p.key);
    this.record();
    this.writeDns();
  }

  /** The router container's network namespace, by the run's name (startRouter); where tests look at its rules. */
  get routerNetns(): string {
    return `${netnsPrefix(this.short)}-router`;
  }

  /** The pods' hosts files, bind-mounted at /etc/hosts: rewritten in place, so every container sees the new names. */
  protected writeDns(): void {
    writeFileSync(join(this.stateDir, 'dns', 'resolv.conf'), RESOLV_CONF, { mode: 0o644 });
    for (const p of this.pods.values()) writeFileSync(p.hostsFile, hostsFile(p, this.services.values(), this.pods.values()), { mode: 0o644 });
  }

  /**
   * tcpdump in the router's namespace, on its link: a packet between pods is seen as it arrives from its pod, before the
   * service DNAT, and as it leaves for the other (as on netns, on the node's veths).
   */
  private async startCapture(): Promise<void> {
    this.canary = await startWireCanary(this.supervisor, this.routerNetns, join(this.runDir, 'wire.pcap'));
  }

  down(): Promise<void> {
    this.downPromise ??= (async () => {
      for (const p of this.pods.values()) p.agent?.close();
      await this.supervisor.stopAll(1000);
      // meshproof's engine removes every container and network of the run, then stops (engine.ts stop); on a user's
      // engine, which stays, the run removes its own (by its label)
      if (this.engine && !this.engine.owned) await removeRun(this.engine, this.runId).catch((e: Error) => this.log(`docker: removing the run's containers and network: ${e.message}`));
      await this.engine?.stop();
      await teardownRun(this.short);
      this.unregister();
    })();
    return this.downPromise;
  }
}

/** dockerode's connection to an engine: its unix socket, or tcp://host:port. */
function dockerodeOptions(host: string): Dockerode.DockerOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375) };
}

/**
 * Starts a topology on the docker substrate: on the user's DOCKER_HOST engine when set (it must run on this machine:
 * pods bind-mount the run's files, and the router's namespace is programmed from here; local-engine.ts), else on meshproof's own.
 */
export async function upDocker(topology: Topology, opts: UpOptions = {}): Promise<DockerCluster> {
  requireRoot();
  // the pods' links and the router's namespace are made, programmed and captured from the host
  await requireTools(['ip', 'nsenter', 'iptables-restore', ...(opts.wire === false ? [] : ['tcpdump'])]);
  if (!(opts.dynamic && topology.pods.length === 0)) validateTopology(topology);
  // a user's engine must answer and run here, before anything of the run is made
  const user = process.env.DOCKER_HOST;
  if (user) await requireLocalEngine((await userEngine(user)).host);
  return startCluster(opts, (r) => new DockerCluster(r.runId, r.short, r.runDir, r.stateDir, topology, opts));
}
