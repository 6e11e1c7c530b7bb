// The docker substrate's pure parts: the content hash of image inputs, the rendered Dockerfiles and layer chain,
// dockerd's argv and the engine's layout, the version parsers, and which doctor entries --substrate docker adds.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { checkNames, parseDoctorSubstrates } from '../src/harness/cli/doctor.ts';
import { UserError } from '../src/harness/model/errors.ts';
import { STATE_ROOT } from '../src/harness/substrate/state.ts';
import {
  basePlan, contentHash, debootstrapArgv, fileLayerDockerfile, imageTag, packagesDockerfile, planLayers, podImageOf, sourcesList,
  type PodImageInputs,
} from '../src/harness/substrate/docker/images.ts';
import { dockerdArgv, engineArgv, engineLayout } from '../src/harness/substrate/docker/layout.ts';
import { parseContainerdVersion, parseDebootstrapVersion, parseDockerdVersion, parseRuncVersion } from '../src/harness/substrate/docker/provision.ts';
import { childrenCpuS } from '../src/harness/substrate/docker/cluster.ts';

const MIRROR = 'http://deb.debian.org/debian';
const sha = (c: string) => c.repeat(64);

function inputs(over: { deb?: string; node?: string; envoy137?: string; mirror?: string } = {}): PodImageInputs {
  return {
    base: basePlan(over.mirror ?? MIRROR),
    debs: [
      { name: 'iptables_1.8.9-2_amd64.deb', src: '/c/debs/iptables_1.8.9-2_amd64.deb', sha256: over.deb ?? sha('a') },
      { name: 'haproxy_2.6.12-1+deb12u4_amd64.deb', src: '/c/debs/haproxy_2.6.12-1+deb12u4_amd64.deb', sha256: sha('b') },
    ],
    node: { src: '/usr/bin/node', sha256: over.node ?? sha('c'), version: '20.20.2' },
    envoys: [
      { version: '1.36.4', src: '/c/envoy/1.36.4/envoy', sha256: sha('d') },
      { version: '1.37.0', src: '/c/envoy/1.37.0/envoy', sha256: over.envoy137 ?? sha('e') },
    ],
  };
}

describe('docker images: content hash of the inputs', function () {
  it('is the sha256 of the inputs as canonical JSON: key order does not matter, any value does', function () {
    const expected = createHash('sha256').update('{"a":1,"b":[{"x":"1","y":2}]}').digest('hex');
    expect(contentHash({ b: [{ y: 2, x: '1' }], a: 1 })).to.equal(expected);
    expect(contentHash({ a: 1, b: [{ x: '1', y: 2 }] })).to.equal(expected);
    expect(contentHash({ a: 1, b: [{ x: '1', y: 3 }] })).to.not.equal(expected);
    // array order is content (a package list is sorted before hashing by its caller)
    expect(contentHash([1, 2])).to.not.equal(contentHash([2, 1]));
  });

  it('tags an image with the first 16 hex digits of its hash', function () {
    expect(imageTag('node', '0123456789abcdef0123')).to.equal('meshproof/node:0123456789abcdef');
  });
});

describe('docker images: the base from debootstrap', function () {
  it('debootstraps bookworm minbase from the mirror, with bookworm, its updates and its security archive as sources', function () {
    expect(debootstrapArgv('/tmp/r', MIRROR)).to.deep.equal(['debootstrap', '--variant=minbase', 'bookworm', '/tmp/r', MIRROR]);
    expect(sourcesList(MIRROR)).to.equal([
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
      '',
    ].join('\n'));
  });

  it('has a tag that names its inputs: the same mirror gives the same tag, another mirror another', function () {
    const a = basePlan(MIRROR);
    expect(a.tag).to.match(/^meshproof\/base:[0-9a-f]{16}$/);
    expect(basePlan(MIRROR).tag).to.equal(a.tag);
    expect(basePlan('http://mirror.example/debian').tag).to.not.equal(a.tag);
  });
});

