// Entry point of the workload bundle that runs inside pods:
//   node <bundle>.js <sentences|dora|tcp-listener|echo|agent|load> [--flag value ...]
// A workload runs until SIGTERM (or SIGINT), then closes and the process exits 0. `load` is a
// one-shot: it runs the load generator once, prints its figures and exits.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UserError } from '../model/errors.ts';
import { usage, type Env, type WorkloadHandle } from './common.ts';
import { runDora } from './dora.ts';
import { runEcho } from './echo.ts';
import { runSentences } from './sentences.ts';
import { runTcpListener } from './tcp-listener.ts';

export type WorkloadKind = 'sentences' | 'dora' | 'tcp-listener' | 'echo' | 'agent' | 'load';

/** Workloads that serve until told to stop; `agent` manages its own lifetime, `load` runs once. */
export const SERVING_WORKLOADS: Readonly<Record<Exclude<WorkloadKind, 'agent' | 'load'>, (args: readonly string[], env: Env) => Promise<WorkloadHandle>>> = {
  sentences: runSentences,
  dora: runDora,
  'tcp-listener': runTcpListener,
  echo: runEcho,
};

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [...(Object.keys(SERVING_WORKLOADS) as Array<Exclude<WorkloadKind, 'agent' | 'load'>>), 'agent', 'load'];

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
  if (kind === 'tcp-pinger') {
    const { runTcpPinger } = await import('./tcp-pinger.ts');
    await runTcpPinger(rest);
    return;
  }
  if (kind === 'relay') return (await import('./relay.ts')).runRelay(rest, stopSignal());
  if (kind === 'load') {
    const { runLoad } = await import('./load.ts');
    await runLoad(rest);
    return;
  }
  if (kind === undefined || !isServing(kind)) {
    const longRunning = WORKLOAD_KINDS.filter((k) => k !== 'load').join('|');
    throw usage(`${kind === undefined ? 'missing workload' : `unknown workload '${kind}'`}; usage: <${longRunning}> [--flag value ...], or load --url <url> [--flag value ...] (one load-generator run)`);
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
      // A serving workload has closed (or `load` has printed its figures): leave now even if a stray timer or socket lingers.
      if (argv[0] !== 'agent') process.exit(0);
    },
    (err: unknown) => {
      const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`meshproof workload: ${message}\n`);
      process.exit(err instanceof UserError ? err.exitCode : 1);
    },
  );
}
