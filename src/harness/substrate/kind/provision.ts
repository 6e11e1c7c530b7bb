// `meshproof doctor [--fix] --substrate kind`: the Go-built tools of the kind substrate (kind, crictl, coredns, etcd
// 3.6, kubelet, kubeadm, kube-scheduler, kube-proxy), the pause binary, the runc wrapper and the node image
// (node-image.ts). Each Go tool is built the control plane's way (controlplane/provision.ts: a wrapper module, a
// provenance.json, the expected duration, a progress line, the log path in a failed build's one-line error) into
// `~/.cache/meshproof/<dir>/<version>/`, under `nice -n 19`. The check is spawn-free: provenance + size + mtime.

import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Check } from '../../cli/doctor.ts';
import { UserError } from '../../model/errors.ts';
import {
  cacheRoot, checkCached, goBuildAll, prepareWrapper, presence, readProvenance, requireGo, requireModuleGo, runLogged,
  sha256File, stepFailed, writeProvenanceRecord, type Expected, type Log, type ProvenanceRecord,
} from '../../controlplane/provision.ts';
import { KUBERNETES, renderReplace, type WrapperModule } from '../../controlplane/versions.ts';
import { KIND_GO_TOOLS, hasCapSysResource, runcWrapperScript, type KindGoTool } from './versions.ts';

export const KIND_FIX = 'meshproof doctor --fix --substrate kind';
/** The kind builds share 2 cores with other engineers' tests. */
const NICENESS = 19;

export interface ToolPaths { dir: string; bin: (name: string) => string; provenance: string; buildDir: string }

export function toolPaths(t: KindGoTool): ToolPaths {
  const dir = join(cacheRoot(), t.dir, t.version);
  return { dir, bin: (name) => join(dir, 'bin', name), provenance: join(dir, 'provenance.json'), buildDir: join(dir, 'build') };
}

const toolOf = (name: string): KindGoTool => {
  const t = KIND_GO_TOOLS.find((x) => x.binaries.some((b) => b.name === name));
  if (!t) throw new Error(`no kind tool builds ${name}`);
  return t;
};

function expectedOf(t: KindGoTool): Expected[] {
  const p = toolPaths(t);
  return t.binaries.map((b) => ({
    name: b.name, path: p.bin(b.name), module: t.module, moduleVersion: t.moduleVersion, ldflags: t.ldflags, replaces: t.replaces.map(renderReplace),
  }));
}

export function wrapperOf(t: KindGoTool): WrapperModule {
  return { module: `meshproof.local/build/${t.dir}`, go: t.go ?? '1.24.0', require: { path: t.module, version: t.moduleVersion }, replaces: t.replaces };
}

// ---------------------------------------------------------------------------------------------
// pause: `gcc -static` of build/pause/linux/pause.c from the Kubernetes module (§4), kept beside the node binaries

const PAUSE_SOURCE = 'build/pause/linux/pause.c';
const nodeTool = (): KindGoTool => toolOf('kubelet');
function pauseExpected(): Expected {
  return { name: 'pause', path: toolPaths(nodeTool()).bin('pause'), module: KUBERNETES.module, moduleVersion: KUBERNETES.version, ldflags: 'gcc -static -O2', replaces: [] };
}

// ---------------------------------------------------------------------------------------------
// The runc wrapper, only where the host's bounding set lacks CAP_SYS_RESOURCE

export const runcWrapperPath = (): string => join(cacheRoot(), 'kind', 'runc-wrapper', 'runc');
/** The host's real runc the wrapper execs (Debian's runc, from docker.io's dependencies). */
export const HOST_RUNC = '/usr/sbin/runc';

/** Whether this host needs the wrapper: CapBnd of /proc/self/status (a child cannot get what the bounding set lacks). */
export function needsRuncWrapper(): { needed: boolean; capBnd: string } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const capBnd = /^CapBnd:\s*(\S+)/m.exec(status)?.[1] ?? 'unknown';
  return { needed: hasCapSysResource(status) === false, capBnd };
}

export function checkRuncWrapper(): Check {
  const { needed, capBnd } = needsRuncWrapper();
  if (!needed) return { name: 'kind runc wrapper', ok: true, detail: `not needed: the host has CAP_SYS_RESOURCE (CapBnd ${capBnd})` };
  let text: string | null = null;
  try { text = readFileSync(runcWrapperPath(), 'utf8'); } catch { /* not written */ }
  if (text === runcWrapperScript(HOST_RUNC)) {
    return { name: 'kind runc wrapper', ok: true, detail: `${runcWrapperPath()} (the host lacks CAP_SYS_RESOURCE, CapBnd ${capBnd}: kind's privileged nodes run without it)` };
  }
  return { name: 'kind runc wrapper', ok: false, detail: `${text === null ? 'not written' : 'out of date'} (the host lacks CAP_SYS_RESOURCE, CapBnd ${capBnd})`, fix: `run ${KIND_FIX}` };
}

function writeRuncWrapper(log: Log): void {
  if (!needsRuncWrapper().needed || checkRuncWrapper().ok) return;
  const file = runcWrapperPath();
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(`${file}.tmp`, runcWrapperScript(HOST_RUNC), { mode: 0o755 });
  renameSync(`${file}.tmp`, file);
  log(`fix  ${file}: runc without CAP_SYS_RESOURCE (the host's bounding set lacks it)`);
}

