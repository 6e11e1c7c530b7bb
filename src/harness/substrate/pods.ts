// What every substrate does the same way once a pod has a probe agent: addresses, the hosts file a pod resolves with,
// the service VIP rules (kube-proxy style DNAT, in whatever namespace routes between the pods), readiness checks from
// inside the pod, and batches of probes proven by one wire-canary sync. Substrates differ only in where these run.
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';
import type { AgentClient } from '../probe/client.ts';
import { newToken, WireCanary, type Canary } from '../probe/canary.ts';
import { pollUntil } from './poll.ts';
import type { ProbeRequest, ProbeResult } from '../probe/types.ts';
import { Supervisor, type Proc } from './supervisor.ts';
import type { ContainerSpec, FileOptions, RunningPod, RunningService } from './types.ts';

/** Gateway address every pod routes through (the node namespace on netns, the run's bridge on docker). */
export const GATEWAY = '10.244.0.1';
export const POD_CIDR = '10.244.0.0/16';
export const SERVICE_CIDR = '10.96.0.0/16';
/** A pod's link to the node, on every substrate (pods' iptables rules name it). */
export const POD_DEV = 'mpeth0';
/** UDP port the wire-canary markers are sent to (discard). */
export const MARKER_PORT = 9;

export function podIp(i: number): string {
  return `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`;
}

export function serviceVip(i: number): string {
  return `10.96.${Math.floor(i / 250)}.${(i % 250) + 10}`;
}

export function matches(selector: Record<string, string>, labels: Record<string, string> = {}): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

/** Pod namespace commands (`ip -batch`): its address as a /32 and routes to the pod and service ranges only (no default route). */
export function podAddrCmds(ip: string, dev: string): string[] {
  return ['link set lo up', `addr add ${ip}/32 dev ${dev}`, `link set ${dev} up`, `route add ${POD_CIDR} via ${GATEWAY} dev ${dev} onlink`, `route add ${SERVICE_CIDR} via ${GATEWAY} dev ${dev} onlink`];
}

/**
 * The pod's veth pair, made in place (`pod`: a namespace name, or a pid whose namespace it is): `mpeth0` in the pod,
 * `mpv<index>` in the namespace that routes between the pods (never in the host's).
 */
export function podLinkCmd(pod: string, index: number, router: string): string {
  return `link add ${POD_DEV} netns ${pod} type veth peer name mpv${index} netns ${router}`;
}

/** Router namespace commands: the gateway address on the pod's veth and a /32 route to the pod. */
export function routerLinkCmds(index: number, ip: string): string[] {
  return [`addr add ${GATEWAY}/32 dev mpv${index}`, `link set mpv${index} up`, `route add ${ip}/32 dev mpv${index}`];
}

/** The hosts file of pod `p`: itself, every service (the short name only in its own namespace), every pod's extra names. */
export function hostsFile(p: RunningPod, services: Iterable<RunningService>, pods: Iterable<RunningPod>): string {
  const lines = ['127.0.0.1 localhost', `${p.ip} ${p.spec.name}`];
  for (const svc of services) {
    const { name, namespace } = svc.spec;
    const names = [`${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
    if (namespace === p.spec.namespace) names.unshift(name);
    lines.push(`${svc.vip} ${names.join(' ')}`);
  }
  for (const other of pods) for (const alias of other.spec.hostAliases ?? []) lines.push(`${other.ip} ${alias}`);
  return lines.join('\n') + '\n';
}

/** No resolver inside a pod: names are the hosts file; a DNS query fails at once on loopback. */
export const RESOLV_CONF = 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n';

/**
 * iptables-restore --noflush text for the service VIPs, in the namespace that routes between pods: declaring a chain
 * flushes it, so this can run again (`jumped`: the PREROUTING jump exists already).
 */
export function serviceRules(services: Iterable<RunningService>, jumped: boolean): string {
  const lines = ['*nat', ':MP-SERVICES - [0:0]'];
  if (!jumped) lines.push('-A PREROUTING -j MP-SERVICES');
  let n = 0;
  for (const svc of services) {
    for (const port of svc.spec.ports) {
      const targets = svc.backends?.[port.port] ?? svc.endpoints.map((ep) => ({ ip: ep.ip, port: port.targetPort }));
      if (targets.length === 0) continue;
      const chain = `MP-SVC-${n++}`;
      lines.push(`:${chain} - [0:0]`);
      lines.push(`-A MP-SERVICES -d ${svc.vip}/32 -p tcp --dport ${port.port} -m comment --comment "${svc.spec.namespace}/${svc.spec.name}:${port.port}" -j ${chain}`);
      targets.forEach((t, i) => {
        const left = targets.length - i;
        const stat = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(5)} ` : '';
        lines.push(`-A ${chain} -p tcp ${stat}-j DNAT --to-destination ${t.ip}:${t.port}`);
      });
    }
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** A started container as the readiness checks see it: its exit code once it exited, and where its output is. */
export interface Started {
  exitCode(): number | null | undefined;
  /** The end of its output, for errors. */
  tail(): Promise<string>;
  /** Where its whole log is (a file, or how to read it). */
  log: string;
}

