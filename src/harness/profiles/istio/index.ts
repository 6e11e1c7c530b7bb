// The Istio profile glue: an Istio model (the user's YAML) on a running substrate. Injected pods
// get a SPIFFE identity, the istio-iptables rules and a real Envoy (uid 1337) rendered from the
// same plan istiod would compute. Changing the model (apply STRICT, inject one more workload)
// re-renders and restarts only the sidecars whose config changed.
import { join } from 'node:path';
import type { Cluster } from '../../substrate/types.ts';
import { upCluster, type UpOptions } from '../../substrate/index.ts';
import { CertificateAuthority, issueClient, issueServer, issueSpiffe, PodPkiStore, type IdentityPaths } from '../../pki/index.ts';
import { forEveryPod, forPod } from '../files.ts';
import { renderSidecar } from '../../dataplane/envoy/sidecar.ts';
import { renderGateway } from '../../dataplane/envoy/gateway.ts';
import { renderIstioIptables } from '../../dataplane/iptables/istio.ts';
import { envoyBinary, envoyContainer, envoyStat } from '../envoy.ts';
import { ISTIO_PORTS, type SidecarPlan } from '../../model/istio/plan.ts';
import { buildPlans, meshPods, selects, toTopology } from './policy.ts';
import { gateways, type IstioModel } from './resources.ts';
import type { GatewayCredential, Mesh } from './mesh.ts';

/** A Gateway credentialName's files: the server side Envoy reads, and a client certificate from the same CA for callers. */
export type { GatewayCredential } from './mesh.ts';

export const SIDECAR = 'istio-proxy';

export class IstioMesh implements Mesh {
  /** Where the sidecars' config comes from (DESIGN.md result record): meshproof's imitation of istiod. */
  readonly controlPlane = 'emulated' as const;
  private readonly identities = new Map<string, IdentityPaths>();
  /** pod key → rendered config of its running sidecar */
  private readonly running = new Map<string, string>();
  /** `<ns>/<credentialName>` → its files */
  private readonly credentials = new Map<string, GatewayCredential>();

  private constructor(
    readonly cluster: Cluster,
    private model: IstioModel,
    private readonly ca: CertificateAuthority,
    private readonly pki: PodPkiStore,
    readonly caPath: string,
    private readonly envoyBin: string,
  ) {}

  /** Starts the model's pods on the run's substrate, then its sidecars. */
  static async start(model: IstioModel, opts: UpOptions & { envoyVersion?: string } = {}): Promise<IstioMesh> {
    // fail on a missing Envoy before anything is created
    const envoyBin = envoyBinary(opts.envoyVersion);
    const cluster = await upCluster(toTopology(model), opts);
    try {
      const ca = await CertificateAuthority.create('istio');
      // keys and certificates in the run's state dir, written through the Cluster (every pod: callers present them too)
      const pki = new PodPkiStore(join(cluster.stateDir, 'pki'), forEveryPod(cluster));
      const mesh = new IstioMesh(cluster, model, ca, pki, await pki.writeCa(ca), envoyBin);
      await mesh.sync();
      return mesh;
    } catch (e) {
      await cluster.down();
      throw e;
    }
  }

  get current(): IstioModel {
    return this.model;
  }

  /** Replaces the model (e.g. after `kubectl apply` of a PeerAuthentication) and converges. */
  async update(model: IstioModel): Promise<void> {
    this.model = model;
    await this.sync();
  }

  private async identity(podKey: string): Promise<IdentityPaths> {
    let id = this.identities.get(podKey);
    if (!id) {
      const pod = meshPods(this.model).find((p) => p.key === podKey)!;
      const cert = await issueSpiffe(this.ca, { ns: pod.namespace, sa: pod.serviceAccount });
      id = await this.pki.writeIdentity({ ...cert, name: `${pod.namespace}.${pod.name}` }, { uid: ISTIO_PORTS.proxyUid, gid: ISTIO_PORTS.proxyUid });
      this.identities.set(podKey, id);
    }
    return id;
  }

