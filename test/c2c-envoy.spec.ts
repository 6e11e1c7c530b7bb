// Unit tests of the draft RFC's egress proxy (dataplane/envoy/egress-proxy.ts) and its place in the Diego sidecar
// (dataplane/envoy/diego.ts): exact Envoy objects written by hand from the RFC (community#1437 Phase 2) and Envoy's
// forward-proxy fields (tooling.md §2), and the 61443 listener untouched by the RFC options. The real
// `envoy --mode validate` judges the same configs in test/integration/c2c-envoy.spec.ts.
import { expect } from 'chai';
import { parse } from 'yaml';
import {
  inInternalDomain,
  normalizeInternalDomains,
  renderEgressProxy,
} from '../src/harness/dataplane/envoy/egress-proxy.ts';
import { renderDiegoSidecar } from '../src/harness/dataplane/envoy/diego.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { arr, obj, rfcPlan as plan, SDS, type Obj } from './lib/diego-plans.ts';

const sds = (file: string, secret: string): Obj => ({ name: secret, sds_config: { path_config_source: { path: `${SDS}/${file}`, watched_directory: { path: SDS } } } });
const dnsCache = {
  name: 'egress-proxy-dns',
  dns_lookup_family: 'V4_ONLY',
  typed_dns_resolver_config: { name: 'envoy.network.dns_resolver.getaddrinfo', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig' } },
};
const connectRoute = { match: { connect_matcher: {} }, route: { cluster: 'egress-forward', timeout: '0s', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] } };

describe('dataplane/envoy egress-proxy: renderEgressProxy', () => {
  const r = renderEgressProxy({ internalDomains: ['apps.internal.', 'My.Apps.Internal', 'apps.internal'], sdsDir: SDS });

  it('internal_domains as operators write them: trailing dot and case dropped, duplicates once; non-names refused', () => {
    expect(normalizeInternalDomains(['apps.internal.', 'My.Apps.Internal', 'apps.internal'])).to.deep.equal(['apps.internal', 'my.apps.internal']);
    expect(() => normalizeInternalDomains(['*.apps.internal'])).to.throw(/"\*\.apps\.internal" is not a domain name/);
    expect(() => normalizeInternalDomains(['apps.internal:62443'])).to.throw(/not a domain name/);
    expect(() => renderEgressProxy({ internalDomains: [], sdsDir: SDS })).to.throw(/internal_domains is empty/);
    expect(() => renderEgressProxy({ internalDomains: ['apps.internal'], sdsDir: 'rel' })).to.throw(/must be an absolute path/);
    expect(inInternalDomain('b.apps.internal', ['apps.internal'])).to.equal(true);
    expect(inInternalDomain('apps.internal', ['apps.internal'])).to.equal(false);
    expect(inInternalDomain('b.apps.internal.example.com', ['apps.internal'])).to.equal(false);
    expect(inInternalDomain('bapps.internal', ['apps.internal'])).to.equal(false);
  });

  it('its scope (plain http:// to *.<internal domain>:62443) is the in_scope column of fixtures/c2c/truth/egress-scope.yaml', () => {
    const rows = (parseYamlFile('fixtures/c2c/truth/egress-scope.yaml') as { rows: { case: string; url: string; route: string; in_scope?: boolean }[] }).rows;
    const wrong = rows.filter((row) => {
      const u = new URL(row.url.replace('{frontend}', '10.244.0.9'));
      // only a plain http:// call that reaches the proxy can be given an identity; CONNECT is end to end
      const rendered = row.route === 'proxy' && u.protocol === 'http:' && Number(u.port) === 62443 && inInternalDomain(u.hostname, ['apps.internal']);
      return rendered !== (row.in_scope === true);
    });
    expect(wrong.map((r) => r.case)).to.deep.equal([]);
    expect(rows.filter((r) => r.in_scope)).to.have.length(4);
  });

  it('one listener on 127.0.0.1:61445: absolute URLs, SANITIZE, *.<domain>:62443 → egress-c2c-mtls, * → egress-forward, CONNECT tunnelled', () => {
    expect(r.listeners).to.have.length(1);
    const l = r.listeners[0]!;
    expect(l.name).to.equal('egress-proxy');
    expect(l.address).to.deep.equal({ socket_address: { address: '127.0.0.1', port_value: 61445 } });
    const hcm = obj(arr(arr(l.filter_chains)[0]!.filters)[0]!.typed_config);
    expect(hcm.stat_prefix).to.equal('egress-proxy');
    expect(hcm.codec_type).to.equal('HTTP1');
    expect(hcm.forward_client_cert_details).to.equal('SANITIZE');
    expect(hcm.http_protocol_options).to.deep.equal({ allow_absolute_url: true });
    expect(obj(hcm.route_config).virtual_hosts).to.deep.equal([
      {
        name: 'c2c-mtls',
        domains: ['*.apps.internal:62443', '*.my.apps.internal:62443'],
        routes: [connectRoute, { match: { prefix: '/' }, route: { cluster: 'egress-c2c-mtls', timeout: '0s' } }],
      },
      { name: 'passthrough', domains: ['*'], routes: [connectRoute, { match: { prefix: '/' }, route: { cluster: 'egress-forward', timeout: '0s' } }] },
    ]);
    expect(hcm.http_filters).to.deep.equal([
      { name: 'envoy.filters.http.dynamic_forward_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig', dns_cache_config: dnsCache } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
    ]);
  });

  it('egress-c2c-mtls originates mTLS with the instance identity (SDS), verifies the server against the identity CA by host; egress-forward has no TLS', () => {
    const [mtls, forward] = r.clusters;
    const dfp = (name: string) => ({
      name,
      connect_timeout: '0.25s',
      lb_policy: 'CLUSTER_PROVIDED',
      cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig', dns_cache_config: dnsCache } },
    });
    expect(forward).to.deep.equal(dfp('egress-forward'));
    expect(mtls).to.deep.equal({
      ...dfp('egress-c2c-mtls'),
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          common_tls_context: {
            tls_certificate_sds_secret_configs: [sds('sds-id-cert-and-key.yaml', 'id-cert-and-key')],
            validation_context_sds_secret_config: sds('sds-c2c-mtls-validation-context.yaml', 'c2c-mtls-validation-context'),
          },
        },
      },
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
          explicit_http_config: { http_protocol_options: {} },
        },
      },
    });
  });
});

