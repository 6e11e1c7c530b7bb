// The workloads where a real program takes part: the echo over HTTPS with openssl-made certificates (client
// certificate subject and URI, SNI, ALPN, x-echo-peer), and the pod command line run as a real process (its
// listening line, SIGTERM → exit 0, bad usage → exit 2). Expectations are hand-written from the seeds.
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import type { WorkloadHandle } from '../../src/harness/workloads/common.ts';
import { startEcho } from '../../src/harness/workloads/echo.ts';
import { echoFields, HOST, quiet, type Answer } from '../lib/workloads.ts';

describe('workloads: echo over TLS', function () {
  this.timeout(20000);
  let running: WorkloadHandle[] = [];
  const keep = (h: WorkloadHandle): WorkloadHandle => {
    running.push(h);
    return h;
  };
  afterEach(async () => {
    await Promise.all(running.map((h) => h.close()));
    running = [];
  });

  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-workloads-'));
    const selfSigned = (name: string, subj: string, san: string): void => {
      execFileSync('openssl', [
        'req', '-x509', '-nodes', '-days', '1', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-subj', subj, '-addext', `subjectAltName=${san}`,
        '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
      ], { stdio: 'ignore' });
    };
    selfSigned('server', '/O=ACMEorg/CN=echo.test', 'DNS:echo.test');
    selfSigned('client', '/O=ACMEorg/CN=client.example.com', 'DNS:client.example.com,URI:spiffe://cluster.local/ns/default/sa/sleep');
    selfSigned('nouri', '/O=ACMEorg/CN=plain-client', 'DNS:plain-client');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const httpsGet = (port: number, client: string | null): Promise<Answer> =>
    new Promise((resolve, reject) => {
      // https.request hands ALPNProtocols on to tls.connect, though RequestOptions does not list it.
      const options: RequestOptions & Pick<ConnectionOptions, 'ALPNProtocols'> = {
        host: HOST, port, path: '/hello', agent: false, servername: 'echo.test', ALPNProtocols: ['h2', 'http/1.1'],
        ca: readFileSync(join(dir, 'server.crt')),
        ...(client ? { cert: readFileSync(join(dir, `${client}.crt`)), key: readFileSync(join(dir, `${client}.key`)) } : {}),
      };
      const req = httpsRequest(
        options,
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  const mtlsEcho = async (): Promise<WorkloadHandle> =>
    keep(await startEcho({
      host: HOST, port: 0, log: quiet, env: { POD_NAME: 'echo-tls' },
      tlsCert: join(dir, 'server.crt'), tlsKey: join(dir, 'server.key'),
      clientCa: `${join(dir, 'client.crt')}`,
    }));

  it('over HTTPS with a client cert reports ClientCertSubject, ClientCertURI, SNI, ALPN and x-echo-peer', async () => {
    const e = await mtlsEcho();
    const a = await httpsGet(e.port, 'client');
    expect(a.status).to.equal(200);
    const f = echoFields(a.body);
    expect(f.get('ClientCertSubject')).to.deep.equal(['CN=client.example.com,O=ACMEorg']);
    expect(f.get('ClientCertURI')).to.deep.equal(['spiffe://cluster.local/ns/default/sa/sleep']);
    expect(f.get('Sni')).to.deep.equal(['echo.test']);
    expect(f.get('Alpn')).to.deep.equal(['http/1.1']);
    expect(f.get('URL')).to.deep.equal(['/hello']);
    expect(a.headers['x-echo-peer']).to.equal('spiffe://cluster.local/ns/default/sa/sleep');
  });

  it('refuses a client without a cert when --client-ca is set', async () => {
    const e = await mtlsEcho();
    let caught: unknown;
    try {
      await httpsGet(e.port, null);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(Error);
  });

  it('x-echo-peer falls back to the subject CN when the cert has no URI SAN', async () => {
    const e = keep(await startEcho({
      host: HOST, port: 0, log: quiet, env: {},
      tlsCert: join(dir, 'server.crt'), tlsKey: join(dir, 'server.key'), clientCa: join(dir, 'nouri.crt'),
    }));
    const a = await httpsGet(e.port, 'nouri');
    expect(a.headers['x-echo-peer']).to.equal('plain-client');
    expect(echoFields(a.body).get('ClientCertURI')).to.deep.equal(['']);
  });
});

describe('workloads: main (the pod command line) as a process', function () {
  this.timeout(20000);

  it('runs as a process: logs one listening line, serves, exits 0 on SIGTERM; bad usage exits 2', async () => {
    const entry = join(process.cwd(), 'src/harness/workloads/main.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'tcp-listener', '--host', HOST, '--port', '0', '--id', 'proc'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString('utf8');
          const m = /^tcp-listener listening on 127\.0\.0\.1:(\d+)\n/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${out}`)));
      });
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect(port, HOST, () => s.write('ping'));
        s.once('data', (d: Buffer) => {
          resolve(d.toString('utf8'));
          s.destroy();
        });
        s.once('error', reject);
      });
      expect(reply).to.equal('proc:ping');
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }

    const bad = spawn(process.execPath, ['--import', 'tsx', entry, 'sentences', '--bogus', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => bad.once('exit', (c) => resolve(c)));
    expect(code).to.equal(2);
    expect(err).to.equal('meshproof workload: sentences: unknown flag --bogus (flags: --port --host)\n');
  });
});
