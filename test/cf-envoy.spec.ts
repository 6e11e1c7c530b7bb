// Unit tests of the Cloud Foundry Envoy builders: Diego port allocation (model/cf/diego.ts), the Diego sidecar and its
// SDS files (dataplane/envoy/diego.ts) and the gorouter stand-in (dataplane/envoy/front-router.ts).
// Expected values are written by hand from cloudfoundry/executor (envoyconfig/config.go and config_test.go,
// proxy_config_handler_test.go, run_step_test.go) and gorouter. The real `envoy --mode validate` judges the
// configs with real certificates in test/integration/cf-envoy.spec.ts.
import { expect } from 'chai';
import { parse } from 'yaml';
import {
  DiegoCipherSuites,
  renderDiegoSdsFiles,
  renderDiegoSidecar,
  renderSdsCertAndKey,
  renderSdsValidationContext,
  SupportedCipherSuites,
} from '../src/harness/dataplane/envoy/diego.ts';
import { renderFrontRouter } from '../src/harness/dataplane/envoy/front-router.ts';
import {
  adminPort,
  allocateProxyPorts,
  C2CMTLSPort,
  C2CTLSPort,
  cfInstancePorts,
  DefaultHTTPPort,
  EndProxyPort,
  StartProxyPort,
  type PortMapping,
} from '../src/harness/model/cf/diego.ts';
import { arr, cfg, clusters, diegoPlan, G1, G2, GUID, listeners, obj, routerPlan, SDS, type Obj } from './lib/diego-plans.ts';

/** Mappings as `app->proxy kind` strings, so a failing expectation reads like the reference. */
function pairs(ms: PortMapping[]): string[] {
  return ms.map((m) => `${m.appPort}->${m.proxyPort} ${m.kind}`);
}

// ------------------------------------------------------------------ model: port allocation