describe('dataplane/envoy diego: the RFC options in the sidecar', () => {
  const off = obj(parse(renderDiegoSidecar(plan())));
  const on = obj(parse(renderDiegoSidecar(plan({ c2cMtls: true, egress: true }))));
  const listeners = (c: Obj) => arr(obj(c.static_resources).listeners);
  const clusters = (c: Obj) => arr(obj(c.static_resources).clusters);

  it('the egress listener and clusters come after the executor\'s; the service-cluster and egress stats are kept', () => {
    expect(listeners(on).map((l) => l.name)).to.deep.equal(['listener-8080-61001', 'listener-8080-61443', 'listener-8080-62443', 'listener-2222-61002', 'egress-proxy']);
    expect(clusters(on).map((c) => c.name)).to.deep.equal(['service-cluster-8080', 'service-cluster-2222', 'egress-c2c-mtls', 'egress-forward']);
    // the counters the suites read: the service clusters (bytes to the app), the proxy's requests and its two clusters
    expect(on.stats_config).to.deep.equal({ stats_matcher: { inclusion_list: { patterns: [{ prefix: 'cluster.service-cluster-' }, { prefix: 'http.egress-proxy.' }, { prefix: 'cluster.egress-' }] } } });
    expect(off.stats_config).to.deep.equal({ stats_matcher: { inclusion_list: { patterns: [{ prefix: 'cluster.service-cluster-' }] } } });
  });

  it('61443 is the same listener with or without the RFC (backwards compatible)', () => {
    const l61443 = (c: Obj) => listeners(c).find((l) => l.name === 'listener-8080-61443');
    expect(l61443(on)).to.deep.equal(l61443(off));
    expect(clusters(on).find((c) => c.name === 'service-cluster-8080')).to.deep.equal(clusters(off).find((c) => c.name === 'service-cluster-8080'));
  });

  it('refuses an admin port on 61445 when the egress proxy is on', () => {
    expect(() => renderDiegoSidecar({ ...plan({ egress: true }), adminPort: 61445 })).to.throw(/port 61445 is reserved for the egress proxy/);
  });
});
