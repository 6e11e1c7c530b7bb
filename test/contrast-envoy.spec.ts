// Unit tests of the Envoy bootstrap Contrast's sidecar writes (dataplane/envoy/contrast.ts): the empty config is
// Contrast's own golden file (service-mesh/golden/defaultEnvoy.json, written out here by hand), and an egress entry
// and the admin interface as service-mesh/config.go builds them. The real `envoy --mode validate` judges the emojivoto
// configs in test/integration/contrast-envoy.spec.ts.
import { expect } from 'chai';
import { contrastEnvoyBootstrap, renderContrastEnvoy } from '../src/harness/dataplane/envoy/contrast.ts';
import { parseProxyConfig } from '../src/harness/model/contrast/annotations.ts';

type Obj = Record<string, unknown>;

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const files = (dir: string) => ({
  tlsCertificates: [{ certificateChain: { filename: `${dir}/certChain.pem` }, privateKey: { filename: `${dir}/key.pem` } }],
  validationContext: { trustedCa: { filename: `${dir}/mesh-ca.pem` } },
});

/** One ingress listener of the golden file, with its tls-config directory. */
function goldenIngress(name: string, port: number, requireClientCertificate: boolean, dir = '/contrast/tls-config'): Obj {
  return {
    name,
    address: { socketAddress: { address: '0.0.0.0', portValue: port } },
    filterChains: [
      {
        filters: [{ name: 'ingress', typedConfig: { '@type': TCP_PROXY, statPrefix: name, cluster: 'IngressCluster' } }],
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            commonTlsContext: files(dir),
            requireClientCertificate,
          },
        },
        name,
      },
      {
        filters: [{ name: 'BlackHoleFilter', typedConfig: { '@type': TCP_PROXY, statPrefix: 'BlackHoleCluster', cluster: 'BlackHoleCluster' } }],
        name: 'BlackHoleFilter',
      },
    ],
    filterChainMatcher: {
      matcherTree: {
        input: { name: 'port', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput' } },
        exactMatchMap: {
          map: { [String(port)]: { action: { name: 'forwardToBlackHoleFilter', typedConfig: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'BlackHoleFilter' } } } },
        },
      },
      onNoMatch: { action: { name: 'forwardToIngress', typedConfig: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: name } } },
    },
    listenerFilters: [{ name: 'tcpListener', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }],
    transparent: true,
  };
}

const GOLDEN_CLUSTERS = [
  { name: 'IngressCluster', type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', dnsLookupFamily: 'V4_ONLY' },
  { name: 'BlackHoleCluster', type: 'STATIC', connectTimeout: '10s' },
];

describe('dataplane/envoy contrast: the bootstrap of service-mesh/config.go', () => {
  const empty = { ingress: [], ingressDisabled: false, egress: [] };

  it('no annotations\' values: Contrast\'s golden defaultEnvoy.json, field for field', () => {
    expect(contrastEnvoyBootstrap(empty)).to.deep.equal({
      staticResources: {
        listeners: [goldenIngress('ingress', 15006, true), goldenIngress('ingressWithoutClientAuth', 15007, false)],
        clusters: GOLDEN_CLUSTERS,
      },
    });
  });

  it('JSON text (protojson names), as /envoy-config.yml is written', () => {
    const text = renderContrastEnvoy(empty);
    expect(text.startsWith('{\n  "staticResources": {\n    "listeners": [\n      {\n        "name": "ingress",\n')).to.equal(true);
    expect(text.endsWith('}\n')).to.equal(true);
    expect(JSON.parse(text)).to.deep.equal(contrastEnvoyBootstrap(empty));
  });

  it('web\'s egress entries become listeners on the 127.x addresses and LOGICAL_DNS clusters with the mesh certificate, no SNI, no SAN check', () => {
    const cfg = parseProxyConfig(
      {
        'contrast.edgeless.systems/servicemesh-ingress': 'web#8080#false##admin#9901#true',
        'contrast.edgeless.systems/servicemesh-egress': 'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080',
        'contrast.edgeless.systems/servicemesh-admin-interface-port': '9901',
      },
      'web',
    );
    const dir = '/run/meshproof/abc/contrast/default_web/tls-config';
    const b = contrastEnvoyBootstrap(cfg, { tlsConfigDir: dir });
    expect(b.admin).to.deep.equal({ address: { socketAddress: { address: '0.0.0.0', portValue: 9901 } } });
    const { listeners, clusters } = b.staticResources as { listeners: Obj[]; clusters: Obj[] };
    expect(listeners.map((l) => l.name)).to.deep.equal(['emoji', 'voting', 'ingress', 'ingressWithoutClientAuth']);
    expect(listeners[0]).to.deep.equal({
      name: 'emoji',
      address: { socketAddress: { address: '127.137.0.1', portValue: 8081 } },
      filterChains: [{ name: 'emoji', filters: [{ name: 'ingress', typedConfig: { '@type': TCP_PROXY, statPrefix: 'emoji', cluster: 'emoji' } }] }],
    });
    expect(clusters.map((c) => c.name)).to.deep.equal(['emoji', 'voting', 'IngressCluster', 'BlackHoleCluster']);
    expect(clusters[1]).to.deep.equal({
      name: 'voting',
      type: 'LOGICAL_DNS',
      dnsLookupFamily: 'V4_ONLY',
      loadAssignment: { clusterName: 'voting', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'voting-svc', portValue: 8080 } } } }] }] },
      transportSocket: {
        name: 'envoy.transport_sockets.tls',
        typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', commonTlsContext: files(dir) },
      },
    });
    // the ingress listeners do not depend on the ingress entries (those are iptables' business) and use the same files
    expect(listeners[2]).to.deep.equal(goldenIngress('ingress', 15006, true, dir));
    expect(listeners[3]).to.deep.equal(goldenIngress('ingressWithoutClientAuth', 15007, false, dir));
  });

  it('a relative tls-config directory is refused', () => {
    expect(() => contrastEnvoyBootstrap(empty, { tlsConfigDir: 'tls-config' })).to.throw(/must be an absolute path/);
  });
});
