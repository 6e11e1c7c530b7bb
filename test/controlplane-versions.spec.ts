// Control-plane provisioning: the version table rendered into wrapper go.mod files and go build argv (compared with
// hand-written text from ../shared/reference/real-control-planes.md §1–§2), the version-line parsers on real outputs,
// and the spawn-free presence test / overrides against temp files. No Go build and no network here.

import { expect } from 'chai';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import {
  checkIstio, istioPaths, kubePaths, pseudoVersionTime, refusedInfo, resolveIstio, resolveKube, verifyIstioOverrides,
  verifyKubeOverrides,
} from '../src/harness/controlplane/provision.ts';
import {
  DEFAULT_ISTIO_VERSION, ISTIO_BINARIES, ISTIO_VERSIONS, KUBE_BINARIES, assertIstioVersion, expectedDurationLine,
  formatElapsed, goBuildArgs, goVersionAtLeast, istioLdflags, istioWrapper, kubeLdflags, kubeWrapper, parseEtcdVersion,
  parseGoModGoLine, parseGoVersion, parseIstioBinaryVersion, parseIstioVersions, parseKubeVersion, renderGoMod,
} from '../src/harness/controlplane/versions.ts';
import { thrownUserError as userError } from './lib/user-error.ts';


async function rejectsUserError(p: Promise<unknown>): Promise<UserError> {
  const caught = await p.then(() => null, (err: unknown) => err);
  expect(caught).to.be.instanceOf(UserError);
  return caught as UserError;
}

describe('controlplane: wrapper modules rendered from the version table', () => {
  it('renders the Istio 1.28.2 wrapper go.mod (pseudo-version and three replaces, §1)', () => {
    expect(renderGoMod(istioWrapper(assertIstioVersion('1.28.2')))).to.equal(
      'module meshproof.local/build/istio\n'
      + '\n'
      + 'go 1.24.0\n'
      + '\n'
      + 'require istio.io/istio v0.0.0-20251217200826-ab413ac6c1f4\n'
      + '\n'
      + 'replace (\n'
      + '\tgithub.com/envoyproxy/go-control-plane => github.com/envoyproxy/go-control-plane v0.13.4\n'
      + '\tistio.io/api => istio.io/api v1.28.2\n'
      + '\tistio.io/client-go => istio.io/client-go v1.28.2\n'
      + ')\n');
  });

  it('renders the Istio 1.29.2 wrapper go.mod (two replaces, §1)', () => {
    expect(renderGoMod(istioWrapper(assertIstioVersion('1.29.2')))).to.equal(
      'module meshproof.local/build/istio\n\ngo 1.24.0\n\n'
      + 'require istio.io/istio v0.0.0-20260409200358-0c774325b938\n\n'
      + 'replace (\n'
      + '\tistio.io/api => istio.io/api v1.29.2\n'
      + '\tistio.io/client-go => istio.io/client-go v1.29.2\n'
      + ')\n');
  });

  it('renders the Kubernetes v1.34.4 wrapper go.mod with all 31 staging modules at v0.34.4 (§2)', () => {
    const staging = [
      'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider',
      'cluster-bootstrap', 'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api',
      'cri-client', 'csi-translation-lib', 'dynamic-resource-allocation', 'endpointslice', 'externaljwt', 'kms',
      'kube-aggregator', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubectl', 'kubelet', 'metrics',
      'mount-utils', 'pod-security-admission', 'sample-apiserver', 'sample-cli-plugin', 'sample-controller',
    ];
    expect(staging).to.have.length(31);
    const text = renderGoMod(kubeWrapper());
    expect(text).to.equal(
      'module meshproof.local/build/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes v1.34.4\n\nreplace (\n'
      + staging.map((m) => `\tk8s.io/${m} => k8s.io/${m} v0.34.4\n`).join('')
      + ')\n');
    expect(text.split('\n').filter((l) => l.startsWith('\tk8s.io/'))).to.have.length(31);
  });

  it('builds with the exact flags of the earlier builds (so Go\'s build cache hits)', () => {
    expect(goBuildArgs(istioLdflags('1.28.2'), '/c/istio/1.28.2/bin/pilot-discovery', 'istio.io/istio/pilot/cmd/pilot-discovery'))
      .to.deep.equal(['build', '-trimpath', '-ldflags', '-s -w -X istio.io/istio/pkg/version.buildVersion=1.28.2',
        '-o', '/c/istio/1.28.2/bin/pilot-discovery', 'istio.io/istio/pilot/cmd/pilot-discovery']);
    expect(kubeLdflags()).to.equal('-s -w -X k8s.io/component-base/version.gitVersion=v1.34.4'
      + ' -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34');
    expect(ISTIO_BINARIES.map((b) => `istio.io/istio/${b.pkg}`)).to.deep.equal([
      'istio.io/istio/pilot/cmd/pilot-discovery', 'istio.io/istio/pilot/cmd/pilot-agent', 'istio.io/istio/istioctl/cmd/istioctl',
    ]);
    expect(KUBE_BINARIES.map((b) => `k8s.io/kubernetes/${b.pkg}`)).to.deep.equal([
      'k8s.io/kubernetes/cmd/kube-apiserver', 'k8s.io/kubernetes/cmd/kube-controller-manager', 'k8s.io/kubernetes/cmd/kubectl',
    ]);
  });

  it('pairs each Istio version with the Envoy line the reference ran it against (§1: 1.28.2 on 1.36.4, 1.29.2 targets 1.37)', () => {
    const paired: Record<string, RegExp> = { '1.28.2': /^1\.36\.4$/, '1.29.2': /^1\.37\.\d+$/ };
    expect(Object.keys(ISTIO_VERSIONS)).to.deep.equal(Object.keys(paired));
    for (const [v, re] of Object.entries(paired)) expect(ISTIO_VERSIONS[v]!.envoyVersion, v).to.match(re);
    expect(ISTIO_VERSIONS[DEFAULT_ISTIO_VERSION]!.version).to.equal('1.28.2');
  });

  it('says the expected duration before a cold build', () => {
    expect(expectedDurationLine('build istio 1.28.2 from Go modules', ISTIO_BINARIES)).to.equal(
      'build istio 1.28.2 from Go modules: pilot-discovery ~15 min cold, pilot-agent ~1 min after it, istioctl ~2 min'
      + ' (less with a warm Go build cache)');
    expect(expectedDurationLine('build kubernetes v1.34.4 from Go modules', KUBE_BINARIES)).to.equal(
      'build kubernetes v1.34.4 from Go modules: kube-apiserver ~15 min cold, kube-controller-manager ~3 min after it,'
      + ' kubectl ~3 min after it (less with a warm Go build cache)');
    expect([formatElapsed(270_000), formatElapsed(42_400), formatElapsed(3_605_000), formatElapsed(0)])
      .to.deep.equal(['4m30s', '42s', '60m05s', '0s']);
  });
});

