// `meshproof run` on istiod as a real process: the Istio suites of the run share one control plane, which the run
// stops when its suites are done, so the process exits by itself (it once hung after writing its reports: the suites'
// copy of the shared-control-plane registry was not the one `meshproof run` emptied) and leaves no namespace behind.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsPrefix } from '../../src/harness/substrate/state.ts';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

describe('run --control-plane istiod (two suites, one control plane)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshproof-run-istiod-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reuses the control plane for the second suite, exits 0 by itself and leaves none of its namespaces', function () {
    this.timeout(300_000);
    const out = join(dir, 'out');
    const r = spawnSync(process.execPath, ['bin/meshproof.js', 'run', '--control-plane', 'istiod', '--suite', 'istio-permissive-fallback,istio-strict-denial', '--out', out], { cwd: REPO, encoding: 'utf8', timeout: 280_000, killSignal: 'SIGTERM' });
    const log = `${r.stdout}\n${r.stderr}`;
    expect(r.signal, `killed after 280 s: the run did not exit by itself\n${log.slice(-2000)}`).to.equal(null);
    expect(r.status, log.slice(-2000)).to.equal(0);
    expect(log.match(/kube-apiserver ready in/g) ?? [], 'one API server for both suites').to.have.length(1);
    expect(log).to.match(/the run's control plane reused; mesh ready/);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { records: { suite: string; controlPlane: string }[] };
    expect(new Set(results.records.map((x) => x.suite))).to.have.length(2);
    expect(results.records.every((x) => x.controlPlane === 'istiod')).to.equal(true);
    const runIds = [...log.matchAll(/netns: run (\S+) up/g)].map((m) => m[1]!.slice(-4));
    expect(runIds).to.have.length(1);
    const prefix = netnsPrefix(runIds[0]!);
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix));
    expect(left, `namespaces of run ${runIds[0]} left`).to.deep.equal([]);
  });
});
