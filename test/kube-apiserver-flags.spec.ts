// What the kube layer hands etcd, kube-apiserver and kube-controller-manager: flag lists, the token
// file and kubeconfig text, checked against hand-written literals (issue 13, reference §2/§2b), with
// independent judges where one exists (client-node reads the kubeconfig, node:crypto the key, the
// TLS stack the serving certificate's SANs).
import { expect } from 'chai';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../src/harness/model/errors.ts';
import {
  apiserverArgs,
  checkBins,
  controllerManagerArgs,
  etcdArgs,
  listeningPorts,
  renderKubeconfig,
  SERVING_SANS,
  tokenFileCsv,
  type KubeFiles,
} from '../src/harness/kube/apiserver.ts';
import { CertificateAuthority, newSigningKeyPair, PkiStore } from '../src/harness/pki/index.ts';

const FILES: KubeFiles = {
  etcdDataDir: '/run/meshproof/ab12/kube/etcd',
  caCert: '/run/meshproof/ab12/kube/kube-ca.crt',
  servingCert: '/run/meshproof/ab12/kube/apiserver.crt',
  servingKey: '/run/meshproof/ab12/kube/apiserver.key',
  serviceAccountKey: '/run/meshproof/ab12/kube/sa.key',
  serviceAccountPublicKey: '/run/meshproof/ab12/kube/sa.pub',
  tokenFile: '/run/meshproof/ab12/kube/tokens.csv',
  controllerManagerKubeconfig: '/run/meshproof/ab12/kube/controller-manager.kubeconfig',
  kubeletClientCert: '/run/meshproof/ab12/kube/apiserver-kubelet-client.crt',
  kubeletClientKey: '/run/meshproof/ab12/kube/apiserver-kubelet-client.key',
};

