// Reading a Kubernetes-style YAML document field by field, as an API server's validation would:
// each wrong or unknown field is one UserError naming the file, the object and the field path.
// Pure; shared by every profile that reads users' Kubernetes YAML (istio, contrast).
import { UserError } from './errors.ts';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export class FieldReader {
  constructor(
    readonly source: string,
    /** `<Kind> <name>`, as messages name the object. */
    readonly what: string,
    /** The profile whose reader this is, for "not implemented by meshproof's <profile> profile". */
    readonly profile: string,
    /** Accept a port given as a string of digits (Istio's portLevelMtls keys are strings). */
    readonly numericStringPorts = false,
  ) {}

  fail(msg: string): never {
    throw new UserError(`${this.source}: ${this.what}: ${msg}`);
  }

  /** Rejects any key of `o` that is not in `known`. */
  only(o: Obj, path: string, known: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.fail(`field ${path ? `${path}.` : ''}${k} is not implemented by meshproof's ${this.profile} profile`);
    }
  }

  obj(v: unknown, path: string): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) this.fail(`field ${path} must be a mapping`);
    return v;
  }

  list(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(`field ${path} must be a list`);
    return v;
  }

  str(v: unknown, path: string, required = false): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(`field ${path} is required`);
      return undefined;
    }
    if (typeof v !== 'string') this.fail(`field ${path} must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  port(v: unknown, path: string): number {
    const n = this.numericStringPorts && typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) this.fail(`field ${path} must be a port number 1-65535, got ${JSON.stringify(v)}`);
    return n;
  }

  /** Labels and annotations: string values only (an unquoted `true` or number is a YAML scalar Kubernetes refuses). */
  labels(v: unknown, path: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(this.obj(v, path))) {
      if (typeof val !== 'string') this.fail(`field ${path}.${k} must be a string (quote it), got ${JSON.stringify(val)}`);
      out[k] = val;
    }
    return out;
  }

  strings(v: unknown, path: string): string[] {
    return this.list(v, path).map((s, i) => this.str(s, `${path}[${i}]`, true) as string);
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(`field ${path} must be one of ${allowed.join('|')}, got ${JSON.stringify(v)}`);
    return v as T;
  }
}