describe('model/cf/diego: executor port allocation', () => {
  it('has the executor constants', () => {
    expect([StartProxyPort, EndProxyPort, C2CTLSPort, DefaultHTTPPort, C2CMTLSPort]).to.deep.equal([61001, 65534, 61443, 8080, 62443]);
  });

  it('typical web process [8080, 2222]: 61001->8080, 61443->8080 (C2C), 61002->2222 (SSH), admin 61003', () => {
    const ms = allocateProxyPorts([8080, 2222]);
    expect(pairs(ms)).to.deep.equal(['8080->61001 route-integrity', '8080->61443 c2c-tls', '2222->61002 route-integrity']);
    expect(adminPort(ms, [8080, 2222])).to.equal(61003);
  });

  it('[8080]: 61001 and 61443, admin 61002', () => {
    const ms = allocateProxyPorts([8080]);
    expect(pairs(ms)).to.deep.equal(['8080->61001 route-integrity', '8080->61443 c2c-tls']);
    expect(adminPort(ms, [8080])).to.equal(61002);
  });

  it('[8080, 61001]: skips the port the app itself uses', () => {
    const ms = allocateProxyPorts([8080, 61001]);
    expect(pairs(ms)).to.deep.equal(['8080->61002 route-integrity', '8080->61443 c2c-tls', '61001->61003 route-integrity']);
    expect(adminPort(ms, [8080, 61001])).to.equal(61004);
  });

  it('a non-8080 port gets no C2C listener; duplicates count once (config_test.go)', () => {
    expect(pairs(allocateProxyPorts([9090]))).to.deep.equal(['9090->61001 route-integrity']);
    expect(pairs(allocateProxyPorts([8080, 9090]))).to.deep.equal(['8080->61001 route-integrity', '8080->61443 c2c-tls', '9090->61002 route-integrity']);
    expect(pairs(allocateProxyPorts([8080, 8080]))).to.deep.equal(['8080->61001 route-integrity', '8080->61443 c2c-tls']);
    expect(allocateProxyPorts([])).to.deep.equal([]);
  });

  it('refuses 61443 with the executor\'s message (ErrC2CTLSPortIsReserved)', () => {
    expect(() => allocateProxyPorts([8080, 61443])).to.throw(/^port 61443 is reserved for container networking$/);
  });

  it('c2cMtls: 8080 also gets 62443 (RFC draft), and 62443 becomes reserved', () => {
    const ms = allocateProxyPorts([8080, 2222], { c2cMtls: true });
    expect(pairs(ms)).to.deep.equal([
      '8080->61001 route-integrity', '8080->61443 c2c-tls', '8080->62443 c2c-mtls', '2222->61002 route-integrity',
    ]);
    expect(adminPort(ms, [8080, 2222])).to.equal(61003);
    expect(() => allocateProxyPorts([62443], { c2cMtls: true })).to.throw(/^port 62443 is reserved for container networking$/);
    expect(pairs(allocateProxyPorts([62443]))).to.deep.equal(['62443->61001 route-integrity']);
  });

  it('skips 61443 (and 62443 with c2cMtls) when the allocation walks past them', () => {
    const many = Array.from({ length: 443 }, (_, i) => i + 1); // 61001..61442 go to ports 1..442
    expect(allocateProxyPorts(many).at(-1)).to.deep.equal({ appPort: 443, proxyPort: 61444, kind: 'route-integrity' });
    const more = Array.from({ length: 1442 }, (_, i) => i + 1); // 62443 is the 1443rd port from 61001; minus 61443
    expect(allocateProxyPorts(more, { c2cMtls: true }).at(-1)!.proxyPort).to.equal(62444);
    expect(allocateProxyPorts(more).at(-1)!.proxyPort).to.equal(62443);
  });

  it('stops before 65534 (port < EndProxyPort): 4532 ports fit, 4533 do not', () => {
    const fit = Array.from({ length: 4532 }, (_, i) => i + 1);
    expect(allocateProxyPorts(fit).at(-1)!.proxyPort).to.equal(65533);
    expect(() => allocateProxyPorts([...fit, 4533])).to.throw(/^no ports available$/);
  });

  it('refuses what is not a port number', () => {
    for (const p of [0, 70000, 80.5]) expect(() => allocateProxyPorts([p])).to.throw(/is not a port number/);
  });

  it('CF_INSTANCE_PORTS: Go field order, omitempty external ports, C2C ports never NATed', () => {
    const ms = allocateProxyPorts([8080, 2222]);
    const host = new Map([[8080, 60000], [61001, 60001], [2222, 60002], [61002, 60003]]);
    expect(cfInstancePorts(ms, host)).to.equal(
      '[{"external":60000,"internal":8080,"external_tls_proxy":60001,"internal_tls_proxy":61001},' +
        '{"external":60000,"internal":8080,"internal_tls_proxy":61443},' +
        '{"external":60002,"internal":2222,"external_tls_proxy":60003,"internal_tls_proxy":61002}]',
    );
    // enable_unproxied_port_mappings=false: only the Envoy ports have host ports (run_step_test.go)
    expect(cfInstancePorts(allocateProxyPorts([8080]), new Map([[61001, 60001]]))).to.equal(
      '[{"internal":8080,"external_tls_proxy":60001,"internal_tls_proxy":61001},{"internal":8080,"internal_tls_proxy":61443}]',
    );
    expect(cfInstancePorts([])).to.equal('[]');
    expect(() => cfInstancePorts(ms, new Map([[61443, 60009]]))).to.throw(/61443 never gets a host port mapping/);
  });
});

// ------------------------------------------------------------------ dataplane: Diego sidecar



