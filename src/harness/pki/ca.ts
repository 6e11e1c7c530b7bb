// Per-run certificate authority and leaf issuance: real X.509 built with @peculiar/x509, ECDSA P-256 / SHA-256.
// Pure in-memory: no files, no processes (writing PEMs is PkiStore's job).
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

// One provider for the whole process; node:crypto's WebCrypto is API-compatible with the DOM `Crypto` type.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const KEY_ALG: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN_ALG: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export type Eku = 'serverAuth' | 'clientAuth';

export interface IssuedCert {
  name: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  /** DER of the leaf */
  der: Buffer;
  /** lowercase hex sha256 of der, as Envoy's XFCC Hash */
  sha256: string;
  notBefore: Date;
  notAfter: Date;
}

export interface LeafSpec {
  /** Multiple OUs allowed; their order is preserved (one RDN per value). */
  subject?: { CN?: string; O?: string[]; OU?: string[] };
  dns?: string[];
  ips?: string[];
  uris?: string[];
  /** Default: both. */
  eku?: Eku[];
  /** Default: now - 5 min. */
  notBefore?: Date;
  /** Default: now + 24 h. */
  notAfter?: Date;
}

export interface CaOptions {
  cn?: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** Names become file names in PkiStore, so they are restricted to a safe alphabet. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function assertName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new Error(`pki: name ${JSON.stringify(name)} must match ${NAME_RE} (it becomes a file name)`);
  }
}

/** X.509 Time has one-second resolution; truncating up front keeps IssuedCert dates equal to the cert's. */
function toSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** 16 random bytes, top bit clear and next bit set: always positive, always 16 bytes in DER (RFC 5280 4.1.2.2). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString('hex');
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return ensureNl(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

function ensureNl(pem: string): string {
  const unix = pem.replace(/\r\n/g, '\n');
  return unix.endsWith('\n') ? unix : `${unix}\n`;
}

/** Subject in conventional most-significant-first order (O, OU..., CN), one attribute per RDN. */
function subjectName(s: LeafSpec['subject']): x509.JsonName {
  const rdns: x509.JsonName = [];
  for (const o of s?.O ?? []) rdns.push({ O: [o] });
  for (const ou of s?.OU ?? []) rdns.push({ OU: [ou] });
  if (s?.CN !== undefined) rdns.push({ CN: [s.CN] });
  return rdns;
}

function validity(notBefore: Date, notAfter: Date): { notBefore: Date; notAfter: Date } {
  const nb = toSecond(notBefore);
  const na = toSecond(notAfter);
  if (na.getTime() <= nb.getTime()) {
    throw new Error(`pki: notAfter (${na.toISOString()}) must be after notBefore (${nb.toISOString()})`);
  }
  return { notBefore: nb, notAfter: na };
}

/**
 * A fresh P-256 key pair for signing that is no certificate's (kube-apiserver's service-account
 * tokens): the private key as PKCS#8 PEM (--service-account-signing-key-file takes it) and the
 * public key as SPKI PEM (--service-account-key-file parses EC private keys only in SEC1 form:
 * client-go util/keyutil ParsePublicKeysPEM).
 */
export async function newSigningKeyPair(): Promise<{ keyPem: string; publicKeyPem: string }> {
  const keys = await keyPair();
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey as webcrypto.CryptoKey);
  return { keyPem: await keyToPem(keys.privateKey), publicKeyPem: ensureNl(x509.PemConverter.encode(spki, 'PUBLIC KEY')) };
}

export class CertificateAuthority {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly #cert: x509.X509Certificate;
  readonly #key: CryptoKey;
  readonly #keyId: string;

  private constructor(name: string, cert: x509.X509Certificate, key: CryptoKey, keyPem: string, keyId: string) {
    this.name = name;
    this.#cert = cert;
    this.#key = key;
    this.#keyId = keyId;
    this.certPem = ensureNl(cert.toString('pem'));
    this.keyPem = keyPem;
  }

  /** A self-signed root: CN defaults to `meshproof <name> CA`; validity defaults to now-5min .. now+7d. */
  static async create(name: string, opts: CaOptions = {}): Promise<CertificateAuthority> {
    assertName(name);
    const now = Date.now();
    const { notBefore, notAfter } = validity(opts.notBefore ?? new Date(now - 5 * MINUTE), opts.notAfter ?? new Date(now + 7 * 24 * HOUR));
    const keys = await keyPair();
    const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: [{ O: ['meshproof'] }, { CN: [opts.cn ?? `meshproof ${name} CA`] }],
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ski,
        new x509.AuthorityKeyIdentifierExtension(ski.keyId),
      ],
    });
    return new CertificateAuthority(name, cert, keys.privateKey, await keyToPem(keys.privateKey), ski.keyId);
  }

  /** Issues a leaf signed by this CA with a fresh P-256 key. */
  async issue(name: string, spec: LeafSpec): Promise<IssuedCert> {
    assertName(name);
    const now = Date.now();
    const { notBefore, notAfter } = validity(spec.notBefore ?? new Date(now - 5 * MINUTE), spec.notAfter ?? new Date(now + 24 * HOUR));
    const subject = subjectName(spec.subject);
    const sans: x509.JsonGeneralNames = [
      ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(spec.ips ?? []).map((value) => {
        if (isIP(value) === 0) throw new Error(`pki: ${JSON.stringify(value)} is not an IP address`);
        return { type: 'ip' as const, value };
      }),
      ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ];
    if (subject.length === 0 && sans.length === 0) {
      throw new Error(`pki: leaf ${name} has neither a subject nor a subjectAltName`);
    }
    const eku = spec.eku ?? ['serverAuth', 'clientAuth'];
    if (eku.length === 0) throw new Error(`pki: leaf ${name} has an empty extKeyUsage`);

    const keys = await keyPair();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(eku.map((u) => x509.ExtendedKeyUsage[u])),
      new x509.AuthorityKeyIdentifierExtension(this.#keyId),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ];
    if (sans.length > 0) {
      // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical (Istio does the same).
      extensions.push(new x509.SubjectAlternativeNameExtension(sans, subject.length === 0));
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject,
      issuer: this.#cert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.#key,
      signingAlgorithm: SIGN_ALG,
      extensions,
    });
    const der = Buffer.from(cert.rawData);
    return {
      name,
      certPem: ensureNl(cert.toString('pem')),
      keyPem: await keyToPem(keys.privateKey),
      caPem: this.certPem,
      der,
      sha256: createHash('sha256').update(der).digest('hex'),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }
}
