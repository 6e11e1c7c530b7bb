// The in-pod workloads (sentences, dora, tcp-listener, echo) run in-process on 127.0.0.1:0 and are
// called over real sockets. Expectations are hand-written from the seeds (istio-katas app.py,
// CATS dora and tcp-listener), not derived from the code under test. The echo over TLS (openssl-made certificates)
// and the pod command line as a real process are test/integration/workloads.spec.ts.

import { expect } from 'chai';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import type { Env, WorkloadHandle } from '../src/harness/workloads/common.ts';
import { curl, startDora } from '../src/harness/workloads/dora.ts';
import { startEcho } from '../src/harness/workloads/echo.ts';
import { subjectAltNames } from '../src/harness/workloads/echo-headers.ts';
import { main } from '../src/harness/workloads/main.ts';
import { pythonListRepr, startSentences } from '../src/harness/workloads/sentences.ts';
import { startTcpListener } from '../src/harness/workloads/tcp-listener.ts';

import { echoFields, get, HOST, quiet } from './lib/workloads.ts';

describe('workloads', function () {
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

  const sentences = async (env: Env): Promise<WorkloadHandle> => keep(await startSentences({ host: HOST, port: 0, env, log: quiet }));
  const url = (h: WorkloadHandle, path = ''): string => `http://${HOST}:${h.port}${path}`;

  describe('sentences (istio-katas app.py)', () => {
    it('age mode answers an integer in [SENTENCE_AGE_MIN, SENTENCE_AGE_MAX] as text/html', async () => {
      const age = await sentences({ SENTENCE_MODE: 'age', SENTENCE_AGE_MIN: '30', SENTENCE_AGE_MAX: '32', POD_NAME: 'age-1' });
      for (let i = 0; i < 5; i++) {
        const a = await get(age.port);
        expect(a.status).to.equal(200);
        expect(a.body).to.match(/^3[0-2]$/);
        expect(a.headers['content-type']).to.equal('text/html; charset=utf-8');
      }
    });

    it('name mode: /choices is Python str(list), / one of the names', async () => {
      const name = await sentences({ SENTENCE_MODE: 'name' });
      expect((await get(name.port, '/choices')).body).to.equal("['Peter', 'Ray', 'Egon']");
      expect((await get(name.port)).body).to.match(/^(Peter|Ray|Egon)$/);
    });

    it('name-v2 with the workshop names answers one of them; repr quotes d\'Artagnan like Python', async () => {
      const v2 = await sentences({ SENTENCE_MODE: 'name', SENTENCE_NAMES: "Athos (v2),Porthos (v2),Aramis (v2),d'Artagnan (v2)" });
      for (let i = 0; i < 8; i++) expect((await get(v2.port)).body).to.be.oneOf(['Athos (v2)', 'Porthos (v2)', 'Aramis (v2)', "d'Artagnan (v2)"]);
      expect((await get(v2.port, '/choices')).body).to.equal(`['Athos (v2)', 'Porthos (v2)', 'Aramis (v2)', "d'Artagnan (v2)"]`);
      expect(pythonListRepr(['a\\b', `it's "x"`])).to.equal(`['a\\\\b', 'it\\'s "x"']`);
    });

    it('random mode answers an integer 0-10000; /choices exists only in name mode', async () => {
      const random = await sentences({ SENTENCE_MODE: 'random' });
      const n = Number((await get(random.port)).body);
      expect(n).to.be.within(0, 10000);
      expect(Number.isInteger(n)).to.equal(true);
      expect((await get(random.port, '/choices')).status).to.equal(404);
    });

    it('sentence mode calls name then age: "<name> is <age> years", and says which pods served', async () => {
      const name = await sentences({ SENTENCE_MODE: 'name', POD_NAME: 'name-v1-abc' });
      const age = await sentences({ SENTENCE_MODE: 'age', POD_NAME: 'age-xyz' });
      const front = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(name), SENTENCE_AGE_SVC_URL: url(age) });
      const a = await get(front.port);
      expect(a.status).to.equal(200);
      expect(a.body).to.match(/^(Peter|Ray|Egon) is \d+ years$/);
      expect(a.headers['x-echo-upstream']).to.equal('name=name-v1-abc,age=age-xyz');
    });

    it('sentence mode via name-v2 gives a musketeer sentence', async () => {
      const v2 = await sentences({ SENTENCE_MODE: 'name', SENTENCE_NAMES: "Athos (v2),Porthos (v2),Aramis (v2),d'Artagnan (v2)" });
      const age = await sentences({ SENTENCE_MODE: 'age' });
      const front = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(v2), SENTENCE_AGE_SVC_URL: url(age) });
      expect((await get(front.port)).body).to.match(/^(Athos \(v2\)|Porthos \(v2\)|Aramis \(v2\)|d'Artagnan \(v2\)) is \d+ years$/);
    });

    it('forwards only fwd_headers (x-request-id, x-b3-*, x-test, authorization, ...) to the upstreams', async () => {
      const echo = keep(await startEcho({ host: HOST, port: 0, log: quiet, env: { POD_NAME: 'echo-1' } }));
      const age = await sentences({ SENTENCE_MODE: 'age' });
      const front = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(echo), SENTENCE_AGE_SVC_URL: url(age) });
      const a = await get(front.port, '/', { 'x-request-id': 'req-42', 'x-b3-traceid': 'abc', 'x-test': 't', authorization: 'Bearer z', 'x-other': 'no' });
      expect(a.status).to.equal(200);
      const seen = echoFields(a.body).get('RequestHeader') ?? [];
      expect(seen).to.include.members(['X-Request-Id:req-42', 'X-B3-Traceid:abc', 'X-Test:t', 'Authorization:Bearer z']);
      expect(seen.some((h) => h.startsWith('X-Other'))).to.equal(false);
      expect(a.headers['x-echo-upstream']).to.match(/^name=echo-1,age=/);
    });

    it('answers 500 naming the upstream when age is stopped (connection refused)', async () => {
      const name = await sentences({ SENTENCE_MODE: 'name' });
      const age = await sentences({ SENTENCE_MODE: 'age' });
      const ageUrl = url(age);
      await age.close();
      const front = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(name), SENTENCE_AGE_SVC_URL: ageUrl });
      const a = await get(front.port);
      expect(a.status).to.equal(500);
      expect(a.body).to.equal(`upstream ${ageUrl} failed: ECONNREFUSED`);
    });

    it('answers 500 when an upstream answers non-2xx, and on an upstream slower than 1 s', async () => {
      const echo = keep(await startEcho({ host: HOST, port: 0, log: quiet, env: {} }));
      const age = await sentences({ SENTENCE_MODE: 'age', SENTENCE_SVC_DELAY_MIN: '1.5', SENTENCE_SVC_DELAY_MAX: '1.5' });
      const denied = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(echo, '/status/503'), SENTENCE_AGE_SVC_URL: url(age) });
      const a = await get(denied.port);
      expect(a.status).to.equal(500);
      expect(a.body).to.equal(`upstream ${url(echo, '/status/503')} failed: HTTP 503`);
      const slow = await sentences({ SENTENCE_MODE: 'sentence', SENTENCE_NAME_SVC_URL: url(echo), SENTENCE_AGE_SVC_URL: url(age) });
      const t0 = Date.now();
      const b = await get(slow.port);
      expect(b.status).to.equal(500);
      expect(b.body).to.equal(`upstream ${url(age)} failed: ETIMEDOUT`);
      expect(Date.now() - t0).to.be.below(1450);
    });

    it('echoes identity, x-forwarded-client-cert and x-request-id on every response, and serves /echo', async () => {
      const age = await sentences({ SENTENCE_MODE: 'age', POD_NAME: 'age-7', POD_NAMESPACE: 'sentences', VERSION: 'v1' });
      const xfcc = 'By=spiffe://cluster.local/ns/sentences/sa/age;Hash=abc;URI=spiffe://cluster.local/ns/sentences/sa/sentences';
      const a = await get(age.port, '/', { 'x-forwarded-client-cert': xfcc, 'x-request-id': 'r-1' });
      expect(a.headers['x-echo-xfcc']).to.equal(xfcc);
      expect(a.headers['x-echo-pod']).to.equal('age-7');
      expect(a.headers['x-echo-namespace']).to.equal('sentences');
      expect(a.headers['x-echo-version']).to.equal('v1');
      expect(a.headers['x-echo-request-id']).to.equal('r-1');
      expect(a.headers['x-echo-peer']).to.equal(undefined);
      const plain = await get(age.port);
      expect(plain.headers['x-echo-xfcc']).to.equal(undefined);
      const e = await get(age.port, '/echo', { 'x-test': 'yes' });
      expect(e.headers['content-type']).to.equal('text/plain; charset=utf-8');
      const f = echoFields(e.body);
      expect(f.get('ServiceVersion')).to.deep.equal(['v1']);
      expect(f.get('Hostname')).to.deep.equal(['age-7']);
      expect(f.get('Namespace')).to.deep.equal(['sentences']);
      expect(f.get('Proto')).to.deep.equal(['HTTP/1.1']);
      expect(f.get('IP')).to.deep.equal(['127.0.0.1']);
      expect(f.get('Host')).to.deep.equal([`127.0.0.1:${age.port}`]);
      expect(f.get('Alpn')).to.deep.equal(['']);
      expect(f.get('ClientCertSubject')).to.deep.equal(['']);
      expect(f.get('RequestHeader')).to.include('X-Test:yes');
    });

    it('rejects a bad SENTENCE_MODE before listening', async () => {
      let caught: unknown;
      try {
        await startSentences({ host: HOST, port: 0, env: { SENTENCE_MODE: 'poem' }, log: quiet });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(UserError);
      expect((caught as UserError).message).to.equal("SENTENCE_MODE must be one of age|name|sentence|random, got 'poem'");
    });
  });

  describe('dora (CATS assets/dora)', () => {
    const dora = async (env: Env = {}): Promise<WorkloadHandle> => keep(await startDora({ host: HOST, port: 0, env, log: quiet }));

    it("GET / says Hi, I'm Dora!", async () => {
      const d = await dora();
      const a = await get(d.port);
      expect(a.status).to.equal(200);
      expect(a.body).to.equal("Hi, I'm Dora!");
    });

    it('/health fails the first 3 calls, then is alive', async () => {
      const d = await dora();
      const seen: Array<[number, string]> = [];
      for (let i = 0; i < 5; i++) {
        const a = await get(d.port, '/health');
        seen.push([a.status, a.body]);
      }
      expect(seen).to.deep.equal([
        [500, 'Hit /health 1 times'],
        [500, 'Hit /health 2 times'],
        [500, 'Hit /health 3 times'],
        [200, "I'm alive"],
        [200, "I'm alive"],
      ]);
    });

    it('/ready is 200 until /ready/false, then 500 until /ready/true', async () => {
      const d = await dora();
      expect(await get(d.port, '/ready')).to.include({ status: 200, body: '200 - ready' });
      expect((await get(d.port, '/ready/false')).status).to.equal(200);
      expect(await get(d.port, '/ready')).to.include({ status: 500, body: '500 - not ready' });
      await get(d.port, '/ready/true');
      expect((await get(d.port, '/ready')).status).to.equal(200);
    });

    it('/id is VCAP_APPLICATION.instance_id, /env/:name the raw value (empty when unset), /env.json the env', async () => {
      const d = await dora({ VCAP_APPLICATION: '{"instance_id":"6b0f-instance","name":"dora"}', FOO: 'bar baz' });
      expect((await get(d.port, '/id')).body).to.equal('6b0f-instance');
      expect((await get(d.port, '/env/FOO')).body).to.equal('bar baz');
      expect(await get(d.port, '/env/UNSET')).to.include({ status: 200, body: '' });
      expect(JSON.parse((await get(d.port, '/env.json')).body)).to.deep.equal({ VCAP_APPLICATION: '{"instance_id":"6b0f-instance","name":"dora"}', FOO: 'bar baz' });
      const other = await dora();
      const id = (await get(other.port, '/id')).body;
      expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect((await get(other.port, '/id')).body).to.equal(id);
    });

    it('/largetext/:kb, /delay/:s, /myip and 404s', async () => {
      const d = await dora();
      expect((await get(d.port, '/largetext/3')).body).to.equal('1'.repeat(3 * 1024));
      expect((await get(d.port, '/delay/0')).body).to.equal('YAWN! Slept so well for 0 seconds');
      expect((await get(d.port, '/myip')).body).to.match(/^(\d+\.\d+\.\d+\.\d+)?$/);
      expect((await get(d.port, '/nope')).status).to.equal(404);
    });

    it('/curl/:host/:port reports curl-style stdout and return codes 0 and 7', async () => {
      const d = await dora();
      const echo = keep(await startEcho({ host: HOST, port: 0, log: quiet, env: { POD_NAME: 'target' } }));
      const ok = await get(d.port, `/curl/${HOST}/${echo.port}`);
      expect(ok.headers['content-type']).to.equal('application/json');
      const r = JSON.parse(ok.body) as { stdout: string; stderr: string; return_code: number };
      expect(Object.keys(r)).to.deep.equal(['stdout', 'stderr', 'return_code']);
      expect(r.return_code).to.equal(0);
      expect(r.stdout).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      expect(r.stdout).to.include('x-echo-pod: target\r\n');
      expect(r.stdout).to.include('Hostname=target');

      const closed = await startEcho({ host: HOST, port: 0, log: quiet, env: {} });
      await closed.close();
      const refused = JSON.parse((await get(d.port, `/curl/${HOST}/${closed.port}`)).body) as { stderr: string; return_code: number };
      expect(refused.return_code).to.equal(7);
      expect(refused.stderr).to.match(/Connection refused/);
    });

    it('curl() classifies empty reply (52), reset (56) and timeout (28) from the real socket signal', async () => {
      const servers: Server[] = [];
      const serve = (onConn: (s: Socket) => void): Promise<number> =>
        new Promise((resolve) => {
          const s = createServer((c) => {
            c.on('error', () => undefined); // the client's reset or timeout is the point, never an uncaught error
            onConn(c);
          });
          servers.push(s);
          s.listen(0, HOST, () => resolve((s.address() as { port: number }).port));
        });
      const held: Socket[] = [];
      try {
        const fin = await serve((s) => s.once('data', () => s.end()));
        const rst = await serve((s) => s.once('data', () => s.resetAndDestroy()));
        const silent = await serve((s) => held.push(s));
        expect(await curl(HOST, fin, 2000)).to.deep.equal({ stdout: '', stderr: 'curl: (52) Empty reply from server', return_code: 52 });
        expect(await curl(HOST, rst, 2000)).to.deep.equal({ stdout: '', stderr: 'curl: (56) Recv failure: Connection reset by peer', return_code: 56 });
        const slow = await curl(HOST, silent, 300);
        expect(slow.return_code).to.equal(28);
        expect(slow.stderr).to.match(/^curl: \(28\) Operation timed out after \d+ milliseconds with 0 bytes received$/);
      } finally {
        for (const s of held) s.destroy();
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      }
    });
  });

  describe('tcp-listener (CATS assets/tcp-listener)', () => {
    const exchange = (port: number, payload: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = connect(port, HOST, () => s.write(payload));
        s.once('data', (d: Buffer) => {
          resolve(d.toString('utf8'));
          s.destroy();
        });
        s.once('error', reject);
      });

    it('answers every read with <serverId>:<bytes>, server1 by default', async () => {
      const t = keep(await startTcpListener({ host: HOST, port: 0, env: {}, log: quiet }));
      expect(await exchange(t.port, 'hello')).to.equal('server1:hello');
    });

    it('takes the id from the option, else SERVER_ID', async () => {
      const byEnv = keep(await startTcpListener({ host: HOST, port: 0, env: { SERVER_ID: 'server2' }, log: quiet }));
      const byOpt = keep(await startTcpListener({ host: HOST, port: 0, env: { SERVER_ID: 'server2' }, serverId: 'app-b', log: quiet }));
      expect(await exchange(byEnv.port, 'Time is 1')).to.equal('server2:Time is 1');
      expect(await exchange(byOpt.port, 'x')).to.equal('app-b:x');
    });
  });

  describe('echo', () => {
    it('plain HTTP echoes any path; /status/<code> answers that status', async () => {
      const e = keep(await startEcho({ host: HOST, port: 0, log: quiet, env: { VERSION: 'v2' } }));
      const a = await get(e.port, '/any/path?q=1');
      expect(a.status).to.equal(200);
      expect(echoFields(a.body).get('URL')).to.deep.equal(['/any/path?q=1']);
      expect(echoFields(a.body).get('ServiceVersion')).to.deep.equal(['v2']);
      expect((await get(e.port, '/status/418')).status).to.equal(418);
      expect(echoFields((await get(e.port, '/status/503')).body).get('StatusCode')).to.deep.equal(['503']);
    });

    it('reads Node\'s subjectAltName format, including JSON-quoted values', () => {
      expect(subjectAltNames('DNS:a.test, URI:spiffe://td/ns/x/sa/y, IP Address:10.0.0.1')).to.deep.equal([
        { type: 'DNS', value: 'a.test' },
        { type: 'URI', value: 'spiffe://td/ns/x/sa/y' },
        { type: 'IP Address', value: '10.0.0.1' },
      ]);
      expect(subjectAltNames('URI:"spiffe://a, b", DNS:c')).to.deep.equal([
        { type: 'URI', value: 'spiffe://a, b' },
        { type: 'DNS', value: 'c' },
      ]);
    });
  });

  describe('main (the pod command line)', () => {
    const usageError = async (argv: string[]): Promise<UserError> => {
      let caught: unknown;
      try {
        await main(argv);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(UserError);
      expect((caught as UserError).exitCode).to.equal(EXIT.usage);
      return caught as UserError;
    };

    it('rejects an unknown workload, an unknown flag and a bad port as usage errors', async () => {
      expect((await usageError(['poem'])).message).to.match(/^unknown workload 'poem'; usage: <sentences\|dora\|tcp-listener\|echo\|agent>/);
      expect((await usageError([])).message).to.match(/^missing workload/);
      expect((await usageError(['dora', '--nope', '1'])).message).to.equal('dora: unknown flag --nope (flags: --port --host)');
      expect((await usageError(['tcp-listener', '--port', '70000'])).message).to.equal("tcp-listener --port must be a port 0-65535, got '70000'");
      expect((await usageError(['echo', '--port'])).message).to.equal('echo: --port needs a value');
    });
  });
});
