// Unit tests of Contrast's ingress rules and startup default deny as iptables-restore text
// (dataplane/iptables/contrast.ts), written by hand from service-mesh/iptables.go IngressIPTableRules, the kata.nix
// unit and internal/defaultdeny. The real kernel applies them in test/integration/contrast-iptables.spec.ts.
import { expect } from 'chai';
import { renderContrastIptables, renderDefaultDeny, renderRemoveDefaultDeny } from '../src/harness/dataplane/iptables/contrast.ts';
import { parseIngress } from '../src/harness/model/contrast/annotations.ts';

describe('dataplane/iptables contrast: IngressIPTableRules and the default deny', () => {
  it('web (web#8080#false + the admin port): 8080 to 15007, 9901 returned, every other port to 15006', () => {
    expect(renderContrastIptables(parseIngress('web#8080#false##admin#9901#true', 'web').entries)).to.equal(
      [
        '*mangle',
        ':CONTRAST_INBOUND - [0:0]',
        ':CONTRAST_IN_REDIRECT - [0:0]',
        '-A PREROUTING -p tcp -j CONTRAST_INBOUND',
        '-A CONTRAST_INBOUND -p tcp -i lo -j RETURN',
        '-A CONTRAST_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
        '-A CONTRAST_INBOUND -p tcp -j CONTRAST_IN_REDIRECT',
        '-A CONTRAST_IN_REDIRECT -p tcp --dport 8080 -j TPROXY --on-port 15007',
        '-A CONTRAST_IN_REDIRECT -p tcp --dport 9901 -j RETURN',
        '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('"" (emoji): only the catch-all TPROXY to 15006; AppendUnique keeps a repeated entry once; the jump can be left out', () => {
    const text = renderContrastIptables([]);
    expect(text.split('\n').filter((l) => l.startsWith('-A CONTRAST_IN_REDIRECT'))).to.deep.equal(['-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006']);
    const twice = renderContrastIptables(parseIngress('a#80#true##b#80#true##c#80#false', 'x').entries, { installJump: false });
    expect(twice.split('\n').filter((l) => l.startsWith('-A '))).to.deep.equal([
      '-A CONTRAST_INBOUND -p tcp -i lo -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A CONTRAST_INBOUND -p tcp -j CONTRAST_IN_REDIRECT',
      '-A CONTRAST_IN_REDIRECT -p tcp --dport 80 -j RETURN',
      '-A CONTRAST_IN_REDIRECT -p tcp --dport 80 -j TPROXY --on-port 15007',
      '-A CONTRAST_IN_REDIRECT -p tcp -j TPROXY --on-port 15006',
    ]);
  });

  it('the podVM unit inserts the default deny at the top of INPUT; the sidecar deletes exactly that rule', () => {
    expect(renderDefaultDeny()).to.equal('*filter\n-I INPUT -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP\nCOMMIT\n');
    expect(renderRemoveDefaultDeny()).to.equal('*filter\n-D INPUT -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP\nCOMMIT\n');
  });

  it('a port outside 1-65535 is refused', () => {
    expect(() => renderContrastIptables([{ name: 'x', port: 0, disableTLS: true }])).to.throw(/ingress port 0 is not a TCP port/);
  });
});
