// Unit tests of proxyFor (model/c2c/proxy-env.ts): Go's HTTP_PROXY/HTTPS_PROXY/NO_PROXY rules, written by hand from
// golang.org/x/net/http/httpproxy's documentation, and agreement with the routes pinned in
// fixtures/c2c/truth/egress-scope.yaml.
import { expect } from 'chai';
import { mtlsProxyOf, proxyFor, type Env } from '../src/harness/model/c2c/proxy-env.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';

// the RFC's CF_INSTANCE_MTLS_PROXY, as operators put it in HTTP_PROXY/HTTPS_PROXY
const P = 'http://127.0.0.1:61445';
const ENV: Env = { HTTP_PROXY: P, HTTPS_PROXY: P };
const via = (url: string, env: Env): string => {
  const p = proxyFor(url, env);
  return p === null ? 'direct' : `${p.scheme}://${p.host}:${p.port}`;
};

describe('model/c2c proxyFor: which proxy an app\'s HTTP client uses', () => {
  it('http:// uses HTTP_PROXY, https:// HTTPS_PROXY (upper case first, then lower case); nothing set: direct', () => {
    expect(via('http://backend.apps.internal:62443/', ENV)).to.equal('http://127.0.0.1:61445');
    expect(via('https://x.example.com/', { HTTP_PROXY: P })).to.equal('direct');
    expect(via('https://x.example.com/', { https_proxy: 'http://10.0.0.1:3128' })).to.equal('http://10.0.0.1:3128');
    expect(via('http://x.example.com/', { HTTP_PROXY: 'http://a:1', http_proxy: 'http://b:2' })).to.equal('http://a:1');
    expect(via('http://x.example.com/', {})).to.equal('direct');
    expect(via('http://x.example.com/', { HTTP_PROXY: '127.0.0.1:61445' }), 'no scheme means http://').to.equal('http://127.0.0.1:61445');
    expect(via('ftp://x.example.com/', ENV)).to.equal('direct');
  });

  it('CGI (REQUEST_METHOD set) ignores HTTP_PROXY (httpoxy), not HTTPS_PROXY', () => {
    expect(via('http://x.example.com/', { ...ENV, REQUEST_METHOD: 'GET' })).to.equal('direct');
    expect(via('https://x.example.com/', { ...ENV, REQUEST_METHOD: 'GET' })).to.equal('http://127.0.0.1:61445');
  });

  it('localhost and loopback addresses are never proxied', () => {
    for (const u of ['http://localhost:8080/', 'http://127.0.0.1:8080/', 'http://127.1.2.3/', 'http://[::1]:8080/']) expect(via(u, ENV), u).to.equal('direct');
  });

  const table: [string, string, string][] = [
    // [NO_PROXY, url, route]
    ['apps.internal', 'http://backend.apps.internal:62443/', 'direct'],
    ['apps.internal', 'http://apps.internal/', 'direct'],
    ['apps.internal', 'http://backend.apps.internal.example.com:62443/', 'proxy'],
    ['apps.internal', 'http://xapps.internal/', 'proxy'],
    ['.apps.internal', 'http://backend.apps.internal:62443/', 'direct'],
    ['.apps.internal', 'http://apps.internal/', 'proxy'],
    ['*.apps.internal', 'http://backend.apps.internal/', 'direct'],
    ['*.apps.internal', 'http://apps.internal/', 'proxy'],
    ['backend.apps.internal:8080', 'http://backend.apps.internal:8080/', 'direct'],
    ['backend.apps.internal:8080', 'http://backend.apps.internal:62443/', 'proxy'],
    ['example.com:80', 'http://www.example.com/', 'direct'],
    ['example.com:443', 'https://www.example.com/', 'direct'],
    [' external.example.com , apps.internal ', 'http://external.example.com:8080/', 'direct'],
    ['EXTERNAL.example.com', 'http://external.EXAMPLE.com/', 'direct'],
    ['*', 'https://anything.example.org/', 'direct'],
    ['10.244.0.0/16', 'http://10.244.0.7:8080/', 'direct'],
    ['10.244.0.0/16', 'http://10.245.0.7:8080/', 'proxy'],
    ['10.244.0.7', 'http://10.244.0.7:8080/', 'direct'],
    ['10.244.0.7:9090', 'http://10.244.0.7:8080/', 'proxy'],
    ['', 'http://backend.apps.internal:62443/', 'proxy'],
  ];
  for (const [noProxy, url, route] of table) {
    it(`NO_PROXY=${JSON.stringify(noProxy)}: ${url} → ${route}`, () => {
      expect(proxyFor(url, { ...ENV, NO_PROXY: noProxy }) === null ? 'direct' : 'proxy').to.equal(route);
    });
  }

  it('no_proxy (lower case) is read when NO_PROXY is unset', () => {
    expect(via('http://backend.apps.internal/', { ...ENV, no_proxy: 'apps.internal' })).to.equal('direct');
  });

  it('CF_INSTANCE_MTLS_PROXY as an endpoint; unset: null; a non-http proxy is refused', () => {
    expect(mtlsProxyOf({ CF_INSTANCE_MTLS_PROXY: P })).to.deep.equal({ url: P, scheme: 'http', host: '127.0.0.1', port: 61445 });
    expect(mtlsProxyOf({})).to.equal(null);
    expect(() => proxyFor('http://x/', { HTTP_PROXY: 'socks5://127.0.0.1:1080' })).to.throw(/only http:\/\/ and https:\/\/ proxies/);
  });

  it('agrees with every HTTP_PROXY/NO_PROXY route of fixtures/c2c/truth/egress-scope.yaml', () => {
    interface Row { case: string; url: string; via: string; no_proxy?: string; route: string }
    const rows = (parseYamlFile('fixtures/c2c/truth/egress-scope.yaml') as { rows: Row[] }).rows.filter((r) => r.via === 'env');
    expect(rows.length).to.be.greaterThan(10);
    for (const r of rows) expect(proxyFor(r.url, { ...ENV, NO_PROXY: r.no_proxy ?? '' }) === null ? 'direct' : 'proxy', r.case).to.equal(r.route);
  });
});
