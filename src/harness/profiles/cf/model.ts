// The Cloud Foundry profile's model (pure): the app topology (fixtures/cf/apps.yaml), the tcp_router
// job properties (fixtures/cf/tcp-router/*.yml, BOSH style with credhub variables), and how both
// become netns pods, cells and files. Sources: reference/cloudfoundry.md §1 (tcp-router config,
// BOSH wiring), §3 (executor ports, instance identity, unproxied port mappings).
import { UserError } from '../../model/errors.ts';
import { allocateProxyPorts, adminPort, C2CMTLSPort, C2CTLSPort, type PortMapping } from '../../model/cf/diego.ts';
import type { BackendTlsConfig } from '../../dataplane/haproxy/tcp-router.ts';
import { CF_INSTANCE_MTLS_PROXY, DEFAULT_INTERNAL_DOMAINS, EGRESS_PROXY_PORT, normalizeInternalDomains } from '../../dataplane/envoy/egress-proxy.ts';
import type { PodSpec, ServiceSpec, Topology } from '../../substrate/types.ts';

export const CF_NAMESPACE = 'cf';
/** Pods outside the cells. */
export const CLIENT = 'client';
export const TCP_ROUTER = 'tcp-router';
export const GOROUTER = 'gorouter';
/** The guid of the `default-tcp` router group the routes name (CATS tcp_routing requires that group). */
export const DEFAULT_TCP_ROUTER_GROUP = '7a6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
/** Where routers reach containers: overlay (pod) addresses are not routable from router VMs, cells are. */
export const POD_CIDR = '10.244.0.0/16';
/** Cloud Controller's default internal domain: every app here has the internal route `<app>.apps.internal`. */
export const CF_INTERNAL_DOMAIN = 'apps.internal';

/** dora and the CATS tcp-listener; `echo` is meshproof's echo (GET /bytes/<n>, for load). */
export type AppKind = 'dora' | 'tcp-listener' | 'echo';

export interface CfApp {
  name: string;
  guid: string;
  kind: AppKind;
  /** Ports the process listens on (CF web process: [8080, 2222]). */
  ports: number[];
  instances: { guid: string; serverId?: string }[];
}

export interface CfModel {
  source: string;
  organization: string;
  space: string;
  apps: CfApp[];
}

/** Per-cell rep/executor properties (diego-release jobs/rep/spec). */
export interface CellOptions {
  /** containers.proxy.enable_unproxied_port_mappings (default true): app ports get host NAT too. */
  unproxiedPortMappings: boolean;
  /** containers.proxy.require_and_verify_client_certificates (default false). */
  requireAndVerifyClientCertificates: boolean;
  /** containers.proxy.verify_subject_alt_name (cf-deployment: the three router SANs). */
  verifySubjectAltName: string[];
  /** containers.proxy.enable_http2 (default true). */
  enableHttp2: boolean;
  /**
   * containers.proxy.enable_c2c_mtls_listener (draft RFC community#1437, default false): 62443 → 8080, HTTP, client
   * certificate required (instance identity CA), XFCC replaced; 62443 becomes reserved.
   */
  enableC2cMtlsListener: boolean;
  /**
   * containers.proxy.enable_egress_proxy (same RFC, Phase 2, default false): the 127.0.0.1:61445 egress proxy in the
   * sidecar (dataplane/envoy/egress-proxy.ts), CF_INSTANCE_MTLS_PROXY in the app's environment; 61445 becomes reserved.
   */
  enableEgressProxy: boolean;
  /**
   * containers.proxy.internal_domains: where the egress proxy presents the instance identity (on 62443). The RFC's
   * default is []; here it is bosh-dns-adapter's `apps.internal`, the domain internal routes live in.
   */
  internalDomains: string[];
}

