// Whether a DOCKER_HOST engine runs on this machine (docker/local-engine.ts): the /proc socket tables as the kernel
// writes them (proc(5); lines copied from this host's /proc/<dockerd>/net/unix and hand-written tcp lines), and the decision.
import { expect } from 'chai';
import { engineDaemon, parseTcpListeners, parseUnixListeners, procNetAddress, type DaemonView } from '../src/harness/substrate/docker/local-engine.ts';

const UNIX = [
  'Num       RefCount Protocol Flags    Type St Inode Path',
  '000000009ede899f: 00000002 00000000 00010000 0001 01 9084854 /run/meshproof/38b8/docker/docker.sock',
  '0000000046d1ee04: 00000002 00000000 00010000 0001 01 9085599 /run/meshproof/38b8/docker/exec/containerd/containerd-debug.sock',
  // a connected client of the socket (state 03, no accept flag): not a listener
  '00000000b58650e4: 00000003 00000000 00000000 0001 03 9084818 /run/meshproof/38b8/docker/docker.sock',
  // an unnamed socket
  '000000008feca20b: 00000003 00000000 00000000 0001 03 9085518',
  '',
].join('\n');

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:0947 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 000000009e4d1b8d 100 0 0 10 0',
  '   1: 00000000:0948 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 000000009e4d1b8d 100 0 0 10 0',
  // an established connection to 127.0.0.1:2375: not a listener
  '   2: 0100007F:0947 0100007F:C90E 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 00000000b48a06f5 20 4 30 10 -1',
  '',
].join('\n');

const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 00000000000000000000000000000000:0949 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6001 1 0000000000000000 100 0 0 10 0',
  '   1: 00000000000000000000000001000000:094A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6002 1 0000000000000000 100 0 0 10 0',
  '',
].join('\n');

const view = (o: Partial<Omit<DaemonView, 'sockets'>> & { sockets: number[] }): DaemonView => ({ pid: 100, unix: UNIX, tcp: TCP, tcp6: TCP6, sameNetns: true, ...o, sockets: new Set(o.sockets) });

describe('docker substrate: a DOCKER_HOST engine on this machine (/proc socket tables)', () => {
  it('reads the listening unix sockets by inode, and no connected or unnamed one', () => {
    expect([...parseUnixListeners(UNIX)]).to.deep.equal([
      [9084854, '/run/meshproof/38b8/docker/docker.sock'],
      [9085599, '/run/meshproof/38b8/docker/exec/containerd/containerd-debug.sock'],
    ]);
  });

  it('reads the listening TCP sockets with their addresses in host byte order', () => {
    expect(parseTcpListeners(TCP)).to.deep.equal([{ ip: '127.0.0.1', port: 2375, inode: 5001 }, { ip: '0.0.0.0', port: 2376, inode: 5002 }]);
    expect(parseTcpListeners(TCP6)).to.deep.equal([{ ip: '::', port: 2377, inode: 6001 }, { ip: '::1', port: 2378, inode: 6002 }]);
    expect(procNetAddress('0000000000000000FFFF00000100007F')).to.equal('::ffff:127.0.0.1');
    expect(procNetAddress('0101A8C0')).to.equal('192.168.1.1');
  });

  it('a unix DOCKER_HOST is served here only by a dockerd holding the listener bound at that path', () => {
    const host = 'unix:///run/meshproof/38b8/docker/docker.sock';
    expect(engineDaemon(host, {}, [view({ pid: 7, sockets: [1, 9084854] })])).to.equal(7);
    // the table lists it, but another process holds it (a relay such as `ssh -L` or socat)
    expect(engineDaemon(host, {}, [view({ pid: 7, sockets: [9085599] })])).to.equal(null);
    // a path no listener is bound at (a socket forwarded from elsewhere, or a link: its real path is what is compared)
    expect(engineDaemon('unix:///var/run/docker.sock', {}, [view({ sockets: [9084854] })])).to.equal(null);
    expect(engineDaemon('unix:///var/run/docker.sock', { socketPath: '/run/meshproof/38b8/docker/docker.sock' }, [view({ pid: 8, sockets: [9084854] })])).to.equal(8);
    expect(engineDaemon(host, {}, [])).to.equal(null);
  });

  it('a tcp DOCKER_HOST is served here only by a dockerd of this network namespace listening on its port, at its address or the wildcard', () => {
    const d = (sockets: number[], sameNetns = true) => [view({ pid: 9, sockets, sameNetns })];
    expect(engineDaemon('tcp://127.0.0.1:2375', { addresses: ['127.0.0.1'] }, d([5001]))).to.equal(9);
    expect(engineDaemon('tcp://localhost:2375', { addresses: ['127.0.0.1', '::1'] }, d([5001]))).to.equal(9);
    // the listener is at 127.0.0.1 only: a DOCKER_HOST of another address of this host is not it
    expect(engineDaemon('tcp://10.0.0.5:2375', { addresses: ['10.0.0.5'] }, d([5001]))).to.equal(null);
    expect(engineDaemon('tcp://10.0.0.5:2376', { addresses: ['10.0.0.5'] }, d([5002]))).to.equal(9);
    expect(engineDaemon('tcp://10.0.0.5:2377', { addresses: ['10.0.0.5'] }, d([6001]))).to.equal(9);
    // a listener on the port that the dockerd does not hold (a port forward), or a dockerd of another namespace
    expect(engineDaemon('tcp://127.0.0.1:2375', { addresses: ['127.0.0.1'] }, d([5002, 6001]))).to.equal(null);
    expect(engineDaemon('tcp://127.0.0.1:2375', { addresses: ['127.0.0.1'] }, d([5001], false))).to.equal(null);
    // a remote engine: nothing here listens on its port
    expect(engineDaemon('tcp://203.0.113.7:2380', { addresses: ['203.0.113.7'] }, d([5001, 5002, 6001, 6002]))).to.equal(null);
  });
});
