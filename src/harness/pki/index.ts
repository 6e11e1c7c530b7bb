// PKI for one run: per-run CAs, identity certificates (SPIFFE, CF instance identity, plain server/client) and the PEM store.
export { CertificateAuthority, newSigningKeyPair, type CaOptions, type Eku, type IssuedCert, type LeafSpec } from './ca.ts';
export {
  expired,
  issueClient,
  issueInstanceIdentity,
  issueServer,
  issueSpiffe,
  notYetValid,
  spiffeId,
  type InstanceIdentityOptions,
  type SpiffeOptions,
} from './identities.ts';
export { PkiStore, PodPkiStore, type CertificateStore, type FileOwner, type IdentityPaths, type PkiWriteFile } from './store.ts';
