// The c2c profile: the draft RFC "Full mTLS for Diego Container-to-Container Traffic" (cloudfoundry/community#1437)
// on the Cloud Foundry profile. It is the CF foundation (profiles/cf: app instances as pods with the executor's Envoy
// sidecar, cells, tcp-router, gorouter) with the RFC's cell properties on (62443 listener, 61445 egress proxy,
// internal_domains), internal routes `<app>.apps.internal` resolving to every instance of the app, and CF's
// container-to-container network policy enforced by real iptables in every app container's namespace
// (model/c2c/policy.ts, dataplane/iptables/c2c.ts): app → app denied until a policy allows it, routers unaffected.
// C2C traffic uses the overlay (pod addresses), never cells. A profile never spawns a process: pods and containers
// are the substrate's, rules go through cluster.iptables.
import { CfFoundation, type CfStartOptions } from '../cf/index.ts';
import { CF_NAMESPACE, GOROUTER, TCP_ROUTER, type CellOptions, type CfInstance, type CfModel } from '../cf/model.ts';
import { CertificateAuthority, issueServer, type IdentityPaths } from '../../pki/index.ts';
import { containerRules, PolicyServer, type C2cPolicy, type NetInSource, type OverlayContainer } from '../../model/c2c/policy.ts';
import { renderC2cIptables } from '../../dataplane/iptables/c2c.ts';
import { EGRESS_MTLS_CLUSTER, EGRESS_STAT_PREFIX } from '../../dataplane/envoy/egress-proxy.ts';
import type { PodSpec } from '../../substrate/types.ts';

/** The pod standing for a service outside CF (outside the internal domains). */
export const EXTERNAL = 'external';
export const EXTERNAL_KEY = `${CF_NAMESPACE}/${EXTERNAL}`;
/** Its names: an ordinary outside name, and a look-alike that merely CONTAINS the internal domain. */
export const EXTERNAL_HOST = 'external.example.com';
export const LOOKALIKE_HOST = 'backend.apps.internal.example.com';
/** Its ports: plain HTTP echoes on 8080 and on 62443 (an outside service that happens to use 62443), HTTPS on 8443. */
export const EXTERNAL_HTTP_PORT = 8080;
export const EXTERNAL_62443 = 62443;
export const EXTERNAL_HTTPS_PORT = 8443;

/** The RFC's cell properties, all on (each suite may turn one off). */
export const C2C_CELL: Partial<CellOptions> = { enableC2cMtlsListener: true, enableEgressProxy: true };

export interface C2cStartOptions extends Omit<CfStartOptions, 'extraPods'> {
  /** Add the external pod (default true). */
  external?: boolean;
}

function externalPod(): PodSpec {
  return {
    name: EXTERNAL,
    namespace: CF_NAMESPACE,
    labels: { role: 'external' },
    hostAliases: [EXTERNAL_HOST, LOOKALIKE_HOST],
    containers: [
      { name: 'http', workload: 'echo', args: ['--port', String(EXTERNAL_HTTP_PORT)], ready: { kind: 'tcp', port: EXTERNAL_HTTP_PORT } },
      { name: 'http-62443', workload: 'echo', args: ['--port', String(EXTERNAL_62443)], ready: { kind: 'tcp', port: EXTERNAL_62443 } },
    ],
  };
}

export class C2cFoundation {
  /** The policy server's state (policies and group tags). */
  readonly policyServer = new PolicyServer();
  private programmed = false;
  private externalCaFile?: string;

  private constructor(readonly cf: CfFoundation) {}

  /** Starts the CF foundation with the RFC's properties (overridable), the external pod, and default-deny C2C. */
  static async start(model: CfModel, opts: C2cStartOptions = {}): Promise<C2cFoundation> {
    const { external = true, cell, ...rest } = opts;
    const cf = await CfFoundation.start(model, { ...rest, cell: { ...C2C_CELL, ...cell }, extraPods: external ? [externalPod()] : [] });
    const f = new C2cFoundation(cf);
    try {
      await f.program();
      if (external) await f.startExternalHttps();
      return f;
    } catch (e) {
      await cf.down();
      throw e;
    }
  }

  get cluster(): CfFoundation['cluster'] {
    return this.cf.cluster;
  }

  get cell(): CellOptions {
    return this.cf.cell;
  }

