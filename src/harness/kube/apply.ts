// `kubectl apply --server-side` for the kube layer: the same code applies Istio's install manifest
// and the user's YAML, to meshproof's API server or any other. Objects are applied in dependency
// order (Namespaces and CRDs first), and an object the API server (or an admission webhook such
// as istiod's validator) refuses fails with the server's own message.
import { KubernetesObjectApi, PatchStrategy, loadYaml, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { UserError } from '../model/errors.ts';
import { pollUntil } from '../substrate/poll.ts';

export const FIELD_MANAGER = 'meshproof';

/** Apply order, as kubectl and helm sort installs: what others live in or are typed by comes first. */
const FIRST = ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ConfigMap', 'Secret', 'Service'];

function rankOf(o: KubernetesObject): number {
  const i = FIRST.indexOf(o.kind ?? '');
  return i < 0 ? FIRST.length : i;
}

export function sortForApply<T extends KubernetesObject>(objs: T[]): T[] {
  return objs.map((o, i) => ({ o, i })).sort((a, b) => rankOf(a.o) - rankOf(b.o) || a.i - b.i).map((x) => x.o);
}

/** Multi-document YAML → objects (empty documents and `kind: List` flattened). */
export function parseObjects(text: string, source: string): KubernetesObject[] {
  const out: KubernetesObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new UserError(`${source}: malformed YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const v = doc.toJS() as KubernetesObject | null;
    if (!v) continue;
    if (v.kind === 'List') out.push(...((v as { items?: KubernetesObject[] }).items ?? []));
    else out.push(v);
  }
  return out;
}

/** Server-side apply of each object; `namespace` fills in objects without one (as `kubectl apply -n`). */
export async function applyObjects(kc: KubeConfig, objs: KubernetesObject[], opts: { namespace?: string; source?: string } = {}): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const one = async (o: KubernetesObject): Promise<void> => {
    const named = opts.namespace ? inNamespace(o, opts.namespace) : o;
    const obj = { ...named, metadata: { ...named.metadata } };
    try {
      // client-node serializes a known kind through its typed model, which reads camelCase fields
      // (xKubernetesIntOrString): a plain document must go through its deserializer first (loadYaml), or fields
      // whose wire name differs (x-kubernetes-int-or-string in Istio's CRDs) are dropped on the way out
      await api.patch(loadYaml<KubernetesObject>(stringify(obj)), undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (e) {
      throw new UserError(`${opts.source ?? 'apply'}: ${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}: ${apiMessage(e)}`);
    }
  };
  // objects of one rank do not depend on each other: applied together; ranks in order
  const sorted = sortForApply(objs);
  for (let i = 0; i < sorted.length; ) {
    const r = rankOf(sorted[i]!);
    let j = i;
    while (j < sorted.length && rankOf(sorted[j]!) === r) j++;
    await Promise.all(sorted.slice(i, j).map(one));
    i = j;
  }
}

/**
 * Deletes objects (absent ones are fine), for a policy reset between scenarios. `wait`: deleted in the foreground
 * (a Deployment lasts until its ReplicaSets and Pods are gone) and polled until each one is gone, so no pod of a
 * deleted workload still runs when the call returns.
 */
export async function deleteObjects(kc: KubeConfig, objs: KubernetesObject[], opts: { wait?: boolean } = {}): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const absent = (e: unknown): boolean => (e as { code?: number }).code === 404;
  for (const o of objs) {
    try {
      await api.delete(o, undefined, undefined, undefined, undefined, opts.wait ? 'Foreground' : undefined);
    } catch (e) {
      if (!absent(e)) throw new Error(`delete ${o.kind} ${o.metadata?.namespace}/${o.metadata?.name}: ${apiMessage(e)}`, { cause: e });
    }
  }
  if (!opts.wait || objs.length === 0) return;
  let left: KubernetesObject[] = objs;
  await pollUntil(
    async () => {
      const still = await Promise.all(left.map((o) => api.read(o as KubernetesObject & { metadata: { name: string } }).then(() => true, (e: unknown) => {
        if (absent(e)) return false;
        throw e;
      })));
      left = left.filter((_, i) => still[i]);
      return left.length === 0 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200, what: 'deleted objects gone', detail: () => left.map((o) => `${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}`).join(', ') },
  );
}

const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'Node', 'PersistentVolume', 'StorageClass', 'PriorityClass']);

/** The object as `kubectl apply -n <namespace>` names it: a namespaced object without a namespace gets that one. */
export function inNamespace(o: KubernetesObject, namespace: string): KubernetesObject {
  return o.metadata?.namespace || CLUSTER_SCOPED.has(o.kind ?? '') ? o : { ...o, metadata: { ...o.metadata, namespace } };
}

/** The API server's own message from an ApiException (its Status body), else the error's. */
export function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const s = JSON.parse(body) as { message?: string };
      if (s.message) return s.message;
    } catch {
      return body.split('\n')[0]!;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return (e as Error).message.split('\n')[0]!;
}
