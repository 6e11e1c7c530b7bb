// The Cloud Foundry profile glue: app instances as Diego containers with the executor's Envoy
// sidecar (SDS files, instance identity certificates), a tcp-router (real HAProxy, master-worker,
// reloaded like cf-tcp-router's configurer) and a front router (real Envoy with gorouter's route
// integrity), on the substrate. A profile never spawns a process, opens a socket or touches the host's files: it asks
// the substrate to start containers, run commands in pods (`haproxy -c`, HAProxy's CLIs) and write and read files.
import { join } from 'node:path';
import type { UpOptions } from '../../substrate/index.ts';
import type { Cluster } from '../../substrate/types.ts';
import { upCluster } from '../../substrate/index.ts';
import { CertificateAuthority, issueInstanceIdentity, PodPkiStore, type IdentityPaths, type IssuedCert, type LeafSpec } from '../../pki/index.ts';
import { forEveryPod } from '../files.ts';
import { requireTools } from '../../cli/doctor.ts';
import { envoyBinary, envoyContainer, envoyStat } from '../envoy.ts';
import { UserError } from '../../model/errors.ts';
import { pollUntil } from '../../substrate/poll.ts';
import { renderDiegoSdsFiles, renderDiegoSidecar } from '../../dataplane/envoy/diego.ts';
import { renderFrontRouter, type FrontRoute } from '../../dataplane/envoy/front-router.ts';
import { buildHaproxyConfig, formatLager, haproxyBaseConfig, validateBackendTls, type LagerLog } from '../../dataplane/haproxy/tcp-router.ts';
import { emitTcpRoute, type TcpMappingEntity } from '../../model/cf/routes.ts';
import { DefaultHTTPPort } from '../../model/cf/diego.ts';
import { parseYamlFile } from '../../substrate/topology.ts';
import {
  CF_NAMESPACE,
  DEFAULT_CELL,
  DEFAULT_TCP_ROUTER_GROUP,
  GOROUTER,
  TCP_ROUTER,
  findInstance,
  instances,
  internalRoute,
  parseTcpRouterProperties,
  toCfTopology,
  type CellOptions,
  type CfInstance,
  type CfModel,
  type CfTopologyExtras,
  type TcpRouterProperties,
} from './model.ts';

export const TCP_ROUTER_KEY = `${CF_NAMESPACE}/${TCP_ROUTER}`;
export const GOROUTER_KEY = `${CF_NAMESPACE}/${GOROUTER}`;
/** tcp_router.health_check_port (job spec default 80). */
export const TCP_ROUTER_HEALTH_PORT = 80;
/** gorouter's HTTP port. */
export const GOROUTER_PORT = 80;
const GOROUTER_ADMIN = 8082;
/** The router SANs cf-deployment gives router backend client certs (verify_subject_alt_name). */
export const TCP_ROUTER_SAN = 'tcp-router.service.cf.internal';
export const GOROUTER_SAN = 'gorouter.service.cf.internal';

/** A tcp-router configuration that was applied: its HAProxy text and the lager lines it logged. */
export interface TcpRouterApplied {
  config: string;
  logs: LagerLog[];
}

export interface CfStartOptions extends UpOptions, CfTopologyExtras {
  cell?: Partial<CellOptions>;
  envoyVersion?: string;
}

/** An instance's credentials as the executor's credmanager made them, and where they are written for its pod. */
export interface InstanceCredentials {
  /** The instance identity (CF_INSTANCE_CERT / CF_INSTANCE_KEY): route-integrity ports, and what the egress proxy presents. */
  identity: IssuedCert;
  /** The C2C certificate (61443 and 62443): DNS SANs guid + internal route. */
  c2c: IssuedCert;
  /** The identity's files (cert, key, CA) in the run's PKI directory, readable inside pods: the app's CF_INSTANCE_CERT/KEY. */
  files: IdentityPaths;
}

export class CfFoundation {
  /** The run's PKI directory (certificates and keys the pods read), written for every pod. */
  private readonly pki: PodPkiStore;
  private readonly dir: string;
  private readonly vars: Record<string, string> = {};
  private gorouterClient!: IdentityPaths;
  private otherCaPath!: string;
  private haproxyStarted = false;
  /** haproxy.cfg exists: the next configuration backs it up first. */
  private haproxyConfigured = false;
  private readonly credentials = new Map<string, InstanceCredentials>();
  /** The tcp-router's lager lines so far (its log file is rewritten with each configuration). */
  private readonly lager: string[] = [];

