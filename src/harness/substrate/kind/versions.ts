// What the kind substrate provisions, and the pure rendering of how: the Go modules of kind, crictl, coredns and etcd,
// the Kubernetes node binaries, the node image's Debian packages, the images kubeadm names, the node's containerd
// config, the runc wrapper and the node image's Dockerfile. No I/O here (provision.ts and node-image.ts do it).
// Source of every row: ../shared/reference/real-control-planes.md §4 (kind, fully offline).

import type { GoBinary, GoReplace } from '../../controlplane/versions.ts';
import { KUBERNETES, kubeLdflags, kubeWrapper } from '../../controlplane/versions.ts';

/** A tool built from one Go module through a wrapper module (controlplane/provision.ts prepareWrapper, goBuildAll). */
export interface KindGoTool {
  /** The cache directory `~/.cache/meshproof/<dir>/<version>/` (etcd and kubernetes are the control plane's: not reused). */
  dir: string;
  /** What provenance.json calls the tool. */
  tool: 'kind' | 'crictl' | 'coredns' | 'etcd' | 'kubernetes-node' | 'registry';
  version: string;
  /** The wrapper module's `go` line when the module needs a newer one than 1.24.0 (a lower one than a dependency's is refused). */
  go?: string;
  module: string;
  moduleVersion: string;
  binaries: readonly GoBinary[];
  ldflags: string;
  replaces: readonly GoReplace[];
}

export const KIND_VERSION = 'v0.30.0';
/** kubeadm v1.34.4's DefaultEtcdVersion is 3.6.5-0; §4 ran that image with an etcd 3.6.8 binary. */
export const ETCD_SERVER_VERSION = 'v3.6.8';
/** distribution's `registry`: the image registry an existing cluster pulls meshproof's images from (issue 14's --image-registry). */
export const REGISTRY_VERSION = 'v3.1.2';
/** distribution's module path and version package (its Makefile's GO_LDFLAGS: `-X $(PKG)/version.version=$(VERSION)`). */
const DISTRIBUTION = 'github.com/distribution/distribution/v3';

/** Built in this order: the small ones first, so a slow coredns or etcd does not hold them up. §4 times, warm module cache. */
export const KIND_GO_TOOLS: readonly KindGoTool[] = [
  {
    dir: 'kind', tool: 'kind', version: KIND_VERSION, module: 'sigs.k8s.io/kind', moduleVersion: KIND_VERSION,
    binaries: [{ name: 'kind', pkg: '', expected: '~30 s cold' }], ldflags: '-s -w', replaces: [],
  },
  {
    // `github.com/kubernetes-sigs/cri-tools` is refused by the proxy; the vanity path is served (§4)
    dir: 'crictl', tool: 'crictl', version: 'v1.34.0', module: 'sigs.k8s.io/cri-tools', moduleVersion: 'v1.34.0',
    binaries: [{ name: 'crictl', pkg: 'cmd/crictl', expected: '~2 min cold' }],
    // cri-tools' Makefile sets the version this way (else `crictl --version` says 0.1.0)
    ldflags: '-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v1.34.0', replaces: [],
  },
  {
    dir: 'kubernetes-node', tool: 'kubernetes-node', version: KUBERNETES.version, module: KUBERNETES.module, moduleVersion: KUBERNETES.version,
    // they reuse kube-apiserver's compiled packages from Go's build cache (same wrapper module, same flags)
    binaries: [
      { name: 'kubeadm', pkg: 'cmd/kubeadm', expected: '~3 min with kube-apiserver in the Go build cache' },
      { name: 'kubelet', pkg: 'cmd/kubelet', expected: '~3 min after it' },
      { name: 'kube-scheduler', pkg: 'cmd/kube-scheduler', expected: '~1 min after it' },
      { name: 'kube-proxy', pkg: 'cmd/kube-proxy', expected: '~1 min after it' },
    ],
    // the control plane's wrapper module and ldflags, exactly: Go's build cache hits only on the same inputs
    ldflags: kubeLdflags(),
    replaces: kubeWrapper().replaces,
  },
  {
    // the main package is the module root (server/main.go); server's own replaces (../api …) do not apply to a dependency
    dir: 'etcd-server', tool: 'etcd', version: ETCD_SERVER_VERSION, module: 'go.etcd.io/etcd/server/v3', moduleVersion: ETCD_SERVER_VERSION,
    binaries: [{ name: 'etcd', pkg: '', expected: '~5 min cold' }], ldflags: '-s -w', replaces: [],
  },
  {
    dir: 'coredns', tool: 'coredns', version: 'v1.12.1', module: 'github.com/coredns/coredns', moduleVersion: 'v1.12.1',
    binaries: [{ name: 'coredns', pkg: '', expected: '~5 min cold' }], ldflags: '-s -w', replaces: [],
  },
  {
    // its go.mod says `go 1.26.0`; the Makefile's ldflags without the git revision (a module zip has none)
    dir: 'registry', tool: 'registry', version: REGISTRY_VERSION, module: DISTRIBUTION, moduleVersion: REGISTRY_VERSION, go: '1.26.0',
    binaries: [{ name: 'registry', pkg: 'cmd/registry', expected: '~3 min cold' }],
    ldflags: `-s -w -X ${DISTRIBUTION}/version.version=${REGISTRY_VERSION} -X ${DISTRIBUTION}/version.mainpkg=${DISTRIBUTION}`, replaces: [],
  },
];

