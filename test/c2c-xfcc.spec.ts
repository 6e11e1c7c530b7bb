// Unit tests of the XFCC parser (model/xfcc.ts): the header exactly as Envoy 1.36.4 wrote it on the Diego 62443
// listener (suites/c2c-xfcc), the slash Subject form of Envoy's docs, RFC 2253 escapes, and the CF identity.
import { expect } from 'chai';
import {
  attributeValues,
  cfIdentity,
  formatRfc2253,
  formatSlash,
  immediateCaller,
  parseDistinguishedName,
  parseXfcc,
  sameDistinguishedName,
} from '../src/harness/model/xfcc.ts';

const I = 'a1f0c2d3-4e5f-4a6b-8c7d-00000000a001';
const APP = 'a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c01';
const SPACE = '8d1b8a2e-6d3f-4f7e-8b1a-1f6c3f9d0b02';
const ORG = '5e3c5c1c-0b6f-4b8e-9f57-3a0f3b7f0a01';
const HASH = '70982ce1869f6c24d18965a3f4441092f2c89fbc7e741698840c810a3a7ce317';
/** Seen live: Envoy 1.36.4, forward_client_cert_details SANITIZE_SET, set_current_client_cert_details subject/uri/dns. */
const ENVOY = `Hash=${HASH};Subject="CN=${I},OU=app:${APP},OU=space:${SPACE},OU=organization:${ORG}";URI=;DNS=${I}`;

describe('model/xfcc: parseXfcc', () => {
  it('reads the header Envoy writes on 62443: Hash, RFC 2253 Subject, empty URI= kept raw only, DNS', () => {
    const [e, ...rest] = parseXfcc(ENVOY);
    expect(rest).to.deep.equal([]);
    expect(e!.hash).to.equal(HASH);
    expect(e!.subject!.form).to.equal('rfc2253');
    expect(e!.subject!.rdns).to.deep.equal([
      [{ type: 'OU', value: `organization:${ORG}` }],
      [{ type: 'OU', value: `space:${SPACE}` }],
      [{ type: 'OU', value: `app:${APP}` }],
      [{ type: 'CN', value: I }],
    ]);
    expect(e!.uri).to.deep.equal([]);
    expect(e!.dns).to.deep.equal([I]);
    expect(e!.by).to.deep.equal([]);
    expect(e!.raw.map((p) => p.key)).to.deep.equal(['Hash', 'Subject', 'URI', 'DNS']);
    expect(cfIdentity(e!.subject!)).to.deep.equal({ instanceGuid: I, appGuid: APP, spaceGuid: SPACE, organizationGuid: ORG });
  });

  it('several hops: elements in order, the last one the immediate caller; keys case-insensitive; By/URI/DNS repeat', () => {
    const h = `By=spiffe://td/ns/a/sa/gw;Hash=AB;URI=spiffe://td/ns/a/sa/client,by=spiffe://td/ns/b/sa/b;hash=cd;Subject="";uri=spiffe://td/ns/a/sa/gw;DNS=a.example;DNS=b.example`;
    const es = parseXfcc(h);
    expect(es).to.have.length(2);
    expect(es[0]!.hash).to.equal('ab');
    expect(es[0]!.uri).to.deep.equal(['spiffe://td/ns/a/sa/client']);
    expect(es[1]!.by).to.deep.equal(['spiffe://td/ns/b/sa/b']);
    expect(es[1]!.subject).to.equal(null);
    expect(es[1]!.dns).to.deep.equal(['a.example', 'b.example']);
    expect(immediateCaller(h)!.hash).to.equal('cd');
    expect(immediateCaller('')).to.equal(null);
  });

  it('Cert and Chain are URL-decoded PEM; an escaped comma or semicolon inside the quoted Subject does not split', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const [e] = parseXfcc(`Hash=01;Cert="${encodeURIComponent(pem)}";Subject="CN=a\\, b\\;c,O=x"`);
    expect(e!.cert).to.equal(pem);
    expect(e!.subject!.rdns).to.deep.equal([[{ type: 'O', value: 'x' }], [{ type: 'CN', value: 'a, b;c' }]]);
  });

  it('refuses an unbalanced quote', () => {
    expect(() => parseXfcc('Hash=01;Subject="CN=a')).to.throw(/unbalanced double quote/);
  });
});

