// A cluster the user already has (issue 14: `--kubeconfig <file>` with `--image-registry <registry>`): the kind
// substrate's code path minus the cluster's creation. The images are built offline on meshproof's own engine as for
// kind, tagged `<registry>/meshproof/…` and pushed (`docker push`) for the kubelet to pull; Istio and the model go on
// through the API the kubeconfig names. meshproof sees none of the cluster's node links, so it runs no wire canary:
// every probe's `wire` is null with `wireUnchecked` saying so. delete() removes only what meshproof applied (Istio's
// install, the model's objects, the namespaces it created) and its own engine; the cluster itself is the user's.
// The engine runs in a private network namespace with no uplink (DESIGN.md), so it reaches the registry through a
// relay: its own 127.0.0.1:<port> → a Unix socket → the host's 127.0.0.1:<port>. That is why the registry must be
// on this host's loopback (`localhost:<port>`, as kind's local-registry docs set one up).
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CoreV1Api, KubeConfig, VersionApi, type KubernetesObject } from '@kubernetes/client-node';
import { resolveKube, runLogged, stepFailed, type Log } from '../../controlplane/provision.ts';
import { UserError } from '../../model/errors.ts';
import { applyObjects, deleteObjects, inNamespace } from '../../kube/apply.ts';
import { buildPodBundle } from '../bundle.ts';
import { docker, startEngine, type DockerEngine } from '../docker/engine.ts';
import { onTeardown } from '../lifecycle.ts';
import { pollUntil } from '../poll.ts';
import { run, runCapture } from '../sh.ts';
import { stateDirOf } from '../state.ts';
import { Supervisor } from '../supervisor.ts';
import { startRelay, type RelayHandle } from '../../workloads/relay.ts';
import { schedulable, type KindCluster } from './cluster.ts';
import { pingRegistry } from './registry.ts';

/** `meshproof run --substrate kind --kubeconfig <file>`: the cluster the suites run on instead of a new kind cluster. */
export const KUBECONFIG_ENV = 'MESHPROOF_KUBECONFIG';
/** `--image-registry <host:port>`: where meshproof pushes its images for that cluster's kubelets to pull. */
export const IMAGE_REGISTRY_ENV = 'MESHPROOF_IMAGE_REGISTRY';

export interface ExternalSpec {
  /** An absolute path. */
  kubeconfig: string;
  /** `localhost:<port>` or `127.0.0.1:<port>`. */
  registry: string;
}

const WIRE_UNCHECKED = 'an existing cluster (--kubeconfig): meshproof has no access to its node links, so no wire canary ran';

/** From the environment: both set → the spec; neither → undefined; one without the other → one line naming the fix. */
export function externalFromEnv(env: NodeJS.ProcessEnv = process.env): ExternalSpec | undefined {
  const kubeconfig = env[KUBECONFIG_ENV] || undefined;
  const registry = env[IMAGE_REGISTRY_ENV] || undefined;
  if (!kubeconfig && !registry) return undefined;
  if (!registry) throw new UserError(`--kubeconfig ${kubeconfig} needs --image-registry localhost:<port>, a registry that cluster's nodes pull from (${IMAGE_REGISTRY_ENV}); without --kubeconfig meshproof creates its own kind cluster`);
  if (!kubeconfig) throw new UserError(`--image-registry ${registry} is for a cluster you already have: add --kubeconfig <file> (${KUBECONFIG_ENV}), or drop it and meshproof creates its own kind cluster`);
  return { kubeconfig: resolve(kubeconfig), registry: parseRegistry(registry).address };
}

/** `localhost:<port>` / `127.0.0.1:<port>` → its port; anything else is one line naming what works. */
export function parseRegistry(value: string): { address: string; port: number } {
  const m = /^(localhost|127\.0\.0\.1):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new UserError(`--image-registry ${value}: meshproof pushes from its own engine, which reaches only a registry on this host's loopback: give localhost:<port> (a name the cluster's nodes map to that registry, as kind's local-registry docs do)`);
  }
  return { address: value, port };
}

