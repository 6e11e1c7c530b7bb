// Istio's policy semantics over the loaded model (pure): PeerAuthentication inheritance,
// DestinationRule/VirtualService resolution for a client, the pods a Deployment becomes, and
// the SidecarPlan of every injected pod.
import { UserError } from '../../model/errors.ts';
import type { ContainerSpec, PodSpec, ServiceSpec, Topology } from '../../substrate/types.ts';
import type { IstioCell } from './oracle.ts';
import type { ClientKind } from './truth.ts';
import type { ClientTlsMode, Endpoint, GatewayServerPlan, InboundPort, MtlsMode, OutboundService, OutboundSubset, SidecarPlan, WeightedRoute } from '../../model/istio/plan.ts';
import { istioEchoPort } from '../../workloads/istio-echo.ts';
import { declaresHttp2, protocolSelection } from './protocol-oracle.ts';
import {
  ROOT_NAMESPACE,
  deployments,
  destinationRules,
  gateways,
  isInjected,
  peerAuthentications,
  services,
  virtualServices,
  type DestinationRule,
  type Deployment,
  type IstioModel,
  type Labels,
  type PeerAuthentication,
  type Service,
  type ServicePortDef,
  type VirtualService,
} from './resources.ts';

/** Trust domain and DNS suffix of the emulated cluster. */
export const TRUST_DOMAIN = 'cluster.local';
export const DOMAIN_SUFFIX = 'svc.cluster.local';
/** Label the injector adds to injected pods; auto-mTLS matches endpoints on it (tlsMode-istio). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export interface PodRef {
  namespace: string;
  labels?: Labels;
}

/** One pod a Deployment becomes. */
export interface MeshPod {
  name: string;
  namespace: string;
  /** `<namespace>/<name>` (the substrate's pod key). */
  key: string;
  /** Template labels, plus security.istio.io/tlsMode=istio when injected. */
  labels: Labels;
  serviceAccount: string;
  /** Has an Istio proxy: an injected sidecar, or a gateway (the pod is the proxy). */
  injected: boolean;
  /** Injected with the `gateway` template: the pod is an ingress gateway proxy, no traffic capture. */
  gateway: boolean;
  deployment: Deployment;
}

/** Pod annotation choosing the injection template; `gateway` makes the pod a gateway proxy (Istio's gateway Helm chart). */
export const INJECT_TEMPLATES_ANNOTATION = 'inject.istio.io/templates';
export const isGatewayDeployment = (d: Deployment): boolean => d.annotations[INJECT_TEMPLATES_ANNOTATION] === 'gateway';

