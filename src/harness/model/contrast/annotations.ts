// Contrast's service-mesh configuration, read from the pod annotations in Contrast's own string formats, and the
// injection rule of its CLI. Pure: strings in, a ProxyConfig out; a malformed value is a UserError naming the
// annotation and the entry, where Contrast's parser refuses it.
// Sources (edgelesssys/contrast): service-mesh/config.go ParseProxyConfig (fd987523), service-mesh/iptables.go
// (EnvoyIngressPort, a55a200b), internal/kuberesource/mutators.go (needsServiceMesh, AddServiceMesh, AddInitializer,
// PatchServiceMeshAdminInterface), docs architecture/components/service-mesh.md.
import { UserError } from '../errors.ts';

export const INGRESS_ANNOTATION = 'contrast.edgeless.systems/servicemesh-ingress';
export const EGRESS_ANNOTATION = 'contrast.edgeless.systems/servicemesh-egress';
export const ADMIN_ANNOTATION = 'contrast.edgeless.systems/servicemesh-admin-interface-port';
export const MESH_ANNOTATIONS = [INGRESS_ANNOTATION, EGRESS_ANNOTATION, ADMIN_ANNOTATION] as const;

/** Only pods whose runtimeClassName starts with this get the initializer and the service mesh (mutators.go). */
export const CONTRAST_RUNTIME_PREFIX = 'contrast-cc';
/** The ingress value that asks for no TPROXY rules at all (PRs #1673/#1725; docs; parsing code not read [U]). */
export const INGRESS_DISABLED = 'DISABLED';

/** EnvoyIngressPort: every redirected port lands here; a client certificate is required (iptables.go). */
export const ENVOY_INGRESS_PORT = 15006;
/** EnvoyIngressPortNoClientCert: ports with `<name>#<port>#false` land here (iptables.go). */
export const ENVOY_INGRESS_PORT_NO_CLIENT_CERT = 15007;

/** `<name>#<port>#<disableTLS>`: true = no redirect, no TLS; false = TLS without client authentication. */
export interface IngressEntry {
  name: string;
  port: number;
  disableTLS: boolean;
}

/** `<name>#<127.x.y.z>:<port>#<host-or-ip>:<port>`: a listener on the 127.x address, mTLS to the remote. */
export interface EgressEntry {
  name: string;
  listenAddr: string;
  listenPort: number;
  remoteDomain: string;
  remotePort: number;
}

/** ProxyConfig (config.go), plus the DISABLED switch of the ingress annotation. */
export interface ProxyConfig {
  ingress: IngressEntry[];
  /** `DISABLED`: no TPROXY rules; Envoy still runs (egress, admin). */
  ingressDisabled: boolean;
  egress: EgressEntry[];
  /** CONTRAST_ADMIN_PORT: Envoy's admin interface on 0.0.0.0:<port>; none when absent. */
  adminPort?: number;
}

export type Annotations = Record<string, string>;

/** A Kubernetes object's pod template as the CLI's mutators see it. */
export interface PodTemplate {
  runtimeClassName?: string;
  /** spec.template.metadata.annotations (MapPodSpecWithMeta hands the mutators the pod template's metadata). */
  annotations: Annotations;
}

/** Whether the pod runs in a Contrast confidential VM: the CLI adds the initializer (and default deny) only then. */
export function isContrastPod(p: Pick<PodTemplate, 'runtimeClassName'>): boolean {
  return p.runtimeClassName?.startsWith(CONTRAST_RUNTIME_PREFIX) ?? false;
}

/** needsServiceMesh (mutators.go): any of the three annotations present, whatever its value (even ""). */
export function needsServiceMesh(annotations: Annotations): boolean {
  return MESH_ANNOTATIONS.some((k) => Object.hasOwn(annotations, k));
}

/** AddServiceMesh's rule: the sidecar is injected only into contrast-cc pods that carry a mesh annotation. */
export function injectsServiceMesh(p: PodTemplate): boolean {
  return isContrastPod(p) && needsServiceMesh(p.annotations);
}

/**
 * AddInitializer's rule: a contrast-cc pod without mesh annotations gets CONTRAST_SERVICE_MESH_DISABLED=true, and its
 * initializer removes the default-deny rule (there is no sidecar to do it).
 */
