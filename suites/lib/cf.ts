// Shared by the cf-* suites: the app topology, tcp_router properties, routes as route-emitter
// sends them, and how a routed call is judged from the wire (which legs carried plaintext).
import { readFileSync } from 'node:fs';
import { CfFoundation, type CfStartOptions } from '../../src/harness/profiles/cf/index.ts';
import { parseCfModel, parseTcpRouterProperties, type CfModel, type TcpRouterProperties } from '../../src/harness/profiles/cf/model.ts';
import { parseRouteTable, validateTcpRouteMapping, type TcpMappingEntity } from '../../src/harness/model/cf/routes.ts';
import { parseYamlFile } from '../../src/harness/substrate/topology.ts';
import { loadTruth, optional, type TableSchema } from '../../src/harness/profiles/truth.ts';
import { appendResults, toRecord, truthTable, type CellRef } from '../../src/harness/report/results.ts';
import type { Observed, ResultRecord, Verdict } from '../../src/harness/model/verdict.ts';
import type { ProbeResult } from '../../src/harness/probe/types.ts';

export const APPS = 'fixtures/cf/apps.yaml';

export const cfModel = (): CfModel => parseCfModel(parseYamlFile(APPS), APPS);

/** The schema of each fixtures/cf/truth/<name>.yaml (written from the files' own fields and legends). */
export const CF_TRUTH = {
  'route-integrity': {
    rows: {
      rows: {
        fields: {
          router: ['tcp-router', 'gorouter'], case: 'string', config: optional('string'), ca: optional(['identity', 'other']), client_cert: optional('boolean'),
          cells: ['default', 'require-client-cert'], route: ['right', 'stale'], verdict: 'verdict',
        },
        key: ['router', 'case'],
      },
    },
  },
  'tcp-routes-tls': {
    backend_port: 'integer',
    backend_tls_port: 'integer',
    configs: {
      rows: {
        fields: { name: 'string', enabled: 'boolean', ca: 'boolean', cert: 'boolean', table: optional(['enabled', 'disabled']), error: optional('string') },
        key: ['name'],
      },
    },
    tables: {
      named: true,
      rows: {
        fields: {
          tls_port: [-1, 0, 'N'], instance_id: ['right', 'empty', 'wrong'], outcome: ['tls', 'plaintext', 'verify-failed', 'no-server', 'no-frontend'], verdict: 'verdict',
          logs: 'string[]',
        },
        key: ['tls_port', 'instance_id'],
      },
    },
  },
  'unproxied-ports': {
    rows: { rows: { fields: { unproxied: 'boolean', call: 'string', port: 'integer', verdict: 'verdict' }, key: ['unproxied', 'call', 'port'] } },
  },
} as const satisfies Record<string, TableSchema>;
export type CfTruthName = keyof typeof CF_TRUTH;

export const cfTruthFile = (name: CfTruthName): string => `fixtures/cf/truth/${name}.yaml`;

/** fixtures/cf/truth/<name>.yaml, checked against its schema (one line naming the file, row and field if not). */
export function cfTruth<T>(name: CfTruthName): T {
  return loadTruth<T>(cfTruthFile(name), CF_TRUTH[name]);
}

export function startCf(opts: CfStartOptions = {}): Promise<CfFoundation> {
  return CfFoundation.start(cfModel(), { log: (l) => console.log(`    ${l}`), ...opts });
}

/** A tcp_router properties fixture (fixtures/cf/tcp-router/<name>.yml) resolved against the foundation's credentials. */
export function routerProps(cf: CfFoundation, name: string): TcpRouterProperties {
  return cf.tcpRouterProperties(`fixtures/cf/tcp-router/${name}.yml`);
}

/** The same properties built from three switches, as the job's manifest would spell them. */
export function propsFrom(cf: CfFoundation, o: { enabled: boolean; ca: boolean; cert: boolean }): TcpRouterProperties {
  const bt: Record<string, unknown> = { enabled: o.enabled };
  if (o.ca) bt.ca_cert = '((diego_instance_identity_ca.certificate))';
  if (o.cert) Object.assign(bt, { client_cert: '((tcp_router_backend_tls.certificate))', client_key: '((tcp_router_backend_tls.private_key))' });
  return parseTcpRouterProperties({ tcp_router: { backend_tls: bt } }, JSON.stringify(o), cf.variables);
}

/**
 * A TCP route to one instance as route-emitter sends it with `tcp.enable_tls` on (backend_tls_port =
 * the Envoy port, instance_id = the guid), then edited as a test needs; routing-api must accept it.
 */
export function tcpRoute(cf: CfFoundation, port: number, app: string, index = 0, edit: Partial<TcpMappingEntity> = {}): TcpMappingEntity {
  const route = { ...cf.tcpRoute(port, app, index), ...edit };
  const invalid = validateTcpRouteMapping(route);
  if (invalid) throw new Error(`routing-api would reject the test's route: ${invalid}`);
  return route;
}

/**
 * A routing table as routing-api returns it (fixtures/cf/routes/*.json). Cell addresses exist only
 * once the foundation runs, so `{{cell <app>/<index>}}` stands for an instance's cell IP; every
 * mapping must pass routing-api's validation.
 */
export function routeTable(cf: CfFoundation, file: string): TcpMappingEntity[] {
  const text = readFileSync(file, 'utf8').replace(/\{\{cell ([a-z0-9-]+)\/(\d+)\}\}/g, (_, app: string, i: string) => cf.instance(app, Number(i)).cellIp);
  // malformed JSON or a mapping routing-api would reject is one line naming the file (a UserError: exit 2)
  return parseRouteTable(text, file);
}

/**
 * The router → backend leg of a routed call: denied as the client saw it; allowed:plaintext when the
 * call's token crossed a link from the router to anything but the client in clear; else allowed:tls.
 */
export function routedVerdict(cf: CfFoundation, result: ProbeResult, routerIp = cf.tcpRouterIp): Verdict {
  if (result.observed === 'denied') return result.verdict;
  const client = cf.cluster.pod('cf/client').ip;
  const backendLeg = (result.evidence.plaintextLegs ?? []).some((l) => l.startsWith(`${routerIp}→`) && !l.startsWith(`${routerIp}→${client}:`));
  return backendLeg ? 'allowed:plaintext' : 'allowed:tls';
}

export function record(cf: CfFoundation, cell: CellRef, expected: Observed, verdict: Verdict, result: ProbeResult, pass: boolean): ResultRecord {
  return toRecord({ run: cf.cluster.runId, substrate: cf.cluster.substrate, profile: 'cf' }, cell, expected, { ...result, verdict }, pass);
}

export function report(cf: CfFoundation, suite: string, title: string, records: ResultRecord[]): void {
  appendResults(cf.cluster.runDir, records);
  console.log(truthTable(`\n    ${suite}: ${title}`, records).replace(/\n/g, '\n    '));
}
