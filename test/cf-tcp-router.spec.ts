// Unit tests of the CF TCP route model (model/cf/routes.ts) and the tcp-router HAProxy builder
// (dataplane/haproxy/tcp-router.ts). Every expected value is written by hand from the reference (cloudfoundry.md §1)
// and the upstream sources it cites (routing-api validator.go, route-emitter endpoint.go, cf-tcp-router
// haproxy_config.go / config_marshaller.go / config.go); the independent judge, the real `haproxy -c`, is in
// test/integration/cf-tcp-router.spec.ts.
import { expect } from 'chai';
import {
  buildHaproxyConfig,
  formatLager,
  haproxyBaseConfig,
  validateBackendTls,
  type BackendTlsConfig,
  type LagerLog,
} from '../src/harness/dataplane/haproxy/tcp-router.ts';
import {
  emitTcpRoute,
  parseTcpRoutes,
  registrarTcpRoute,
  validateTcpRouteMapping,
  type TcpMappingEntity,
} from '../src/harness/model/cf/routes.ts';
import { CertificateAuthority, type IssuedCert } from '../src/harness/pki/index.ts';
import { CA, goldenRoutes, PATHS, PEM, route, TLS_OFF, TLS_ON } from './lib/tcp-routes.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { parseHaproxySession, parseServersState } from '../src/harness/profiles/cf/index.ts';



function skipError(error: string): LagerLog {
  return { source: 'tcp-router', message: 'tcp-router.skipping-invalid-routing-table-entry', log_level: 2, data: { error } };
}

// ------------------------------------------------------------------ model

describe('model/cf routes: parseTcpRoutes', () => {
  it('reads the GET /routing/v1/tcp_routes example and fills Go zero values', () => {
    const body = JSON.parse(`[{
      "router_group_guid": "xyz789", "backend_ip": "10.1.1.12", "backend_port": 60000, "backend_tls_port": 60001,
      "instance_id": "91860bfe-ecff-480d-8df4-0d1eb0295b04", "port": 5200,
      "modification_tag": { "guid": "cbdhb4e3-141d-4259-b0ac-99140e8998l0", "index": 10 },
      "ttl": 120, "isolation_segment": "" }]`) as unknown;
    expect(parseTcpRoutes(body)).to.deep.equal([
      {
        router_group_guid: 'xyz789',
        port: 5200,
        backend_ip: '10.1.1.12',
        backend_port: 60000,
        backend_tls_port: 60001,
        instance_id: '91860bfe-ecff-480d-8df4-0d1eb0295b04',
        modification_tag: { guid: 'cbdhb4e3-141d-4259-b0ac-99140e8998l0', index: 10 },
        ttl: 120,
        isolation_segment: '',
        terminate_frontend_tls: false,
        alpns: '',
        enable_backend_mtls: false,
      },
    ]);
  });

  it('a missing or null backend_tls_port arrives as 0; pointer fields stay absent', () => {
    const [a, b] = parseTcpRoutes([
      { router_group_guid: 'rg', port: 1, backend_ip: '10.0.0.1', backend_port: 2 },
      { router_group_guid: 'rg', port: 1, backend_ip: '10.0.0.1', backend_port: 2, backend_tls_port: null, backend_sni_hostname: 'a.example.com' },
    ]);
    expect(a!.backend_tls_port).to.equal(0);
    expect(a).to.not.have.property('ttl');
    expect(a).to.not.have.property('backend_sni_hostname');
    expect(b!.backend_tls_port).to.equal(0);
    expect(b!.backend_sni_hostname).to.equal('a.example.com');
  });

  it('keeps the newer fields (terminate_frontend_tls, alpns, enable_backend_mtls, sni_rewrite_hostname)', () => {
    const [r] = parseTcpRoutes([
      { router_group_guid: 'rg', port: 1, backend_ip: 'h', backend_port: 2, terminate_frontend_tls: true, alpns: 'h2,http/1.1', enable_backend_mtls: true, sni_rewrite_hostname: 'x.internal' },
    ]);
    expect(r!.terminate_frontend_tls).to.equal(true);
    expect(r!.alpns).to.equal('h2,http/1.1');
    expect(r!.enable_backend_mtls).to.equal(true);
    expect(r!.sni_rewrite_hostname).to.equal('x.internal');
  });

  it('rejects unknown fields, naming them (there is no host_tls_port in the JSON)', () => {
    expect(() => parseTcpRoutes([{ router_group_guid: 'rg', host_tls_port: 61001, hostPort: 1 }])).to.throw(/\[0\] has unknown field\(s\) host_tls_port, hostPort/);
    expect(() => parseTcpRoutes([{ modification_tag: { guid: 'g', index: 1, when: 'now' } }])).to.throw(/\[0\]\.modification_tag has unknown field\(s\) when/);
  });

  it('rejects wrong types and out-of-range ports, naming the field', () => {
    expect(() => parseTcpRoutes([{ port: '1024' }])).to.throw(/\[0\]\.port must be a Go uint16/);
    expect(() => parseTcpRoutes([{}, { backend_port: 65536 }])).to.throw(/\[1\]\.backend_port must be a Go uint16/);
    expect(() => parseTcpRoutes([{ port: -1 }])).to.throw(/\[0\]\.port must be a Go uint16/);
    expect(() => parseTcpRoutes([{ backend_tls_port: 1.5 }])).to.throw(/\[0\]\.backend_tls_port must be a Go int/);
    expect(() => parseTcpRoutes([{ terminate_frontend_tls: 'true' }])).to.throw(/\[0\]\.terminate_frontend_tls must be a boolean/);
    expect(() => parseTcpRoutes([{ instance_id: 7 }])).to.throw(/\[0\]\.instance_id must be a string/);
    expect(() => parseTcpRoutes([{ modification_tag: { index: -1 } }])).to.throw(/\[0\]\.modification_tag\.index must be a Go uint32/);
    expect(() => parseTcpRoutes(['x'])).to.throw(/\[0\] must be an object/);
    expect(() => parseTcpRoutes({ router_group_guid: 'rg' })).to.throw(/expected a JSON array/);
  });
});

