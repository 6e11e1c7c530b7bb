// X-Forwarded-Client-Cert as Envoy writes it, and the caller's Cloud Foundry identity in it. Pure; exported for users
// (an app behind the draft RFC's 62443 listener reads exactly this header).
//
// Header (Envoy docs, configuration/http/http_conn_man/headers.rst): elements separated by `,`, one per proxy hop,
// the last one being the immediate caller; `Key=value` pairs inside an element separated by `;`; keys `By`, `Hash`,
// `Cert`, `Chain`, `Subject`, `URI`, `DNS` (one `DNS=` per DNS SAN, likewise `By`/`URI`); `Subject` always in double
// quotes, `Cert`/`Chain` URL-encoded PEM.
//
// The Subject comes in two forms, and both are accepted:
// - RFC 2253, what Envoy 1.36.4 writes (seen on live traffic through the Diego 62443 listener, suites/c2c-xfcc):
//   `Subject="CN=<instance guid>,OU=app:<app>,OU=space:<space>,OU=organization:<org>"` — the certificate's RDNs in
//   REVERSE order (Diego issues OU=organization, OU=space, OU=app, CN in that DER order), `,` between RDNs, `+` inside a
//   multi-valued RDN, `\` escapes (`\,` `\+` `\"` `\\` `\<` `\>` `\;` `\=` `\#`, leading/trailing space, `\XX` hex);
// - the slash form of OpenSSL's X509_NAME_oneline that Envoy's docs still show (`/C=US/ST=CA/L=San Francisco/OU=Lyft/
//   CN=Test Client`): RDNs in DER order, each introduced by `/`, `+` inside a multi-valued RDN.
// Both parse to the same `rdns` (DER order, most significant first), so `CN=a,OU=b` and `/OU=b/CN=a` are equal.
// What Envoy 1.36.4 also writes, seen live: `URI=` with an EMPTY value when set_current_client_cert_details.uri is on
// and the certificate has no URI SAN (Diego identities have none); it is kept in `raw` and left out of `uri`.

export interface XfccPair {
  key: string;
  value: string;
}

/** One attribute of a distinguished name (`OU=app:…`); `type` as written, upper-cased. */
export interface DnAttribute {
  type: string;
  value: string;
}

export interface DistinguishedName {
  form: 'rfc2253' | 'slash';
  /** As it appeared in the header. */
  text: string;
  /** RDNs in the certificate's (DER) order, most significant first; each RDN has one or more attributes. */
  rdns: DnAttribute[][];
}

export interface XfccElement {
  /** `By=`: the URI SAN(s) of the proxy that added the element. */
  by: string[];
  /** `Hash=`: lowercase hex SHA-256 of the client certificate's DER. */
  hash: string | null;
  /** `Cert=` / `Chain=`: URL-decoded PEM. */
  cert: string | null;
  chain: string | null;
  subject: DistinguishedName | null;
  /** Non-empty `URI=` values, in order. */
  uri: string[];
  /** Non-empty `DNS=` values, in order. */
  dns: string[];
  /** Every pair as written (quotes removed), including empty ones such as Envoy's `URI=`. */
  raw: XfccPair[];
}

/** Split on `sep` outside double quotes; a backslash inside quotes keeps the next character with it. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted && c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new Error(`xfcc: unbalanced double quote in ${JSON.stringify(s)}`);
  parts.push(cur);
  return parts;
}

/** Removes surrounding quotes; `keepEscapes` leaves backslashes for a DN parser (they are RFC 2253 escapes). */
function unquote(v: string, keepEscapes: boolean): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    const inner = v.slice(1, -1);
    return keepEscapes ? inner : inner.replace(/\\(.)/g, '$1');
  }
  return v;
}

function decodeUrl(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/**
 * Parses an XFCC header into its elements (first = the farthest hop, last = the immediate caller). Keys are matched
 * case-insensitively. Throws on an unbalanced quote or a Subject that is not a distinguished name.
 */
export function parseXfcc(header: string): XfccElement[] {
  return splitOutsideQuotes(header, ',')
    .map((element) =>
      splitOutsideQuotes(element, ';')
        .map((p) => p.trim())
        .filter((p) => p !== '')
        .map((p): XfccPair => {
          const eq = p.indexOf('=');
          if (eq < 0) return { key: p, value: '' };
          const key = p.slice(0, eq).trim();
          return { key, value: unquote(p.slice(eq + 1).trim(), key.toLowerCase() === 'subject') };
        }),
    )
    .filter((pairs) => pairs.length > 0)
    .map((pairs) => {
      const all = (k: string) => pairs.filter((p) => p.key.toLowerCase() === k).map((p) => p.value);
      const first = (k: string) => all(k).find((v) => v !== '') ?? null;
      const subject = first('subject');
      const cert = first('cert');
      const chain = first('chain');
      return {
        by: all('by').filter((v) => v !== ''),
        hash: first('hash')?.toLowerCase() ?? null,
        cert: cert === null ? null : decodeUrl(cert),
        chain: chain === null ? null : decodeUrl(chain),
        subject: subject === null ? null : parseDistinguishedName(subject),
        uri: all('uri').filter((v) => v !== ''),
        dns: all('dns').filter((v) => v !== ''),
        raw: pairs,
      };
    });
}

/** The immediate caller's element (the last one), or null for an empty header. */
export function immediateCaller(header: string): XfccElement | null {
  const elements = parseXfcc(header);
  return elements[elements.length - 1] ?? null;
}

const ATTR_TYPE = /^\s*([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*)\s*=/;

/** RFC 2253 §2.4 value unescaping (also accepts an RFC 1779 quoted value). */
function unescapeValue(v: string, where: string): string {
  const t = v.replace(/^\s+/, '');
  if (t.startsWith('"') && t.trimEnd().endsWith('"') && t.trimEnd().length >= 2) return t.trimEnd().slice(1, -1).replace(/\\(.)/g, '$1');
  let out = '';
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length > 0) {
      out += Buffer.from(bytes).toString('utf8');
      bytes = [];
    }
  };
  // trailing unescaped spaces are not part of the value
  let end = t.length;
  while (end > 0 && t[end - 1] === ' ' && !(end >= 2 && t[end - 2] === '\\')) end--;
  for (let i = 0; i < end; i++) {
    const c = t[i]!;
    if (c !== '\\') {
      flush();
      out += c;
      continue;
    }
    const hex = /^[0-9A-Fa-f]{2}/.exec(t.slice(i + 1, i + 3));
    if (hex) {
      bytes.push(parseInt(hex[0], 16));
      i += 2;
    } else if (i + 1 < end) {
      flush();
      out += t[i + 1];
      i++;
    } else throw new Error(`xfcc: dangling backslash in ${where}`);
  }
  flush();
  return out;
}

