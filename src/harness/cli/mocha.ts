// Runs suite files with mocha's programmatic API (new Mocha, addFile, loadFilesAsync, run) in
// this process, with the spec reporter plus a progress line when each suite file starts and ends,
// and collects every test's outcome for results.json.
//
// A Mocha instance runs once, and a spec file loaded once in a process is not loaded again (its
// tests would not register twice), so one process runs one selection once: `meshproof run` with
// several Envoy versions starts one child `meshproof run` per version (see run.ts).
import { readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import Mocha from 'mocha';
import { parse as parseYaml } from 'yaml';
import type { TestResult } from '../report/meta.ts';
import type { SuiteFile } from './suites.ts';
import { endOfRun } from '../controlplane/shared.ts';
import { KIND_WARM_TIMEOUT_MS, warmSharedMesh } from '../controlplane/index.ts';

export interface MochaOutcome {
  /** mocha's failure count (failed tests and hooks). */
  failures: number;
  tests: TestResult[];
}

export interface MochaRunOptions {
  repoRoot: string;
  /** Where progress lines go. */
  print: (line: string) => void;
  envoyVersion?: string;
  /** A suite file starts (before its hooks run): `meshproof run` points its clusters' reports there. */
  onSuiteStart?: (suite: SuiteFile) => void;
  /** Every test of a suite file has run (the next file started, or the run ended): results.json records it finished. */
  onSuiteEnd?: (suite: SuiteFile) => void;
  /** Where the tests are collected (the outcome's `tests`), so a run that stops early still has them. */
  tests?: TestResult[];
}

/** A UserError (bad input: a config file, a fixture) by name: spec files may load their own copy of errors.ts. */
function isUserError(err: unknown): boolean {
  return (err as { name?: unknown } | undefined)?.name === 'UserError';
}

let tsxCjs = false;

/**
 * Mocha loads each spec with require() first (Node ≥ 20.19 has require(esm)); like
 * `mocha --import=tsx`, tsx's CommonJS hook must be there for require() to read TypeScript.
 * bin/meshproof.js registers tsx's ESM hook; this adds the CommonJS one, once.
 */
async function registerTsxCjs(): Promise<void> {
  if (tsxCjs) return;
  const { register } = await import('tsx/cjs/api');
  register();
  tsxCjs = true;
}

/** The settings of .mocharc.yml that matter here (timeout); defaults when it is absent. */
function mocharc(repoRoot: string): { timeout: number } {
  try {
    const rc = parseYaml(readFileSync(join(repoRoot, '.mocharc.yml'), 'utf8')) as { timeout?: number | string } | null;
    const timeout = Number(rc?.timeout);
    return { timeout: Number.isFinite(timeout) && timeout > 0 ? timeout : 60_000 };
  } catch {
    return { timeout: 60_000 };
  }
}

const clock = () => new Date().toISOString().slice(11, 19);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The spec file a test or hook belongs to. */
function fileOf(r: Mocha.Runnable | Mocha.Suite): string | undefined {
  let x: Mocha.Runnable | Mocha.Suite | undefined = r;
  while (x && !x.file) x = x.parent;
  return x?.file;
}

/** The error as results.json keeps it: the message and the first stack frames inside the repository. */
function describeError(err: unknown, repoRoot: string): string {
  const e = err as { message?: string; stack?: string } | undefined;
  const message = (e?.message ?? String(err)).trim();
  const frames = (e?.stack ?? '')
    .split('\n')
    // mocha has already made paths under the working directory (the repository) relative
    .filter((l) => /^\s+at /.test(l) && !l.includes('node_modules') && !l.includes('node:') && /\((?:src|suites|test)\/|\/(?:src|suites|test)\//.test(l))
    .slice(0, 3)
    .map((l) => l.trim().replace(repoRoot + '/', ''));
  return frames.length ? `${message}\n${frames.join('\n')}` : message;
}

export async function runSuiteFiles(files: SuiteFile[], opts: MochaRunOptions): Promise<MochaOutcome> {
  await registerTsxCjs();
  const byFile = new Map(files.map((f) => [f.file, f]));
  const tests: TestResult[] = opts.tests ?? [];
  const ended = new Set<string>();
  const finish = (suite: SuiteFile) => {
    if (ended.has(suite.file)) return;
    ended.add(suite.file);
    opts.onSuiteEnd?.(suite);
  };
  const { print, repoRoot } = opts;

  // Progress: `--> [suite 2/5] istio-strict-denial (istio)` ... `<-- [suite 2/5] istio-strict-denial: 3 passed, 0 failed, 0 pending in 12.3 s`.
  let current: { suite: SuiteFile; n: number; started: number; passed: number; failed: number; pending: number } | undefined;
  let n = 0;
  const end = () => {
    if (!current) return;
    const c = current;
    print(`<-- [${clock()}] [suite ${c.n}/${files.length}] ${c.suite.name}: ${c.failed ? 'FAIL' : 'ok'}, ${c.passed} passed, ${c.failed} failed, ${c.pending} pending in ${secs(Date.now() - c.started)}`);
    current = undefined;
    finish(c.suite);
  };
  const enter = (file: string | undefined) => {
    if (!file || file === current?.suite.file) return;
    end();
    const suite = byFile.get(file) ?? { name: basename(file).replace(/\.spec\.ts$/, ''), file, profile: 'unknown' };
    current = { suite, n: ++n, started: Date.now(), passed: 0, failed: 0, pending: 0 };
    opts.onSuiteStart?.(suite);
    print(`\n--> [${clock()}] [suite ${current.n}/${files.length}] ${suite.name} (profile ${suite.profile}${opts.envoyVersion ? `, envoy ${opts.envoyVersion}` : ''}): ${relative(repoRoot, file)}`);
  };
  const record = (r: Mocha.Runnable, state: TestResult['state'], err?: unknown) => {
    const file = fileOf(r);
    enter(file);
    const suite = (file && byFile.get(file)) || current?.suite;
    if (current) current[state]++;
    tests.push({
      suite: suite?.name ?? 'unknown',
      profile: suite?.profile ?? 'unknown',
      title: r.fullTitle(),
      state,
      ...(typeof r.duration === 'number' ? { ms: r.duration } : {}),
      ...(err === undefined ? {} : { error: describeError(err, repoRoot) }),
      ...(isUserError(err) ? { userError: true } : {}),
      ...(opts.envoyVersion ? { envoyVersion: opts.envoyVersion } : {}),
    });
  };

  // A reporter that is the spec reporter with our listeners registered first, so a suite's
  // progress line comes before mocha's own lines for it.
  class Progress {
    readonly spec: Mocha.reporters.Spec;
    constructor(runner: Mocha.Runner, options: Mocha.MochaOptions) {
      runner.on('suite', (s: Mocha.Suite) => enter(s.file));
      runner.on('pass', (t: Mocha.Test) => record(t, 'passed'));
      runner.on('fail', (t: Mocha.Runnable, err: unknown) => record(t, 'failed', err));
      runner.on('pending', (t: Mocha.Test) => record(t, 'pending'));
      runner.once('end', () => {
        end();
        // mocha ran every file (a file without tests never announces itself)
        for (const f of files) finish(f);
      });
      this.spec = new Mocha.reporters.Spec(runner, options);
    }
  }

  // the root hook .mocharc.yml's suites/lib/root-hooks.ts gives the mocha command (its afterAll is endOfRun below)
  const rootHooks = {
    async beforeAll(this: Mocha.Context): Promise<void> {
      this.timeout(KIND_WARM_TIMEOUT_MS);
      await warmSharedMesh((l) => print(`    ${l}`));
    },
  };
  const mocha = new Mocha({ timeout: mocharc(repoRoot).timeout, reporter: Progress as unknown as typeof Mocha.reporters.Base, rootHooks });
  for (const f of files) mocha.addFile(f.file);
  await mocha.loadFilesAsync();
  let failures = await new Promise<number>((resolve) => mocha.run(resolve));
  // the control plane the suites shared (.mocharc.yml's root hook does this for the mocha command)
  await endOfRun().catch((e: unknown) => {
    print(`meshproof: stopping the run's shared control plane failed: ${(e as Error).message}`);
    failures++;
  });
  return { failures, tests };
}