describe('docker images: the layers above the base', function () {
  it('renders the packages layer: the fetched .debs installed by dpkg in one call, offline', function () {
    expect(packagesDockerfile('meshproof/base:1111111111111111')).to.equal([
      'FROM meshproof/base:1111111111111111',
      'COPY debs/ /var/cache/meshproof-debs/',
      'RUN dpkg -i /var/cache/meshproof-debs/*.deb && rm -rf /var/cache/meshproof-debs',
      '',
    ].join('\n'));
  });

  it('renders a file layer: COPY per file, then its labels sorted', function () {
    expect(fileLayerDockerfile('meshproof/node:2222222222222222', [{ name: 'envoy', dest: '/usr/local/bin/envoy' }], { 'z.k': 'v', 'meshproof.envoy-version': '1.36.4' })).to.equal([
      'FROM meshproof/node:2222222222222222',
      'COPY envoy /usr/local/bin/envoy',
      'LABEL meshproof.envoy-version="1.36.4"',
      'LABEL z.k="v"',
      '',
    ].join('\n'));
  });

  it('chains packages → node → one Envoy layer per version, each FROM the tag of the one below', function () {
    const layers = planLayers(inputs());
    expect(layers.map((l) => l.name)).to.deep.equal(['packages', 'node', 'envoy-1.36.4', 'envoy-1.37.0']);
    const [pkgs, node, e1, e2] = layers as [typeof layers[0], typeof layers[0], typeof layers[0], typeof layers[0]];
    expect(pkgs.parent).to.equal(basePlan(MIRROR).tag);
    expect(node.parent).to.equal(pkgs.tag);
    expect([e1.parent, e2.parent]).to.deep.equal([node.tag, node.tag]);
    expect(e1.dockerfile).to.equal(`FROM ${node.tag}\nCOPY envoy /usr/local/bin/envoy\nLABEL meshproof.envoy-version="1.36.4"\n`);
    expect(node.dockerfile).to.equal(`FROM ${pkgs.tag}\nCOPY node /usr/local/bin/node\nLABEL meshproof.node-version="20.20.2"\n`);
    expect(pkgs.context.map((c) => c.name)).to.deep.equal(['debs/iptables_1.8.9-2_amd64.deb', 'debs/haproxy_2.6.12-1+deb12u4_amd64.deb']);
    expect(e2.tag).to.match(/^meshproof\/envoy-1\.37\.0:[0-9a-f]{16}$/);
    expect(podImageOf(layers, '1.36.4')).to.equal(e1.tag);
    expect(podImageOf(layers, '1.38.0')).to.equal(undefined);
  });

  it('the same inputs give the same tags; a changed file rebuilds its layer and every layer above it, nothing below', function () {
    const tags = (i: PodImageInputs) => planLayers(i).map((l) => l.tag);
    const base = tags(inputs());
    expect(tags(inputs())).to.deep.equal(base);
    const deb = tags(inputs({ deb: sha('f') }));
    expect(deb.map((t, k) => t === base[k])).to.deep.equal([false, false, false, false]);
    const node = tags(inputs({ node: sha('f') }));
    expect(node.map((t, k) => t === base[k])).to.deep.equal([true, false, false, false]);
    const envoy = tags(inputs({ envoy137: sha('f') }));
    expect(envoy.map((t, k) => t === base[k])).to.deep.equal([true, true, true, false]);
    const mirror = tags(inputs({ mirror: 'http://mirror.example/debian' }));
    expect(mirror.map((t, k) => t === base[k])).to.deep.equal([false, false, false, false]);
  });
});

