// Path (e) on the C2C profile (fixtures/cf/load/c2c.yaml): app A (`client`) → its egress proxy
// 127.0.0.1:61445 (plain HTTP, absolute-form) → backend.apps.internal:62443 (mTLS with A's instance
// identity; B's Envoy replaces XFCC with the verified caller) → B's app (`backend`). The generator
// runs in A's container namespace and goes through the proxy as an app's HTTP client does
// (LoadPath.proxy: `GET http://backend.apps.internal:62443/bytes/<n>`, Host: backend.apps.internal:62443).
// The one network policy the path needs (client → backend tcp 62443) is added before the load.
import { C2cFoundation } from '../../profiles/c2c/index.ts';
import { parseCfModel, CF_INTERNAL_DOMAIN } from '../../profiles/cf/model.ts';
import { EGRESS_PROXY_PORT } from '../../dataplane/envoy/egress-proxy.ts';
import { cfIdentity, immediateCaller, type CfIdentity } from '../../model/xfcc.ts';
import { parseYamlFile } from '../../substrate/topology.ts';
import { catalogPath, type LoadBed, type LoadPath, type StartedBed } from '../path.ts';

export const C2C_LOAD_FIXTURE = 'fixtures/cf/load/c2c.yaml';
const ID = 'c2c-egress';
const PORT = 62443;

/**
 * The caller B's app saw in XFCC, checked against the identity A's certificate carries; resolves with the
 * evidence, throws (naming what differs) when the header is missing or names someone else.
 */
export function xfccCallerEvidence(xfcc: string | null | undefined, want: CfIdentity): string {
  if (xfcc === undefined || xfcc === null || xfcc.trim() === '') throw new Error(`no X-Forwarded-Client-Cert reached the server app: the call did not arrive over the 62443 mTLS listener`);
  const caller = immediateCaller(xfcc);
  const got = caller?.subject ? cfIdentity(caller.subject) : null;
  if (got === null) throw new Error(`X-Forwarded-Client-Cert carries no CF instance identity: ${xfcc}`);
  const wrong = (Object.keys(want) as (keyof CfIdentity)[]).filter((k) => got[k] !== want[k]);
  if (wrong.length > 0) throw new Error(`X-Forwarded-Client-Cert names another caller (${wrong.map((k) => `${k} ${got[k]} ≠ ${want[k]}`).join(', ')}): ${xfcc}`);
  return `xfcc CN=${got.instanceGuid} app:${got.appGuid}${caller!.hash ? ` Hash=${caller!.hash.slice(0, 12)}…` : ''}`;
}

export const c2cBed: LoadBed = {
  profile: 'c2c',
  provides: [ID],
  async start(opts): Promise<StartedBed> {
    const model = parseCfModel(parseYamlFile(C2C_LOAD_FIXTURE), C2C_LOAD_FIXTURE);
    const f = await C2cFoundation.start(model, { wire: false, log: opts.log, reportsDir: opts.reportsDir, external: false });
    try {
      const a = f.cf.instance('client', 0);
      const b = f.cf.instance('backend', 0);
      await f.addPolicies([{ sourceId: a.app.guid, destinationId: b.app.guid, protocol: 'tcp', startPort: PORT, endPort: PORT }]);
      const cluster = f.cluster;
      const host = `${b.app.name}.${CF_INTERNAL_DOMAIN}`;
      const proxy = { host: '127.0.0.1', port: EGRESS_PROXY_PORT };
      const want: CfIdentity = { instanceGuid: a.guid, appGuid: a.app.guid, spaceGuid: model.space, organizationGuid: model.organization };
      const verify = async (): Promise<string> => {
        const before = await f.egressMtlsRequests(a);
        const r = await cluster.probe(a.key, { protocol: 'http', host, port: PORT, path: '/echo', proxy, timeoutMs: 2500 }, { wire: false });
        if (r.evidence.status !== 200) throw new Error(`path ${ID}: GET http://${host}:${PORT}/echo through ${proxy.host}:${proxy.port} should be 200, got ${r.verdict} ${JSON.stringify(r.evidence)}`);
        let evidence: string;
        try {
          evidence = xfccCallerEvidence(r.evidence.xfcc, want);
        } catch (e) {
          throw new Error(`path ${ID}: ${(e as Error).message}`, { cause: e });
        }
        const mtls = (await f.egressMtlsRequests(a)) - before;
        if (mtls !== 1) throw new Error(`path ${ID}: the egress proxy's mTLS cluster should have sent exactly this request, its upstream_rq_total moved by ${mtls}`);
        return `200 via ${proxy.host}:${proxy.port} → ${host}:${PORT}, ${evidence}, served by ${r.evidence.servedBy ?? '?'}`;
      };
      const c = catalogPath(ID)!;
      const path: LoadPath = {
        id: ID,
        letter: c.letter,
        description: c.description,
        host: cluster,
        client: a.key,
        target: `http://${host}:${PORT}`,
        proxy: `${proxy.host}:${proxy.port}`,
        procs: [
          { role: 'egress-proxy', kind: 'dataplane', pod: a.key, container: 'envoy' },
          { role: 'server-sidecar', kind: 'dataplane', pod: b.key, container: 'envoy' },
          { role: 'server-app', kind: 'app', pod: b.key, container: 'app' },
        ],
        // config rendered the way the CF components' own code does (profiles/c2c)
        controlPlane: 'rendered:c2c',
        verify,
      };
      return { profile: 'c2c', paths: [path], runId: cluster.runId, runDir: cluster.runDir, down: () => f.down() };
    } catch (e) {
      await f.down();
      throw e;
    }
  },
};
