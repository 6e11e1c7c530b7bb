// suites/substrate.spec.ts — the foundation on live traffic: routing, service VIPs, DNS, the
// verdict classes from real signals (RST, refused, TLS alert, silent drop), the wire canary,
// uids and capabilities, and cleanup after SIGINT and SIGKILL.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadTopology } from '../src/harness/substrate/topology.ts';
import { substrateOfRun, upCluster } from '../src/harness/substrate/index.ts';
import { pollUntil } from '../src/harness/substrate/poll.ts';
import type { Cluster } from '../src/harness/substrate/types.ts';
import { leftovers, janitor, ownerAlive, readRecords, shortOf } from '../src/harness/substrate/state.ts';
import { CertificateAuthority, issueServer, issueClient, PkiStore } from '../src/harness/pki/index.ts';
import { appendResults, toRecord, truthTable } from '../src/harness/report/results.ts';
import type { ResultRecord, Verdict, Wire } from '../src/harness/model/verdict.ts';
import type { ProbeRequest } from '../src/harness/probe/types.ts';

const SUITE = 'substrate';
/** Prints /proc/<pid>/status of the process whose command line is exactly `sleep 60.25`. */
const FIND_SLEEP = 'for d in /proc/[0-9]*; do [ "$(tr \'\\0\' \' \' < $d/cmdline 2>/dev/null)" = "sleep 60.25 " ] && cat $d/status; done; true';
/** The run's substrate (`meshproof run --substrate`), named in the titles. */
const SUBSTRATE = substrateOfRun();

// Hand-written expectations: what the kernel and the servers signal for each case.
interface Row {
  scenario: string;
  from: string;
  to: string;
  port: number;
  protocol: ProbeRequest['protocol'];
  tls?: 'ca' | 'ca+client';
  verdict: Verdict;
  wire?: Wire;
}
const TABLE: Row[] = [
  { scenario: 'plaintext HTTP between pods', from: 'client', to: 'web-1', port: 8080, protocol: 'http', verdict: 'allowed:plaintext', wire: 'plaintext-seen' },
  { scenario: 'TLS to a TLS server', from: 'client', to: 'tls', port: 8443, protocol: 'https', tls: 'ca', verdict: 'allowed:tls', wire: 'no-plaintext' },
  { scenario: 'mTLS to a server requiring client certs', from: 'client', to: 'mtls', port: 8443, protocol: 'https', tls: 'ca+client', verdict: 'allowed:mtls', wire: 'no-plaintext' },
  { scenario: 'no client cert to a server requiring one', from: 'client', to: 'mtls', port: 8443, protocol: 'https', tls: 'ca', verdict: 'denied:tls-handshake', wire: 'no-plaintext' },
  { scenario: 'closed port', from: 'client', to: 'web-1', port: 9999, protocol: 'http', verdict: 'denied:refused' },
  { scenario: 'RST after the handshake (iptables REJECT tcp-reset)', from: 'client', to: 'resetter', port: 8080, protocol: 'http', verdict: 'denied:reset' },
  { scenario: 'iptables DROP (silent)', from: 'client', to: 'dropper', port: 8080, protocol: 'http', verdict: 'denied:timeout' },
];

