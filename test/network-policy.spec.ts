// Unit tests of meshproof's NetworkPolicy engine (dataplane/iptables/network-policy.ts): the Cyclonus-style cases of
// test/lib/network-policy-cases.ts against the engine's semantics, and the iptables-restore text of three of them
// written out by hand. The kernel enforces the same cases live in test/integration/network-policy.spec.ts.
import { expect } from 'chai';
import { connectionAllowed, currentRules, isolatedPods, policyTypesOf, renderNetworkPolicy, selectorMatches, type NetworkPolicyInput } from '../src/harness/dataplane/iptables/network-policy.ts';
import { allCells, cellKey, NP_CASES, NP_NAMESPACES, NP_PODS } from './lib/network-policy-cases.ts';

const IPS: Record<string, string> = { 'x/a': '10.244.0.2', 'x/b': '10.244.0.3', 'y/c': '10.244.0.4' };
const ip = (pod: string): string => IPS[pod]!;

function inputOf(c: (typeof NP_CASES)[number]): NetworkPolicyInput {
  return {
    policies: c.policies(ip),
    pods: NP_PODS.map((p) => ({ namespace: p.namespace, name: p.name, ip: ip(`${p.namespace}/${p.name}`), labels: { ...p.labels }, ports: p.ports.map((x) => ({ ...x })) })),
    namespaces: NP_NAMESPACES,
  };
}

describe('dataplane/iptables network-policy: NetworkPolicy semantics (Cyclonus-style cases)', () => {
  it('the hand-written cases: 14 cases of 12 cells each', () => {
    expect(NP_CASES).to.have.length(14);
    expect(allCells()).to.have.length(12);
    for (const c of NP_CASES) for (const d of c.denied) expect(allCells().map((x) => cellKey(x.from, x.to, x.port)), `${c.name}: ${d} is a cell`).to.include(d);
  });

  for (const c of NP_CASES) {
    it(c.name, () => {
      const isolated = isolatedPods(inputOf(c));
      const denied = allCells()
        .filter(({ from, to, port }) => !connectionAllowed(isolated, ip(from), ip(to), port))
        .map(({ from, to, port }) => cellKey(from, to, port));
      expect(denied.sort()).to.deep.equal([...c.denied].sort());
    });
  }

  it('label selectors: In, NotIn, Exists, DoesNotExist; an empty selector selects everything; an unknown operator is refused', () => {
    const labels = { app: 'dora', tier: 'web' };
    expect(selectorMatches({}, labels)).to.equal(true);
    expect(selectorMatches(undefined, {})).to.equal(true);
    expect(selectorMatches({ matchLabels: { app: 'dora' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] }, labels)).to.equal(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web'] }] }, labels)).to.equal(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels)).to.equal(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels)).to.equal(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels)).to.equal(true);
    expect(() => selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'Gt' }] }, labels)).to.throw(/operator "Gt" is not In, NotIn, Exists or DoesNotExist/);
  });

  it("policyTypes default as the API server's: Ingress, plus Egress when there are egress rules", () => {
    const meta = { namespace: 'x', name: 'p' };
    expect(policyTypesOf({ metadata: meta, spec: { podSelector: {} } })).to.deep.equal(['ingress']);
    expect(policyTypesOf({ metadata: meta, spec: { podSelector: {}, egress: [{}] } })).to.deep.equal(['ingress', 'egress']);
    expect(policyTypesOf({ metadata: meta, spec: { podSelector: {}, policyTypes: ['Egress'], ingress: [{}] } })).to.deep.equal(['egress']);
  });

  it('a named port the destination does not have allows nothing (not every port)', () => {
    const input = inputOf(NP_CASES[0]!);
    input.policies = [{ metadata: { namespace: 'y', name: 'c-grpc' }, spec: { podSelector: {}, ingress: [{ ports: [{ port: 'grpc' }] }] } }];
    const isolated = isolatedPods(input);
    expect(isolated.map((i) => [i.pod.name, i.direction, i.allows.length])).to.deep.equal([['c', 'ingress', 0]]);
    expect(connectionAllowed(isolated, ip('x/a'), ip('y/c'), 80)).to.equal(false);
  });
});

