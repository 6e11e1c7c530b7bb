// A Cyclonus-style truth table (mattfenwick/cyclonus pkg/connectivity/comparisontable.go): rows are
// the callers, columns the callees, each cell one mark per port/protocol in the order the top-left
// header cell gives: `.` allowed, `X` denied (`-` not probed). It prints the expected table, the
// observed one and "observed vs expected" (`.` same, `X` different), the wrong cells, then the
// tally `N wrong, N correct`. Pure: cells in, text out.
import type { Observed, ResultRecord } from '../model/verdict.ts';

/** A cell as the result record has it (`pass`: it agrees with its expectation in everything it is checked on, so a verdict can differ while both are `X`). */
export type CyclonusCell = Pick<ResultRecord, 'from' | 'to' | 'port' | 'protocol' | 'expected' | 'observed' | 'pass'> & {
  /** Printed for a wrong cell, e.g. `want denied:reset, got denied:http-503`. */
  detail?: string;
};

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

export function cyclonusTable(title: string, cells: CyclonusCell[]): string {
  const portOf = (c: CyclonusCell): string => `${c.protocol}/${c.port}`;
  const froms = unique(cells.map((c) => c.from));
  const tos = unique(cells.map((c) => c.to));
  const ports = unique(cells.map(portOf));
  const at = (from: string, to: string, port: string): CyclonusCell | undefined => cells.find((c) => c.from === from && c.to === to && portOf(c) === port);

  const corner = ports.join(' ');
  const w = Math.max(corner.length, ...froms.map((f) => f.length));
  const cw = (to: string): number => Math.max(ports.length * 2 - 1, to.length);
  const marks = (f: string, t: string, mark: (c: CyclonusCell) => string): string =>
    ports
      .map((p) => {
        const c = at(f, t, p);
        return c ? mark(c) : '-';
      })
      .join(' ');
  const grid = (heading: string, mark: (c: CyclonusCell) => string): string[] => [
    heading,
    `${corner.padEnd(w)} | ${tos.map((t) => t.padEnd(cw(t))).join(' | ')}`.trimEnd(),
    ...froms.map((f) => `${f.padEnd(w)} | ${tos.map((t) => marks(f, t, mark).padEnd(cw(t))).join(' | ')}`.trimEnd()),
  ];
  const dot = (o: Observed): string => (o === 'allowed' ? '.' : 'X');
  const wrong = cells.filter((c) => !c.pass);
  return [
    title,
    ...grid('expected:', (c) => dot(c.expected)),
    '',
    ...grid('observed:', (c) => dot(c.observed)),
    '',
    ...grid('observed vs expected (. same, X different):', (c) => (c.pass ? '.' : 'X')),
    ...wrong.map((c) => `wrong: ${c.from} → ${c.to} ${portOf(c)}${c.detail ? `: ${c.detail}` : ''}`),
    `${wrong.length} wrong, ${cells.length - wrong.length} correct`,
  ].join('\n');
}