  /** Every app container on the overlay. */
  get containers(): (OverlayContainer & { inst: CfInstance })[] {
    return this.cf.instances.map((inst) => ({ inst, ip: this.cluster.pod(inst.key).ip, appGuid: inst.app.guid }));
  }

  /** Sources that reach containers only through cells (silk's ingress tag): the routers. */
  get netIn(): NetInSource[] {
    return [TCP_ROUTER, GOROUTER].map((name) => ({ name, ip: this.cluster.pod(`${CF_NAMESPACE}/${name}`).ip }));
  }

  /** `cf add-network-policy` (policy server v1 JSON, model/c2c/policy.ts parsePolicies), then the agents reprogram every cell. */
  async addPolicies(policies: readonly C2cPolicy[]): Promise<void> {
    this.policyServer.add(policies);
    await this.program();
  }

  /** `cf remove-network-policy`. */
  async removePolicies(policies: readonly C2cPolicy[]): Promise<void> {
    this.policyServer.remove(policies);
    await this.program();
  }

  /** The iptables text a container gets now (what `program` applies). */
  rulesFor(inst: Pick<CfInstance, 'key'>, installJumps = false): string {
    const all = this.containers;
    const me = all.find((c) => c.inst.key === inst.key);
    if (!me) throw new Error(`${inst.key} is not an app container`);
    return renderC2cIptables(containerRules(me, all, this.policyServer, this.netIn), { installJumps });
  }

  /** The vxlan-policy-agent's poll: every container's chains replaced in one iptables-restore each. */
  private async program(): Promise<void> {
    const install = !this.programmed;
    await Promise.all(this.containers.map((c) => this.cluster.iptables(c.inst.key, this.rulesFor(c.inst, install))));
    this.programmed = true;
  }

  /** The HTTPS echo of the external pod: a server certificate for external.example.com from its own CA. */
  private async startExternalHttps(): Promise<void> {
    const ca = await CertificateAuthority.create('example-ca', { cn: 'example.com CA' });
    const cert = issueServer(ca, { cn: EXTERNAL_HOST, o: 'Example' });
    const files: IdentityPaths = await this.cf.writeCredential(await cert);
    this.externalCaFile = files.ca;
    await this.cluster.startContainer(EXTERNAL_KEY, {
      name: 'https',
      workload: 'echo',
      args: ['--port', String(EXTERNAL_HTTPS_PORT), '--tls-cert', files.cert, '--tls-key', files.key],
      ready: { kind: 'tcp', port: EXTERNAL_HTTPS_PORT },
    });
  }

  /** The CA file that verifies the external pod's HTTPS certificate. */
  get externalCa(): string {
    if (!this.externalCaFile) throw new Error('no external pod in this foundation');
    return this.externalCaFile;
  }

  /** Requests the instance's egress proxy has taken (absolute-form and CONNECT alike). */
  egressRequests(inst: CfInstance): Promise<number> {
    return this.cf.envoyStat(inst, new RegExp(`^http\\.${EGRESS_STAT_PREFIX}\\.downstream_rq_total$`));
  }

  /** Requests the egress proxy sent over its mTLS cluster: the only ones that carried the instance identity. */
  egressMtlsRequests(inst: CfInstance): Promise<number> {
    return this.cf.envoyStat(inst, new RegExp(`^cluster\\.${EGRESS_MTLS_CLUSTER}\\.upstream_rq_total$`));
  }

  /** Servers the egress proxy refused because their certificate did not name the requested host. */
  egressSanFailures(inst: CfInstance): Promise<number> {
    return this.cf.envoyStat(inst, new RegExp(`^cluster\\.${EGRESS_MTLS_CLUSTER}\\.ssl\\.fail_verify_san$`));
  }

  /** The app process's environment as dora reports it (`GET /env.json` from inside its own container). */
  async appEnv(inst: CfInstance): Promise<Record<string, string>> {
    const r = await this.cluster.probe(inst.key, { protocol: 'http', host: '127.0.0.1', port: 8080, path: '/env.json', bodyLimit: 1 << 16 }, { wire: false });
    if (r.evidence.status !== 200 || !r.evidence.body) throw new Error(`${inst.key}: dora /env.json answered ${r.verdict}`);
    return JSON.parse(r.evidence.body) as Record<string, string>;
  }

  async down(): Promise<void> {
    await this.cf.down();
  }
}
