// Routes and tcp-router settings for the tcp-router builder (dataplane/haproxy/tcp-router.ts), shared by its unit
// tests and the integration test that hands the text to the real `haproxy -c`. Every field is written out by hand.
import type { BackendTlsConfig } from '../../src/harness/dataplane/haproxy/tcp-router.ts';
import type { TcpMappingEntity } from '../../src/harness/model/cf/routes.ts';

/** A route as routing-api holds it; every field written out so the tests read without the code under test. */
export function route(o: Partial<TcpMappingEntity> = {}): TcpMappingEntity {
  return {
    router_group_guid: 'rg-1',
    port: 1024,
    backend_ip: '10.0.0.1',
    backend_port: 8080,
    backend_tls_port: -1,
    instance_id: '',
    modification_tag: { guid: '', index: 0 },
    ttl: 120,
    isolation_segment: '',
    terminate_frontend_tls: false,
    alpns: '',
    enable_backend_mtls: false,
    ...o,
  };
}

export const CA = '/etc/tcp-router/ca.crt';
export const PEM = '/etc/tcp-router/client.pem';
export const TLS_ON: BackendTlsConfig = { enabled: true, caCertPath: CA, clientCertAndKeyPath: PEM };
export const TLS_OFF: BackendTlsConfig = { enabled: false };
export const PATHS = { caFile: CA, clientPemFile: PEM };

/** Two Diego endpoints with TLS, a route-registrar SNI route, a legacy 0, an SNI route without instance_id, a -1. */
export function goldenRoutes(): TcpMappingEntity[] {
  return [
    route({ port: 1024, backend_ip: '10.0.0.2', backend_port: 61000, backend_tls_port: 61001, instance_id: 'aaaa-1111' }),
    route({ port: 1024, backend_ip: '10.0.0.1', backend_port: 61002, backend_tls_port: 61003, instance_id: 'bbbb-2222' }),
    route({ port: 1025, backend_ip: '10.0.1.5', backend_port: 5432, backend_tls_port: -1, backend_sni_hostname: 'db.example.com' }),
    route({ port: 1025, backend_ip: '10.0.1.6', backend_port: 5432, backend_tls_port: 0 }),
    route({ port: 1025, backend_ip: '10.0.1.7', backend_port: 6379, backend_tls_port: 6380, backend_sni_hostname: 'cache.example.com' }),
    route({ port: 1023, backend_ip: '10.0.2.1', backend_port: 7000, backend_tls_port: -1 }),
  ];
}
