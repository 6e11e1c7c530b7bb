// What outlives one suite: a control plane shared by every suite of a run (controlplane/istiod/mesh.ts `share`)
// is stopped when the run's suites are done — by mocha's root afterAll hook (suites/lib/root-hooks.ts, loaded by
// .mocharc.yml) or by `meshproof run` after mocha returns (cli/mocha.ts). No imports: the unit tests load it too.
type Stop = () => Promise<void>;

// One registry per process: `meshproof run` imports this module as ESM while mocha require()s the suites, which
// load their own (CommonJS) copy of it; both copies must see the same set.
const KEY = Symbol.for('meshproof.keptUntilRunEnd');
const stops: Set<Stop> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new Set<Stop>()) as Set<Stop>;

/** Keeps something until the run ends; returns the function that lets go of it (it was stopped another way). */
export function keepUntilRunEnd(stop: Stop): () => void {
  stops.add(stop);
  return () => stops.delete(stop);
}

/** Stops everything kept for the run; every stop runs even when one fails, and the first failure is thrown. */
export async function endOfRun(): Promise<void> {
  const all = [...stops];
  stops.clear();
  const failed = (await Promise.allSettled(all.map((s) => s()))).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
