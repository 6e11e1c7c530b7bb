// An Istio ingress gateway's Envoy config as a static bootstrap: the `gateway` injection template's
// proxy, with one listener per bound port and the Gateway servers as its filter chains.
// Pure: SidecarPlan (with `gateway`) in, YAML out. Sources (istio/istio): pilot/pkg/networking/core/gateway.go
// (buildGatewayListeners, buildGatewayHTTPRouteConfig), pilot/pkg/security/authn (gateway TLS contexts),
// pilot/pkg/networking/util/proxy_headers.go (gateways: XFCC SANITIZE_SET).
import { stringify } from 'yaml';
import { ISTIO_PORTS, type GatewayServerPlan, type SidecarPlan } from '../../model/istio/plan.ts';
import { checkPlan, outboundCluster, outboundClusterName, router, tlsParams, UPGRADE_CONFIGS } from './sidecar.ts';
import { addr, T, type Obj } from './common.ts';

/** What Istio's gateway offers on HTTPS servers (gateway.go: h2 then http/1.1). */
export const GATEWAY_HTTPS_ALPNS = ['h2', 'http/1.1'] as const;

function downstreamGatewayTls(tls: NonNullable<GatewayServerPlan['tls']>): Obj {
  const common: Obj = {
    tls_params: tlsParams(),
    alpn_protocols: [...GATEWAY_HTTPS_ALPNS],
    tls_certificates: [{ certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } }],
  };
  const ctx: Obj = { '@type': T.downstreamTls, common_tls_context: common };
  if (tls.mode === 'MUTUAL') {
    if (!tls.cacert) throw new Error('gateway: a MUTUAL server needs the credential\'s cacert');
    common.validation_context = { trusted_ca: { filename: tls.cacert } };
    ctx.require_client_certificate = true;
  }
  return { name: 'envoy.transport_sockets.tls', typed_config: ctx };
}

function gatewayHcm(port: number, s: GatewayServerPlan): Obj {
  const virtualHosts = s.virtualHosts.map((vh) => {
    const targets = vh.route.filter((r) => r.weight > 0).map((r) => ({ name: outboundClusterName(r.port, r.subset, r.fqdn), weight: r.weight }));
    if (targets.length === 0) throw new Error(`gateway: virtual host ${vh.name} has no weighted route`);
    const route: Obj = targets.length === 1 ? { cluster: targets[0]!.name } : { weighted_clusters: { clusters: targets } };
    route.timeout = '0s';
    return { name: vh.name, domains: vh.domains, routes: [{ name: 'default', match: { prefix: '/' }, route }] };
  });
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': T.hcm,
      stat_prefix: `outbound_0.0.0.0_${port}`,
      use_remote_address: true,
      // gateways sanitize what the caller sent and set the verified client certificate's details
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { subject: true, dns: true, uri: true },
      // gateway.go builds its HCMs with buildHTTPConnectionManager too: WebSocket upgrades allowed
      upgrade_configs: [...UPGRADE_CONFIGS],
      route_config: { name: `${s.protocol.toLowerCase()}.${port}`, virtual_hosts: virtualHosts },
      http_filters: [router()],
    },
  };
}

function gatewayListener(port: number, servers: GatewayServerPlan[]): Obj {
  const https = servers.filter((s) => s.protocol === 'HTTPS');
  if (https.length > 0 && https.length !== servers.length) throw new Error(`gateway: port ${port} mixes HTTP and HTTPS servers`);
  if (servers.filter((s) => s.protocol === 'HTTP').length > 1) throw new Error(`gateway: port ${port} has more than one HTTP server`);
  const chains = servers.map((s) => {
    const chain: Obj = { filters: [gatewayHcm(port, s)] };
    if (s.tls) {
      // SNI picks the server; a '*' host matches any name (no server_names)
      if (!s.hosts.includes('*')) chain.filter_chain_match = { server_names: s.hosts };
      chain.transport_socket = downstreamGatewayTls(s.tls);
    }
    return chain;
  });
  const listener: Obj = { name: `0.0.0.0_${port}`, address: addr('0.0.0.0', port), traffic_direction: 'OUTBOUND', filter_chains: chains };
  if (https.length > 0) listener.listener_filters = [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': T.tlsInspector } }];
  return listener;
}

/** The Envoy bootstrap (YAML) of a gateway proxy. */
export function renderGateway(plan: SidecarPlan, o: { adminPort?: number } = {}): string {
  if (!plan.gateway) throw new Error(`gateway: ${plan.namespace}/${plan.pod} is not a gateway`);
  checkPlan(plan);
  const byPort = new Map<number, GatewayServerPlan[]>();
  for (const s of plan.gateway.servers) byPort.set(s.bindPort, [...(byPort.get(s.bindPort) ?? []), s]);
  const bootstrap = {
    node: { id: `router~${plan.pod}.${plan.namespace}`, cluster: `${plan.pod}.${plan.namespace}` },
    admin: { address: addr('127.0.0.1', o.adminPort ?? ISTIO_PORTS.admin) },
    static_resources: {
      listeners: [...byPort.entries()].sort(([a], [b]) => a - b).map(([port, servers]) => gatewayListener(port, servers)),
      clusters: plan.outbound.flatMap((s) => s.subsets.map((sub) => outboundCluster(s, sub, plan.certs))),
    },
  };
  return stringify(bootstrap, { aliasDuplicateObjects: false, lineWidth: 0 });
}