describe(`substrate (${SUBSTRATE}): the foundation on live traffic`, function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let pki: PkiStore;
  let ids: { ca: string; clientCert: string; clientKey: string };
  const records: ResultRecord[] = [];
  const hostLinksBefore: string[] = [];

  before(async () => {
    hostLinksBefore.push(...(await leftovers()).filter((x) => x.startsWith('link')));
    const topology = loadTopology('fixtures/substrate/topology.yaml');
    topology.pods.push(
      { name: 'tls', namespace: 'default', labels: { app: 'tls' } },
      { name: 'mtls', namespace: 'default', labels: { app: 'mtls' } },
      { name: 'sidecar-like', namespace: 'default', labels: { app: 'sidecar-like' } },
    );
    cluster = await upCluster(topology, { log: (l) => console.log(`    ${l}`) });
    const ca = await CertificateAuthority.create('substrate');
    pki = new PkiStore(join(cluster.stateDir, 'pki'));
    const caPath = pki.writeCa(ca);
    const server = pki.writeIdentity(await issueServer(ca, { cn: 'tls.default.svc.cluster.local', dns: ['tls', 'mtls', 'tls.default.svc.cluster.local'] }));
    const client = pki.writeIdentity(await issueClient(ca, { cn: 'client.example.com' }));
    ids = { ca: caPath, clientCert: client.cert, clientKey: client.key };
    const tlsArgs = ['--port', '8443', '--tls-cert', server.cert, '--tls-key', server.key];
    await cluster.startContainer('tls', { name: 'echo', workload: 'echo', args: tlsArgs, ready: { kind: 'tcp', port: 8443 } });
    await cluster.startContainer('mtls', { name: 'echo', workload: 'echo', args: [...tlsArgs, '--client-ca', caPath], ready: { kind: 'tcp', port: 8443 } });
  });

  after(async () => {
    if (cluster) {
      appendResults(cluster.runDir, records);
      console.log(truthTable(`\n    ${SUITE}: expected vs observed`, records).replace(/\n/g, '\n    '));
      pki?.removeKeys();
      await cluster.down();
    }
  });

  describe('verdicts are classified from the real signal', () => {
    for (const row of TABLE) {
      it(`${row.scenario}: ${row.from} → ${row.to}:${row.port} is ${row.verdict}${row.wire ? `, ${row.wire}` : ''}`, async () => {
        const to = cluster.pod(row.to);
        const req: ProbeRequest = { protocol: row.protocol, host: to.ip, port: row.port, path: '/echo', timeoutMs: 1000 };
        if (row.tls) req.tls = { ca: ids.ca, servername: row.to, ...(row.tls === 'ca+client' ? { cert: ids.clientCert, key: ids.clientKey } : {}) };
        const r = await cluster.probe(row.from, req);
        const expected = row.verdict.startsWith('allowed') ? 'allowed' : 'denied';
        records.push(toRecord({ run: cluster.runId, substrate: cluster.substrate, profile: 'none' }, { suite: SUITE, scenario: row.scenario, from: row.from, to: row.to, port: row.port, protocol: row.protocol }, expected, r, r.verdict === row.verdict && (!row.wire || r.evidence.wire === row.wire)));
        expect(r.verdict, JSON.stringify(r.evidence)).to.equal(row.verdict);
        if (row.wire) expect(r.evidence.wire).to.equal(row.wire);
        // an active deny is never found by waiting for the timeout
        if (row.verdict !== 'denied:timeout' && row.verdict.startsWith('denied')) expect(r.evidence.ms).to.be.below(500);
      });
    }
  });

  it('a service VIP spreads a naked client over both endpoints (kube-proxy style)', async () => {
    const calls = Array.from({ length: 24 }, () => ({ from: 'client', req: { protocol: 'http' as const, host: 'web', port: 80, path: '/echo' } }));
    const results = await Promise.all(calls.map((c) => cluster.probe(c.from, c.req, { wire: false })));
    expect(results.map((r) => r.verdict)).to.deep.equal(Array(24).fill('allowed:plaintext'));
    const servedBy = new Set(results.map((r) => r.evidence.servedBy));
    expect([...servedBy].sort()).to.deep.equal(['web-1', 'web-2']);
  });

  it('service names resolve inside pods: <svc>, <svc>.<ns>, <svc>.<ns>.svc.cluster.local; the short name only in its namespace', async () => {
    const vip = cluster.services.get('default/web')!.vip;
    for (const name of ['web', 'web.default', 'web.default.svc.cluster.local']) {
      const r = await cluster.exec('client', ['getent', 'hosts', name]);
      expect(r.stdout.split(/\s+/)[0], name).to.equal(vip);
    }
    const fromOther = await cluster.exec('other/outsider', ['getent', 'hosts', 'web']);
    expect(fromOther.code).to.not.equal(0);
    const qualified = await cluster.probe('other/outsider', { protocol: 'http', host: 'web.default', port: 80, path: '/echo' }, { wire: false });
    expect(qualified.verdict).to.equal('allowed:plaintext');
  });

  it('pods have no way out: only the pod and service ranges are routed', async () => {
    const r = await cluster.exec('client', ['ip', 'route', 'get', '1.1.1.1']);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/unreachable/i);
    const links = (await leftovers()).filter((x) => x.startsWith('link'));
    expect(links, 'no mp* interface in the host namespace').to.deep.equal(hostLinksBefore);
  });

  it('runs processes as the chosen uid with the chosen capabilities, logging to reports/<run>/logs/<pod>/', async () => {
    await cluster.startContainer('sidecar-like', { name: 'proxy', command: ['sleep', '60.25'], uid: 1337, gid: 1337, caps: ['net_admin'] });
    // the process's own status as the kernel shows it inside the pod (every substrate lets a pod see its processes);
    // it is `sleep` once setpriv has exec'd into it
    const status = await pollUntil(async () => {
      const r = await cluster.exec('sidecar-like', ['sh', '-c', FIND_SLEEP]);
      return /^Uid:/m.test(r.stdout) ? r.stdout : undefined;
    }, { timeoutMs: 5000, intervalMs: 50, what: 'the process sleep 60.25 in pod sidecar-like' });
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).to.equal('1337');
    expect(/^Gid:\s+(\d+)/m.exec(status)?.[1]).to.equal('1337');
    // CAP_NET_ADMIN is bit 12
    expect((BigInt(`0x${/^CapAmb:\s+([0-9a-f]+)/m.exec(status)![1]}`) >> 12n) & 1n).to.equal(1n);
    expect(existsSync(join(cluster.runDir, 'logs', 'default_sidecar-like', 'proxy.log'))).to.equal(true);
  });

  it('a container that dies before it is ready fails with the pod name and its log tail', async () => {
    let err: Error | undefined;
    try {
      await cluster.startContainer('client', { name: 'broken', command: ['sh', '-c', 'echo boom-marker >&2; exit 3'], ready: { kind: 'tcp', port: 7777 } });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/pod default\/client: container broken exited \(code 3\)/);
    expect(err?.message).to.include('boom-marker');
  });

  it('keys are 0600 and live in the run state directory', () => {
    expect(statSync(ids.clientKey).mode & 0o777).to.equal(0o600);
    expect(ids.clientKey.startsWith(cluster.stateDir)).to.equal(true);
  });
});

