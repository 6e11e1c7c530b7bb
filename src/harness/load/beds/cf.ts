// Path (d) on the CF profile (fixtures/cf/load): client → tcp-router (real HAProxy, backend TLS
// with verifyhost <instance guid>, tls-mtls job properties) → the instance's Diego Envoy → the app.
// The route is what route-emitter sends with tcp.enable_tls (CfFoundation.tcpRoute: backend_tls_port
// = the Envoy port for 8080, instance_id = the guid).
import { CfFoundation, TCP_ROUTER_KEY } from '../../profiles/cf/index.ts';
import { parseCfModel } from '../../profiles/cf/model.ts';
import { parseYamlFile } from '../../substrate/topology.ts';
import { catalogPath, type LoadBed, type LoadPath, type StartedBed } from '../path.ts';

export const CF_LOAD_FIXTURE = 'fixtures/cf/load/apps.yaml';
const ROUTER_PROPS = 'fixtures/cf/tcp-router/tls-mtls.yml';
const PORT = 1024;
const ID = 'cf-tcp-router';

export const cfBed: LoadBed = {
  profile: 'cf',
  provides: [ID],
  async start(opts): Promise<StartedBed> {
    const cf = await CfFoundation.start(parseCfModel(parseYamlFile(CF_LOAD_FIXTURE), CF_LOAD_FIXTURE), { wire: false, log: opts.log, reportsDir: opts.reportsDir });
    try {
      const inst = cf.instance('echo', 0);
      const route = cf.tcpRoute(PORT, 'echo', 0);
      await cf.configureTcpRouter(cf.tcpRouterProperties(ROUTER_PROPS), [route]);
      const cluster = cf.cluster;
      const c = catalogPath(ID)!;
      const tlsServer = ` backend_${PORT}/server_${route.backend_ip}_${route.backend_tls_port} `;
      const verify = async (): Promise<string> => {
        const seen = (await cf.haproxySessions(PORT)).length;
        const r = await cluster.probe('cf/client', { protocol: 'http', host: cf.tcpRouterIp, port: PORT, path: '/bytes/16', timeoutMs: 2000 }, { wire: false });
        if (r.evidence.status !== 200) throw new Error(`path ${ID}: GET /bytes/16 through tcp-router should be 200, got ${r.verdict} ${JSON.stringify(r.evidence)}`);
        // the session must have used the TLS server line and verified it
        const line = (await cf.newHaproxySessions(PORT, seen, 2000)).find((l) => l.includes(tlsServer));
        if (!line) throw new Error(`path ${ID}: no HAProxy session line for${tlsServer}in HAProxy's log: ${(await cf.haproxyLog()).trim().split('\n').slice(-3).join(' | ')}`);
        if (!/ ssl_err=-$/.test(line)) throw new Error(`path ${ID}: HAProxy's session shows a TLS error: ${line}`);
        return `200 via HAProxy${tlsServer.trimEnd()} (ssl verify required, verifyhost ${inst.guid}), ssl_err=-`;
      };
      const path: LoadPath = {
        id: ID,
        letter: c.letter,
        description: c.description,
        host: cluster,
        client: 'cf/client',
        target: `http://${cf.tcpRouterIp}:${PORT}`,
        procs: [
          // the container is HAProxy's master and its worker (which carries the load): the router's cost is both
          { role: 'tcp-router', kind: 'dataplane', pod: TCP_ROUTER_KEY, container: 'haproxy' },
          { role: 'server-sidecar', kind: 'dataplane', pod: inst.key, container: 'envoy' },
          { role: 'server-app', kind: 'app', pod: inst.key, container: 'app' },
        ],
        // config rendered the way the CF components' own code does (profiles/cf)
        controlPlane: 'rendered:cf-tcp-router',
        verify,
      };
      return { profile: 'cf', paths: [path], runId: cluster.runId, runDir: cluster.runDir, down: () => cf.down() };
    } catch (e) {
      await cf.down();
      throw e;
    }
  },
};