// ---------------------------------------------------------------------------------------------
// Checks (spawn-free) and paths for the node image

/** One line per binary: `kind kubelet`, `kind crictl` …, and `kind pause`. */
export function checkKindTools(): Check[] {
  const checks: Check[] = [];
  for (const t of KIND_GO_TOOLS) {
    const prov = readProvenance(toolPaths(t).provenance);
    for (const e of expectedOf(t)) checks.push({ ...checkCached(prov, e, t.version, KIND_FIX), name: `kind ${e.name}` });
  }
  const pause = pauseExpected();
  checks.push({ ...checkCached(readProvenance(toolPaths(nodeTool()).provenance), pause, '3.10.1', KIND_FIX), name: 'kind pause' });
  return checks;
}

/** The provenance record of a built kind binary (`kind`, `kubelet`, … `pause`), or a one-line UserError naming the fix. */
export function kindBinary(name: string): ProvenanceRecord {
  const want = name === 'pause' ? pauseExpected() : expectedOf(toolOf(name)).find((e) => e.name === name)!;
  const t = name === 'pause' ? nodeTool() : toolOf(name);
  const p = presence(readProvenance(toolPaths(t).provenance), want);
  if (!p.ok) throw new UserError(`kind substrate: ${name} ${p.why}: run ${KIND_FIX}`);
  return p.record;
}

// ---------------------------------------------------------------------------------------------
// --fix

export interface KindToolsResult { built: string[]; present: string[]; seconds: number }

/** Builds every missing kind binary, one Go module after another (niced), then pause and the runc wrapper. Idempotent. */
export async function provisionKindTools(log: Log): Promise<KindToolsResult> {
  const started = Date.now();
  const built: string[] = [];
  const present: string[] = [];
  for (const t of KIND_GO_TOOLS) {
    const paths = toolPaths(t);
    const prov = readProvenance(paths.provenance);
    const expected = expectedOf(t);
    const missing = expected.filter((e) => !presence(prov, e).ok);
    present.push(...expected.filter((e) => !missing.includes(e)).map((e) => e.name));
    if (missing.length === 0) continue;
    const wrapper = wrapperOf(t);
    const spec = `${t.module}@${t.moduleVersion}`;
    const go = await requireGo(wrapper.go, spec, KIND_FIX);
    log(`fix  ${t.tool} ${t.version}: ${spec} in ${paths.buildDir} (nice -n ${NICENESS})`);
    const moduleDir = await prepareWrapper(log, paths.buildDir, wrapper, go.bin, KIND_FIX);
    await requireModuleGo(moduleDir, go.version, spec, KIND_FIX);
    await goBuildAll(log, {
      tool: t.tool, toolVersion: t.version, what: `${t.tool} ${t.version}`, wrapper, buildDir: paths.buildDir,
      provenance: paths.provenance, ldflags: t.ldflags, fix: KIND_FIX, niceness: NICENESS,
      binaries: t.binaries.filter((b) => missing.some((m) => m.name === b.name)).map((bin) => ({ bin, out: paths.bin(bin.name) })),
    }, go);
    built.push(...missing.map((m) => m.name));
  }
  const pause = pauseExpected();
  if (!presence(readProvenance(toolPaths(nodeTool()).provenance), pause).ok) {
    await buildPause(log, pause);
    built.push('pause');
  } else present.push('pause');
  writeRuncWrapper(log);
  return { built, present, seconds: (Date.now() - started) / 1000 };
}

async function buildPause(log: Log, want: Expected): Promise<void> {
  const t = nodeTool();
  const paths = toolPaths(t);
  const wrapper = wrapperOf(t);
  const go = await requireGo(wrapper.go, `${t.module}@${t.moduleVersion}`, KIND_FIX);
  const moduleDir = await prepareWrapper(log, paths.buildDir, wrapper, go.bin, KIND_FIX);
  const src = join(moduleDir, PAUSE_SOURCE);
  const logFile = join(paths.buildDir, 'build-pause.log');
  mkdirSync(join(want.path, '..'), { recursive: true });
  rmSync(want.path, { force: true });
  log(`     building pause (gcc -static ${PAUSE_SOURCE}; log ${logFile})`);
  const r = await runLogged('nice', ['-n', String(NICENESS), 'gcc', '-static', '-O2', '-o', want.path, src], { logFile });
  if (r.code !== 0) throw stepFailed('building pause', r, logFile, KIND_FIX);
  chmodSync(want.path, 0o755);
  const st = statSync(want.path);
  writeProvenanceRecord(paths.provenance, t.tool, t.version, {
    tool: t.tool, toolVersion: t.version, name: 'pause', path: want.path, origin: 'cc -static', module: want.module,
    moduleVersion: want.moduleVersion, replaces: [], goVersion: null, ldflags: want.ldflags, sha256: await sha256File(want.path),
    size: st.size, mtimeMs: st.mtimeMs, builtAt: new Date().toISOString(), buildSeconds: Math.round(r.seconds * 10) / 10,
  });
  log(`     built pause in ${r.seconds.toFixed(1)} s`);
}
