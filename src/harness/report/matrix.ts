// The Envoy version matrix: every probed cell × every Envoy version of a file → its record
// (verdict, pass). A nightly run over several versions shows one column per version here.
// Pure: data in, table out; markdown.ts and html.ts draw it.
import { baseCellKey, cellName, envoyVersionsOf, type CellRecord, type ResultsFile } from './meta.ts';

export interface MatrixRow {
  /** baseCellKey: the cell without its version. */
  key: string;
  suite: string;
  scenario: string;
  /** `from→to:port/protocol`. */
  cell: string;
  /** One entry per version (same order as VersionMatrix.versions): the record and its index in file.records, or null when not probed. */
  byVersion: ({ record: CellRecord; idx: number } | null)[];
  /** The verdicts are not all the same, or some version did not probe the cell. */
  differs: boolean;
  /** Some version got this cell wrong. */
  wrong: boolean;
}

export interface VersionMatrix {
  versions: string[];
  rows: MatrixRow[];
}

/** The matrix of a file with two or more Envoy versions; null otherwise. A cell probed twice in one version: the last record counts. */
export function versionMatrix(file: ResultsFile): VersionMatrix | null {
  const versions = envoyVersionsOf(file);
  if (versions.length < 2) return null;
  const rows = new Map<string, MatrixRow>();
  file.records.forEach((record, idx) => {
    const v = record.envoyVersion ? versions.indexOf(record.envoyVersion) : -1;
    if (v < 0) return;
    const key = baseCellKey(record);
    let row = rows.get(key);
    if (!row) {
      row = { key, suite: record.suite, scenario: record.scenario, cell: cellName(record), byVersion: versions.map(() => null), differs: false, wrong: false };
      rows.set(key, row);
    }
    row.byVersion[v] = { record, idx };
  });
  for (const row of rows.values()) {
    const verdicts = row.byVersion.map((x) => x?.record.verdict ?? null);
    row.differs = verdicts.some((x) => x === null || x !== verdicts[0]);
    row.wrong = row.byVersion.some((x) => x !== null && !x.record.pass);
  }
  return { versions, rows: [...rows.values()] };
}
