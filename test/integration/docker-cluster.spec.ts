// The docker substrate's refusals (issue 12, bad input): DOCKER_HOST pointing nowhere, pod images not built, an image
// build that fails mid-run — one line naming the fix, exit code 2, and nothing of the run left (no state directory,
// namespace, engine or process). And a suite on a user's DOCKER_HOST engine. Needs root.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { leftovers, ownerAlive, readRecords, STATE_ROOT, teardownRun } from '../../src/harness/substrate/state.ts';
import { baseRootfsTar, basePlan, builtLayers, currentInputs, imagesCacheDir, recordOf } from '../../src/harness/substrate/docker/images.ts';
import { mountsUnder, removeUserEngineRun } from '../../src/harness/substrate/docker/janitor.ts';
import { RUN_LABEL } from '../../src/harness/substrate/docker/containers.ts';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { docker, pingDocker, startEngine } from '../../src/harness/substrate/docker/engine.ts';
import { DEFAULT_ENVOY_VERSION, resolveEnvoy } from '../../src/harness/cli/doctor.ts';
import { localEngineDaemon } from '../../src/harness/substrate/docker/local-engine.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** `node <script> args` as a real process (bin/meshproof.js by default), with `env` over this process's. */
const cli = (args: string[], env: NodeJS.ProcessEnv, script = 'bin/meshproof.js') =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });

/** Namespaces, links, /etc/netns entries (state.ts leftovers) and run state dirs: what a run may leave. */
async function leftoversNow(): Promise<string[]> {
  return [...(await leftovers()), ...(existsSync(STATE_ROOT) ? readdirSync(STATE_ROOT).map((d) => join(STATE_ROOT, d)) : [])];
}

/**
 * What appeared meanwhile that belongs to no live run (a suite running beside this one keeps its own) and no live
 * process (testcontainers' per-process socket link, containers.ts clientLink, goes when its process exits).
 */
async function newLeftovers(before: string[]): Promise<string[]> {
  const live = new Set(readRecords().filter(ownerAlive).map((r) => r.short));
  const liveLink = (x: string): boolean => {
    const pid = /\/tc-(\d+)\.sock$/.exec(x)?.[1];
    return pid !== undefined && existsSync(`/proc/${pid}`);
  };
  return (await leftoversNow()).filter((x) => !before.includes(x) && !liveLink(x) && !live.has(/mp([0-9a-f]{4})/.exec(x)?.[1] ?? /meshproof\/([0-9a-f]{4})/.exec(x)?.[1] ?? ''));
}

