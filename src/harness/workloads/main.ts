// Entry point of the workload bundle that runs inside pods:
//   node <bundle>.js <sentences|dora|tcp-listener|echo|agent> [--flag value ...]
// A workload runs until SIGTERM (or SIGINT), then closes and the process exits 0.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UserError } from '../cli/errors.ts';
import { usage, type Env, type WorkloadHandle } from './common.ts';
import { runDora } from './dora.ts';
import { runEcho } from './echo.ts';
import { runSentences } from './sentences.ts';
import { runTcpListener } from './tcp-listener.ts';

export type WorkloadKind = 'sentences' | 'dora' | 'tcp-listener' | 'echo' | 'agent';

/** Workloads that serve until told to stop; `agent` manages its own lifetime. */
export const SERVING_WORKLOADS: Readonly<Record<Exclude<WorkloadKind, 'agent'>, (args: readonly string[], env: Env) => Promise<WorkloadHandle>>> = {
  sentences: runSentences,
  dora: runDora,
  'tcp-listener': runTcpListener,
  echo: runEcho,
};

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [...(Object.keys(SERVING_WORKLOADS) as Array<Exclude<WorkloadKind, 'agent'>>), 'agent'];

function isServing(kind: string): kind is keyof typeof SERVING_WORKLOADS {
  return Object.prototype.hasOwnProperty.call(SERVING_WORKLOADS, kind);
}

/** Resolves once the first of SIGTERM/SIGINT arrives. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * Runs one workload from its command line. Resolves when it has stopped (after SIGTERM/SIGINT for
 * the serving workloads; when runAgent returns for `agent`). Bad usage rejects with a UserError.
 */
export async function main(argv: string[]): Promise<void> {
  const [kind, ...rest] = argv;
  if (kind === 'agent') {
    const { runAgent } = await import('./agent.ts');
    await runAgent(rest);
    return;
  }
  if (kind === undefined || !isServing(kind)) {
    throw usage(`${kind === undefined ? 'missing workload' : `unknown workload '${kind}'`}; usage: <${WORKLOAD_KINDS.join('|')}> [--flag value ...]`);
  }
  const handle = await SERVING_WORKLOADS[kind](rest, process.env);
  await stopSignal();
  await handle.close();
}

function isEntryModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  let path = script;
  try {
    path = realpathSync(script);
  } catch {
    // keep the path as given
  }
  return import.meta.url === pathToFileURL(path).href;
}

if (isEntryModule()) {
  const argv = process.argv.slice(2);
  main(argv).then(
    () => {
      // A serving workload has closed: leave now even if a stray timer or socket lingers.
      if (argv[0] !== 'agent') process.exit(0);
    },
    (err: unknown) => {
      const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`meshproof workload: ${message}\n`);
      process.exit(err instanceof UserError ? err.exitCode : 1);
    },
  );
}