export const DEFAULT_CELL: CellOptions = {
  unproxiedPortMappings: true,
  requireAndVerifyClientCertificates: false,
  verifySubjectAltName: ['gorouter.service.cf.internal', 'ssh-proxy.service.cf.internal', 'tcp-router.service.cf.internal'],
  enableHttp2: true,
  enableC2cMtlsListener: false,
  enableEgressProxy: false,
  internalDomains: [...DEFAULT_INTERNAL_DOMAINS],
};

/** What a topology adds to the CF pods: Cloud Controller's running environment variable group, and pods outside CF. */
export interface CfTopologyExtras {
  /** `cf set-running-environment-variable-group` (e.g. HTTP_PROXY/HTTPS_PROXY as the RFC suggests operators set). */
  runningEnvironment?: Record<string, string>;
  /** Pods that are not CF apps (e.g. an external service); namespace defaults to `cf`. */
  extraPods?: PodSpec[];
  /**
   * Internal routes mapped after the instances were created (app name → hostnames): DNS resolves them to the app's
   * instances at once, but the C2C certificates, issued with the routes the containers were created with, do not
   * carry them. (Whether Diego re-issues the certificate on a later `cf map-route` is not modelled.)
   */
  routesMappedLater?: Record<string, string[]>;
}

export interface CfInstance {
  app: CfApp;
  index: number;
  guid: string;
  serverId?: string;
  /** The container (pod) name: `<app>-<index>`. */
  pod: string;
  /** `cf/<pod>` */
  key: string;
  /** The cell Service whose VIP is this container's backend_ip: `cell-<pod>`. */
  cell: string;
  mappings: PortMapping[];
  adminPort: number;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function only(o: Record<string, unknown>, where: string, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new UserError(`${where}: unknown field ${k} (known: ${keys.join(', ')})`);
}

/** Reads apps.yaml (already parsed), rejecting unknown fields and malformed guids by name. */
export function parseCfModel(raw: unknown, source: string): CfModel {
  const bad = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad('not a CF app topology (a mapping with organization, space, apps)');
  const r = raw as Record<string, unknown>;
  only(r, source, ['organization', 'space', 'apps']);
  for (const k of ['organization', 'space'] as const) if (typeof r[k] !== 'string' || !GUID.test(r[k] as string)) bad(`${k} must be a guid`);
  if (!Array.isArray(r.apps) || r.apps.length === 0) bad('apps must be a non-empty list');
  const guids = new Set<string>();
  const apps = (r.apps as unknown[]).map((a, i): CfApp => {
    const where = `${source}: apps[${i}]`;
    if (!a || typeof a !== 'object') return bad(`apps[${i}] must be a mapping`);
    const o = a as Record<string, unknown>;
    only(o, where, ['name', 'guid', 'kind', 'ports', 'instances']);
    if (typeof o.name !== 'string' || !NAME.test(o.name)) bad(`apps[${i}].name must be a DNS label`);
    if (typeof o.guid !== 'string' || !GUID.test(o.guid)) bad(`apps[${i}].guid must be a guid`);
    if (o.kind !== 'dora' && o.kind !== 'tcp-listener' && o.kind !== 'echo') bad(`apps[${i}].kind must be dora, tcp-listener or echo, got ${JSON.stringify(o.kind)}`);
    const ports = (o.ports ?? [8080]) as unknown[];
    if (!Array.isArray(ports) || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535)) bad(`apps[${i}].ports must be a list of ports`);
    if (!(ports as number[]).includes(8080)) bad(`apps[${i}].ports must include 8080 (the app's web port)`);
    // the executor's reservation of 61443, checked before anything starts (62443 and 61445 depend on the cell: instances())
    try {
      allocateProxyPorts(ports as number[]);
    } catch (e) {
      bad(`app ${o.name as string}: ${(e as Error).message}`);
    }
    if (!Array.isArray(o.instances) || o.instances.length === 0) bad(`apps[${i}].instances must be a non-empty list`);
    const instances = (o.instances as unknown[]).map((x, j) => {
      const io = (x ?? {}) as Record<string, unknown>;
      only(io, `${where}.instances[${j}]`, ['guid', 'serverId']);
      if (typeof io.guid !== 'string' || !GUID.test(io.guid)) bad(`apps[${i}].instances[${j}].guid must be a guid`);
      if (guids.has(io.guid as string)) bad(`instance guid ${io.guid} appears twice`);
      guids.add(io.guid as string);
      const out: { guid: string; serverId?: string } = { guid: io.guid as string };
      if (io.serverId !== undefined) out.serverId = String(io.serverId);
      return out;
    });
    return { name: o.name as string, guid: o.guid as string, kind: o.kind as AppKind, ports: ports as number[], instances };
  });
  if (new Set(apps.map((a) => a.name)).size !== apps.length) bad('app names must be unique');
  return { source, organization: r.organization as string, space: r.space as string, apps };
}

