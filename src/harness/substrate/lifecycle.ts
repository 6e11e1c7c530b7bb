// Whatever a process started is stopped on the way out: normal end, exception, SIGINT or SIGTERM.
// (SIGKILL cannot be caught: setpriv --pdeathsig kills the pods' processes and the janitor
// removes the namespaces.)
type Cleanup = () => Promise<void>;

const cleanups = new Set<Cleanup>();
let installed = false;
let exiting = false;

async function runAll(): Promise<void> {
  // a start already under way when the signal came registers its cleanup late: run those too
  while (cleanups.size) {
    const all = [...cleanups];
    cleanups.clear();
    await Promise.allSettled(all.map((c) => c()));
  }
}

/**
 * Refuses to start anything once a signal is tearing the process down: mocha goes on to the next suite while the
 * teardown runs, and a run it started then would outlive the exit (newRunId calls this).
 */
export function assertNotInterrupted(what: string): void {
  if (exiting) throw new Error(`${what}: not started, the process is tearing down after a signal`);
}

function onSignal(sig: NodeJS.Signals): void {
  if (exiting) return;
  exiting = true;
  process.stderr.write(`\nmeshproof: ${sig} received, tearing down...\n`);
  void runAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
}

/** Registers a cleanup to run on SIGINT/SIGTERM; returns the function that unregisters it. */
export function onTeardown(fn: Cleanup): () => void {
  if (!installed) {
    installed = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
