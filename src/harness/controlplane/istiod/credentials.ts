// The Gateways' credentialName secrets as the workshop makes them, for any mesh whose Istio reads a real API server
// (IstiodMesh on netns, KindMesh on kind): one place that issues them, applies them and hands a suite the files.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { applyObjects } from '../../kube/apply.ts';
import { CertificateAuthority, issueClient, issueServer, type PkiStore } from '../../pki/index.ts';
import { gateways, type IstioModel } from '../../profiles/istio/resources.ts';
import type { GatewayCredential } from '../../profiles/istio/mesh.ts';

export class GatewayCredentials {
  private readonly made = new Map<string, GatewayCredential>();

  constructor(private readonly pkiStore: PkiStore) {}

  /**
   * Each Gateway credentialName as the workshop makes it (istio-katas mutual-tls.md): a CA `example.com`, a server
   * certificate CN=<the first server host>, O=ACMEorg, and a client certificate CN=client.example.com, O=ACMEorg for
   * callers; then `kubectl create secret generic <name> --from-file=cert=… --from-file=key=… --from-file=cacert=…`
   * in the Gateway's namespace (the cacert key is what turns on client verification). istiod serves it to the gateway.
   */
  async ensure(kc: KubeConfig, model: IstioModel): Promise<void> {
    for (const gw of gateways(model)) {
      for (const server of gw.servers) {
        if (!server.tls?.credentialName) continue;
        const key = `${gw.namespace}/${server.tls.credentialName}`;
        if (this.made.has(key)) continue;
        const ca = await CertificateAuthority.create(`credential-${gw.namespace}-${server.tls.credentialName}`, { cn: 'example.com' });
        const host = server.hosts.map((h) => h.replace(/^[^/]*\//, '')).find((h) => !h.includes('*')) ?? 'gateway.example.com';
        const srv = await issueServer(ca, { cn: host, o: 'ACMEorg' });
        const cli = this.pkiStore.writeIdentity({ ...(await issueClient(ca, { cn: 'client.example.com', o: 'ACMEorg' })), name: `${gw.namespace}.${server.tls.credentialName}.client` });
        const srvFiles = this.pkiStore.writeIdentity({ ...srv, name: `${gw.namespace}.${server.tls.credentialName}.server` });
        const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
        const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: server.tls.credentialName, namespace: gw.namespace }, type: 'Opaque', data: { cert: b64(srv.certPem), key: b64(srv.keyPem), cacert: b64(ca.certPem) } };
        await applyObjects(kc, [secret as KubernetesObject], { source: `credentialName ${key}` });
        this.made.set(key, { cert: srvFiles.cert, key: srvFiles.key, cacert: srvFiles.ca, client: { cert: cli.cert, key: cli.key } });
      }
    }
  }

  get(namespace: string, name: string): GatewayCredential {
    const c = this.made.get(`${namespace}/${name}`);
    if (!c) throw new Error(`no Gateway credential ${namespace}/${name} in this mesh (no Gateway of the model names it)`);
    return c;
  }
}
