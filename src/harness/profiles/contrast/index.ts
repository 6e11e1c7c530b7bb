// The Contrast profile: Kubernetes Deployments and Services (the emojivoto reference deployment) injected as Contrast's
// CLI injects them, on the run's substrate. Contrast's own service-mesh binary cannot be had here, so this renders what
// it does (model/contrast/annotations.ts, dataplane/envoy/contrast.ts, dataplane/iptables/contrast.ts) and runs the
// real Envoy and real kernel rules. A pod's startup follows Contrast's:
// 1. the podVM's default deny (packages/nixos/kata.nix) is the pod's iptables, in place before any container starts;
// 2. the initializer gets the pod's mesh certificate (here: from meshproof's mesh CA, into the pod's tls-config
//    directory) and, for a pod without mesh annotations, removes the default deny (CONTRAST_SERVICE_MESH_DISABLED);
// 3. the service-mesh sidecar (service-mesh/main.go): Envoy config, the CONTRAST_* TPROXY rules, then the default deny
//    removed, then Envoy (root, NET_ADMIN for its transparent listeners);
// 4. the app containers (a native sidecar's startup probe gates them in Kubernetes).
// A pod listed in `hold` gets only step 1: the caller drives the rest (runInitializer, startServiceMesh, startApps),
// in any order, as the docs' "Contrast doesn't yet enforce the order in which the containers are started" allows.
// On netns a pod has no filesystem of its own: /contrast/tls-config is <state>/contrast/<ns>_<pod>/tls-config, and the
// rendered Envoy config names those files (as the CF profile's Envoy names its SDS directory in the state dir).
import { join } from 'node:path';
import type { Cluster } from '../../substrate/types.ts';
import { upCluster, type UpOptions } from '../../substrate/index.ts';
import type { ContainerSpec, PodSpec, ServiceSpec, Topology } from '../../substrate/types.ts';
import { pollUntil } from '../../substrate/poll.ts';
import { CertificateAuthority, PodPkiStore, type IdentityPaths } from '../../pki/index.ts';
import { forEveryPod, forPod } from '../files.ts';
import { UserError } from '../../model/errors.ts';
import {
  ADMIN_ANNOTATION,
  ENVOY_INGRESS_PORT,
  initializerRemovesDefaultDeny,
  injectsServiceMesh,
  isContrastPod,
  parseProxyConfig,
  patchServiceMeshAdminInterface,
  type ProxyConfig,
} from '../../model/contrast/annotations.ts';
import type { PodPhase } from '../../model/contrast/oracle.ts';
import { renderContrastEnvoy, TLS_FILES } from '../../dataplane/envoy/contrast.ts';
import { DEFAULT_DENY_RULE, renderContrastIptables, renderDefaultDeny, renderRemoveDefaultDeny } from '../../dataplane/iptables/contrast.ts';
import { envoyBinary, envoyContainer, envoyStat } from '../envoy.ts';
import { loadContrast, type ContrastContainer, type ContrastDeployment, type ContrastModel, type ContrastService } from './resources.ts';

/** The sidecar's container name (ServiceMeshProxy in internal/kuberesource/parts.go). */
export const SIDECAR = 'contrast-service-mesh';
/** Where the config records say it came from (DESIGN.md): a profile rendering what Contrast's code does. */
export const CONTROL_PLANE = 'rendered:contrast';

/** Images → what runs for them here (one line each, for errors and the README). */
export const IMAGE_TABLE = [
  "emojivoto-emoji-svc, emojivoto-voting-svc, emojivoto-web, edgelesssys/frontend (the docs' example) → meshproof echo, one server per containerPort",
  'emojivoto-web with command emojivoto-vote-bot, curl, curlimages/curl, sleep, busybox → idle (the probe agent is the app that calls)',
];