  private constructor(
    readonly cluster: Cluster,
    readonly model: CfModel,
    readonly cell: CellOptions,
    private readonly ca: CertificateAuthority,
    private readonly otherCa: CertificateAuthority,
    private readonly envoyBin: string,
  ) {
    this.pki = new PodPkiStore(join(cluster.stateDir, 'pki'), forEveryPod(cluster));
    this.dir = join(cluster.stateDir, 'cf');
  }

  /** Starts the topology, the app instances' Envoy sidecars, and writes the credentials routers use. */
  static async start(model: CfModel, opts: CfStartOptions = {}): Promise<CfFoundation> {
    const envoyBin = envoyBinary(opts.envoyVersion);
    await requireTools(['haproxy']);
    const cell = { ...DEFAULT_CELL, ...opts.cell };
    const cluster = await upCluster(toCfTopology(model, cell, { runningEnvironment: opts.runningEnvironment, extraPods: opts.extraPods, routesMappedLater: opts.routesMappedLater }), opts);
    try {
      const f = new CfFoundation(cluster, model, cell, await CertificateAuthority.create('diego-instance-identity'), await CertificateAuthority.create('other-ca'), envoyBin);
      await f.init();
      return f;
    } catch (e) {
      await cluster.down();
      throw e;
    }
  }

  private async init(): Promise<void> {
    await this.pki.writeCa(this.ca);
    this.otherCaPath = await this.pki.writeCa(this.otherCa);
    const router = await this.routerCert('tcp-router-backend-tls', TCP_ROUTER_SAN);
    this.gorouterClient = await this.writeCredential(await this.routerCert('gorouter-backend-tls', GOROUTER_SAN));
    // credhub variable names cf-deployment uses; the tcp-router's files are rendered from them
    Object.assign(this.vars, {
      'diego_instance_identity_ca.certificate': this.ca.certPem,
      'other_ca.certificate': this.otherCa.certPem,
      'tcp_router_backend_tls.certificate': router.certPem,
      'tcp_router_backend_tls.private_key': router.keyPem,
    });
    await Promise.all(instances(this.model, this.cell).map((inst) => this.startSidecar(inst)));
  }

  /** A router's backend client certificate: CN and DNS SAN = its service name (cf-deployment). */
  private routerCert(name: string, san: string): Promise<IssuedCert> {
    return this.ca.issue(name, { subject: { CN: san }, dns: [san], eku: ['clientAuth'] });
  }

  /** The credhub-style variables tcp_router job properties may reference. */
  get variables(): Readonly<Record<string, string>> {
    return this.vars;
  }

  instance(app: string, index = 0): CfInstance & { cellIp: string; ip: string } {
    const inst = findInstance(this.model, app, index, this.cell);
    return { ...inst, cellIp: this.cellIp(inst), ip: this.cluster.pod(inst.key).ip };
  }

  /** Every running instance (ports as this foundation's cells allocate them). */
  get instances(): CfInstance[] {
    return instances(this.model, this.cell);
  }

  /** The instance identity and C2C certificates the sidecar of `inst` serves and presents. */
  credentialsOf(inst: Pick<CfInstance, 'key'>): InstanceCredentials {
    const c = this.credentials.get(inst.key);
    if (!c) throw new Error(`no credentials for ${inst.key}: not an app instance of this foundation`);
    return c;
  }

  /**
   * A certificate for tests, issued by the instance identity CA (`ca: 'identity'`, default) or the unrelated CA, and
   * written to the run's PKI directory (keys 0600, gone with the run): e.g. an instance identity that has expired, or
   * one from another CA with the same subject.
   */
  async issueCredential(name: string, spec: LeafSpec, ca: 'identity' | 'other' = 'identity'): Promise<{ cert: IssuedCert; files: IdentityPaths }> {
    const cert = await (ca === 'other' ? this.otherCa : this.ca).issue(name, spec);
    return { cert, files: await this.writeCredential(cert) };
  }

  /**
   * Writes a credential to the run's PKI directory, for every pod (suites present it from any caller): `<name>.crt`,
   * `<name>.ca.crt` (0644), `<name>.key` and `<name>.pem` (cert + key; 0600), as pki/store.ts lays them out.
   */
  writeCredential(cert: IssuedCert): Promise<IdentityPaths> {
    return this.pki.writeIdentity(cert);
  }