/** A readiness port that answers before the container exists is another container's: its check would lie. */
export async function assertPortFree(agent: AgentClient | undefined, pod: string, c: ContainerSpec, holderOf: (port: number) => string | undefined): Promise<void> {
  const port = c.ready && c.ready.kind !== 'none' ? c.ready.port : undefined;
  if (port === undefined || !agent) return;
  // only a connection that was accepted says someone listens (an agent slow to answer on a busy machine says nothing)
  if (!(await agent.probe({ protocol: 'tcp', host: '127.0.0.1', port, timeoutMs: 300 })).verdict.startsWith('allowed')) return;
  const holder = holderOf(port);
  throw new Error(`pod ${pod}: container ${c.name}: port ${port} is already taken in the pod${holder ? ` by container ${holder}` : ''}: give each container of a pod its own port`);
}

/** Waits for a container's readiness check, asked from inside its pod by the pod's probe agent. */
export async function waitReady(agent: AgentClient, pod: string, c: ContainerSpec, s: Started, budgetMs: number): Promise<void> {
  const check = c.ready ?? { kind: 'none' as const };
  if (check.kind === 'none') return;
  const req: ProbeRequest =
    check.kind === 'tcp'
      ? { protocol: 'tcp', host: '127.0.0.1', port: check.port, timeoutMs: 300 }
      : { protocol: 'http', host: '127.0.0.1', port: check.port, path: check.path, timeoutMs: 500 };
  let last = '';
  let exited = false;
  try {
    await pollUntil(async () => {
      if (s.exitCode() !== undefined) {
        exited = true;
        throw new Error('exited');
      }
      const r = await agent.probe(req);
      last = r.verdict;
      // a tcp check passes once something accepts on the port (refused or timed out: not yet)
      return (check.kind === 'tcp' ? r.verdict !== 'denied:refused' && r.verdict !== 'denied:timeout' : r.evidence.status === (check.status ?? 200)) ? true : undefined;
    }, { timeoutMs: budgetMs, intervalMs: 25, what: `pod ${pod}: container ${c.name}` });
  } catch (e) {
    if (exited) throw new Error(`pod ${pod}: container ${c.name} exited (code ${s.exitCode()}) before it was ready; log ${s.log}:\n${await s.tail()}`, { cause: e });
    // the agent's own failure (its pod gone) is that, not a slow container
    if (!/: not ready after \d+ ms$/.test((e as Error).message)) throw e;
    throw new Error(`pod ${pod}: container ${c.name} not ready after ${budgetMs} ms (${check.kind} check on port ${check.port}: ${last}); log ${s.log}:\n${await s.tail()}`, { cause: e });
  }
}

/** One line: the pod, the container, its exit code and the end of its log. */
export async function diedAfterStart(pod: string, name: string, s: Started): Promise<string> {
  const tail = (await s.tail()).split('\n').slice(-3).map((l) => l.trim()).filter(Boolean).join(' | ');
  return `pod ${pod}: container ${name} exited (code ${s.exitCode()}) right after it started: ${tail || '(no output)'} (log ${s.log})`;
}