/** The app's internal route (`cf map-route <app> apps.internal --hostname <app>`): what `<app>.apps.internal` resolves to. */
export function internalRoute(app: Pick<CfApp, 'name'>): string {
  return `${app.name}.${CF_INTERNAL_DOMAIN}`;
}

/**
 * The executor's ProxyPorts on a cell with these options. It refuses an app that declares a port reserved for
 * container networking in the executor's words (ErrC2CTLSPortIsReserved: `port 61443 is reserved for container
 * networking`; the RFC reserves 62443 with the listener and 61445 with the egress proxy "similar to the existing
 * reservation for port 61443", so they get the same sentence) for the first reserved port in the app's order, naming
 * the app. 61445 is skipped for the admin port; a proxy port can only reach 61445 with more than 443 app ports, which
 * is refused rather than renumbered (allocateProxyPorts knows nothing of the egress proxy).
 */
export function proxyPortsOf(app: CfApp, cell: Pick<CellOptions, 'enableC2cMtlsListener' | 'enableEgressProxy'> = DEFAULT_CELL, source = 'apps'): { mappings: PortMapping[]; adminPort: number } {
  const refuse = (msg: string): never => {
    throw new UserError(`${source}: app ${app.name}: ${msg}`);
  };
  const reserved = [C2CTLSPort, ...(cell.enableC2cMtlsListener ? [C2CMTLSPort] : []), ...(cell.enableEgressProxy ? [EGRESS_PROXY_PORT] : [])];
  const first = app.ports.find((p) => reserved.includes(p));
  if (first !== undefined) refuse(`port ${first} is reserved for container networking`);
  let mappings: PortMapping[] = [];
  try {
    mappings = allocateProxyPorts(app.ports, { c2cMtls: cell.enableC2cMtlsListener });
  } catch (e) {
    refuse((e as Error).message);
  }
  if (cell.enableEgressProxy && mappings.some((m) => m.proxyPort === EGRESS_PROXY_PORT)) refuse(`no ports available below the egress proxy port ${EGRESS_PROXY_PORT}`);
  return { mappings, adminPort: adminPort(mappings, cell.enableEgressProxy ? [...app.ports, EGRESS_PROXY_PORT] : app.ports) };
}

/** Every app instance as the cell runs it (ports per the cell's options; default cell: the executor's defaults). */
export function instances(model: CfModel, cell: Pick<CellOptions, 'enableC2cMtlsListener' | 'enableEgressProxy'> = DEFAULT_CELL): CfInstance[] {
  return model.apps.flatMap((app) => {
    const ports = proxyPortsOf(app, cell, model.source);
    return app.instances.map((inst, index): CfInstance => {
      const pod = `${app.name}-${index}`;
      const out: CfInstance = { app, index, guid: inst.guid, pod, key: `${CF_NAMESPACE}/${pod}`, cell: `cell-${pod}`, mappings: ports.mappings, adminPort: ports.adminPort };
      if (inst.serverId !== undefined) out.serverId = inst.serverId;
      return out;
    });
  });
}