  /**
   * The TCP route route-emitter sends for an instance's web port (8080) on `externalPort`: with
   * `tcp.enable_tls` (the default here) backend_tls_port = its Envoy port for 8080 and instance_id =
   * its guid; without, -1 and "".
   */
  tcpRoute(externalPort: number, app: string, index = 0, opts: { enableTls?: boolean } = {}): TcpMappingEntity {
    const inst = this.instance(app, index);
    const envoy = inst.mappings.find((m) => m.appPort === DefaultHTTPPort && m.kind === 'route-integrity');
    if (!envoy) throw new Error(`${app}/${index} has no route-integrity Envoy port for ${DefaultHTTPPort}`);
    return emitTcpRoute(
      { routerGroupGuid: DEFAULT_TCP_ROUTER_GROUP, externalPort, hostIp: inst.cellIp, hostPort: DefaultHTTPPort, tlsProxyPort: envoy.proxyPort, instanceGuid: inst.guid },
      { enableTls: opts.enableTls ?? true },
    );
  }

  /** tcp_router job properties from a file (fixtures/cf/tcp-router/*.yml), resolved against this run's credentials. */
  tcpRouterProperties(file: string): TcpRouterProperties {
    return parseTcpRouterProperties(parseYamlFile(file), file, this.vars);
  }

  cellIp(inst: CfInstance): string {
    const svc = this.cluster.services.get(`${CF_NAMESPACE}/${inst.cell}`);
    if (!svc) throw new Error(`cell ${inst.cell} is not running`);
    return svc.vip;
  }

  get tcpRouterIp(): string {
    return this.cluster.pod(TCP_ROUTER_KEY).ip;
  }

  get gorouterIp(): string {
    return this.cluster.pod(GOROUTER_KEY).ip;
  }

  /** CA file trusting the instance identity CA, and one of an unrelated CA (for "wrong CA" checks). */
  get caFiles(): { identity: string; other: string } {
    return { identity: join(this.pki.dir, 'diego-instance-identity-ca.crt'), other: this.otherCaPath };
  }

  // ------------------------------------------------------------------------ Diego cell

  /**
   * The executor's credmanager + proxy config handler: an instance identity certificate (CN and DNS SAN
   * = instance guid, IP SAN = container IP, OUs app/space/org), a C2C certificate (DNS SANs guid +
   * internal route), SDS files written .tmp then renamed, and the Envoy sidecar.
   */
  private async startSidecar(inst: CfInstance): Promise<void> {
    const pod = this.cluster.pod(inst.key);
    const id = await issueInstanceIdentity(this.ca, { instanceGuid: inst.guid, appGuid: inst.app.guid, spaceGuid: this.model.space, orgGuid: this.model.organization, ip: pod.ip });
    const c2c = await this.ca.issue(`${inst.guid}-c2c`, {
      subject: { CN: inst.guid, OU: [`organization:${this.model.organization}`, `space:${this.model.space}`, `app:${inst.app.guid}`] },
      dns: [inst.guid, internalRoute(inst.app)],
      eku: ['clientAuth', 'serverAuth'],
    });
    this.credentials.set(inst.key, { identity: id, c2c, files: await this.writeCredential(id) });
    // 62443 validates callers, and the egress proxy validates 62443 servers, against the instance identity CA
    const rfc = this.cell.enableC2cMtlsListener || this.cell.enableEgressProxy;
    const sdsDir = join(this.dir, inst.pod, 'sds');
    const files = renderDiegoSdsFiles({
      instanceIdentity: { cert: id.certPem + id.caPem, key: id.keyPem },
      c2c: { cert: c2c.certPem + c2c.caPem, key: c2c.keyPem },
      trustedCaCertificates: [this.ca.certPem],
      verifySubjectAltName: this.cell.verifySubjectAltName,
      ...(rfc ? { instanceIdentityCa: [this.ca.certPem] } : {}),
    });
    // the SDS files hold private keys: 0600, in the run's state, removed with it; each written aside, then renamed
    for (const [name, text] of Object.entries(files)) await this.cluster.writeFile(inst.key, join(sdsDir, name), text);
    const config = renderDiegoSidecar({
      instanceGuid: inst.guid,
      containerIp: pod.ip,
      mappings: inst.mappings,
      adminPort: inst.adminPort,
      enableHttp2: this.cell.enableHttp2,
      requireAndVerifyClientCertificates: this.cell.requireAndVerifyClientCertificates,
      sdsDir,
      ...(this.cell.enableEgressProxy ? { egressProxy: { internalDomains: this.cell.internalDomains } } : {}),
    });
    const file = join(this.dir, inst.pod, 'envoy.yaml');
    await this.cluster.writeFile(inst.key, file, config);
    await this.cluster.startContainer(inst.key, envoyContainer(this.envoyBin, file, inst.adminPort, { name: 'envoy' }));
  }

