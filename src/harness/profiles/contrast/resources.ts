// The Kubernetes YAML a Contrast user gives `contrast generate` (Deployments, Services, ServiceAccounts), read into a
// small typed model. A field the profile does not implement is a UserError naming it: nothing is silently ignored.
// loadContrast is the one impure function (it reads files); parseContrast is pure.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { UserError } from '../../model/errors.ts';
import { FieldReader, isObj, type Obj } from '../../model/fields.ts';
import type { Annotations } from '../../model/contrast/annotations.ts';

export type Labels = Record<string, string>;

export interface ContrastContainer {
  name: string;
  image: string;
  command: string[];
  env: Record<string, string>;
  ports: { name?: string; containerPort: number }[];
}

export interface ContrastDeployment {
  kind: 'Deployment';
  source: string;
  name: string;
  namespace: string;
  /** spec.template.metadata.labels */
  labels: Labels;
  /** spec.template.metadata.annotations: what the CLI's mutators read (MapPodSpecWithMeta → the pod template). */
  annotations: Annotations;
  runtimeClassName?: string;
  serviceAccountName?: string;
  containers: ContrastContainer[];
}

export interface ContrastService {
  kind: 'Service';
  source: string;
  name: string;
  namespace: string;
  selector: Labels;
  ports: { name?: string; port: number; targetPort: number }[];
}

export interface ContrastModel {
  deployments: ContrastDeployment[];
  services: ContrastService[];
}

/** The contrast profile's field reader (model/fields.ts). */
class Ctx extends FieldReader {
  constructor(source: string, what: string) {
    super(source, what, 'contrast');
  }
}

function parseContainer(c: Ctx, raw: unknown, path: string): ContrastContainer {
  const o = c.obj(raw, path);
  c.only(o, path, ['name', 'image', 'command', 'env', 'ports']);
  const env: Record<string, string> = {};
  c.list(o.env, `${path}.env`).forEach((e, i) => {
    const eo = c.obj(e, `${path}.env[${i}]`);
    c.only(eo, `${path}.env[${i}]`, ['name', 'value']);
    env[c.str(eo.name, `${path}.env[${i}].name`, true)!] = c.str(eo.value, `${path}.env[${i}].value`) ?? '';
  });
  const ports = c.list(o.ports, `${path}.ports`).map((p, i) => {
    const po = c.obj(p, `${path}.ports[${i}]`);
    c.only(po, `${path}.ports[${i}]`, ['name', 'containerPort', 'protocol']);
    if (po.protocol !== undefined && po.protocol !== 'TCP') c.fail(`field ${path}.ports[${i}].protocol: only TCP is implemented`);
    const name = c.str(po.name, `${path}.ports[${i}].name`);
    return { ...(name !== undefined ? { name } : {}), containerPort: c.port(po.containerPort, `${path}.ports[${i}].containerPort`) };
  });
  return {
    name: c.str(o.name, `${path}.name`, true)!,
    image: c.str(o.image, `${path}.image`, true)!,
    command: c.list(o.command, `${path}.command`).map((s, i) => c.str(s, `${path}.command[${i}]`, true)!),
    env,
    ports,
  };
}

function parseDeployment(c: Ctx, base: { source: string; name: string; namespace: string }, spec: Obj): ContrastDeployment {
  c.only(spec, 'spec', ['replicas', 'selector', 'template']);
  if (spec.replicas !== undefined && spec.replicas !== 1) c.fail('field spec.replicas: meshproof runs one pod per Deployment (replicas: 1)');
  const tpl = c.obj(spec.template, 'spec.template');
  c.only(tpl, 'spec.template', ['metadata', 'spec']);
  const tmeta = c.obj(tpl.metadata, 'spec.template.metadata');
  c.only(tmeta, 'spec.template.metadata', ['labels', 'annotations']);
  const labels = c.labels(tmeta.labels, 'spec.template.metadata.labels');
  const sel = c.obj(spec.selector, 'spec.selector');
  c.only(sel, 'spec.selector', ['matchLabels']);
  for (const [k, v] of Object.entries(c.labels(sel.matchLabels, 'spec.selector.matchLabels'))) {
    if (labels[k] !== v) c.fail(`spec.selector.matchLabels ${k}=${v} does not match the template labels`);
  }
  const pspec = c.obj(tpl.spec, 'spec.template.spec');
  c.only(pspec, 'spec.template.spec', ['runtimeClassName', 'serviceAccountName', 'containers']);
  const containers = c.list(pspec.containers, 'spec.template.spec.containers').map((x, i) => parseContainer(c, x, `spec.template.spec.containers[${i}]`));
  if (containers.length === 0) c.fail('field spec.template.spec.containers is required');
  const d: ContrastDeployment = { kind: 'Deployment', ...base, labels, annotations: c.labels(tmeta.annotations, 'spec.template.metadata.annotations'), containers };
  const rc = c.str(pspec.runtimeClassName, 'spec.template.spec.runtimeClassName');
  if (rc !== undefined) d.runtimeClassName = rc;
  const sa = c.str(pspec.serviceAccountName, 'spec.template.spec.serviceAccountName');
  if (sa !== undefined) d.serviceAccountName = sa;
  return d;
}