export const selects = (selector: Labels, labels: Labels | undefined): boolean => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** spiffe://cluster.local/ns/<ns>/sa/<sa> (pkg/spiffe/spiffe.go). */
export const spiffeId = (namespace: string, serviceAccount: string): string => `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;

export const fqdn = (svc: { name: string; namespace: string }): string => `${svc.name}.${svc.namespace}.${DOMAIN_SUFFIX}`;

// ---------------------------------------------------------------------------------------------
// PeerAuthentication (security/authn: mesh → namespace → workload → port; UNSET inherits)

function levels(model: IstioModel, pod: PodRef): { mesh?: PeerAuthentication; namespace?: PeerAuthentication; workload?: PeerAuthentication } {
  // Among policies of the same level the oldest wins; apply order stands in for creation time.
  const pas = peerAuthentications(model);
  return {
    mesh: pas.find((p) => p.namespace === ROOT_NAMESPACE && !p.selector),
    namespace: pas.find((p) => p.namespace === pod.namespace && !p.selector),
    workload: pas.find((p) => p.namespace === pod.namespace && p.selector !== undefined && selects(p.selector, pod.labels)),
  };
}

/**
 * The mTLS mode a pod's sidecar enforces on a workload port (or, without a port, on ports no
 * policy names). Most specific wins: workload > namespace > mesh; portLevelMtls of the workload
 * policy overrides for that port; UNSET inherits; nothing set → PERMISSIVE.
 */
export function effectiveMtls(model: IstioModel, pod: PodRef, port?: number): MtlsMode {
  const l = levels(model, pod);
  let mode: MtlsMode = 'PERMISSIVE';
  for (const p of [l.mesh, l.namespace, l.workload]) if (p && p.mode !== 'UNSET') mode = p.mode;
  if (port !== undefined && l.workload) {
    const atPort = l.workload.portLevelMtls[port];
    if (atPort && atPort !== 'UNSET') mode = atPort;
  }
  return mode;
}

/**
 * The client's hint for auto-mTLS (PushContext.BestEffortInferServiceMTLSMode): only mesh- and
 * namespace-level policies of the service's namespace count, workload and port policies are ignored.
 */
export function inferServiceMtls(model: IstioModel, svc: { namespace: string }): MtlsMode {
  const l = levels(model, { namespace: svc.namespace, labels: {} });
  let mode: MtlsMode = 'PERMISSIVE';
  for (const p of [l.mesh, l.namespace]) if (p && p.mode !== 'UNSET') mode = p.mode;
  return mode;
}

// ---------------------------------------------------------------------------------------------
// Hosts, visibility, DestinationRule and VirtualService lookup

/** A config host as an FQDN: short names resolve against the config's namespace; `name.ns` is expanded too. */
function resolveHost(host: string, configNs: string): string {
  if (host.startsWith('*')) return host;
  const parts = host.split('.');
  if (parts.length === 1) return `${host}.${configNs}.${DOMAIN_SUFFIX}`;
  if (parts.length === 2) return `${host}.${DOMAIN_SUFFIX}`;
  if (parts.length === 3 && parts[2] === 'svc') return `${host}.${TRUST_DOMAIN}`;
  return host;
}

/** How specifically `host` (resolved) matches `target`: -1 no match, larger is more specific. */
function hostMatch(host: string, configNs: string, target: string): number {
  const h = resolveHost(host, configNs);
  if (h === target) return 10_000;
  if (h === '*') return 0;
  if (h.startsWith('*.') && target.endsWith(h.slice(1))) return h.length;
  return -1;
}

/** exportTo: absent or '*' → everywhere, '.' → the config's own namespace, else the listed namespaces. */
function visibleTo(cfg: { namespace: string; exportTo?: string[] }, clientNs: string): boolean {
  if (!cfg.exportTo || cfg.exportTo.length === 0) return true;
  return cfg.exportTo.some((e) => e === '*' || (e === '.' ? cfg.namespace === clientNs : e === clientNs));
}

/**
 * The DestinationRule a client in `clientNs` uses for a service: the client's namespace first,
 * then the service's, then the root namespace; within one namespace the most specific host,
 * then the oldest.
 */
export function destinationRuleFor(model: IstioModel, clientNs: string, svc: { name: string; namespace: string }): DestinationRule | undefined {
  const target = fqdn(svc);
  const drs = destinationRules(model);
  for (const ns of [...new Set([clientNs, svc.namespace, ROOT_NAMESPACE])]) {
    let best: DestinationRule | undefined;
    let bestScore = -1;
    for (const dr of drs) {
      if (dr.namespace !== ns || !visibleTo(dr, clientNs)) continue;
      const score = hostMatch(dr.host, dr.namespace, target);
      if (score > bestScore) {
        best = dr;
        bestScore = score;
      }
    }
    if (best) return best;
  }
  return undefined;
}

export interface ResolvedTls {
  mode: ClientTlsMode;
  /** DestinationRule tls.subjectAltNames, when given. */
  subjectAltNames?: string[];
  credentialName?: string;
}

function resolveTls(model: IstioModel, clientNs: string, svc: { name: string; namespace: string }, subset?: string): ResolvedTls {
  const dr = destinationRuleFor(model, clientNs, svc);
  if (!dr) {
    if (subset) throw new UserError(`subset ${subset} of ${fqdn(svc)}: no DestinationRule defines it`);
    return { mode: 'AUTO' };
  }
  let tls = dr.tls;
  if (subset) {
    const s = dr.subsets.find((x) => x.name === subset);
    if (!s) throw new UserError(`${dr.source}: DestinationRule ${dr.name}: has no subset ${subset}`);
    // A subset's trafficPolicy replaces the top-level one for that subset.
    if (s.tls) tls = s.tls;
  }
  if (!tls) return { mode: 'AUTO' };
  const out: ResolvedTls = { mode: tls.mode };
  if (tls.subjectAltNames) out.subjectAltNames = tls.subjectAltNames;
  if (tls.credentialName) out.credentialName = tls.credentialName;
  return out;
}

/** The TLS mode a client sidecar uses toward a service (subset): DestinationRule, else AUTO (auto-mTLS). */
export function clientTls(model: IstioModel, from: { namespace: string }, svc: { name: string; namespace: string }, subset?: string): ClientTlsMode {
  return resolveTls(model, from.namespace, svc, subset).mode;
}

/** The VirtualService that sidecars (gateway `mesh`) in `clientNs` apply to a service: the oldest visible one. */
export function virtualServiceFor(model: IstioModel, clientNs: string, svc: { name: string; namespace: string }): VirtualService | undefined {
  const target = fqdn(svc);
  return virtualServices(model).find(
    (vs) => visibleTo(vs, clientNs) && (vs.gateways.length === 0 || vs.gateways.includes('mesh')) && vs.hosts.some((h) => hostMatch(h, vs.namespace, target) >= 0),
  );
}

// ---------------------------------------------------------------------------------------------
// Pods, services, topology

/** The oracle's protocol of a Service port (protocolSelection): declared HTTP, else TCP (a sniffed port's rows are tcp-server-first calls). */
export function portProtocol(p: ServicePortDef): 'http' | 'tcp' {
  return protocolSelection(p) === 'http' ? 'http' : 'tcp';
}

/** The pods the Deployments become: `<deploy>` for one replica, `<deploy>-1..n` for more. */
export function meshPods(model: IstioModel): MeshPod[] {
  const out: MeshPod[] = [];
  for (const d of deployments(model)) {
    const gateway = isGatewayDeployment(d);
    const injected = gateway || isInjected(model, d);
    const labels: Labels = { ...d.labels };
    if (injected && !gateway) labels[TLS_MODE_LABEL] = 'istio';
    for (let i = 1; i <= d.replicas; i++) {
      const name = d.replicas > 1 ? `${d.name}-${i}` : d.name;
      out.push({ name, namespace: d.namespace, key: `${d.namespace}/${name}`, labels, serviceAccount: d.serviceAccountName ?? 'default', injected, gateway, deployment: d });
    }
  }
  return out;
}

export function podsOf(model: IstioModel, svc: Service, pods: MeshPod[] = meshPods(model)): MeshPod[] {
  return pods.filter((p) => p.namespace === svc.namespace && selects(svc.selector, p.labels));
}

export function findService(model: IstioModel, name: string, namespace = 'default'): Service {
  const s = services(model).find((x) => x.name === name && x.namespace === namespace);
  if (!s) throw new UserError(`no Service ${namespace}/${name} in the Istio model`);
  return s;
}

/** The workshop's app image (michaelvl/istio-katas) or anything configured like it. */
function isSentences(d: Deployment): boolean {
  const image = d.image ?? '';
  return image.includes('istio-katas') || image.includes('sentences') || 'SENTENCE_MODE' in d.env || 'mode' in d.labels;
}

/** Istio's test echo app (pkg/test/framework/components/echo, image gcr.io/istio-testing/app). */
function isIstioEcho(d: Deployment): boolean {
  return /(^|\/)istio-testing\/app(:|@|$)/.test(d.image ?? '');
}

function containerOf(d: Deployment): ContainerSpec[] {
  // The probe agent is the client: sleep pods need no program of their own; a gateway's only process is its proxy.
  if (d.name.startsWith('sleep') || isGatewayDeployment(d)) return [];
  if (isIstioEcho(d)) {
    // one meshproof echo server per declared containerPort (the echo app serves every port it is given)
    if (d.containerPorts.length === 0) throw new UserError(`${d.source}: Deployment ${d.name}: the echo app needs containers[0].ports`);
    // the program of each port by its name (workloads/istio-echo.ts; resources.ts reads no args)
    return d.containerPorts.map(({ containerPort: port, name }): ContainerSpec => {
      const p = istioEchoPort(port, name, d.name);
      return { name: `app-${port}`, ...p, ready: p.workload === 'echo' ? { kind: 'http', port, path: '/' } : { kind: 'tcp', port } };
    });
  }
  if (isSentences(d)) {
    const env = Object.fromEntries(Object.entries(d.env).filter(([k]) => k.startsWith('SENTENCE_')));
    return [{ name: 'app', workload: 'sentences', args: ['--port', '5000'], env, ready: { kind: 'http', port: 5000, path: '/echo' } }];
  }
  throw new UserError(
    `${d.source}: Deployment ${d.name}: meshproof cannot run image ${JSON.stringify(d.image ?? '')}: the istio profile runs the sentences app (image istio-katas/sentences or env SENTENCE_MODE), Istio's echo app (gcr.io/istio-testing/app) or a sleep* client`,
  );
}

