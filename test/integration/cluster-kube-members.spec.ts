// What the kube layer's node agent asks of the substrate port, on a netns cluster started empty (`dynamic`): a pod
// added at run time and reached from another; a container's status while it runs and after it exits (its exit code,
// and `exited` resolving with it); a tunnel to a port inside a pod carrying bytes both ways, and refused for a port
// nothing listens on; services replaced (a VIP and a DNS name to a backend); a pod removed with its processes. Needs root.
import { expect } from 'chai';
import { upCluster } from '../../src/harness/substrate/index.ts';
import type { Cluster } from '../../src/harness/substrate/types.ts';

describe('substrate port on netns: addPod, containerStatus, openTunnel, setServices, removePod', function () {
  this.timeout(60_000);
  let cluster: Cluster | undefined;
  const c = (): Cluster => cluster!;

  before(async () => {
    cluster = await upCluster({ name: 'kube-members', pods: [] }, { wire: false, dynamic: true });
    await c().addPod({ name: 'web', namespace: 'default', labels: { app: 'web' } });
    await c().addPod({ name: 'client', namespace: 'default' });
    await c().startContainer('default/web', { name: 'echo', workload: 'echo', args: ['--port', '8080'], ready: { kind: 'tcp', port: 8080 } });
  });
  after(async () => cluster?.down());

  it('adds pods at run time: each has its own address and one reaches the other', async () => {
    const [web, client] = [c().pod('default/web'), c().pod('default/client')];
    expect(web.ip).to.match(/^\d+\.\d+\.\d+\.\d+$/);
    expect(web.ip).to.not.equal(client.ip);
    const r = await c().probe('default/client', { protocol: 'http', host: web.ip, port: 8080, path: '/' }, { wire: false });
    expect(r.verdict).to.equal('allowed:plaintext');
  });

  it('containerStatus: running, then the exit code once it exits; undefined for a container never started', async () => {
    expect(c().containerStatus('default/web', 'echo')?.exitCode).to.equal(undefined);
    expect(c().containerStatus('default/web', 'nope')).to.equal(undefined);
    await c().startContainer('default/client', { name: 'once', command: ['sh', '-c', 'exit 3'] });
    const s = c().containerStatus('default/client', 'once')!;
    expect(await s.exited).to.equal(3);
    expect(c().containerStatus('default/client', 'once')!.exitCode).to.equal(3);
  });

  it('openTunnel: bytes to 127.0.0.1:<port> inside the pod and back; a port nothing listens on is refused', async () => {
    const sock = await c().openTunnel('default/web', 8080);
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      sock.on('data', (b: Buffer) => (got += b.toString()));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
      // handed over paused (nothing is lost before its reader is attached)
      sock.resume();
      sock.end('GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
    });
    expect(answer).to.match(/^HTTP\/1\.1 200 /);
    const refused = await c().openTunnel('default/web', 8081).then(() => 'connected', (e: Error) => e.message);
    expect(refused).to.match(/refused|ECONNREFUSED/i);
  });

  it('setServices: a VIP and its DNS names lead to the backends given, and a replacement takes them away', async () => {
    const web = c().pod('default/web');
    const vip = '10.96.0.50';
    await c().setServices([{ spec: { name: 'web', namespace: 'default', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }, vip, endpoints: [], backends: { 80: [{ ip: web.ip, port: 8080 }] } }]);
    expect(c().services.get('default/web')?.vip).to.equal(vip);
    const byName = await c().probe('default/client', { protocol: 'http', host: 'web', port: 80, path: '/' }, { wire: false });
    expect(byName.verdict).to.equal('allowed:plaintext');
    await c().setServices([]);
    expect(c().services.size).to.equal(0);
    const gone = await c().probe('default/client', { protocol: 'http', host: vip, port: 80, path: '/', timeoutMs: 2000 }, { wire: false });
    expect(gone.verdict).to.match(/^denied:/);
  });

  it('removePod: the pod is gone, with its processes', async () => {
    const before = c().containerStatus('default/web', 'echo')!;
    await c().removePod('default/web');
    expect(() => c().pod('default/web')).to.throw(/no pod default\/web/);
    // resolves only once its process has exited: a process left running fails this test by its timeout
    await before.exited;
    expect(c().pods.has('default/web')).to.equal(false);
  });
});
