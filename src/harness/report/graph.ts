// The traffic graph of one scenario as inline SVG: pods are nodes (two columns when callers
// and callees are disjoint, else a circle), each probed (from, to, port, protocol) record is
// one edge, labeled like Kiali's security badges: closed padlock for allowed:mtls and
// allowed:tls, open padlock for allowed:plaintext, ⊘ for denied:*. Pure: data in, SVG text out.
import type { ResultRecord } from '../model/verdict.ts';
import { edgeKind, escapeXml as esc, unique, type EdgeKind } from './meta.ts';

export interface GraphOptions {
  /** data-idx of a record (its index in the page's record list); default its position in `records`. */
  indexOf?: (r: ResultRecord, i: number) => number;
  /** Accessible name of the graph. */
  title?: string;
  /** Add the SVG namespace so the text is also a valid standalone .svg file. */
  standalone?: boolean;
}

export const EDGE_COLOR: Record<EdgeKind, string> = {
  mtls: '#1a7f37',
  tls: '#0969da',
  plaintext: '#bf8700',
  denied: '#6e7781',
};
const DENY_MARK = '#cf222e';
const FAIL = '#cf222e';

const NODE_R = 18;
const FONT = 12;
const CHAR_W = 7; // rough width of one 12px sans-serif character, for margins only

interface Pt {
  x: number;
  y: number;
}

/** A badge centered on (0,0), about 18px across. */
export function badge(kind: EdgeKind): string {
  const c = EDGE_COLOR[kind];
  if (kind === 'denied') {
    return (
      `<circle r="9" fill="#fff" stroke="${DENY_MARK}" stroke-width="1"/>` +
      `<circle r="5.5" fill="none" stroke="${DENY_MARK}" stroke-width="1.8"/>` +
      `<line x1="-3.9" y1="3.9" x2="3.9" y2="-3.9" stroke="${DENY_MARK}" stroke-width="1.8"/>`
    );
  }
  const shackle = kind === 'plaintext' ? 'M-3.2,-0.5 v-4 a3.2,3.2 0 0 1 6.4,0 v0.8' : 'M-3.2,-0.5 v-2.3 a3.2,3.2 0 0 1 6.4,0 v2.3';
  return (
    `<circle r="9" fill="#fff" stroke="${c}" stroke-width="1"/>` +
    `<path d="${shackle}" fill="none" stroke="${c}" stroke-width="1.6"/>` +
    `<rect x="-4.6" y="-0.8" width="9.2" height="6.6" rx="1.2" fill="${c}"/>`
  );
}

/** A small standalone SVG of a badge, for table cells and the legend. */
export function badgeIcon(kind: EdgeKind, size = 16): string {
  return `<svg class="badge" width="${size}" height="${size}" viewBox="-9.5 -9.5 19 19" aria-hidden="true">${badge(kind)}</svg>`;
}

