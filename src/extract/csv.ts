/**
 * CSV text of an extract's rows, byte for byte what csv-stringify (6.x, sync API) wrote for them
 * with booleans cast to `true`/`false` (what extracts used until December 2026): fields joined by `,`, each record ended by `\n`, a field quoted when it holds `,`,
 * `"`, `\n` or `\r` (its quotes doubled), null and undefined as an empty field, booleans as
 * `true`/`false` (as NDJSON and GraphQL give them), numbers as `String(n)`, other objects as JSON (a Date as its time in ms).
 *
 * Why hand-written rather than csv-stringify: for an extract's plain cells the library made about
 * 3 KB of garbage per row (a [value, field] pair and a context object per cell, the record built
 * through several intermediate strings and arrays): a third of everything an enrollments extract
 * allocated, for a tenth of its output. These rules are the whole of what our cells need; a test
 * (test/unit/extract-csv.test.ts) holds them to csv-stringify's output on awkward values.
 */

/** A cell as an extract (or the bench's floor) hands it over. */
export type CsvCell = string | number | bigint | boolean | null | undefined | object;

/** Characters that make csv-stringify quote a field (delimiter, quote, record delimiters). */
const NEEDS_QUOTES = /[",\n\r]/;

/** One field's text. */
export function csvField(v: CsvCell): string {
  if (v === null || v === undefined) return '';
  let s: string;
  switch (typeof v) {
    case 'string':
      s = v;
      break;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
    case 'bigint':
      s = String(v);
      break;
    default:
      s = v instanceof Date ? String(v.getTime()) : JSON.stringify(v);
  }
  if (!NEEDS_QUOTES.test(s)) return s;
  return `"${s.includes('"') ? s.replaceAll('"', '""') : s}"`;
}

/**
 * Records as CSV lines, each ended by `\n` (a header is a record like any other); `cell` maps each
 * value first (an extract's formula-injection guard) without a copy of the rows.
 */
export function csvLines<T extends CsvCell>(rows: readonly (readonly T[])[], cell?: (v: T) => CsvCell): string {
  let out = '';
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i) out += ',';
      out += csvField(cell ? cell(row[i]!) : row[i]);
    }
    out += '\n';
  }
  return out;
}
