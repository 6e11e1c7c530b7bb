// Topology files: pods (name, namespace, service account, labels, containers) and services.
import { readFileSync } from 'node:fs';
import { parse, YAMLParseError } from 'yaml';
import type { PodSpec, Topology } from './types.ts';
import { UserError } from '../model/errors.ts';

// Kubernetes names: RFC 1123 labels (lower case alphanumerics and '-').
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function podKey(p: Pick<PodSpec, 'name' | 'namespace'>): string {
  return `${p.namespace}/${p.name}`;
}

/** Throws a one-line UserError naming the first problem. */
export function validateTopology(t: Topology, source = 'topology'): void {
  if (!t || !Array.isArray(t.pods) || t.pods.length === 0) throw new UserError(`${source}: no pods: add a 'pods:' list`);
  const seen = new Set<string>();
  for (const [i, p] of t.pods.entries()) {
    if (!p || typeof p.name !== 'string' || !DNS_LABEL.test(p.name)) throw new UserError(`${source}: pods[${i}].name ${JSON.stringify(p?.name)} is not a DNS label (a-z, 0-9, '-')`);
    p.namespace ??= 'default';
    if (!DNS_LABEL.test(p.namespace)) throw new UserError(`${source}: pod ${p.name}: namespace ${JSON.stringify(p.namespace)} is not a DNS label`);
    const key = podKey(p);
    if (seen.has(key)) throw new UserError(`${source}: pod ${key} is defined twice`);
    seen.add(key);
    for (const c of p.containers ?? []) {
      if (!c.name) throw new UserError(`${source}: pod ${key}: a container has no name`);
      if (!c.workload && !c.command?.length) throw new UserError(`${source}: pod ${key}: container ${c.name} needs 'workload' or 'command'`);
    }
  }
  for (const [i, s] of (t.services ?? []).entries()) {
    if (!s || !DNS_LABEL.test(s.name ?? '')) throw new UserError(`${source}: services[${i}].name ${JSON.stringify(s?.name)} is not a DNS label`);
    s.namespace ??= 'default';
    if (!s.selector || Object.keys(s.selector).length === 0) throw new UserError(`${source}: service ${s.name}: 'selector' is empty`);
    if (!Array.isArray(s.ports) || s.ports.length === 0) throw new UserError(`${source}: service ${s.name}: no ports`);
    for (const port of s.ports) {
      port.targetPort ??= port.port;
      if (!Number.isInteger(port.port) || port.port < 1 || port.port > 65535) throw new UserError(`${source}: service ${s.name}: port ${JSON.stringify(port.port)} is not 1-65535`);
    }
  }
}

export function parseYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code}): check the path`);
  }
  try {
    return parse(text);
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const where = e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : '';
      throw new UserError(`${path}: malformed YAML${where}: ${e.message.split('\n')[0]}`);
    }
    throw e;
  }
}

export function loadTopology(path: string): Topology {
  const t = parseYamlFile(path) as Topology;
  validateTopology(t, path);
  t.name ??= path;
  return t;
}