export function renderGraph(records: readonly ResultRecord[], opts: GraphOptions = {}): string {
  const froms = unique(records.map((r) => r.from));
  const tos = unique(records.map((r) => r.to));
  const nodes = unique([...froms, ...tos]);
  const labelW = Math.max(40, ...nodes.map((n) => n.length * CHAR_W));
  const columns = froms.length > 0 && tos.length > 0 && !froms.some((f) => tos.includes(f));
  const pos = new Map<string, Pt>();
  const anchor = new Map<string, { dx: number; dy: number; a: 'start' | 'middle' | 'end' }>();
  let width: number;
  let height: number;
  let center: Pt;

  if (columns) {
    const gap = 80;
    const rows = Math.max(froms.length, tos.length);
    const colGap = Math.max(260, rows * 30, froms.length * 70);
    height = Math.max(120, rows * gap + 40);
    width = 2 * (labelW + NODE_R + 24) + colGap;
    const xl = labelW + NODE_R + 24;
    const xr = xl + colGap;
    const place = (list: string[], x: number, side: 'start' | 'end') => {
      const top = (height - (list.length - 1) * gap) / 2;
      list.forEach((n, i) => {
        pos.set(n, { x, y: top + i * gap });
        anchor.set(n, { dx: side === 'end' ? -(NODE_R + 6) : NODE_R + 6, dy: 4, a: side });
      });
    };
    place(froms, xl, 'end');
    place(tos, xr, 'start');
    center = { x: (xl + xr) / 2, y: height / 2 };
  } else {
    const n = nodes.length;
    const R = n <= 1 ? 0 : Math.max(110, (n * 96) / (2 * Math.PI));
    const margin = labelW + NODE_R + 30;
    width = 2 * (R + margin);
    height = 2 * (R + NODE_R + 48);
    center = { x: width / 2, y: height / 2 };
    nodes.forEach((name, i) => {
      const th = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
      const c = Math.cos(th);
      const s = Math.sin(th);
      pos.set(name, { x: center.x + R * c, y: center.y + R * s });
      const a = c > 0.3 ? 'start' : c < -0.3 ? 'end' : 'middle';
      const d = NODE_R + 8;
      anchor.set(name, { dx: a === 'middle' ? 0 : c * d, dy: a === 'middle' ? (s < 0 ? -d : d + FONT - 2) : s * d + 4, a });
    });
  }

  // Parallel edges between the same two pods (either direction) fan out as curves.
  const pairKey = (r: ResultRecord) => [r.from, r.to].sort().join('\u0000');
  const pairs = new Map<string, number>();
  const slot = records.map((r) => {
    const k = pairKey(r);
    const i = pairs.get(k) ?? 0;
    pairs.set(k, i + 1);
    return i;
  });

  const edges = records.map((r, i) => {
    const idx = opts.indexOf ? opts.indexOf(r, i) : i;
    const count = pairs.get(pairKey(r)) ?? 1;
    // Columns: each caller's badges get their own band across the gap (0.3 … 0.7 of the way);
    // circle: toward the callee, so crossing edges spread by destination.
    const at = columns ? (froms.length > 1 ? 0.3 + (0.4 * froms.indexOf(r.from)) / (froms.length - 1) : 0.5) : 0.62;
    return edge(r, idx, slot[i]!, count, pos, center, at);
  });

  // The drawing's extent: nodes with their labels, and every curve's control points and badge.
  const box = nodes.length ? { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity } : { x0: 0, y0: 0, x1: width, y1: height };
  const grow = (x: number, y: number) => {
    box.x0 = Math.min(box.x0, x);
    box.y0 = Math.min(box.y0, y);
    box.x1 = Math.max(box.x1, x);
    box.y1 = Math.max(box.y1, y);
  };
  for (const n of nodes) {
    const p = pos.get(n)!;
    const l = anchor.get(n)!;
    const w = n.length * CHAR_W;
    const lx = p.x + l.dx;
    grow(p.x - NODE_R, p.y - NODE_R);
    grow(p.x + NODE_R, p.y + NODE_R);
    grow(l.a === 'end' ? lx - w : l.a === 'middle' ? lx - w / 2 : lx, p.y + l.dy - FONT);
    grow(l.a === 'start' ? lx + w : l.a === 'middle' ? lx + w / 2 : lx, p.y + l.dy + 4);
  }
  for (const e of edges) for (const p of e.extent) grow(p.x, p.y);
  const pad = 8;
  const vb = { x: box.x0 - pad, y: box.y0 - pad, w: box.x1 - box.x0 + 2 * pad, h: box.y1 - box.y0 + 2 * pad };

  const nodeSvg = nodes.map((n) => {
    const p = pos.get(n)!;
    const l = anchor.get(n)!;
    const role = froms.includes(n) && tos.includes(n) ? 'both' : froms.includes(n) ? 'client' : 'server';
    return (
      `<g class="node" data-node="${esc(n)}" data-role="${role}">` +
      `<circle cx="${f(p.x)}" cy="${f(p.y)}" r="${NODE_R}" fill="#f6f8fa" stroke="#57606a" stroke-width="1.5"/>` +
      `<text x="${f(p.x + l.dx)}" y="${f(p.y + l.dy)}" text-anchor="${l.a}" font-size="${FONT}" font-family="system-ui, sans-serif" fill="#24292f">${esc(n)}</text>` +
      `</g>`
    );
  });

  const ns = opts.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  const title = opts.title ?? `traffic graph: ${nodes.length} pods, ${records.length} probed cells`;
  return (
    `<svg${ns} class="graph" viewBox="${f(vb.x)} ${f(vb.y)} ${f(vb.w)} ${f(vb.h)}" width="${f(vb.w)}" height="${f(vb.h)}" role="img" aria-label="${esc(title)}">` +
    `<title>${esc(title)}</title>` +
    `<g class="nodes">${nodeSvg.join('')}</g>` +
    `<g class="edges">${edges.map((e) => e.svg).join('')}</g>` +
    `</svg>`
  );
}

