// The Cloud Foundry profile's model (pure): the app topology (fixtures/cf/apps.yaml), the tcp_router
// job properties (fixtures/cf/tcp-router/*.yml, BOSH style with credhub variables), and how both
// become netns pods, cells and files. Sources: reference/cloudfoundry.md §1 (tcp-router config,
// BOSH wiring), §3 (executor ports, instance identity, unproxied port mappings).
import { UserError } from '../../cli/errors.ts';
import { allocateProxyPorts, adminPort, C2CTLSPort, type PortMapping } from '../../model/cf/diego.ts';
import type { BackendTlsConfig } from '../../dataplane/haproxy/tcp-router.ts';
import type { PodSpec, ServiceSpec, Topology } from '../../substrate/types.ts';

export const CF_NAMESPACE = 'cf';
/** Pods outside the cells. */
export const CLIENT = 'client';
export const TCP_ROUTER = 'tcp-router';
export const GOROUTER = 'gorouter';
/** Where routers reach containers: overlay (pod) addresses are not routable from router VMs, cells are. */
export const POD_CIDR = '10.244.0.0/16';

export type AppKind = 'dora' | 'tcp-listener';

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
}

export const DEFAULT_CELL: CellOptions = {
  unproxiedPortMappings: true,
  requireAndVerifyClientCertificates: false,
  verifySubjectAltName: ['gorouter.service.cf.internal', 'ssh-proxy.service.cf.internal', 'tcp-router.service.cf.internal'],
  enableHttp2: true,
};

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
    if (o.kind !== 'dora' && o.kind !== 'tcp-listener') bad(`apps[${i}].kind must be dora or tcp-listener, got ${JSON.stringify(o.kind)}`);
    const ports = (o.ports ?? [8080]) as unknown[];
    if (!Array.isArray(ports) || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535)) bad(`apps[${i}].ports must be a list of ports`);
    if (!(ports as number[]).includes(8080)) bad(`apps[${i}].ports must include 8080 (the app's web port)`);
    // the executor's reservation, checked before anything starts
    allocateProxyPorts(ports as number[]);
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

export function instances(model: CfModel): CfInstance[] {
  return model.apps.flatMap((app) =>
    app.instances.map((inst, index): CfInstance => {
      const pod = `${app.name}-${index}`;
      const mappings = allocateProxyPorts(app.ports);
      const out: CfInstance = { app, index, guid: inst.guid, pod, key: `${CF_NAMESPACE}/${pod}`, cell: `cell-${pod}`, mappings, adminPort: adminPort(mappings, app.ports) };
      if (inst.serverId !== undefined) out.serverId = inst.serverId;
      return out;
    }),
  );
}

export function findInstance(model: CfModel, app: string, index = 0): CfInstance {
  const i = instances(model).find((x) => x.app.name === app && x.index === index);
  if (!i) throw new UserError(`${model.source}: no instance ${app}/${index}`);
  return i;
}

/**
 * The host ports a cell NATs to a container (executor storenode.go NetIn): every Envoy port but
 * 61443 (diego-release#651), and the app ports too unless unproxied port mappings are off. Host
 * port numbers equal the container's (each container has its own cell address here).
 */
export function cellPorts(inst: CfInstance, cell: CellOptions): number[] {
  const envoy = inst.mappings.filter((m) => m.proxyPort !== C2CTLSPort).map((m) => m.proxyPort);
  return [...new Set([...(cell.unproxiedPortMappings ? inst.app.ports : []), ...envoy])].sort((a, b) => a - b);
}

/** Routers reach cells only: new connections to overlay addresses are refused in their namespace. */
export function routerIptables(): string {
  return ['*filter', `-A OUTPUT -d ${POD_CIDR} -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset`, 'COMMIT', ''].join('\n');
}

function appContainers(inst: CfInstance): PodSpec['containers'] {
  const web = inst.app.kind === 'dora'
    ? { name: 'app', workload: 'dora', env: { PORT: '8080', VCAP_APPLICATION: JSON.stringify({ instance_id: inst.guid, application_id: inst.app.guid, application_name: inst.app.name, instance_index: inst.index }) } }
    : { name: 'app', workload: 'tcp-listener', args: ['--port', '8080', '--id', inst.serverId ?? inst.app.name] };
  const others = inst.app.ports.filter((p) => p !== 8080).map((p) => ({ name: `port-${p}`, workload: 'tcp-listener', args: ['--port', String(p), '--id', p === 2222 ? 'sshd' : `port-${p}`], ready: { kind: 'tcp' as const, port: p } }));
  return [{ ...web, ready: { kind: 'tcp' as const, port: 8080 } }, ...others];
}

/** Pods: client, tcp-router, gorouter and one container per app instance; one cell Service per instance. */
export function toCfTopology(model: CfModel, cell: CellOptions = DEFAULT_CELL): Topology {
  const ns = CF_NAMESPACE;
  const pods: PodSpec[] = [
    { name: CLIENT, namespace: ns, labels: { role: 'client' } },
    { name: TCP_ROUTER, namespace: ns, labels: { role: 'tcp-router' }, iptables: routerIptables() },
    { name: GOROUTER, namespace: ns, labels: { role: 'gorouter' }, iptables: routerIptables() },
  ];
  const services: ServiceSpec[] = [];
  for (const inst of instances(model)) {
    pods.push({ name: inst.pod, namespace: ns, labels: { app: inst.app.name, instance: inst.guid }, containers: appContainers(inst) });
    services.push({ name: inst.cell, namespace: ns, selector: { instance: inst.guid }, ports: cellPorts(inst, cell).map((p) => ({ port: p, targetPort: p })) });
  }
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
