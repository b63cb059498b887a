/**
 * Rows known to be new, written to PostgreSQL by `COPY … FROM STDIN` (pg-copy-streams) instead of
 * `INSERT … SELECT` from a jsonb parameter (docs/data-engine.md, "Fresh rows by COPY").
 *
 * Why: a multi-row INSERT makes the server parse the whole page as one jsonb array and then pick
 * each cell out of it; COPY hands it the cells as they are. 200,000 source-record-shaped rows into a
 * table with their two indexes took 3.2–3.5 s by COPY against 5.6–7.7 s as INSERT … SELECT from
 * jsonb (this machine, same transaction shape). COPY has no conflict clause and no RETURNING, so it
 * takes only the rows the page unit knows cannot meet a stored one (FreshRows) and whose keys
 * nobody needs back; a wrong claim fails with the unique violation, as the INSERT did.
 *
 * The text format: a row a line, cells split by a tab, `\N` for SQL NULL, and a backslash, tab,
 * newline or carriage return inside a cell escaped with a backslash. A JSON column's cell is its
 * JSON text (the server parses it into jsonb, as before). Text is sent as UTF-8, which holds no lone
 * surrogate: one arrives as U+FFFD, as it did bound as a parameter.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { CopyRows, RowCells } from './dialect.ts';

/** Rows per piece of the stream: the server starts on the first while the next is written. */
const ROWS_PER_PIECE = 500;

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One cell in COPY's text format. */
export function copyCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  const s = typeof v === 'string' ? v : String(v);
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : s;
}

/** Rows as COPY text, a piece of at most ROWS_PER_PIECE rows at a time. */
export function* copyText(rows: readonly RowCells[], width: number): Generator<string> {
  for (let from = 0; from < rows.length; from += ROWS_PER_PIECE) {
    let out = '';
    const to = Math.min(rows.length, from + ROWS_PER_PIECE);
    for (let r = from; r < to; r++) {
      const row = rows[r]!;
      for (let i = 0; i < width; i++) {
        if (i) out += '\t';
        out += copyCell(row[i]);
      }
      out += '\n';
    }
    yield out;
  }
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * COPY on one client: the transaction's own connection, so the rows are part of the transaction.
 * The caller issues nothing else on it until the returned promise settles (each write of a unit
 * awaits its statements before the next starts), and pg runs a client's queries in the order
 * given, so the COPY neither overtakes nor is overtaken.
 */
export function copyInto(client: pg.ClientBase): CopyRows {
  return async (table, columns, rows) => {
    if (rows.length === 0) return;
    const stream = client.query(copyFrom(`COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
    await pipeline(Readable.from(copyText(rows, columns.length)), stream);
  };
}