describe('model/xfcc: distinguished names in both forms', () => {
  it('the slash form of Envoy\'s docs and its RFC 2253 form are the same name', () => {
    const slash = parseDistinguishedName('/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client');
    const rfc = parseDistinguishedName('CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US');
    expect(slash.form).to.equal('slash');
    expect(rfc.form).to.equal('rfc2253');
    expect(slash.rdns).to.deep.equal(rfc.rdns);
    expect(sameDistinguishedName(slash, rfc)).to.equal(true);
    expect(formatRfc2253(slash)).to.equal('CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US');
    expect(formatSlash(rfc)).to.equal('/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client');
  });

  it('a Diego identity in the slash form gives the same CF identity', () => {
    const dn = parseDistinguishedName(`/OU=organization:${ORG}/OU=space:${SPACE}/OU=app:${APP}/CN=${I}`);
    expect(cfIdentity(dn)).to.deep.equal({ instanceGuid: I, appGuid: APP, spaceGuid: SPACE, organizationGuid: ORG });
    expect(attributeValues(dn, 'ou')).to.deep.equal([`organization:${ORG}`, `space:${SPACE}`, `app:${APP}`]);
  });

  it('RFC 2253 escapes (\\, \\+ \\" \\\\ hex, leading #, trailing space), multi-valued RDNs, and the RFC 1779 quoted value', () => {
    const dn = parseDistinguishedName('CN=a\\,b\\+c\\"d\\\\e,O=\\#x\\ ,OU=caf\\C3\\A9+UID=u1,L="Q, R"');
    expect(dn.rdns).to.deep.equal([
      [{ type: 'L', value: 'Q, R' }],
      [{ type: 'OU', value: 'café' }, { type: 'UID', value: 'u1' }],
      [{ type: 'O', value: '#x ' }],
      [{ type: 'CN', value: 'a,b+c"d\\e' }],
    ]);
    expect(formatRfc2253(dn)).to.equal('CN=a\\,b\\+c\\"d\\\\e,O=\\#x\\ ,OU=café+UID=u1,L=Q\\, R');
    expect(parseDistinguishedName(formatRfc2253(dn)).rdns).to.deep.equal(dn.rdns);
    expect(parseDistinguishedName('/CN=a+UID=b/O=x').rdns).to.deep.equal([[{ type: 'CN', value: 'a' }, { type: 'UID', value: 'b' }], [{ type: 'O', value: 'x' }]]);
    expect(parseDistinguishedName('').rdns).to.deep.equal([]);
  });

  it('the CF identity needs CN and exactly one app:, space: and organization: OU, in any order', () => {
    expect(cfIdentity(parseDistinguishedName(`OU=app:${APP},CN=${I},OU=organization:${ORG},OU=space:${SPACE}`))!.appGuid).to.equal(APP);
    expect(cfIdentity(parseDistinguishedName(`CN=${I},OU=app:${APP},OU=space:${SPACE}`))).to.equal(null);
    expect(cfIdentity(parseDistinguishedName(`CN=${I},OU=app:${APP},OU=app:x,OU=space:${SPACE},OU=organization:${ORG}`))).to.equal(null);
    expect(cfIdentity(parseDistinguishedName(`OU=app:${APP},OU=space:${SPACE},OU=organization:${ORG}`))).to.equal(null);
    // the RFC's own example has no organization OU: not a full CF identity
    expect(cfIdentity(parseXfcc('Hash=abc123;Subject="CN=instance-guid,OU=app:client-app-guid,OU=space:space-guid"')[0]!.subject!)).to.equal(null);
  });

  it('refuses text that is not a name', () => {
    expect(() => parseDistinguishedName('hello')).to.throw(/not type=value/);
    expect(() => parseDistinguishedName('/hello')).to.throw(/not a distinguished name/);
  });
});