/** Splits on an unescaped separator character (RFC 2253: a backslash escapes the next character). */
function splitUnescaped(s: string, seps: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && seps.includes(c)) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

function attribute(text: string, where: string): DnAttribute {
  const m = ATTR_TYPE.exec(text);
  if (!m) throw new Error(`xfcc: ${JSON.stringify(text)} in ${where} is not type=value`);
  return { type: m[1]!.toUpperCase(), value: unescapeValue(text.slice(m[0].length), where) };
}

/**
 * A distinguished name in either form (see the file comment); `rdns` always in DER order. An empty string is a name
 * with no RDNs.
 */
export function parseDistinguishedName(text: string): DistinguishedName {
  const where = JSON.stringify(text);
  if (text.trim() === '') return { form: 'rfc2253', text, rdns: [] };
  if (text.startsWith('/')) {
    // X509_NAME_oneline: `/` before each RDN, `+` between the attributes of one; a `/` or `+` not followed by
    // `type=` belongs to the value (oneline does not escape them).
    const rdns: DnAttribute[][] = [];
    const re = /([/+])([A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)=/g;
    const marks: { at: number; sep: string; type: string; valueAt: number }[] = [];
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m.index === 0 && m[1] !== '/') break;
      marks.push({ at: m.index, sep: m[1]!, type: m[2]!.toUpperCase(), valueAt: m.index + m[0].length });
    }
    if (marks.length === 0 || marks[0]!.at !== 0) throw new Error(`xfcc: ${where} is not a distinguished name`);
    marks.forEach((mk, i) => {
      const value = text.slice(mk.valueAt, i + 1 < marks.length ? marks[i + 1]!.at : text.length);
      const attr = { type: mk.type, value: value.replace(/\\x([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))) };
      if (mk.sep === '+' && rdns.length > 0) rdns[rdns.length - 1]!.push(attr);
      else rdns.push([attr]);
    });
    return { form: 'slash', text, rdns };
  }
  const rdns = splitUnescaped(text, ',;').map((rdn) => splitUnescaped(rdn, '+').map((a) => attribute(a, where)));
  return { form: 'rfc2253', text, rdns: rdns.reverse() };
}

function escape2253(v: string): string {
  let out = v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith(' ') || out.startsWith('#')) out = `\\${out}`;
  if (out.endsWith(' ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** RFC 2253 text (last RDN first), as Envoy writes Subject. */
export function formatRfc2253(dn: Pick<DistinguishedName, 'rdns'>): string {
  return [...dn.rdns].reverse().map((rdn) => rdn.map((a) => `${a.type}=${escape2253(a.value)}`).join('+')).join(',');
}

/** The slash (X509_NAME_oneline) text, DER order. */
export function formatSlash(dn: Pick<DistinguishedName, 'rdns'>): string {
  return dn.rdns.map((rdn) => `/${rdn.map((a) => `${a.type}=${a.value}`).join('+')}`).join('');
}

/** Values of one attribute type (e.g. `OU`), in DER order. */
export function attributeValues(dn: Pick<DistinguishedName, 'rdns'>, type: string): string[] {
  const t = type.toUpperCase();
  return dn.rdns.flat().filter((a) => a.type === t).map((a) => a.value);
}

/** Same name whatever the form: equal RDN sequences. */
export function sameDistinguishedName(a: Pick<DistinguishedName, 'rdns'>, b: Pick<DistinguishedName, 'rdns'>): boolean {
  return formatRfc2253(a) === formatRfc2253(b);
}

/** What a Diego instance identity says about its holder (credmanager: CN = instance guid; Cloud Controller's OUs). */
export interface CfIdentity {
  instanceGuid: string;
  appGuid: string;
  spaceGuid: string;
  organizationGuid: string;
}

/**
 * The CF identity in a subject: CN and the `app:`, `space:`, `organization:` OUs, whichever order they come in (each
 * exactly once, as gorouter's identity-aware routing also requires an `app:` OU). Null when any of them is missing or
 * repeated.
 */
export function cfIdentity(dn: Pick<DistinguishedName, 'rdns'>): CfIdentity | null {
  const cn = attributeValues(dn, 'CN');
  const ous = attributeValues(dn, 'OU');
  const one = (prefix: string): string | null => {
    const vs = ous.filter((o) => o.startsWith(prefix)).map((o) => o.slice(prefix.length));
    return vs.length === 1 && vs[0] !== '' ? vs[0]! : null;
  };
  const app = one('app:');
  const space = one('space:');
  const org = one('organization:');
  if (cn.length !== 1 || cn[0] === '' || app === null || space === null || org === null) return null;
  return { instanceGuid: cn[0]!, appGuid: app, spaceGuid: space, organizationGuid: org };
}