export function initializerRemovesDefaultDeny(p: PodTemplate): boolean {
  return isContrastPod(p) && !needsServiceMesh(p.annotations);
}

/**
 * PatchServiceMeshAdminInterface (mutators.go, what the e2e tests apply with 9901): a pod with an ingress or egress
 * annotation gets the admin annotation and `##admin#<port>#true` appended to its ingress value (an absent ingress
 * annotation reads as "", so it becomes `##admin#<port>#true`). Returns new annotations.
 */
export function patchServiceMeshAdminInterface(annotations: Annotations, port: number): Annotations {
  if (!Object.hasOwn(annotations, INGRESS_ANNOTATION) && !Object.hasOwn(annotations, EGRESS_ANNOTATION)) return { ...annotations };
  return { ...annotations, [ADMIN_ANNOTATION]: String(port), [INGRESS_ANNOTATION]: `${annotations[INGRESS_ANNOTATION] ?? ''}##admin#${port}#true` };
}

// ------------------------------------------------------------------------------------------ parsing

/** strconv.ParseBool's accepted spellings. */
const GO_BOOL: Record<string, boolean> = { '1': true, t: true, T: true, TRUE: true, true: true, True: true, '0': false, f: false, F: false, FALSE: false, false: false, False: false };

const DEC_PORT = /^\d{1,5}$/;
/** netip.ParseAddr's IPv4 form: four decimal octets, no leading zeros. */
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A decimal port 1-65535. Go's Atoi + uint16 also takes signs and wraps large values; meshproof refuses them. */
function port(s: string): number | undefined {
  if (!DEC_PORT.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** One-line errors: `<where>: annotation <key>: entry "<entry>": <Contrast's message>: <fix>`. */
class Ctx {
  constructor(
    readonly where: string,
    readonly annotation: string,
  ) {}

  fail(entry: string, msg: string, fix: string): never {
    throw new UserError(`${this.where}: annotation ${this.annotation}: entry ${JSON.stringify(entry)}: ${msg} (Contrast's service mesh refuses it): ${fix}`);
  }
}

/** `<name>#<listen-address>:<port>#<remote-domain>:<port>` entries joined by `##` (ParseProxyConfig). */
export function parseEgress(value: string, where: string): EgressEntry[] {
  const c: Ctx = new Ctx(where, EGRESS_ANNOTATION);
  const out: EgressEntry[] = [];
  for (const entry of value.split('##')) {
    if (entry === '') continue;
    const parts = entry.split('#');
    if (parts.length !== 3) c.fail(entry, `invalid entry: ${entry}`, 'write <name>#<127.x.y.z>:<port>#<host>:<port>, entries joined by ##');
    const [name, listen, remote] = parts as [string, string, string];
    // ToEnvoyConfig's ValidateAll: a cluster needs a name
    if (name === '') c.fail(entry, 'invalid entry: the name is empty', 'give the entry a name: <name>#<127.x.y.z>:<port>#<host>:<port>');
    // netip.ParseAddrPort: <ipv4>:<port> or [<ipv6>]:<port>
    const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
    const v6 = m?.[1] !== undefined;
    const addr = m ? (m[1] ?? m[2]!) : '';
    if (!m || Number(m[3]) > 65535 || (v6 ? !addr.includes(':') : !IPV4.test(addr))) c.fail(entry, `invalid listen address: ${listen}`, 'write the listen address as <127.x.y.z>:<port>');
    if (v6 || !addr.startsWith('127.')) c.fail(entry, `listen address ${addr} is not in local CIDR 127.0.0.1/8`, 'choose a listen address in 127.0.0.0/8');
    // ToEnvoyConfig → addBlackHoleToConfig: "listener %s listens on port 0"
    if (Number(m[3]) === 0) c.fail(entry, `listener ${name} listens on port 0`, 'choose a listen port 1-65535 not used in the pod');
    // Envoy's ingress listeners hold 0.0.0.0:15006 and :15007: an egress listener there cannot bind
    if ([ENVOY_INGRESS_PORT, ENVOY_INGRESS_PORT_NO_CLIENT_CERT].includes(Number(m[3]))) c.fail(entry, `port ${m[3]} is one of Envoy's ingress listeners`, 'choose another listen port');
    // net.SplitHostPort
    const r = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(remote);
    // an empty host passes SplitHostPort but not ValidateAll (a socket address needs one)
    if (!r || (r[1] ?? r[2]) === '') c.fail(entry, `invalid remote domain: ${remote}`, 'write the remote as <host-or-ip>:<port>');
    const remotePort = port(r[3]!);
    if (remotePort === undefined) c.fail(entry, `invalid remote port: ${r[3]}`, 'write the remote port as a number 1-65535');
    out.push({ name, listenAddr: addr, listenPort: Number(m[3]), remoteDomain: (r[1] ?? r[2])!, remotePort });
  }
  // Envoy itself refuses these at startup (the sidecar would crash-loop); Contrast's ValidateAll does not check them
  const names = new Set<string>();
  const listens = new Set<string>();
  for (const e of out) {
    const raw = `${e.name}#${e.listenAddr}:${e.listenPort}#${e.remoteDomain}:${e.remotePort}`;
    if (names.has(e.name)) throw new UserError(`${where}: annotation ${EGRESS_ANNOTATION}: entry ${JSON.stringify(raw)}: a second entry named ${e.name} (Envoy refuses two listeners and clusters of one name): give each entry its own name`);
    if (listens.has(`${e.listenAddr}:${e.listenPort}`)) throw new UserError(`${where}: annotation ${EGRESS_ANNOTATION}: entry ${JSON.stringify(raw)}: ${e.listenAddr}:${e.listenPort} is already another entry's listen address (Envoy cannot bind it twice): choose another address or port`);
    names.add(e.name);
    listens.add(`${e.listenAddr}:${e.listenPort}`);
  }
  return out;
}

/** `<name>#<port>#<disableTLS>` entries joined by `##`; `""` = every port mTLS; `DISABLED` = no TPROXY rules. */
export function parseIngress(value: string, where: string): { entries: IngressEntry[]; disabled: boolean } {
  const c: Ctx = new Ctx(where, INGRESS_ANNOTATION);
  const entries: IngressEntry[] = [];
  let disabled = false;
  for (const entry of value.split('##')) {
    if (entry === '') continue;
    if (entry === INGRESS_DISABLED) {
      disabled = true;
      continue;
    }
    const parts = entry.split('#');
    if (parts.length !== 3) c.fail(entry, `invalid entry: ${entry}`, `write <name>#<port>#<true|false> entries joined by ##, "" for mTLS on every port, or ${INGRESS_DISABLED}`);
    const [name, p, flag] = parts as [string, string, string];
    const listenPort = port(p);
    if (listenPort === undefined) c.fail(entry, `invalid listen port: ${p}`, 'write the port as a number 1-65535');
    const disableTLS = GO_BOOL[flag];
    if (disableTLS === undefined) c.fail(entry, `invalid disable TLS: ${flag}`, 'write true (no TLS, no redirect) or false (TLS without client certificate)');
    entries.push({ name, port: listenPort, disableTLS });
  }
  return { entries, disabled };
}

/** The three annotations of a meshed pod → ProxyConfig (the sidecar's ParseProxyConfig on the env vars they become). */
export function parseProxyConfig(annotations: Annotations, where: string): ProxyConfig {
  const { entries, disabled } = parseIngress(annotations[INGRESS_ANNOTATION] ?? '', where);
  const cfg: ProxyConfig = { ingress: entries, ingressDisabled: disabled, egress: parseEgress(annotations[EGRESS_ANNOTATION] ?? '', where) };
  const admin = annotations[ADMIN_ANNOTATION];
  if (admin !== undefined && admin !== '') {
    const p = port(admin);
    const c: Ctx = new Ctx(where, ADMIN_ANNOTATION);
    if (p === undefined) c.fail(admin, `invalid admin port: ${admin}`, 'write the admin interface port as a number 1-65535');
    if (p === ENVOY_INGRESS_PORT || p === ENVOY_INGRESS_PORT_NO_CLIENT_CERT) c.fail(admin, `port ${p} is one of Envoy's ingress listeners`, 'choose another admin port (the e2e tests use 9901)');
    cfg.adminPort = p;
  }
  return cfg;
}
