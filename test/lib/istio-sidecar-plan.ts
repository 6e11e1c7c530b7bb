// A sidecar plan for the Istio Envoy builder (dataplane/envoy/sidecar.ts), shared by the unit tests of its text and
// the integration test that hands it to the real Envoy. Every value is written out by hand.
import { join } from 'node:path';
import type { Endpoint, MtlsMode, SidecarPlan } from '../../src/harness/model/istio/plan.ts';

// The YAML is parsed back into loose objects; these helpers read them without `any`.
export type Node = Record<string, unknown>;
export const obj = (v: unknown): Node => v as Node;
export const arr = (v: unknown): Node[] => v as Node[];

export const SA = 'spiffe://cluster.local/ns/default/sa/name';
export const FQDN = 'name.default.svc.cluster.local';

export function endpoint(ip: string, istio: boolean, labels: Record<string, string> = {}): Endpoint {
  return { ip, port: 5000, labels, istio, identity: SA };
}

/** One pod (`sleep`) calling `name`: v1 (ISTIO_MUTUAL), v2 (DISABLE), whole service (AUTO, one istio + one plain endpoint). */
export function plan(mode: MtlsMode, certDir = '/etc/certs'): SidecarPlan {
  return {
    pod: 'sleep-0',
    namespace: 'default',
    identity: 'spiffe://cluster.local/ns/default/sa/sleep',
    inbound: [
      { port: 5000, mode, protocol: 'http' },
      { port: 6000, mode, protocol: 'tcp' },
    ],
    defaultMode: mode,
    outbound: [
      {
        fqdn: FQDN,
        vip: '10.96.0.10',
        port: 5000,
        protocol: 'http',
        subsets: [
          { name: '', endpoints: [endpoint('10.0.0.2', true), endpoint('10.0.0.3', false)], tls: 'AUTO', subjectAltNames: [SA] },
          { name: 'name-v1', endpoints: [endpoint('10.0.0.2', true, { version: 'v1' })], tls: 'ISTIO_MUTUAL', subjectAltNames: [SA] },
          { name: 'name-v2', endpoints: [endpoint('10.0.0.3', false, { version: 'v2' })], tls: 'DISABLE', subjectAltNames: [] },
        ],
        routes: [{ subset: 'name-v1', weight: 50 }, { subset: 'name-v2', weight: 50 }],
      },
      {
        fqdn: 'db.default.svc.cluster.local',
        vip: '10.96.0.11',
        port: 6000,
        protocol: 'tcp',
        subsets: [{ name: '', endpoints: [{ ...endpoint('10.0.0.4', true), port: 6000 }], tls: 'ISTIO_MUTUAL', subjectAltNames: [] }],
        routes: [],
      },
    ],
    certs: { cert: join(certDir, 'cert-chain.pem'), key: join(certDir, 'key.pem'), ca: join(certDir, 'root-cert.pem') },
  };
}


export function listener(cfg: Node, name: string): Node {
  const l = arr(obj(cfg.static_resources).listeners).find((x) => x.name === name);
  if (!l) throw new Error(`no listener ${name}`);
  return l;
}
