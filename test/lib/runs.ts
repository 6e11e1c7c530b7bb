// Run directories' contents written by hand (results.json of two shards of one run), for the tests of
// meshproof report / diff / merge, in process (test/cli.spec.ts) and as a real process (test/integration/cli.spec.ts).
import type { Evidence, Observed, ResultRecord, Verdict } from '../../src/harness/model/verdict.ts';
import type { CellRecord, ResultsFile, RunMetadata } from '../../src/harness/report/meta.ts';

export const ev = (e: Partial<Evidence> = {}): Evidence => ({ peer: null, alpn: null, xfcc: null, status: null, error: null, wire: null, ms: 4, ...e });

export function rec(run: string, suite: string, from: string, to: string, expected: Observed, verdict: Verdict, extra: Partial<CellRecord> = {}): CellRecord {
  const observed: Observed = verdict.startsWith('allowed') ? 'allowed' : 'denied';
  const r: ResultRecord = {
    run, substrate: 'netns', profile: suite.startsWith('cf-') ? 'cf' : 'istio', suite, scenario: 'main', from, to, port: 5000, protocol: 'http',
    expected, observed, verdict, pass: observed === expected, evidence: ev({ error: verdict.startsWith('denied') ? 'ECONNRESET' : null }),
  };
  return { ...r, ...extra };
}

export const meta = (run: string, extra: Partial<RunMetadata> = {}): RunMetadata => ({
  run, substrate: 'netns', profiles: ['istio'], started: '2026-11-24T05:00:00.000Z', finished: '2026-11-24T05:01:00.000Z',
  machine: { hostname: 'ci', cpus: 2, memMiB: 4096, kernel: '6.1.0', os: 'Debian GNU/Linux 12 (bookworm)' },
  versions: { envoy: '1.36.4', haproxy: '2.6.12' }, envoyVersions: ['1.36.4'], ...extra,
});

// Shard 1: istio-strict-denial, all correct. Shard 2: cf-route-integrity with one wrong cell.
export const SHARD1: ResultsFile = {
  meta: meta('s1', { shard: '1/2' }),
  records: [
    rec('s1', 'istio-strict-denial', 'sleep', 'age', 'allowed', 'allowed:mtls', { envoyVersion: '1.36.4' }),
    rec('s1', 'istio-strict-denial', 'sleep-naked', 'age', 'denied', 'denied:reset', { envoyVersion: '1.36.4' }),
  ],
  tests: [{ suite: 'istio-strict-denial', profile: 'istio', title: 'STRICT every cell', state: 'passed', ms: 10, envoyVersion: '1.36.4' }],
  budgets: [{ path: 'sleep→age mtls', metric: 'rps', value: 1000, limit: 500, unit: 'req/s', pass: true, envoyVersion: '1.36.4' }],
};
export const SHARD2: ResultsFile = {
  meta: meta('s2', { shard: '2/2', profiles: ['cf'] }),
  records: [
    rec('s2', 'cf-route-integrity', 'router', 'app-1', 'allowed', 'allowed:tls', { envoyVersion: '1.36.4' }),
    rec('s2', 'cf-route-integrity', 'router', 'app-2', 'denied', 'allowed:plaintext', { envoyVersion: '1.36.4' }),
  ],
  tests: [{ suite: 'cf-route-integrity', profile: 'cf', title: 'route integrity every cell', state: 'failed', ms: 12, error: 'AssertionError: router → app-2: expected allowed:plaintext to equal denied:tls-handshake', envoyVersion: '1.36.4' }],
};
