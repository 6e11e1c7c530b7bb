// distribution's `registry` (built from its Go module by provision.ts) as the local registry of a kind cluster, the
// way kind's docs set one up (https://kind.sigs.k8s.io/docs/user/local-registry/): the image references say
// `localhost:<port>/…`, the registry answers on the host's loopback there, and each node's containerd maps that name
// to the registry's address on the kind network (/etc/containerd/certs.d/localhost:<port>/hosts.toml, with the
// cluster created with `config_path` set: REGISTRY_CONTAINERD_PATCH). The registry is a supervised process in the
// engine's network namespace rather than a container: the one process runner, no image to build for it, and the
// nodes reach it on the docker network's gateway (an address of that namespace) with no port published anywhere.
// The host's loopback reaches it through the kube layer's relay pair (cluster.ts loopbackRelay), so it is on the host
// what a user's local registry is: `localhost:<port>`, which the existing-cluster path (external.ts) pushes to.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Log } from '../../controlplane/provision.ts';
import { pollUntil } from '../poll.ts';
import { Supervisor } from '../supervisor.ts';
import { docker } from '../docker/engine.ts';
import type { RelayHandle } from '../../workloads/relay.ts';
import { loopbackRelay, type KindCluster } from './cluster.ts';
import { kindBinary, toolPaths } from './provision.ts';
import { KIND_GO_TOOLS } from './versions.ts';

/** Where the registry listens in the engine's namespace (kind's docs: the registry container's port 5000). */
const REGISTRY_PORT = 5000;
/** Where containerd reads per-registry host configs (containerd's docs/hosts.md; kind's local-registry page). */
export const CERTS_D = '/etc/containerd/certs.d';
/** kind's containerdConfigPatches entry that makes the nodes' containerd read CERTS_D (kind's local-registry page). */
export const REGISTRY_CONTAINERD_PATCH = `[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS_D}"\n`;

/** distribution's configuration (docs/content/about/configuration.md): filesystem storage, plain HTTP on `addr`. */
export function registryConfig(rootdirectory: string, addr: string): string {
  return stringify({ version: 0.1, log: { level: 'warn' }, storage: { filesystem: { rootdirectory }, delete: { enabled: true } }, http: { addr } });
}

/** containerd's hosts.toml for one registry name: pull and resolve from `endpoint` over plain HTTP (containerd docs/hosts.md). */
export function hostsToml(endpoint: string): string {
  return `[host."${endpoint}"]\n  capabilities = ["pull", "resolve"]\n`;
}

/**
 * GET http://<host:port>/v2/ → null when a registry (API v2) answers there, else why not. distribution answers 200
 * (or 401 behind auth) with `Docker-Distribution-Api-Version: registry/2.0` (the distribution spec's /v2/ check).
 */
export function pingRegistry(hostPort: string, timeoutMs = 3000): Promise<string | null> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const req = request({ host: host === 'localhost' ? '127.0.0.1' : host, port, path: '/v2/', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      const api = res.headers['docker-distribution-api-version'];
      res.on('end', () => resolve((res.statusCode === 200 || res.statusCode === 401) && api === 'registry/2.0' ? null : `HTTP ${res.statusCode}${api ? '' : ' without Docker-Distribution-Api-Version'}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

export interface KindRegistry {
  /** `localhost:<port>`: the host's loopback, what images are tagged with and what --image-registry is given. */
  address: string;
  /** Where the nodes reach it: `http://<gateway of the kind network>:5000`. */
  nodeEndpoint: string;
  /** Its blobs on disk (removed by stop). */
  dataDir: string;
  /** The registry process, its relays and its blobs go. */
  stop(): Promise<void>;
}

/**
 * The registry for `cluster` (created with REGISTRY_CONTAINERD_PATCH): running in the engine's namespace, on the
 * host's loopback through a relay, and every node's containerd told where `localhost:<port>` is. Stopped on failure.
 */
export async function startKindRegistry(cluster: KindCluster, o: { log?: Log } = {}): Promise<KindRegistry> {
  const log = o.log ?? (() => undefined);
  const bin = kindBinary('registry').path;
  const dir = join(cluster.stateDir, 'registry');
  // blobs on disk, not the run's tmpfs: the pushed images are hundreds of MB
  const dataDir = join(toolPaths(KIND_GO_TOOLS.find((t) => t.tool === 'registry')!).dir, 'data', cluster.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'config.yml');
  writeFileSync(config, registryConfig(dataDir, `0.0.0.0:${REGISTRY_PORT}`));
  const sup = new Supervisor(join(dir, 'logs'));
  let relay: RelayHandle | undefined;
  const stop = async (): Promise<void> => {
    await relay?.close();
    await sup.stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // distribution v3 exports traces over OTLP by default; there is no collector here
    const proc = sup.start({ pod: 'registry', name: 'registry', netns: cluster.netns, argv: [bin, 'serve', config], env: { OTEL_TRACES_EXPORTER: 'none' } });
    relay = await loopbackRelay(sup, cluster.netns, cluster.bundle, join(dir, 'registry.sock'), `127.0.0.1:${REGISTRY_PORT}`);
    const address = `localhost:${relay.port}`;
    let why: string | null = null;
    await pollUntil(async () => {
      if (proc.exitCode !== undefined) throw new Error(`registry exited (${proc.exitCode}): ${Supervisor.tail(proc, 5)}`);
      why = await pingRegistry(address);
      return why === null ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, what: `distribution's registry on ${address}`, detail: () => `${why ?? ''} ${Supervisor.tail(proc, 2)}` });
    const network = `${cluster.name}-net`;
    const gateway = (await docker(cluster.engine, ['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', network])).trim();
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) throw new Error(`docker network ${network} has no IPv4 gateway (${JSON.stringify(gateway)})`);
    const nodeEndpoint = `http://${gateway}:${REGISTRY_PORT}`;
    for (const n of cluster.nodes) {
      await docker(cluster.engine, ['exec', '-i', n.name, 'sh', '-c', `mkdir -p '${CERTS_D}/${address}' && cat > '${CERTS_D}/${address}/hosts.toml'`], { input: hostsToml(nodeEndpoint) });
    }
    log(`kind: distribution's registry on ${address} (the nodes pull ${address}/… from ${nodeEndpoint}; blobs in ${dataDir})`);
    return { address, nodeEndpoint, dataDir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
