// Shared by the c2c-* suites: the c2c app topology and policies, how a row's call becomes a probe (direct, through
// the egress proxy as absolute-form http, or through a CONNECT tunnel), and records/truth tables like the cf suites.
import { readFileSync } from 'node:fs';
import { C2cFoundation, type C2cStartOptions } from '../../src/harness/profiles/c2c/index.ts';
import { parseCfModel, type CfInstance, type CfModel } from '../../src/harness/profiles/cf/model.ts';
import { parsePolicies, type C2cPolicy } from '../../src/harness/model/c2c/policy.ts';
import { cfIdentity, immediateCaller, type CfIdentity } from '../../src/harness/model/xfcc.ts';
import { parseYamlFile } from '../../src/harness/substrate/topology.ts';
import { loadTruth, optional, type TableSchema } from '../../src/harness/profiles/truth.ts';
import { appendResults, toRecord, truthTable, type CellRef } from '../../src/harness/report/results.ts';
import { observedOf, type Observed, type ResultRecord, type Verdict } from '../../src/harness/model/verdict.ts';
import type { ProbeRequest, ProbeResult } from '../../src/harness/probe/types.ts';

export const C2C_APPS = 'fixtures/c2c/apps.yaml';
/**
 * Probe budget. Denials here are REJECTs with ICMP port unreachable (silk's overlay default), which the kernel rate
 * limits per peer (net.ipv4.icmp_ratelimit: a burst of 6, then one a second); a SYN whose ICMP was held back is
 * retransmitted after 1 s and refused then, so 2.5 s keeps a refusal a refusal.
 */
export const C2C_TIMEOUT_MS = 2500;

export const c2cModel = (): CfModel => parseCfModel(parseYamlFile(C2C_APPS), C2C_APPS);

export function startC2c(opts: C2cStartOptions = {}): Promise<C2cFoundation> {
  return C2cFoundation.start(c2cModel(), { log: (l) => console.log(`    ${l}`), ...opts });
}

/** A policy file of fixtures/c2c/policies (policy server v1 JSON). */
export function policyFile(name: string): C2cPolicy[] {
  const file = `fixtures/c2c/policies/${name}.json`;
  return parsePolicies(JSON.parse(readFileSync(file, 'utf8')), file);
}

/** The schema of each fixtures/c2c/truth/<name>.yaml (written from the files' own fields and legends). */
export const C2C_TRUTH = {
  '61443': {
    rows: {
      rows: {
        fields: { rfc: ['on', 'off'], case: 'string', port: 'integer', call: ['https', 'tls', 'mtls'], spoof: optional('boolean'), verdict: 'verdict', xfcc: optional(['none', 'spoofed', 'frontend']) },
        key: ['rfc', 'case'],
      },
    },
  },
  'egress-scope': {
    rows: {
      rows: {
        fields: {
          case: 'string', from: optional('string'), url: 'string', via: ['mtls-proxy', 'env', 'direct'], no_proxy: optional('string'), cert: optional(['own']),
          route: ['proxy', 'direct'], in_scope: optional('boolean'), verdict: 'verdict', xfcc: optional('string'), server: optional('string'), wire: ['plaintext-seen', 'no-plaintext'],
        },
        key: ['case'],
      },
    },
  },
  policy: {
    rows: {
      rows: {
        fields: {
          step: ['none', 'frontend', 'range', 'removed'], from: 'string', to: 'string', port: 'integer', call: ['http', 'https', 'mtls', 'proxy', 'tcp', 'route-tls'],
          pooled: optional('boolean'), verdict: 'verdict',
        },
        key: ['step', 'from', 'to', 'port', 'call'],
      },
    },
  },
  'reserved-ports': {
    rows: {
      rows: { fields: { case: 'string', ports: 'integer[]', listener: 'boolean', egress: 'boolean', outcome: 'string', mappings: optional('string[]') }, key: ['case'] },
    },
  },
  xfcc: {
    format: 'string',
    rows: {
      rows: {
        fields: {
          case: 'string', caller: 'string', via: ['proxy', 'direct'], cert: ['proxy', 'own', 'none', 'other-ca', 'expired'], spoof: optional('boolean'), verdict: 'verdict',
          xfcc: optional('string'), error: optional('string'),
        },
        key: ['case'],
      },
    },
  },
} as const satisfies Record<string, TableSchema>;
export type C2cTruthName = keyof typeof C2C_TRUTH;

export const c2cTruthFile = (name: C2cTruthName): string => `fixtures/c2c/truth/${name}.yaml`;

/** fixtures/c2c/truth/<name>.yaml, checked against its schema (one line naming the file, row and field if not). */
export function c2cTruth<T>(name: C2cTruthName): T {
  return loadTruth<T>(c2cTruthFile(name), C2C_TRUTH[name]);
}

/** The truth rows of fixtures/c2c/truth/<name>.yaml, checked. */
export function truthRows<T>(name: C2cTruthName): T[] {
  return c2cTruth<{ rows: T[] }>(name).rows;
}

/** The CF identity an instance's certificates carry (CN = instance guid; Cloud Controller's OUs). */
export function identityOf(f: C2cFoundation, inst: CfInstance): CfIdentity {
  return { instanceGuid: inst.guid, appGuid: inst.app.guid, spaceGuid: f.cf.model.space, organizationGuid: f.cf.model.organization };
}

/** The identity in the immediate caller's XFCC element as the server saw it, or null. */
export function xfccIdentity(result: ProbeResult): CfIdentity | null {
  const x = result.evidence.xfcc;
  if (x === null || x === '') return null;
  const caller = immediateCaller(x);
  return caller?.subject ? cfIdentity(caller.subject) : null;
}

/**
 * A probe for `url` from an app's container: direct, or through `proxy` (http:// as absolute-form, https:// in a
 * CONNECT tunnel), the way an app's HTTP client would send it.
 */
export function urlProbe(url: string, opts: { proxy?: { host: string; port: number } | null; tls?: ProbeRequest['tls']; headers?: Record<string, string> } = {}): ProbeRequest {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  const req: ProbeRequest = {
    protocol: https ? 'https' : 'http',
    host: u.hostname,
    port: u.port === '' ? (https ? 443 : 80) : Number(u.port),
    path: `${u.pathname}${u.search}`,
    timeoutMs: C2C_TIMEOUT_MS,
  };
  if (opts.tls) req.tls = opts.tls;
  if (opts.headers) req.headers = opts.headers;
  if (opts.proxy) req.proxy = { host: opts.proxy.host, port: opts.proxy.port };
  return req;
}

export function record(f: C2cFoundation, cell: CellRef, expected: Observed, verdict: Verdict, result: ProbeResult, pass: boolean): ResultRecord {
  return toRecord({ run: f.cluster.runId, substrate: f.cluster.substrate, profile: 'c2c' }, cell, expected, { ...result, verdict }, pass);
}

export function report(f: C2cFoundation, suite: string, title: string, records: ResultRecord[]): void {
  appendResults(f.cluster.runDir, records);
  console.log(truthTable(`\n    ${suite}: ${title}`, records).replace(/\n/g, '\n    '));
}

export { observedOf };
