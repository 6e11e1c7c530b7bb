// The CAP_SYS_RESOURCE runc wrapper of the kind substrate (real-control-planes.md §4), run by sh on sample OCI files
// with a fake "real runc" that prints its argv: no root, no engine, but it spawns, so it lives here.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runcWrapperScript } from '../../src/harness/substrate/kind/versions.ts';

describe('kind substrate: the runc wrapper (run by sh on sample OCI files)', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'mp-kind-wrapper-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const caps = (list: string[]) => `{"ociVersion":"1.0.2","process":{"capabilities":{"bounding":${JSON.stringify(list)},"effective":${JSON.stringify(list)}}}}`;
  /** The wrapper with a fake "real runc" that prints its argv. */
  function wrapper(): string {
    const fake = join(dir, 'real-runc');
    writeFileSync(fake, '#!/bin/sh\necho "real $*"\n');
    chmodSync(fake, 0o755);
    const w = join(dir, 'runc');
    writeFileSync(w, runcWrapperScript(fake));
    chmodSync(w, 0o755);
    return w;
  }

  it('removes CAP_SYS_RESOURCE from the bundle of `create --bundle` wherever it stands in the list, and passes argv on', () => {
    const w = wrapper();
    const bundle = join(dir, 'bundle');
    mkdirSync(bundle);
    writeFileSync(join(bundle, 'config.json'), caps(['CAP_SYS_RESOURCE', 'CAP_NET_ADMIN', 'CAP_SYS_RESOURCE', 'CAP_KILL', 'CAP_SYS_RESOURCE']));
    const r = spawnSync(w, ['--root', '/run/x', 'create', '--bundle', bundle, '--pid-file', '/p', 'id1'], { encoding: 'utf8' });
    expect(r.stdout.trim()).to.equal(`real --root /run/x create --bundle ${bundle} --pid-file /p id1`);
    const got = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { capabilities: Record<string, string[]> } };
    expect(got.process.capabilities.bounding).to.deep.equal(['CAP_NET_ADMIN', 'CAP_KILL']);
    expect(got.process.capabilities.effective).to.deep.equal(['CAP_NET_ADMIN', 'CAP_KILL']);
  });

  it('removes it from the process spec of `exec --process` and leaves a lone capability list empty', () => {
    const w = wrapper();
    const proc = join(dir, 'process.json');
    writeFileSync(proc, JSON.stringify({ capabilities: { bounding: ['CAP_SYS_RESOURCE'] } }));
    const r = spawnSync(w, ['exec', '--process', proc, 'id1'], { encoding: 'utf8' });
    expect(r.status).to.equal(0);
    expect(JSON.parse(readFileSync(proc, 'utf8'))).to.deep.equal({ capabilities: { bounding: [] } });
  });

  it('touches no file for other commands (`state`, `delete`)', () => {
    const w = wrapper();
    writeFileSync(join(dir, 'config.json'), caps(['CAP_SYS_RESOURCE']));
    const r = spawnSync(w, ['delete', 'id1'], { encoding: 'utf8', cwd: dir });
    expect(r.stdout.trim()).to.equal('real delete id1');
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).to.include('CAP_SYS_RESOURCE');
  });
});