describe('model/cf routes: validateTcpRouteMapping (routing-api handlers/validator.go)', () => {
  it('accepts a complete route', () => {
    expect(validateTcpRouteMapping(route())).to.equal(null);
  });

  it('router_group_guid empty', () => {
    expect(validateTcpRouteMapping(route({ router_group_guid: '' }))).to.equal(
      'Each tcp mapping requires a non empty router group guid. RouteMapping=[:1024<->10.0.0.1:8080]',
    );
  });

  it('external port 0', () => {
    expect(validateTcpRouteMapping(route({ port: 0 }))).to.equal('Each tcp mapping requires a positive external port. RouteMapping=[rg-1:0<->10.0.0.1:8080]');
  });

  it('backend_ip empty', () => {
    expect(validateTcpRouteMapping(route({ backend_ip: '' }))).to.equal('Each tcp mapping requires a non empty backend ip. RouteMapping=[rg-1:1024<->:8080]');
  });

  it('backend_port 0 and no TLS port', () => {
    const reason = 'Each tcp mapping requires a positive backend port. RouteMapping=[rg-1:1024<->10.0.0.1:0]';
    expect(validateTcpRouteMapping(route({ backend_port: 0, backend_tls_port: -1 }))).to.equal(reason);
    expect(validateTcpRouteMapping(route({ backend_port: 0, backend_tls_port: 0 }))).to.equal(reason);
  });

  it('backend_port 0 is fine when a TLS port is set (routing-api PR #51)', () => {
    expect(validateTcpRouteMapping(route({ backend_port: 0, backend_tls_port: 61001, instance_id: 'i' }))).to.equal(null);
  });

  it('backend_tls_port above 65535', () => {
    expect(validateTcpRouteMapping(route({ backend_tls_port: 65536 }))).to.equal(
      'Each tcp mapping with a backend TLS port requires that port to be less than or equal to 65535. RouteMapping=[rg-1:1024<->10.0.0.1:8080]',
    );
    expect(validateTcpRouteMapping(route({ backend_tls_port: 65535, instance_id: 'i' }))).to.equal(null);
  });

  it('ttl above max_ttl (default 120, or the one given)', () => {
    expect(validateTcpRouteMapping(route({ ttl: 121 }))).to.equal('Each tcp mapping requires TTL to be less than or equal to 120. RouteMapping=[rg-1:1024<->10.0.0.1:8080]');
    expect(validateTcpRouteMapping(route({ ttl: 61 }), 60)).to.equal('Each tcp mapping requires TTL to be less than or equal to 60. RouteMapping=[rg-1:1024<->10.0.0.1:8080]');
  });

  it('ttl of 0 or less', () => {
    expect(validateTcpRouteMapping(route({ ttl: 0 }))).to.equal('Each tcp route mapping requires a ttl greater than 0');
    expect(validateTcpRouteMapping(route({ ttl: -5 }))).to.equal('Each tcp route mapping requires a ttl greater than 0');
  });

  it('an absent ttl defaults to max_ttl (SetDefaults) and passes', () => {
    const r = route();
    delete r.ttl;
    expect(validateTcpRouteMapping(r)).to.equal(null);
  });

  it('alpns without terminate_frontend_tls', () => {
    expect(validateTcpRouteMapping(route({ alpns: 'h2' }))).to.equal(
      'Each tcp mapping can define ALPNs only when TerminateFrontendTLS is enabled. RouteMapping=[rg-1:1024<->10.0.0.1:8080]',
    );
    expect(validateTcpRouteMapping(route({ alpns: 'h2', terminate_frontend_tls: true }))).to.equal(null);
  });

  it('checks in routing-api order: the first failing rule wins', () => {
    expect(validateTcpRouteMapping(route({ router_group_guid: '', port: 0, backend_ip: '' }))).to.equal(
      'Each tcp mapping requires a non empty router group guid. RouteMapping=[:0<->:8080]',
    );
    expect(validateTcpRouteMapping(route({ backend_port: 0, ttl: 999 }))).to.equal(
      'Each tcp mapping requires a positive backend port. RouteMapping=[rg-1:1024<->10.0.0.1:0]',
    );
    expect(validateTcpRouteMapping(route({ ttl: 0, alpns: 'h2' }))).to.equal('Each tcp route mapping requires a ttl greater than 0');
  });

  it('never format-validates instance_id', () => {
    expect(validateTcpRouteMapping(route({ backend_tls_port: 61001, instance_id: 'not a guid, at all!' }))).to.equal(null);
  });
});

