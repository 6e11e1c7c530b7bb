// The Istio YAML users apply to clusters (Deployments, Services, PeerAuthentication,
// DestinationRule, VirtualService, Gateway), read into a typed model. Everything the profile
// does not implement is a UserError naming the field: nothing is silently ignored.
// The loader (loadIstio) is the one impure function here; parseIstio and apply are pure.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { UserError } from '../../model/errors.ts';
import { FieldReader, isObj, type Obj } from '../../model/fields.ts';

export type Labels = Record<string, string>;

/** PeerAuthentication spec.mtls.mode as written (UNSET inherits from the parent level). */
export type PeerAuthMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNSET';
/** DestinationRule trafficPolicy.tls.mode as written. */
export type DrTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

/** The mesh root namespace (MeshConfig.rootNamespace default). */
export const ROOT_NAMESPACE = 'istio-system';
/** Pod label and annotation that override namespace injection (istio sidecar injector). */
export const INJECT_LABEL = 'sidecar.istio.io/inject';
/** Namespace label that enables injection. */
export const NAMESPACE_INJECTION_LABEL = 'istio-injection';

interface Meta {
  /** File the resource came from (for messages). */
  source: string;
  name: string;
  namespace: string;
}

export interface Deployment extends Meta {
  kind: 'Deployment';
  replicas: number;
  /** spec.template.metadata.labels */
  labels: Labels;
  /** spec.template.metadata.annotations */
  annotations: Record<string, string>;
  serviceAccountName?: string;
  containerName: string;
  image?: string;
  /** containers[0].env as a map (value only; valueFrom is not implemented). */
  env: Record<string, string>;
  containerPorts: { containerPort: number; name?: string }[];
}

export interface ServicePortDef {
  name?: string;
  port: number;
  targetPort: number;
  appProtocol?: string;
}

export interface Service extends Meta {
  kind: 'Service';
  selector: Labels;
  ports: ServicePortDef[];
}

export interface ServiceAccount extends Meta {
  kind: 'ServiceAccount';
}

export interface Namespace extends Meta {
  kind: 'Namespace';
  labels: Labels;
}

export interface PeerAuthentication extends Meta {
  kind: 'PeerAuthentication';
  /** spec.selector.matchLabels; undefined = namespace-wide (or mesh-wide in the root namespace). */
  selector?: Labels;
  mode: PeerAuthMode;
  /** spec.portLevelMtls: workload port → mode. */
  portLevelMtls: Record<number, PeerAuthMode>;
}

export interface ClientTlsSettings {
  mode: DrTlsMode;
  subjectAltNames?: string[];
  credentialName?: string;
}

export interface DrSubset {
  name: string;
  labels: Labels;
  tls?: ClientTlsSettings;
}

export interface DestinationRule extends Meta {
  kind: 'DestinationRule';
  host: string;
  /** spec.exportTo; undefined = exported to every namespace. */
  exportTo?: string[];
  tls?: ClientTlsSettings;
  subsets: DrSubset[];
}

export interface RouteDestination {
  host: string;
  subset?: string;
  port?: number;
  /** undefined when the route has a single destination (Istio: 100). */
  weight?: number;
}

export interface VirtualService extends Meta {
  kind: 'VirtualService';
  hosts: string[];
  /** spec.gateways; empty = ['mesh']. */
  gateways: string[];
  exportTo?: string[];
  http: { name?: string; route: RouteDestination[] }[];
}

export interface GatewayServer {
  name?: string;
  port: { number: number; name: string; protocol: string };
  hosts: string[];
  tls?: { mode: 'SIMPLE' | 'MUTUAL'; credentialName: string };
}

export interface Gateway extends Meta {
  kind: 'Gateway';
  selector: Labels;
  servers: GatewayServer[];
}

