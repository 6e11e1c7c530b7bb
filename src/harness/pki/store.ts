// The only place PKI touches the disk: PEM files for one run.
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

export class PkiStore {
  readonly dir: string;
  /** Key and bundle files this store wrote, removed by removeKeys(). */
  readonly #secrets = new Set<string>();
  /** path -> what wrote it, so a CA and an identity can never overwrite each other's files. */
  readonly #writers = new Map<string, string>();

  /** Creates `dir` (0711: other uids may traverse to their files but not list them) if missing. */
  constructor(dir: string) {
    this.dir = resolve(dir);
    if (mkdirSync(this.dir, { recursive: true, mode: DIR_MODE }) !== undefined) {
      chmodSync(this.dir, DIR_MODE); // mkdir's mode is filtered by the umask
    }
  }

  /** Writes `<dir>/<ca.name>-ca.crt` (0644) and returns its path. The CA key is never written. */
  writeCa(ca: CertificateAuthority): string {
    assertName(ca.name);
    const [path] = this.#claim([`${ca.name}-ca.crt`], `CA ${ca.name}`) as [string];
    writeAtomic(path, ca.certPem, CERT_MODE);
    return path;
  }

  /**
   * Writes `<name>.crt`, `<name>.ca.crt` (0644) and `<name>.key`, `<name>.pem` (cert+key; 0600, chowned to
   * `owner` when given, e.g. the uid Envoy or HAProxy runs as).
   */
  writeIdentity(c: IssuedCert, owner?: { uid: number; gid: number }): IdentityPaths {
    assertName(c.name);
    const [cert, key, ca, bundle] = this.#claim([`${c.name}.crt`, `${c.name}.key`, `${c.name}.ca.crt`, `${c.name}.pem`], `identity ${c.name}`);
    const paths: IdentityPaths = { cert: cert!, key: key!, ca: ca!, bundle: bundle! };
    writeAtomic(paths.cert, c.certPem, CERT_MODE);
    writeAtomic(paths.ca, c.caPem, CERT_MODE);
    this.#secrets.add(paths.key);
    writeAtomic(paths.key, c.keyPem, KEY_MODE, owner);
    this.#secrets.add(paths.bundle);
    writeAtomic(paths.bundle, c.certPem + c.keyPem, KEY_MODE, owner);
    return paths;
  }

  /**
   * Writes a secret that is no X.509 identity (a signing key, a token file, a kubeconfig) as
   * `<dir>/<file>` (0600, chowned to `owner` when given); removed by removeKeys() like the keys.
   */
  writeSecret(file: string, content: string, owner?: { uid: number; gid: number }): string {
    assertName(file);
    const [path] = this.#claim([file], `secret ${file}`) as [string];
    this.#secrets.add(path);
    writeAtomic(path, content, KEY_MODE, owner);
    return path;
  }

  /** Writes a public key (e.g. a token-verifying key) as `<dir>/<file>`, 0644 like a certificate. */
  writePublicKey(file: string, pem: string): string {
    assertName(file);
    const [path] = this.#claim([file], `public key ${file}`) as [string];
    writeAtomic(path, pem, CERT_MODE);
    return path;
  }

  /** Removes every key (and bundle) this store wrote; certificates stay for the report. Idempotent. */
  removeKeys(): void {
    for (const path of this.#secrets) {
      rmSync(path, { force: true });
      this.#secrets.delete(path);
    }
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
