/**
 * Reading CSV drops (OneRoster CSV, School Data Sync): a zip or a folder of files, RFC 4180, UTF-8
 * with or without BOM, CRLF or LF. Every problem names the file, the line and the column; in
 * tolerant mode, defects real exports contain become warnings (positions only, never values).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { unzipSync } from 'fflate';
import { z } from 'zod';
import { RostergateError } from '../src/errors.ts';
import { formatBytes } from './http.ts';

export type CsvMode = 'strict' | 'tolerant';

export interface Drop {
  /** File name (as in the drop) → bytes. Names are matched case-insensitively by `file()`. */
  files: Map<string, Buffer>;
  /** sha256 over names and bytes: the same drop read twice has the same fingerprint. */
  fingerprint: string;
}

/**
 * Size bounds of a drop, per source. A drop is read into memory whole, so a file must stay far below
 * V8's longest string (~512 MiB, past which it cannot be decoded: "Invalid string length"); 256 MiB
 * is over a million enrollment rows. No roster row comes near 1 MiB (a person is well under 4 KiB):
 * a larger one is a broken file, and stored as a record it would break every later sync.
 */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_ROW_BYTES = 1024 * 1024;

/** Config keys of the bounds, shared by the CSV drop connectors. */
export const csvLimitOptions = {
  /** Largest file of a drop (bytes, uncompressed for zip members). */
  maxFileBytes: z.number().int().positive().optional(),
  /** Largest row of a file (bytes). */
  maxRowBytes: z.number().int().positive().optional(),
};

export function readDrop(path: string, source: string, limits: { maxFileBytes?: number } = {}): Drop {
  if (!existsSync(path)) throw new RostergateError('DATA_FOLDER', `no CSV drop at ${path}`, { source });
  const max = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const tooLarge = (name: string, size: number) =>
    new RostergateError('SOURCE_TOO_LARGE', `the file is ${formatBytes(size)}, over the limit of ${formatBytes(max)} (limit maxFileBytes); nothing from the drop was applied`, { source, resource: name });
  const files = new Map<string, Buffer>();
  if (statSync(path).isDirectory()) {
    for (const f of readdirSync(path).sort()) {
      if (!f.toLowerCase().endsWith('.csv')) continue;
      const size = statSync(join(path, f)).size;
      if (size > max) throw tooLarge(f, size);
      files.set(f, readFileSync(join(path, f)));
    }
  } else {
    let entries: Record<string, Uint8Array>;
    try {
      // Members are checked by their declared size before they are inflated (a zip bomb never is).
      entries = unzipSync(readFileSync(path), {
        filter: (f) => {
          if (f.name.toLowerCase().endsWith('.csv') && f.originalSize > max) throw tooLarge(basename(f.name), f.originalSize);
          return true;
        },
      });
    } catch (e) {
      if (e instanceof RostergateError) throw e;
      throw new RostergateError('CSV_INVALID', `${basename(path)} is not a readable zip file (${(e as Error).message})`, { source });
    }
    for (const [name, bytes] of Object.entries(entries).sort()) {
      if (name.endsWith('/') || !name.toLowerCase().endsWith('.csv')) continue;
      // The declared size can lie: check what was inflated too.
      if (bytes.length > max) throw tooLarge(basename(name), bytes.length);
      files.set(basename(name), Buffer.from(bytes));
    }
  }
  const h = createHash('sha256');
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(name).update('\0').update(bytes).update('\0');
  return { files, fingerprint: h.digest('hex') };
}

/** A file of the drop by name, case-insensitively (exports vary: users.csv, Users.csv). */
export function file(drop: Drop, name: string): { name: string; bytes: Buffer } | undefined {
  const lower = name.toLowerCase();
  for (const [n, bytes] of drop.files) if (n.toLowerCase() === lower) return { name: n, bytes };
  return undefined;
}

const PARSE_ERRORS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is not closed (truncated file?)',
  INVALID_OPENING_QUOTE: 'a quote opens inside a field (a broken or truncated row?)',
  CSV_INVALID_CLOSING_QUOTE: 'a quoted field is followed by other characters',
  CSV_RECORD_INCONSISTENT_FIELDS_LENGTH: 'the row has a different number of fields than the header',
  CSV_RECORD_DONT_MATCH_COLUMNS_LENGTH: 'the row has a different number of fields than the header',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a quoted field is followed by other characters',
  CSV_MAX_RECORD_SIZE: 'the row is larger than the limit (maxRowBytes): a broken file? nothing from the drop was applied',
};

export interface CsvTable {
  file: string;
  header: string[];
  /** Rows as objects keyed by header, with their 1-based line numbers in the file. */
  rows: { line: number; values: Record<string, string> }[];
}

export interface CsvProblems {
  source: string;
  mode: CsvMode;
  warnings: string[];
  /** Rows left out on purpose, each with file, line, source key and why (the sync report's "skipped"). */
  skipped?: string[];
  /** Largest row accepted (bytes; DEFAULT_MAX_ROW_BYTES when absent). */
  maxRowBytes?: number;
}

export function fail(p: CsvProblems, file: string, line: number, column: string | undefined, message: string): never {
  throw new RostergateError('CSV_INVALID', message, { source: p.source, resource: file, record: column ? `line ${line}, column ${column}` : `line ${line}` });
}

/** In strict mode a defect is an error; in tolerant mode a warning naming file, line and column. */
export function defect(p: CsvProblems, file: string, line: number, column: string | undefined, message: string): void {
  if (p.mode === 'strict') fail(p, file, line, column, message);
  p.warnings.push(`${file} line ${line}${column ? `, column ${column}` : ''}: ${message}`);
}