  /** A counter from an instance's Envoy admin API (e.g. its service cluster's upstream_cx_total). */
  envoyStat(inst: CfInstance, name: RegExp): Promise<number> {
    return envoyStat(this.cluster, inst.key, inst.adminPort, name);
  }

  // ------------------------------------------------------------------------ tcp-router

  /**
   * cf-tcp-router with these job properties and this routing table: backend_tls is checked before
   * anything starts (a bad configuration throws, HAProxy untouched); the files the BOSH templates
   * render are written; the config is base + marshalled routes, written as haproxy_configurer does
   * (backup to .bak, write .tmp), checked with `haproxy -c` inside the tcp-router pod, then put in place, and HAProxy
   * is started or reloaded (master-worker SIGUSR2: established connections stay on the old worker). The lager
   * lines go to logs/cf_tcp-router/tcp-router.log.
   */
  async configureTcpRouter(props: TcpRouterProperties, routes: TcpMappingEntity[]): Promise<TcpRouterApplied> {
    validateBackendTls(props.backendTls, props.files);
    const pod = TCP_ROUTER_KEY;
    const dir = join(this.dir, 'tcp-router');
    const caFile = join(dir, 'backend', 'ca.crt');
    const clientPemFile = join(dir, 'backend', 'client_cert_and_key.pem');
    if (props.files.ca !== undefined) await this.cluster.writeFile(pod, caFile, props.files.ca, { mode: 0o644 });
    if (props.files.clientCertAndKey !== undefined) await this.cluster.writeFile(pod, clientPemFile, props.files.clientCertAndKey);
    const { text, logs } = buildHaproxyConfig(routes, props.backendTls, { caFile, clientPemFile });
    const config = haproxyBaseConfig({ statsSocket: join(dir, 'stats.sock'), requestTimeoutSeconds: 300, healthPort: TCP_ROUTER_HEALTH_PORT, logStdout: true }) + text;
    const cfg = join(dir, 'haproxy.cfg');
    if (this.haproxyConfigured) await this.cluster.writeFile(pod, `${cfg}.bak`, await this.cluster.readFile(pod, cfg));
    await this.cluster.writeFile(pod, `${cfg}.tmp`, config);
    const check = await this.cluster.exec(pod, ['haproxy', '-c', '-q', '-f', `${cfg}.tmp`], { timeoutMs: 30_000 });
    if (check.code !== 0) throw new Error(`tcp-router: haproxy rejected the generated config: ${(check.stderr || check.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    await this.cluster.writeFile(pod, cfg, config);
    this.haproxyConfigured = true;
    this.lager.push(...logs.map((l) => formatLager(l) + '\n'));
    await this.cluster.writeFile(pod, join(this.cluster.runDir, 'logs', `${CF_NAMESPACE}_${TCP_ROUTER}`, 'tcp-router.log'), this.lager.join(''), { mode: 0o644 });
    const master = join(dir, 'master.sock');
    if (!this.haproxyStarted) {
      await this.cluster.startContainer(TCP_ROUTER_KEY, {
        name: 'haproxy',
        command: ['haproxy', '-W', '-db', '-S', master, '-f', cfg],
        ready: { kind: 'http', port: TCP_ROUTER_HEALTH_PORT, path: '/health' },
      });
      this.haproxyStarted = true;
    } else {
      await reloadHaproxy((command) => this.masterCommand(command), () => this.cluster.signalContainer(TCP_ROUTER_KEY, 'haproxy', 'SIGUSR2'));
    }
    return { config, logs };
  }

  /** The pid of HAProxy's current worker (the container's pid is the master; the worker does the work). */
  async haproxyWorkerPid(): Promise<number> {
    const { workers } = parseShowProc(await this.masterCommand('show proc'));
    if (workers.length !== 1) throw new Error(`tcp-router: expected one HAProxy worker, the master lists ${workers.length}`);
    return workers[0]!;
  }

  get haproxyRunning(): boolean {
    return this.haproxyStarted;
  }

  /**
   * One command on HAProxy's runtime API (the stats socket; HAProxy 2.6 management.txt), sent from inside the tcp-router
   * pod: HAProxy's own account of what it loaded, e.g. `show servers state`.
   */
  async haproxyRuntime(command: string): Promise<string> {
    if (!this.haproxyStarted) throw new Error(`tcp-router: HAProxy is not running; no runtime API to ask "${command}"`);
    return this.socketCommand('stats.sock', 'runtime API', command, 10_000);
  }

  /** One command on HAProxy's master CLI (`-S master.sock`), sent from inside the tcp-router pod; resolves with its answer. */
  private masterCommand(command: string): Promise<string> {
    return this.socketCommand('master.sock', 'master CLI', command, 5_000);
  }

  /**
   * A command on one of HAProxy's Unix sockets, by a node one-liner run in the tcp-router pod (the pod bundle's node;
   * no socat there): it half-closes after the command, and HAProxy answers and hangs up.
   */
  private async socketCommand(socket: string, what: string, command: string, timeoutMs: number): Promise<string> {
    const path = join(this.dir, 'tcp-router', socket);
    const r = await this.cluster.exec(TCP_ROUTER_KEY, [process.execPath, '-e', SOCKET_CLIENT, path, command], { timeoutMs });
    if (r.code !== 0) throw new Error(`tcp-router: HAProxy ${what} "${command}" failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** `show servers state <backend>` parsed: the servers HAProxy runs for it, or null when it has no such backend. */
  async haproxyServers(backend: string): Promise<HaproxyServerState[] | null> {
    return parseServersState(await this.haproxyRuntime(`show servers state ${backend}`));
  }

  /** HAProxy's own output so far (session lines with termination state and backend TLS error). */
  haproxyLog(): Promise<string> {
    return this.cluster.containerLog(TCP_ROUTER_KEY, 'haproxy');
  }

  /** HAProxy's session lines (TCP_LOG_FORMAT) of the frontend on `port`, oldest first; none before HAProxy runs. */
  async haproxySessions(port: number): Promise<string[]> {
    if (!this.haproxyStarted) return [];
    // session lines only: `<client ip:port> [<date>] frontend_<port> …`, not HAProxy's "Proxy frontend_<port> stopped"
    const mine = new RegExp(`^\\S+ \\[[^\\]]*\\] frontend_${port} `);
    return (await this.haproxyLog()).split('\n').filter((l) => mine.test(l));
  }

  /**
   * The session lines of `port` after the first `seen`, waiting up to `timeoutMs` for one: HAProxy
   * logs a session when it ends, a moment after the client saw the close. Empty when none came.
   */
  async newHaproxySessions(port: number, seen: number, timeoutMs: number): Promise<string[]> {
    // none within the time is an answer too (a refused call has no session): the last reading is returned
    let lines: string[] = [];
    await pollUntil(async () => {
      lines = await this.haproxySessions(port);
      return lines.length > seen ? true : undefined;
    }, { timeoutMs, intervalMs: 10, what: `HAProxy's session line for port ${port}` }).catch(() => undefined);
    return lines.slice(seen);
  }

  // ------------------------------------------------------------------------ front router

  /**
   * gorouter with these routes (route-emitter registrations: host, tls_port, server_cert_domain_san),
   * trusting `ca` (default: the instance identity CA) and presenting its backend client certificate
   * unless `clientCert: false`. Restarts the router Envoy.
   */
  async configureGorouter(routes: FrontRoute[], opts: { ca?: 'identity' | 'other'; clientCert?: boolean } = {}): Promise<void> {
    const dir = join(this.dir, 'gorouter');
    const config = renderFrontRouter({
      port: GOROUTER_PORT,
      adminPort: GOROUTER_ADMIN,
      routes,
      backendTls: {
        ca: opts.ca === 'other' ? this.otherCaPath : this.caFiles.identity,
        ...(opts.clientCert === false ? {} : { clientCert: { cert: this.gorouterClient.cert, key: this.gorouterClient.key } }),
      },
    });
    const file = join(dir, 'envoy.yaml');
    await this.cluster.writeFile(GOROUTER_KEY, file, config);
    await this.cluster.stopContainer(GOROUTER_KEY, 'envoy');
    await this.cluster.startContainer(GOROUTER_KEY, envoyContainer(this.envoyBin, file, GOROUTER_ADMIN, { name: 'envoy' }));
  }

  /** Tears the run down; its state (keys, configs) goes with it. */
  async down(): Promise<void> {
    await this.cluster.down();
  }
}

/** A Unix-socket client for HAProxy's CLIs: argv[1] the socket, argv[2] the command; prints the answer. */
const SOCKET_CLIENT = [
  "const c = require('node:net').connect(process.argv[1]); let out = '';",
  "c.on('connect', () => c.end(process.argv[2] + '\\n'));",
  "c.on('data', (d) => (out += d));",
  "c.on('close', () => process.stdout.write(out));",
  "c.on('error', (e) => { console.error(e.message); process.exit(1); });",
].join(' ');

/** A server as HAProxy's `show servers state` lists it. */
export interface HaproxyServerState {
  name: string;
  address: string;
  port: number;
  /** srv_use_ssl: the server line has `ssl` */
  ssl: boolean;
}

/**
 * `show servers state <backend>` (HAProxy 2.6 management.txt: a version line, a `# be_id be_name …` header, one line per
 * server): its servers, or null for "Can't find backend.".
 */
export function parseServersState(text: string): HaproxyServerState[] | null {
  if (/^Can't find backend\./m.test(text)) return null;
  const lines = text.split('\n');
  const h = lines.findIndex((l) => l.startsWith('# '));
  if (h < 0) throw new Error(`show servers state: no header line in ${JSON.stringify(text.slice(0, 200))}`);
  const cols = lines[h]!.slice(2).trim().split(/\s+/);
  const col = (name: string): number => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`show servers state: no ${name} column in ${JSON.stringify(lines[h])}`);
    return i;
  };
  const [name, address, port, ssl] = [col('srv_name'), col('srv_addr'), col('srv_port'), col('srv_use_ssl')];
  return lines.slice(h + 1).filter((l) => l.trim() !== '').map((l) => {
    const f = l.trim().split(/\s+/);
    if (f.length !== cols.length) throw new Error(`show servers state: ${f.length} fields for ${cols.length} columns in ${JSON.stringify(l)}`);
    return { name: f[name]!, address: f[address]!, port: Number(f[port]), ssl: f[ssl] === '1' };
  });
}

/** A TCP session line as HAProxy writes it with TCP_LOG_FORMAT (dataplane/haproxy/tcp-router.ts). */
export interface HaproxySession {
  client: string;
  frontend: string;
  backend: string;
  /** the server's name, `<NOSRV>` when the backend had none to offer */
  server: string;
  bytes: number;
  /** %ts: the termination state, `--` for a normal end, e.g. `SC` when the server side refused */
  termination: string;
  /** %[ssl_bc_err_str]: the backend TLS error, `-` for none */
  sslError: string;
}

/** Parses one session line (`%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts ssl_err=%[ssl_bc_err_str]`). */
export function parseHaproxySession(line: string): HaproxySession {
  const m = /^(\S+) \[[^\]]*\] (\S+) ([^/\s]+)\/(\S+) \S+ (\d+) (\S+) ssl_err=(.*)$/.exec(line.trim());
  if (!m) throw new Error(`not a tcp-router session line: ${JSON.stringify(line)}`);
  return { client: m[1]!, frontend: m[2]!, backend: m[3]!, server: m[4]!, bytes: Number(m[5]), termination: m[6]!, sslError: m[7]! };
}