/** The kubeconfig read and its API server and the registry asked once; every failure one line, before anything is made. */
export async function checkExternal(spec: ExternalSpec): Promise<KubeConfig> {
  let text: string;
  try {
    text = readFileSync(spec.kubeconfig, 'utf8');
  } catch (e) {
    throw new UserError(`--kubeconfig ${spec.kubeconfig}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a readable kubeconfig file`);
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (e) {
    throw new UserError(`--kubeconfig ${spec.kubeconfig}: not a kubeconfig (${(e as Error).message.split('\n')[0]}): give the file kubectl uses for that cluster`);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new UserError(`--kubeconfig ${spec.kubeconfig}: its current context names no cluster server: set current-context to the cluster to test`);
  const answer = await Promise.race([
    kc.makeApiClient(VersionApi).getCode().then((v) => ({ v }), (e: Error) => ({ e: e.message.split('\n')[0] })),
    new Promise<{ e: string }>((r) => setTimeout(() => r({ e: 'no answer in 10 s' }), 10_000).unref()),
  ]);
  if ('e' in answer) throw new UserError(`--kubeconfig ${spec.kubeconfig}: the API server ${server} does not answer (${answer.e}): start the cluster or fix the kubeconfig`);
  const why = await pingRegistry(spec.registry);
  if (why) throw new UserError(`--image-registry ${spec.registry}: no registry answers http://${spec.registry}/v2/ (${why}): start it (e.g. distribution's registry) or fix the address`);
  return kc;
}

export interface OpenExternalOptions {
  log?: Log;
  /** As createKindCluster's: work on the engine (the images' build) once it runs; awaited before this resolves. */
  alongside?: (engine: DockerEngine, bundle: Promise<string>) => Promise<void>;
}

/**
 * The user's cluster as a KindCluster: checked first (checkExternal), then meshproof's engine with the registry relayed
 * into its namespace. `external` pushes images and tracks what meshproof applies; delete() removes exactly that.
 */
export async function openExternalCluster(spec: ExternalSpec, opts: OpenExternalOptions = {}): Promise<KindCluster> {
  const log = opts.log ?? (() => undefined);
  if (process.env.DOCKER_HOST) throw new UserError(`--kubeconfig: the images are built and pushed by meshproof's own docker engine: unset DOCKER_HOST=${process.env.DOCKER_HOST}`);
  const kubectlBin = resolveKube().kubectl;
  const { port } = parseRegistry(spec.registry);
  const kc = await checkExternal(spec);
  const core = kc.makeApiClient(CoreV1Api);
  const namespacesBefore = new Set((await core.listNamespace()).items.map((n) => n.metadata!.name!));
  const engine = await startEngine({ log });
  const l = engine.layout!;
  const sup = new Supervisor(join(stateDirOf(l.short), 'external', 'logs'));
  let hostRelay: RelayHandle | undefined;
  let side: Promise<void> | undefined;
  const applied: KubernetesObject[] = [];
  let deleted = false;
  let unregister: () => void = () => undefined;
  const kubectlArgv = (args: string[]) => [kubectlBin, '--kubeconfig', spec.kubeconfig, ...args];
  const kubectl = (args: string[], o: { timeoutMs?: number; input?: string } = {}) => run(kubectlArgv(args), { timeoutMs: o.timeoutMs ?? 60_000, input: o.input });
  const kubectlCapture = (args: string[], o: { timeoutMs?: number; input?: string } = {}) => runCapture(kubectlArgv(args), { timeoutMs: o.timeoutMs ?? 60_000, input: o.input });

  /** What meshproof applied, newest first; namespaces only where meshproof created them (an existing one keeps only what was its own). */
  const removeApplied = async (): Promise<void> => {
    const objs = [...applied].reverse();
    const seen = new Set<string>();
    const unique = objs.filter((o) => {
      const k = `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
      return !seen.has(k) && seen.add(k);
    });
    const namespaces = unique.filter((o) => o.kind === 'Namespace');
    await deleteObjects(kc, unique.filter((o) => o.kind !== 'Namespace').map((o) => inNamespace(o, 'default')), { wait: true });
    const created = namespaces.filter((n) => !namespacesBefore.has(n.metadata!.name!));
    // server-side apply of the bare object drops the fields meshproof's manager set (the workshop's injection label)
    const existing = namespaces.filter((n) => namespacesBefore.has(n.metadata!.name!)).map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n.metadata!.name! } }));
    if (existing.length) await applyObjects(kc, existing, { source: 'meshproof cleanup' });
    await deleteObjects(kc, created, { wait: true });
    log(`external: removed ${unique.length - namespaces.length} objects meshproof applied${created.length ? `, namespaces ${created.map((n) => n.metadata?.name).join(', ')}` : ''}`);
  };
  const stopOwn = async (): Promise<void> => {
    await side?.catch(() => undefined);
    await sup.stopAll();
    await hostRelay?.close();
    await engine.stop();
  };
  const del = async (): Promise<void> => {
    if (deleted) return;
    deleted = true;
    unregister();
    try {
      await removeApplied();
    } finally {
      await stopOwn();
    }
  };
  try {
    const dir = join(stateDirOf(l.short), 'external');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const bundling = buildPodBundle(join(dir, 'pod-bundle.js'));
    bundling.catch(() => undefined);
    side = opts.alongside?.(engine, bundling);
    side?.catch(() => undefined);
    const bundle = await bundling;
    // the engine's 127.0.0.1:<port> → socket → the host's registry (the kube layer's relay pair, the other way round)
    const socket = join(dir, 'registry.sock');
    hostRelay = await startRelay({ listen: { path: socket }, connect: { host: '127.0.0.1', port }, log: () => undefined });
    const proc = sup.start({ pod: 'external', name: 'registry-relay', netns: l.netns, argv: [process.execPath, bundle, 'relay', '--listen', `127.0.0.1:${port}`, '--connect', socket] });
    await pollUntil(() => {
      if (proc.exitCode !== undefined) throw new Error(`the registry relay exited (code ${proc.exitCode}): ${Supervisor.tail(proc, 5)}`);
      return Supervisor.tail(proc, 5).includes('relay listening on') ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 25, what: 'the registry relay in the engine namespace', detail: () => Supervisor.tail(proc, 3) });

    const nodeList = (await core.listNode()).items;
    const nodes = nodeList.map((n) => ({
      name: n.metadata!.name!, ip: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '', podCIDR: n.spec?.podCIDR ?? '',
    }));
    const name = `external-${l.short}`;
    log(`external: ${spec.kubeconfig} (${kc.getCurrentCluster()?.server}, ${nodes.length} nodes), images pushed to ${spec.registry}`);
    await side;
    unregister = onTeardown(del);
    const pushLog = join(dir, 'push.log');
    const refuse = (what: string) => Promise.reject(new UserError(`${what} is not offered on a cluster you already have (--kubeconfig): use meshproof's own kind cluster`));
    return {
      name, stateDir: dir, engine, kubeconfig: spec.kubeconfig, netns: '', nodes, kubectl, kubectlCapture, bundle,
      loopback: { server: kc.getCurrentCluster()!.server, kubeconfig: spec.kubeconfig, kc },
      external: {
        registry: spec.registry,
        wireUnchecked: WIRE_UNCHECKED,
        pushImages: async (tags) => {
          const refs: string[] = [];
          for (const tag of tags) {
            const ref = `${spec.registry}/${tag}`;
            await docker(engine, ['tag', tag, ref]);
            const r = await runLogged('docker', ['push', ref], { env: engine.env(), logFile: pushLog, shownEnv: { DOCKER_HOST: engine.host } });
            if (r.code !== 0) throw stepFailed(`docker push ${ref}`, r, pushLog, 'the run again');
            log(`external: pushed ${ref}`);
            refs.push(ref);
          }
          return refs;
        },
        track: (objs) => {
          applied.push(...objs);
        },
      },
      loadImages: () => refuse('kind load docker-image'),
      nodeMemoryMiB: () => refuse('nodeMemoryMiB'),
      schedulableNodes: async () => schedulable(nodeList.map((n) => `${n.metadata!.name} ${(n.spec?.taints ?? []).map((t) => t.effect).join(',')}`).join('\n')),
      startWireCanary: () => refuse(`the wire canary (${WIRE_UNCHECKED})`),
      delete: del,
    };
  } catch (e) {
    await stopOwn();
    throw e;
  }
}
