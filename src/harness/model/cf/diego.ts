// Diego executor port model: which container ports the Envoy sidecar listens on for an app, and what the app sees in
// CF_INSTANCE_PORTS. Pure. Sources (cloudfoundry/executor@9e97ac1): envoyconfig/config.go (AssignProxyPorts,
// GetAvailablePort), depot/containerstore/proxy_config_handler.go (ProxyPorts, ErrC2CTLSPortIsReserved),
// depot/containerstore/storenode.go (61443 never NATed, diego-release#651), depot/steps/run_step.go (CF_INSTANCE_PORTS);
// 62443 from the draft RFC "Full mTLS for Diego C2C" (cloudfoundry/community#1437, toc/rfc/rfc-draft-diego-c2c-mtls.md).

/** envoyconfig.StartProxyPort: the first port handed to a proxy listener. */
export const StartProxyPort = 61001;
/** envoyconfig.EndProxyPort: allocation stops BEFORE this port (`port < EndProxyPort`), so 65534 itself is never handed out. */
export const EndProxyPort = 65534;
/** envoyconfig.C2CTLSPort: the container-to-container TLS listener (TCP proxy, no client cert) for port 8080. */
export const C2CTLSPort = 61443;
/** envoyconfig.DefaultHTTPPort: the app port that also gets the C2C listener(s). */
export const DefaultHTTPPort = 8080;
/** C2CMTLSPort (RFC draft community#1437): HTTP listener with required client cert and XFCC; reserved when enabled. */
export const C2CMTLSPort = 62443;

/**
 * One Envoy listener of the sidecar (executor.ProxyPortMapping{AppPort, ProxyPort}), with what it is for:
 * - `route-integrity`: 61001+ for every app port (gorouter, tcp-router and ssh-proxy dial these);
 * - `c2c-tls`: 61443 → 8080, TLS without client-cert checks;
 * - `c2c-mtls`: 62443 → 8080 (RFC draft), mTLS + XFCC.
 */
export interface PortMapping {
  appPort: number;
  proxyPort: number;
  kind: 'route-integrity' | 'c2c-tls' | 'c2c-mtls';
}

export interface AllocateOptions {
  /** containers.proxy.enable_c2c_mtls_listener (RFC draft; default false): 8080 also gets 62443, and 62443 is reserved. */
  c2cMtls?: boolean;
}

function assertPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what} ${p} is not a port number (1-65535)`);
}

/** ErrC2CTLSPortIsReserved's text, for either reserved port. */
function reserved(port: number): Error {
  return new Error(`port ${port} is reserved for container networking`);
}

/**
 * AssignProxyPorts / ProxyPorts: each unique app port, in order, gets the next free port from 61001 upward, skipping
 * 61443 (and 62443 when c2cMtls) and every port the app itself declares; right after its own mapping, 8080 also gets
 * 61443 (and then 62443 when c2cMtls). Throws `port 61443 is reserved for container networking` when the app declares
 * 61443 (likewise 62443 when c2cMtls) and `no ports available` when the range runs out.
 */
export function allocateProxyPorts(appPorts: readonly number[], opts: AllocateOptions = {}): PortMapping[] {
  const c2cMtls = opts.c2cMtls ?? false;
  const ordered: number[] = [];
  for (const p of appPorts) {
    assertPort(p, 'app port');
    if (p === C2CTLSPort) throw reserved(C2CTLSPort);
    if (c2cMtls && p === C2CMTLSPort) throw reserved(C2CMTLSPort);
    if (!ordered.includes(p)) ordered.push(p);
  }
  const used = new Set(ordered);
  const out: PortMapping[] = [];
  let next = 0;
  for (let port = StartProxyPort; port < EndProxyPort && next < ordered.length; port++) {
    if (port === C2CTLSPort || (c2cMtls && port === C2CMTLSPort) || used.has(port)) continue;
    const appPort = ordered[next]!;
    out.push({ appPort, proxyPort: port, kind: 'route-integrity' });
    if (appPort === DefaultHTTPPort) {
      out.push({ appPort, proxyPort: C2CTLSPort, kind: 'c2c-tls' });
      if (c2cMtls) out.push({ appPort, proxyPort: C2CMTLSPort, kind: 'c2c-mtls' });
    }
    next++;
  }
  if (next < ordered.length) throw new Error('no ports available'); // ErrNoPortsAvailable
  return out;
}

/**
 * GetAvailablePort(container.Ports): the Envoy admin port (bound on 127.0.0.1), the first port from 61001 that is
 * neither an app port nor a proxy port. Like the executor it does not skip 61443/62443 by itself: they are excluded
 * only because they are in `mappings` whenever they are in use.
 */
export function adminPort(mappings: readonly PortMapping[], appPorts: readonly number[]): number {
  const taken = new Set<number>(appPorts);
  for (const m of mappings) {
    taken.add(m.appPort);
    taken.add(m.proxyPort);
  }
  for (let port = StartProxyPort; port < EndProxyPort; port++) {
    if (!taken.has(port)) return port;
  }
  throw new Error('no ports available'); // ErrNoPortsAvailable
}

/**
 * CF_INSTANCE_PORTS (run_step.go cfPortMapping): one entry per mapping, keys in the Go struct's order
 * `external`, `internal`, `external_tls_proxy`, `internal_tls_proxy`; `external*` are omitted when there is no host
 * port (omitempty). `hostPorts` maps container port → host port (Garden NetIn); leave app ports out of it when
 * `containers.proxy.enable_unproxied_port_mappings` is false. The C2C ports never get a host port (storenode.go,
 * diego-release#651), so a host port for 61443 or 62443 is refused. An app without mappings sees `[]`.
 */
export function cfInstancePorts(mappings: readonly PortMapping[], hostPorts: ReadonlyMap<number, number> = new Map()): string {
  for (const c2c of [C2CTLSPort, C2CMTLSPort]) {
    if (hostPorts.has(c2c) && mappings.some((m) => m.proxyPort === c2c)) {
      throw new Error(`port ${c2c} never gets a host port mapping (diego-release#651)`);
    }
  }
  const entries = mappings.map((m) => {
    const e: Record<string, number> = {};
    const external = hostPorts.get(m.appPort);
    if (external) e.external = external;
    e.internal = m.appPort;
    const externalTls = hostPorts.get(m.proxyPort);
    if (externalTls) e.external_tls_proxy = externalTls;
    e.internal_tls_proxy = m.proxyPort;
    return e;
  });
  return JSON.stringify(entries);
}
