// Field-specific identities, each a thin call of CertificateAuthority.issue().
import type { CertificateAuthority, IssuedCert } from './ca.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Istio pkg/spiffe GenSpiffeURI: "spiffe://" + trustDomain + "/ns/" + ns + "/sa/" + sa. */
export function spiffeId(trustDomain: string, ns: string, sa: string): string {
  if (!trustDomain || !ns || !sa) {
    throw new Error(`pki: spiffeId needs a trust domain, namespace and service account (got ${JSON.stringify({ trustDomain, ns, sa })})`);
  }
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}

export interface SpiffeOptions {
  ns: string;
  sa: string;
  /** Default `cluster.local` (Istio's default trust domain). */
  trustDomain?: string;
  dns?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

/** Istio workload certificate: empty subject, the SPIFFE URI SAN is the identity; serverAuth + clientAuth. Name `<sa>.<ns>`. */
export function issueSpiffe(ca: CertificateAuthority, o: SpiffeOptions): Promise<IssuedCert> {
  return ca.issue(`${o.sa}.${o.ns}`, {
    uris: [spiffeId(o.trustDomain ?? 'cluster.local', o.ns, o.sa)],
    dns: o.dns,
    eku: ['serverAuth', 'clientAuth'],
    notBefore: o.notBefore,
    notAfter: o.notAfter,
  });
}

export interface InstanceIdentityOptions {
  instanceGuid: string;
  appGuid: string;
  spaceGuid: string;
  orgGuid: string;
  /** Container IP (Diego: InternalIP). */
  ip: string;
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * Cloud Foundry Diego instance identity (executor depot/containerstore/credmanager.go): CN = instance GUID,
 * OUs `organization:<org>`, `space:<space>`, `app:<app>` (cloud_controller_ng app_recipe_builder.rb),
 * DNS SAN = instance GUID, IP SAN = container IP, EKU clientAuth + serverAuth, 24 h validity
 * (diego.executor.instance_identity_validity_period_in_hours). Name = instance GUID.
 */
export function issueInstanceIdentity(ca: CertificateAuthority, o: InstanceIdentityOptions): Promise<IssuedCert> {
  const notBefore = o.notBefore ?? new Date();
  return ca.issue(o.instanceGuid, {
    subject: { CN: o.instanceGuid, OU: [`organization:${o.orgGuid}`, `space:${o.spaceGuid}`, `app:${o.appGuid}`] },
    dns: [o.instanceGuid],
    ips: [o.ip],
    eku: ['clientAuth', 'serverAuth'],
    notBefore,
    notAfter: o.notAfter ?? new Date(notBefore.getTime() + 24 * HOUR),
  });
}

/** TLS server certificate, e.g. CN=sentences.example.com, O=ACMEorg (istio-katas ingress gateway). DNS SAN defaults to [cn]. */
export function issueServer(
  ca: CertificateAuthority,
  o: { cn: string; dns?: string[]; o?: string; notBefore?: Date; notAfter?: Date },
): Promise<IssuedCert> {
  return ca.issue(o.cn, {
    subject: { CN: o.cn, O: o.o === undefined ? undefined : [o.o] },
    dns: o.dns ?? [o.cn],
    eku: ['serverAuth'],
    notBefore: o.notBefore,
    notAfter: o.notAfter,
  });
}

/** TLS client certificate, e.g. CN=client.example.com, O=ACMEorg (istio-katas); subject only, no SAN. */
export function issueClient(
  ca: CertificateAuthority,
  o: { cn: string; o?: string; notBefore?: Date; notAfter?: Date },
): Promise<IssuedCert> {
  return ca.issue(o.cn, {
    subject: { CN: o.cn, O: o.o === undefined ? undefined : [o.o] },
    eku: ['clientAuth'],
    notBefore: o.notBefore,
    notAfter: o.notAfter,
  });
}

/** Validity window that ended an hour ago (issued 25 h ago for 24 h). Spread into a LeafSpec or an issue* option. */
export function expired(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 25 * HOUR), notAfter: new Date(now - HOUR) };
}

/** Validity window that starts in an hour. */
export function notYetValid(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now + HOUR), notAfter: new Date(now + 25 * HOUR) };
}
