// Contrast's rules (dataplane/iptables/contrast.ts) judged by the real kernel: iptables-restore in a throwaway network
// namespace (root), listed back with `iptables -S`. The expected listings are written by hand from
// service-mesh/iptables.go and the kata.nix unit, in the kernel's canonical form: the TPROXY target lists its defaults
// (`--on-ip 0.0.0.0 --tproxy-mark 0x0/0x0`), i.e. Contrast sets no mark, and no `ip rule` is needed for delivery
// (the live proof is suites/contrast-ingress.spec.ts).
import { expect } from 'chai';
import { renderContrastIptables, renderDefaultDeny, renderRemoveDefaultDeny } from '../../src/harness/dataplane/iptables/contrast.ts';
import { parseIngress } from '../../src/harness/model/contrast/annotations.ts';
import { scratchNetns } from './lib/scratch-netns.ts';

describe('dataplane/iptables contrast: the kernel takes the rules in a throwaway namespace', function () {
  const { exec } = scratchNetns();
  const rules = (table: string) => exec(['iptables', '-t', table, '-S']).out.trim().split('\n').filter((l) => l.startsWith('-A '));

  it('the podVM\'s default deny goes to the top of INPUT', () => {
    const r = exec(['iptables-restore', '--noflush'], renderDefaultDeny());
    expect(r.status, r.err).to.equal(0);
    expect(rules('filter')).to.deep.equal(['-A INPUT -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP']);
  });

  it('web\'s mangle rules: PREROUTING → CONTRAST_INBOUND → CONTRAST_IN_REDIRECT, TPROXY without a mark', () => {
    const r = exec(['iptables-restore', '--noflush'], renderContrastIptables(parseIngress('web#8080#false##admin#9901#true', 'web').entries));
    expect(r.status, r.err).to.equal(0);
    expect(rules('mangle')).to.deep.equal([
      '-A PREROUTING -p tcp -j CONTRAST_INBOUND',
      '-A CONTRAST_INBOUND -i lo -p tcp -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -j CONTRAST_IN_REDIRECT',
      '-A CONTRAST_IN_REDIRECT -p tcp -m tcp --dport 8080 -j TPROXY --on-port 15007 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
      '-A CONTRAST_IN_REDIRECT -p tcp -m tcp --dport 9901 -j RETURN',
      '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
    ]);
    // no routing rules were added: only the kernel's three default policy rules
    expect(exec(['ip', 'rule', 'show']).out.trim().split('\n')).to.have.length(3);
  });

  it('applied again without the jump, the chains are replaced in place', () => {
    const r = exec(['iptables-restore', '--noflush'], renderContrastIptables([], { installJump: false }));
    expect(r.status, r.err).to.equal(0);
    expect(rules('mangle')).to.deep.equal([
      '-A PREROUTING -p tcp -j CONTRAST_INBOUND',
      '-A CONTRAST_INBOUND -i lo -p tcp -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -j CONTRAST_IN_REDIRECT',
      '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x0/0x0',
    ]);
  });

  it('RemoveDefaultDenyRule deletes exactly that rule; deleting it twice fails (hence its Exists check)', () => {
    expect(exec(['iptables', '-C', 'INPUT', '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP']).status).to.equal(0);
    const r = exec(['iptables-restore', '--noflush'], renderRemoveDefaultDeny());
    expect(r.status, r.err).to.equal(0);
    expect(rules('filter')).to.deep.equal([]);
    expect(exec(['iptables-restore', '--noflush'], renderRemoveDefaultDeny()).status).to.not.equal(0);
  });
});
