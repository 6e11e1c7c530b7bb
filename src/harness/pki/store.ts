// The only place PKI lays out its files: PEM files for one run, on the host (PkiStore) or in the pods (PodPkiStore).
// Every file is written to a fresh temp file (O_EXCL, final mode from the start) and renamed into place, so a
// reader (Envoy's SDS directory watch, HAProxy reload) never sees a partial file and a key is never group/world-readable.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { assertName, type CertificateAuthority, type IssuedCert } from './ca.ts';

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const DIR_MODE = 0o711;

export interface IdentityPaths {
  cert: string;
  key: string;
  ca: string;
  /** cert + key in one PEM, for HAProxy `crt` (and CF tcp-router `client_cert_and_key_path`). */
  bundle: string;
}

export interface FileOwner {
  uid: number;
  gid: number;
}

/**
 * Writes one file of a PodPkiStore where the pods read it, atomically, with `mode` and owned by `uid`/`gid` (root when
 * absent): a profile passes Cluster.writeFile, so no profile touches the host's files.
 */
export type PkiWriteFile = (path: string, content: string, opts: { mode: number; uid?: number; gid?: number }) => Promise<void>;

/** What a suite writes its extra certificates with: the host's store (the kube layer's) or the pods' (a profile's). */
export interface CertificateStore {
  writeCa(ca: CertificateAuthority): string | Promise<string>;
  writeIdentity(c: IssuedCert, owner?: FileOwner): IdentityPaths | Promise<IdentityPaths>;
}

interface PemFile {
  path: string;
  content: string;
  mode: number;
  owner?: FileOwner;
  /** A key or a bundle (what PkiStore.removeKeys removes). */
  secret: boolean;
}

/** The one file layout of a store (names and modes) and its claims: a CA and an identity never overwrite each other's files. */
class PkiLayout {
  readonly dir: string;
  /** path -> what wrote it */
  readonly #writers = new Map<string, string>();

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** `<dir>/<ca.name>-ca.crt` (0644); the CA key is never written. */
  ca(ca: CertificateAuthority): PemFile[] {
    assertName(ca.name);
    const [path] = this.#claim([`${ca.name}-ca.crt`], `CA ${ca.name}`) as [string];
    return [{ path, content: ca.certPem, mode: CERT_MODE, secret: false }];
  }

  /** `<name>.crt`, `<name>.ca.crt` (0644) and `<name>.key`, `<name>.pem` (cert+key; 0600, owned by `owner` when given). */
  identity(c: IssuedCert, owner?: FileOwner): { paths: IdentityPaths; files: PemFile[] } {
    assertName(c.name);
    const [cert, key, ca, bundle] = this.#claim([`${c.name}.crt`, `${c.name}.key`, `${c.name}.ca.crt`, `${c.name}.pem`], `identity ${c.name}`);
    const paths: IdentityPaths = { cert: cert!, key: key!, ca: ca!, bundle: bundle! };
    const own = owner ? { owner } : {};
    return {
      paths,
      files: [
        { path: paths.cert, content: c.certPem, mode: CERT_MODE, secret: false },
        { path: paths.ca, content: c.caPem, mode: CERT_MODE, secret: false },
        { path: paths.key, content: c.keyPem, mode: KEY_MODE, ...own, secret: true },
        { path: paths.bundle, content: c.certPem + c.keyPem, mode: KEY_MODE, ...own, secret: true },
      ],
    };
  }

  /** `<dir>/<file>`, 0600 (owned by `owner` when given). */
  secret(file: string, content: string, owner?: FileOwner): PemFile[] {
    assertName(file);
    const [path] = this.#claim([file], `secret ${file}`) as [string];
    return [{ path, content, mode: KEY_MODE, ...(owner ? { owner } : {}), secret: true }];
  }

  /** `<dir>/<file>`, 0644 like a certificate. */
  publicKey(file: string, pem: string): PemFile[] {
    assertName(file);
    const [path] = this.#claim([file], `public key ${file}`) as [string];
    return [{ path, content: pem, mode: CERT_MODE, secret: false }];
  }

  /** Resolves file names in the store; all or nothing, so a refused write leaves no claim behind. */
  #claim(files: string[], label: string): string[] {
    const paths = files.map((f) => join(this.dir, f));
    for (const path of paths) {
      const prev = this.#writers.get(path);
      if (prev !== undefined && prev !== label) {
        throw new Error(`pki: ${label} would overwrite ${path}, already written for ${prev}; choose another name`);
      }
    }
    for (const path of paths) this.#writers.set(path, label);
    return paths;
  }
}

