// Bad input is one line naming the fix and a UserError (exit 2), never a conformance failure (exit 1):
// a DestinationRule MUTUAL without a client certificate (Istio's own validation), a routing-api
// mapping routing-api would reject, malformed route JSON or budgets.yaml, a bad --inject. Pure.
import { expect } from 'chai';
import { UserError } from '../src/harness/model/errors.ts';
import { parseInject } from '../src/harness/cli/main.ts';
import { parseBudgets } from '../src/harness/load/budgets.ts';
import { parseRouteTable } from '../src/harness/model/cf/routes.ts';
import { destinationRules, parseIstio } from '../src/harness/profiles/istio/resources.ts';
import { callerUid } from '../src/harness/substrate/state.ts';

/** The one-line UserError `fn` throws (fails the test when it throws nothing or something else). */
function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.split('\n'), 'one line').to.have.length(1);
    return msg;
  }
  expect.fail('no error thrown');
}

const dr = (tls: string, subset = false) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: age }
spec:
  host: age
${subset ? `  subsets:\n  - name: v1\n    labels: { version: v1 }\n    trafficPolicy:\n      tls: ${tls}` : `  trafficPolicy:\n    tls: ${tls}`}
`;

describe('bad input: DestinationRule tls.mode MUTUAL needs a client certificate (Istio validateTLS)', () => {
  it('rejects MUTUAL without credentialName when the model is loaded, with Istio\'s message', () => {
    expect(userError(() => parseIstio(dr('{ mode: MUTUAL }'), 'dr.yaml'))).to.equal(
      'dr.yaml: DestinationRule age: spec.trafficPolicy.tls: client certificate required for mutual tls: set spec.trafficPolicy.tls.credentialName, or use mode ISTIO_MUTUAL for the mesh\'s own certificates',
    );
    expect(userError(() => parseIstio(dr('{ mode: MUTUAL }', true), 'dr.yaml'))).to.include('spec.subsets[0].trafficPolicy.tls: client certificate required for mutual tls');
  });

  it('accepts MUTUAL with credentialName, and the other modes without one', () => {
    const withCred = destinationRules({ resources: parseIstio(dr('{ mode: MUTUAL, credentialName: age-client }'), 'dr.yaml') });
    expect(withCred.map((d) => d.tls)).to.deep.equal([{ mode: 'MUTUAL', credentialName: 'age-client' }]);
    for (const mode of ['ISTIO_MUTUAL', 'SIMPLE', 'DISABLE']) {
      expect(destinationRules({ resources: parseIstio(dr(`{ mode: ${mode} }`), 'dr.yaml') })[0]!.tls!.mode).to.equal(mode);
    }
  });
});

describe('bad input: a routing-api route table', () => {
  const mapping = (fields: Record<string, unknown>) => JSON.stringify([{ router_group_guid: 'rg', port: 1024, backend_ip: '10.0.0.1', instance_id: 'i-1', ...fields }]);

  it('rejects a mapping without backend_port and without a positive backend_tls_port, with routing-api\'s reason', () => {
    expect(userError(() => parseRouteTable(mapping({ backend_tls_port: -1 }), 'routes.json'))).to.equal(
      'routes.json: [0] routing-api rejects this mapping: Each tcp mapping requires a positive backend port. RouteMapping=[rg:1024<->10.0.0.1:0]',
    );
    expect(userError(() => parseRouteTable(mapping({}), 'routes.json'))).to.include('requires a positive backend port');
  });

  it('accepts a mapping with only a backend_tls_port, as routing-api does since PR #51', () => {
    const [r] = parseRouteTable(mapping({ backend_tls_port: 61001 }), 'routes.json');
    expect([r!.backend_port, r!.backend_tls_port]).to.deep.equal([0, 61001]);
  });

  it('malformed JSON and a wrong field type name the file', () => {
    expect(userError(() => parseRouteTable('[{', 'routes.json'))).to.match(/^routes\.json: not JSON \(.+\): fix the file$/);
    expect(userError(() => parseRouteTable(mapping({ backend_port: '8080' }), 'routes.json'))).to.equal('routes.json: tcp_routes: [0].backend_port must be a Go uint16 (an integer in 0..65535), got "8080"');
  });
});

describe('bad input: fixtures/budgets.yaml', () => {
  it('an unknown key or a bad value is a UserError naming the file and the key', () => {
    expect(userError(() => parseBudgets('load:\n  rounds: 2\n', 'budgets.yaml'))).to.equal("budgets.yaml: unknown key 'load' (keys: fixed_rate, closed_loop, smoke, paths)");
    expect(userError(() => parseBudgets('fixed_rate:\n  rounds: 2\n', 'budgets.yaml'))).to.equal('budgets.yaml: fixed_rate.rounds must be at least 3 (a median and a spread need three rounds), got 2');
    expect(userError(() => parseBudgets('paths:\n  baseline:\n    rps_max: 1\n', 'budgets.yaml'))).to.match(/^budgets\.yaml: unknown budget 'paths\.baseline\.rps_max'/);
  });
});

describe('bad input: meshproof up --inject', () => {
  it('takes all or Deployment names', () => {
    expect(parseInject('all')).to.equal('all');
    expect(parseInject('age, name,age')).to.deep.equal(['age', 'name']);
    expect(parseInject(undefined)).to.equal(undefined);
    expect(userError(() => parseInject(' , '))).to.equal("--inject needs 'all' or Deployment names, e.g. --inject all or --inject age,name");
    expect(userError(() => parseInject('all,age'))).to.equal('--inject all takes no names: --inject all, or --inject age');
  });
});

describe('run records: the owner is the user who ran meshproof', () => {
  let saved: string | undefined;
  beforeEach(() => (saved = process.env.SUDO_UID));
  afterEach(() => (saved === undefined ? delete process.env.SUDO_UID : (process.env.SUDO_UID = saved)));

  it('is SUDO_UID under sudo (everyone is root there), else the real uid', () => {
    process.env.SUDO_UID = '1234';
    expect(callerUid()).to.equal(1234);
    delete process.env.SUDO_UID;
    expect(callerUid()).to.equal(process.getuid!());
    process.env.SUDO_UID = 'x';
    expect(callerUid()).to.equal(process.getuid!());
  });
});
