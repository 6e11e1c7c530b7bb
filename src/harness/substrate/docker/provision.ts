// `meshproof doctor [--fix] --substrate docker`: Debian's docker.io (installed so that no dockerd or containerd is left
// running in the host namespace), debootstrap, and the offline pod images. doctor.ts lists these as its docker entries.
import { existsSync, readdirSync, readlinkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execBrief, findOnPath, firstLine } from '../../cli/tools.ts';
import type { Check } from '../../cli/doctor.ts';
import { runCapture } from '../sh.ts';
import { pingDocker, startEngine } from './engine.ts';
import { builtLayers, currentInputs, ensureImages, imagesCacheDir, POD_PACKAGES } from './images.ts';

const FIX = 'run meshproof doctor --fix --substrate docker';
/** The units docker.io and containerd ship (debian/docker.io.docker.service, .socket; containerd.service). */
export const DOCKER_UNITS = ['docker.service', 'docker.socket', 'containerd.service'];
/** invoke-rc.d and deb-systemd-invoke skip a service start when policy-rc.d exits 101 (Debian policy, invoke-rc.d(8)). */
const POLICY_RC_D = '/usr/sbin/policy-rc.d';
export const POLICY_RC_D_TEXT = '#!/bin/sh\n# meshproof doctor: no service starts while docker.io installs\nexit 101\n';

/** `Docker version 20.10.24+dfsg1, build 5d6db84` → `20.10.24+dfsg1`. */
export function parseDockerdVersion(out: string): string | null {
  return /\bDocker version (\d[\w.+~-]*?),/.exec(out)?.[1] ?? null;
}

/** `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3` → `1.6.20~ds1`. */
export function parseContainerdVersion(out: string): string | null {
  return /\bcontainerd \S+ v?(\d[\w.+~-]*)/.exec(out)?.[1] ?? null;
}

/** `runc version 1.1.5+ds1` → `1.1.5+ds1`. */
export function parseRuncVersion(out: string): string | null {
  return /^runc version (\d[\w.+~-]*)/m.exec(out)?.[1] ?? null;
}

/** `debootstrap 1.0.128+nmu2+deb12u2` → `1.0.128+nmu2+deb12u2`. */
export function parseDebootstrapVersion(out: string): string | null {
  return /^debootstrap (\d[\w.+~-]*)/m.exec(out)?.[1] ?? null;
}

/** systemd is PID 1 exactly when /run/systemd/system exists (sd_booted(3)); in this sandbox it is not. */
export const systemdIsInit = (): boolean => existsSync('/run/systemd/system');