/**
 * Parses one file. Structural breakage (an unterminated quote, a row with the wrong number of
 * fields) is always an error naming file and line, so a damaged file never applies half.
 */
export function readTable(p: CsvProblems, name: string, bytes: Buffer): CsvTable {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    // Field counts are checked below, where the header is known: the error can say expected vs found.
    records = parse(bytes, { bom: true, relax_quotes: false, skip_empty_lines: true, info: true, relax_column_count: true, max_record_size: p.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES }) as never;
  } catch (e) {
    // csv-parse's own messages quote the offending value: describe the problem by its code instead.
    const err = e as { lines?: number; code?: string };
    const detail = PARSE_ERRORS[err.code ?? ''] ?? `malformed CSV (${err.code ?? 'unknown error'})`;
    fail(p, name, err.lines ?? 0, undefined, detail);
  }
  if (records.length === 0) fail(p, name, 1, undefined, 'the file is empty: a header row is required');
  const header = records[0]!.record.map((h) => h.trim());
  for (const r of records.slice(1)) {
    if (r.record.length !== header.length) {
      fail(p, name, r.info.lines, undefined, `the row has a different number of fields than the header: expected ${header.length}, found ${r.record.length}`);
    }
  }
  return {
    file: name,
    header,
    rows: records.slice(1).map((r) => ({ line: r.info.lines, values: Object.fromEntries(header.map((h, i) => [h, r.record[i] ?? ''])) })),
  };
}

/**
 * Checks a header against the binding: required columns present (always an error), spec columns in
 * order with extensions only to the right (strict), unknown columns (strict error, tolerant warning).
 */
export function checkHeader(p: CsvProblems, t: CsvTable, spec: { columns: string[]; required: string[]; ordered?: boolean; extensionsAllowed?: boolean }): void {
  for (const r of spec.required) if (!t.header.includes(r)) fail(p, t.file, 1, r, `required column "${r}" is missing`);
  const known = t.header.filter((h) => spec.columns.includes(h));
  if (spec.ordered) {
    const expected = spec.columns.filter((c) => t.header.includes(c));
    if (known.join(',') !== expected.join(',')) defect(p, t.file, 1, undefined, `columns are not in the order the binding gives (${expected.join(',')})`);
    const lastKnown = Math.max(...known.map((k) => t.header.indexOf(k)));
    t.header.forEach((h, i) => {
      if (!spec.columns.includes(h) && i < lastKnown) defect(p, t.file, 1, h, `unknown column "${h}" among the binding's columns (extensions go to the right)`);
    });
  }
  for (const h of t.header) {
    if (!spec.columns.includes(h) && !(spec.extensionsAllowed && h.startsWith('metadata.'))) {
      if (!spec.ordered) defect(p, t.file, 1, h, `unknown column "${h}"`);
    }
  }
  const missing = spec.columns.filter((c) => !t.header.includes(c) && !spec.required.includes(c));
  if (missing.length) defect(p, t.file, 1, missing[0], `optional column(s) missing: ${missing.join(', ')}`);
}

/** A comma-separated multi-value cell ("1,3,5" in quotes in the file). */
export function multi(v: string | undefined): string[] {
  return (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
}

/** Records of one file of a drop, with the record types a complete file covers. */
export interface DropPart {
  file: string;
  records: import('../src/model/records.ts').SourceRecord[];
  completes?: import('../src/model/records.ts').EntityType[];
}

export type DropState = { fingerprint: string; done: true } | { fingerprint: string; done?: false; part: number; offset: number };

/**
 * Pages of a loaded drop, resumable at a file and row: the state names the drop by fingerprint, so
 * a resumed read of the same drop continues, a new drop starts over, and a finished one yields nothing.
 */
export async function* dropPages(
  parts: () => DropPart[],
  fingerprint: string,
  prev: DropState | null,
  full: boolean,
  pageSize = 1000,
  notes?: () => import('./types.ts').PageNotes | undefined,
): AsyncIterable<import('./types.ts').Page> {
  if (prev?.fingerprint === fingerprint && prev.done && !full) {
    yield { resource: 'drop', records: [], state: prev };
    return;
  }
  const loaded = parts();
  // What reading the drop found goes with the first page, for the sync report.
  let pending = notes?.();
  const withNotes = (page: import('./types.ts').Page) => {
    if (!pending) return page;
    const out = { ...page, notes: pending };
    pending = undefined;
    return out;
  };
  const start = prev?.fingerprint === fingerprint && !prev.done && !full ? prev : { part: 0, offset: 0 };
  if (loaded.length === 0) {
    yield withNotes({ resource: 'drop', records: [], state: { fingerprint, done: true } });
    return;
  }
  for (let i = start.part; i < loaded.length; i++) {
    const p = loaded[i]!;
    for (let off = i === start.part ? start.offset : 0; ; ) {
      const slice = p.records.slice(off, off + pageSize);
      off += slice.length;
      const lastOfPart = off >= p.records.length;
      const lastOfAll = lastOfPart && i === loaded.length - 1;
      yield withNotes({
        resource: p.file,
        records: slice,
        state: lastOfAll ? { fingerprint, done: true } : lastOfPart ? { fingerprint, part: i + 1, offset: 0 } : { fingerprint, part: i, offset: off },
        total: p.records.length,
        completes: lastOfPart ? p.completes : undefined,
      });
      if (lastOfPart) break;
    }
  }
}
