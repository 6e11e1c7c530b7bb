// testcontainers 11 on meshproof's engine: an internal network per run and containers from the offline images, each
// labelled with the run id; cleanup is meshproof's own, by that label (Ryuk's image cannot be pulled here).
import { GenericContainer, getContainerRuntimeClient, StartedNetwork, type ContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../poll.ts';
import { runCapture } from '../sh.ts';
import { STATE_ROOT } from '../state.ts';
import type { DockerEngine } from './engine.ts';

/** The label every container and network of a run carries: its run id. */
export const RUN_LABEL = 'io.meshproof.run';

/** The per-process socket path testcontainers is given: a symlink to the engine in use (see runtimeFor). */
export const clientLink = (pid = process.pid): string => join(STATE_ROOT, `tc-${pid}.sock`);
let clientHost: string | undefined;

/**
 * testcontainers' client for `engine`. testcontainers makes one client per process from DOCKER_HOST and keeps it
 * (client.js), while each run's engine has its own socket; so it is given a per-process path, a symlink pointed at the
 * socket of the engine in use (dockerode connects anew for every request). A tcp:// engine cannot be linked: a process
 * talks to one such engine.
 */
export async function runtimeFor(engine: DockerEngine): Promise<ContainerRuntimeClient> {
  let host = engine.host;
  if (host.startsWith('unix://')) {
    const link = clientLink();
    const tmp = `${link}.${randomBytes(3).toString('hex')}`;
    mkdirSync(STATE_ROOT, { recursive: true, mode: 0o711 });
    symlinkSync(host.slice('unix://'.length), tmp);
    renameSync(tmp, link);
    if (clientHost === undefined) process.once('exit', () => rmSync(link, { force: true }));
    host = `unix://${link}`;
  }
  if (clientHost !== undefined && clientHost !== host) {
    throw new Error(`testcontainers already talks to ${clientHost} in this process; it cannot switch to ${host}`);
  }
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  // with /.dockerenv present testcontainers looks up the `bridge` network's gateway (resolve-host.js), which meshproof's
  // engine does not have (--bridge none); published ports live in the engine's namespace anyway (reference §3)
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= 'localhost';
  // DOCKER_HOST is read once, when the client is made; it is put back so that the next startEngine() does not take
  // the link for a user's engine
  const before = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = host;
  try {
    const client = await getContainerRuntimeClient();
    clientHost = host;
    return client;
  } finally {
    if (before === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = before;
  }
}

/** A user-defined bridge network that is always `internal`: no gateway route, no NAT, on any engine. */
export async function createInternalNetwork(engine: DockerEngine, runId: string, name: string): Promise<StartedNetwork> {
  const client = await runtimeFor(engine);
  const network = await client.network.create({
    Name: name,
    CheckDuplicate: true,
    Driver: 'bridge',
    Internal: true,
    Attachable: false,
    EnableIPv6: false,
    Labels: { [RUN_LABEL]: runId },
  });
  return new StartedNetwork(client, name, network);
}

export interface RunContainerSpec {
  image: string;
  name: string;
  network: StartedNetwork;
  command: string[];
  /** e.g. NET_ADMIN for a sidecar's iptables. */
  capAdd?: string[];
  env?: Record<string, string>;
}

/** Starts a container of the run on its network (no published ports: they would live in the engine's namespace). */
export async function startRunContainer(engine: DockerEngine, runId: string, s: RunContainerSpec): Promise<StartedTestContainer> {
  await runtimeFor(engine);
  let c = new GenericContainer(s.image)
    .withName(s.name)
    // the network as the container's own NetworkMode: testcontainers would connect aliases after creating it on the
    // default bridge, which meshproof's engine has not (--bridge none), leaving the container with only lo;
    // on a user-defined network the container's name is its DNS name
    .withNetwork(s.network)
    .withLabels({ [RUN_LABEL]: runId })
    .withCommand(s.command)
    .withEnvironment(s.env ?? {});
  if (s.capAdd?.length) c = c.withAddedCapabilities(...s.capAdd);
  const started = await c.start();
  await dropDefaultRoute(engine, started.getId());
  return started;
}

/**
 * dockerd 20.10 gives a container on an `internal` bridge network a default route via the bridge's gateway (docker 26
 * stopped doing so); docker's isolation rules drop whatever leaves the subnet, and meshproof's engine namespace has no
 * uplink, but a pod has no default route on any substrate: it is removed from the container's namespace here, from the
 * host (the container holds no NET_ADMIN). On an engine whose processes this host cannot see (a remote DOCKER_HOST) it stays.
 */
async function dropDefaultRoute(engine: DockerEngine, id: string): Promise<void> {
  const { dockerode } = (await runtimeFor(engine)).container;
  const pid = (await dockerode.getContainer(id).inspect()).State.Pid;
  if (!pid || !existsSync(`/proc/${pid}/ns/net`)) return;
  const r = await runCapture(['nsenter', `--net=/proc/${pid}/ns/net`, 'ip', '-4', 'route', 'del', 'default']);
  // "RTNETLINK answers: No such process": there was none (a newer engine)
  if (r.code !== 0 && !/No such process/.test(r.stderr)) throw new Error(`removing the default route of container ${id.slice(0, 12)}: ${r.stderr.trim()}`);
}

/** Removes every container and network labelled with `runId` (what a run started, even when its handles are lost). */
export async function removeRun(engine: DockerEngine, runId: string): Promise<{ containers: number; networks: number }> {
  const { dockerode } = (await runtimeFor(engine)).container;
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const containers = await dockerode.listContainers({ all: true, filters });
  await Promise.all(containers.map((c) => dockerode.getContainer(c.Id).remove({ force: true, v: true })));
  const networks = await dockerode.listNetworks({ filters });
  // a removed container's endpoint can still be on the network for a moment ("has active endpoints")
  for (const n of networks) {
    await pollUntil(() => dockerode.getNetwork(n.Id).remove().then(() => true, (e: { statusCode?: number }) => {
      if (e.statusCode === 403) return undefined;
      throw e;
    }), { timeoutMs: 10_000, intervalMs: 100, what: `removing network ${n.Name}` });
  }
  return { containers: containers.length, networks: networks.length };
}
