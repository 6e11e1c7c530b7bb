// testcontainers 11 on meshproof's engine: an internal network per run and containers from the offline images, each
// labelled with the run id; cleanup is meshproof's own, by that label (Ryuk's image cannot be pulled here).
import { GenericContainer, getContainerRuntimeClient, StartedNetwork, type ContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';
import type { DockerEngine } from './engine.ts';

/** The label every container and network of a run carries: its run id. */
export const RUN_LABEL = 'io.meshproof.run';

let clientHost: string | undefined;

/**
 * testcontainers' client for `engine`. testcontainers makes one client per process from DOCKER_HOST (ConfigurationStrategy)
 * and keeps it, so a process talks to one engine; a second, different engine is refused rather than silently missed.
 */
export async function runtimeFor(engine: DockerEngine): Promise<ContainerRuntimeClient> {
  if (clientHost !== undefined && clientHost !== engine.host) {
    throw new Error(`testcontainers already talks to ${clientHost} in this process; it cannot switch to ${engine.host}`);
  }
  process.env.DOCKER_HOST = engine.host;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  clientHost = engine.host;
  return getContainerRuntimeClient();
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
    .withNetwork(s.network)
    .withNetworkAliases(s.name)
    .withLabels({ [RUN_LABEL]: runId })
    .withCommand(s.command)
    .withEnvironment(s.env ?? {});
  if (s.capAdd?.length) c = c.withAddedCapabilities(...s.capAdd);
  return c.start();
}

/** Removes every container and network labelled with `runId` (what a run started, even when its handles are lost). */
export async function removeRun(engine: DockerEngine, runId: string): Promise<{ containers: number; networks: number }> {
  const { dockerode } = (await runtimeFor(engine)).container;
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const containers = await dockerode.listContainers({ all: true, filters });
  await Promise.all(containers.map((c) => dockerode.getContainer(c.Id).remove({ force: true, v: true })));
  const networks = await dockerode.listNetworks({ filters });
  for (const n of networks) await dockerode.getNetwork(n.Id).remove();
  return { containers: containers.length, networks: networks.length };
}
