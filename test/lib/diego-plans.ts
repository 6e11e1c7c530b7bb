// Sidecar plans for the Diego Envoy builders (dataplane/envoy/diego.ts, front-router.ts), shared by the unit tests
// of their text and the integration tests that hand it to the real Envoy. Every value is written out by hand.
import { parse } from 'yaml';
import type { DiegoSidecarPlan } from '../../src/harness/dataplane/envoy/diego.ts';
import type { FrontRouterPlan } from '../../src/harness/dataplane/envoy/front-router.ts';
import { adminPort, allocateProxyPorts } from '../../src/harness/model/cf/diego.ts';

// The YAML is parsed back into loose objects; these read them without `any`.
export type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj => v as Obj;
export const arr = (v: unknown): Obj[] => v as Obj[];
export const cfg = (yaml: string): Obj => obj(parse(yaml));
export const listeners = (c: Obj): Obj[] => arr(obj(c.static_resources).listeners);
export const clusters = (c: Obj): Obj[] => arr(obj(c.static_resources).clusters);

/** Where the executor writes the SDS files (envoy_config under cf-assets). */
export const SDS = '/etc/cf-assets/envoy_config';
export const GUID = '5c5d3a2e-8f3b-4b7e-9d57-0f1c3c1a9e21';
export const G1 = 'a1b2c3d4-0000-4000-8000-000000000001';
export const G2 = 'a1b2c3d4-0000-4000-8000-000000000002';

/** An instance with ports 8080 and 2222 on a cell requiring client certificates (cf-deployment's default). */
export function diegoPlan(o: Partial<DiegoSidecarPlan> & { c2cMtls?: boolean } = {}): DiegoSidecarPlan {
  const { c2cMtls, ...rest } = o;
  const mappings = allocateProxyPorts([8080, 2222], { c2cMtls });
  return {
    instanceGuid: GUID,
    containerIp: '10.255.0.7',
    mappings,
    adminPort: adminPort(mappings, [8080, 2222]),
    enableHttp2: true,
    requireAndVerifyClientCertificates: true,
    sdsDir: SDS,
    ...rest,
  };
}

/** The same instance on a cell with the draft RFC's options (62443 listener, egress proxy) and no client-cert demand. */
export function rfcPlan(o: { c2cMtls?: boolean; egress?: boolean; sdsDir?: string } = {}): DiegoSidecarPlan {
  const mappings = allocateProxyPorts([8080, 2222], { c2cMtls: o.c2cMtls });
  return {
    instanceGuid: GUID,
    containerIp: '10.255.0.7',
    mappings,
    adminPort: adminPort(mappings, [8080, 2222]),
    enableHttp2: true,
    requireAndVerifyClientCertificates: false,
    sdsDir: o.sdsDir ?? SDS,
    ...(o.egress ? { egressProxy: { internalDomains: ['apps.internal'] } } : {}),
  };
}

/** gorouter with two routes over three endpoints, trusting the instance identity CA and presenting its client cert. */
export function routerPlan(o: Partial<FrontRouterPlan> = {}): FrontRouterPlan {
  return {
    port: 8081,
    adminPort: 9901,
    routes: [
      { host: 'dora.apps.example.com', endpoints: [{ host: '10.255.0.7', tlsPort: 61001, serverCertDomainSan: G1 }, { host: '10.255.0.8', tlsPort: 61001, serverCertDomainSan: G2 }] },
      { host: 'sentences.apps.example.com', endpoints: [{ host: '10.255.0.9', tlsPort: 61002, serverCertDomainSan: G1 }] },
    ],
    backendTls: { ca: '/pki/iid-ca.crt', clientCert: { cert: '/pki/gorouter.crt', key: '/pki/gorouter.key' } },
    ...o,
  };
}
