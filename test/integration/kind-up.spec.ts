// `meshproof up --substrate kind fixtures/istio/sentences` as a user runs it (bin/meshproof.js, real processes): the
// workshop's mesh on a real kind cluster with Istio's own istiod stays up after the command returns and prints its
// kubeconfig; kubectl with that kubeconfig sees the pods (sidecars injected); `meshproof exec sleep -- curl` reaches
// sentences through the API's exec; `meshproof down` deletes the cluster: no engine, namespace, state dir or process
// left, the host's iptables unchanged. Needs root and `meshproof doctor --fix --substrate kind` (skipped, saying so).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolveKube } from '../../src/harness/controlplane/provision.ts';
import { stateDirOf } from '../../src/harness/substrate/state.ts';
import { iptablesSave, netnsList, processesNaming, skipUnlessKindIstio } from './lib/kind.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const bin = (...args: string[]) => spawnSync(process.execPath, ['bin/meshproof.js', ...args], { cwd: REPO, encoding: 'utf8', timeout: 8 * 60_000 });

describe('kind substrate: meshproof up, exec and down', function () {
  this.timeout(10 * 60_000);
  let iptablesBefore = '';
  let out = '';
  let short = '';
  let kubeconfig = '';

  before(async function () {
    await skipUnlessKindIstio(this);
    iptablesBefore = iptablesSave();
    const r = bin('up', '--substrate', 'kind', 'fixtures/istio/sentences', '--inject', 'all', '--reports', '/tmp/meshproof-kind-up-reports');
    out = r.stdout + r.stderr;
    if (r.status !== 0) throw new Error(`meshproof up exited ${r.status}:\n${out.slice(-2000)}`);
    short = /^run \S+ \(([0-9a-f]{4})\) is up on kind/m.exec(out)?.[1] ?? '';
    kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1] ?? '';
  });

  after(() => {
    // a failed test must not leave the cluster: down is idempotent
    if (short && existsSync(stateDirOf(short))) bin('down', '--run', short);
  });

  it('returns with the run up on kind, its pods on the nodes and a kubeconfig on loopback', () => {
    expect(short, out).to.match(/^[0-9a-f]{4}$/);
    expect(kubeconfig, out).to.equal(`${stateDirOf(short)}/kind/kubeconfig.loopback`);
    // the workshop's four Deployments and sleep (fixtures/istio/sentences, every inject annotation removed)
    for (const app of ['sentences', 'age', 'name', 'sleep']) expect(out, app).to.match(new RegExp(`pod default/${app}-\\S+ +10\\.244\\.\\d+\\.\\d+ +node meshproof-${short}-`));
  });

  it('kubectl with that kubeconfig sees sentences Running with its sidecar', () => {
    const r = spawnSync(resolveKube().kubectl, ['--kubeconfig', kubeconfig, 'get', 'pods', '-l', 'app=sentences', '-o', 'jsonpath={.items[*].status.phase} {.items[*].spec.initContainers[*].name} {.items[*].spec.containers[*].name}'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Running /);
    expect(r.stdout).to.include('istio-proxy');
  });

  it('meshproof exec sleep -- curl reaches sentences through the mesh', () => {
    const r = bin('exec', '--run', short, 'sleep', '--', 'curl', '-sS', '--max-time', '10', 'http://sentences:5000/');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/ is \d+ years/);
  });

  it('meshproof ls lists it; down deletes it: no state, engine namespace or process left, host iptables unchanged', () => {
    expect(bin('ls').stdout).to.match(new RegExp(`^${short} `, 'm'));
    const r = bin('down', '--run', short);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(existsSync(stateDirOf(short)), 'state dir').to.equal(false);
    expect(netnsList().filter((n) => n.startsWith(`mp${short}-`)), 'namespaces').to.deep.equal([]);
    expect(processesNaming(`/run/meshproof/${short}/`), 'processes').to.deep.equal([]);
    expect(iptablesSave()).to.equal(iptablesBefore);
  });
});
