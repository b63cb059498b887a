/**
 * Rows known to be new go to PostgreSQL by COPY (src/store/postgres-copy.ts): the text format's
 * escapes, and on a real server that what a transaction writes so comes back as given (text COPY
 * would split or unescape, JSON, a JSON null value, SQL NULL), that a
 * false claim of a new row fails with the unique violation and leaves nothing, and that the COPY
 * runs inside the transaction, in order with the statements around it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyCell, copyText } from '../../src/store/postgres-copy.ts';
import type { SourceRecordRow, Store } from '../../src/store/types.ts';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

describe('COPY text format', () => {
  it('escapes what would end or split a cell, and writes SQL NULL as \\N', () => {
    expect(copyCell('plain')).toBe('plain');
    expect(copyCell('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyCell('\\N')).toBe('\\\\N');
    expect(copyCell(null)).toBe('\\N');
    expect(copyCell(undefined)).toBe('\\N');
    expect(copyCell(2 ** 40)).toBe('1099511627776');
    expect(copyCell('')).toBe('');
  });

  it('writes a row a line in pieces of at most 500 rows', () => {
    const rows = Array.from({ length: 1201 }, (_, i) => [i, `t${i}`, null]);
    const pieces = [...copyText(rows, 3)];
    expect(pieces.map((p) => p.split('\n').length - 1)).toEqual([500, 500, 201]);
    expect(pieces[0]!.split('\n')[0]).toBe('0\tt0\t\\N');
  });
});

const AWKWARD = ['plain', 'tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', 'ünïcødé 😀 学校', '"quoted"', ''];

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

describe.each(storeKinds())('rows known to be new on %s', (kind) => {
  async function store(): Promise<Store> {
    const s = await openTestStore(kind);
    stores.push(s);
    return s;
  }
  const record = (key: string, data: unknown, seenRun = 7): SourceRecordRow =>
    ({ source: 'src', type: 'person', key, entityId: null, data, hash: `h-${key}`, lastModified: null, seenRun }) as SourceRecordRow;

  it(kind === 'postgres' ? 'are written by COPY in a write transaction' : 'are written by multi-row statements (SQLite has no COPY)', async () => {
    const s = await store();
    const copies = await s.transaction(async (tx) => (tx as WriteTx).copies);
    expect(copies).toBe(kind === 'postgres');
  });

  // The transaction finds its client by server process id; a client that ends must leave that map.
  if (kind === 'postgres') it('forget the clients of a pool that ended', async () => {
    const s = await openTestStore(kind);
    await s.transaction(async () => undefined);
    const byProcess = (s as unknown as { pool: { byProcess: Map<number, unknown> } }).pool.byProcess;
    expect(byProcess.size).toBeGreaterThan(0);
    await s.close();
    expect(byProcess.size).toBe(0);
  });

  it('come back as given: awkward text, JSON, a JSON null value, SQL NULL', async () => {
    const s = await store();
    const rows = AWKWARD.map((t, i) => record(`k${i}\t${t}`, { text: t, list: [t, i, null], nested: { n: i } }));
    rows.push(record('json-null', null, 8));
    const fresh = new Set(rows.map((r) => r.key));
    await s.transaction(async (tx) => {
      await tx.putSourceRecords(rows, { fresh: (r) => fresh.has(r.key) });
    });
    const back = await s.transaction((tx) => tx.getSourceRecords(rows.map((r) => ({ source: r.source, type: r.type, key: r.key }))));
    expect(back.length).toBe(rows.length);
    for (const r of rows) {
      const b = back.find((x) => x.key === r.key)!;
      expect(b, r.key).toBeDefined();
      expect(b.data).toEqual(r.data);
      expect(b.seenRun).toBe(r.seenRun);
      expect(b.lastModified).toBeNull();
      expect(b.entityId).toBeNull();
    }
  });

  // SQLite keeps what better-sqlite3 makes of it; the claim here is COPY's.
  if (kind === 'postgres') it('write a lone surrogate in text as U+FFFD, as a bound parameter did', async () => {
    const s = await store();
    await s.transaction((tx) => tx.putSourceRecords([record('lone\ud800', {})], { fresh: () => true }));
    const back = await s.transaction((tx) => tx.getSourceRecords([{ source: 'src', type: 'person', key: 'lone\ufffd' }]));
    expect(back.map((r) => r.key)).toEqual(['lone\ufffd']);
  });

  it('fail with the unique violation when one was not new, and keep nothing of the transaction', async () => {
    const s = await store();
    await s.transaction((tx) => tx.putSourceRecords([record('stored', { v: 1 })]));
    const attempt = s.transaction(async (tx) => {
      await tx.putSourceRecords([record('other', { v: 2 })]);
      await tx.putSourceRecords([record('new', { v: 3 }), record('stored', { v: 4 })], { fresh: () => true });
    });
    await expect(attempt).rejects.toThrow(/unique|UNIQUE/);
    const back = await s.transaction((tx) => tx.getSourceRecords(['stored', 'other', 'new'].map((key) => ({ source: 'src', type: 'person', key }))));
    expect(back.map((r) => [r.key, r.data])).toEqual([['stored', { v: 1 }]]);
  });

  it('run in order with the statements before and after them in the transaction', async () => {
    const s = await store();
    await s.transaction(async (tx) => {
      await tx.putSourceRecords([record('a', { v: 1 })], { fresh: () => true });
      // An upsert of the row the COPY just wrote: it must see it, and win.
      await tx.putSourceRecords([record('a', { v: 2 })]);
      await tx.putSourceRecords([record('b', { v: 3 })], { fresh: () => true });
      const seen = await tx.getSourceRecords([{ source: 'src', type: 'person', key: 'b' }]);
      expect(seen.map((r) => r.data)).toEqual([{ v: 3 }]);
    });
    const back = await s.transaction((tx) => tx.getSourceRecords(['a', 'b'].map((key) => ({ source: 'src', type: 'person', key }))));
    expect(Object.fromEntries(back.map((r) => [r.key, r.data]))).toEqual({ a: { v: 2 }, b: { v: 3 } });
  });
});
