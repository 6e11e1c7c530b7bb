// For unit tests that let the real kernel judge rendered iptables text: a throwaway network
// namespace created before the block's tests and deleted after them (skipped when not root).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function run(cmd: string, args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** Registers before/after hooks in the calling describe block; `exec` runs a command inside the namespace. */
export function scratchNetns(): { ns: string; exec: (args: string[], input?: string) => ReturnType<typeof run> } {
  const ns = `mptest-${randomBytes(4).toString('hex')}`;
  let created = false;
  before(function () {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) this.skip();
    const r = run('ip', ['netns', 'add', ns]);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.err.trim()}`);
    created = true;
  });
  after(() => {
    if (created) run('ip', ['netns', 'del', ns]);
  });
  return { ns, exec: (args, input) => run('ip', ['netns', 'exec', ns, ...args], input) };
}