/** A container's processes: echo servers per port, or nothing (the pod's probe agent makes its calls). */
export function appContainers(c: ContrastContainer, where: string): ContainerSpec[] {
  const idle = c.command[0] === 'emojivoto-vote-bot' || /(^|\/)(curl|sleep|busybox)(:|@|$)|curlimages\/curl/.test(c.image);
  if (idle) return [];
  if (!/(^|\/)(emojivoto-(emoji-svc|voting-svc|web)|edgelesssys\/frontend)(:|@|$)/.test(c.image)) {
    throw new UserError(`${where}: container ${c.name}: image ${JSON.stringify(c.image)} maps to no program (meshproof runs: ${IMAGE_TABLE.join('; ')})`);
  }
  if (c.ports.length === 0) throw new UserError(`${where}: container ${c.name}: an emojivoto server needs containerPorts`);
  return c.ports.map((p, i) => ({ name: i === 0 ? c.name : `${c.name}-${i}`, workload: 'echo', args: ['--port', String(p.containerPort)], ready: { kind: 'tcp', port: p.containerPort } }));
}

/** What the CLI's mutators make of one Deployment, and how it runs here. */
export interface ContrastPodPlan {
  deployment: ContrastDeployment;
  key: string;
  /** runtimeClassName contrast-cc*: initializer and default deny. */
  contrast: boolean;
  /** The service-mesh sidecar is injected. */
  injected: boolean;
  /** The sidecar's ProxyConfig (null without one). */
  proxy: ProxyConfig | null;
  apps: ContainerSpec[];
}

export interface PlanOptions {
  /** PatchServiceMeshAdminInterface with this port (the e2e tests: 9901). */
  adminInterfacePort?: number;
}

/** Pure: the Deployments → pod plans (annotations patched, parsed and checked as Contrast's CLI and sidecar do). */
export function planPods(model: ContrastModel, opts: PlanOptions = {}): ContrastPodPlan[] {
  return model.deployments.map((d0) => {
    const d = opts.adminInterfacePort === undefined ? d0 : { ...d0, annotations: patchServiceMeshAdminInterface(d0.annotations, opts.adminInterfacePort) };
    const where = `${d.source}: Deployment ${d.name}`;
    const injected = injectsServiceMesh(d);
    return {
      deployment: d,
      key: `${d.namespace}/${d.name}`,
      contrast: isContrastPod(d),
      injected,
      proxy: injected ? parseProxyConfig(d.annotations, where) : null,
      apps: d.containers.flatMap((c) => appContainers(c, where)),
    };
  });
}

/** Pure: pods (the default deny as their iptables unless `defaultDeny` is false; containers come later) and services. */
export function contrastTopology(plans: ContrastPodPlan[], services: ContrastService[], opts: { defaultDeny?: boolean } = {}): Topology {
  const pods: PodSpec[] = plans.map((p) => {
    const d = p.deployment;
    const pod: PodSpec = { name: d.name, namespace: d.namespace, labels: d.labels, annotations: d.annotations, containers: [] };
    if (d.serviceAccountName) pod.serviceAccount = d.serviceAccountName;
    if (p.contrast && opts.defaultDeny !== false) pod.iptables = renderDefaultDeny();
    return pod;
  });
  const svcs: ServiceSpec[] = services.map((s) => ({ name: s.name, namespace: s.namespace, selector: s.selector, ports: s.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: p.targetPort })) }));
  return { name: 'contrast', pods, services: svcs };
}

export interface ContrastStartOptions extends UpOptions, PlanOptions {
  envoyVersion?: string;
  /** The podVM's deny-incoming-traffic unit (default true); false is the scenario with that step removed. */
  defaultDeny?: boolean;
  /** Deployments whose startup the caller drives (runInitializer, startServiceMesh, startApps). */
  hold?: string[];
}

/** A pod's view of /contrast/tls-config. */
export interface TlsConfig {
  dir: string;
  certChain: string;
  key: string;
  meshCa: string;
}

export class ContrastMesh {
  readonly controlPlane = CONTROL_PLANE;
  private readonly tls = new Map<string, TlsConfig>();
  private readonly meshed = new Set<string>();
  private otherCa?: Promise<IdentityPaths>;
  private constructor(
    readonly cluster: Cluster,
    readonly plans: ContrastPodPlan[],
    readonly services: ContrastService[],
    private readonly ca: CertificateAuthority,
    private readonly envoyBin: string,
    private readonly log: (line: string) => void,
    /** The mesh CA as `contrast verify` hands it to a user outside the deployment. */
    readonly meshCaFile: string,
  ) {}

