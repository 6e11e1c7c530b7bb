// Unit tests of CF container-to-container policy: the policy server model (model/c2c/policy.ts) and its iptables
// renderer (dataplane/iptables/c2c.ts). Expected values are written by hand from the policy server's v1 API and
// silk-release lib/rules/rules.go; the kernel's reading of the text is test/integration/c2c-policy.spec.ts.
import { expect } from 'chai';
import { UserError } from '../src/harness/model/errors.ts';
import { allowedByPolicy, containerRules, parsePolicies, PolicyServer, policiesJson } from '../src/harness/model/c2c/policy.ts';
import { renderC2cIptables } from '../src/harness/dataplane/iptables/c2c.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { BACKEND, backend0Rules, CONTAINERS, FRONTEND, NET_IN, OTHER, policyFile as file } from './lib/c2c-containers.ts';

describe('model/c2c policy: the policy server v1 JSON', () => {
  it('reads `cf add-network-policy` policies (fixtures/c2c/policies)', () => {
    expect(file('frontend-to-backend')).to.deep.equal([8080, 61443, 62443].map((p) => ({ sourceId: FRONTEND, destinationId: BACKEND, protocol: 'tcp', startPort: p, endPort: p })));
    expect(file('other-to-backend-range')).to.deep.equal([{ sourceId: OTHER, destinationId: BACKEND, protocol: 'tcp', startPort: 61443, endPort: 62443 }]);
  });

  it('refuses invalid policies in the policy server\'s words, and unknown fields by name', () => {
    const one = (d: Record<string, unknown>, s: Record<string, unknown> = { id: FRONTEND }) => () => parsePolicies({ policies: [{ source: s, destination: { id: BACKEND, protocol: 'tcp', ports: { start: 8080, end: 8080 }, ...d } }] }, 'p.json');
    expect(one({ protocol: 'icmp' })).to.throw(UserError, 'p.json: policies[0]: invalid destination protocol, specify either udp or tcp');
    expect(one({ ports: { start: 0, end: 8080 } })).to.throw(UserError, 'p.json: policies[0]: invalid start port 0, must be in range 1-65535');
    expect(one({ ports: { start: 8080, end: 70000 } })).to.throw(UserError, 'invalid end port 70000, must be in range 1-65535');
    expect(one({ ports: { start: 9000, end: 8080 } })).to.throw(UserError, 'invalid port range 9000-8080, start must be less than or equal to end');
    expect(one({ port: 8080 })).to.throw(UserError, /destination: unknown field port/);
    expect(one({}, {})).to.throw(UserError, 'missing source id');
    expect(() => parsePolicies({ policy: [] }, 'p.json')).to.throw(UserError, /unknown field policy/);
    expect(() => parsePolicies([], 'p.json')).to.throw(UserError, /not a policy list/);
  });

  it('the policy server: tags in order of first appearance (4 hex digits), duplicates stored once, tags kept on removal', () => {
    const s = new PolicyServer();
    s.add([...file('frontend-to-backend'), ...file('frontend-to-backend')]);
    expect(s.policies).to.have.length(3);
    expect([s.tag(FRONTEND), s.tag(BACKEND), s.tag(OTHER)]).to.deep.equal(['0001', '0002', undefined]);
    s.add(file('other-to-backend-range'));
    expect(s.tag(OTHER)).to.equal('0003');
    s.remove(file('frontend-to-backend'));
    expect(s.policies).to.deep.equal(file('other-to-backend-range'));
    expect(s.tag(FRONTEND)).to.equal('0001');
    expect(JSON.parse(policiesJson(s.policies))).to.deep.equal({ total_policies: 1, policies: [{ source: { id: OTHER }, destination: { id: BACKEND, protocol: 'tcp', ports: { start: 61443, end: 62443 } } }] });
  });

  it('the oracle: per source app, per direction, per port range', () => {
    const s = new PolicyServer();
    s.add([...file('frontend-to-backend'), ...file('other-to-backend-range')]);
    expect(allowedByPolicy(s, FRONTEND, BACKEND, 8080)).to.equal(true);
    expect(allowedByPolicy(s, FRONTEND, BACKEND, 2222)).to.equal(false);
    expect(allowedByPolicy(s, BACKEND, FRONTEND, 8080)).to.equal(false);
    expect(allowedByPolicy(s, OTHER, BACKEND, 62000)).to.equal(true);
    expect(allowedByPolicy(s, OTHER, BACKEND, 8080)).to.equal(false);
    expect(allowedByPolicy(s, FRONTEND, BACKEND, 8080, 'udp')).to.equal(false);
  });

  it('agrees with every app-to-app row of fixtures/c2c/truth/policy.yaml (pooled connections aside)', () => {
    interface Row { step: string; from: string; to: string; port: number; call: string; pooled?: boolean; verdict: string }
    const rows = (parseYamlFile('fixtures/c2c/truth/policy.yaml') as { rows: Row[] }).rows;
    const guid: Record<string, string> = { frontend: FRONTEND, backend: BACKEND, other: OTHER };
    const s = new PolicyServer();
    const wrong: string[] = [];
    for (const step of ['none', 'frontend', 'range', 'removed']) {
      if (step === 'frontend') s.add(file('frontend-to-backend'));
      if (step === 'range') s.add(file('other-to-backend-range'));
      if (step === 'removed') s.remove(file('frontend-to-backend'));
      for (const r of rows.filter((x) => x.step === step && x.call !== 'route-tls' && !x.pooled)) {
        const to = r.to.replace(/\.apps\.internal$|\/\d+$/, '');
        if (allowedByPolicy(s, guid[r.from]!, guid[to]!, r.port) !== r.verdict.startsWith('allowed')) wrong.push(`${step} ${r.from} → ${r.to}:${r.port}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });
});

describe('dataplane/iptables c2c: renderC2cIptables', () => {
  const server = new PolicyServer();
  server.add([...file('frontend-to-backend'), ...file('other-to-backend-range')]);
  const containers = CONTAINERS;
  const netIn = NET_IN;
  const backend0 = backend0Rules();

  it('containerRules: marks for every container of a source app, one allow per policy toward this app', () => {
    expect(backend0.marks).to.deep.equal([
      { sourceIp: '10.244.0.5', tag: '0001', appGuid: FRONTEND },
      { sourceIp: '10.244.0.8', tag: '0003', appGuid: OTHER },
    ]);
    expect(backend0.allows.map((a) => `${a.tag} ${a.protocol} ${a.startPort}:${a.endPort}`)).to.deep.equal(['0001 tcp 8080:8080', '0001 tcp 61443:61443', '0001 tcp 62443:62443', '0003 tcp 61443:62443']);
    const frontend = containerRules(containers[0]!, containers, server, netIn);
    expect(frontend.marks).to.deep.equal([]);
    expect(frontend.allows).to.deep.equal([]);
  });

  const GOLDEN = `*filter
:vpa - [0:0]
:overlay - [0:0]
-A INPUT ! -i lo -j vpa
-A INPUT ! -i lo -j overlay
-A vpa -s 10.244.0.5/32 -m comment --comment src:${FRONTEND} -j MARK --set-xmark 0x0001
-A vpa -s 10.244.0.8/32 -m comment --comment src:${OTHER} -j MARK --set-xmark 0x0003
-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 8080:8080 -m mark --mark 0x0001 -m comment --comment src:${FRONTEND}_dst:${BACKEND} -j ACCEPT
-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 61443:61443 -m mark --mark 0x0001 -m comment --comment src:${FRONTEND}_dst:${BACKEND} -j ACCEPT
-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 62443:62443 -m mark --mark 0x0001 -m comment --comment src:${FRONTEND}_dst:${BACKEND} -j ACCEPT
-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 61443:62443 -m mark --mark 0x0003 -m comment --comment src:${OTHER}_dst:${BACKEND} -j ACCEPT
-A overlay -d 10.244.0.6/32 -m state --state RELATED,ESTABLISHED -j ACCEPT
-A overlay -s 10.244.0.3/32 -d 10.244.0.6/32 -m comment --comment netin:tcp-router -j ACCEPT
-A overlay -s 10.244.0.4/32 -d 10.244.0.6/32 -m comment --comment netin:gorouter -j ACCEPT
-A overlay -d 10.244.0.6/32 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`;

  it('renders silk\'s rules exactly (with the INPUT jumps on first application)', () => {
    expect(renderC2cIptables(backend0, { installJumps: true })).to.equal(GOLDEN);
    expect(renderC2cIptables(backend0)).to.equal(GOLDEN.replace('-A INPUT ! -i lo -j vpa\n-A INPUT ! -i lo -j overlay\n', ''));
  });

  it('no policy: only the overlay chain, ending in REJECT', () => {
    const none = containerRules(containers[0]!, containers, new PolicyServer(), []);
    expect(renderC2cIptables(none)).to.equal('*filter\n:vpa - [0:0]\n:overlay - [0:0]\n-A overlay -d 10.244.0.5/32 -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A overlay -d 10.244.0.5/32 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n');
  });

  it('refuses what it cannot write into a rule', () => {
    expect(() => renderC2cIptables({ ...backend0, containerIp: '10.244.0.256' })).to.throw(/container ip "10.244.0.256" is not an IPv4 address/);
    expect(() => renderC2cIptables({ ...backend0, marks: [{ sourceIp: '10.0.0.1', tag: '0001', appGuid: 'x" -j ACCEPT' }] })).to.throw(/cannot go into a rule comment/);
    expect(() => renderC2cIptables({ ...backend0, allows: [{ ...backend0.allows[0]!, startPort: 9000, endPort: 8080 }] })).to.throw(/port range 9000-8080 is empty/);
    expect(() => renderC2cIptables({ ...backend0, marks: [{ sourceIp: '10.0.0.1', tag: 'zz', appGuid: 'a' }] })).to.throw(/tag "zz" is not hexadecimal/);
  });

});