describe('model/cf routes: producers', () => {
  const endpoint = {
    routerGroupGuid: 'rg-1',
    externalPort: 1024,
    hostIp: '10.0.16.5',
    hostPort: 61012,
    tlsProxyPort: 61013,
    instanceGuid: '6f1b0b1a-7e1c-4b8e-9c51-3c2d7f0e9a11',
    ttl: 120,
  };

  it('route-emitter with tcp.enable_tls off sends backend_tls_port -1 and instance_id ""', () => {
    expect(emitTcpRoute(endpoint, { enableTls: false })).to.deep.equal({
      router_group_guid: 'rg-1',
      port: 1024,
      backend_ip: '10.0.16.5',
      backend_port: 61012,
      backend_tls_port: -1,
      instance_id: '',
      modification_tag: { guid: '', index: 0 },
      ttl: 120,
      isolation_segment: '',
      terminate_frontend_tls: false,
      alpns: '',
      enable_backend_mtls: false,
    });
  });

  it('route-emitter with tcp.enable_tls on sends the Envoy host port and the instance GUID', () => {
    expect(emitTcpRoute(endpoint, { enableTls: true })).to.deep.equal({
      router_group_guid: 'rg-1',
      port: 1024,
      backend_ip: '10.0.16.5',
      backend_port: 61012,
      backend_tls_port: 61013,
      instance_id: '6f1b0b1a-7e1c-4b8e-9c51-3c2d7f0e9a11',
      modification_tag: { guid: '', index: 0 },
      ttl: 120,
      isolation_segment: '',
      terminate_frontend_tls: false,
      alpns: '',
      enable_backend_mtls: false,
    });
  });

  it('route-emitter leaves ttl out when none is given', () => {
    const { ttl: _ttl, ...noTtl } = endpoint;
    expect(emitTcpRoute(noTtl, { enableTls: true })).to.not.have.property('ttl');
  });

  it('route-registrar sends backend_tls_port -1, SNI from server_cert_domain_san, ttl = interval × 2.1 capped at max_ttl', () => {
    expect(
      registrarTcpRoute({ routerGroupGuid: 'rg-1', externalPort: 1025, host: '10.0.1.5', port: 5432, serverCertDomainSan: 'db.example.com', registrationIntervalSeconds: 20 }),
    ).to.deep.equal({
      router_group_guid: 'rg-1',
      port: 1025,
      backend_ip: '10.0.1.5',
      backend_port: 5432,
      backend_tls_port: -1,
      instance_id: '',
      backend_sni_hostname: 'db.example.com',
      modification_tag: { guid: '', index: 0 },
      ttl: 42,
      isolation_segment: '',
      terminate_frontend_tls: false,
      alpns: '',
      enable_backend_mtls: false,
    });
    const base = { routerGroupGuid: 'rg-1', externalPort: 1025, host: '10.0.1.5', port: 5432 };
    expect(registrarTcpRoute({ ...base, registrationIntervalSeconds: 100 }).ttl).to.equal(120);
    expect(registrarTcpRoute({ ...base, registrationIntervalSeconds: 100, maxTtlSeconds: 60 }).ttl).to.equal(60);
    expect(registrarTcpRoute({ ...base, registrationIntervalSeconds: 0.1 }).ttl).to.equal(1);
    expect(registrarTcpRoute({ ...base, registrationIntervalSeconds: 10, serverCertDomainSan: '' })).to.not.have.property('backend_sni_hostname');
  });

  it('what the producers send passes routing-api validation', () => {
    expect(validateTcpRouteMapping(emitTcpRoute(endpoint, { enableTls: true }))).to.equal(null);
    expect(validateTcpRouteMapping(emitTcpRoute(endpoint, { enableTls: false }))).to.equal(null);
    expect(validateTcpRouteMapping(registrarTcpRoute({ routerGroupGuid: 'rg', externalPort: 1, host: 'h', port: 2, registrationIntervalSeconds: 20 }))).to.equal(null);
  });
});

// ------------------------------------------------------------------ backend_tls config

