// The one process supervisor: every process of a run is started here, inside its pod's
// namespace, as its uid, with its log file, and stopped here.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ProcessSpec {
  /** Shown in errors and used for the log file: logs/<pod>/<name>.log. */
  pod: string;
  name: string;
  netns: string;
  argv: string[];
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  caps?: string[];
  /** Working directory (pilot-agent resolves its files relative to it: ./var/run/secrets/tokens, ./etc/istio/proxy). */
  cwd?: string;
  /**
   * Bind mounts made in the process's own mount namespace before it starts (`ip netns exec` gives every process a
   * private one), e.g. a pod's service-account volume at /var/run/secrets/kubernetes.io/serviceaccount, which
   * client-go's in-cluster config reads at that absolute path. Each target must exist.
   */
  mounts?: { source: string; target: string }[];
}

/**
 * Binds "$1" on "$2" for each pair up to `--`, then execs the rest (runs as root, before setpriv drops). The target is
 * made first, and the pair tried again (five times at most): another run may have just removed an empty shared
 * mountpoint such as /var/run/secrets/....
 */
const MOUNT_SCRIPT =
  'while [ "$1" != -- ]; do n=0; until mkdir -p "$2" && mount --bind "$1" "$2"; do n=$((n+1)); [ $n -lt 5 ] || exit 126; sleep 0.1; done; shift 2; done; shift; exec "$@"';

/**
 * How every process of a run is started: `ip netns exec <netns>`, the bind mounts, then `setpriv` as its uid/gid with
 * its capabilities and `--pdeathsig KILL` (it dies with the harness), with the run's base environment plus its own.
 * Supervisor.start runs it with its output in the log file; the kubelet API's exec runs a command the same way.
 */
export function launchArgv(spec: Pick<ProcessSpec, 'netns' | 'argv' | 'uid' | 'gid' | 'caps' | 'mounts' | 'env'>): { argv: string[]; env: Record<string, string> } {
  const mounts = spec.mounts?.length ? ['sh', '-c', MOUNT_SCRIPT, 'sh', ...spec.mounts.flatMap((m) => [m.source, m.target]), '--'] : [];
  return {
    argv: ['ip', 'netns', 'exec', spec.netns, ...mounts, ...setprivArgv(spec, true), ...spec.argv],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/tmp', ...spec.env },
  };
}

/**
 * `setpriv … --` that drops root to the spec's uid/gid keeping its capabilities as ambient ones (a non-root process
 * keeps no capability across exec otherwise), and with `pdeathsig` dies with its parent; every substrate starts a
 * container's process through it.
 */
export function setprivArgv(spec: Pick<ProcessSpec, 'uid' | 'gid' | 'caps'>, pdeathsig: boolean): string[] {
  const uid = spec.uid ?? 0;
  const gid = spec.gid ?? uid;
  const setpriv = ['setpriv', ...(pdeathsig ? ['--pdeathsig', 'KILL'] : [])];
  if (uid !== 0 || gid !== 0) setpriv.push('--reuid', String(uid), '--regid', String(gid), '--clear-groups');
  if (spec.caps?.length) {
    const caps = spec.caps.map((c) => `+${c.toLowerCase()}`).join(',');
    setpriv.push('--inh-caps', caps, '--ambient-caps', caps);
  }
  return [...setpriv, '--'];
}

export interface Proc {
  spec: ProcessSpec;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

export class Supervisor {
  readonly procs: Proc[] = [];

  constructor(private readonly logRoot: string) {}

  start(spec: ProcessSpec): Proc {
    const logFile = join(this.logRoot, spec.pod.replace('/', '_'), `${spec.name}.log`);
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    const { argv, env } = launchArgv(spec);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], cwd: spec.cwd, env });
    closeSync(fd);
    const proc: Proc = { spec, child, logFile, exitCode: undefined, exited: Promise.resolve(null) };
    proc.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        proc.exitCode = code ?? (signal ? null : -1);
        res(proc.exitCode);
      });
      child.on('error', () => {
        proc.exitCode = -1;
        res(-1);
      });
    });
    this.procs.push(proc);
    return proc;
  }

  /** Last lines of a process's log, for error messages. */
  static tail(proc: Proc, lines = 8): string {
    try {
      return readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop(proc: Proc, graceMs = 1000): Promise<void> {
    if (proc.exitCode !== undefined) return;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
    await proc.exited;
    clearTimeout(timer);
  }

  async stopAll(graceMs = 1000): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p, graceMs)));
  }
}
