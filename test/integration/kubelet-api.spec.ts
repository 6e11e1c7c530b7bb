// The node agent's kubelet API driven by the real clients through the real kube-apiserver 1.34.4: kubectl (built by
// `meshproof doctor --fix`) logs, exec and port-forward, and istioctl 1.28.2 proxy-status and x describe pod, on a
// mesh of real istiod with two injected pods (the workshop's `age` and `sleep`). Needs root and the binaries doctor
// provisions (skipped, with the reason, when they are absent).
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { UserError } from '../../src/harness/model/errors.ts';
import { IstiodMesh } from '../../src/harness/controlplane/istiod/mesh.ts';
import { resolveIstio, resolveKube } from '../../src/harness/controlplane/provision.ts';
import { DEFAULT_ISTIO_VERSION } from '../../src/harness/controlplane/versions.ts';
import { loadIstio } from '../../src/harness/profiles/istio/resources.ts';
import { pollUntil } from '../../src/harness/substrate/poll.ts';
import { pidsInNetns } from '../../src/harness/substrate/state.ts';
import { netnsCluster } from '../../src/harness/substrate/index.ts';

const execFileAsync = promisify(execFile);
const FIXTURE = 'fixtures/istio/sentences';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the API relay and the kubelet API live on this process's event loop. */
async function run(bin: string, args: string[], input?: string): Promise<Run> {
  const p = execFileAsync(bin, args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (input !== undefined) {
    p.child.stdin?.end(input);
  }
  try {
    const r = await p;
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** One GET through 127.0.0.1:<port>: status and body, or the error code. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

/** `kubectl port-forward pod/<pod> :<remote>` until it prints its local port; the caller ends it. */
async function portForward(kubectl: string, kubeconfig: string, pod: string, remote: number): Promise<{ child: ChildProcess; port: number; out: () => string; exited: Promise<number | null> }> {
  const child = spawn(kubectl, ['--kubeconfig', kubeconfig, 'port-forward', `pod/${pod}`, `:${remote}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await pollUntil(
    () => {
      if (child.exitCode !== null) throw new Error(`kubectl port-forward exited ${child.exitCode}: ${out}`);
      const m = /Forwarding from 127\.0\.0\.1:(\d+) -> \d+/.exec(out);
      return m ? Number(m[1]) : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'kubectl port-forward', detail: () => out },
  );
  return { child, port, out: () => out, exited };
}

describe('kubelet API: kubectl logs/exec/port-forward and istioctl on a real istiod mesh (netns, root)', function () {
  this.timeout(15 * 60_000);
  let mesh: IstiodMesh | undefined;
  let kubectl = '';
  let istioctl = '';
  let kubeconfig = '';
  let pods: V1Pod[] = [];
  const podOf = (app: string): V1Pod => {
    const p = pods.find((x) => x.metadata?.namespace === 'default' && x.metadata.name?.startsWith(`${app}-`));
    if (!p) throw new Error(`no ${app} pod among ${pods.map((x) => x.metadata?.name).join(', ')}`);
    return p;
  };
  const k = (...args: string[]): Promise<Run> => run(kubectl, ['--kubeconfig', kubeconfig, ...args]);

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    try {
      kubectl = resolveKube().kubectl;
      istioctl = resolveIstio(DEFAULT_ISTIO_VERSION).istioctl;
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      console.log(`    skipped: ${e.message}`);
      this.skip();
    }
    const model = loadIstio([`${FIXTURE}/namespace.yaml`, `${FIXTURE}/age.yaml`, `${FIXTURE}/sleep.yaml`], { inject: 'all' });
    mesh = await IstiodMesh.start(model, { log: (l) => console.log(`    ${l}`) });
    kubeconfig = mesh.api.kubeconfigPath;
    const core = mesh.api.kc.makeApiClient(CoreV1Api);
    pods = (await core.listPodForAllNamespaces({})).items;
  });

  after(async () => mesh?.down());

  it('kubectl logs: a container log as the node agent keeps it, --tail, and the errors a kubelet gives', async () => {
    const sleep = podOf('sleep');
    const name = sleep.metadata!.name!;
    // the file the Supervisor writes the container's output to
    const logFile = netnsCluster(mesh!.cluster, 'this test (a container\'s log file)').pod(`default/${name}`).procs.get('istio-proxy')!.logFile;
    const all = await k('logs', name, '-c', 'istio-proxy');
    expect(all.code, all.stderr).to.equal(0);
    // pilot-agent's own start-up lines, through the API server from the kubelet API
    expect(all.stdout).to.match(/Envoy proxy is ready|Starting proxy agent/);
    expect(readFileSync(logFile, 'utf8').startsWith(all.stdout.slice(0, 2000))).to.equal(true);
    const two = await k('logs', name, '-c', 'istio-proxy', '--tail=2');
    expect(two.code, two.stderr).to.equal(0);
    expect(two.stdout.trimEnd().split('\n')).to.have.length(2);
    expect(all.stdout.includes(two.stdout)).to.equal(true);
    const init = await k('logs', name, '-c', 'istio-init');
    expect(init.code, init.stderr).to.equal(0);
    expect(init.stdout).to.include('ISTIO_OUTPUT'); // istio-iptables prints the rules it applied
    // -f on a container that has exited gives its whole log and ends, as a kubelet's follow does
    const follow = await k('logs', '-f', name, '-c', 'istio-init');
    expect([follow.code, follow.stdout]).to.deep.equal([0, init.stdout]);
    const prev = await k('logs', name, '-c', 'istio-proxy', '--previous');
    expect(prev.code).to.equal(1);
    expect(prev.stderr).to.include(`previous terminated container "istio-proxy" in pod "${name}" not found`);
  });

  it('kubectl exec: stdout, stderr, exit code, stdin, the container env and uid; a missing command is an error', async () => {
    const sleep = podOf('sleep');
    const name = sleep.metadata!.name!;
    const host = await k('exec', name, '-c', 'sleep', '--', 'printenv', 'HOSTNAME', 'POD_NAMESPACE');
    expect([host.code, host.stdout], host.stderr).to.deep.equal([0, `${name}\ndefault\n`]);
    const split = await k('exec', name, '-c', 'sleep', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3');
    expect([split.code, split.stdout]).to.deep.equal([3, 'out\n']);
    expect(split.stderr).to.include('err\n');
    expect(split.stderr).to.include('command terminated with exit code 3');
    // istio-proxy runs as 1337 (the injected securityContext): exec runs as the container does
    const uid = await k('exec', name, '-c', 'istio-proxy', '--', 'id', '-u');
    expect([uid.code, uid.stdout.trim()], uid.stderr).to.deep.equal([0, '1337']);
    // inside the pod's network namespace: its own address, not the host's
    const ip = await k('exec', name, '-c', 'sleep', '--', 'ip', '-4', '-o', 'addr', 'show', 'mpeth0');
    expect(ip.code, ip.stderr).to.equal(0);
    expect(ip.stdout).to.include(`inet ${sleep.status!.podIP!}/32`);
    const cat = await run(kubectl, ['--kubeconfig', kubeconfig, 'exec', '-i', name, '-c', 'sleep', '--', 'tr', 'a-z', 'A-Z'], 'hello stdin\n');
    expect([cat.code, cat.stdout], cat.stderr).to.deep.equal([0, 'HELLO STDIN\n']);
    const missing = await k('exec', name, '-c', 'sleep', '--', 'no-such-command-xyz');
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include('error executing command in container: exec: "no-such-command-xyz": executable file not found in $PATH');
    // a client that goes away takes its command with it: nothing is left running in the pod
    const netns = mesh!.cluster.pod(`default/${name}`).netns;
    const marker = (): number[] => pidsInNetns([netns]).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\u0000313\u0000';
      } catch {
        return false;
      }
    });
    const long = spawn(kubectl, ['--kubeconfig', kubeconfig, 'exec', name, '-c', 'sleep', '--', 'sleep', '313'], { stdio: 'ignore' });
    await pollUntil(() => (marker().length === 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'sleep 313 running in the pod' });
    long.kill('SIGKILL');
    await pollUntil(() => (marker().length === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'sleep 313 gone once kubectl is', detail: () => marker().join(',') });
    const noContainer = await k('exec', name, '-c', 'nope', '--', 'true');
    expect(noContainer.code).to.equal(1);
    expect(noContainer.stderr).to.include('container nope is not valid for pod');
  });

  it("kubectl port-forward: Envoy's admin /ready through the forwarded port; a port nobody listens on is an error, not a hang", async () => {
    const name = podOf('sleep').metadata!.name!;
    const pf = await portForward(kubectl, kubeconfig, name, 15000);
    try {
      const ready = await httpGet(pf.port, '/ready');
      expect(ready).to.deep.equal({ status: 200, body: 'LIVE\n' });
      const again = await httpGet(pf.port, '/server_info');
      expect('status' in again && again.status).to.equal(200);
      expect('body' in again && JSON.parse(again.body).state).to.equal('LIVE');
    } finally {
      pf.child.kill('SIGTERM');
      await pf.exited;
    }
    const closed = await portForward(kubectl, kubeconfig, name, 9);
    try {
      const r = await httpGet(closed.port, '/');
      expect(r).to.have.property('error');
      // kubectl reports the kubelet's error and ends the forward (client-go portforward: "lost connection to pod")
      const code = await Promise.race([closed.exited, new Promise<'running'>((res) => setTimeout(() => res('running'), 20_000))]);
      expect(code, closed.out()).to.equal(1);
      expect(closed.out()).to.include(`error forwarding port 9 to pod default/${name}`);
      expect(closed.out()).to.include('ECONNREFUSED');
    } finally {
      closed.child.kill('SIGKILL');
    }
  });

  it('the kubelet API is at the Node\'s advertised address and port, and serves no one without the API server\'s client certificate', async () => {
    const node = (await mesh!.api.kc.makeApiClient(CoreV1Api).listNode()).items[0]!;
    const ip = node.status!.addresses!.find((a) => a.type === 'InternalIP')!.address;
    const port = node.status!.daemonEndpoints!.kubeletEndpoint!.Port;
    expect([ip, port]).to.deep.equal(['10.244.0.1', 10250]);
    const name = podOf('sleep').metadata!.name!;
    // from inside a pod, as anything on the pod network would: TLS with the cluster CA's serving certificate, then 401
    const curl = await mesh!.cluster.exec(`default/${name}`, ['curl', '-sS', '--max-time', '10', '--cacert', mesh!.api.caPath, '-o', '/dev/null', '-w', '%{http_code}',
      `https://${ip}:${port}/containerLogs/default/${name}/sleep`]);
    expect([curl.code, curl.stdout], curl.stderr).to.deep.equal([0, '401']);
  });

  it('istioctl proxy-status: every sidecar SYNCED, through a port-forward to istiod', async () => {
    const injected = pods.filter((p) => p.spec?.initContainers?.some((c) => c.name === 'istio-proxy') || p.spec?.containers.some((c) => c.name === 'istio-proxy'));
    expect(injected.map((p) => p.metadata!.name!.replace(/-[^-]+-[^-]+$/, '')).sort()).to.deep.equal(['age', 'sleep']);
    const ps = await run(istioctl, ['--kubeconfig', kubeconfig, 'proxy-status']);
    expect(ps.code, ps.stderr).to.equal(0);
    console.log(`      ${ps.stdout.trimEnd().replace(/\n/g, '\n      ')}`);
    const rows = ps.stdout.trim().split('\n').slice(1);
    expect(rows, ps.stdout).to.have.length(injected.length);
    for (const p of injected) {
      const row = rows.find((r) => r.startsWith(`${p.metadata!.name}.default `));
      expect(row, ps.stdout).to.be.a('string');
      // 1.28's default view: the types the proxy subscribed to, and the istiod that serves it
      expect(row).to.match(/\bistiod-\S+\s+1\.28\.2\s+4 \(CDS,LDS,EDS,RDS\)$/);
    }
    // the per-type view (-v 1): CDS, LDS, EDS and RDS each SYNCED for every sidecar
    const v = await run(istioctl, ['--kubeconfig', kubeconfig, 'proxy-status', '-v', '1']);
    expect(v.code, v.stderr).to.equal(0);
    console.log(`      ${v.stdout.trimEnd().replace(/\n/g, '\n      ')}`);
    const [header, ...vrows] = v.stdout.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));
    const cols = ['CDS', 'LDS', 'EDS', 'RDS'].map((t) => header!.indexOf(t));
    expect(cols, header!.join('|')).to.not.include(-1);
    expect(vrows, v.stdout).to.have.length(injected.length);
    for (const r of vrows) expect(cols.map((i) => r[i]!.replace(/ \(.*\)$/, '')), r.join('|')).to.deep.equal(['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
  });

  it('istioctl x describe pod: reads the sidecar config dump through a port-forward', async () => {
    const name = podOf('age').metadata!.name!;
    const d = await run(istioctl, ['--kubeconfig', kubeconfig, 'x', 'describe', 'pod', name]);
    expect(d.code, d.stderr).to.equal(0);
    expect(d.stdout).to.include(`Pod: ${name}`);
    expect(d.stdout).to.match(/Service: age/);
  });
});