describe('dataplane/haproxy tcp-router: validateBackendTls', () => {
  let ca: CertificateAuthority;
  let other: CertificateAuthority;
  let client: IssuedCert;
  let stranger: IssuedCert;

  before(async () => {
    ca = await CertificateAuthority.create('diego-instance-identity');
    other = await CertificateAuthority.create('other');
    client = await ca.issue('tcp-router-backend-tls', { subject: { CN: 'tcp-router_backend_tls' }, dns: ['tcp-router.service.cf.internal'], eku: ['clientAuth'] });
    stranger = await other.issue('stranger', { subject: { CN: 'stranger' }, eku: ['clientAuth'] });
  });

  const on = (client?: string): BackendTlsConfig => ({ enabled: true, caCertPath: '/ca.crt', clientCertAndKeyPath: client });

  it('enabled without a CA is an error', () => {
    expect(() => validateBackendTls({ enabled: true }, {})).to.throw('tcp-router config: Backend TLS was enabled but no CA certificates were specified');
  });

  it('a client certificate without a CA is an error, enabled or not (TLS TCP routes proposal)', () => {
    const msg =
      'tcp-router config: backend_tls.client_cert_and_key_path "/client.pem" is set without backend_tls.ca_cert_path: a client certificate without a CA is a configuration error';
    expect(() => validateBackendTls({ enabled: false, clientCertAndKeyPath: '/client.pem' }, {})).to.throw(msg);
    expect(() => buildHaproxyConfig([], { enabled: false, clientCertAndKeyPath: '/client.pem' }, PATHS)).to.throw(msg);
  });

  it('disabled with nothing configured is fine; the paths are not read', () => {
    expect(() => validateBackendTls({ enabled: false }, {})).to.not.throw();
    expect(() => validateBackendTls({ enabled: false, caCertPath: '/ca.crt' }, { ca: 'garbage' })).to.not.throw();
  });

  it('accepts one CA certificate and a cert-then-key bundle', () => {
    expect(() => validateBackendTls(on('/client.pem'), { ca: ca.certPem, clientCertAndKey: client.certPem + client.keyPem })).to.not.throw();
    expect(() => validateBackendTls(on(), { ca: ca.certPem })).to.not.throw();
  });

  it('the CA file must hold exactly one CERTIFICATE block', () => {
    expect(() => validateBackendTls(on(), { ca: ca.certPem + other.certPem })).to.throw(
      'tcp-router config: backend_tls.ca_cert_path "/ca.crt" holds 2 PEM blocks: it must hold exactly one CERTIFICATE block',
    );
    expect(() => validateBackendTls(on(), { ca: ca.keyPem })).to.throw('tcp-router config: Unexpected PEM block type "PRIVATE KEY" in file "/ca.crt" (wanted CERTIFICATE)');
    expect(() => validateBackendTls(on(), { ca: 'not a pem\n' })).to.throw('tcp-router config: Invalid PEM block found in file "/ca.crt"');
    expect(() => validateBackendTls(on(), { ca: ' \n' })).to.throw('tcp-router config: backend_tls.ca_cert_path "/ca.crt" is empty: it must hold exactly one CERTIFICATE PEM block');
    expect(() => validateBackendTls(on(), { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' })).to.throw(
      /^tcp-router config: failed to parse certificate in "\/ca\.crt": /,
    );
  });

  it('client_cert_and_key: one certificate, then one key, nothing after', () => {
    const file = '/client.pem';
    expect(() => validateBackendTls(on(file), { ca: ca.certPem, clientCertAndKey: client.certPem + client.keyPem + ca.certPem })).to.throw(
      'tcp-router config: Unexpected data at the end of /client.pem',
    );
    expect(() => validateBackendTls(on(file), { ca: ca.certPem, clientCertAndKey: client.certPem })).to.throw(
      'tcp-router config: Invalid PEM PRIVATE KEY found in file "/client.pem"',
    );
    expect(() => validateBackendTls(on(file), { ca: ca.certPem, clientCertAndKey: '' })).to.throw('tcp-router config: Invalid PEM CERTIFICATE found in file "/client.pem"');
    expect(() => validateBackendTls(on(file), { ca: ca.certPem, clientCertAndKey: client.keyPem + client.certPem })).to.throw(
      'tcp-router config: Unable to validate backend TLS client cert + key in file "/client.pem": the first PEM block is PRIVATE KEY, want CERTIFICATE',
    );
    expect(() => validateBackendTls(on(file), { ca: ca.certPem, clientCertAndKey: client.certPem + stranger.keyPem })).to.throw(
      'tcp-router config: Unable to validate backend TLS client cert + key in file "/client.pem": private key does not match public key',
    );
  });

  it('errors are one line', () => {
    try {
      validateBackendTls(on('/client.pem'), { ca: ca.certPem, clientCertAndKey: client.certPem + stranger.keyPem });
      expect.fail('should throw');
    } catch (e) {
      expect((e as Error).message).to.not.match(/\n/);
    }
  });
});

// ------------------------------------------------------------------ routing table → haproxy.cfg

/** One frontend on :1024 with one default backend holding `servers` (marshaller layout, hand-written). */
function single(servers: string[]): string {
  return ['', 'frontend frontend_1024', '  mode tcp', '  bind :1024', '  default_backend backend_1024', '', 'backend backend_1024', '  mode tcp', ...servers, ''].join('\n');
}

describe('dataplane/haproxy tcp-router: backend_tls_port × backend_tls.enabled', () => {
  const tlsServer =
    '  server server_10.0.0.1_8443 10.0.0.1:8443 ssl verify required ca-file /etc/tcp-router/ca.crt crt /etc/tcp-router/client.pem verifyhost inst-1';
  const plainServer = '  server server_10.0.0.1_8080 10.0.0.1:8080';
  const r = (tls: number): TcpMappingEntity[] => [route({ backend_tls_port: tls, instance_id: 'inst-1' })];

  it('N, enabled: TLS server line on the TLS port, no log', () => {
    expect(buildHaproxyConfig(r(8443), TLS_ON, PATHS)).to.deep.equal({ text: single([tlsServer]), logs: [] });
  });

  it('N, disabled: the server is skipped (no plaintext fallback) with backend-tls-not-enabled', () => {
    expect(buildHaproxyConfig(r(8443), TLS_OFF, PATHS)).to.deep.equal({
      text: single([]),
      logs: [
        {
          source: 'tcp-router',
          message: 'tcp-router.backend-tls-not-enabled',
          log_level: 2,
          data: {
            backend: [{ Address: '10.0.0.1', Port: 8080, TLSPort: 8443, InstanceID: 'inst-1' }],
            error: 'Backend TLS Port was set, but backend_tls has not been enabled for tcp-router',
          },
        },
      ],
    });
  });

  it('0, enabled: plaintext on backend_port with route-missing-tls-information', () => {
    expect(buildHaproxyConfig(r(0), TLS_ON, PATHS)).to.deep.equal({
      text: single([plainServer]),
      logs: [
        {
          source: 'tcp-router',
          message: 'tcp-router.route-missing-tls-information',
          log_level: 2,
          data: {
            backend: { Address: '10.0.0.1', Port: 8080, TLSPort: 0, InstanceID: 'inst-1' },
            error: 'Backend TLSPort was set to 0. If TLS is intentionally off for this backend, set this to -1 to suppress this message',
          },
        },
      ],
    });
  });

  it('0, disabled: plaintext on backend_port, no log', () => {
    expect(buildHaproxyConfig(r(0), TLS_OFF, PATHS)).to.deep.equal({ text: single([plainServer]), logs: [] });
  });

  it('-1, enabled: plaintext on backend_port, no log', () => {
    expect(buildHaproxyConfig(r(-1), TLS_ON, PATHS)).to.deep.equal({ text: single([plainServer]), logs: [] });
  });

  it('-1, disabled: plaintext on backend_port, no log', () => {
    expect(buildHaproxyConfig(r(-1), TLS_OFF, PATHS)).to.deep.equal({ text: single([plainServer]), logs: [] });
  });

  it('writes `crt` only when a client certificate is configured', () => {
    const caOnly: BackendTlsConfig = { enabled: true, caCertPath: CA };
    expect(buildHaproxyConfig(r(8443), caOnly, { caFile: CA }).text).to.equal(
      single(['  server server_10.0.0.1_8443 10.0.0.1:8443 ssl verify required ca-file /etc/tcp-router/ca.crt verifyhost inst-1']),
    );
  });

  it('a TLS-only route (backend_port 0) is served on its TLS port', () => {
    const { text } = buildHaproxyConfig([route({ backend_port: 0, backend_tls_port: 61001, instance_id: 'inst-1' })], TLS_ON, PATHS);
    expect(text).to.equal(
      single(['  server server_10.0.0.1_61001 10.0.0.1:61001 ssl verify required ca-file /etc/tcp-router/ca.crt crt /etc/tcp-router/client.pem verifyhost inst-1']),
    );
  });

  it('proposal: no cert and no CA: routes with TLS off or unknown use backend_port', () => {
    const routes = [route({ backend_ip: '10.0.0.1', backend_tls_port: -1 }), route({ backend_ip: '10.0.0.2', backend_tls_port: 0 })];
    expect(buildHaproxyConfig(routes, TLS_OFF, PATHS)).to.deep.equal({
      text: single(['  server server_10.0.0.1_8080 10.0.0.1:8080', '  server server_10.0.0.2_8080 10.0.0.2:8080']),
      logs: [],
    });
  });

  it('proposal: a CA and a TLS port ≤ 0 use backend_port', () => {
    const routes = [route({ backend_ip: '10.0.0.1', backend_tls_port: -1 }), route({ backend_ip: '10.0.0.2', backend_tls_port: -7 })];
    expect(buildHaproxyConfig(routes, { enabled: true, caCertPath: CA }, { caFile: CA })).to.deep.equal({
      text: single(['  server server_10.0.0.1_8080 10.0.0.1:8080', '  server server_10.0.0.2_8080 10.0.0.2:8080']),
      logs: [],
    });
  });

  it('refuses enabled without a CA, and routes that terminate frontend TLS (not implemented)', () => {
    expect(() => buildHaproxyConfig([], { enabled: true }, PATHS)).to.throw('tcp-router config: Backend TLS was enabled but no CA certificates were specified');
    expect(() => buildHaproxyConfig([route({ terminate_frontend_tls: true })], TLS_ON, PATHS)).to.throw(/route \[0\] \(port 1024\) sets terminate_frontend_tls/);
  });
});

// fixtures/cf/truth/tcp-routes-tls.yaml: the suite checks what HAProxy did on live traffic; here the renderer's half of
// each cell, the lager lines (`logs`) and the server line its `outcome` needs, against the same hand-written table.
describe('dataplane/haproxy tcp-router: the tcp-routes-tls table, rendered', () => {
  type Row = { tls_port: -1 | 0 | 'N'; instance_id: 'right' | 'empty' | 'wrong'; outcome: string; logs: string[] };
  type Config = { name: string; enabled: boolean; ca: boolean; cert: boolean; table?: string; error?: string };
  const truth = parseYamlFile('fixtures/cf/truth/tcp-routes-tls.yaml') as { backend_port: number; backend_tls_port: number; configs: Config[]; tables: Record<string, Row[]> };
  const ids = { right: 'inst-right', empty: '', wrong: 'inst-wrong' };
  const cfgOf = (c: Config): BackendTlsConfig => ({ enabled: c.enabled, ...(c.ca ? { caCertPath: CA } : {}), ...(c.cert ? { clientCertAndKeyPath: PEM } : {}) });

  it('has five runnable configurations of nine routes and three configuration errors', () => {
    expect(truth.configs.filter((c) => c.table).map((c) => truth.tables[c.table!]!.length)).to.deep.equal([9, 9, 9, 9, 9]);
    expect(truth.configs.filter((c) => c.error)).to.have.length(3);
  });

  for (const config of truth.configs.filter((c) => c.table)) {
    for (const row of truth.tables[config.table!]!) {
      it(`${config.name}, backend_tls_port ${row.tls_port}, instance_id ${row.instance_id}: ${row.outcome}, logs ${JSON.stringify(row.logs)}`, () => {
        const tlsPort = row.tls_port === 'N' ? truth.backend_tls_port : row.tls_port;
        const r = route({ backend_port: truth.backend_port, backend_tls_port: tlsPort, instance_id: ids[row.instance_id] });
        const { text, logs } = buildHaproxyConfig([r], cfgOf(config), PATHS);
        expect([...new Set(logs.map((l) => l.message.replace(/^tcp-router\./, '')))].sort()).to.deep.equal([...row.logs].sort());
        const tls = `  server server_10.0.0.1_61001 10.0.0.1:61001 ssl verify required ca-file ${CA}${config.cert ? ` crt ${PEM}` : ''} verifyhost ${ids[row.instance_id]}`;
        const want: Record<string, string> = {
          plaintext: single(['  server server_10.0.0.1_8080 10.0.0.1:8080']),
          tls: single([tls]),
          'verify-failed': single([tls]),
          'no-server': single([]),
          'no-frontend': '',
        };
        expect(text).to.equal(want[row.outcome]);
      });
    }
  }

  for (const config of truth.configs.filter((c) => c.error)) {
    it(`${config.name}: refused with "${config.error}"`, () => {
      expect(() => buildHaproxyConfig([route()], cfgOf(config), PATHS)).to.throw(config.error!);
      expect(() => validateBackendTls(cfgOf(config), {})).to.throw(config.error!);
    });
  }
});

// What HAProxy 2.6.12 (Debian 12) answered on its stats socket and logged, captured on the project's machine.
describe('profiles/cf: reading HAProxy\'s own account (runtime API, session lines)', () => {
  const HEADER = '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port';

  it('show servers state: name, address, port and ssl of each server; [] for an empty backend; null for none', () => {
    expect(parseServersState(`1\n${HEADER}\n3 backend_1025 1 server_10.0.0.1_61001 10.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 61001 - 1 0 - - 0\n\n`)).to.deep.equal([
      { name: 'server_10.0.0.1_61001', address: '10.0.0.1', port: 61001, ssl: true },
    ]);
    expect(parseServersState(`1\n${HEADER}\n3 backend_1026 1 server_10.0.0.1_8080 10.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0\n\n`)).to.deep.equal([
      { name: 'server_10.0.0.1_8080', address: '10.0.0.1', port: 8080, ssl: false },
    ]);
    expect(parseServersState(`1\n${HEADER}\n\n`)).to.deep.equal([]);
    expect(parseServersState("Can't find backend.\n\n")).to.equal(null);
    expect(() => parseServersState('Unknown command\n')).to.throw(/no header line/);
    expect(() => parseServersState(`1\n${HEADER}\n3 backend_1 1 s 10.0.0.1\n`)).to.throw(/5 fields for 25 columns/);
  });

  it('a session line: frontend, backend/server, bytes, termination state and the backend TLS error', () => {
    expect(parseHaproxySession('10.244.0.2:49546 [01/Dec/2026:09:00:09.282] frontend_1033 backend_1033/server_10.96.0.12_61001 1/-1/2 0 SC ssl_err=error:0A000086:SSL routines::certificate verify failed')).to.deep.equal({
      client: '10.244.0.2:49546', frontend: 'frontend_1033', backend: 'backend_1033', server: 'server_10.96.0.12_61001', bytes: 0, termination: 'SC', sslError: 'error:0A000086:SSL routines::certificate verify failed',
    });
    expect(parseHaproxySession('10.244.0.2:46992 [01/Dec/2026:09:01:45.762] frontend_1025 backend_1025/server_10.96.0.12_8080 1/0/1 41 -- ssl_err=-')).to.include({ server: 'server_10.96.0.12_8080', bytes: 41, termination: '--', sslError: '-' });
    expect(parseHaproxySession('10.244.0.2:36926 [01/Dec/2026:09:01:54.918] frontend_1031 backend_1031/<NOSRV> -1/-1/0 0 SC ssl_err=-')).to.include({ backend: 'backend_1031', server: '<NOSRV>', termination: 'SC' });
    expect(() => parseHaproxySession('[WARNING]  (7816) : Proxy frontend_1025 stopped (cumulated conns: FE: 1, BE: 0).')).to.throw(/not a tcp-router session line/);
  });
});

describe('dataplane/haproxy tcp-router: NewHAProxyConfig skip rules', () => {
  it('TLS port with an empty instance_id: the server is skipped, then the empty entry', () => {
    const out = buildHaproxyConfig([route({ backend_tls_port: 8443, instance_id: '' })], TLS_ON, PATHS);
    expect(out).to.deep.equal({
      text: '',
      logs: [
        skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.instance_id. Value: unset.'),
        skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.servers. Value: [].'),
      ],
    });
    expect(out.logs.map(formatLager)).to.deep.equal([
      '{"source":"tcp-router","message":"tcp-router.skipping-invalid-routing-table-entry","log_level":2,"data":{"error":"Skipping invalid routing table entry for port: 1024/sni_hostname: \\"\\". Field: backend_configuration.instance_id. Value: unset."}}',
      '{"source":"tcp-router","message":"tcp-router.skipping-invalid-routing-table-entry","log_level":2,"data":{"error":"Skipping invalid routing table entry for port: 1024/sni_hostname: \\"\\". Field: backend_configuration.servers. Value: []."}}',
    ]);
  });

  it('the instance_id skip drops only that server; the others stay', () => {
    const out = buildHaproxyConfig([route({ backend_tls_port: 8443, instance_id: '' }), route({ backend_ip: '10.0.0.9' })], TLS_ON, PATHS);
    expect(out.text).to.equal(single(['  server server_10.0.0.9_8080 10.0.0.9:8080']));
    expect(out.logs).to.deep.equal([
      skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.instance_id. Value: unset.'),
    ]);
  });

  it('frontend port 0 (Go prints the uint16 with %s as a bad verb)', () => {
    expect(buildHaproxyConfig([route({ port: 0 })], TLS_ON, PATHS).logs).to.deep.equal([
      skipError('Skipping invalid routing table entry for port: 0/sni_hostname: "". Field: frontend_configuration.port. Value: %!s(uint16=0).'),
    ]);
  });

  it('an SNI hostname that is not a DNS name', () => {
    expect(buildHaproxyConfig([route({ backend_sni_hostname: 'bad host!' })], TLS_ON, PATHS)).to.deep.equal({
      text: '',
      logs: [skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "bad host!". Field: frontend_configuration.sni_hostname. Value: bad host!.')],
    });
  });

  it('backend_port 0 with no TLS port', () => {
    expect(buildHaproxyConfig([route({ backend_port: 0, backend_tls_port: -1 })], TLS_ON, PATHS).logs).to.deep.equal([
      skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.port. Value: %!s(uint16=0).'),
      skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.servers. Value: [].'),
    ]);
  });

  it('an empty or non-DNS address (IPv4 passes, IPv6 does not)', () => {
    const out = buildHaproxyConfig([route({ backend_ip: '' }), route({ backend_ip: 'fd00::1' }), route({ backend_ip: 'cell-1.internal' })], TLS_ON, PATHS);
    expect(out.logs).to.deep.equal([
      skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.address. Value: .'),
      skipError('Skipping invalid routing table entry for port: 1024/sni_hostname: "". Field: backend_configuration.address. Value: fd00::1.'),
    ]);
    expect(out.text).to.equal(single(['  server server_cell-1.internal_8080 cell-1.internal:8080']));
  });

  it('sorts servers by address (as strings), then backend_port, and collapses duplicates', () => {
    const routes = [
      route({ backend_ip: '10.0.0.2', backend_port: 9090 }),
      route({ backend_ip: '10.0.0.10', backend_port: 8080 }),
      route({ backend_ip: '10.0.0.2', backend_port: 8080 }),
      route({ backend_ip: '10.0.0.2', backend_port: 9090 }),
    ];
    expect(buildHaproxyConfig(routes, TLS_ON, PATHS).text).to.equal(
      single(['  server server_10.0.0.10_8080 10.0.0.10:8080', '  server server_10.0.0.2_8080 10.0.0.2:8080', '  server server_10.0.0.2_9090 10.0.0.2:9090']),
    );
  });
});

describe('dataplane/haproxy tcp-router: frontends and the full text', () => {
  it('SNI routes: inspect-delay, content accept, default_backend then use_backend per hostname (sorted)', () => {
    const routes = [
      route({ backend_sni_hostname: 'b.example.com', backend_ip: '10.0.0.3' }),
      route({ backend_ip: '10.0.0.1' }),
      route({ backend_sni_hostname: 'a.example.com', backend_ip: '10.0.0.2' }),
    ];
    expect(buildHaproxyConfig(routes, TLS_OFF, PATHS).text).to.equal(`
frontend frontend_1024
  mode tcp
  bind :1024
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type gt 0 }
  default_backend backend_1024
  use_backend backend_1024_a.example.com if { req.ssl_sni a.example.com }
  use_backend backend_1024_b.example.com if { req.ssl_sni b.example.com }

backend backend_1024
  mode tcp
  server server_10.0.0.1_8080 10.0.0.1:8080

backend backend_1024_a.example.com
  mode tcp
  server server_10.0.0.2_8080 10.0.0.2:8080

backend backend_1024_b.example.com
  mode tcp
  server server_10.0.0.3_8080 10.0.0.3:8080
`);
  });

  it('only SNI routes: no default_backend', () => {
    expect(buildHaproxyConfig([route({ backend_sni_hostname: 'a.example.com' })], TLS_OFF, PATHS).text).to.equal(`
frontend frontend_1024
  mode tcp
  bind :1024
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type gt 0 }
  use_backend backend_1024_a.example.com if { req.ssl_sni a.example.com }

backend backend_1024_a.example.com
  mode tcp
  server server_10.0.0.1_8080 10.0.0.1:8080
`);
  });

  it('renders a multi-route table exactly as the golden, with its logs', () => {
    const out = buildHaproxyConfig(goldenRoutes(), TLS_ON, PATHS);
    expect(out.text).to.equal(GOLDEN);
    expect(out.logs).to.deep.equal([
      skipError('Skipping invalid routing table entry for port: 1025/sni_hostname: "cache.example.com". Field: backend_configuration.instance_id. Value: unset.'),
      skipError('Skipping invalid routing table entry for port: 1025/sni_hostname: "cache.example.com". Field: backend_configuration.servers. Value: [].'),
      {
        source: 'tcp-router',
        message: 'tcp-router.route-missing-tls-information',
        log_level: 2,
        data: {
          backend: { Address: '10.0.1.6', Port: 5432, TLSPort: 0, InstanceID: '' },
          error: 'Backend TLSPort was set to 0. If TLS is intentionally off for this backend, set this to -1 to suppress this message',
        },
      },
    ]);
    expect(formatLager(out.logs[2]!)).to.equal(
      '{"source":"tcp-router","message":"tcp-router.route-missing-tls-information","log_level":2,"data":{"backend":{"Address":"10.0.1.6","Port":5432,"TLSPort":0,"InstanceID":""},"error":"Backend TLSPort was set to 0. If TLS is intentionally off for this backend, set this to -1 to suppress this message"}}',
    );
  });

  it('formatLager escapes like Go encoding/json and sorts the data keys', () => {
    const l: LagerLog = { source: 'tcp-router', message: 'tcp-router.x', log_level: 1, data: { z: '<a&b>', a: 1 } };
    expect(formatLager(l)).to.equal('{"source":"tcp-router","message":"tcp-router.x","log_level":1,"data":{"a":1,"z":"\\u003ca\\u0026b\\u003e"}}');
  });
});


const GOLDEN = `
frontend frontend_1023
  mode tcp
  bind :1023
  default_backend backend_1023

backend backend_1023
  mode tcp
  server server_10.0.2.1_7000 10.0.2.1:7000

frontend frontend_1024
  mode tcp
  bind :1024
  default_backend backend_1024

backend backend_1024
  mode tcp
  server server_10.0.0.1_61003 10.0.0.1:61003 ssl verify required ca-file /etc/tcp-router/ca.crt crt /etc/tcp-router/client.pem verifyhost bbbb-2222
  server server_10.0.0.2_61001 10.0.0.2:61001 ssl verify required ca-file /etc/tcp-router/ca.crt crt /etc/tcp-router/client.pem verifyhost aaaa-1111

frontend frontend_1025
  mode tcp
  bind :1025
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type gt 0 }
  default_backend backend_1025
  use_backend backend_1025_db.example.com if { req.ssl_sni db.example.com }

backend backend_1025
  mode tcp
  server server_10.0.1.6_5432 10.0.1.6:5432

backend backend_1025_db.example.com
  mode tcp
  server server_10.0.1.5_5432 10.0.1.5:5432
`;

// ------------------------------------------------------------------ base config + the real haproxy

describe('dataplane/haproxy tcp-router: haproxyBaseConfig', () => {
  it('renders the BOSH template facts for master-worker under root', () => {
    expect(haproxyBaseConfig({ statsSocket: '/run/tcp-router/haproxy.sock', pidFile: '/run/tcp-router/haproxy.pid' })).to.equal(`global
    spread-checks 4
    pidfile /run/tcp-router/haproxy.pid
    stats socket /run/tcp-router/haproxy.sock mode 600 level admin expose-fd listeners
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    timeout connect 30000ms
    maxconn 64000
    retries 0
    timeout client 300000ms
    timeout server 300000ms

listen health_check_http_url
    mode http
    bind :80
    monitor-uri /health
    monitor fail if { env(IS_DRAINING) -m str true }
`);
  });

  it('request timeout, health port and global maxconn are options; a 0 timeout leaves the timeouts out', () => {
    const text = haproxyBaseConfig({ statsSocket: '/s', requestTimeoutSeconds: 0, healthPort: 8080, maxconn: 4096 });
    expect(text).to.not.match(/timeout (client|server)/);
    expect(text).to.contain('global\n    maxconn 4096\n    spread-checks 4\n');
    expect(text).to.contain('    bind :8080\n');
    expect(text).to.not.match(/\b(user|group|chroot|daemon)\b/);
    expect(haproxyBaseConfig({ statsSocket: '/s', requestTimeoutSeconds: 5 })).to.contain('    timeout client 5000ms\n    timeout server 5000ms\n');
  });
});