function listener(c: Obj, name: string): Obj {
  const l = listeners(c).find((x) => x.name === name);
  expect(l, `listener ${name}`).to.not.equal(undefined);
  return l!;
}
function cluster(c: Obj, name: string): Obj {
  const x = clusters(c).find((y) => y.name === name);
  expect(x, `cluster ${name}`).to.not.equal(undefined);
  return x!;
}
const chain0 = (l: Obj): Obj => arr(l.filter_chains)[0]!;
const filter0 = (l: Obj): Obj => arr(chain0(l).filters)[0]!;
const dtls = (l: Obj): Obj => obj(obj(chain0(l).transport_socket).typed_config);
const common = (ctx: Obj): Obj => obj(ctx.common_tls_context);
const sds = (file: string, secret: string): Obj => ({
  name: secret,
  sds_config: { path_config_source: { path: `${SDS}/${file}`, watched_directory: { path: SDS } } },
});

describe('dataplane/envoy diego: renderDiegoSidecar', () => {
  const c = cfg(renderDiegoSidecar(diegoPlan()));

  it('one listener per mapping, listener-<app>-<proxy> on 0.0.0.0:<proxy>', () => {
    expect(listeners(c).map((l) => l.name)).to.deep.equal(['listener-8080-61001', 'listener-8080-61443', 'listener-2222-61002']);
    expect(listener(c, 'listener-2222-61002').address).to.deep.equal({ socket_address: { address: '0.0.0.0', port_value: 61002 } });
    for (const l of listeners(c)) expect(arr(l.filter_chains)).to.have.length(1);
  });

  it('each is a single envoy.tcp_proxy, stats-<app>-<proxy> -> service-cluster-<app>', () => {
    expect(filter0(listener(c, 'listener-8080-61443'))).to.deep.equal({
      name: 'envoy.tcp_proxy',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
        stat_prefix: 'stats-8080-61443',
        cluster: 'service-cluster-8080',
      },
    });
    expect(obj(filter0(listener(c, 'listener-2222-61002')).typed_config).stat_prefix).to.equal('stats-2222-61002');
  });

  it('service clusters: STATIC at <containerIp>:<app>, 0.25s, the executor\'s three max-uint32 thresholds', () => {
    expect(clusters(c).map((x) => x.name)).to.deep.equal(['service-cluster-8080', 'service-cluster-2222']);
    expect(cluster(c, 'service-cluster-2222')).to.deep.equal({
      name: 'service-cluster-2222',
      type: 'STATIC',
      connect_timeout: '0.25s',
      load_assignment: {
        cluster_name: 'service-cluster-2222',
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.255.0.7', port_value: 2222 } } } }] }],
      },
      circuit_breakers: { thresholds: [{ max_connections: 4294967295 }, { max_pending_requests: 4294967295 }, { max_requests: 4294967295 }] },
    });
  });

  it('bootstrap: node sidecar~<ip>~<guid>~x / proxy-cluster, admin 127.0.0.1:61003, only the service-cluster stats (executor: reject_all), no runtime layer', () => {
    expect(c.node).to.deep.equal({ id: `sidecar~10.255.0.7~${GUID}~x`, cluster: 'proxy-cluster' });
    expect(c.admin).to.deep.equal({ address: { socket_address: { address: '127.0.0.1', port_value: 61003 } } });
    expect(c.stats_config).to.deep.equal({ stats_matcher: { inclusion_list: { patterns: [{ prefix: 'cluster.service-cluster-' }] } } });
    expect(c.layered_runtime).to.equal(undefined);
  });

  it('route-integrity ports: instance identity via SDS, client cert required and validated; 61443: C2C cert, neither', () => {
    for (const name of ['listener-8080-61001', 'listener-2222-61002']) {
      const ctx = dtls(listener(c, name));
      expect(ctx['@type']).to.equal('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext');
      expect(ctx.require_client_certificate, name).to.equal(true);
      expect(common(ctx).tls_certificate_sds_secret_configs).to.deep.equal([sds('sds-id-cert-and-key.yaml', 'id-cert-and-key')]);
      expect(common(ctx).validation_context_sds_secret_config).to.deep.equal(sds('sds-id-validation-context.yaml', 'id-validation-context'));
    }
    const c2c = dtls(listener(c, 'listener-8080-61443'));
    expect(c2c.require_client_certificate).to.equal(undefined);
    expect(common(c2c).validation_context_sds_secret_config).to.equal(undefined);
    expect(common(c2c).tls_certificate_sds_secret_configs).to.deep.equal([sds('sds-c2c-cert-and-key.yaml', 'c2c-cert-and-key')]);
    expect(obj(chain0(listener(c, 'listener-8080-61443')).transport_socket).name).to.equal('listener-8080-61443');
  });

  it('ALPN is the single string "h2,http/1.1", never on 61443, and absent with enable_http2 off', () => {
    expect(common(dtls(listener(c, 'listener-8080-61001'))).alpn_protocols).to.deep.equal(['h2,http/1.1']);
    expect(common(dtls(listener(c, 'listener-2222-61002'))).alpn_protocols).to.deep.equal(['h2,http/1.1']);
    expect(common(dtls(listener(c, 'listener-8080-61443'))).alpn_protocols).to.equal(undefined);
    const off = cfg(renderDiegoSidecar(diegoPlan({ enableHttp2: false })));
    for (const l of listeners(off)) expect(common(dtls(l)).alpn_protocols, String(l.name)).to.equal(undefined);
  });

  it('require_and_verify_client_certificates=false: no client-cert demand anywhere', () => {
    const off = cfg(renderDiegoSidecar(diegoPlan({ requireAndVerifyClientCertificates: false })));
    for (const l of listeners(off)) {
      expect(dtls(l).require_client_certificate, String(l.name)).to.equal(undefined);
      expect(common(dtls(l)).validation_context_sds_secret_config).to.equal(undefined);
    }
  });

  it('ciphers: executor list plus ECDHE-ECDSA equivalents by default; the exact executor list on request', () => {
    const ecdsaToo = ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'];
    expect([...DiegoCipherSuites]).to.deep.equal(ecdsaToo);
    expect(obj(common(dtls(listener(c, 'listener-8080-61443'))).tls_params)).to.deep.equal({ cipher_suites: ecdsaToo });
    expect([...SupportedCipherSuites]).to.deep.equal(['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256']);
    const exact = cfg(renderDiegoSidecar(diegoPlan({ cipherSuites: SupportedCipherSuites })));
    expect(obj(common(dtls(listener(exact, 'listener-8080-61001'))).tls_params).cipher_suites).to.deep.equal(['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256']);
  });

  it('c2cMtls: listener-8080-62443 is an HCM with SANITIZE_SET XFCC and a required, CA-validated client cert', () => {
    const m = cfg(renderDiegoSidecar(diegoPlan({ c2cMtls: true })));
    expect(listeners(m).map((l) => l.name)).to.deep.equal(['listener-8080-61001', 'listener-8080-61443', 'listener-8080-62443', 'listener-2222-61002']);
    const l = listener(m, 'listener-8080-62443');
    expect(l.address).to.deep.equal({ socket_address: { address: '0.0.0.0', port_value: 62443 } });
    const f = filter0(l);
    expect(f.name).to.equal('envoy.filters.network.http_connection_manager');
    const h = obj(f.typed_config);
    expect(h.stat_prefix).to.equal('stats-8080-62443');
    expect(h.forward_client_cert_details).to.equal('SANITIZE_SET');
    expect(h.set_current_client_cert_details).to.deep.equal({ subject: true, uri: true, dns: true });
    const route = obj(arr(arr(obj(h.route_config).virtual_hosts)[0]!.routes)[0]!.route);
    expect(route.cluster).to.equal('service-cluster-8080');
    const ctx = dtls(l);
    expect(ctx.require_client_certificate).to.equal(true);
    expect(common(ctx).tls_certificate_sds_secret_configs).to.deep.equal([sds('sds-c2c-cert-and-key.yaml', 'c2c-cert-and-key')]);
    expect(common(ctx).validation_context_sds_secret_config).to.deep.equal(sds('sds-c2c-mtls-validation-context.yaml', 'c2c-mtls-validation-context'));
    expect(common(ctx).alpn_protocols).to.deep.equal(['h2,http/1.1']);
    // 61443 is unchanged by the RFC
    expect(dtls(listener(m, 'listener-8080-61443')).require_client_certificate).to.equal(undefined);
    expect(clusters(m).map((x) => x.name)).to.deep.equal(['service-cluster-8080', 'service-cluster-2222']);
  });

  it('refuses plans it cannot render faithfully', () => {
    expect(() => renderDiegoSidecar(diegoPlan({ sdsDir: 'envoy_config' }))).to.throw(/must be an absolute path/);
    expect(() => renderDiegoSidecar(diegoPlan({ adminPort: 61001 }))).to.throw(/admin port 61001 is also a proxy port/);
    const bad = diegoPlan();
    expect(() => renderDiegoSidecar({ ...bad, mappings: [{ appPort: 9090, proxyPort: 61443, kind: 'c2c-tls' }] })).to.throw(/c2c-tls listener is 61443 -> 8080/);
    expect(() => renderDiegoSidecar({ ...bad, mappings: [{ appPort: 9090, proxyPort: 61443, kind: 'route-integrity' }] })).to.throw(/reserved for container networking/);
    expect(() => renderDiegoSidecar({ ...bad, mappings: [...bad.mappings, bad.mappings[0]!] })).to.throw(/proxy port 61001 appears twice/);
  });
});