export function findInstance(model: CfModel, app: string, index = 0, cell: Pick<CellOptions, 'enableC2cMtlsListener' | 'enableEgressProxy'> = DEFAULT_CELL): CfInstance {
  const i = instances(model, cell).find((x) => x.app.name === app && x.index === index);
  if (!i) throw new UserError(`${model.source}: no instance ${app}/${index}`);
  return i;
}

/**
 * The host ports a cell NATs to a container (executor storenode.go NetIn): every Envoy port but
 * 61443 (diego-release#651), and the app ports too unless unproxied port mappings are off. Host
 * port numbers equal the container's (each container has its own cell address here).
 */
export function cellPorts(inst: CfInstance, cell: CellOptions): number[] {
  const envoy = inst.mappings.filter((m) => m.proxyPort !== C2CTLSPort && m.proxyPort !== C2CMTLSPort).map((m) => m.proxyPort);
  return [...new Set([...(cell.unproxiedPortMappings ? inst.app.ports : []), ...envoy])].sort((a, b) => a - b);
}

/** Routers reach cells only: new connections to overlay addresses are refused in their namespace. */
export function routerIptables(): string {
  return ['*filter', `-A OUTPUT -d ${POD_CIDR} -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset`, 'COMMIT', ''].join('\n');
}

/**
 * The app process's environment: the running environment variable group first, then what Diego sets for the instance
 * (CF_INSTANCE_GUID; CF_INSTANCE_MTLS_PROXY with the egress proxy, RFC draft), then the buildpack's PORT and
 * VCAP_APPLICATION.
 */
export function appEnvironment(inst: CfInstance, cell: Pick<CellOptions, 'enableEgressProxy'>, running: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...running, CF_INSTANCE_GUID: inst.guid };
  if (cell.enableEgressProxy) env.CF_INSTANCE_MTLS_PROXY = CF_INSTANCE_MTLS_PROXY;
  return env;
}

function appContainers(inst: CfInstance, env: Record<string, string>): PodSpec['containers'] {
  const web =
    inst.app.kind === 'dora'
      ? { name: 'app', workload: 'dora', env: { ...env, PORT: '8080', VCAP_APPLICATION: JSON.stringify({ instance_id: inst.guid, application_id: inst.app.guid, application_name: inst.app.name, instance_index: inst.index }) } }
      : inst.app.kind === 'echo'
        ? { name: 'app', workload: 'echo', args: ['--port', '8080'], env }
        : { name: 'app', workload: 'tcp-listener', args: ['--port', '8080', '--id', inst.serverId ?? inst.app.name], env };
  const others = inst.app.ports.filter((p) => p !== 8080).map((p) => ({ name: `port-${p}`, workload: 'tcp-listener', args: ['--port', String(p), '--id', p === 2222 ? 'sshd' : `port-${p}`], ready: { kind: 'tcp' as const, port: p } }));
  return [{ ...web, ready: { kind: 'tcp' as const, port: 8080 } }, ...others];
}

/**
 * Pods: client, tcp-router, gorouter and one container per app instance (named `<app>.apps.internal` too: every
 * instance of an app shares its internal route), then the extra pods; one cell Service per instance. Refuses, before
 * anything starts, an app the cell's executor would refuse (reserved ports).
 */