/** One edge: a <g data-edge> holding its curve, arrowhead and badge (the whole group is the click target). */
function edge(r: ResultRecord, idx: number, slot: number, count: number, pos: Map<string, Pt>, center: Pt, badgeAt: number): { svg: string; extent: Pt[] } {
  const kind = edgeKind(r.verdict);
  const color = EDGE_COLOR[kind];
  const a = pos.get(r.from)!;
  const b = pos.get(r.to)!;
  let d: string;
  let mid: Pt;
  let tip: Pt;
  let dir: Pt;
  let extent: Pt[];

  if (r.from === r.to) {
    // Self call: a loop on the outside of the node, bigger for each further loop.
    // Turned 70° off the outward direction, so the loop clears the pod's label.
    const radial = norm(sub(a, center), { x: 0, y: -1 });
    const rot = (70 * Math.PI) / 180;
    const out = { x: radial.x * Math.cos(rot) - radial.y * Math.sin(rot), y: radial.x * Math.sin(rot) + radial.y * Math.cos(rot) };
    const side = { x: -out.y, y: out.x };
    const size = 34 + slot * 16;
    const s = add(a, add(mul(out, NODE_R * 0.7), mul(side, NODE_R * 0.7)));
    const e = add(a, add(mul(out, NODE_R * 0.7), mul(side, -NODE_R * 0.7)));
    const c1 = add(s, add(mul(out, size), mul(side, size * 0.6)));
    const c2 = add(e, add(mul(out, size), mul(side, -size * 0.6)));
    d = `M${f(s.x)},${f(s.y)} C${f(c1.x)},${f(c1.y)} ${f(c2.x)},${f(c2.y)} ${f(e.x)},${f(e.y)}`;
    mid = add(a, mul(out, NODE_R * 0.7 + size * 0.75));
    tip = e;
    dir = norm(sub(e, c2), out);
    extent = [c1, c2];
  } else {
    // Offsets are measured against the pair's canonical direction so a→b and b→a fan out to opposite sides.
    const [p, q] = r.from < r.to ? [a, b] : [b, a];
    const u = norm(sub(q, p), { x: 1, y: 0 });
    const n = { x: -u.y, y: u.x };
    // Fan spacing shrinks as parallel edges grow so a crowded pair stays within ~±120px.
    const step = count > 1 ? Math.min(30, 240 / (count - 1)) : 0;
    const offset = (slot - (count - 1) / 2) * step;
    const c = add(mul(add(a, b), 0.5), mul(n, offset * 2));
    const s = add(a, mul(norm(sub(c, a), u), NODE_R));
    const e = add(b, mul(norm(sub(c, b), u), NODE_R + 1));
    d = `M${f(s.x)},${f(s.y)} Q${f(c.x)},${f(c.y)} ${f(e.x)},${f(e.y)}`;
    // Where along the curve the badge sits (see badgeAt): off-center, so edges crossing the
    // middle of the drawing do not pile their badges up there.
    const t = badgeAt;
    mid = add(add(mul(s, (1 - t) ** 2), mul(c, 2 * t * (1 - t))), mul(e, t * t));
    tip = e;
    dir = norm(sub(e, c), u);
    extent = [mid];
  }

  const back = add(tip, mul(dir, -9));
  const perp = { x: -dir.y, y: dir.x };
  const head = [tip, add(back, mul(perp, 4.5)), add(back, mul(perp, -4.5))].map((p) => `${f(p.x)},${f(p.y)}`).join(' ');
  const attrs =
    `data-edge="${kind}" data-verdict="${esc(r.verdict)}" data-pass="${r.pass}" data-idx="${idx}" ` +
    `data-from="${esc(r.from)}" data-to="${esc(r.to)}" data-port="${r.port}" data-protocol="${esc(r.protocol)}"`;
  const label = `${r.from} → ${r.to}:${r.port}/${r.protocol}: ${r.verdict} (expected ${r.expected})${r.pass ? '' : ' WRONG'}`;
  const dash = kind === 'denied' ? ' stroke-dasharray="5 4"' : kind === 'plaintext' ? ' stroke-dasharray="2 3"' : '';
  const halo = r.pass ? '' : `<path d="${d}" fill="none" stroke="${FAIL}" stroke-opacity="0.25" stroke-width="8" stroke-linecap="round"/>`;
  const port =
    `<text x="11" y="4" font-size="9" font-family="system-ui, sans-serif" fill="#57606a">${r.port}</text>` +
    (r.pass ? '' : `<text x="-17" y="4" font-size="11" font-weight="bold" font-family="system-ui, sans-serif" fill="${FAIL}">!</text>`);
  const svg =
    `<g class="edge ${kind}${r.pass ? '' : ' wrong'}" ${attrs} tabindex="0" role="button" aria-label="${esc(label)}">` +
    `<title>${esc(label)}</title>${halo}` +
    `<path class="hit" d="${d}" fill="none" stroke="transparent" stroke-width="10"/>` +
    `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>` +
    `<polygon points="${head}" fill="${color}"/>` +
    `<g class="edge-badge" transform="translate(${f(mid.x)},${f(mid.y)})">${badge(kind)}${port}</g>` +
    `</g>`;
  extent.push({ x: mid.x - 20, y: mid.y - 10 }, { x: mid.x + 40, y: mid.y + 10 });
  return { svg, extent };
}

const add = (a: Pt, b: Pt): Pt => ({ x: a.x + b.x, y: a.y + b.y });
const sub = (a: Pt, b: Pt): Pt => ({ x: a.x - b.x, y: a.y - b.y });
const mul = (a: Pt, k: number): Pt => ({ x: a.x * k, y: a.y * k });
function norm(v: Pt, fallback: Pt): Pt {
  const l = Math.hypot(v.x, v.y);
  return l < 1e-9 ? fallback : { x: v.x / l, y: v.y / l };
}
const f = (x: number) => (Math.round(x * 10) / 10).toString();
