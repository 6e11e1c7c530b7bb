// The c2c apps' guids (fixtures/c2c/apps.yaml), their policy files, and the containers of a cell running them,
// shared by the unit tests of the policy model and iptables renderer and the integration test that applies the rules.
import { readFileSync } from 'node:fs';
import { containerRules, parsePolicies, PolicyServer, type C2cPolicy } from '../../src/harness/model/c2c/policy.ts';

export const FRONTEND = 'a1f0c2d3-4e5f-4a6b-8c7d-0e1f2a3b4c01';
export const BACKEND = 'b2e1d3c4-5f6a-4b7c-9d8e-1f2a3b4c5d02';
export const OTHER = 'c3d2e4f5-6a7b-4c8d-ae9f-2a3b4c5d6e03';

/** A policy file of fixtures/c2c/policies (policy server v1 JSON). */
export function policyFile(name: string): C2cPolicy[] {
  const f = `fixtures/c2c/policies/${name}.json`;
  return parsePolicies(JSON.parse(readFileSync(f, 'utf8')), f);
}

/** frontend/0, backend/0, backend/1, other/0 on the overlay. */
export const CONTAINERS = [
  { ip: '10.244.0.5', appGuid: FRONTEND },
  { ip: '10.244.0.6', appGuid: BACKEND },
  { ip: '10.244.0.7', appGuid: BACKEND },
  { ip: '10.244.0.8', appGuid: OTHER },
];
/** The routers' NetIn sources. */
export const NET_IN = [{ name: 'tcp-router', ip: '10.244.0.3' }, { name: 'gorouter', ip: '10.244.0.4' }];

/** A policy server holding the given policy files. */
export function serverWith(...files: string[]): PolicyServer {
  const s = new PolicyServer();
  s.add(files.flatMap(policyFile));
  return s;
}

/** backend/0's rules with both policy files in force and the routers' NetIn. */
export const backend0Rules = (): ReturnType<typeof containerRules> => containerRules(CONTAINERS[1]!, CONTAINERS, serverWith('frontend-to-backend', 'other-to-backend-range'), NET_IN);