/** `show proc`: the master's reload count and the pids of the current workers. */
export function parseShowProc(text: string): { reloads: number; workers: number[] } {
  let reloads = -1;
  const workers: number[] = [];
  let section = 'master';
  for (const line of text.split('\n')) {
    if (line.startsWith('# workers')) section = 'workers';
    else if (line.startsWith('# old workers')) section = 'old';
    else if (line.startsWith('#') || line.trim() === '') continue;
    else {
      const [pid, type, count] = line.trim().split(/\s+/);
      if (type === 'master') reloads = Number(count);
      else if (type === 'worker' && section === 'workers') workers.push(Number(pid));
    }
  }
  return { reloads, workers };
}

/** Signals a master-worker reload and waits until the master reports a new reload with a live worker. */
async function reloadHaproxy(masterCommand: (command: string) => Promise<string>, signal: () => void): Promise<void> {
  const before = parseShowProc(await masterCommand('show proc'));
  signal();
  await pollUntil(async () => {
    try {
      const now = parseShowProc(await masterCommand('show proc'));
      return now.reloads > before.reloads && now.workers.length > 0 && !now.workers.some((w) => before.workers.includes(w)) ? true : undefined;
    } catch {
      // the master re-executes itself on reload; its socket comes back
      return undefined;
    }
  }, { timeoutMs: 10_000, intervalMs: 20, what: 'tcp-router reload' }).catch(() => {
    throw new UserError(`tcp-router: HAProxy did not finish reloading within 10 s; see its log`);
  });
}