describe('controlplane: Istio versions asked for', () => {
  it('rejects an unknown version with one line listing the supported ones, exit 2', () => {
    for (const bad of ['1.27.9', '1.28', 'v1.28.2', '', 'constructor', 'toString']) {
      const err = userError(() => assertIstioVersion(bad));
      expect(err.message).to.equal(`unknown Istio version ${JSON.stringify(bad)}: supported are 1.28.2, 1.29.2 (--istio-version)`);
      expect(err.exitCode).to.equal(EXIT.usage);
    }
  });

  it('parses a --istio-version list, dropping repeats, and rejects one bad entry', () => {
    expect(parseIstioVersions('1.28.2,1.29.2,1.28.2')).to.deep.equal(['1.28.2', '1.29.2']);
    expect(parseIstioVersions(' 1.29.2 ')).to.deep.equal(['1.29.2']);
    expect(userError(() => parseIstioVersions('1.28.2,1.30.0')).message).to.match(/^unknown Istio version "1\.30\.0"/);
  });
});

describe('controlplane: version lines', () => {
  it('reads the Go version and compares it numerically with a module\'s go line', () => {
    expect(parseGoVersion('go version go1.26.8 linux/amd64\n')).to.equal('1.26.8');
    expect(parseGoVersion('go version go1.24 linux/arm64')).to.equal('1.24');
    expect(parseGoVersion('go version go1.25rc1 linux/amd64')).to.equal('1.25');
    expect(parseGoVersion('bash: go: command not found')).to.equal(null);
    expect(parseGoModGoLine('module istio.io/istio\n\ngo 1.24.0\n\nrequire (\n')).to.equal('1.24.0');
    expect(parseGoModGoLine('module x\n\ngo 1.22\ntoolchain go1.22.5\n')).to.equal('1.22');
    expect(parseGoModGoLine('module x\n')).to.equal(null);
    const cases: [string, string, boolean][] = [
      ['1.26.8', '1.24.0', true], ['1.24.0', '1.24.0', true], ['1.24', '1.24.0', true], ['1.24.0', '1.24', true],
      ['1.23.12', '1.24.0', false], ['1.24.0', '1.24.1', false], ['1.100.0', '1.24.0', true], ['1.9', '1.24', false],
    ];
    for (const [have, need, ok] of cases) expect(goVersionAtLeast(have, need), `${have} >= ${need}`).to.equal(ok);
  });

  it('reads the versions pilot-discovery, pilot-agent, kube-apiserver and etcd print', () => {
    expect(parseIstioBinaryVersion('client version: 1.28.2\n')).to.equal('1.28.2');
    expect(parseIstioBinaryVersion('client version: unknown\n')).to.equal('unknown');
    expect(parseIstioBinaryVersion('Error: unknown shorthand flag: \'s\' in -s\n')).to.equal(null);
    expect(parseKubeVersion('Kubernetes v1.34.4\n')).to.equal('v1.34.4');
    expect(parseKubeVersion('Kubernetes v0.0.0-master+$Format:%H$\n')).to.equal('v0.0.0-master+$Format:%H$');
    expect(parseKubeVersion('kube-apiserver: command not found')).to.equal(null);
    expect(parseEtcdVersion('etcd Version: 3.5.1\nGit SHA: e8732fb5f\nGo Version: go1.16.3\nGo OS/Arch: linux/amd64\n')).to.equal('3.5.1');
  });
});