describe(`substrate (${SUBSTRATE}): two runs at once, and nothing left behind`, function () {
  this.timeout(120_000);

  it('two runs at once do not collide', async () => {
    const t = loadTopology('fixtures/substrate/topology.yaml');
    t.pods = t.pods.filter((p) => ['client', 'web-1'].includes(p.name));
    t.services = [];
    // leftovers() is the inventory of a run found by its short id: namespaces, links, state, processes naming its files
    const up = () => upCluster(structuredClone(t), { wire: false });
    const [a, b] = (await Promise.all([up(), up()])).map((c) => Object.assign(c, { short: shortOf(c.runId) }));
    try {
      expect(a.short).to.not.equal(b.short);
      for (const c of [a, b]) {
        const r = await c.probe('client', { protocol: 'http', host: c.pod('web-1').ip, port: 8080, path: '/echo' });
        expect(r.verdict).to.equal('allowed:plaintext');
      }
    } finally {
      await Promise.all([a.down(), b.down()]);
    }
    expect(await leftovers(a.short)).to.deep.equal([]);
    expect(await leftovers(b.short)).to.deep.equal([]);
  });

  /** Starts `meshproof up --foreground` and resolves with its run once it is up. */
  function startUp(): Promise<{ child: ReturnType<typeof spawn>; short: string }> {
    const child = spawn(process.execPath, ['bin/meshproof.js', 'up', 'fixtures/substrate/topology.yaml', '--foreground'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let out = '';
      const onData = (b: Buffer) => {
        out += b.toString();
        const m = /run \S+ \(([0-9a-f]{4})\) is up/.exec(out);
        if (m) resolve({ child, short: m[1]! });
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`meshproof up exited ${code}: ${out}`)));
    });
  }

  it('after SIGINT mid-run, nothing named mp* of that run remains', async () => {
    const { child, short } = await startUp();
    expect((await leftovers(short)).length).to.be.above(0);
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGINT');
    expect(await exited).to.equal(130);
    expect(await leftovers(short)).to.deep.equal([]);
  });

  it('after SIGKILL, the janitor removes namespaces, processes and keys; live runs are kept', async () => {
    const { child, short } = await startUp();
    const rec = readRecords().find((r) => r.short === short)!;
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect((await leftovers(short)).length, 'a killed run leaves namespaces behind').to.be.above(0);
    const report = await janitor();
    expect(report.removedRuns).to.include(short);
    expect(await leftovers(short)).to.deep.equal([]);
    expect(existsSync(rec.runDir)).to.equal(true);
  });
});

describe(`substrate (${SUBSTRATE}): the meshproof command a user debugs with`, function () {
  this.timeout(60_000);
  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, ['bin/meshproof.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('exit', (code) => resolve({ code, out, err }));
    });

  it('up keeps a topology running in the background; exec runs a user command in a pod; down removes it', async () => {
    const up = await cli('up', 'fixtures/substrate/topology.yaml');
    expect(up.code, up.err).to.equal(0);
    const short = /\(([0-9a-f]{4})\) is up/.exec(up.out)![1]!;
    try {
      const curl = await cli('exec', '--run', short, 'client', '--', 'curl', '-s', '-m', '2', 'http://web.default.svc.cluster.local/echo');
      expect(curl.code).to.equal(0);
      expect(curl.out).to.match(/^Hostname=web-[12]$/m);
      const route = await cli('exec', '--run', short, 'client', '--', 'ip', 'route', 'get', '10.244.0.3');
      expect(route.out).to.include('dev mpeth0');
    } finally {
      const down = await cli('down', '--run', short);
      expect(down.code).to.equal(0);
    }
    expect(await leftovers(short)).to.deep.equal([]);
  });

  it('bad input: one line naming the fix, exit code 2, nothing left behind', async () => {
    const before = await leftovers();
    const missing = await cli('up', 'fixtures/does-not-exist.yaml');
    expect(missing.code).to.equal(2);
    expect(missing.err.trim()).to.equal('meshproof: fixtures/does-not-exist.yaml: cannot read (ENOENT): check the path');
    const exec = await cli('exec', 'no-such-pod', '--', 'true');
    expect(exec.code).to.equal(2);
    expect(exec.err.trim().split('\n')).to.have.length(1);
    const usage = await cli('frobnicate');
    expect(usage.code).to.equal(2);
    // whatever appeared meanwhile must belong to another live run (a suite running beside this one)
    const live = new Set(readRecords().filter(ownerAlive).map((r) => r.short));
    const appeared = (await leftovers()).filter((x) => !before.includes(x));
    expect(appeared.filter((x) => !live.has(/mp([0-9a-f]{4})/.exec(x)?.[1] ?? ''))).to.deep.equal([]);
  });
});