/** §4: installed into the bookworm rootfs (containerd 1.6.20, runc 1.1.5, systemd 252, CNI plugins 1.1.1). `systemd` first: it is the package whose .deb proves the fetch. */
export const KIND_NODE_PACKAGES = [
  'systemd', 'containerd', 'runc', 'iptables', 'iproute2', 'ethtool', 'socat', 'conntrack', 'util-linux', 'mount',
  'ca-certificates', 'kmod', 'containernetworking-plugins',
] as const;

/** How one image `kubeadm config images list` names is built: the static binary where kubeadm's manifests call it. */
export interface KubeadmImage {
  /** `registry.k8s.io/kube-apiserver:v1.34.4`. */
  ref: string;
  /** The cached binary it carries (a KIND_GO_TOOLS / control-plane binary name, or `pause`). */
  binary: string;
  /** Where in the image. */
  path: string;
  /** ENTRYPOINT, when the manifest runs the image's own (coredns: `args` only; pause: the sandbox). */
  entrypoint?: string[];
  /** kube-proxy runs iptables-restore with xtables extensions (libm for libxt_statistic.so, §4): Debian's iptables under it. */
  withIptables?: boolean;
}

const K = KUBERNETES.version;
/** `kubeadm config images list --kubernetes-version v1.34.4` (kubeadm constants.go: etcd 3.6.5-0, pause 3.10.1, CoreDNS v1.12.1). */
export const KUBEADM_IMAGES: readonly KubeadmImage[] = [
  { ref: `registry.k8s.io/kube-apiserver:${K}`, binary: 'kube-apiserver', path: '/usr/local/bin/kube-apiserver' },
  { ref: `registry.k8s.io/kube-controller-manager:${K}`, binary: 'kube-controller-manager', path: '/usr/local/bin/kube-controller-manager' },
  { ref: `registry.k8s.io/kube-scheduler:${K}`, binary: 'kube-scheduler', path: '/usr/local/bin/kube-scheduler' },
  { ref: `registry.k8s.io/kube-proxy:${K}`, binary: 'kube-proxy', path: '/usr/local/bin/kube-proxy', withIptables: true },
  { ref: 'registry.k8s.io/coredns/coredns:v1.12.1', binary: 'coredns', path: '/coredns', entrypoint: ['/coredns'] },
  { ref: 'registry.k8s.io/pause:3.10.1', binary: 'pause', path: '/pause', entrypoint: ['/pause'] },
  { ref: 'registry.k8s.io/etcd:3.6.5-0', binary: 'etcd', path: '/usr/local/bin/etcd' },
];

