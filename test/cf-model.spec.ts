// Unit tests of the CF profile's model (profiles/cf/model.ts): the app topology file, cells and their
// host ports (executor NetIn rules), and tcp_router job properties. Expected values are written by
// hand from reference/cloudfoundry.md §1 and §3.
import { expect } from 'chai';
import { UserError } from '../src/harness/model/errors.ts';
import {
  BOSH_CA_PATH,
  BOSH_CLIENT_PEM_PATH,
  cellPorts,
  DEFAULT_CELL,
  findInstance,
  instances,
  parseCfModel,
  parseTcpRouterProperties,
  routerIptables,
  toCfTopology,
} from '../src/harness/profiles/cf/model.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';

const APPS = 'fixtures/cf/apps.yaml';
const model = parseCfModel(parseYamlFile(APPS), APPS);
const G = '0f3e9d2c-7a41-4c1b-8e5d-000000000001';

describe('cf profile: app topology', () => {
  it('reads the fixture: dora with two instances, two tcp-listeners with server ids', () => {
    expect(instances(model).map((i) => `${i.pod} ${i.guid} ${i.serverId ?? ''}`.trim())).to.deep.equal([
      `dora-0 ${G}`,
      'dora-1 0f3e9d2c-7a41-4c1b-8e5d-000000000002',
      'tcp-listener-0 3b4c5d6e-7f80-4192-a3b4-000000000011 server1',
      'tcp-listener-2-0 3b4c5d6e-7f80-4192-a3b4-000000000021 server2',
    ]);
  });

  it('gives a web process [8080, 2222] the executor ports 61001→8080, 61443→8080, 61002→2222 and admin 61003', () => {
    const d = findInstance(model, 'dora', 0);
    expect(d.mappings.map((m) => `${m.proxyPort}→${m.appPort}`)).to.deep.equal(['61001→8080', '61443→8080', '61002→2222']);
    expect(d.adminPort).to.equal(61003);
  });

  it('cell host ports: Envoy ports but never 61443; app ports only with unproxied port mappings on', () => {
    const d = findInstance(model, 'dora', 0);
    expect(cellPorts(d, DEFAULT_CELL)).to.deep.equal([2222, 8080, 61001, 61002]);
    expect(cellPorts(d, { ...DEFAULT_CELL, unproxiedPortMappings: false })).to.deep.equal([61001, 61002]);
  });

  it('topology: client, tcp-router and gorouter (overlay unreachable), one pod and one cell per instance', () => {
    const t = toCfTopology(model);
    expect(t.pods.map((p) => p.name)).to.deep.equal(['client', 'tcp-router', 'gorouter', 'dora-0', 'dora-1', 'tcp-listener-0', 'tcp-listener-2-0']);
    expect(t.services?.map((s) => s.name)).to.deep.equal(['cell-dora-0', 'cell-dora-1', 'cell-tcp-listener-0', 'cell-tcp-listener-2-0']);
    expect(t.pods.find((p) => p.name === 'tcp-router')?.iptables).to.equal(routerIptables());
    expect(routerIptables()).to.include('-A OUTPUT -d 10.244.0.0/16 -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset');
    const dora = t.pods.find((p) => p.name === 'dora-0')!;
    expect(dora.containers?.map((c) => `${c.name}:${c.workload}`)).to.deep.equal(['app:dora', 'port-2222:tcp-listener']);
    expect(JSON.parse(dora.containers![0]!.env!.VCAP_APPLICATION!).instance_id).to.equal(G);
  });

  const bad = (patch: (o: Record<string, unknown>) => void) => {
    const raw = structuredClone(parseYamlFile(APPS)) as Record<string, unknown>;
    patch(raw);
    return () => parseCfModel(raw, 'apps.yaml');
  };

  it('rejects unknown fields, bad guids, duplicate instances and the reserved port 61443, naming them', () => {
    expect(bad((o) => (o.stack = 'cflinuxfs4'))).to.throw(UserError, /unknown field stack/);
    expect(bad((o) => ((o.apps as { guid: string }[])[0]!.guid = 'nope'))).to.throw(UserError, /apps\[0\]\.guid must be a guid/);
    expect(bad((o) => ((o.apps as { instances: unknown[] }[])[1]!.instances = [{ guid: G }]))).to.throw(UserError, new RegExp(`${G} appears twice`));
    expect(bad((o) => ((o.apps as { ports: number[] }[])[0]!.ports = [8080, 61443]))).to.throw(/port 61443 is reserved for container networking/);
    expect(bad((o) => ((o.apps as { kind: string }[])[0]!.kind = 'java'))).to.throw(UserError, /kind must be dora, tcp-listener or echo/);
  });
});

describe('cf profile: tcp_router job properties', () => {
  const vars = { 'ca.certificate': 'CA-PEM\n', 'client.certificate': 'CERT-PEM\n', 'client.private_key': 'KEY-PEM\n' };

  it('maps ca_cert and client_cert/client_key to the BOSH-rendered files', () => {
    const p = parseTcpRouterProperties({ tcp_router: { backend_tls: { enabled: true, ca_cert: '((ca.certificate))', client_cert: '((client.certificate))', client_key: '((client.private_key))' } } }, 'x.yml', vars);
    expect(p).to.deep.equal({
      backendTls: { enabled: true, caCertPath: BOSH_CA_PATH, clientCertAndKeyPath: BOSH_CLIENT_PEM_PATH },
      files: { ca: 'CA-PEM\n', clientCertAndKey: 'CERT-PEM\nKEY-PEM\n' },
    });
  });

  it('defaults to backend_tls off with no files', () => {
    expect(parseTcpRouterProperties({ tcp_router: {} }, 'x.yml', vars)).to.deep.equal({ backendTls: { enabled: false }, files: {} });
  });

  it('names an unknown variable, an unknown key, and a cert without its key', () => {
    expect(() => parseTcpRouterProperties({ tcp_router: { backend_tls: { ca_cert: '((nope.certificate))' } } }, 'x.yml', vars)).to.throw(UserError, /unknown variable \(\(nope\.certificate\)\)/);
    expect(() => parseTcpRouterProperties({ tcp_router: { backend_tls: { verify: true } } }, 'x.yml', vars)).to.throw(UserError, /unknown field verify/);
    expect(() => parseTcpRouterProperties({ tcp_router: { backend_tls: { client_cert: 'X' } } }, 'x.yml', vars)).to.throw(UserError, /client_cert and client_key go together/);
  });
});
