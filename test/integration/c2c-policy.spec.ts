// The CF container-to-container rules (dataplane/iptables/c2c.ts) judged by the real kernel: iptables-restore in a
// throwaway network namespace (root), listed back with `iptables -S`. The exact text is unit-tested in
// test/c2c-policy.spec.ts; the expected listing is written by hand from silk-release lib/rules/rules.go.
import { expect } from 'chai';
import { containerRules, PolicyServer } from '../../src/harness/model/c2c/policy.ts';
import { renderC2cIptables } from '../../src/harness/dataplane/iptables/c2c.ts';
import { BACKEND, backend0Rules, CONTAINERS, FRONTEND, OTHER, policyFile as file } from '../lib/c2c-containers.ts';
import { run, scratchNetns } from './lib/scratch-netns.ts';

describe('dataplane/iptables c2c: silk\'s rules applied by the kernel in a throwaway namespace', function () {
  const backend0 = backend0Rules();
  const { ns } = scratchNetns();

  const listed = () => run('ip', ['netns', 'exec', ns, 'iptables', '-S']).out.trim().split('\n');

  it('iptables-restore --noflush accepts it and `iptables -S` lists silk\'s rules', () => {
    const applied = run('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], renderC2cIptables(backend0, { installJumps: true }));
    expect(applied.status, applied.err).to.equal(0);
    expect(listed().filter((l) => l.startsWith('-A '))).to.deep.equal([
      '-A INPUT ! -i lo -j vpa',
      '-A INPUT ! -i lo -j overlay',
      '-A overlay -d 10.244.0.6/32 -m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-A overlay -s 10.244.0.3/32 -d 10.244.0.6/32 -m comment --comment "netin:tcp-router" -j ACCEPT',
      '-A overlay -s 10.244.0.4/32 -d 10.244.0.6/32 -m comment --comment "netin:gorouter" -j ACCEPT',
      '-A overlay -d 10.244.0.6/32 -j REJECT --reject-with icmp-port-unreachable',
      `-A vpa -s 10.244.0.5/32 -m comment --comment "src:${FRONTEND}" -j MARK --set-xmark 0x1/0xffffffff`,
      `-A vpa -s 10.244.0.8/32 -m comment --comment "src:${OTHER}" -j MARK --set-xmark 0x3/0xffffffff`,
      `-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 8080 -m mark --mark 0x1 -m comment --comment "src:${FRONTEND}_dst:${BACKEND}" -j ACCEPT`,
      `-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 61443 -m mark --mark 0x1 -m comment --comment "src:${FRONTEND}_dst:${BACKEND}" -j ACCEPT`,
      `-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 62443 -m mark --mark 0x1 -m comment --comment "src:${FRONTEND}_dst:${BACKEND}" -j ACCEPT`,
      `-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 61443:62443 -m mark --mark 0x3 -m comment --comment "src:${OTHER}_dst:${BACKEND}" -j ACCEPT`,
    ]);
  });

  it('applying a changed policy set replaces both chains in place (the jumps stay single)', () => {
    const s = new PolicyServer();
    s.add(file('other-to-backend-range'));
    const applied = run('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], renderC2cIptables(containerRules(CONTAINERS[1]!, CONTAINERS, s, [])));
    expect(applied.status, applied.err).to.equal(0);
    expect(listed().filter((l) => l.startsWith('-A '))).to.deep.equal([
      '-A INPUT ! -i lo -j vpa',
      '-A INPUT ! -i lo -j overlay',
      '-A overlay -d 10.244.0.6/32 -m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-A overlay -d 10.244.0.6/32 -j REJECT --reject-with icmp-port-unreachable',
      `-A vpa -s 10.244.0.8/32 -m comment --comment "src:${OTHER}" -j MARK --set-xmark 0x1/0xffffffff`,
      `-A vpa -d 10.244.0.6/32 -p tcp -m tcp --dport 61443:62443 -m mark --mark 0x1 -m comment --comment "src:${OTHER}_dst:${BACKEND}" -j ACCEPT`,
    ]);
  });
});