/** Deployments → pods, Services → services. The sidecar container is not added here (the profile glue does that). */
export function toTopology(model: IstioModel, name = 'istio'): Topology {
  const pods: PodSpec[] = meshPods(model).map((p) => {
    const spec: PodSpec = { name: p.name, namespace: p.namespace, serviceAccount: p.serviceAccount, labels: { ...p.labels }, containers: containerOf(p.deployment) };
    if (Object.keys(p.deployment.annotations).length > 0) spec.annotations = { ...p.deployment.annotations };
    return spec;
  });
  const svcs: ServiceSpec[] = services(model).map((s) => ({
    name: s.name,
    namespace: s.namespace,
    selector: { ...s.selector },
    ports: s.ports.map((p) => {
      const out: ServiceSpec['ports'][number] = { port: p.port, targetPort: p.targetPort };
      if (p.name !== undefined) out.name = p.name;
      if (p.appProtocol !== undefined) out.appProtocol = p.appProtocol;
      return out;
    }),
  }));
  return { name, pods, services: svcs };
}

// ---------------------------------------------------------------------------------------------
// Sidecar plans

export interface PlanInputs {
  /** IP of a pod by key `<ns>/<name>` (the substrate decides it). */
  podIp(podKey: string): string;
  /** ClusterIP of a service by key `<ns>/<name>`. */
  serviceVip(svcKey: string): string;
  /** File paths of a pod's identity, readable by uid 1337. */
  certs(podKey: string): { cert: string; key: string; ca: string };
  /** Files of a Gateway server's credentialName (cert, key, and the cacert that MUTUAL verifies clients with). */
  credential(namespace: string, name: string): { cert: string; key: string; cacert: string };
}