describe('docker engine: layout and argv', function () {
  it('keeps socket, exec root and pidfile in the run\'s state dir and names its namespace with the run\'s prefix', function () {
    const l = engineLayout('ab12', '/cache/docker/root');
    const dir = join(STATE_ROOT, 'ab12', 'docker');
    expect(l).to.deep.equal({
      short: 'ab12',
      netns: 'mpab12--docker',
      dir,
      execRoot: join(dir, 'exec'),
      socket: join(dir, 'docker.sock'),
      pidfile: join(dir, 'dockerd.pid'),
      configFile: join(dir, 'daemon.json'),
      recordFile: join(dir, 'engine.json'),
      dataRoot: '/cache/docker/root',
      cgroupParent: 'meshproof-ab12',
    });
  });

  it('starts dockerd with its own roots and config, no default bridge, no masquerading, containers under the run\'s cgroup', function () {
    const l = engineLayout('ab12', '/cache/docker/root');
    const dir = join(STATE_ROOT, 'ab12', 'docker');
    const dockerd = [
      'dockerd',
      '--host', `unix://${dir}/docker.sock`,
      '--data-root', '/cache/docker/root',
      '--exec-root', `${dir}/exec`,
      '--pidfile', `${dir}/dockerd.pid`,
      '--config-file', `${dir}/daemon.json`,
      '--bridge', 'none',
      '--ip-masq=false',
      '--cgroup-parent', '/meshproof-ab12',
      '--log-level', 'warn',
    ];
    expect(dockerdArgv(l)).to.deep.equal(dockerd);
    // run inside `ip netns exec mpab12--docker` by the supervisor, back in the harness's mount namespace
    expect(engineArgv(l, 4242)).to.deep.equal(['nsenter', '--mount=/proc/4242/ns/mnt', '--', ...dockerd]);
  });
});

describe('docker provisioning: versions and doctor entries', function () {
  it('reads the versions of docker.io\'s dockerd, containerd, runc and of debootstrap (Debian 12)', function () {
    expect(parseDockerdVersion('Docker version 20.10.24+dfsg1, build 5d6db84')).to.equal('20.10.24+dfsg1');
    expect(parseDockerdVersion('Docker version 28.2.2, build e6534b4')).to.equal('28.2.2');
    expect(parseContainerdVersion('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3')).to.equal('1.6.20~ds1');
    expect(parseRuncVersion('runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev')).to.equal('1.1.5+ds1');
    expect(parseDebootstrapVersion('debootstrap 1.0.128+nmu2+deb12u2')).to.equal('1.0.128+nmu2+deb12u2');
    expect(parseDockerdVersion('dockerd: command not found')).to.equal(null);
  });

  it('adds the docker entries only for --substrate docker; plain doctor checks what it did before', function () {
    const plain = checkNames('test');
    expect(plain).to.not.include('docker');
    expect(plain).to.not.include('docker images');
    expect(checkNames('test', ['docker'])).to.deep.equal([...plain, 'docker', 'docker images']);
    expect(checkNames('run', ['docker'])).to.deep.equal([...checkNames('run'), 'docker', 'docker images']);
  });

  it('--substrate takes netns, docker and kind (none given: docker too, as npm test uses it); anything else is one line naming the choices', function () {
    // no --substrate: what npm test uses, and its integration tests start the docker engine
    expect(parseDoctorSubstrates(undefined)).to.deep.equal(['docker', 'kind']);
    expect(parseDoctorSubstrates('docker')).to.deep.equal(['docker']);
    expect(parseDoctorSubstrates('netns,docker')).to.deep.equal(['docker']);
    expect(parseDoctorSubstrates('netns')).to.deep.equal([]);
    expect(() => parseDoctorSubstrates('lxd')).to.throw(UserError, '--substrate lxd: choose from netns, docker, kind, e.g. --substrate docker');
    expect(() => parseDoctorSubstrates(',')).to.throw(UserError, '--substrate ,: choose from netns, docker, kind, e.g. --substrate docker');
  });
});

describe('docker cluster: what it reads from a command\'s shell', function () {
  // a POSIX shell's `times`: the shell's user and system time, then its children's; Debian's dash prints six
  // decimals (seen: `sh -c 'sleep 0.2; times'` → `0m0.000000s 0m0.000000s` twice), busybox and bash two or three
  it('adds the children\'s user and system time of `times`, minutes included; the shell\'s own line is not counted', function () {
    expect(childrenCpuS('0m0.01s 0m0.02s\n0m1.50s 1m0.25s\n')).to.be.closeTo(61.75, 1e-9);
    expect(childrenCpuS('0m0.000000s 0m0.000000s\n0m2.125000s 0m0.500000s\n')).to.be.closeTo(2.625, 1e-9);
    expect(childrenCpuS('0m0.00s 0m0.00s\n0m0.00s 0m0.00s\n')).to.equal(0);
  });

  it('reads nothing from a file the command never got to write', function () {
    expect(childrenCpuS('')).to.equal(0);
  });
});