describe('controlplane: presence and overrides (temp cache, no builds)', () => {
  const saved = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME, ISTIOD_BIN: process.env.ISTIOD_BIN, PILOT_AGENT_BIN: process.env.PILOT_AGENT_BIN, KUBE_APISERVER_BIN: process.env.KUBE_APISERVER_BIN };
  let tmp = '';

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'mp-controlplane-'));
    process.env.XDG_CACHE_HOME = join(tmp, 'cache');
    for (const k of ['ISTIOD_BIN', 'PILOT_AGENT_BIN', 'KUBE_APISERVER_BIN']) delete process.env[k];
  });
  afterEach(() => {
    rmSync(tmp, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  function script(name: string, out: string): string {
    const file = join(tmp, name);
    writeFileSync(file, `#!/bin/sh\nprintf '%s\\n' '${out}'\n`);
    chmodSync(file, 0o755);
    return file;
  }

  /** A cached binary plus the provenance entry a 1.28.2 build writes for it (hand-written). */
  function fakeIstioBuild(names: string[]): void {
    const p = istioPaths('1.28.2');
    const files: Record<string, string> = {
      'pilot-discovery': p.pilotDiscovery, 'pilot-agent': p.pilotAgent, istioctl: p.istioctl, 'envoy_bootstrap_tmpl.json': p.bootstrapTemplate,
    };
    const replaces = [
      'istio.io/api => istio.io/api v1.28.2', 'istio.io/client-go => istio.io/client-go v1.28.2',
      'github.com/envoyproxy/go-control-plane => github.com/envoyproxy/go-control-plane v0.13.4',
    ];
    const records = names.map((name) => {
      const path = files[name]!;
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, `fake ${name}\n`, { mode: 0o755 });
      const st = statSync(path);
      return {
        tool: 'istio', toolVersion: '1.28.2', name, path, origin: 'go build', module: 'istio.io/istio',
        moduleVersion: 'v0.0.0-20251217200826-ab413ac6c1f4', replaces,
        goVersion: 'go1.26.8', ldflags: name.endsWith('.json') ? null : '-s -w -X istio.io/istio/pkg/version.buildVersion=1.28.2',
        sha256: '0'.repeat(64), size: st.size, mtimeMs: st.mtimeMs, builtAt: '2026-01-01T00:00:00.000Z', buildSeconds: 1,
      };
    });
    writeFileSync(p.provenance, JSON.stringify({ schemaVersion: 1, tool: 'istio', version: '1.28.2', records }));
  }

  it('keeps each tool under $XDG_CACHE_HOME/meshproof/<tool>/<version>', () => {
    const c = join(tmp, 'cache', 'meshproof');
    expect(istioPaths('1.29.2')).to.include({
      dir: join(c, 'istio', '1.29.2'), pilotDiscovery: join(c, 'istio', '1.29.2', 'bin', 'pilot-discovery'),
      pilotAgent: join(c, 'istio', '1.29.2', 'bin', 'pilot-agent'), istioctl: join(c, 'istio', '1.29.2', 'bin', 'istioctl'),
      bootstrapTemplate: join(c, 'istio', '1.29.2', 'envoy_bootstrap_tmpl.json'), buildDir: join(c, 'build', 'istio-1.29.2'),
    });
    expect(kubePaths()).to.include({
      dir: join(c, 'kubernetes', 'v1.34.4'), kubeApiserver: join(c, 'kubernetes', 'v1.34.4', 'bin', 'kube-apiserver'),
      kubeControllerManager: join(c, 'kubernetes', 'v1.34.4', 'bin', 'kube-controller-manager'), etcd: join(c, 'etcd', '3.5.1', 'etcd'),
      kubectl: join(c, 'kubernetes', 'v1.34.4', 'bin', 'kubectl'),
    });
    expect(() => istioPaths('1.2.3')).to.throw(UserError, /^unknown Istio version/);
  });

  it('resolves nothing from an empty cache and names the doctor --fix command', () => {
    expect(userError(() => resolveIstio('1.29.2')).message)
      .to.equal('istio 1.29.2 pilot-discovery not built: run meshproof doctor --fix --istio-version 1.29.2');
    expect(userError(() => resolveKube()).message).to.equal('kubernetes v1.34.4 kube-apiserver not built: run meshproof doctor --fix');
  });

  it('resolves binaries whose provenance matches, and refuses one without provenance or changed since', () => {
    fakeIstioBuild(['pilot-discovery', 'pilot-agent', 'istioctl', 'envoy_bootstrap_tmpl.json']);
    const p = istioPaths('1.28.2');
    expect(resolveIstio('1.28.2')).to.deep.equal({
      version: '1.28.2', pilotDiscovery: p.pilotDiscovery, pilotAgent: p.pilotAgent, istioctl: p.istioctl,
      bootstrapTemplate: p.bootstrapTemplate, overrides: [],
    });
    utimesSync(p.istioctl, new Date(), new Date(Date.now() - 3_600_000));
    expect(userError(() => resolveIstio('1.28.2')).message).to.equal(
      'istio 1.28.2 istioctl changed since it was built (size or mtime differ from provenance.json): run meshproof doctor --fix --istio-version 1.28.2');
    fakeIstioBuild(['pilot-discovery', 'pilot-agent', 'envoy_bootstrap_tmpl.json']);
    expect(userError(() => resolveIstio('1.28.2')).message).to.match(/^istio 1\.28\.2 istioctl present without provenance \(a rebuild links it/);
  });

  it('refuses a binary built for another module version than the table says', () => {
    fakeIstioBuild(['pilot-discovery', 'pilot-agent', 'istioctl', 'envoy_bootstrap_tmpl.json']);
    // The same files, looked up as 1.29.2's: its table row asks for another pseudo-version.
    const p = istioPaths('1.29.2');
    mkdirSync(p.dir, { recursive: true });
    const from = istioPaths('1.28.2');
    writeFileSync(p.provenance, JSON.stringify({
      schemaVersion: 1, tool: 'istio', version: '1.29.2',
      records: [{ name: 'pilot-discovery', path: p.pilotDiscovery, module: 'istio.io/istio', moduleVersion: 'v0.0.0-20251217200826-ab413ac6c1f4', ldflags: '-s -w -X istio.io/istio/pkg/version.buildVersion=1.29.2', replaces: [], size: 0, mtimeMs: 0 }],
    }));
    mkdirSync(join(p.pilotDiscovery, '..'), { recursive: true });
    writeFileSync(p.pilotDiscovery, `copied from ${from.pilotDiscovery}\n`);
    expect(userError(() => resolveIstio('1.29.2')).message).to.equal('istio 1.29.2 pilot-discovery built from '
      + 'istio.io/istio@v0.0.0-20251217200826-ab413ac6c1f4, not the table\'s istio.io/istio@v0.0.0-20260409200358-0c774325b938: '
      + 'run meshproof doctor --fix --istio-version 1.29.2');
  });

  it('honours ISTIOD_BIN/PILOT_AGENT_BIN/KUBE_APISERVER_BIN, and refuses a version other than the one asked for (exit 2)', async () => {
    fakeIstioBuild(['istioctl', 'envoy_bootstrap_tmpl.json']);
    process.env.ISTIOD_BIN = script('pd', 'client version: 1.28.2');
    process.env.PILOT_AGENT_BIN = script('pa', 'client version: 1.29.2');
    const r = resolveIstio('1.28.2');
    expect([r.pilotDiscovery, r.pilotAgent, r.overrides]).to.deep.equal([process.env.ISTIOD_BIN, process.env.PILOT_AGENT_BIN, ['ISTIOD_BIN', 'PILOT_AGENT_BIN']]);
    const err = await rejectsUserError(verifyIstioOverrides('1.28.2'));
    expect(err.message).to.equal(`PILOT_AGENT_BIN=${process.env.PILOT_AGENT_BIN} is pilot-agent 1.29.2, not the requested 1.28.2: point PILOT_AGENT_BIN at a 1.28.2 build or unset it`);
    expect(err.exitCode).to.equal(EXIT.usage);
    const checks = await checkIstio('1.28.2');
    expect(checks.map((c) => [c.name, c.ok, c.version ?? null])).to.deep.equal([
      ['pilot-discovery', true, '1.28.2'], ['pilot-agent', false, null], ['istioctl', true, '1.28.2'], ['envoy_bootstrap_tmpl.json', true, '1.28.2'],
    ]);
    expect(checks[1]!.fix).to.equal('point PILOT_AGENT_BIN at a 1.28.2 build or unset it');

    process.env.KUBE_APISERVER_BIN = script('api', 'Kubernetes v1.33.1');
    expect((await rejectsUserError(verifyKubeOverrides())).message).to.equal(
      `KUBE_APISERVER_BIN=${process.env.KUBE_APISERVER_BIN} is kube-apiserver v1.33.1, not the requested v1.34.4: point KUBE_APISERVER_BIN at a v1.34.4 build or unset it`);
    process.env.KUBE_APISERVER_BIN = join(tmp, 'nope');
    expect(userError(() => resolveKube()).message).to.equal(`KUBE_APISERVER_BIN="${join(tmp, 'nope')}" is not an executable file: point it at a kube-apiserver binary or unset it`);
  });

  it('says a missing piece is not built, with the fix, in doctor\'s Check shape', async () => {
    const checks = await checkIstio('1.29.2');
    expect(checks).to.deep.equal(['pilot-discovery', 'pilot-agent', 'istioctl', 'envoy_bootstrap_tmpl.json'].map((name) => ({
      name, ok: false, detail: '1.29.2 not built', fix: 'run meshproof doctor --fix --istio-version 1.29.2',
    })));
  });
});

describe('controlplane: a release whose .info the Go proxy refuses', () => {
  it("knows go's refusal of a version's .info from its other errors", () => {
    // go mod download -json's Error for istio 1.29.2 on 2026-12-01 (build-mod-download.log)
    expect(refusedInfo('istio.io/istio@v0.0.0-20260409200358-0c774325b938: reading https://proxy.golang.org/istio.io/istio/@v/v0.0.0-20260409200358-0c774325b938.info: 403 Forbidden\n\tserver response: This module version is not available.')).to.equal(true);
    expect(refusedInfo('istio.io/istio@v0.0.0-20260409200358-0c774325b938: reading https://proxy.golang.org/istio.io/istio/@v/v0.0.0-20260409200358-0c774325b938.zip: 403 Forbidden')).to.equal(false);
    expect(refusedInfo('dial tcp: lookup proxy.golang.org: no such host')).to.equal(false);
  });

  it("reads the commit time out of a pseudo-version, and nothing out of a tag", () => {
    expect(pseudoVersionTime('v0.0.0-20260409200358-0c774325b938')).to.equal('2026-04-09T20:03:58Z');
    expect(pseudoVersionTime('v1.29.2')).to.equal(null);
  });
});
