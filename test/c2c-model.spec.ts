// Unit tests of the CF model's RFC options (profiles/cf/model.ts): the cell properties of the draft RFC
// community#1437 (enable_c2c_mtls_listener, enable_egress_proxy, internal_domains), reserved ports in the executor's
// words, internal routes, the app environment and cells. Expected values by hand from the RFC and
// reference/cloudfoundry.md §3.
import { expect } from 'chai';
import { UserError } from '../src/harness/model/errors.ts';
import {
  appEnvironment,
  cellPorts,
  DEFAULT_CELL,
  findInstance,
  internalRoute,
  parseCfModel,
  proxyPortsOf,
  toCfTopology,
  type CfApp,
} from '../src/harness/profiles/cf/model.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';

const APPS = 'fixtures/c2c/apps.yaml';
const model = parseCfModel(parseYamlFile(APPS), APPS);
const RFC = { ...DEFAULT_CELL, enableC2cMtlsListener: true, enableEgressProxy: true };
const app = (ports: number[]): CfApp => ({ name: 'web', guid: 'g', kind: 'dora', ports, instances: [{ guid: 'i' }] });
const pairs = (ports: number[], cell = RFC) => proxyPortsOf(app(ports), cell).mappings.map((m) => `${m.appPort}->${m.proxyPort}`);

describe('cf model: the RFC\'s cell properties', () => {
  it('defaults: both off, internal_domains [apps.internal] (bosh-dns-adapter\'s; the RFC\'s own default is [])', () => {
    expect([DEFAULT_CELL.enableC2cMtlsListener, DEFAULT_CELL.enableEgressProxy, DEFAULT_CELL.internalDomains]).to.deep.equal([false, false, ['apps.internal']]);
  });

  it('with the listener, 8080 also gets 62443; the admin port skips 61445 only when the egress proxy is on', () => {
    expect(pairs([8080, 2222])).to.deep.equal(['8080->61001', '8080->61443', '8080->62443', '2222->61002']);
    expect(proxyPortsOf(app([8080, 2222]), RFC).adminPort).to.equal(61003);
    expect(pairs([8080, 2222], DEFAULT_CELL)).to.deep.equal(['8080->61001', '8080->61443', '2222->61002']);
  });

  it('reserved ports, in the executor\'s words, naming the app; the first reserved port in the app\'s order', () => {
    const refused = (ports: number[], cell: typeof RFC) => () => proxyPortsOf(app(ports), cell, 'push');
    expect(refused([8080, 61443], DEFAULT_CELL)).to.throw(UserError, 'push: app web: port 61443 is reserved for container networking');
    expect(refused([8080, 62443], RFC)).to.throw(UserError, 'push: app web: port 62443 is reserved for container networking');
    expect(refused([8080, 61445], RFC)).to.throw(UserError, 'push: app web: port 61445 is reserved for container networking');
    expect(refused([8080, 61445, 62443], RFC)).to.throw(UserError, /port 61445 is reserved/);
    expect(refused([8080, 62443, 61445], { ...RFC, enableC2cMtlsListener: false })).to.throw(UserError, /port 61445 is reserved/);
    expect(pairs([8080, 62443, 61445], DEFAULT_CELL)).to.deep.equal(['8080->61001', '8080->61443', '62443->61002', '61445->61003']);
    expect(() => parseCfModel({ ...(parseYamlFile(APPS) as object), apps: [{ name: 'x', guid: 'a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c09', kind: 'dora', ports: [8080, 61443], instances: [{ guid: 'a1f0c2d3-4e5f-4a6b-8c7d-00000000a009' }] }] }, 'apps.yaml'))
      .to.throw(UserError, 'apps.yaml: app x: port 61443 is reserved for container networking');
  });

  it('cells never NAT the C2C ports (61443, nor 62443), as diego-release#651 asks', () => {
    const d = findInstance(model, 'backend', 0, RFC);
    expect(d.mappings.map((m) => m.proxyPort)).to.include(62443);
    expect(cellPorts(d, RFC)).to.deep.equal([2222, 8080, 61001, 61002]);
  });

  it('internal routes: every instance is named <app>.apps.internal; the app sees CF_INSTANCE_MTLS_PROXY with the egress proxy', () => {
    const t = toCfTopology(model, RFC, {
      runningEnvironment: { HTTP_PROXY: 'http://127.0.0.1:61445' },
      extraPods: [{ name: 'external', namespace: 'cf', hostAliases: ['external.example.com'] }],
      routesMappedLater: { backend: ['backend-late.apps.internal'] },
    });
    const pods = Object.fromEntries(t.pods.map((p) => [p.name, p]));
    expect(pods['backend-0']!.hostAliases).to.deep.equal(['backend.apps.internal', 'backend-late.apps.internal']);
    expect(pods['backend-1']!.hostAliases).to.deep.equal(['backend.apps.internal', 'backend-late.apps.internal']);
    expect(pods['frontend-0']!.hostAliases).to.deep.equal(['frontend.apps.internal']);
    expect(pods['external']!.hostAliases).to.deep.equal(['external.example.com']);
    const env = pods['frontend-0']!.containers![0]!.env!;
    expect(env.CF_INSTANCE_MTLS_PROXY).to.equal('http://127.0.0.1:61445');
    expect(env.HTTP_PROXY).to.equal('http://127.0.0.1:61445');
    expect(env.CF_INSTANCE_GUID).to.equal('a1f0c2d3-4e5f-4a6b-8c7d-00000000a001');
    const plain = toCfTopology(model);
    expect(plain.pods.find((p) => p.name === 'frontend-0')!.containers![0]!.env!.CF_INSTANCE_MTLS_PROXY).to.equal(undefined);
    expect(internalRoute({ name: 'frontend' })).to.equal('frontend.apps.internal');
    expect(appEnvironment(findInstance(model, 'other'), { enableEgressProxy: false }, { A: '1' })).to.deep.equal({ A: '1', CF_INSTANCE_GUID: 'c3d2e4f5-6a7b-4c8d-ae9f-00000000c001' });
  });

  it('refuses an app the cell would refuse before any pod exists, and bad internal_domains', () => {
    const bad = parseCfModel({ ...(parseYamlFile(APPS) as object), apps: [{ name: 'x', guid: 'a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c09', kind: 'dora', ports: [8080, 62443], instances: [{ guid: 'a1f0c2d3-4e5f-4a6b-8c7d-00000000a009' }] }] }, 'apps.yaml');
    expect(() => toCfTopology(bad, RFC)).to.throw(UserError, 'apps.yaml: app x: port 62443 is reserved for container networking');
    expect(() => toCfTopology(model, { ...RFC, internalDomains: ['*.apps.internal'] })).to.throw(/not a domain name/);
  });
});
