// Runs a command for an integration test and keeps what it printed.
import { spawnSync } from 'node:child_process';

export function run(cmd: string, args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}