export function toCfTopology(model: CfModel, cell: CellOptions = DEFAULT_CELL, extras: CfTopologyExtras = {}): Topology {
  const ns = CF_NAMESPACE;
  if (cell.enableEgressProxy) normalizeInternalDomains(cell.internalDomains);
  const pods: PodSpec[] = [
    { name: CLIENT, namespace: ns, labels: { role: 'client' } },
    { name: TCP_ROUTER, namespace: ns, labels: { role: 'tcp-router' }, iptables: routerIptables() },
    { name: GOROUTER, namespace: ns, labels: { role: 'gorouter' }, iptables: routerIptables() },
  ];
  const services: ServiceSpec[] = [];
  for (const inst of instances(model, cell)) {
    const env = appEnvironment(inst, cell, extras.runningEnvironment);
    const aliases = [internalRoute(inst.app), ...(extras.routesMappedLater?.[inst.app.name] ?? [])];
    pods.push({ name: inst.pod, namespace: ns, labels: { app: inst.app.name, instance: inst.guid }, hostAliases: aliases, containers: appContainers(inst, env) });
    services.push({ name: inst.cell, namespace: ns, selector: { instance: inst.guid }, ports: cellPorts(inst, cell).map((p) => ({ port: p, targetPort: p })) });
  }
  for (const p of extras.extraPods ?? []) pods.push({ ...p, namespace: p.namespace ?? ns });
  return { name: 'cf', pods, services };
}

// ---------------------------------------------------------------------------------------------
// tcp_router job properties

/** BOSH-rendered paths of the backend TLS files (jobs/tcp_router/templates/tcp_router.yml.erb). */
export const BOSH_CA_PATH = '/var/vcap/jobs/tcp_router/config/certs/tcp-router/backend/ca.crt';
export const BOSH_CLIENT_PEM_PATH = '/var/vcap/jobs/tcp_router/config/keys/tcp-router/backend/client_cert_and_key.pem';

export interface TcpRouterProperties {
  backendTls: BackendTlsConfig;
  /** PEM contents of the files the job template renders (ca.crt; client cert + key). */
  files: { ca?: string; clientCertAndKey?: string };
}

/**
 * `tcp_router.backend_tls.{enabled,ca_cert,client_cert,client_key}` → the tcp-router config's
 * backend_tls block with the BOSH paths, and those files' contents. `((name.field))` is resolved
 * from `vars` as credhub would; an unknown variable is an error naming it.
 */
export function parseTcpRouterProperties(raw: unknown, source: string, vars: Record<string, string>): TcpRouterProperties {
  const bad = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  const root = raw as Record<string, unknown> | null;
  if (!root || typeof root !== 'object') return bad('not tcp_router job properties (a mapping with tcp_router.backend_tls)');
  only(root, source, ['tcp_router']);
  const tr = (root.tcp_router ?? {}) as Record<string, unknown>;
  only(tr, `${source}: tcp_router`, ['backend_tls']);
  const bt = (tr.backend_tls ?? {}) as Record<string, unknown>;
  only(bt, `${source}: tcp_router.backend_tls`, ['enabled', 'ca_cert', 'client_cert', 'client_key']);
  if (bt.enabled !== undefined && typeof bt.enabled !== 'boolean') bad('tcp_router.backend_tls.enabled must be true or false');
  const value = (k: string): string | undefined => {
    const v = bt[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return bad(`tcp_router.backend_tls.${k} must be a string`);
    return v.replace(/\(\(([\w.-]+)\)\)/g, (_, name: string) => vars[name] ?? bad(`tcp_router.backend_tls.${k}: unknown variable ((${name})) (known: ${Object.keys(vars).join(', ')})`));
  };
  const ca = value('ca_cert');
  const cert = value('client_cert');
  const key = value('client_key');
  if ((cert === undefined) !== (key === undefined)) bad('tcp_router.backend_tls.client_cert and client_key go together');
  const backendTls: BackendTlsConfig = { enabled: bt.enabled === true };
  const files: TcpRouterProperties['files'] = {};
  if (ca !== undefined) {
    backendTls.caCertPath = BOSH_CA_PATH;
    files.ca = ca;
  }
  if (cert !== undefined && key !== undefined) {
    backendTls.clientCertAndKeyPath = BOSH_CLIENT_PEM_PATH;
    files.clientCertAndKey = `${cert.trimEnd()}\n${key.trimEnd()}\n`;
  }
  return { backendTls, files };
}
