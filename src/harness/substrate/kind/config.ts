// The kind cluster's rendered inputs (pure): clusters/kind.yaml with the run's name and node image, each node's bridge
// CNI config from its podCIDR, the routes between nodes, and dockerd's runtime config for the runc wrapper.
import { parse, stringify } from 'yaml';
import { UserError } from '../../model/errors.ts';

export interface KindNodeSpec { role: 'control-plane' | 'worker'; image?: string; [k: string]: unknown }
export interface KindConfig { kind: 'Cluster'; apiVersion: string; name: string; networking?: Record<string, unknown>; nodes: KindNodeSpec[] }

/** kind's cluster names become container names and a kubeconfig context: `meshproof-<run short>`. */
export const clusterNameOf = (short: string): string => `meshproof-${short}`;

/** clusters/kind.yaml with `name` and every node's `image` set for this run. */
export function renderKindConfig(template: string, o: { name: string; image: string }): string {
  const c = parse(template) as KindConfig;
  if (c?.kind !== 'Cluster' || !Array.isArray(c.nodes) || c.nodes.length === 0) {
    throw new UserError('clusters/kind.yaml is not a kind Cluster with nodes: restore it from git');
  }
  const out: KindConfig = { ...c, name: o.name, nodes: c.nodes.map((n) => ({ ...n, image: o.image })) };
  return stringify(out);
}

/** The CNI config of one node: Debian's bridge + host-local on the node's podCIDR, portmap (CNI plugins 1.1.1). */
export function bridgeConflist(podCIDR: string): string {
  return `${JSON.stringify({
    cniVersion: '0.4.0',
    name: 'meshproof',
    plugins: [
      {
        type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: podCIDR }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }, null, 2)}\n`;
}

export interface NodeNet { name: string; ip: string; podCIDR: string }

/** For each node, `ip route replace <other podCIDR> via <other node IP>` for every other node (§4: pods across nodes). */
export function nodeRoutes(nodes: readonly NodeNet[]): Record<string, string[][]> {
  return Object.fromEntries(nodes.map((n) => [n.name, nodes.filter((o) => o !== n).map((o) => ['ip', 'route', 'replace', o.podCIDR, 'via', o.ip])]));
}

/** dockerd's --config-file with the wrapper as its default runtime (reloaded on SIGHUP: runtimes and default-runtime are live options). */
export function daemonConfigWithRuntime(name: string, path: string): string {
  return `${JSON.stringify({ runtimes: { [name]: { path } }, 'default-runtime': name }, null, 2)}\n`;
}