  /** Loads the YAML (files or directories) and starts it. */
  static async fromYaml(paths: string | string[], opts: ContrastStartOptions = {}): Promise<ContrastMesh> {
    return ContrastMesh.start(loadContrast(paths), opts);
  }

  /** Starts the pods, then every pod's startup (initializer, sidecar, apps) except those held. */
  static async start(model: ContrastModel, opts: ContrastStartOptions = {}): Promise<ContrastMesh> {
    const plans = planPods(model, opts);
    for (const h of opts.hold ?? []) if (!plans.some((p) => p.deployment.name === h)) throw new UserError(`hold: no Deployment ${h} (Deployments: ${plans.map((p) => p.deployment.name).join(', ')})`);
    // fail on a missing Envoy before anything is created
    const envoyBin = envoyBinary(opts.envoyVersion);
    const cluster = await upCluster(contrastTopology(plans, model.services, opts), opts);
    try {
      const ca = await CertificateAuthority.create('contrast-mesh', { cn: 'meshproof contrast mesh CA' });
      const user = new PodPkiStore(join(cluster.stateDir, 'contrast', 'user'), forEveryPod(cluster));
      const mesh = new ContrastMesh(cluster, plans, model.services, ca, envoyBin, opts.log ?? (() => undefined), await user.writePublicKey(TLS_FILES.meshCa, ca.certPem));
      await Promise.all(plans.filter((p) => !(opts.hold ?? []).includes(p.deployment.name)).map((p) => mesh.startPod(p.deployment.name)));
      return mesh;
    } catch (e) {
      await cluster.down();
      throw e;
    }
  }

  plan(name: string): ContrastPodPlan {
    const p = this.plans.find((x) => x.deployment.name === name || x.key === name);
    if (!p) throw new Error(`no Deployment ${name} in this Contrast model`);
    return p;
  }

  /** The whole startup of one pod, in Kubernetes' order. */
  async startPod(name: string): Promise<void> {
    const p = this.plan(name);
    await this.runInitializer(name);
    if (p.injected) await this.startServiceMesh(name);
    await this.startApps(name);
  }

  /** The pod's mesh credentials (certChain = leaf + mesh CA, as the Coordinator's chain ends in its intermediate). */
  tlsConfig(name: string): TlsConfig {
    const t = this.tls.get(this.plan(name).key);
    if (!t) throw new Error(`${name}: its initializer has not run (no mesh certificate yet)`);
    return t;
  }

  /**
   * The initializer: the mesh certificate from the Coordinator (here meshproof's mesh CA: CN and DNS SAN = the
   * workload's name, plus the wildcard "*" the e2e test's comment mentions), written to the pod's tls-config; for a
   * pod without mesh annotations it also removes the default deny.
   */
  async runInitializer(name: string): Promise<void> {
    const p = this.plan(name);
    if (!p.contrast) return;
    const d = p.deployment;
    const leaf = await this.ca.issue(`${d.namespace}.${d.name}`, { subject: { CN: d.name }, dns: [d.name, '*'] });
    const dir = join(this.cluster.stateDir, 'contrast', `${d.namespace}_${d.name}`, 'tls-config');
    // the pod's own tls-config: certificates 0644 (writePublicKey's mode), the key 0600 (root's: Envoy runs as root); gone with the run
    const store = new PodPkiStore(dir, forPod(this.cluster, p.key));
    this.tls.set(p.key, {
      dir,
      certChain: await store.writePublicKey(TLS_FILES.certChain, leaf.certPem + leaf.caPem),
      key: await store.writeSecret(TLS_FILES.key, leaf.keyPem),
      meshCa: await store.writePublicKey(TLS_FILES.meshCa, this.ca.certPem),
    });
    if (initializerRemovesDefaultDeny(d)) await this.removeDefaultDeny(name, 'initializer');
  }