/**
 * Runs many probes concurrently (each from its pod's agent), then one canary sync for all of them: the marker goes from
 * the last caller's pod to the gateway. A sync window in which the capture lost packets says nothing of its unseen
 * tokens: those probes are sent again (with new tokens), up to three times, before the canary gives up.
 */
export async function probeBatch(
  calls: { from: string; req: ProbeRequest }[],
  agentOf: (pod: string) => AgentClient,
  canary: Canary | undefined,
  opts: { wire?: boolean; concurrency?: number } = {},
  /** How the canary's marker is sent (default: from the last caller's agent to the gateway; kind: node to node). */
  sendMarker?: (marker: string) => Promise<void>,
): Promise<ProbeResult[]> {
  if (calls.length === 0) return [];
  const wire = opts.wire !== false && canary !== undefined;
  const results: ProbeResult[] = new Array(calls.length);
  const tokens: string[] = new Array(calls.length);
  let todo = calls.map((_, i) => i);
  for (let attempt = 1; ; attempt++) {
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const i = todo[next++]!;
        const { from, req } = calls[i]!;
        const token = (tokens[i] = attempt === 1 && req.token !== undefined ? req.token : newToken());
        if (wire) canary.watch(token);
        results[i] = await agentOf(from).probe({ ...req, token });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 32, todo.length) }, worker));
    if (!wire) break;
    const marker = `mpmarker-${randomBytes(6).toString('hex')}`;
    const send = sendMarker ?? ((m: string) => agentOf(calls[calls.length - 1]!.from).marker(GATEWAY, MARKER_PORT, m));
    const { lost } = await canary.sync(marker, () => send(marker));
    if (!lost) break;
    todo = todo.filter((i) => !canary.hasSeen(tokens[i]!));
    if (todo.length === 0) break;
    if (attempt === 3) throw new Error(`wire canary: the capture kept dropping packets (${todo.length} probes unproven after 3 attempts); the machine is overloaded`);
    for (const i of todo) canary.forget(tokens[i]!);
  }
  results.forEach((r, i) => {
    if (!wire) {
      r.evidence.wire = null;
      return;
    }
    const seen = canary.result(tokens[i]!);
    r.evidence.wire = seen.wire;
    r.evidence.plaintextLegs = seen.legs;
  });
  return results;
}

/**
 * tcpdump's argv for the wire canary: every TCP packet on the node's links (all of them) and the markers; `podNet`
 * (a CIDR): only TCP to or from it, where the namespace carries other traffic too (a kind node's kubelet and API server).
 */
export function captureArgv(pcap: string, podNet?: string): string[] {
  // -B: a 64 MiB kernel ring (KiB units); bursts of 64 KiB GSO segments overflow the 2 MiB default. Loopback is not the
  // wire between pods, and on the node it carries etcd's plaintext client traffic (Secrets such as istiod's CA key): a
  // pcap in the reports must hold no key
  const tcp = podNet ? `(src net ${podNet} or dst net ${podNet})` : 'not (src net 127.0.0.0/8 and dst net 127.0.0.0/8)';
  return ['tcpdump', '-i', 'any', '-U', '--immediate-mode', '-B', '65536', '-s', '0', '-Z', 'root', '-w', pcap, `(tcp and ${tcp}) or (udp and dst port ${MARKER_PORT})`];
}

/**
 * Writes a file a pod sees at `path`, which must be in the run's state dir or its reports (both are the same path in
 * every pod: shared on netns, bind-mounted on docker), atomically (written aside, then renamed), with its mode and owner.
 */
