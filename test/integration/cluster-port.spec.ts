// The pod-scoped operations of the substrate port on a netns cluster: a file written for a pod (its mode and owner, the
// place it may go), read back from the pod and by a process inside it; a container's log as its text; a container's
// CPU and memory (its process tree) and the machine with the run's own processes left out. Needs root.
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { upNetns, type NetnsCluster } from '../../src/harness/substrate/netns/index.ts';
import type { Cluster } from '../../src/harness/substrate/types.ts';

describe('substrate port on netns: writeFile, readFile, containerLog, sample, machine', function () {
  this.timeout(60_000);
  let cluster: NetnsCluster | undefined;
  // the port, as a profile sees it
  const port = (): Cluster => cluster!;

  before(async () => {
    cluster = await upNetns(
      { name: 'cluster-port', pods: [{ name: 'web', namespace: 'default', containers: [{ name: 'echo', workload: 'echo', args: ['--port', '8080'], ready: { kind: 'tcp', port: 8080 } }] }] },
      { wire: false },
    );
  });
  after(async () => cluster?.down());

  it('writes a file the pod sees: 0600 and root by default, a key 0600 owned by its reader, readable by that uid inside the pod', async () => {
    const key = join(port().stateDir, 'port-test', 'sub', 'tls.key');
    const conf = join(port().stateDir, 'port-test', 'app.conf');
    await port().writeFile('web', conf, 'a=1\n');
    const first = statSync(conf);
    expect([first.mode & 0o777, first.uid, first.gid]).to.deep.equal([0o600, 0, 0]);
    await port().writeFile('web', key, 'SECRET\n', { mode: 0o600, uid: 1337, gid: 1337 });
    // a rewrite replaces the file with its new mode
    await port().writeFile('web', conf, 'a=2\n', { mode: 0o644 });
    const [c, k] = [statSync(conf), statSync(key)];
    expect([c.mode & 0o777, c.uid, k.mode & 0o777, k.uid, k.gid]).to.deep.equal([0o644, 0, 0o600, 1337, 1337]);
    expect(await port().readFile('web', conf)).to.equal('a=2\n');
    // the uid it was written for reads it from inside the pod (the directories above are 0711); another uid cannot
    expect(await port().exec('web', ['cat', key], { uid: 1337 })).to.deep.include({ code: 0, stdout: 'SECRET\n' });
    expect((await port().exec('web', ['cat', key], { uid: 1338 })).code).to.not.equal(0);
    // nothing is left aside: the temporary file was renamed into place
    expect((await port().exec('web', ['ls', '-A', join(port().stateDir, 'port-test', 'sub')])).stdout).to.equal('tls.key\n');
  });

  it('refuses a path outside the run (relative, the host, ../ out of the state dir) and an unknown pod', async () => {
    const refused = async (pod: string, path: string): Promise<string> => port().writeFile(pod, path, 'x').then(() => 'written', (e: Error) => e.message);
    expect(await refused('web', 'relative.conf')).to.match(/is not a file in the run's state dir/);
    expect(await refused('web', '/etc/meshproof-port-test.conf')).to.match(/is not a file in the run's state dir/);
    expect(await refused('web', join(port().stateDir, '..', 'escape.conf'))).to.match(/is not a file in the run's state dir/);
    expect(await refused('web', port().stateDir)).to.match(/is not a file in the run's state dir/);
    expect(await refused('nope', join(port().stateDir, 'x'))).to.match(/no pod nope/);
    await port().readFile('web', join(port().stateDir, 'port-test', 'missing')).then(
      () => expect.fail('read a missing file'),
      (e: NodeJS.ErrnoException) => expect(e.code).to.equal('ENOENT'),
    );
  });

  it("containerLog is the container's output as text; an unknown container is named", async () => {
    const log = await port().containerLog('web', 'echo');
    expect(log).to.match(/echo listening on [0-9.:]+:8080\n/); // the echo says where it listens
    await port().containerLog('web', 'nope').then(
      () => expect.fail('read the log of no container'),
      (e: Error) => expect(e.message).to.equal('pod web: no container nope'),
    );
  });

  it("sample: the container's CPU seconds grow with its work, its RSS is its process's, its command line is listed", async () => {
    const a = await port().sample('web', 'echo');
    for (let i = 0; i < 200; i++) await port().probe('default/web', { protocol: 'http', host: '127.0.0.1', port: 8080, path: '/echo' }, { wire: false });
    const b = await port().sample('web', 'echo');
    expect(b.cpuSeconds).to.be.above(a.cpuSeconds);
    expect(b.rssBytes).to.be.within(10 * 2 ** 20, 2 ** 31); // a node process: tens of MiB
    expect(b.commands[0]).to.include('echo').and.include('8080');
    await port().sample('web', 'nope').then(
      () => expect.fail('sampled no container'),
      (e: Error) => expect(e.message).to.equal('pod web: container nope is not running'),
    );
  });

  it("machine: cumulative CPU of the machine and of the harness; the run's own processes are not among the others", async () => {
    const a = await port().machine();
    const b = await port().machine();
    expect(b.at).to.be.above(a.at);
    expect(b.cpus).to.be.at.least(1);
    expect(b.busyS + b.idleS).to.be.at.least(a.busyS + a.idleS);
    expect(b.harnessS).to.be.above(0);
    const echoPid = cluster!.pids('web').echo!;
    const keys = [...b.others.keys()];
    expect(keys.length).to.be.above(1); // init, kernel threads, …
    expect(keys.some((k) => k.endsWith(`[${echoPid}]`))).to.equal(false);
    expect(keys.some((k) => k.endsWith(`[${process.pid}]`))).to.equal(false);
  });
});
