// Where meshproof's own docker engine keeps its things, and the argv it starts with: pure, unit-tested.
// The engine runs inside a private network namespace so its iptables and forwarding changes never reach the host's
// (../shared/reference/real-control-planes.md §3: dockerd in the host namespace sets the host's FORWARD policy to DROP).
import { isAbsolute, join } from 'node:path';
import { homedir } from 'node:os';
import { PREFIX, stateDirOf } from '../state.ts';

/** `${XDG_CACHE_HOME ?? ~/.cache}/meshproof`: the provisioning cache (doctor.ts envoyCacheDir uses the same rule). */
export function meshproofCache(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  // XDG Base Directory spec: a relative or empty XDG_CACHE_HOME is invalid and ignored.
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'meshproof');
}

/** `~/.cache/meshproof/docker`: data roots of meshproof's engines (the image cache persists in `root`). */
export const dockerCacheDir = (): string => join(meshproofCache(), 'docker');
/** The shared data root: one engine at a time holds it (`root.lock`); a second concurrent engine gets `run-<short>`. */
export const sharedDataRoot = (): string => join(dockerCacheDir(), 'root');
export const sharedDataRootLock = (): string => join(dockerCacheDir(), 'root.lock');
export const runDataRoot = (short: string): string => join(dockerCacheDir(), `run-${short}`);

export interface EngineLayout {
  short: string;
  /** The private network namespace dockerd runs in (the run's prefix, so the run's teardown finds it too). */
  netns: string;
  /** `<run state dir>/docker` on tmpfs: exec root, socket, pidfile, daemon.json, engine.json. */
  dir: string;
  execRoot: string;
  socket: string;
  pidfile: string;
  /** An empty daemon.json, so a host's /etc/docker/daemon.json never configures meshproof's engine. */
  configFile: string;
  /** What the janitor reads to remove a killed run's engine. */
  recordFile: string;
  dataRoot: string;
  /** Every container's cgroup lives under it (cgroupfs driver: /sys/fs/cgroup/<controller>/<parent>/<id>). */
  cgroupParent: string;
}

export function engineLayout(short: string, dataRoot: string): EngineLayout {
  const dir = join(stateDirOf(short), 'docker');
  return {
    short,
    netns: `${PREFIX}${short}--docker`,
    dir,
    execRoot: join(dir, 'exec'),
    socket: join(dir, 'docker.sock'),
    pidfile: join(dir, 'dockerd.pid'),
    configFile: join(dir, 'daemon.json'),
    recordFile: join(dir, 'engine.json'),
    dataRoot,
    cgroupParent: `meshproof-${short}`,
  };
}

/**
 * dockerd's argv (run inside `layout.netns`). No default bridge (`--bridge none`) and no masquerading: the only
 * networks are the ones meshproof creates, always `--internal`; iptables stays on, in the private namespace's own tables.
 */
export function dockerdArgv(l: EngineLayout, bin = 'dockerd'): string[] {
  return [
    bin,
    '--host', `unix://${l.socket}`,
    '--data-root', l.dataRoot,
    '--exec-root', l.execRoot,
    '--pidfile', l.pidfile,
    '--config-file', l.configFile,
    '--bridge', 'none',
    '--ip-masq=false',
    '--cgroup-parent', `/${l.cgroupParent}`,
    '--log-level', 'warn',
  ];
}

/**
 * What the supervisor runs inside `ip netns exec <netns>`: dockerd back in the harness's own mount namespace (nsenter
 * --mount), keeping the private network namespace. In the private mount namespace `ip netns exec` makes, dockerd hides
 * the host's /sys/fs/cgroup behind the namespace's fresh sysfs ("Devices cgroup isn't mounted") and, with the cgroups
 * mounted again there, still never moves a container's veth into it (the container gets only lo); in the harness's
 * mount namespace, as `nsenter --net` in real-control-planes.md §3, both work. Its mounts (overlay, netns files) then
 * live under its data and exec roots in that namespace: dockerd removes them when it stops, the janitor after a SIGKILL.
 */
export function engineArgv(l: EngineLayout, harnessPid: number): string[] {
  return ['nsenter', `--mount=/proc/${harnessPid}/ns/mnt`, '--', ...dockerdArgv(l)];
}