describe('kube layer: process flags and credentials text', function () {
  it('etcd: one member, client and peer URLs on 127.0.0.1 only', function () {
    expect(etcdArgs(FILES)).to.deep.equal([
      '--name=meshproof',
      '--data-dir=/run/meshproof/ab12/kube/etcd',
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=meshproof=http://127.0.0.1:2380',
      '--initial-cluster-state=new',
    ]);
  });

  it('kube-apiserver: the flags of reference §2/§2b, bound in the node namespace, advertised at the node address', function () {
    expect(apiserverArgs(FILES)).to.deep.equal([
      '--bind-address=0.0.0.0',
      '--secure-port=6443',
      '--advertise-address=10.244.0.1',
      '--etcd-servers=http://127.0.0.1:2379',
      '--authorization-mode=RBAC',
      '--token-auth-file=/run/meshproof/ab12/kube/tokens.csv',
      '--tls-cert-file=/run/meshproof/ab12/kube/apiserver.crt',
      '--tls-private-key-file=/run/meshproof/ab12/kube/apiserver.key',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file=/run/meshproof/ab12/kube/sa.pub',
      '--service-account-signing-key-file=/run/meshproof/ab12/kube/sa.key',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--enable-aggregator-routing=true',
      '--kubelet-preferred-address-types=InternalIP',
      '--kubelet-certificate-authority=/run/meshproof/ab12/kube/kube-ca.crt',
      '--kubelet-client-certificate=/run/meshproof/ab12/kube/apiserver-kubelet-client.crt',
      '--kubelet-client-key=/run/meshproof/ab12/kube/apiserver-kubelet-client.key',
    ]);
  });

  it('kube-controller-manager: the ten controllers by their v1.34 names, secure port on 127.0.0.1', function () {
    expect(controllerManagerArgs(FILES)).to.deep.equal([
      '--kubeconfig=/run/meshproof/ab12/kube/controller-manager.kubeconfig',
      '--controllers=serviceaccount-controller,serviceaccount-token-controller,endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller',
      '--service-account-private-key-file=/run/meshproof/ab12/kube/sa.key',
      '--root-ca-file=/run/meshproof/ab12/kube/kube-ca.crt',
      '--leader-elect=false',
      '--use-service-account-credentials=false',
      '--bind-address=127.0.0.1',
      '--secure-port=10257',
    ]);
  });

  it('token file: token,user,uid,"groups" per line', function () {
    const text = tokenFileCsv([
      { token: 'a1b2', user: 'meshproof-admin', uid: 'meshproof-admin', groups: ['system:masters'] },
      { token: 'c3d4', user: 'system:kube-controller-manager', uid: 'system:kube-controller-manager', groups: ['system:masters', 'extra'] },
    ]);
    expect(text).to.equal('a1b2,meshproof-admin,meshproof-admin,"system:masters"\nc3d4,system:kube-controller-manager,system:kube-controller-manager,"system:masters,extra"\n');
  });

  it('token file: a value that would break the CSV is refused by name', function () {
    expect(() => tokenFileCsv([{ token: 'a,b', user: 'u', uid: 'u', groups: [] }])).to.throw('"a,b"');
    expect(() => tokenFileCsv([{ token: 't', user: 'u"x', uid: 'u', groups: [] }])).to.throw('"u\\"x"');
  });

  it('kubeconfig: exact text, and client-node reads back the server, CA and token', function () {
    const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const text = renderKubeconfig({ name: 'meshproof-ab12', server: 'https://127.0.0.1:40123', caPem, user: 'meshproof-admin', token: 'f00d' });
    expect(text).to.equal(
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: meshproof-ab12',
        '  cluster:',
        '    server: https://127.0.0.1:40123',
        // base64 of the PEM above, by hand: printf '%s' "$caPem" | base64 -w0
        '    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=',
        'users:',
        '- name: meshproof-admin',
        '  user:',
        '    token: f00d',
        'contexts:',
        '- name: meshproof-ab12',
        '  context:',
        '    cluster: meshproof-ab12',
        '    user: meshproof-admin',
        'current-context: meshproof-ab12',
        '',
      ].join('\n'),
    );
    const kc = new KubeConfig();
    kc.loadFromString(text);
    expect(kc.getCurrentContext()).to.equal('meshproof-ab12');
    expect(kc.getCurrentCluster()?.server).to.equal('https://127.0.0.1:40123');
    expect(Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString()).to.equal(caPem);
    expect(kc.getCurrentUser()?.token).to.equal('f00d');
  });

  it('kubeconfig: a name YAML would need to quote is refused', function () {
    expect(() => renderKubeconfig({ name: 'a b', server: 'https://x', caPem: '', user: 'u', token: 't' })).to.throw('name "a b"');
  });

  it('ss -Htln: the local port of each listening socket, IPv4, IPv6 and wildcard', function () {
    const out = [
      'LISTEN 0      4096       127.0.0.1:2379       0.0.0.0:*',
      'LISTEN 0      4096               *:6443             *:*',
      'LISTEN 0      511             [::]:10257          [::]:*',
      'LISTEN 0      128    127.0.0.1%lo:53         0.0.0.0:*',
      '',
    ].join('\n');
    expect([...listeningPorts(out)].sort((a, b) => a - b)).to.deep.equal([53, 2379, 6443, 10257]);
    expect(listeningPorts('').size).to.equal(0);
  });

  describe('credentials from the PKI', function () {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'mp-kube-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('the service-account keys: ECDSA P-256, private as PKCS#8 (0600), public as SPKI (0644), one pair', async function () {
      const { keyPem, publicKeyPem } = await newSigningKeyPair();
      expect(keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).to.equal(true);
      expect(publicKeyPem.startsWith('-----BEGIN PUBLIC KEY-----\n')).to.equal(true);
      const key = createPrivateKey(keyPem);
      expect(key.asymmetricKeyType).to.equal('ec');
      expect(key.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
      expect(createPublicKey(key).export({ type: 'spki', format: 'pem' })).to.equal(publicKeyPem);
      const store = new PkiStore(dir);
      const priv = store.writeSecret('sa.key', keyPem);
      const pub = store.writePublicKey('sa.pub', publicKeyPem);
      expect([priv, pub]).to.deep.equal([join(dir, 'sa.key'), join(dir, 'sa.pub')]);
      expect(statSync(priv).mode & 0o777).to.equal(0o600);
      expect(statSync(pub).mode & 0o777).to.equal(0o644);
      store.removeKeys();
      expect(() => statSync(priv)).to.throw();
    });

    it('the serving certificate names every address and name pods and the host use', async function () {
      const ca = await CertificateAuthority.create('kube');
      const leaf = await ca.issue('apiserver', { subject: { CN: 'kube-apiserver' }, dns: [...SERVING_SANS.dns], ips: [...SERVING_SANS.ips], eku: ['serverAuth'] });
      const cert = new X509Certificate(leaf.certPem);
      for (const ip of ['127.0.0.1', '10.244.0.1', '10.96.0.1']) expect(cert.checkIP(ip), ip).to.equal(ip);
      for (const host of ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost']) {
        expect(cert.checkHost(host), host).to.equal(host);
      }
      expect(cert.checkHost('kubernetes.default.svc.cluster')).to.equal(undefined);
      expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).to.equal(true);
    });

    it('a missing or non-executable binary is one line naming meshproof doctor --fix', function () {
      const script = join(dir, 'not-exec');
      writeFileSync(script, '#!/bin/sh\n');
      chmodSync(script, 0o644);
      const exe = '/bin/true';
      const missing = () => checkBins({ kubeApiserver: join(dir, 'nope'), kubeControllerManager: exe, etcd: exe });
      expect(missing).to.throw(UserError, `kube-apiserver not found at ${join(dir, 'nope')}: run meshproof doctor --fix`);
      expect(() => checkBins({ kubeApiserver: exe, kubeControllerManager: exe, etcd: script })).to.throw(UserError, `etcd at ${script} is not executable: run meshproof doctor --fix`);
      expect(() => checkBins({ kubeApiserver: exe, kubeControllerManager: dir, etcd: exe })).to.throw(UserError, 'kube-controller-manager not found at');
    });
  });
});
