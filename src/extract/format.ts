/**
 * An extract's rows as text: CSV (./csv.ts) with cells a spreadsheet would run as a formula made
 * harmless, or NDJSON. One place, because a parallel extract formats its pages in worker threads
 * (./parallel.ts) and they must come out byte for byte as the extract's own thread writes them.
 */
import { csvLines } from './csv.ts';
import type { Value } from './kanonymity.ts';

export type ExtractFormat = 'csv' | 'ndjson';
export const FORMATS: ExtractFormat[] = ['csv', 'ndjson'];

/**
 * Cells that a spreadsheet would run as a formula are prefixed with an apostrophe: those starting
 * with = + - @, tab, carriage return or NUL (OWASP ASVS 1.2.10), and the full-width = + - @ that
 * some East Asian spreadsheet locales read as formula signs too.
 */
export function protectCell(v: Value): Value {
  return typeof v === 'string' && /^[=+\-@\t\r\0\uFF1D\uFF0B\uFF0D\uFF20]/.test(v) ? `'${v}` : v;
}

/** NDJSON lines of rows, keys in column order (null for an absent value). */
function ndjson(names: readonly string[], rows: readonly Value[][]): string {
  let s = '';
  for (const r of rows) {
    const o: Record<string, Value> = {};
    for (let i = 0; i < names.length; i++) o[names[i]!] = r[i] ?? null;
    s += JSON.stringify(o) + '\n';
  }
  return s;
}

/** Rows (cells in column order) as the lines of an extract in `format`; the CSV header is the caller's. */
export function formatRows(format: ExtractFormat, names: readonly string[], rows: readonly Value[][]): string {
  return format === 'csv' ? csvLines(rows, protectCell) : ndjson(names, rows);
}