describe('dataplane/iptables network-policy: the iptables-restore text', () => {
  it('deny-all ingress in x: a chain per isolated pod, no allow, the drop after it; FORWARD jumps first', () => {
    expect(renderNetworkPolicy(inputOf(NP_CASES[1]!))).to.equal(
      [
        '*filter',
        ':MP-NETPOL - [0:0]',
        ':MP-NP-I-10.244.0.2 - [0:0]',
        ':MP-NP-I-10.244.0.3 - [0:0]',
        '-I FORWARD 1 -j MP-NETPOL',
        '-A MP-NETPOL -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-A MP-NETPOL -j MARK --set-xmark 0x0/0x30000',
        '-A MP-NETPOL -d 10.244.0.2/32 -m comment --comment "ingress x/a" -j MP-NP-I-10.244.0.2',
        '-A MP-NETPOL -d 10.244.0.2/32 -m mark ! --mark 0x20000/0x20000 -j DROP',
        '-A MP-NETPOL -d 10.244.0.3/32 -m comment --comment "ingress x/b" -j MP-NP-I-10.244.0.3',
        '-A MP-NETPOL -d 10.244.0.3/32 -m mark ! --mark 0x20000/0x20000 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('ipBlock with except: a sub-chain returns for the excepted range before it marks', () => {
    const c = NP_CASES.find((x) => x.name.startsWith('ipBlock'))!;
    expect(renderNetworkPolicy(inputOf(c), { chains: [], jumped: true })).to.equal(
      [
        '*filter',
        ':MP-NETPOL - [0:0]',
        ':MP-NP-I-10.244.0.2 - [0:0]',
        ':MP-NP-I-10.244.0.2-0 - [0:0]',
        '-A MP-NETPOL -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-A MP-NETPOL -j MARK --set-xmark 0x0/0x30000',
        '-A MP-NETPOL -d 10.244.0.2/32 -m comment --comment "ingress x/a" -j MP-NP-I-10.244.0.2',
        '-A MP-NETPOL -d 10.244.0.2/32 -m mark ! --mark 0x20000/0x20000 -j DROP',
        '-A MP-NP-I-10.244.0.2 -s 10.244.0.0/16 -m comment --comment "x/a-ipblock" -j MP-NP-I-10.244.0.2-0',
        '-A MP-NP-I-10.244.0.2-0 -s 10.244.0.3/32 -j RETURN',
        '-A MP-NP-I-10.244.0.2-0 -m comment --comment "x/a-ipblock" -j MARK --set-xmark 0x20000/0x20000',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('egress and defaulted ingress of y/c; a chain no longer needed is emptied and deleted; the jump is not added twice', () => {
    const c = NP_CASES.find((x) => x.name.startsWith('y/c with egress'))!;
    expect(renderNetworkPolicy(inputOf(c), { chains: ['MP-NETPOL', 'MP-NP-I-10.244.0.9'], jumped: true })).to.equal(
      [
        '*filter',
        ':MP-NETPOL - [0:0]',
        ':MP-NP-E-10.244.0.4 - [0:0]',
        ':MP-NP-I-10.244.0.4 - [0:0]',
        ':MP-NP-I-10.244.0.9 - [0:0]',
        '-A MP-NETPOL -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-A MP-NETPOL -j MARK --set-xmark 0x0/0x30000',
        '-A MP-NETPOL -s 10.244.0.4/32 -m comment --comment "egress y/c" -j MP-NP-E-10.244.0.4',
        '-A MP-NETPOL -s 10.244.0.4/32 -m mark ! --mark 0x10000/0x10000 -j DROP',
        '-A MP-NETPOL -d 10.244.0.4/32 -m comment --comment "ingress y/c" -j MP-NP-I-10.244.0.4',
        '-A MP-NETPOL -d 10.244.0.4/32 -m mark ! --mark 0x20000/0x20000 -j DROP',
        '-A MP-NP-E-10.244.0.4 -d 10.244.0.2/32 -p tcp --dport 80 -m comment --comment "y/c-egress" -j MARK --set-xmark 0x10000/0x10000',
        '-X MP-NP-I-10.244.0.9',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('reads back what iptables-save lists: its chains and the FORWARD jump', () => {
    const save = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':MP-NETPOL - [0:0]', ':MP-NP-I-10.244.0.2 - [0:0]', ':OTHER - [0:0]', '-A FORWARD -j MP-NETPOL', 'COMMIT'].join('\n');
    expect(currentRules(save)).to.deep.equal({ chains: ['MP-NETPOL', 'MP-NP-I-10.244.0.2'], jumped: true });
    expect(currentRules('*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n')).to.deep.equal({ chains: [], jumped: false });
  });

  it('a malformed ipBlock CIDR is refused with the value', () => {
    const input = inputOf(NP_CASES[0]!);
    input.policies = [{ metadata: { namespace: 'x', name: 'bad' }, spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/33' } }] }] } }];
    expect(() => renderNetworkPolicy(input)).to.throw(/ipBlock: "10.244.0.0\/33" is not an IPv4 CIDR/);
  });
});