/** Processes whose command line names `path` (an engine's dockerd, containerd or shim with its data root there). */
function processesNaming(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(path)) found.push(`process ${pid}: ${cmd.trim()}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * A cache as a second engine finds it: every image recorded as built (doctor built them into another engine), so the
 * run starts, but its engine lacks them and builds them from the cached inputs, one of which cannot build: a .deb of
 * the packages layer that is no Debian archive. The base rootfs and the other .debs are the real cache's (links).
 */
async function brokenCache(root: string, envoys: { version: string; bin: string }[]): Promise<void> {
  const real = await currentInputs({ envoys });
  if (!real) throw new Error('the docker pod images are not provisioned here: run meshproof doctor --fix --substrate docker');
  const realTar = baseRootfsTar(basePlan());
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = root;
  try {
    mkdirSync(dirname(baseRootfsTar(basePlan())), { recursive: true });
    symlinkSync(realTar, baseRootfsTar(basePlan()));
    const realDebs = dirname(real.debs[0]!.src);
    const debs = join(imagesCacheDir(), basename(realDebs));
    mkdirSync(debs);
    copyFileSync(join(realDebs, 'packages.json'), join(debs, 'packages.json'));
    const broken = real.debs.find((d) => d.name.startsWith('curl_'))!;
    for (const d of real.debs) {
      if (d === broken) writeFileSync(join(debs, d.name), 'not a Debian archive\n');
      else symlinkSync(d.src, join(debs, d.name));
    }
    const inputs = await currentInputs({ envoys });
    for (const { layer } of builtLayers(inputs!)) writeFileSync(recordOf(layer.tag), JSON.stringify({ tag: layer.tag, note: 'built into another engine (test)' }));
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
}

describe("docker substrate: bad input is one line naming the fix, exit 2, nothing left; a user's DOCKER_HOST engine", function () {
  this.timeout(120_000);

  it('DOCKER_HOST pointing nowhere is one line naming the fix, and nothing of the run is left', async () => {
    const before = await leftoversNow();
    const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground'], { DOCKER_HOST: 'unix:///nowhere/docker.sock' });
    expect(r.code).to.equal(2);
    expect(r.err.trim()).to.equal('meshproof: DOCKER_HOST=unix:///nowhere/docker.sock: no docker engine answers there (ENOENT): start that engine, or unset DOCKER_HOST so meshproof starts its own');
    expect(await newLeftovers(before)).to.deep.equal([]);
  });

  it('a DOCKER_HOST engine not on this machine (an endpoint that answers /_ping as an engine, over tcp and a unix socket, held by no dockerd here) is one line naming the fix, before any container', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-remote-engine-'));
    const servers: Server[] = [];
    const asked: string[] = [];
    // what a relay to a remote engine answers (the docker API's /_ping: 200 OK); every other request is recorded
    const serve = (listen: (s: Server) => void) =>
      new Promise<Server>((resolve) => {
        const s = createServer((req, res) => {
          asked.push(`${req.method} ${req.url}`);
          res.writeHead(req.url?.endsWith('/_ping') ? 200 : 500, { 'Content-Type': 'text/plain', 'Api-Version': '1.41' }).end(req.url?.endsWith('/_ping') ? 'OK' : 'not an engine');
        });
        servers.push(s);
        s.once('listening', () => resolve(s));
        listen(s);
      });
    try {
      const tcp = await serve((s) => s.listen(0, '127.0.0.1'));
      const sock = join(dir, 'docker.sock');
      await serve((s) => s.listen(sock));
      for (const host of [`tcp://127.0.0.1:${(tcp.address() as AddressInfo).port}`, `unix://${sock}`]) {
        expect(await pingDocker(host), 'the endpoint answers as an engine').to.equal(null);
        expect(await localEngineDaemon(host)).to.equal(null);
        asked.length = 0;
        const before = await leftoversNow();
        const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground'], { DOCKER_HOST: host });
        expect(r.code, r.err).to.equal(2);
        expect(r.err.trim().split('\n'), r.err).to.deep.equal([
          `meshproof: DOCKER_HOST=${host}: that engine does not run on this machine (no dockerd here holds its socket), and the docker substrate's pods bind-mount this machine's files and are wired from its /proc: run the engine on this machine, or unset DOCKER_HOST so meshproof starts its own`,
        ]);
        // it was asked whether it answers, and nothing more (no image, container or network request)
        expect(asked.length, asked.join(', ')).to.be.greaterThan(0);
        expect(asked.filter((a) => !a.endsWith('/_ping')), asked.join(', ')).to.deep.equal([]);
        expect(await newLeftovers(before)).to.deep.equal([]);
      }
    } finally {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("meshproof's own engine, named by its socket, is found here as the dockerd of its pidfile", async function () {
    const saved = process.env.DOCKER_HOST;
    delete process.env.DOCKER_HOST;
    const engine = await startEngine();
    try {
      const pid = Number(readFileSync(engine.layout!.pidfile, 'utf8').trim());
      expect(pid).to.be.greaterThan(1);
      expect(await localEngineDaemon(engine.host)).to.equal(pid);
    } finally {
      await engine.stop();
      if (saved !== undefined) process.env.DOCKER_HOST = saved;
    }
  });

  it('pod images not built (an empty cache) name meshproof doctor --fix --substrate docker, and no engine starts', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'mp-empty-cache-'));
    try {
      const before = await leftovers();
      // Envoy is found through ENVOY_BIN (the cache is empty); the images' inputs are not there
      const { resolveEnvoy } = await import('../../src/harness/cli/doctor.ts');
      const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground'], { XDG_CACHE_HOME: cache, ENVOY_BIN: resolveEnvoy().bin });
      expect(r.code).to.equal(2);
      const lines = r.err.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.equal('meshproof: the docker pod images are not built (the .debs of the pod packages): run meshproof doctor --fix --substrate docker');
      expect(await newLeftovers(before)).to.deep.equal([]);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("an image build that fails mid-run (an engine without the images, building from the cache) is one line naming its log, and the run's engine and network go", async function () {
    this.timeout(300_000);
    const root = mkdtempSync(join(tmpdir(), 'mp-broken-build-'));
    try {
      const bin = resolveEnvoy().bin;
      await brokenCache(root, [{ version: DEFAULT_ENVOY_VERSION, bin }]);
      const before = await leftoversNow();
      // `up` as a user runs it: its keeper's progress goes to <reports>/up.log, the command says one line
      const r = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--reports', join(root, 'reports')], { XDG_CACHE_HOME: root, ENVOY_BIN: bin, MESHPROOF_ENVOY_VERSION: '' });
      expect(r.code, r.err).to.equal(2);
      const lines = r.err.trim().split('\n');
      expect(lines, r.err).to.have.length(1);
      const m = /^meshproof: the docker pod image meshproof\/packages:[0-9a-f]{16} \(packages\) failed to build in this run's engine, see (\S+): run meshproof doctor --fix --substrate docker$/.exec(lines[0]!);
      expect(m, lines[0]).to.not.equal(null);
      // the log is the build's own output: dpkg refusing the broken .deb
      expect(m![1]!.startsWith(join(root, 'meshproof', 'images', 'build-logs') + '/'), m![1]).to.equal(true);
      const log = readFileSync(m![1]!, 'utf8');
      expect(log).to.match(/dpkg-deb: error: .*curl_.*\.deb' is not a Debian format archive/);
      expect(log).to.match(/returned a non-zero code/);
      // the keeper had started an engine (its up.log says so), and nothing of it is left
      expect(readFileSync(join(root, 'reports', 'up.log'), 'utf8')).to.match(/docker: dockerd answers on unix:\/\//);
      expect(await newLeftovers(before)).to.deep.equal([]);
      // the keeper exits once it has said why (its teardown ran before): then no process names the run's cache
      await pollUntil(async () => (processesNaming(root).length === 0 ? true : undefined), { timeoutMs: 15_000, what: 'the keeper to exit' }).catch(() => undefined);
      expect(processesNaming(root), 'the keeper, or dockerd, containerd or a shim of the run').to.deep.equal([]);
      expect(mountsUnder([root]), "the engine's overlay and netns mounts").to.deep.equal([]);
    } finally {
      // never through a mount a stuck engine left (the assertion above names it)
      if (mountsUnder([root]).length === 0) rmSync(root, { recursive: true, force: true });
    }
  });

  it("a suite, and up/exec/down, run on a user's DOCKER_HOST engine on this machine: the run's containers are made there, and it is left running without them", async function () {
    this.timeout(600_000);
    const saved = process.env.DOCKER_HOST;
    delete process.env.DOCKER_HOST;
    // meshproof's own engine standing in for the user's: the suite's run only knows it by DOCKER_HOST
    const engine = await startEngine();
    const reports = mkdtempSync(join(tmpdir(), 'mp-docker-host-'));
    try {
      const since = String(Math.floor(Date.now() / 1000) - 1);
      const before = await leftoversNow();
      const r = await cli(['suites/cf-route-integrity.spec.ts'], { DOCKER_HOST: engine.host, MESHPROOF_SUBSTRATE: 'docker', MESHPROOF_REPORTS_DIR: reports }, 'node_modules/.bin/mocha');
      expect(r.code, `${r.out.slice(-4000)}${r.err.slice(-2000)}`).to.equal(0);
      expect(r.out).to.match(/\n\s+4 passing/);
      expect(r.out).to.not.match(/failing|pending/);
      // what the run made, on that engine: its router and pods' containers
      const created = (await docker(engine, ['events', '--since', since, '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'type=container', '--filter', 'event=create', '--format', '{{.Actor.Attributes.name}}'])).split('\n').filter(Boolean);
      expect(created.filter((n) => /^mp[0-9a-f]{4}-router$/.test(n)), created.join(' ')).to.have.length.greaterThan(0);
      expect(created.filter((n) => /^mp[0-9a-f]{4}-\d+-infra$/.test(n)), created.join(' ')).to.have.length.greaterThan(0);
      // left running, with none of them; and the run's own namespaces and state are gone
      expect(await pingDocker(engine.host)).to.equal(null);
      expect((await docker(engine, ['ps', '-aq'])).trim()).to.equal('');
      expect(await newLeftovers(before)).to.deep.equal([]);

      // a user's debugging session on that engine: up, exec into a pod, down
      const up = await cli(['up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--reports', reports], { DOCKER_HOST: engine.host });
      expect(up.code, up.err).to.equal(0);
      const run = /^run (\S+) \(([0-9a-f]{4})\) is up on docker/m.exec(up.out);
      expect(run, up.out).to.not.equal(null);
      const exec = await cli(['exec', '--run', run![1]!, 'client', '--', 'ip', '-4', '-o', 'addr', 'show', 'mpeth0'], {});
      expect(exec.code, exec.err).to.equal(0);
      expect(exec.out, 'the pod\'s own /32 on its link').to.match(/ mpeth0 +inet 10\.244\.\d+\.\d+\/32 /);
      expect((await docker(engine, ['ps', '-q', '--filter', `name=^mp${run![2]}-router$`])).trim(), "the run's router, on that engine").to.not.equal('');
      const down = await cli(['down', '--run', run![1]!], {});
      expect(down.code, down.err).to.equal(0);
      expect((await docker(engine, ['ps', '-aq'])).trim()).to.equal('');
      expect(await newLeftovers(before)).to.deep.equal([]);
    } finally {
      await engine.stop();
      rmSync(reports, { recursive: true, force: true });
      if (saved !== undefined) process.env.DOCKER_HOST = saved;
    }
  });

  it("after SIGKILL of a run on a user's DOCKER_HOST engine, the janitor's steps for that run remove its containers there and leave the engine running", async function () {
    this.timeout(240_000);
    const saved = process.env.DOCKER_HOST;
    delete process.env.DOCKER_HOST;
    const engine = await startEngine();
    const reports = mkdtempSync(join(tmpdir(), 'mp-docker-host-'));
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const before = await leftoversNow();
      child = spawn(process.execPath, ['bin/meshproof.js', 'up', 'fixtures/substrate/topology.yaml', '--substrate', 'docker', '--foreground', '--reports', reports], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOCKER_HOST: engine.host } });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.resume();
      const exited = new Promise((r) => child!.on('exit', r));
      const run = await pollUntil(() => /^run (\S+) \(([0-9a-f]{4})\) is up on docker/m.exec(out) ?? undefined, { timeoutMs: 180_000, what: 'meshproof up on the DOCKER_HOST engine' });
      child.kill('SIGKILL');
      await exited;
      const ofRun = ['ps', '-aq', '--filter', `label=${RUN_LABEL}=${run[1]}`];
      expect((await docker(engine, ofRun)).trim(), 'a killed run leaves its containers on the engine').to.not.equal('');
      // what `meshproof janitor` does for a run whose owner is gone: its docker step, then the run's own
      await removeUserEngineRun(run[2]!);
      await teardownRun(run[2]!);
      expect((await docker(engine, ['ps', '-aq'])).trim()).to.equal('');
      expect(await pingDocker(engine.host), 'the engine is left running').to.equal(null);
      expect(await newLeftovers(before)).to.deep.equal([]);
    } finally {
      child?.kill('SIGKILL');
      await engine.stop();
      rmSync(reports, { recursive: true, force: true });
      if (saved !== undefined) process.env.DOCKER_HOST = saved;
    }
  });
});