/** Server hosts are `[namespace/]host`; `*` and `.` namespaces mean any and the Gateway's own (gateway.go). */
function serverHost(gw: { source: string; name: string }, h: string): string {
  const i = h.indexOf('/');
  if (i < 0) return h;
  const ns = h.slice(0, i);
  if (ns !== '*' && ns !== '.') throw new UserError(`${gw.source}: Gateway ${gw.name}: host ${h}: a namespace-scoped server host is not implemented by meshproof's istio profile`);
  return h.slice(i + 1);
}

const hostCovers = (pattern: string, host: string): boolean =>
  pattern === '*' || pattern === host || (pattern.startsWith('*.') && host.endsWith(pattern.slice(1)));

/** The Gateway servers a gateway pod serves and the VirtualServices bound to them (gateway.go, virtualservice binding by `<ns>/<name>`). */
function gatewayServers(model: IstioModel, pod: MeshPod, io: PlanInputs): GatewayServerPlan[] {
  const out: GatewayServerPlan[] = [];
  const podServices = services(model).filter((svc) => svc.namespace === pod.namespace && selects(svc.selector, pod.labels));
  for (const gw of gateways(model).filter((g) => selects(g.selector, pod.labels))) {
    const bound = virtualServices(model).filter((vs) => vs.gateways.some((g) => g === `${gw.namespace}/${gw.name}` || (g === gw.name && vs.namespace === gw.namespace)));
    for (const server of gw.servers) {
      const hosts = server.hosts.map((h) => serverHost(gw, h));
      const svcPort = podServices.flatMap((svc) => svc.ports).find((p) => p.port === server.port.number);
      const virtualHosts = bound
        .filter((vs) => vs.hosts.some((h) => hosts.some((p) => hostCovers(p, h))))
        .map((vs) => ({ name: `${vs.namespace}/${vs.name}`, domains: vs.hosts.flatMap((h) => [h, `${h}:*`]), route: gatewayRoute(model, vs) }));
      const plan: GatewayServerPlan = { bindPort: svcPort?.targetPort ?? server.port.number, protocol: server.port.protocol as 'HTTP' | 'HTTPS', hosts, virtualHosts };
      if (server.tls) {
        const c = io.credential(pod.namespace, server.tls.credentialName);
        plan.tls = server.tls.mode === 'MUTUAL' ? { mode: 'MUTUAL', cert: c.cert, key: c.key, cacert: c.cacert } : { mode: 'SIMPLE', cert: c.cert, key: c.key };
      }
      out.push(plan);
    }
  }
  return out;
}

