// Which suites a `meshproof run` runs: the suite files, their profile (by file-name prefix), the
// --suite/--profile selection, and the --shard split of the (Envoy version × suite) matrix.
// Pure apart from listing the suites directory.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../model/errors.ts';

/** Suite file-name prefix → profile (DESIGN.md "profile"); the first match wins. */
export const PROFILE_PREFIXES: readonly (readonly [prefix: string, profile: string])[] = [
  ['substrate', 'substrate'],
  ['istio-', 'istio'],
  // before cf-: suites/cf-for-k8s.spec.ts is the cf-for-k8s profile, not the Cloud Foundry one
  ['cf-for-k8s', 'cf-for-k8s'],
  ['cf-', 'cf'],
  ['c2c-', 'c2c'],
  ['contrast-', 'contrast'],
  ['throughput-budget', 'load'],
  ['throughput-', 'load'],
];

export interface SuiteFile {
  /** File name without `.spec.ts`: the suite's name (its records' `suite`). */
  name: string;
  /** Absolute path. */
  file: string;
  profile: string;
}

const SPEC = '.spec.ts';

/** The profile of a suite by its name: PROFILE_PREFIXES, else the part before the first `-`. */
export function profileOf(suite: string): string {
  for (const [prefix, profile] of PROFILE_PREFIXES) if (suite.startsWith(prefix)) return profile;
  return suite.split('-')[0]!;
}

/** Every `<dir>/*.spec.ts`, sorted by name (the order runs and shards use). */
export function listSuites(dir: string): SuiteFile[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith(SPEC));
  } catch {
    throw new UserError(`no suites directory at ${dir}: run meshproof from its repository`);
  }
  return names
    .map((f) => f.slice(0, -SPEC.length))
    .sort()
    .map((name) => ({ name, file: join(dir, `${name}${SPEC}`), profile: profileOf(name) }));
}

/** `a, b ,a` → ['a', 'b']; undefined or empty → undefined. */
export function parseList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  return items.length ? items : undefined;
}

/** `suites/x.spec.ts`, `x.spec.ts` and `x` all name suite `x`. */
export function suiteName(arg: string): string {
  const base = arg.split('/').pop()!;
  return base.endsWith(SPEC) ? base.slice(0, -SPEC.length) : base;
}

/**
 * The suites named by --suite (all when absent) whose profile is in --profile (any when absent),
 * in name order. An unknown name or profile, or an empty selection, is a one-line UserError
 * naming the known ones.
 */
export function selectSuites(all: SuiteFile[], opts: { suites?: string[]; profiles?: string[] }): SuiteFile[] {
  if (!all.length) throw new UserError('there are no suites (suites/*.spec.ts) to run');
  const known = all.map((s) => s.name);
  const profiles = [...new Set(all.map((s) => s.profile))];
  for (const p of opts.profiles ?? []) {
    if (!profiles.includes(p)) throw new UserError(`unknown profile ${JSON.stringify(p)}: known profiles are ${profiles.join(', ')}`);
  }
  const names = opts.suites?.map(suiteName);
  for (const n of names ?? []) {
    if (!known.includes(n)) throw new UserError(`unknown suite ${JSON.stringify(n)}: known suites are ${known.join(', ')}`);
  }
  const picked = all.filter((s) => (!names || names.includes(s.name)) && (!opts.profiles || opts.profiles.includes(s.profile)));
  if (!picked.length) {
    throw new UserError(`no suite is both in --suite ${names!.join(',')} and in --profile ${opts.profiles!.join(',')}: those suites are in profiles ${[...new Set(all.filter((s) => names!.includes(s.name)).map((s) => s.profile))].join(', ')}`);
  }
  return picked;
}

export interface Shard {
  /** 1-based. */
  index: number;
  total: number;
}

/** `i/n` with 1 ≤ i ≤ n. */
export function parseShard(value: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : NaN;
  const total = m ? Number(m[2]) : NaN;
  if (!m || total < 1 || index < 1 || index > total) {
    throw new UserError(`invalid --shard ${JSON.stringify(value)}: expected i/n with 1 ≤ i ≤ n, e.g. 1/4`);
  }
  return { index, total };
}

/** One unit of a run's matrix: a suite file under one Envoy version. */
export interface Unit {
  envoyVersion: string;
  suite: SuiteFile;
}

/**
 * The run's matrix, and the part of it one shard runs. Units are ordered version by version (in
 * --envoy-version order), suites by file name within each; shard i/n takes units i, i+n, i+2n, ...
 * (1-based). Deterministic, every unit in exactly one shard, and the shards' sizes differ by at
 * most one; round-robin so that neighbouring suites (e.g. the istio-* family) spread over shards.
 */
export function matrixUnits(envoyVersions: string[], suites: SuiteFile[], shard?: Shard): Unit[] {
  const all = envoyVersions.flatMap((envoyVersion) => suites.map((suite) => ({ envoyVersion, suite })));
  if (!shard) return all;
  return all.filter((_u, k) => k % shard.total === shard.index - 1);
}