/** PEM files on the host, for what runs the pods' node-level parts (the kube layer, istiod's mesh). */
export class PkiStore implements CertificateStore {
  readonly #layout: PkiLayout;
  /** Key and bundle files this store wrote, removed by removeKeys(). */
  readonly #secrets = new Set<string>();

  /** Creates `dir` (0711: other uids may traverse to their files but not list them) if missing. */
  constructor(dir: string) {
    this.#layout = new PkiLayout(dir);
    if (mkdirSync(this.dir, { recursive: true, mode: DIR_MODE }) !== undefined) {
      chmodSync(this.dir, DIR_MODE); // mkdir's mode is filtered by the umask
    }
  }

  get dir(): string {
    return this.#layout.dir;
  }

  /** Writes `<dir>/<ca.name>-ca.crt` (0644) and returns its path. The CA key is never written. */
  writeCa(ca: CertificateAuthority): string {
    return this.#write(this.#layout.ca(ca));
  }

  /**
   * Writes `<name>.crt`, `<name>.ca.crt` (0644) and `<name>.key`, `<name>.pem` (cert+key; 0600, chowned to
   * `owner` when given, e.g. the uid Envoy or HAProxy runs as).
   */
  writeIdentity(c: IssuedCert, owner?: FileOwner): IdentityPaths {
    const { paths, files } = this.#layout.identity(c, owner);
    this.#write(files);
    return paths;
  }

  /**
   * Writes a secret that is no X.509 identity (a signing key, a token file, a kubeconfig) as
   * `<dir>/<file>` (0600, chowned to `owner` when given); removed by removeKeys() like the keys.
   */
  writeSecret(file: string, content: string, owner?: FileOwner): string {
    return this.#write(this.#layout.secret(file, content, owner));
  }

  /** Writes a public key (e.g. a token-verifying key) as `<dir>/<file>`, 0644 like a certificate. */
  writePublicKey(file: string, pem: string): string {
    return this.#write(this.#layout.publicKey(file, pem));
  }

  /** Removes every key (and bundle) this store wrote; certificates stay for the report. Idempotent. */
  removeKeys(): void {
    for (const path of this.#secrets) {
      rmSync(path, { force: true });
      this.#secrets.delete(path);
    }
  }

  /** Writes the files in order; the first one's path. */
  #write(files: PemFile[]): string {
    for (const f of files) {
      if (f.secret) this.#secrets.add(f.path);
      writeAtomic(f.path, f.content, f.mode, f.owner);
    }
    return files[0]!.path;
  }
}

/**
 * PEM files where the pods read them, through `write` (Cluster.writeFile): a profile's CA, identities and keys, laid
 * out as PkiStore lays them out. Its directory is in the run's state dir, so the keys go with the run.
 */
export class PodPkiStore implements CertificateStore {
  readonly #layout: PkiLayout;

  constructor(
    dir: string,
    private readonly write: PkiWriteFile,
  ) {
    this.#layout = new PkiLayout(dir);
  }

  get dir(): string {
    return this.#layout.dir;
  }

  /** `<dir>/<ca.name>-ca.crt` (0644) and its path. The CA key is never written. */
  writeCa(ca: CertificateAuthority): Promise<string> {
    return this.#write(this.#layout.ca(ca));
  }

  /** `<name>.crt`, `<name>.ca.crt` (0644) and `<name>.key`, `<name>.pem` (cert+key; 0600, owned by `owner` when given). */
  async writeIdentity(c: IssuedCert, owner?: FileOwner): Promise<IdentityPaths> {
    const { paths, files } = this.#layout.identity(c, owner);
    await this.#write(files);
    return paths;
  }

  /** `<dir>/<file>`, 0600 (owned by `owner` when given). */
  writeSecret(file: string, content: string, owner?: FileOwner): Promise<string> {
    return this.#write(this.#layout.secret(file, content, owner));
  }

  /** `<dir>/<file>`, 0644 like a certificate. */
  writePublicKey(file: string, pem: string): Promise<string> {
    return this.#write(this.#layout.publicKey(file, pem));
  }

  async #write(files: PemFile[]): Promise<string> {
    for (const f of files) await this.write(f.path, f.content, { mode: f.mode, ...(f.owner ? { uid: f.owner.uid, gid: f.owner.gid } : {}) });
    return files[0]!.path;
  }
}

/** Creates a temp file with `mode` (O_EXCL: never an existing file or symlink), fixes mode/owner, writes, fsyncs, renames. */
function writeAtomic(path: string, content: string, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    try {
      fchmodSync(fd, mode); // the umask may have removed bits; it can never have added any
      if (owner) fchownSync(fd, owner.uid, owner.gid);
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`pki: cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}
