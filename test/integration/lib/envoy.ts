// The real Envoy as an independent judge of rendered configs: `envoy --mode validate`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './run.ts';

/** Writes `text` to `<dir>/<name>.yaml` and validates it: the exit status and everything Envoy printed. */
export function validateEnvoy(envoy: string, dir: string, name: string, text: string, logLevel: 'warning' | 'error' = 'warning'): { status: number | null; text: string } {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  const r = run(envoy, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', logLevel]);
  return { status: r.status, text: `${r.out}${r.err}`.trim() };
}