/** A gateway-bound VirtualService's first http rule as weighted service destinations. */
function gatewayRoute(model: IstioModel, vs: VirtualService): GatewayServerPlan['virtualHosts'][number]['route'] {
  const where = `${vs.source}: VirtualService ${vs.name}`;
  const rule = vs.http[0];
  if (!rule) throw new UserError(`${where}: a gateway VirtualService needs an http route`);
  return rule.route.map((d) => {
    const svc = services(model).find((x) => hostMatch(d.host, vs.namespace, fqdn(x)) === 10_000);
    if (!svc) throw new UserError(`${where}: destination host ${d.host} is not a Service in the model`);
    const port = d.port ?? (svc.ports.length === 1 ? svc.ports[0]!.port : undefined);
    if (port === undefined) throw new UserError(`${where}: destination ${d.host} has several ports: name one (destination.port.number)`);
    return { fqdn: fqdn(svc), port, subset: d.subset ?? '', weight: d.weight ?? (rule.route.length === 1 ? 100 : 0) };
  });
}

function inboundPorts(model: IstioModel, pod: MeshPod): InboundPort[] {
  const byPort = new Map<number, InboundPort>();
  for (const svc of services(model)) {
    if (svc.namespace !== pod.namespace || !selects(svc.selector, pod.labels)) continue;
    for (const p of svc.ports) {
      // what istiod renders the port as: a port that declares nothing Istio knows is sniffed (auto)
      const protocol = protocolSelection(p);
      const had = byPort.get(p.targetPort);
      if (had) {
        if (protocol === 'http') had.protocol = 'http';
        if (declaresHttp2(p)) had.http2 = true;
        continue;
      }
      const port: InboundPort = { port: p.targetPort, mode: effectiveMtls(model, pod, p.targetPort), protocol };
      if (declaresHttp2(p)) port.http2 = true;
      byPort.set(p.targetPort, port);
    }
  }
  // Port-level mTLS also holds on workload ports no service names (they get their own passthrough chain).
  const wl = levels(model, pod).workload;
  for (const port of Object.keys(wl?.portLevelMtls ?? {}).map(Number)) {
    if (!byPort.has(port)) byPort.set(port, { port, mode: effectiveMtls(model, pod, port), protocol: 'tcp' });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

function subsetPlan(model: IstioModel, client: MeshPod, svc: Service, endpoints: Endpoint[], name: string): OutboundSubset {
  const tls = resolveTls(model, client.namespace, svc, name || undefined);
  let mode = tls.mode;
  // Auto-mTLS sends plaintext when the service's namespace/mesh policy is DISABLE (cluster_builder auto-mTLS hint).
  if (mode === 'AUTO' && inferServiceMtls(model, svc) === 'DISABLE') mode = 'DISABLE';
  let sans: string[] = [];
  if (tls.subjectAltNames) sans = [...tls.subjectAltNames];
  else if (mode === 'ISTIO_MUTUAL' || mode === 'AUTO') sans = [...new Set(endpoints.filter((e) => mode === 'ISTIO_MUTUAL' || e.istio).map((e) => e.identity))].sort();
  return { name, endpoints, tls: mode, subjectAltNames: sans };
}

function routesFor(model: IstioModel, client: MeshPod, svc: Service, port: ServicePortDef, subsetNames: string[]): WeightedRoute[] {
  const vs = virtualServiceFor(model, client.namespace, svc);
  if (!vs || vs.http.length === 0) return [];
  const where = `${vs.source}: VirtualService ${vs.name}`;
  // Without `match` (not implemented) the first http rule takes all traffic.
  const rule = vs.http[0];
  const target = fqdn(svc);
  const routes = rule.route.map((d): WeightedRoute => {
    if (hostMatch(d.host, vs.namespace, target) !== 10_000) throw new UserError(`${where}: a route to another host (${d.host}) is not implemented by meshproof's istio profile`);
    if (d.port !== undefined && !svc.ports.some((p) => p.port === d.port)) throw new UserError(`${where}: destination port ${d.port} is not a port of Service ${svc.name}`);
    if (d.port !== undefined && svc.ports.length > 1 && d.port !== port.port) {
      throw new UserError(`${where}: routing port ${port.port} to port ${d.port} is not implemented by meshproof's istio profile`);
    }
    const subset = d.subset ?? '';
    if (subset && !subsetNames.includes(subset)) throw new UserError(`${where}: subset ${subset} is not defined by a DestinationRule for ${svc.name}`);
    return { subset, weight: d.weight ?? (rule.route.length === 1 ? 100 : 0) };
  });
  if (routes.reduce((n, r) => n + r.weight, 0) === 0) throw new UserError(`${where}: route weights add up to 0`);
  return routes;
}

/** One SidecarPlan per injected pod. Pure: addresses and cert paths come from `io`. */
export function buildPlans(model: IstioModel, io: PlanInputs): SidecarPlan[] {
  const pods = meshPods(model);
  const plans: SidecarPlan[] = [];
  for (const pod of pods.filter((p) => p.injected)) {
    const outbound: OutboundService[] = [];
    for (const svc of services(model)) {
      const members = podsOf(model, svc, pods);
      const dr = destinationRuleFor(model, pod.namespace, svc);
      for (const port of svc.ports) {
        const endpoints: Endpoint[] = members.map((m) => ({
          ip: io.podIp(m.key),
          port: port.targetPort,
          labels: { ...m.labels },
          // EDS drops the tlsMode=istio metadata of an endpoint whose own workload policy on this port is
          // DISABLE, so auto-mTLS sends it plaintext (xds/endpoints/mtls_checker.go checkMtlsEnabled).
          istio: m.labels[TLS_MODE_LABEL] === 'istio' && effectiveMtls(model, m, port.targetPort) !== 'DISABLE',
          identity: spiffeId(m.namespace, m.serviceAccount),
        }));
        const subsets: OutboundSubset[] = [subsetPlan(model, pod, svc, endpoints, '')];
        for (const s of dr?.subsets ?? []) subsets.push(subsetPlan(model, pod, svc, endpoints.filter((e) => selects(s.labels, e.labels)), s.name));
        const protocol = protocolSelection(port);
        // http routes apply to declared HTTP and to sniffed HTTP on an auto port (its HCM chain)
        const routes = protocol !== 'tcp' ? routesFor(model, pod, svc, port, subsets.map((s) => s.name)) : [];
        const out: OutboundService = { fqdn: fqdn(svc), vip: io.serviceVip(`${svc.namespace}/${svc.name}`), port: port.port, protocol, subsets, routes };
        if (declaresHttp2(port)) out.http2 = true;
        outbound.push(out);
      }
    }
    const plan: SidecarPlan = {
      pod: pod.name,
      namespace: pod.namespace,
      identity: spiffeId(pod.namespace, pod.serviceAccount),
      inbound: pod.gateway ? [] : inboundPorts(model, pod),
      defaultMode: effectiveMtls(model, pod),
      outbound,
      certs: io.certs(pod.key),
    };
    if (pod.gateway) plan.gateway = { servers: gatewayServers(model, pod, io) };
    plans.push(plan);
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------
// Cells: what the oracle needs to know about one call

/**
 * The oracle's input for a call from a Deployment's pod to a Service port (optionally routed to
 * one DestinationRule subset). Every endpoint it may reach must agree on sidecar, mode and
 * identity, else the cell is ambiguous and this throws: name a subset.
 */
export function cellFor(model: IstioModel, from: string, to: { service: string; namespace?: string; port: number; subset?: string }, kind: ClientKind = 'plaintext'): IstioCell {
  const pods = meshPods(model);
  const client = pods.find((p) => p.name === from || p.deployment.name === from);
  if (!client) throw new UserError(`no pod or Deployment ${from} in the Istio model`);
  if (kind !== 'plaintext' && client.injected) throw new UserError(`${from} has a sidecar: a ${kind} caller is a pod without one originating TLS itself (choose a Deployment with sidecar.istio.io/inject: "false")`);
  const svc = findService(model, to.service, to.namespace ?? client.namespace);
  const port = svc.ports.find((p) => p.port === to.port);
  if (!port) throw new UserError(`Service ${svc.name} has no port ${to.port}`);
  let targets = podsOf(model, svc, pods);
  const tls = client.injected ? resolveTls(model, client.namespace, svc, to.subset) : { mode: 'AUTO' as ClientTlsMode };
  if (to.subset) {
    const s = destinationRuleFor(model, client.namespace, svc)?.subsets.find((x) => x.name === to.subset);
    if (!s) throw new UserError(`no DestinationRule subset ${to.subset} for ${svc.name} visible from ${client.key}`);
    targets = targets.filter((p) => selects(s.labels, p.labels));
  }
  if (targets.length === 0) throw new UserError(`${svc.name}${to.subset ? ` subset ${to.subset}` : ''} has no endpoints`);
  const one = <T>(what: string, f: (p: MeshPod) => T): T => {
    const values = [...new Set(targets.map(f))];
    if (values.length > 1) throw new UserError(`${svc.name}: endpoints differ in ${what} (${values.join(', ')}): name a subset`);
    return values[0];
  };
  const cell: IstioCell = {
    fromSidecar: client.injected,
    toSidecar: one('sidecar', (p) => p.injected),
    serverMode: one('mTLS mode', (p) => effectiveMtls(model, p, port.targetPort)),
    clientTls: tls.mode,
    inferredServiceMode: inferServiceMtls(model, svc),
    protocol: portProtocol(port),
  };
  if (kind !== 'plaintext') cell.client = kind;
  if (tls.subjectAltNames) {
    const sans = tls.subjectAltNames;
    cell.sanMatches = targets.every((p) => sans.includes(spiffeId(p.namespace, p.serviceAccount)));
  }
  return cell;
}