  /** service-mesh/main.go: config, IngressIPTableRules, RemoveDefaultDenyRule, then Envoy. */
  async startServiceMesh(name: string): Promise<void> {
    const p = this.plan(name);
    if (!p.injected || !p.proxy) throw new Error(`${name}: Contrast injects no service mesh into this pod`);
    const tls = this.tlsConfig(name);
    const file = join(tls.dir, '..', 'envoy-config.yml');
    await this.cluster.writeFile(p.key, file, renderContrastEnvoy(p.proxy, { tlsConfigDir: tls.dir }), { mode: 0o600 });
    if (!p.proxy.ingressDisabled) await this.cluster.iptables(p.key, renderContrastIptables(p.proxy.ingress));
    this.meshed.add(p.key);
    await this.removeDefaultDeny(name, SIDECAR);
    const envoy = envoyContainer(this.envoyBin, file, p.proxy.adminPort ?? 0, { name: SIDECAR });
    envoy.caps = ['net_admin'];
    // without an admin interface there is no /ready: the ingress listener accepting is the sign
    if (p.proxy.adminPort === undefined) envoy.ready = { kind: 'tcp', port: ENVOY_INGRESS_PORT };
    await this.cluster.startContainer(p.key, envoy);
  }

  /**
   * The app containers. While the default deny holds, a readiness check from inside the pod is dropped like any new
   * connection: then the app counts as started once its socket listens (`ss`).
   */
  async startApps(name: string): Promise<void> {
    const p = this.plan(name);
    const denied = await this.defaultDenyActive(name);
    for (const c of p.apps) {
      if (!denied) {
        await this.cluster.startContainer(p.key, c);
        continue;
      }
      await this.cluster.startContainer(p.key, { ...c, ready: { kind: 'none' } });
      const port = c.ready && c.ready.kind !== 'none' ? c.ready.port : undefined;
      if (port === undefined) continue;
      await pollUntil(
        async () => ((await this.cluster.exec(p.key, ['ss', '-Hltn', 'sport', '=', `:${port}`])).stdout.trim() !== '' ? true : undefined),
        { timeoutMs: 20_000, what: `pod ${p.key}: container ${c.name} listening on ${port}` },
      );
    }
  }

  /** Whether the default-deny rule is in the pod's INPUT chain now (the kernel's answer, `iptables -C`). */
  async defaultDenyActive(name: string): Promise<boolean> {
    const p = this.plan(name);
    if (!p.contrast) return false;
    return (await this.cluster.exec(p.key, ['iptables', '-C', 'INPUT', ...DEFAULT_DENY_RULE.split(' ')])).code === 0;
  }

  /** defaultdeny.RemoveDefaultDenyRule: Exists, then Delete; a missing rule (a restarted container) is no error. */
  private async removeDefaultDeny(name: string, by: string): Promise<void> {
    const p = this.plan(name);
    if (!(await this.defaultDenyActive(name))) {
      this.log(`contrast: ${p.key}: ${by}: default deny rule does not exist, nothing to do`);
      return;
    }
    await this.cluster.iptables(p.key, renderRemoveDefaultDeny());
    this.log(`contrast: ${p.key}: ${by}: default deny rule removed`);
  }

  /** Where a pod's inbound traffic stands now, for the oracle: deny, nothing, or the sidecar's rules. */
  async phase(name: string): Promise<PodPhase> {
    if (await this.defaultDenyActive(name)) return 'default-deny';
    return this.meshed.has(this.plan(name).key) ? 'meshed' : 'no-rules';
  }

  /** A certificate from a CA that is not the mesh's (a caller the mesh must refuse). */
  otherCaIdentity(): Promise<IdentityPaths> {
    this.otherCa ??= (async () => {
      const ca = await CertificateAuthority.create('other-ca', { cn: 'other CA' });
      // a caller's: every pod may present it
      const store = new PodPkiStore(join(this.cluster.stateDir, 'contrast', 'other-ca'), forEveryPod(this.cluster));
      return store.writeIdentity(await ca.issue('intruder', { subject: { CN: 'intruder' }, dns: ['intruder'] }));
    })();
    return this.otherCa;
  }

  /** A counter from the sidecar's admin interface (needs the admin annotation). */
  stat(name: string, re: RegExp): Promise<number> {
    const p = this.plan(name);
    if (p.proxy?.adminPort === undefined) throw new Error(`${name}: its sidecar has no admin interface (no ${ADMIN_ANNOTATION} annotation)`);
    return envoyStat(this.cluster, p.key, p.proxy.adminPort, re);
  }

  async down(): Promise<void> {
    // the keys are in the run's state dir: the substrate removes them with the run
    await this.cluster.down();
  }
}