/**
 * RBAC objects an installer ships beside a workload (the gateway chart's Role letting its ServiceAccount read its
 * credentialName Secrets, which istiod checks before serving them). Nothing in the data plane depends on them, so the
 * emulation keeps them unread; a real API server and istiod get them as written.
 */
export interface Rbac extends Meta {
  kind: 'Role' | 'RoleBinding';
}

export type Resource = Deployment | Service | ServiceAccount | Namespace | PeerAuthentication | DestinationRule | VirtualService | Gateway | Rbac;
export type Kind = Resource['kind'];

/**
 * Suite override of sidecar injection, emulating the workshop's `grep -v inject` step:
 * 'all' injects every Deployment, 'none' none, a list force-injects those Deployments by
 * name and leaves every other one to its manifest.
 */
export type InjectOverride = 'all' | 'none' | string[];

export interface IstioModel {
  /** Every resource in apply order (file order); the order breaks ties as Istio's "oldest wins". */
  resources: Resource[];
  inject?: InjectOverride;
}

export interface LoadOptions {
  inject?: InjectOverride;
}

// ---------------------------------------------------------------------------------------------
// Accessors

function ofKind<K extends Kind>(model: IstioModel, kind: K): Extract<Resource, { kind: K }>[] {
  return model.resources.filter((r): r is Extract<Resource, { kind: K }> => r.kind === kind);
}

export const deployments = (m: IstioModel): Deployment[] => ofKind(m, 'Deployment');
export const services = (m: IstioModel): Service[] => ofKind(m, 'Service');
export const namespaces = (m: IstioModel): Namespace[] => ofKind(m, 'Namespace');
export const peerAuthentications = (m: IstioModel): PeerAuthentication[] => ofKind(m, 'PeerAuthentication');
export const destinationRules = (m: IstioModel): DestinationRule[] => ofKind(m, 'DestinationRule');
export const virtualServices = (m: IstioModel): VirtualService[] => ofKind(m, 'VirtualService');
export const gateways = (m: IstioModel): Gateway[] => ofKind(m, 'Gateway');

/**
 * Whether the injector adds a sidecar to this Deployment's pods. Pod label, then annotation,
 * `sidecar.istio.io/inject: "true"|"false"` overrides the namespace label istio-injection=enabled.
 */
export function isInjected(model: IstioModel, d: Deployment): boolean {
  const o = model.inject;
  if (o === 'all') return true;
  if (o === 'none') return false;
  if (Array.isArray(o) && o.includes(d.name)) return true;
  const own = d.labels[INJECT_LABEL] ?? d.annotations[INJECT_LABEL];
  if (own === 'true') return true;
  if (own === 'false') return false;
  const ns = namespaces(model).find((n) => n.name === d.namespace);
  return ns?.labels[NAMESPACE_INJECTION_LABEL] === 'enabled';
}

/** Returns a model with the injection override replaced (the resources are shared, not copied). */
export function withInjection(model: IstioModel, inject: InjectOverride | undefined): IstioModel {
  return { resources: model.resources, inject };
}

/** `kubectl apply`: resources with the same kind/namespace/name are replaced in place (they keep their age). */
export function apply(model: IstioModel, more: IstioModel | Resource[]): IstioModel {
  const incoming = Array.isArray(more) ? more : more.resources;
  const out = [...model.resources];
  const key = (r: Resource): string => `${r.kind}/${r.namespace}/${r.name}`;
  for (const r of incoming) {
    const at = out.findIndex((o) => key(o) === key(r));
    if (at >= 0) out[at] = r;
    else out.push(r);
  }
  return { resources: out, inject: model.inject };
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Reads YAML files, or the *.yaml/*.yml files directly in a directory (like `kubectl apply -f dir`, not recursive). */
export function loadIstio(paths: string | string[], opts: LoadOptions = {}): IstioModel {
  const files: string[] = [];
  for (const p of Array.isArray(paths) ? paths : [paths]) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      throw new UserError(`${p}: cannot read (${(e as NodeJS.ErrnoException).code}): check the path`);
    }
    if (isDir) {
      const inDir = readdirSync(p)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => join(p, f))
        .filter((f) => statSync(f).isFile());
      if (inDir.length === 0) throw new UserError(`${p}: no .yaml files in this directory`);
      files.push(...inDir);
    } else files.push(p);
  }
  const resources: Resource[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UserError(`${f}: cannot read (${(e as NodeJS.ErrnoException).code}): check the path`);
    }
    resources.push(...parseIstio(text, f));
  }
  const model = apply({ resources: [], inject: opts.inject }, resources);
  return model;
}