describe('dataplane/envoy diego: SDS files', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

  it('GenerateSDSCertAndKey: a DiscoveryResponse with one inline tls_certificate secret', () => {
    expect(parse(renderSdsCertAndKey('id-cert-and-key', { cert: PEM, key: KEY }))).to.deep.equal({
      version_info: '0',
      resources: [{
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'id-cert-and-key',
        tls_certificate: { certificate_chain: { inline_string: PEM }, private_key: { inline_string: KEY } },
      }],
    });
  });

  it('GenerateSDSCAResource: CAs concatenated (empties skipped), SANs as typed exact matchers', () => {
    const v = parse(renderSdsValidationContext('id-validation-context', [PEM, '', PEM.trimEnd()], [
      'gorouter.service.cf.internal', 'tcp-router.service.cf.internal', 'spiffe://meow', '10.0.0.1',
    ]));
    expect(v.resources[0]).to.deep.equal({
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
      name: 'id-validation-context',
      validation_context: {
        trusted_ca: { inline_string: PEM + PEM },
        match_typed_subject_alt_names: [
          { san_type: 'DNS', matcher: { exact: 'gorouter.service.cf.internal' } },
          { san_type: 'DNS', matcher: { exact: 'tcp-router.service.cf.internal' } },
          { san_type: 'URI', matcher: { exact: 'spiffe://meow' } },
          { san_type: 'IP_ADDRESS', matcher: { exact: '10.0.0.1' } },
        ],
      },
    });
    expect(() => renderSdsValidationContext('x', [''])).to.throw(/at least one PEM CA/);
    expect(() => renderSdsCertAndKey('x', { cert: 'nope', key: KEY })).to.throw(/needs PEM/);
  });

  it('renderDiegoSdsFiles: the executor\'s three files, plus the 62443 validation context when given the CA', () => {
    const base = { instanceIdentity: { cert: PEM, key: KEY }, c2c: { cert: PEM, key: KEY }, trustedCaCertificates: [PEM], verifySubjectAltName: [] };
    expect(Object.keys(renderDiegoSdsFiles(base))).to.deep.equal(['sds-id-cert-and-key.yaml', 'sds-c2c-cert-and-key.yaml', 'sds-id-validation-context.yaml']);
    const files = renderDiegoSdsFiles({ ...base, instanceIdentityCa: [PEM] });
    expect(Object.keys(files)).to.include('sds-c2c-mtls-validation-context.yaml');
    const v = parse(files['sds-c2c-mtls-validation-context.yaml']!).resources[0];
    expect(v.name).to.equal('c2c-mtls-validation-context');
    expect(v.validation_context).to.deep.equal({ trusted_ca: { inline_string: PEM } });
  });
});

