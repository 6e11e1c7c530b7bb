// Whether a run did what it planned: results.json says which (suite, Envoy version) units were
// planned and which ran to their end. A run cut short (Ctrl-C, SIGTERM, a crash) or a set of shards
// with one missing is incomplete, and an incomplete run is never green, whatever its cells say.
// Pure: data in, data out.
import { columnLabel, unique, VERSION_AXES, type PlannedUnit, type ResultsFile, type RunMetadata, type TestResult } from './meta.ts';

export interface Completeness {
  /** false: the file predates schema 2 and does not say what was planned. */
  recorded: boolean;
  complete: boolean;
  planned: number;
  /** Planned units that did not finish. */
  missing: PlannedUnit[];
  /** `i/n` of the shards a merged file should hold but does not. */
  missingShards: string[];
  stopped?: string;
}

/** `istio-strict-denial @ envoy 1.36.4` (`@ istio 1.29.2 · envoy 1.37.0` on istiod), or the suite alone without a version. */
export function unitName(u: Pick<PlannedUnit, 'suite' | 'envoyVersion' | 'istioVersion'>): string {
  const col = columnLabel(u, VERSION_AXES);
  return col ? `${u.suite} @ ${col}` : u.suite;
}

/** Units without repeats (by suite and version), first appearance first. */
export function uniqueUnits(units: readonly PlannedUnit[]): PlannedUnit[] {
  const seen = new Set<string>();
  return units.filter((u) => {
    const k = unitName(u);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * The shards merged into a file (a shard's own file is whole by itself), each as its split `i/n` and
 * the versions it was dealt from (`envoy 1.36.4`; on istiod `istio 1.29.2 · envoy 1.37.0`): a CI matrix of one
 * job per (version, shard) splits each version on its own.
 */
function shardsOf(meta: RunMetadata | undefined): { spec: string; versions: string }[] {
  return (meta?.shards ?? []).filter((m) => !!m.shard).map((m) => {
    const istio = m.istioVersions?.join(', ') ?? m.istioVersion;
    const envoy = (m.envoyVersions ?? []).join(', ');
    return { spec: m.shard!, versions: [istio ? `istio ${istio}` : '', envoy ? `envoy ${envoy}` : ''].filter(Boolean).join(' · ') };
  });
}

/** Shards of a split i/n whose index is absent: shards 1/3 and 3/3 merged miss 2/3 (per set of Istio and Envoy versions). */
function missingShardsOf(shards: { spec: string; versions: string }[]): string[] {
  const groups = new Map<string, { versions: string; total: number; have: Set<number> }>();
  for (const s of shards) {
    const m = /^(\d+)\/(\d+)$/.exec(s.spec);
    if (!m) continue;
    const key = `${s.versions}\u0000${m[2]}`;
    if (!groups.has(key)) groups.set(key, { versions: s.versions, total: Number(m[2]), have: new Set() });
    groups.get(key)!.have.add(Number(m[1]));
  }
  const multi = new Set([...groups.values()].map((g) => g.versions)).size > 1;
  const out: string[] = [];
  for (const g of groups.values()) {
    for (let i = 1; i <= g.total; i++) if (!g.have.has(i)) out.push(`${i}/${g.total}${multi && g.versions ? ` (${g.versions})` : ''}`);
  }
  return out;
}

export function completeness(file: Pick<ResultsFile, 'planned' | 'completed' | 'stopped' | 'meta'>): Completeness {
  // Files before schema 2 say nothing of their plan, nor of their shards' plans: not judged.
  if (!file.planned) return { recorded: false, complete: true, planned: 0, missing: [], missingShards: [], ...(file.stopped ? { stopped: file.stopped } : {}) };
  const missingShards = missingShardsOf(shardsOf(file.meta));
  const done = new Set((file.completed ?? []).map(unitName));
  const planned = uniqueUnits(file.planned);
  const missing = planned.filter((u) => !done.has(unitName(u)));
  return {
    recorded: true,
    complete: missing.length === 0 && missingShards.length === 0,
    planned: planned.length,
    missing,
    missingShards,
    ...(file.stopped ? { stopped: file.stopped } : {}),
  };
}

/**
 * One line for an incomplete run: `INCOMPLETE: 2 of 5 planned suites did not finish (stopped: SIGINT):
 * istio-strict-denial @ envoy 1.36.4, substrate @ envoy 1.36.4`; null when the run is complete.
 */
export function incompleteLine(c: Completeness): string | null {
  if (c.complete) return null;
  const parts: string[] = [];
  if (c.missing.length) parts.push(`${c.missing.length} of ${c.planned} planned suites did not finish${c.stopped ? ` (stopped: ${c.stopped})` : ''}: ${c.missing.map(unitName).join(', ')}`);
  if (c.missingShards.length) parts.push(`shard${c.missingShards.length > 1 ? 's' : ''} ${c.missingShards.join(', ')} missing from the merge`);
  return `INCOMPLETE: ${parts.join('; ')}`;
}

/** The title of the test that stands for a planned suite that did not finish. */
export const NOT_FINISHED = 'did not finish';

/**
 * The file as the renderers draw it: each planned unit that did not finish becomes a failed test
 * of its suite (`<suite> did not finish`), so junit.xml, the conformance report, summary.md and
 * report.html all show it as a failure with the reason. A complete file is returned as is.
 */
export function withUnfinishedAsFailures(file: ResultsFile): ResultsFile {
  const c = completeness(file);
  if (!c.missing.length) return file;
  const why = c.stopped ? `the run stopped (${c.stopped}) before this suite finished` : 'the run ended before this suite finished';
  const tests: TestResult[] = c.missing.map((u) => ({
    suite: u.suite,
    profile: u.profile,
    title: `${u.suite} ${NOT_FINISHED}`,
    state: 'failed',
    error: `${why}: its results are partial; run it again (meshproof run --suite ${u.suite}${u.istioVersion ? ` --control-plane istiod --istio-version ${u.istioVersion}` : ''}${u.envoyVersion ? ` --envoy-version ${u.envoyVersion}` : ''})`,
    ...(u.envoyVersion ? { envoyVersion: u.envoyVersion } : {}),
    ...(u.istioVersion ? { istioVersion: u.istioVersion } : {}),
  }));
  return { ...file, tests: [...(file.tests ?? []), ...tests] };
}

/** Planned and completed units of several files, united (mergeResults). */
export function mergePlans(files: readonly Pick<ResultsFile, 'planned' | 'completed' | 'stopped'>[]): Pick<ResultsFile, 'planned' | 'completed' | 'stopped'> {
  const withPlan = files.filter((f) => f.planned);
  if (!withPlan.length) return {};
  const stopped = unique(files.map((f) => f.stopped).filter((s): s is string => !!s));
  return {
    planned: uniqueUnits(withPlan.flatMap((f) => f.planned!)),
    completed: uniqueUnits(files.flatMap((f) => f.completed ?? [])),
    ...(stopped.length ? { stopped: stopped.join('; ') } : {}),
  };
}