/** dockerd and containerd processes in the host's network namespace (meshproof's own run in a private one). */
export function hostNamespaceDaemons(): { pid: number; comm: string }[] {
  let hostNet: string;
  try {
    hostNet = readlinkSync('/proc/self/ns/net');
  } catch {
    return [];
  }
  const found: { pid: number; comm: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if ((comm === 'dockerd' || comm === 'containerd') && readlinkSync(`/proc/${e}/ns/net`) === hostNet) found.push({ pid: Number(e), comm });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function versionOf(name: string, args: string[], parse: (o: string) => string | null): Promise<{ version: string } | { error: string }> {
  const bin = findOnPath(name);
  if (!bin) return { error: `${name} not found on PATH` };
  const r = await execBrief(bin, args);
  const v = parse(`${r.stdout}\n${r.stderr}`);
  return v ? { version: v } : { error: `\`${name} ${args.join(' ')}\` failed: ${firstLine(r)}` };
}

/** The engine: DOCKER_HOST's when set (it must answer), else dockerd, containerd, runc and the docker CLI of docker.io. */
export async function checkDockerEngine(): Promise<Check[]> {
  const user = process.env.DOCKER_HOST;
  const cli = await versionOf('docker', ['--version'], parseDockerdVersion);
  const checks: Check[] = [];
  if (user) {
    const err = await pingDocker(user);
    checks.push(err
      ? { name: 'docker engine', ok: false, detail: `DOCKER_HOST=${user} does not answer (${err})`, fix: 'start that engine, or unset DOCKER_HOST so meshproof starts its own' }
      : { name: 'docker engine', ok: true, detail: `DOCKER_HOST=${user} (the user's engine, left running)` });
  } else {
    const [d, c, r] = await Promise.all([
      versionOf('dockerd', ['--version'], parseDockerdVersion),
      versionOf('containerd', ['--version'], parseContainerdVersion),
      versionOf('runc', ['--version'], parseRuncVersion),
    ]);
    const bad = [d, c, r].find((x): x is { error: string } => 'error' in x);
    if (bad) checks.push({ name: 'dockerd', ok: false, detail: bad.error, fix: FIX });
    else {
      const host = hostNamespaceDaemons();
      // a dockerd in the host namespace rewrites the host's FORWARD policy; meshproof never uses it, but says so
      const note = host.length ? `; in the host namespace: ${host.map((h) => `${h.comm} pid ${h.pid}`).join(', ')} (not meshproof's)` : '';
      checks.push({ name: 'dockerd', ok: true, version: (d as { version: string }).version, detail: `containerd ${(c as { version: string }).version}, runc ${(r as { version: string }).version}${note}` });
    }
  }
  checks.push('error' in cli ? { name: 'docker', ok: false, detail: cli.error, fix: FIX } : { name: 'docker', ok: true, version: cli.version });
  const db = await versionOf('debootstrap', ['--version'], parseDebootstrapVersion);
  checks.push('error' in db ? { name: 'debootstrap', ok: false, detail: db.error, fix: FIX } : { name: 'debootstrap', ok: true, version: db.version });
  return checks;
}

/** The Debian packages the failed engine checks need. */
export function dockerPackagesFor(missing: ReadonlySet<string>): string[] {
  const pkgs: string[] = [];
  // the dockerd check is made only without DOCKER_HOST; the docker CLI always (image builds use it)
  if (missing.has('dockerd') || missing.has('docker')) pkgs.push('docker.io');
  if (missing.has('debootstrap')) pkgs.push('debootstrap');
  return [...new Set(pkgs)];
}

/**
 * apt-get installs docker.io (and debootstrap) with no service started: a policy-rc.d that exits 101 for the install
 * (an existing one is left as it is), and where systemd is PID 1 the units masked before and kept masked after, so a
 * boot does not start them either. Anything still running in the host namespace afterwards is a failure.
 */
export async function installDockerPackages(log: (l: string) => void, pkgs: string[], aptInstall: (pkgs: string[]) => Promise<void>): Promise<void> {
  const systemd = systemdIsInit();
  const wrotePolicy = !existsSync(POLICY_RC_D);
  if (wrotePolicy) writeFileSync(POLICY_RC_D, POLICY_RC_D_TEXT, { mode: 0o755 });
  log(`fix  ${systemd ? `systemd is PID 1: masking ${DOCKER_UNITS.join(' ')}; ` : 'systemd is not PID 1; '}${wrotePolicy ? `${POLICY_RC_D} exits 101 during the install` : `${POLICY_RC_D} is already there`}`);
  try {
    if (systemd) {
      const m = await runCapture(['systemctl', 'mask', ...DOCKER_UNITS]);
      if (m.code !== 0) log(`     systemctl mask: ${(m.stderr || m.stdout).trim().split('\n')[0]}`);
    }
    await aptInstall(pkgs);
  } finally {
    if (wrotePolicy) rmSync(POLICY_RC_D, { force: true });
  }
  const left = hostNamespaceDaemons();
  if (left.length) {
    if (systemd) await runCapture(['systemctl', 'stop', ...DOCKER_UNITS]);
    const still = hostNamespaceDaemons();
    if (still.length) log(`FAIL after installing ${pkgs.join(' ')}: ${still.map((h) => `${h.comm} pid ${h.pid}`).join(', ')} running in the host namespace: stop it (meshproof runs its own engine in a private one)`);
  }
}

export interface EnvoyBin { version: string; bin: string }

/** One check per image layer (base, packages, node, envoy-<v>): built when its inputs' hash has a record in the cache. */
export async function checkDockerImages(envoys: EnvoyBin[] | { error: string }): Promise<Check[]> {
  if ('error' in envoys) return [{ name: 'docker images', ok: false, detail: `need Envoy first: ${envoys.error}`, fix: FIX }];
  const inputs = await currentInputs({ envoys });
  if (!inputs) return [{ name: 'docker images', ok: false, detail: `not built (${POD_PACKAGES.join(', ')}, node, Envoy ${envoys.map((e) => e.version).join(', ')} on Debian bookworm)`, fix: FIX }];
  return builtLayers(inputs).map(({ layer, built }) => {
    const name = `docker image ${'name' in layer ? layer.name : 'base'}`;
    return built ? { name, ok: true, detail: layer.tag } : { name, ok: false, detail: `${layer.tag} not built`, fix: FIX };
  });
}

/** Builds what is missing in meshproof's own engine (started for the build in its namespace, stopped after) or DOCKER_HOST's. */
export async function provisionDockerImages(log: (l: string) => void, envoys: EnvoyBin[]): Promise<void> {
  log(`fix  docker images (offline, cached in ${imagesCacheDir()}): a cold build takes 1-5 min`);
  const engine = await startEngine({ log: (l) => log(`     ${l}`) });
  try {
    const { images } = await ensureImages(engine, { envoys, log });
    for (const i of images) log(`     ${i.status === 'hit' ? 'cached' : i.status === 'loaded' ? 'loaded' : 'built '} ${i.tag}`);
  } finally {
    await engine.stop();
  }
}
