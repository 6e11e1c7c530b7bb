// Whether a DOCKER_HOST engine runs on this machine, where the docker substrate needs it: its pods bind-mount the run's
// files, and the harness reads their processes from /proc and makes their veths from the host. The test: a dockerd
// process visible in this host's /proc holds, among its own file descriptors, the listening socket DOCKER_HOST names
// (proc(5): /proc/<pid>/net/unix and net/tcp list a namespace's sockets by inode, /proc/<pid>/fd links to socket:[inode]);
// a relay (ssh -L, socat) or a remote engine holds none here. The parsers and the decision are pure, unit-tested.
import { lookup } from 'node:dns/promises';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { UserError } from '../../model/errors.ts';

/** Listening unix sockets of a namespace (/proc/<pid>/net/unix: flags 00010000 is __SO_ACCEPTCON, state 01 unconnected): inode → path. */
export function parseUnixListeners(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[3] !== '00010000' || f[5] !== '01') continue;
    out.set(Number(f[6]), f.slice(7).join(' '));
  }
  return out;
}

/** An address of /proc/net/tcp{,6} in words of host byte order (little-endian here): `0100007F` → 127.0.0.1; v6 `::`, `::1`, `::ffff:a.b.c.d`, else its hex. */
export function procNetAddress(hex: string): string {
  const bytes = (word: string): number[] => [6, 4, 2, 0].map((i) => parseInt(word.slice(i, i + 2), 16));
  if (hex.length === 8) return bytes(hex).join('.');
  const b = [0, 8, 16, 24].flatMap((i) => bytes(hex.slice(i, i + 8)));
  if (b.slice(0, 15).every((x) => x === 0) && b[15]! <= 1) return b[15] === 0 ? '::' : '::1';
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${b.slice(12).join('.')}`;
  return b.map((x) => x.toString(16).padStart(2, '0')).join('');
}

export interface TcpListener { ip: string; port: number; inode: number }

/** Listening TCP sockets (state 0A) of /proc/<pid>/net/tcp or tcp6. */
export function parseTcpListeners(text: string): TcpListener[] {
  const out: TcpListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    const [addr, port] = f[1]!.split(':') as [string, string];
    out.push({ ip: procNetAddress(addr), port: parseInt(port, 16), inode: Number(f[9]) });
  }
  return out;
}

/** What this host sees of one dockerd process: its namespace's socket tables and the socket inodes it holds. */
export interface DaemonView {
  pid: number;
  unix: string;
  tcp: string;
  tcp6: string;
  /** Inodes of its fds that are sockets (`socket:[N]`). */
  sockets: ReadonlySet<number>;
  /** It shares this process's network namespace (a TCP address means the same listener only there). */
  sameNetns: boolean;
}

/**
 * The dockerd that serves `host`, or null. `unix:///p`: a daemon holding a listening socket bound at `p` (`socketPath`:
 * its real path here). `tcp://h:port`: a daemon of this network namespace holding a listener on `port` at one of
 * `addresses` (h resolved), or at the wildcard (0.0.0.0, or :: which takes IPv4 too).
 */
export function engineDaemon(host: string, o: { socketPath?: string; addresses?: string[] }, daemons: DaemonView[]): number | null {
  if (host.startsWith('unix://')) {
    const path = o.socketPath ?? host.slice('unix://'.length);
    const d = daemons.find((v) => [...parseUnixListeners(v.unix)].some(([inode, p]) => p === path && v.sockets.has(inode)));
    return d?.pid ?? null;
  }
  const port = Number(new URL(host.replace(/^tcp:/, 'http:')).port || 2375);
  const want = new Set(o.addresses ?? []);
  const matches = (l: TcpListener): boolean => l.port === port && (l.ip === '0.0.0.0' || l.ip === '::' || want.has(l.ip) || want.has(l.ip.replace(/^::ffff:/, '')));
  const d = daemons.find((v) => v.sameNetns && [...parseTcpListeners(v.tcp), ...parseTcpListeners(v.tcp6)].some((l) => matches(l) && v.sockets.has(l.inode)));
  return d?.pid ?? null;
}

// ---------------------------------------------------------------------------------------------
// I/O: this host's dockerd processes, as /proc shows them.

function daemonViews(): DaemonView[] {
  const ownNet = readlinkSync('/proc/self/ns/net');
  const views: DaemonView[] = [];
  for (const e of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() !== 'dockerd') continue;
      const sockets = new Set<number>();
      for (const fd of readdirSync(`/proc/${e}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${e}/fd/${fd}`, 'utf8'));
        if (m) sockets.add(Number(m[1]));
      }
      const read = (f: string): string => readFileSync(`/proc/${e}/net/${f}`, 'utf8');
      views.push({ pid: Number(e), unix: read('unix'), tcp: read('tcp'), tcp6: read('tcp6'), sockets, sameNetns: readlinkSync(`/proc/${e}/ns/net`) === ownNet });
    } catch {
      // gone meanwhile, or an fd closed while listed
    }
  }
  return views;
}

/** The pid of the dockerd on this machine serving `host` (unix:// or tcp://), or null. */
export async function localEngineDaemon(host: string): Promise<number | null> {
  if (host.startsWith('unix://')) {
    let socketPath = host.slice('unix://'.length);
    try {
      socketPath = realpathSync(socketPath);
    } catch {
      // as named
    }
    return engineDaemon(host, { socketPath }, daemonViews());
  }
  const hostname = new URL(host.replace(/^tcp:/, 'http:')).hostname.replace(/^\[|\]$/g, '');
  const addresses = (await lookup(hostname, { all: true }).catch(() => [])).map((a) => a.address);
  return engineDaemon(host, { addresses }, daemonViews());
}

/** A DOCKER_HOST engine the docker substrate cannot run pods on: one line, what and the fix. */
export async function requireLocalEngine(host: string): Promise<void> {
  if ((await localEngineDaemon(host)) !== null) return;
  throw new UserError(
    `DOCKER_HOST=${host}: that engine does not run on this machine (no dockerd here holds its socket), and the docker substrate's pods bind-mount this machine's files and are wired from its /proc: run the engine on this machine, or unset DOCKER_HOST so meshproof starts its own`,
  );
}