export function writeRunFile(run: { stateDir: string; runDir: string }, pod: string, path: string, content: string, opts: FileOptions = {}): void {
  const inside = (dir: string): boolean => {
    const rel = relative(dir, path);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  if (!isAbsolute(path) || !(inside(run.stateDir) || inside(run.runDir))) throw new Error(`pod ${pod}: ${path} is not a file in the run's state dir ${run.stateDir} or its reports ${run.runDir}`);
  // state: 0711, a process of another uid may reach its own file but not list the directory; reports are for people
  mkdirSync(dirname(path), { recursive: true, mode: inside(run.stateDir) ? 0o711 : 0o755 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content, { mode: opts.mode ?? 0o600 });
  if (opts.uid !== undefined || opts.gid !== undefined) chownSync(tmp, opts.uid ?? 0, opts.gid ?? opts.uid ?? 0);
  renameSync(tmp, path);
}

/**
 * tcpdump prints its pcap_stats ("N packets dropped by kernel", cumulative) on SIGUSR1 (its SIGINFO stand-in on
 * Linux); this asks and reads the answer from its log.
 */
export async function captureDrops(proc: Proc): Promise<number> {
  const drops = () => [...readFileSync(proc.logFile, 'utf8').matchAll(/(\d+) packets? dropped by kernel/g)].map((m) => Number(m[1]));
  const before = drops().length;
  proc.child.kill('SIGUSR1');
  return pollUntil(() => {
    if (proc.exitCode !== undefined) throw new Error(`wire canary: tcpdump exited: ${Supervisor.tail(proc)}`);
    const all = drops();
    return all.length > before ? all[all.length - 1]! : undefined;
  }, { timeoutMs: 2000, intervalMs: 5, what: 'wire canary: tcpdump\'s drop counter', detail: () => Supervisor.tail(proc) });
}

/** The wire canary: tcpdump (captureArgv) started by `supervisor` in namespace `netns`, once it listens. */
export async function startWireCanary(supervisor: Supervisor, netns: string, pcap: string, podNet?: string): Promise<WireCanary> {
  const proc = supervisor.start({ pod: 'node', name: 'tcpdump', netns, argv: captureArgv(pcap, podNet) });
  await pollUntil(() => {
    if (proc.exitCode !== undefined) throw new Error(`wire canary: tcpdump exited in ${netns}: ${Supervisor.tail(proc)}`);
    return Supervisor.tail(proc, 5).includes('listening on') ? true : undefined;
  }, { timeoutMs: 5000, intervalMs: 10, what: `wire canary: tcpdump in ${netns}`, detail: () => Supervisor.tail(proc) });
  return new WireCanary(pcap, () => captureDrops(proc));
}

/**
 * A pod by `<namespace>/<name>`, by name alone (default namespace first), or — a kube Pod — by its Deployment's name
 * (`aliases`; during a rollout the newest pod wins).
 */
export function findPod<P extends RunningPod & { index: number }>(pods: Map<string, P>, ref: string): P {
  const key = ref.includes('/') ? ref : `default/${ref}`;
  const [ns, name] = key.split('/') as [string, string];
  const byAlias = () => [...pods.values()].filter((x) => x.spec.namespace === ns && x.spec.aliases?.includes(name)).sort((a, b) => b.index - a.index)[0];
  const p = pods.get(key) ?? [...pods.values()].find((x) => x.spec.name === ref) ?? byAlias();
  if (!p) throw new Error(`no pod ${ref} in this topology (pods: ${[...pods.keys()].join(', ')})`);
  return p;
}

/** How long every container of a new topology must stay up after start (settle). */
export const SETTLE_MS = 300;

/**
 * Every container of the topology must outlive a short settle window after start: one that exits at once (its port
 * taken, a bad flag) or a readiness-less one that dies soon after would otherwise leave `up` reporting success with a
 * dead container.
 */
export async function settle(all: { pod: string; name: string; s: Started; exited: Promise<unknown> }[], ms = SETTLE_MS): Promise<void> {
  await Promise.race([new Promise((r) => setTimeout(r, ms)), ...all.map((x) => x.exited)]);
  const dead = all.find((x) => x.s.exitCode() !== undefined);
  if (dead) throw new Error(await diedAfterStart(dead.pod, dead.name, dead.s));
}