/** Parses multi-document YAML text into resources (pure). */
export function parseIstio(text: string, source: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    const err = doc.errors[0];
    if (err) {
      const where = err.linePos?.[0] ? ` at line ${err.linePos[0].line}` : '';
      throw new UserError(`${source}: malformed YAML${where}: ${err.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (isObj(value) && value.kind === 'List') {
      const items = value.items;
      if (!Array.isArray(items)) throw new UserError(`${source}: kind List without an 'items' list`);
      items.forEach((item) => out.push(withRaw(parseResource(item, source), item)));
    } else out.push(withRaw(parseResource(value, source), value));
  }
  return out;
}

/**
 * Keeps the document a resource was parsed from (non-enumerable: models compare and print as before), so a real
 * control plane is given the user's YAML itself, not meshproof's reading of it (controlplane/istiod/mesh.ts).
 */
function withRaw<R extends Resource>(r: R, doc: unknown): R {
  Object.defineProperty(r, 'raw', { value: doc, enumerable: false });
  return r;
}

/** The istio profile's field reader (model/fields.ts): Istio's portLevelMtls keys are strings. */
class Ctx extends FieldReader {
  constructor(source: string, kind: string, name: string) {
    super(source, `${kind} ${name}`, 'istio', true);
  }
}

const API_VERSIONS: Record<Kind, readonly string[]> = {
  Deployment: ['apps/v1'],
  Service: ['v1'],
  ServiceAccount: ['v1'],
  Namespace: ['v1'],
  PeerAuthentication: ['security.istio.io/v1beta1', 'security.istio.io/v1'],
  DestinationRule: ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1', 'networking.istio.io/v1'],
  VirtualService: ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1', 'networking.istio.io/v1'],
  Gateway: ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1', 'networking.istio.io/v1'],
  Role: ['rbac.authorization.k8s.io/v1'],
  RoleBinding: ['rbac.authorization.k8s.io/v1'],
};

function parseResource(raw: unknown, source: string): Resource {
  if (!isObj(raw)) throw new UserError(`${source}: a document is not a Kubernetes resource (a mapping with apiVersion, kind, metadata)`);
  const kind = raw.kind;
  if (typeof kind !== 'string') throw new UserError(`${source}: a document has no 'kind'`);
  const metaRaw = isObj(raw.metadata) ? raw.metadata : {};
  const name = typeof metaRaw.name === 'string' ? metaRaw.name : '';
  if (!(kind in API_VERSIONS)) throw new UserError(`${source}: ${kind} ${name || '(unnamed)'}: kind ${kind} is not implemented by meshproof's istio profile`);
  const c = new Ctx(source, kind, name || '(unnamed)');
  if (!name) c.fail(`field metadata.name is required`);
  const apis = API_VERSIONS[kind as Kind];
  if (!apis.includes(raw.apiVersion as string)) c.fail(`apiVersion ${JSON.stringify(raw.apiVersion)} is not implemented (use ${apis.join(' or ')})`);
  // A ServiceAccount is accepted whole: the identity comes from its name only; RBAC objects are not read at all.
  if (kind === 'Role' || kind === 'RoleBinding') {
    const ns = isObj(raw.metadata) && typeof raw.metadata.namespace === 'string' ? raw.metadata.namespace : 'default';
    return { kind, source, name, namespace: ns };
  }
  if (kind !== 'ServiceAccount') c.only(raw, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const meta = c.obj(raw.metadata, 'metadata');
  c.only(meta, 'metadata', ['name', 'namespace', 'labels', 'annotations']);
  const namespace = kind === 'Namespace' ? name : (c.str(meta.namespace, 'metadata.namespace') ?? 'default');
  const base = { source, name, namespace };
  const spec = c.obj(raw.spec, 'spec');
  switch (kind as Kind) {
    case 'Deployment':
      return parseDeployment(c, base, spec);
    case 'Service':
      return parseService(c, base, spec);
    case 'ServiceAccount':
      return { kind: 'ServiceAccount', ...base };
    case 'Namespace':
      c.only(spec, 'spec', []);
      return { kind: 'Namespace', ...base, labels: c.labels(meta.labels, 'metadata.labels') };
    case 'PeerAuthentication':
      return parsePeerAuthentication(c, base, spec);
    case 'DestinationRule':
      return parseDestinationRule(c, base, spec);
    case 'VirtualService':
      return parseVirtualService(c, base, spec);
    case 'Gateway':
      return parseGateway(c, base, spec);
    default:
      throw new UserError(`${source}: ${kind} ${name}: not implemented`);
  }
}

function parseDeployment(c: Ctx, base: Meta, spec: Obj): Deployment {
  c.only(spec, 'spec', ['replicas', 'selector', 'template']);
  let replicas = 1;
  if (spec.replicas !== undefined) {
    if (typeof spec.replicas !== 'number' || !Number.isInteger(spec.replicas) || spec.replicas < 0) c.fail(`field spec.replicas must be a non-negative integer`);
    replicas = spec.replicas;
  }
  const tpl = c.obj(spec.template, 'spec.template');
  c.only(tpl, 'spec.template', ['metadata', 'spec']);
  const tmeta = c.obj(tpl.metadata, 'spec.template.metadata');
  c.only(tmeta, 'spec.template.metadata', ['labels', 'annotations']);
  const labels = c.labels(tmeta.labels, 'spec.template.metadata.labels');
  const annotations = c.labels(tmeta.annotations, 'spec.template.metadata.annotations');
  // apps/v1 requires spec.selector to select the template's labels; check it as the API server would.
  const sel = c.obj(spec.selector, 'spec.selector');
  c.only(sel, 'spec.selector', ['matchLabels']);
  for (const [k, v] of Object.entries(c.labels(sel.matchLabels, 'spec.selector.matchLabels'))) {
    if (labels[k] !== v) c.fail(`spec.selector.matchLabels ${k}=${v} does not match the template labels`);
  }
  const pspec = c.obj(tpl.spec, 'spec.template.spec');
  c.only(pspec, 'spec.template.spec', ['serviceAccountName', 'containers']);
  const containers = c.list(pspec.containers, 'spec.template.spec.containers');
  if (containers.length === 0) c.fail(`field spec.template.spec.containers is required`);
  if (containers.length > 1) c.fail(`field spec.template.spec.containers[1] is not implemented by meshproof's istio profile (one container per pod)`);
  const p0 = 'spec.template.spec.containers[0]';
  const c0 = c.obj(containers[0], p0);
  // image and imagePullPolicy only name the program; meshproof runs its own workloads.
  c.only(c0, p0, ['name', 'image', 'imagePullPolicy', 'env', 'ports']);
  const env: Record<string, string> = {};
  c.list(c0.env, `${p0}.env`).forEach((e, i) => {
    const ep = `${p0}.env[${i}]`;
    const eo = c.obj(e, ep);
    c.only(eo, ep, ['name', 'value']);
    const k = c.str(eo.name, `${ep}.name`, true) as string;
    const v = eo.value;
    env[k] = v === undefined || v === null ? '' : typeof v === 'string' ? v : String(v);
  });
  const containerPorts = c.list(c0.ports, `${p0}.ports`).map((p, i) => {
    const pp = `${p0}.ports[${i}]`;
    const po = c.obj(p, pp);
    c.only(po, pp, ['containerPort', 'name', 'protocol']);
    if (po.protocol !== undefined && po.protocol !== 'TCP') c.fail(`field ${pp}.protocol ${JSON.stringify(po.protocol)} is not implemented (TCP only)`);
    return { containerPort: c.port(po.containerPort, `${pp}.containerPort`), name: c.str(po.name, `${pp}.name`) };
  });
  return {
    kind: 'Deployment',
    ...base,
    replicas,
    labels,
    annotations,
    serviceAccountName: c.str(pspec.serviceAccountName, 'spec.template.spec.serviceAccountName'),
    containerName: c.str(c0.name, `${p0}.name`, true) as string,
    image: c.str(c0.image, `${p0}.image`),
    env,
    containerPorts,
  };
}

function parseService(c: Ctx, base: Meta, spec: Obj): Service {
  c.only(spec, 'spec', ['selector', 'ports', 'type']);
  if (spec.type !== undefined && spec.type !== 'ClusterIP') c.fail(`field spec.type ${JSON.stringify(spec.type)} is not implemented by meshproof's istio profile (ClusterIP only)`);
  const selector = c.labels(spec.selector, 'spec.selector');
  if (Object.keys(selector).length === 0) c.fail(`field spec.selector is required (services without a selector are not implemented)`);
  const ports = c.list(spec.ports, 'spec.ports').map((p, i): ServicePortDef => {
    const pp = `spec.ports[${i}]`;
    const po = c.obj(p, pp);
    c.only(po, pp, ['name', 'port', 'targetPort', 'protocol', 'appProtocol']);
    if (po.protocol !== undefined && po.protocol !== 'TCP') c.fail(`field ${pp}.protocol ${JSON.stringify(po.protocol)} is not implemented (TCP only)`);
    if (typeof po.targetPort === 'string' && !/^\d+$/.test(po.targetPort)) c.fail(`field ${pp}.targetPort: named target ports are not implemented; use the number`);
    const port = c.port(po.port, `${pp}.port`);
    const out: ServicePortDef = { port, targetPort: po.targetPort === undefined ? port : c.port(po.targetPort, `${pp}.targetPort`) };
    const name = c.str(po.name, `${pp}.name`);
    if (name !== undefined) out.name = name;
    const appProtocol = c.str(po.appProtocol, `${pp}.appProtocol`);
    if (appProtocol !== undefined) out.appProtocol = appProtocol;
    return out;
  });
  if (ports.length === 0) c.fail(`field spec.ports is required`);
  return { kind: 'Service', ...base, selector, ports };
}

const PA_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET'] as const;

function parseMtls(c: Ctx, v: unknown, path: string): PeerAuthMode {
  const o = c.obj(v, path);
  c.only(o, path, ['mode']);
  return o.mode === undefined ? 'UNSET' : c.oneOf(o.mode, `${path}.mode`, PA_MODES);
}

function parsePeerAuthentication(c: Ctx, base: Meta, spec: Obj): PeerAuthentication {
  c.only(spec, 'spec', ['selector', 'mtls', 'portLevelMtls']);
  let selector: Labels | undefined;
  if (spec.selector !== undefined && spec.selector !== null) {
    const so = c.obj(spec.selector, 'spec.selector');
    c.only(so, 'spec.selector', ['matchLabels']);
    const ml = c.labels(so.matchLabels, 'spec.selector.matchLabels');
    // An empty selector selects nothing specific: Istio treats it as namespace-wide.
    if (Object.keys(ml).length > 0) selector = ml;
  }
  const portLevelMtls: Record<number, PeerAuthMode> = {};
  const plm = c.obj(spec.portLevelMtls, 'spec.portLevelMtls');
  for (const [k, v] of Object.entries(plm)) portLevelMtls[c.port(k, `spec.portLevelMtls key`)] = parseMtls(c, v, `spec.portLevelMtls.${k}`);
  // Istio's validation: "portLevelMtls requires selector".
  if (Object.keys(portLevelMtls).length > 0 && !selector) c.fail(`spec.portLevelMtls requires spec.selector (Istio rejects it otherwise)`);
  return { kind: 'PeerAuthentication', ...base, selector, mode: parseMtls(c, spec.mtls, 'spec.mtls'), portLevelMtls };
}

const DR_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

function parseTrafficPolicy(c: Ctx, v: unknown, path: string): ClientTlsSettings | undefined {
  const tp = c.obj(v, path);
  c.only(tp, path, ['tls']);
  if (tp.tls === undefined || tp.tls === null) return undefined;
  const tp2 = `${path}.tls`;
  const tls = c.obj(tp.tls, tp2);
  c.only(tls, tp2, ['mode', 'subjectAltNames', 'credentialName']);
  const out: ClientTlsSettings = { mode: c.oneOf(tls.mode, `${tp2}.mode`, DR_TLS_MODES) };
  if (tls.subjectAltNames !== undefined) out.subjectAltNames = c.strings(tls.subjectAltNames, `${tp2}.subjectAltNames`);
  const cred = c.str(tls.credentialName, `${tp2}.credentialName`);
  if (cred !== undefined) {
    if (out.mode !== 'SIMPLE' && out.mode !== 'MUTUAL') c.fail(`field ${tp2}.credentialName needs mode SIMPLE or MUTUAL`);
    out.credentialName = cred;
  }
  // Istio's validation (pkg/config/validation validateTLS): MUTUAL needs the client's own certificate,
  // from credentialName or from clientCertificate + privateKey (which this profile does not implement).
  if (out.mode === 'MUTUAL' && !out.credentialName) {
    c.fail(`${tp2}: client certificate required for mutual tls: set ${tp2}.credentialName, or use mode ISTIO_MUTUAL for the mesh's own certificates`);
  }
  return out;
}

function parseExportTo(c: Ctx, v: unknown): string[] | undefined {
  return v === undefined || v === null ? undefined : c.strings(v, 'spec.exportTo');
}

function parseDestinationRule(c: Ctx, base: Meta, spec: Obj): DestinationRule {
  c.only(spec, 'spec', ['host', 'trafficPolicy', 'subsets', 'exportTo']);
  const seen = new Set<string>();
  const subsets = c.list(spec.subsets, 'spec.subsets').map((s, i): DrSubset => {
    const sp = `spec.subsets[${i}]`;
    const so = c.obj(s, sp);
    c.only(so, sp, ['name', 'labels', 'trafficPolicy']);
    const name = c.str(so.name, `${sp}.name`, true) as string;
    if (seen.has(name)) c.fail(`subset ${name} is defined twice`);
    seen.add(name);
    const out: DrSubset = { name, labels: c.labels(so.labels, `${sp}.labels`) };
    const tls = parseTrafficPolicy(c, so.trafficPolicy, `${sp}.trafficPolicy`);
    if (tls) out.tls = tls;
    return out;
  });
  const out: DestinationRule = { kind: 'DestinationRule', ...base, host: c.str(spec.host, 'spec.host', true) as string, subsets };
  const tls = parseTrafficPolicy(c, spec.trafficPolicy, 'spec.trafficPolicy');
  if (tls) out.tls = tls;
  const exportTo = parseExportTo(c, spec.exportTo);
  if (exportTo) out.exportTo = exportTo;
  return out;
}

function parseVirtualService(c: Ctx, base: Meta, spec: Obj): VirtualService {
  c.only(spec, 'spec', ['hosts', 'gateways', 'http', 'exportTo']);
  const hosts = c.strings(spec.hosts, 'spec.hosts');
  if (hosts.length === 0) c.fail(`field spec.hosts is required`);
  const http = c.list(spec.http, 'spec.http').map((h, i) => {
    const hp = `spec.http[${i}]`;
    const ho = c.obj(h, hp);
    c.only(ho, hp, ['name', 'route']);
    const route = c.list(ho.route, `${hp}.route`).map((r, j): RouteDestination => {
      const rp = `${hp}.route[${j}]`;
      const ro = c.obj(r, rp);
      c.only(ro, rp, ['destination', 'weight']);
      const dp = `${rp}.destination`;
      const d = c.obj(ro.destination, dp);
      c.only(d, dp, ['host', 'subset', 'port']);
      const out: RouteDestination = { host: c.str(d.host, `${dp}.host`, true) as string };
      const subset = c.str(d.subset, `${dp}.subset`);
      if (subset !== undefined) out.subset = subset;
      if (d.port !== undefined) {
        const po = c.obj(d.port, `${dp}.port`);
        c.only(po, `${dp}.port`, ['number']);
        out.port = c.port(po.number, `${dp}.port.number`);
      }
      if (ro.weight !== undefined) {
        if (typeof ro.weight !== 'number' || !Number.isInteger(ro.weight) || ro.weight < 0) c.fail(`field ${rp}.weight must be a non-negative integer`);
        out.weight = ro.weight;
      }
      return out;
    });
    if (route.length === 0) c.fail(`field ${hp}.route is required`);
    const name = c.str(ho.name, `${hp}.name`);
    return name === undefined ? { route } : { name, route };
  });
  const out: VirtualService = { kind: 'VirtualService', ...base, hosts, gateways: c.strings(spec.gateways, 'spec.gateways'), http };
  const exportTo = parseExportTo(c, spec.exportTo);
  if (exportTo) out.exportTo = exportTo;
  return out;
}

function parseGateway(c: Ctx, base: Meta, spec: Obj): Gateway {
  c.only(spec, 'spec', ['selector', 'servers']);
  const servers = c.list(spec.servers, 'spec.servers').map((s, i): GatewayServer => {
    const sp = `spec.servers[${i}]`;
    const so = c.obj(s, sp);
    c.only(so, sp, ['name', 'port', 'hosts', 'tls']);
    const po = c.obj(so.port, `${sp}.port`);
    c.only(po, `${sp}.port`, ['number', 'name', 'protocol']);
    const protocol = c.oneOf(po.protocol, `${sp}.port.protocol`, ['HTTP', 'HTTPS'] as const);
    const out: GatewayServer = {
      port: { number: c.port(po.number, `${sp}.port.number`), name: c.str(po.name, `${sp}.port.name`, true) as string, protocol },
      hosts: c.strings(so.hosts, `${sp}.hosts`),
    };
    if (out.hosts.length === 0) c.fail(`field ${sp}.hosts is required`);
    const name = c.str(so.name, `${sp}.name`);
    if (name !== undefined) out.name = name;
    if (so.tls !== undefined && so.tls !== null) {
      const to = c.obj(so.tls, `${sp}.tls`);
      c.only(to, `${sp}.tls`, ['mode', 'credentialName']);
      out.tls = { mode: c.oneOf(to.mode, `${sp}.tls.mode`, ['SIMPLE', 'MUTUAL'] as const), credentialName: c.str(to.credentialName, `${sp}.tls.credentialName`, true) as string };
    }
    if (protocol === 'HTTPS' && !out.tls) c.fail(`server ${sp} is HTTPS but has no tls`);
    if (protocol === 'HTTP' && out.tls) c.fail(`field ${sp}.tls is not implemented for an HTTP server`);
    return out;
  });
  if (servers.length === 0) c.fail(`field spec.servers is required`);
  return { kind: 'Gateway', ...base, selector: c.labels(spec.selector, 'spec.selector'), servers };
}
