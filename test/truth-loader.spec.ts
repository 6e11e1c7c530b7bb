// The one truth-table loader (profiles/truth.ts): a good table loads; every kind of bad input is one line naming the
// file, the row and the field; and every C2C and CF truth table loads with the schema its suite gives it.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTruth, loadTruth, optional, type TableSchema } from '../src/harness/profiles/truth.ts';
import { parseYamlFile } from '../src/harness/substrate/topology.ts';
import { C2C_TRUTH, c2cTruth, c2cTruthFile } from '../suites/lib/c2c.ts';
import { CF_TRUTH, cfTruth } from '../suites/lib/cf.ts';
import { userError } from './lib/user-error.ts';

const SCHEMA: TableSchema = {
  source: 'string',
  rows: { rows: { fields: { from: 'string', port: 'integer', tls: 'boolean', verdict: 'verdict', call: optional(['http', 'tcp']) }, key: ['from', 'port'] } },
};
const row = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ from: 'a', port: 80, tls: false, verdict: 'allowed:plaintext', ...over });
const table = (...rows: unknown[]): unknown => ({ source: 'hand-written', rows });
const check = (raw: unknown): string => userError(() => checkTruth(raw, 't.yaml', SCHEMA));

describe('truth-table loader (profiles/truth.ts)', () => {
  it('a good table loads as written', () => {
    const raw = table(row(), row({ from: 'b', call: 'tcp', verdict: 'denied:http-503' }));
    const t = checkTruth<{ source: string; rows: { from: string; call?: string }[] }>(raw, 't.yaml', SCHEMA);
    expect(t.source).to.equal('hand-written');
    expect(t.rows.map((r) => `${r.from} ${r.call}`)).to.deep.equal(['a undefined', 'b tcp']);
  });

  it('a missing field names the file, the row and the field', () => {
    const { port: _port, ...noPort } = row({ from: 'b' });
    expect(check(table(row(), noPort))).to.equal('t.yaml: rows[1].port is required');
  });

  it('a wrong type names the value and the kind it must be', () => {
    expect(check(table(row({ port: '80' })))).to.equal('t.yaml: rows[0].port "80" must be an integer');
    expect(check(table(row({ tls: 'yes' })))).to.equal('t.yaml: rows[0].tls "yes" must be true or false');
    expect(check(table(row(), row({ from: 'b', call: 'udp' })))).to.equal('t.yaml: rows[1].call "udp" must be one of http|tcp');
  });

  it('a bad verdict is refused', () => {
    expect(check(table(row({ verdict: 'allowed:maybe' })))).to.equal('t.yaml: rows[0].verdict "allowed:maybe" is not a verdict');
    expect(check(table(row({ verdict: 'denied:http-5xx' })))).to.equal('t.yaml: rows[0].verdict "denied:http-5xx" is not a verdict');
  });

  it('a duplicate row on the key is refused, naming the row it repeats', () => {
    expect(check(table(row(), row({ from: 'b' }), row({ verdict: 'denied:refused' })))).to.equal('t.yaml: rows[2] (from=a, port=80) repeats rows[0]');
  });

  it('a field the schema does not know, a missing top-level field and an empty table are refused', () => {
    expect(check(table(row({ prot: 'tcp' })))).to.equal('t.yaml: rows[0].prot is not a field of this table (fields: from, port, tls, verdict, call)');
    expect(check({ rows: [row()] })).to.equal('t.yaml: source is required');
    expect(check(table())).to.equal("t.yaml: 'rows' must be a non-empty list of rows");
    expect(check([row()])).to.equal('t.yaml: not a truth table (a mapping with source, rows)');
  });

  it('a named list of tables names the table in the row (tcp-routes-tls.yaml)', () => {
    const raw = parseYamlFile('fixtures/cf/truth/tcp-routes-tls.yaml') as { tables: { disabled: Record<string, unknown>[] } };
    raw.tables.disabled[4]!.tls_port = 1;
    expect(userError(() => checkTruth(raw, 'tcp-routes-tls.yaml', CF_TRUTH['tcp-routes-tls']))).to.equal('tcp-routes-tls.yaml: tables.disabled[4].tls_port 1 must be one of -1|0|N');
  });

  it('a fixture schema refuses a typo in its file (61443.yaml)', () => {
    const raw = parseYamlFile(c2cTruthFile('61443')) as { rows: Record<string, unknown>[] };
    raw.rows[7]!.xfcc = 'frontned';
    expect(userError(() => checkTruth(raw, '61443.yaml', C2C_TRUTH['61443']))).to.equal('61443.yaml: rows[7].xfcc "frontned" must be one of none|spoofed|frontend');
  });

  it('loadTruth reads the file and names it in the message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshproof-truth-'));
    try {
      const f = join(dir, 'bad.yaml');
      writeFileSync(f, 'source: s\nrows:\n  - { from: a, port: 80, tls: true, verdict: "allowed:tls" }\n  - { from: b, port: 81, tls: true, verdict: allowed }\n');
      expect(userError(() => loadTruth(f, SCHEMA))).to.equal(`${f}: rows[1].verdict "allowed" is not a verdict`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every C2C and CF truth table loads with its schema', () => {
  // Counted by hand in the files.
  const C2C_ROWS: Record<keyof typeof C2C_TRUTH, number> = { '61443': 8, 'egress-scope': 21, policy: 22, 'reserved-ports': 6, xfcc: 8 };
  it('fixtures/c2c/truth: 61443 (8 rows), egress-scope (21), policy (22), reserved-ports (6), xfcc (8)', () => {
    const loaded = Object.fromEntries(Object.keys(C2C_ROWS).map((n) => [n, c2cTruth<{ rows: unknown[] }>(n as keyof typeof C2C_TRUTH).rows.length]));
    expect(loaded).to.deep.equal(C2C_ROWS);
    expect(c2cTruth<{ format: string }>('xfcc').format).to.match(/^Hash=\{hash\};Subject="CN=\{instance\}/);
  });

  it('fixtures/cf/truth: route-integrity (10 rows), unproxied-ports (14), tcp-routes-tls (8 configs, 9 + 9 routes)', () => {
    expect(cfTruth<{ rows: unknown[] }>('route-integrity').rows).to.have.length(10);
    expect(cfTruth<{ rows: unknown[] }>('unproxied-ports').rows).to.have.length(14);
    const t = cfTruth<{ backend_port: number; backend_tls_port: number; configs: unknown[]; tables: Record<string, unknown[]> }>('tcp-routes-tls');
    expect([t.backend_port, t.backend_tls_port, t.configs.length]).to.deep.equal([8080, 61001, 8]);
    expect(Object.fromEntries(Object.entries(t.tables).map(([k, v]) => [k, v.length]))).to.deep.equal({ enabled: 9, disabled: 9 });
  });

  it('the schemas cover exactly the files in fixtures/c2c/truth and fixtures/cf/truth', () => {
    const names = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();
    expect(names('fixtures/c2c/truth')).to.deep.equal(Object.keys(C2C_TRUTH).sort());
    expect(names('fixtures/cf/truth')).to.deep.equal(Object.keys(CF_TRUTH).sort());
  });
});
