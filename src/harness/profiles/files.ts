// Where a profile's files go: through the Cluster (DESIGN.md seam 2: a profile never touches the host's files).
import type { PkiWriteFile } from '../pki/index.ts';
import type { Cluster } from '../substrate/types.ts';

/** Writes a file every pod of `cluster` sees at its path (a CA, a caller's certificate); on netns one file: the pods share the host's. */
export function forEveryPod(cluster: Pick<Cluster, 'pods' | 'writeFile'>): PkiWriteFile {
  return async (path, content, opts) => {
    for (const pod of cluster.pods.keys()) await cluster.writeFile(pod, path, content, opts);
  };
}

/** Writes a file one pod reads (its own key, its Envoy's config). */
export function forPod(cluster: Pick<Cluster, 'writeFile'>, pod: string): PkiWriteFile {
  return (path, content, opts) => cluster.writeFile(pod, path, content, opts);
}
