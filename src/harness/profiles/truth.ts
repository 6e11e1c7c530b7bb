// One validated loader for hand-written truth tables (issue 12): the caller names the file and a small schema of its
// top-level fields and rows; every row is checked, duplicates on the caller's key are refused, and bad input is one
// line naming the file, the row and the field (a UserError, exit 2).
import { parseYamlFile } from '../substrate/topology.ts';
import { UserError } from '../model/errors.ts';

/** DESIGN.md "The verdict and the result record": allowed:* and denied:* refinements. */
export const VERDICT = /^(allowed:(mtls|tls|plaintext)|denied:(reset|tls-handshake|http-\d{3}|timeout|refused))$/;

/** What a field holds: a scalar kind, a list of strings or integers, or one of the listed values. */
export type FieldKind = 'string' | 'integer' | 'boolean' | 'verdict' | 'string[]' | 'integer[]' | readonly (string | number)[];
export interface OptionalField {
  optional: FieldKind;
}
export type FieldSpec = FieldKind | OptionalField;
export const optional = (kind: FieldKind): OptionalField => ({ optional: kind });

export interface RowSchema {
  fields: Readonly<Record<string, FieldSpec>>;
  /** The fields that name a row: no two rows may share them. */
  key: readonly string[];
}
/** A top-level field that is a non-empty list of rows, or a mapping of names to such lists (`tables: { enabled: [...] }`). */
export interface RowsSpec {
  rows: RowSchema;
  named?: true;
}
export type TableSchema = Readonly<Record<string, FieldSpec | RowsSpec>>;

/** Why `value` is not of `kind` (the tail of the message after the value), or null when it is. */
export function kindError(value: unknown, kind: FieldKind): string | null {
  if (typeof kind !== 'string') return kind.includes(value as string | number) ? null : `must be one of ${kind.join('|')}`;
  switch (kind) {
    case 'string':
      return typeof value === 'string' ? null : 'must be a string';
    case 'integer':
      return Number.isInteger(value) ? null : 'must be an integer';
    case 'boolean':
      return typeof value === 'boolean' ? null : 'must be true or false';
    case 'verdict':
      return VERDICT.test(String(value)) ? null : 'is not a verdict';
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? null : 'must be a list of strings';
    case 'integer[]':
      return Array.isArray(value) && value.every((v) => Number.isInteger(v)) ? null : 'must be a list of integers';
  }
}

/** The one-line message for a present field that is not of `kind` (`rows[3].verdict "ok" is not a verdict`), or null. */
export function fieldError(value: unknown, where: string, kind: FieldKind): string | null {
  const why = kindError(value, kind);
  return why === null ? null : `${where} ${JSON.stringify(value)} ${why}`;
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isRows = (s: FieldSpec | RowsSpec): s is RowsSpec => typeof s === 'object' && 'rows' in s;

/** Checks one mapping's fields against `fields`; `at` prefixes the field in messages (`rows[3].` or ``). */
function checkFields(m: Record<string, unknown>, fields: Readonly<Record<string, FieldSpec>>, at: string, bad: (msg: string) => never): void {
  for (const name of Object.keys(m)) if (!(name in fields)) bad(`${at}${name} is not a field of this table (fields: ${Object.keys(fields).join(', ')})`);
  for (const [name, spec] of Object.entries(fields)) {
    const opt = typeof spec === 'object' && 'optional' in spec;
    const kind = opt ? (spec as OptionalField).optional : (spec as FieldKind);
    if (m[name] === undefined || m[name] === null) {
      if (!opt) bad(`${at}${name} is required`);
      continue;
    }
    const e = fieldError(m[name], `${at}${name}`, kind);
    if (e !== null) bad(e);
  }
}

/** Checks a list of rows (`where` names it: `rows`, `tables.enabled`); refuses an empty list and a repeated key. */
function checkRows(list: unknown, where: string, schema: RowSchema, bad: (msg: string) => never): void {
  if (!Array.isArray(list) || list.length === 0) bad(`'${where}' must be a non-empty list of rows`);
  const seen = new Map<string, number>();
  for (const [i, r] of (list as unknown[]).entries()) {
    if (!isMapping(r)) bad(`${where}[${i}] is not a mapping`);
    checkFields(r as Record<string, unknown>, schema.fields, `${where}[${i}].`, bad);
    const key = schema.key.map((k) => `${k}=${String((r as Record<string, unknown>)[k])}`).join(', ');
    const dup = seen.get(key);
    if (dup !== undefined) bad(`${where}[${i}] (${key}) repeats ${where}[${dup}]`);
    seen.set(key, i);
  }
}

/** Pure: `raw` (a parsed file) checked against `schema`; `path` names it in messages. The caller's T is the shape the schema describes. */
export function checkTruth<T>(raw: unknown, path: string, schema: TableSchema): T {
  const bad = (msg: string): never => {
    throw new UserError(`${path}: ${msg}`);
  };
  if (!isMapping(raw)) bad(`not a truth table (a mapping with ${Object.keys(schema).join(', ')})`);
  const m = raw as Record<string, unknown>;
  const scalars: Record<string, FieldSpec> = {};
  for (const [name, spec] of Object.entries(schema)) if (!isRows(spec)) scalars[name] = spec;
  for (const name of Object.keys(m)) if (!(name in schema)) bad(`${name} is not a field of this table (fields: ${Object.keys(schema).join(', ')})`);
  checkFields(Object.fromEntries(Object.keys(scalars).map((k) => [k, m[k]])), scalars, '', bad);
  for (const [name, spec] of Object.entries(schema)) {
    if (!isRows(spec)) continue;
    if (!spec.named) {
      checkRows(m[name], name, spec.rows, bad);
      continue;
    }
    const tables = m[name];
    if (!isMapping(tables) || Object.keys(tables).length === 0) bad(`'${name}' must be a mapping of names to lists of rows`);
    for (const [t, list] of Object.entries(tables as Record<string, unknown>)) checkRows(list, `${name}.${t}`, spec.rows, bad);
  }
  return raw as T;
}

/** Reads a truth-table file (YAML) and checks it against `schema`. */
export function loadTruth<T>(path: string, schema: TableSchema): T {
  return checkTruth<T>(parseYamlFile(path), path, schema);
}
