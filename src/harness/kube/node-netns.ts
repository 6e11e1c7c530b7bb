// The node-level half of the kube layer on the netns substrate: what runs in the run's node namespace beside the API
// server (the kubelet API's relay from the node's address) and what the kubelet API's exec and logs need of a
// container (its process: exec starts a command as the container was started, logs follow its log file). The node
// agent runs Pods through the Cluster port alone; this is all it asks of the node, and the only place it meets netns.
import type { Cluster } from '../substrate/types.ts';
import { GATEWAY, type NetnsCluster } from '../substrate/netns/index.ts';
import { netnsCluster } from '../substrate/index.ts';
import { pollUntil } from '../substrate/poll.ts';
import { Supervisor, type Proc } from '../substrate/supervisor.ts';

/** What the node agent needs of the node it runs on, beyond the Cluster port. */
export interface KubeNode {
  /** The Node object's name (its kubelet serving certificate names it too). */
  readonly name: string;
  /** The node's address: the Node's InternalIP and every Pod's hostIP, where the API server dials the kubelet API. */
  readonly address: string;
  /** Serves `port` on every address of the node, relayed to the Unix socket `socket`; resolves once it listens. */
  relay(port: number, socket: string): Promise<void>;
  /** A container's process (the kubelet API's exec and logs); undefined if it never started. */
  process(pod: string, container: string): Proc | undefined;
  /** Stops what relay() started. */
  stop(): Promise<void>;
}

/** The Node's name for a run (the kubelet serving certificate's CN is system:node:<it>). */
export function nodeName(cluster: Pick<NetnsCluster, 'short'>): string {
  return `meshproof-${cluster.short}`;
}

/** The netns node: the run's node namespace, and the supervisor's processes. */
export function kubeNode(c: Cluster): KubeNode {
  const cluster = netnsCluster(c, "the kube layer's node (the kubelet API's relay runs in the node namespace; exec and logs need a container's process)");
  const relays: Proc[] = [];
  return {
    name: nodeName(cluster),
    address: GATEWAY,
    async relay(port, socket) {
      const relay = cluster.supervisor.start({
        pod: 'node',
        name: 'kubelet-relay',
        netns: cluster.nodeNetns,
        // every address of the node namespace, as kubelet's --address 0.0.0.0: the node address (10.244.0.1) exists only
        // once a pod's link is up, and the API server dials it then
        argv: [process.execPath, cluster.bundle, 'relay', '--listen', `0.0.0.0:${port}`, '--connect', socket],
      });
      relays.push(relay);
      await pollUntil(
        () => {
          if (relay.exitCode !== undefined) throw new Error(`kubelet API relay exited (code ${relay.exitCode}): ${Supervisor.tail(relay, 5)}`);
          return Supervisor.tail(relay, 5).includes('relay listening on') ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 25, what: 'kubelet API relay', detail: () => Supervisor.tail(relay, 3) },
      );
    },
    process: (pod, container) => cluster.pods.get(pod)?.procs.get(container),
    async stop() {
      await Promise.all(relays.map((r) => cluster.supervisor.stop(r)));
    },
  };
}