  /**
   * A Gateway's credentialName (a Kubernetes Secret with cert, key and cacert in Istio) is issued
   * here per run the way the workshop does it (istio-katas mutual-tls.md): a CA `example.com`,
   * the server certificate CN=<first server host>, O=ACMEorg, and a client certificate
   * CN=client.example.com, O=ACMEorg for callers (gatewayCredential()).
   */
  private async issueCredentials(): Promise<void> {
    for (const pod of meshPods(this.model).filter((p) => p.gateway)) {
      for (const gw of gateways(this.model).filter((g) => selects(g.selector, pod.labels))) {
        for (const server of gw.servers) {
          if (!server.tls) continue;
          const key = `${pod.namespace}/${server.tls.credentialName}`;
          if (this.credentials.has(key)) continue;
          const ca = await CertificateAuthority.create(`credential-${pod.namespace}-${server.tls.credentialName}`, { cn: 'example.com' });
          const host = server.hosts.map((h) => h.replace(/^[^/]*\//, '')).find((h) => !h.includes('*')) ?? 'gateway.example.com';
          const owner = { uid: ISTIO_PORTS.proxyUid, gid: ISTIO_PORTS.proxyUid };
          const srv = await this.pki.writeIdentity({ ...(await issueServer(ca, { cn: host, o: 'ACMEorg' })), name: `${pod.namespace}.${server.tls.credentialName}.server` }, owner);
          const cli = await this.pki.writeIdentity({ ...(await issueClient(ca, { cn: 'client.example.com', o: 'ACMEorg' })), name: `${pod.namespace}.${server.tls.credentialName}.client` });
          this.credentials.set(key, { cert: srv.cert, key: srv.key, cacert: srv.ca, client: { cert: cli.cert, key: cli.key } });
        }
      }
    }
  }

  /** The files of a Gateway credentialName, with the workshop's client certificate for callers. */
  gatewayCredential(namespace: string, name: string): GatewayCredential {
    const c = this.credentials.get(`${namespace}/${name}`);
    if (!c) throw new Error(`no Gateway credential ${namespace}/${name} in this mesh (no gateway pod serves a Gateway naming it)`);
    return c;
  }

  /** Where this run keeps its keys (in the run's state dir, gone with the run), for a suite's extra identities. */
  get pkiStore(): PodPkiStore {
    return this.pki;
  }

  plans(): SidecarPlan[] {
    return buildPlans(this.model, {
      podIp: (key) => this.cluster.pod(key).ip,
      serviceVip: (key) => {
        const s = this.cluster.services.get(key);
        if (!s) throw new Error(`service ${key} is not running on the substrate`);
        return s.vip;
      },
      certs: (key) => {
        const id = this.identities.get(key)!;
        return { cert: id.cert, key: id.key, ca: this.caPath };
      },
      credential: (ns, name) => this.gatewayCredential(ns, name),
    });
  }

  /** Converges the running sidecars on the model: inject, re-render, or remove. */
  async sync(): Promise<void> {
    const injected = meshPods(this.model).filter((p) => p.injected);
    for (const p of injected) await this.identity(p.key);
    await this.issueCredentials();
    const plans = this.plans();
    const dir = join(this.cluster.stateDir, 'istio');
    const wanted = new Set<string>();
    await Promise.all(
      plans.map(async (plan) => {
        const key = `${plan.namespace}/${plan.pod}`;
        wanted.add(key);
        const config = plan.gateway ? renderGateway(plan) : renderSidecar(plan);
        if (this.running.get(key) === config) return;
        const file = join(dir, `${plan.namespace}.${plan.pod}.yaml`);
        await forPod(this.cluster, key)(file, config, { mode: 0o644 });
        if (this.running.has(key)) await this.cluster.stopContainer(key, SIDECAR);
        else if (!plan.gateway) await this.cluster.iptables(key, renderIstioIptables({}));
        await this.cluster.startContainer(key, envoyContainer(this.envoyBin, file, ISTIO_PORTS.admin, { name: SIDECAR, uid: ISTIO_PORTS.proxyUid, gid: ISTIO_PORTS.proxyUid }));
        this.running.set(key, config);
      }),
    );
    for (const key of [...this.running.keys()].filter((k) => !wanted.has(k))) {
      await this.cluster.stopContainer(key, SIDECAR);
      await this.cluster.exec(key, ['sh', '-c', 'iptables -t nat -F && iptables -t nat -X']);
      this.running.delete(key);
    }
  }

  /** A counter from a sidecar's admin API, e.g. the inbound listener's no_filter_chain_match. */
  stat(podKey: string, name: RegExp): Promise<number> {
    return envoyStat(this.cluster, podKey, ISTIO_PORTS.admin, name);
  }

  hasSidecar(podKey: string): boolean {
    return this.running.has(podKey);
  }

  async down(): Promise<void> {
    // the keys are in the run's state dir: the substrate removes them with the run
    await this.cluster.down();
  }
}
