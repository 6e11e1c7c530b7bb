// For integration tests that let the real kernel judge rendered iptables text: a throwaway network
// namespace created before the block's tests and deleted after them (not root: the hook fails, saying so).
import { randomBytes } from 'node:crypto';
import { run } from './run.ts';

export { run };

/** Registers before/after hooks in the calling describe block; `exec` runs a command inside the namespace. */
export function scratchNetns(): { ns: string; exec: (args: string[], input?: string) => ReturnType<typeof run> } {
  const ns = `mptest-${randomBytes(4).toString('hex')}`;
  let created = false;
  before(() => {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('network namespaces need root: run the integration tests as root');
    const r = run('ip', ['netns', 'add', ns]);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.err.trim()}`);
    created = true;
  });
  after(() => {
    if (created) run('ip', ['netns', 'del', ns]);
  });
  return { ns, exec: (args, input) => run('ip', ['netns', 'exec', ns, ...args], input) };
}