function parseService(c: Ctx, base: { source: string; name: string; namespace: string }, spec: Obj): ContrastService {
  c.only(spec, 'spec', ['selector', 'ports', 'type']);
  if (spec.type !== undefined && spec.type !== 'ClusterIP') c.fail(`field spec.type: only ClusterIP is implemented, got ${JSON.stringify(spec.type)}`);
  const selector = c.labels(spec.selector, 'spec.selector');
  if (Object.keys(selector).length === 0) c.fail('field spec.selector is required (a Service without one selects no pod)');
  const ports = c.list(spec.ports, 'spec.ports').map((p, i) => {
    const po = c.obj(p, `spec.ports[${i}]`);
    c.only(po, `spec.ports[${i}]`, ['name', 'port', 'targetPort', 'protocol']);
    if (po.protocol !== undefined && po.protocol !== 'TCP') c.fail(`field spec.ports[${i}].protocol: only TCP is implemented`);
    const port = c.port(po.port, `spec.ports[${i}].port`);
    const name = c.str(po.name, `spec.ports[${i}].name`);
    return { ...(name !== undefined ? { name } : {}), port, targetPort: po.targetPort === undefined ? port : c.port(po.targetPort, `spec.ports[${i}].targetPort (a number)`) };
  });
  if (ports.length === 0) c.fail('field spec.ports is required');
  return { kind: 'Service', ...base, selector, ports };
}

/** Multi-document YAML text → the Deployments and Services in it (ServiceAccounts are accepted and carry nothing). */
export function parseContrast(text: string, source: string): ContrastModel {
  const out: ContrastModel = { deployments: [], services: [] };
  for (const doc of parseAllDocuments(text)) {
    const err = doc.errors[0];
    if (err) throw new UserError(`${source}: malformed YAML${err.linePos?.[0] ? ` at line ${err.linePos[0].line}` : ''}: ${err.message.split('\n')[0]}`);
    const raw: unknown = doc.toJS();
    if (raw === null || raw === undefined) continue;
    if (!isObj(raw) || typeof raw.kind !== 'string') throw new UserError(`${source}: a document is not a Kubernetes resource (a mapping with apiVersion, kind, metadata)`);
    const meta = isObj(raw.metadata) ? raw.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const c = new Ctx(source, `${raw.kind} ${name || '(unnamed)'}`);
    if (!name) c.fail('field metadata.name is required');
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) c.fail(`metadata.name ${JSON.stringify(name)} is not a DNS label`);
    const api = { Deployment: 'apps/v1', Service: 'v1', ServiceAccount: 'v1' }[raw.kind];
    if (api === undefined) c.fail(`kind ${raw.kind} is not implemented by meshproof's contrast profile (Deployment, Service, ServiceAccount)`);
    if (raw.apiVersion !== api) c.fail(`apiVersion ${JSON.stringify(raw.apiVersion)} is not implemented (use ${api})`);
    if (raw.kind === 'ServiceAccount') continue;
    c.only(raw, '', ['apiVersion', 'kind', 'metadata', 'spec']);
    c.only(meta, 'metadata', ['name', 'namespace', 'labels', 'annotations']);
    const base = { source, name, namespace: c.str(meta.namespace, 'metadata.namespace') ?? 'default' };
    const spec = c.obj(raw.spec, 'spec');
    if (raw.kind === 'Deployment') out.deployments.push(parseDeployment(c, base, spec));
    else out.services.push(parseService(c, base, spec));
  }
  return out;
}

/** Reads YAML files, or the *.yaml/*.yml files directly in a directory (like `kubectl apply -f dir`); names must be unique. */
export function loadContrast(paths: string | string[]): ContrastModel {
  const files: string[] = [];
  for (const p of Array.isArray(paths) ? paths : [paths]) {
    let dir: boolean;
    try {
      dir = statSync(p).isDirectory();
    } catch (e) {
      throw new UserError(`${p}: cannot read (${(e as NodeJS.ErrnoException).code}): check the path`);
    }
    if (!dir) files.push(p);
    else {
      const inDir = readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(p, f));
      if (inDir.length === 0) throw new UserError(`${p}: no .yaml files in this directory`);
      files.push(...inDir);
    }
  }
  const model: ContrastModel = { deployments: [], services: [] };
  for (const f of files) {
    const m = parseContrast(readFileSync(f, 'utf8'), f);
    model.deployments.push(...m.deployments);
    model.services.push(...m.services);
  }
  const seen = new Map<string, string>();
  for (const r of [...model.deployments, ...model.services]) {
    const key = `${r.kind} ${r.namespace}/${r.name}`;
    if (seen.has(key)) throw new UserError(`${r.source}: ${key} is also defined in ${seen.get(key)}: define it once`);
    seen.set(key, r.source);
  }
  return model;
}
