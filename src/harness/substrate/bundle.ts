// The pod bundle: the workloads and the probe agent compiled into one JavaScript file that pods
// run with plain `node` (no TypeScript loader per process: pods start in tens of milliseconds).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../workloads/main.ts', import.meta.url));

export async function buildPodBundle(outfile: string): Promise<string> {
  await build({
    entryPoints: [ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  });
  return outfile;
}