// ------------------------------------------------------------------ dataplane: front router



const hcmOf = (c: Obj): Obj => obj(filter0(listeners(c)[0]!).typed_config);
function matchSocket(cl: Obj, name: string): Obj {
  const m = arr(cl.transport_socket_matches).find((x) => x.name === name);
  expect(m, name).to.not.equal(undefined);
  return obj(obj(m!.transport_socket).typed_config);
}

describe('dataplane/envoy front-router: renderFrontRouter', () => {
  const c = cfg(renderFrontRouter(routerPlan()));

  it('one listener with an HCM; a virtual host per route matching host and host:*', () => {
    expect(listeners(c).map((l) => [l.name, l.address])).to.deep.equal([['gorouter-8081', { socket_address: { address: '0.0.0.0', port_value: 8081 } }]]);
    const vhosts = arr(obj(hcmOf(c).route_config).virtual_hosts);
    expect(vhosts.map((v) => [v.name, v.domains])).to.deep.equal([
      ['dora.apps.example.com', ['dora.apps.example.com', 'dora.apps.example.com:*']],
      ['sentences.apps.example.com', ['sentences.apps.example.com', 'sentences.apps.example.com:*']],
    ]);
    expect(vhosts.flatMap((v) => v.domains as string[])).to.not.include('*'); // unknown hosts must miss (NR)
  });

  it('unknown host: 404 with X-Cf-RouterError: unknown_route and gorouter\'s body; upstream failures add endpoint_failure', () => {
    const mappers = arr(obj(hcmOf(c).local_reply_config).mappers);
    expect(mappers[0]).to.deep.equal({
      filter: { response_flag_filter: { flags: ['NR'] } },
      headers_to_add: [{ header: { key: 'X-Cf-RouterError', value: 'unknown_route' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      body_format_override: { text_format_source: { inline_string: "404 Not Found: Requested route ('%REQ(:AUTHORITY)%') does not exist.\n" } },
    });
    expect(mappers[1]).to.deep.equal({
      filter: { response_flag_filter: { flags: ['UF', 'URX', 'UC'] } },
      headers_to_add: [{ header: { key: 'X-Cf-RouterError', value: 'endpoint_failure' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    });
  });

  it('a route is one pool cluster; each endpoint is tagged with its server_cert_domain_san', () => {
    expect(clusters(c).map((x) => x.name)).to.deep.equal(['pool-dora.apps.example.com', 'pool-sentences.apps.example.com']);
    const pool = cluster(c, 'pool-dora.apps.example.com');
    expect(pool.type).to.equal('STATIC');
    const eps = arr(arr(obj(pool.load_assignment).endpoints)[0]!.lb_endpoints);
    expect(eps).to.deep.equal([
      { endpoint: { address: { socket_address: { address: '10.255.0.7', port_value: 61001 } } }, metadata: { filter_metadata: { 'envoy.transport_socket_match': { server_cert_domain_san: G1 } } } },
      { endpoint: { address: { socket_address: { address: '10.255.0.8', port_value: 61001 } } }, metadata: { filter_metadata: { 'envoy.transport_socket_match': { server_cert_domain_san: G2 } } } },
    ]);
    expect(pool.transport_socket).to.equal(undefined);
    expect(arr(pool.transport_socket_matches).map((m) => [m.name, m.match])).to.deep.equal([
      [`san-${G1}`, { server_cert_domain_san: G1 }],
      [`san-${G2}`, { server_cert_domain_san: G2 }],
    ]);
  });

  it('each SAN\'s socket: SNI = instance GUID, trusted CA, DNS SAN exact = instance GUID, gorouter\'s client cert', () => {
    const ctx = matchSocket(cluster(c, 'pool-dora.apps.example.com'), `san-${G2}`);
    expect(ctx['@type']).to.equal('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    expect(ctx.sni).to.equal(G2);
    expect(common(ctx).validation_context).to.deep.equal({
      trusted_ca: { filename: '/pki/iid-ca.crt' },
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: G2 } }],
    });
    expect(common(ctx).tls_certificates).to.deep.equal([{ certificate_chain: { filename: '/pki/gorouter.crt' }, private_key: { filename: '/pki/gorouter.key' } }]);
    expect(obj(common(ctx).tls_params).tls_maximum_protocol_version).to.equal('TLSv1_3');
    const noClient = cfg(renderFrontRouter(routerPlan({ backendTls: { ca: '/pki/iid-ca.crt' } })));
    expect(common(matchSocket(cluster(noClient, 'pool-dora.apps.example.com'), `san-${G1}`)).tls_certificates).to.equal(undefined);
  });

  it('retries a dial/TLS failure on another instance, max_attempts capped by the pool size', () => {
    const vhosts = arr(obj(hcmOf(c).route_config).virtual_hosts);
    const route = (i: number): Obj => obj(arr(vhosts[i]!.routes)[0]!.route);
    expect(route(0)).to.deep.include({ cluster: 'pool-dora.apps.example.com', timeout: '900s' });
    expect(obj(route(0).retry_policy)).to.deep.include({ retry_on: 'connect-failure', num_retries: 1 });
    expect(arr(obj(route(0).retry_policy).retry_host_predicate)[0]!.name).to.equal('envoy.retry_host_predicates.previous_hosts');
    expect(route(1).retry_policy).to.equal(undefined);
  });

  it('forwarded_client_cert: always_forward by default, forward, sanitize_set (Envoy format)', () => {
    expect(hcmOf(c).forward_client_cert_details).to.equal('ALWAYS_FORWARD_ONLY');
    expect(hcmOf(cfg(renderFrontRouter(routerPlan({ forwardedClientCert: 'forward' })))).forward_client_cert_details).to.equal('FORWARD_ONLY');
    const s = hcmOf(cfg(renderFrontRouter(routerPlan({ forwardedClientCert: 'sanitize_set' }))));
    expect([s.forward_client_cert_details, s.set_current_client_cert_details]).to.deep.equal(['SANITIZE_SET', { subject: true }]);
    expect(chain0(listeners(c)[0]!).transport_socket).to.equal(undefined);
  });

  it('refuses plans it cannot render faithfully', () => {
    const ep = { host: '10.0.0.1', tlsPort: 61001, serverCertDomainSan: G1 };
    expect(() => renderFrontRouter(routerPlan({ routes: [{ host: 'a.example.com', endpoints: [] }] }))).to.throw(/no endpoints/);
    expect(() => renderFrontRouter(routerPlan({ routes: [{ host: 'a.example.com', endpoints: [ep] }, { host: 'A.example.com', endpoints: [ep] }] }))).to.throw(/appears twice/);
    expect(() => renderFrontRouter(routerPlan({ routes: [{ host: 'a.example.com', endpoints: [ep, ep] }] }))).to.throw(/lists endpoint 10.0.0.1:61001 twice/);
    expect(() => renderFrontRouter(routerPlan({ routes: [{ host: 'a.example.com', endpoints: [{ ...ep, serverCertDomainSan: '' }] }] }))).to.throw(/no server_cert_domain_san/);
    expect(() => renderFrontRouter(routerPlan({ routes: [{ host: 'a b', endpoints: [ep] }] }))).to.throw(/is not a hostname/);
  });
});
