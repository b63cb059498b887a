/**
 * `rowsSelect`, the source of every multi-row write (src/store/dialect.ts): rows bound as one
 * parameter come back as given, column by column, on both stores — text that JSON and array
 * literals must escape, whole numbers past 32 bits, JSON values, and SQL NULL kept apart from a JSON
 * null value. On PostgreSQL the rows travel as one jsonb array, where a JSON column's text is
 * spliced in unquoted, so a value that broke out of its cell would show here.
 */
import { sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.ts';
import { sqliteDialect } from '../../src/store/sqlite.ts';
import { postgresDialect } from '../../src/store/postgres.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

const TEXTS = ['plain', 'a "quoted" \\ back\\slash', 'line\nbreak\ttab', '{"looks":"like json"}', '[1,2]', 'ünïcødé 😀 学校', '', 'null'];

describe.each(storeKinds())('rowsSelect on %s', (kind) => {
  const d = kind === 'sqlite' ? sqliteDialect : postgresDialect;
  type Row = { c0: string | null; c1: number | string | null; c2: unknown; c2null: unknown };

  async function roundTrip(rows: (string | number | null)[][]): Promise<Row[]> {
    const s = await openTestStore(kind);
    stores.push(s);
    const r = await sql<Row>`SELECT r.c0, r.c1, r.c2, r.c2 IS NULL AS c2null FROM (${d.rowsSelect(['text', 'int', 'json'], rows)}) AS r`.execute((s as unknown as { rdb: Kysely<unknown> }).rdb);
    return r.rows;
  }

  /** Rows with no JSON column (links, match keys, view times, pseudonyms): PostgreSQL writes them in one JSON.stringify. */
  async function roundTripPlain(rows: (string | number | null)[][]): Promise<Pick<Row, 'c0' | 'c1'>[]> {
    const s = await openTestStore(kind);
    stores.push(s);
    const r = await sql<Row>`SELECT r.c0, r.c1 FROM (${d.rowsSelect(['text', 'int'], rows)}) AS r`.execute((s as unknown as { rdb: Kysely<unknown> }).rdb);
    return r.rows;
  }

  it('gives back text and whole numbers as they were bound in rows with no JSON column, SQL NULL as NULL', async () => {
    const rows = [...TEXTS.map((t, i) => [t, 2 ** 40 + i]), [null, null]];
    const back = await roundTripPlain(rows);
    expect(back.length).toBe(rows.length);
    for (const r of back) {
      if (r.c0 === null) {
        expect(r.c1).toBeNull();
        continue;
      }
      expect(Number(r.c1)).toBe(2 ** 40 + TEXTS.indexOf(r.c0));
    }
    expect(back.map((r) => r.c0).filter((t) => t !== null).sort()).toEqual([...TEXTS].sort());
  });

  it('gives back text, whole numbers and JSON as they were bound, in any number of rows', async () => {
    const json = [{ a: 'x"y\\z', n: [1, 2.5, null], nested: { t: true } }, 'a string', 12, [], {}];
    const rows = TEXTS.map((t, i) => [t, 2 ** 40 + i, JSON.stringify(json[i % json.length])]);
    const back = await roundTrip(rows);
    expect(back.map((r) => r.c0).sort()).toEqual([...TEXTS].sort());
    for (const r of back) {
      const i = TEXTS.indexOf(r.c0!);
      expect(Number(r.c1)).toBe(2 ** 40 + i);
      expect(d.fromJson(r.c2)).toEqual(json[i % json.length]);
    }
  });

  it('keeps SQL NULL apart from a JSON null value', async () => {
    const back = await roundTrip([['sql-null', null, null], ['json-null', 1, 'null']]);
    const by = new Map(back.map((r) => [r.c0, r]));
    expect(Boolean(by.get('sql-null')!.c2null)).toBe(true);
    expect(by.get('sql-null')!.c1).toBeNull();
    expect(Boolean(by.get('json-null')!.c2null)).toBe(false);
    expect(d.fromJson(by.get('json-null')!.c2)).toBeNull();
  });

  // PostgreSQL only: what SQLite keeps of a lone surrogate is its own affair (the mapping boundary
  // repairs them before any store sees one: test/unit/sync-not-unicode.test.ts).
  if (kind === 'postgres') {
    it('writes a lone surrogate in text as U+FFFD, as a text parameter always did', async () => {
      const back = await roundTrip([['k\ud800', 1, '{}'], ['\udc00x', 2, '{}'], ['ok 😀', 3, '{}']]);
      expect(back.map((r) => r.c0).sort()).toEqual(['k\ufffd', 'ok 😀', '\ufffdx'].sort());
    });

    it('does the same in rows with no JSON column', async () => {
      const back = await roundTripPlain([['k\ud800', 1], ['\udc00x', 2], ['ok 😀', 3]]);
      expect(back.map((r) => r.c0).sort()).toEqual(['k\ufffd', 'ok 😀', '\ufffdx'].sort());
    });
  }
});
