// The version matrix: every probed cell × every column of a file → its record (verdict, pass). A column is a
// value of the version axes that vary in the file (meta.ts varyingAxes): an Envoy version for a run over
// several Envoy versions, an Istio release (with its own Envoy) for one over several Istio versions.
// Pure: data in, table out; markdown.ts and html.ts draw it.
import { axisValue, baseCellKey, cellName, columnLabel, unique, varyingAxes, type CellRecord, type ResultsFile, type VersionAxis } from './meta.ts';

export interface MatrixRow {
  /** baseCellKey: the cell without its version. */
  key: string;
  suite: string;
  scenario: string;
  /** `from→to:port/protocol`. */
  cell: string;
  /** One entry per column (same order as VersionMatrix.versions): the record and its index in file.records, or null when not probed. */
  byVersion: ({ record: CellRecord; idx: number } | null)[];
  /** The verdicts are not all the same, or some column did not probe the cell. */
  differs: boolean;
  /** Some column got this cell wrong. */
  wrong: boolean;
}

/** One column: its value on each varying axis. */
export interface MatrixColumn {
  /** columnLabel: `envoy 1.37.0`, `istio 1.29.2`, `istio 1.29.2 · envoy 1.37.0`. */
  label: string;
  values: Partial<Record<VersionAxis, string>>;
}

export interface VersionMatrix {
  /** The axes the columns are made of, in VERSION_AXES order. */
  axes: VersionAxis[];
  /** Per column, its values joined with ` · ` (the version itself when one axis varies): `1.36.4`, `1.29.2 · 1.37.0`. */
  versions: string[];
  columns: MatrixColumn[];
  rows: MatrixRow[];
}

/** `Envoy version matrix`, `Istio version matrix`, `Istio × Envoy version matrix`. */
export function matrixTitle(axes: readonly VersionAxis[]): string {
  return `${axes.map((a) => (a === 'istio' ? 'Istio' : 'Envoy')).join(' × ')} version matrix`;
}

/** The matrix of a file with two or more values on a version axis; null otherwise. A cell probed twice in one column: the last record counts. */
export function versionMatrix(file: ResultsFile): VersionMatrix | null {
  const axes = varyingAxes(file);
  if (!axes.length) return null;
  const labels = unique(file.records.map((r) => columnLabel(r, axes)).filter((l): l is string => !!l));
  const columns: MatrixColumn[] = labels.map((label) => {
    const r = file.records.find((x) => columnLabel(x, axes) === label)!;
    return { label, values: Object.fromEntries(axes.map((a) => [a, axisValue(r, a)]).filter(([, v]) => !!v)) };
  });
  const rows = new Map<string, MatrixRow>();
  file.records.forEach((record, idx) => {
    const label = columnLabel(record, axes);
    const v = label ? labels.indexOf(label) : -1;
    if (v < 0) return;
    const key = baseCellKey(record);
    let row = rows.get(key);
    if (!row) {
      row = { key, suite: record.suite, scenario: record.scenario, cell: cellName(record), byVersion: labels.map(() => null), differs: false, wrong: false };
      rows.set(key, row);
    }
    row.byVersion[v] = { record, idx };
  });
  for (const row of rows.values()) {
    const verdicts = row.byVersion.map((x) => x?.record.verdict ?? null);
    row.differs = verdicts.some((x) => x === null || x !== verdicts[0]);
    row.wrong = row.byVersion.some((x) => x !== null && !x.record.pass);
  }
  return { axes, versions: columns.map((c) => axes.map((a) => c.values[a]).filter(Boolean).join(' · ')), columns, rows: [...rows.values()] };
}