/** The sandbox image containerd's CRI runs (kubeadm's PauseVersion). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';

/** kubeadm's list, one reference a line → the references (blank lines and whitespace dropped). */
export function parseImagesList(out: string): string[] {
  return out.split('\n').map((l) => l.trim()).filter((l) => /^[\w.-]+(?::\d+)?\/[\w./-]+:[\w.-]+$/.test(l));
}

/** The references kubeadm names that the table does not build, and those the table builds that kubeadm does not name. */
export function diffImages(kubeadm: readonly string[], table: readonly KubeadmImage[] = KUBEADM_IMAGES): { unbuilt: string[]; extra: string[] } {
  const ours = new Set(table.map((i) => i.ref));
  const theirs = new Set(kubeadm);
  return { unbuilt: kubeadm.filter((r) => !ours.has(r)), extra: table.map((i) => i.ref).filter((r) => !theirs.has(r)) };
}

/** capability(7): CAP_SYS_RESOURCE is bit 24. */
export const CAP_SYS_RESOURCE = 24;

/** `CapBnd:\t000001fffeffffff` of /proc/self/status → whether CAP_SYS_RESOURCE is in the bounding set; null when absent. */
export function hasCapSysResource(status: string): boolean | null {
  const hex = /^CapBnd:\s*([0-9a-f]+)\s*$/im.exec(status)?.[1];
  if (!hex) return null;
  return ((BigInt(`0x${hex}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n;
}

/**
 * The runc wrapper (§4): kind runs its nodes `--privileged`, whose capability sets include CAP_SYS_RESOURCE, which a
 * host without it in its bounding set cannot grant ("unable to apply caps: operation not permitted"). It deletes the
 * capability from the bundle's config.json (create/run) and from the process spec of `runc exec --process`, then
 * execs the real runc. Docker and containerd write those files as compact JSON (Go's json.Marshal), so sed suffices.
 */
export function runcWrapperScript(realRunc: string): string {
  return `#!/bin/sh
# meshproof: runc without CAP_SYS_RESOURCE, which this host's capability bounding set lacks
# (../shared/reference/real-control-planes.md §4). Generated by meshproof doctor --fix --substrate kind.
strip() { [ -f "$1" ] && sed -i -e 's/,"CAP_SYS_RESOURCE"//g' -e 's/"CAP_SYS_RESOURCE",//g' -e 's/"CAP_SYS_RESOURCE"//g' "$1"; }
bundle=.
cmd=
prev=
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle=$a ;;
    --process|-p) strip "$a" ;;
  esac
  case "$a" in
    --bundle=*) bundle=\${a#--bundle=} ;;
    --process=*) strip "\${a#--process=}" ;;
    create|run) [ -z "$cmd" ] && cmd=$a ;;
  esac
  prev=$a
done
[ -n "$cmd" ] && strip "$bundle/config.json"
exec ${realRunc} "$@"
`;
}

/** Where the wrapper goes in the node image: before /usr/sbin on PATH, where kind's own base image puts runc. */
export const NODE_RUNC_WRAPPER = '/usr/local/sbin/runc';

/**
 * kind v0.30's images/base/files/etc/containerd/config.toml, as §4 ran it with Debian's containerd 1.6.20: no
 * fuse-overlayfs proxy snapshotter (rootless only) and no base_runtime_spec (kind's cri-base.json is generated by its
 * own ctr build), SystemdCgroup, the sandbox image kubeadm names, and restrict_oom_score_adj (no CAP_SYS_RESOURCE).
 */
export function containerdConfig(): string {
  return `# kind v0.30.0 images/base/files/etc/containerd/config.toml, offline (meshproof; real-control-planes.md §4)
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
`;
}

/**
 * The node's Debian layer: dpkg installs the fetched closure with no network, in two passes where one is refused
 * (systemd pre-depends on libssl3, which the first pass unpacks but configures only after; the second installs it).
 */
export function kindPackagesDockerfile(base: string): string {
  const debs = '/var/cache/meshproof-debs';
  return [`FROM ${base}`, `COPY debs/ ${debs}/`, `RUN dpkg -i ${debs}/*.deb || dpkg -i ${debs}/*.deb && rm -rf ${debs}`, ''].join('\n');
}

/** A file of the node image's build context: its name there, its mode, and where the Dockerfile copies it. */
export interface NodeFile { name: string; dest: string; mode: number }

/**
 * The node image's layer on top of the Debian packages, after kind's images/base/Dockerfile: its files, the
 * binaries, the systemd setup (units enabled/masked, the wants kind removes), and kind's ENTRYPOINT and STOPSIGNAL.
 * Docker 20.10's builder has no `COPY --chmod`: modes come from the context.
 */
export function nodeDockerfile(parent: string, files: readonly NodeFile[], labels: Record<string, string> = {}): string {
  const lines = [`FROM ${parent}`, 'COPY base/ /', ...files.map((f) => `COPY ${f.name} ${f.dest}`)];
  lines.push([
    'RUN find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete',
    'rm -f /lib/systemd/system/multi-user.target.wants/*',
    'rm -f /etc/systemd/system/*.wants/*',
    'rm -f /lib/systemd/system/local-fs.target.wants/*',
    'rm -f /lib/systemd/system/sockets.target.wants/*udev*',
    'rm -f /lib/systemd/system/sockets.target.wants/*initctl*',
    'rm -f /lib/systemd/system/basic.target.wants/*',
    'echo "ReadKMsg=no" >> /etc/systemd/journald.conf',
    'ln -sf /lib/systemd/systemd /sbin/init',
    // kind's containerd.service runs /usr/local/bin/containerd; Debian's is /usr/bin/containerd
    'ln -sf /usr/bin/containerd /usr/local/bin/containerd',
    // Debian's CNI plugins live in /usr/lib/cni; kubelet and containerd look in /opt/cni/bin
    'mkdir -p /opt/cni /etc/cni/net.d && ln -sfn /usr/lib/cni /opt/cni/bin',
    'systemctl enable kubelet.service containerd.service undo-mount-hacks.service',
    'systemctl mask systemd-binfmt.service',
    'mkdir -p /etc/kubernetes/manifests',
  ].join(' \\\n    && '));
  for (const [k, v] of Object.entries(labels).sort()) lines.push(`LABEL ${k}=${JSON.stringify(v)}`);
  lines.push('ENV container=docker', 'STOPSIGNAL SIGRTMIN+3', 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]', '');
  return lines.join('\n');
}

/** What runs in the preload container: containerd alone (no systemd), then kind's own import command for each tarball. */
export function preloadScript(dir: string): string {
  return [
    'set -e',
    'containerd >/tmp/containerd.log 2>&1 &',
    'pid=$!',
    'i=0; until ctr version >/dev/null 2>&1; do i=$((i+1)); if [ $i -gt 300 ]; then cat /tmp/containerd.log; exit 1; fi; sleep 0.1; done',
    `for f in ${dir}/*.tar; do ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests "$f"; done`,
    'ctr --namespace=k8s.io images ls -q',
    'kill $pid; wait $pid || true',
    // the state of this containerd, not the node's (kind mounts a tmpfs on /run anyway)
    'rm -rf /tmp/containerd.log /run/containerd',
  ].join('\n');
}

/** The node image's entrypoint again (the preload container ran a shell instead), for `docker commit --change`. */
export const NODE_ENTRYPOINT_CHANGES = ['ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', 'CMD []'];
