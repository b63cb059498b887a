/**
 * Pseudonym order in both stores (src/store/order.ts): keyset pages in (domain, version) order
 * return every row once, filters still apply, and a page is a walk of the pseudonyms_order index
 * from the cursor — not a sort of the whole list — so a district of 50,000 people pages in
 * constant time per page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { compareKeys, sortKeyOf, type PseudonymOrderedType } from '../../src/store/order.ts';
import type { ListQuery } from '../../src/store/types.ts';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import { sql } from 'kysely';

describe.each(storeKinds())('on %s', (kind) => {
  let g: PrivateGateway;
  const order = { domain: 'analytics', version: 1 };
  beforeAll(async () => {
    g = await privateGateway({ seed: 77, students: 150, teachers: 8, classes: 10, schools: 2 }, undefined, { store: kind });
  }, 120_000);
  afterAll(() => g?.close());

  async function all(q: Omit<ListQuery, 'first'>, first: number) {
    const keys: string[][] = [];
    const ids: string[] = [];
    const keyPeople: string[] = [];
    for (let afterKey: string[] | undefined, pages = 0; ; ) {
      // A cursor that does not move on would page for ever: fail instead.
      if (++pages > 5_000) throw new Error(`paging ${q.type} in pages of ${first} does not end`);
      const r = await g.store.list({ ...q, first, afterKey });
      keys.push(...r.keys!);
      keyPeople.push(...r.keyPeople!);
      ids.push(...r.rows.map((x) => x.id));
      if (!r.hasNext) return { keys, ids, keyPeople, count: await r.count() };
      afterKey = r.keys!.at(-1);
    }
  }

  it('pages people, enrollments and guardianships in sort-key order, every row once, filters included', async () => {
    const counts = await g.store.counts();
    for (const [type, extra, expected] of [
      ['person', {}, counts.person],
      ['enrollment', {}, counts.enrollment],
      ['guardianship', {}, counts.guardianship],
      ['person', { hasValue: { field: 'roles', value: 'teacher' } }, 8],
      ['enrollment', { fieldEquals: { field: 'role', value: 'teacher' } }, undefined],
    ] as [PseudonymOrderedType, Partial<ListQuery>, number | undefined][]) {
      const r = await all({ type, order, ...extra }, 7);
      expect(new Set(r.ids).size, type).toBe(r.ids.length);
      if (expected !== undefined) expect(r.ids.length, type).toBe(expected);
      expect(r.count, type).toBe(r.ids.length);
      expect(r.keys.every((k, i) => i === 0 || compareKeys(r.keys[i - 1]!, k) < 0), type).toBe(true);
      // The leading key is the pseudonym of the person the row leads to, in the order's domain and
      // version, and keyPeople names that person (rootListPage primes the pseudonym with it).
      expect(r.keyPeople.length, type).toBe(r.ids.length);
      const rows = await g.store.getEntities(r.ids);
      rows.forEach((row, i) => {
        const d = row!.data as Record<string, string>;
        const person = type === 'person' ? row!.id : type === 'enrollment' ? d.personId! : d.studentId!;
        expect(r.keyPeople[i], type).toBe(person);
        expect(r.keys[i]![0]).toBe(g.privacy.keyring.pseudonym('analytics', 1, person));
      });
    }
    // Other types ignore the order: id order, no keys.
    const classes = await g.store.list({ type: 'class', first: 100, order });
    expect(classes.keys).toBeUndefined();
    expect(classes.rows.map((x) => x.id)).toEqual(classes.rows.map((x) => x.id).sort());
  });

  it('reads a page by walking the pseudonyms_order index from the cursor, not by sorting the whole list', async () => {
    const seen: { sql: string; params: unknown[] }[] = [];
    const s = g.store as any;
    // Every read of the store goes through executeRead, a list's page through executeReadArrays
    // (src/store/queries/store-reads.ts).
    const method = 'executeReadArrays';
    const orig = s[method].bind(s);
    s[method] = (q: { sql: string; parameters: readonly unknown[] }) => (seen.push({ sql: q.sql, params: [...q.parameters] }), orig(q));
    try {
      for (const type of ['person', 'enrollment', 'guardianship'] as const) {
        const first = await g.store.list({ type, first: 20, order });
        seen.length = 0;
        await g.store.list({ type, first: 20, order, afterKey: first.keys!.at(-1) });
        const { sql, params } = seen[0]!;
        if (kind === 'sqlite') {
          const plan = (s.reader.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((x) => x.detail);
          // The walk starts in the index; only the tiebreak parts within one person are sorted.
          // The index covers each pseudonym's person (schema 18): no pseudonym row is read.
          expect(plan[0], type).toMatch(/^SEARCH k0 USING COVERING INDEX pseudonyms_order \(domain=\? AND version=\? AND value>\?\)/);
          // A record reached through a link is found by its key (SQLite's rowid), not by its id.
          if (type !== 'person') expect(plan, type).toContain('SEARCH e USING INTEGER PRIMARY KEY (rowid=?)');
          expect(plan.filter((l) => /TEMP B-TREE/.test(l)), type).toEqual(type === 'person' ? [] : ['USE TEMP B-TREE FOR LAST 2 TERMS OF ORDER BY']);
        } else {
          // A table of a few hundred rows is cheaper to sort than to walk, so PostgreSQL would rightly
          // sort it: with full sorts priced out, it shows the plan it takes at a district's size —
          // which exists only if the index matches the order (columns and COLLATE "C").
          const c = await s.pool.connect();
          let plan: string;
          try {
            // An index-only scan is priced by the pages known all-visible, as after a sync's autovacuum.
            await c.query('VACUUM (ANALYZE) pseudonyms');
            await c.query('SET enable_sort = off');
            plan = ((await c.query(`EXPLAIN ${sql}`, params)).rows as { 'QUERY PLAN': string }[]).map((x) => x['QUERY PLAN']).join('\n');
          } finally {
            await c.query('RESET enable_sort');
            c.release();
          }
          // Index-only: the index carries each pseudonym's person (schema 19), and the table is
          // vacuumed above, so no pseudonym row is read.
          expect(plan, type).toMatch(/Index Only Scan using pseudonyms_order on pseudonyms k0/);
          // A page is read by one backend: starting parallel workers cost more than the page (src/store/postgres.ts).
          expect(plan, type).not.toMatch(/Gather/);
          if (type === 'person') {
            // Keys first (src/store/queries/store-reads.ts, peopleKeysFirst): the page's pseudonyms
            // from the index, up to the limit; then their people in one scan of the id index; then
            // a sort of that page alone, at the top of the plan.
            expect(plan).toMatch(/CTE k\n\s+->\s+Limit[^\n]*\n\s+->\s+Index Only Scan using pseudonyms_order on pseudonyms k0/);
            expect(plan).toMatch(/(Index Scan using entities_pkey on entities e|Bitmap Index Scan on entities_pkey)[^\n]*\n\s+Index Cond: \(id = ANY \(\$\d+\)\)/);
            expect(plan.split('\n').filter((l) => /(^|->)\s*Sort\s+\(/.test(l))).toEqual([plan.split('\n')[0]]);
            expect(plan.split('\n')[1]).toMatch(/Sort Key: k\.v COLLATE "C"/);
          } else {
            // At most an incremental sort of the tiebreak parts within one person, never a full sort.
            expect(plan, type).not.toMatch(/(^|->)\s*Sort\s+\(/m);
          }
        }
      }
    } finally {
      s[method] = orig;
    }
  });

  it('reads a page in id order by walking the (type, id) index in byte order, not by sorting the type', async () => {
    const seen: { sql: string; params: unknown[] }[] = [];
    const s = g.store as any;
    const orig = s.executeReadArrays.bind(s);
    s.executeReadArrays = (q: { sql: string; parameters: readonly unknown[] }) => (seen.push({ sql: q.sql, params: [...q.parameters] }), orig(q));
    try {
      for (const type of ['enrollment', 'person', 'class'] as const) {
        const first = await g.store.list({ type, first: 20 });
        seen.length = 0;
        await g.store.list({ type, first: 20, afterId: first.rows.at(-1)!.id });
        const { sql, params } = seen[0]!;
        if (kind === 'sqlite') {
          const plan = (s.reader.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((x) => x.detail);
          expect(plan, type).toEqual(['SEARCH e USING INDEX entities_type_id (type=? AND id>?)']);
        } else {
          // As above: full sorts priced out, the plan a district's size gets — an index walk only if
          // the index is in the order's collation (schema 18 on PostgreSQL).
          const c = await s.pool.connect();
          let plan: string;
          let parallel: string;
          try {
            await c.query('SET enable_sort = off');
            plan = ((await c.query(`EXPLAIN ${sql}`, params)).rows as { 'QUERY PLAN': string }[]).map((x) => x['QUERY PLAN']).join('\n');
            parallel = (await c.query('SHOW max_parallel_workers_per_gather')).rows[0].max_parallel_workers_per_gather;
          } finally {
            await c.query('RESET enable_sort');
            c.release();
          }
          expect(parallel).toBe('0');
          expect(plan, type).toMatch(/Index (Only )?Scan using entities_type_id on entities e/);
          expect(plan, type).not.toMatch(/(^|->)\s*Sort\s+\(/m);
        }
      }
    } finally {
      s.executeReadArrays = orig;
    }
  });

  it('stores a pseudonym only for a stored person, so every person leading a walk is stored', async () => {
    const someClass = (await g.store.list({ type: 'class', first: 1 })).rows[0]!.id;
    const somePerson = (await g.store.list({ type: 'person', first: 1 })).rows[0]!.id;
    const before = await all({ type: 'enrollment', order }, 50);
    await g.store.transaction(async (tx) => {
      // An enrollment of a person who is not stored, and pseudonyms for that person, for a class and
      // for a stored person: only the last is written. '!' sorts before every character of a pseudonym.
      await tx.putEntity({ id: 'enr_ghost', type: 'enrollment', data: { personId: 'per_ghost', classId: someClass, role: 'student' }, updatedAt: new Date().toISOString(), updatedSeq: 1 });
      await tx.setLinks('enr_ghost', [{ rel: 'enrollment.person', to: 'per_ghost' }]);
      await tx.putPseudonyms([
        { ...order, entityId: 'per_ghost', value: '!ghost' },
        { ...order, entityId: someClass, value: '!class' },
        { domain: 'elsewhere', version: 1, entityId: somePerson, value: '!person' },
      ]);
    });
    try {
      const written = await g.store.transaction((tx) => (tx as WriteTx).db.selectFrom('pseudonyms').select(['entity_id', 'value'])
        .where('domain', '=', 'elsewhere').orderBy('entity_id').execute());
      const ghostly = await g.store.transaction((tx) => (tx as WriteTx).db.selectFrom('pseudonyms').select('entity_id')
        .where('entity_id', 'in', ['per_ghost', someClass]).execute());
      expect(written).toEqual([{ entity_id: somePerson, value: '!person' }]);
      expect(ghostly).toEqual([]);
      // The ghost's enrollment is not in the walk, and every person leading it is stored.
      const after = await all({ type: 'enrollment', order }, 50);
      expect(after).toEqual(before);
      const stored = await g.store.entityKeys([...new Set(after.keyPeople)]);
      expect(stored.every((k) => k?.type === 'person')).toBe(true);
    } finally {
      await g.store.transaction(async (tx) => {
        await tx.deleteEntity('enr_ghost');
        await (tx as WriteTx).db.deleteFrom('pseudonyms').where('domain', '=', 'elsewhere').execute();
      });
    }
  });

  it('makes an enrollment\'s class id part one way in SQL, from the row and in memory, whatever its class id holds', async () => {
    const lead = await g.store.list({ type: 'person', order, first: 1 });
    const person = lead.rows[0]!.id;
    const odd: [string, unknown][] = [
      ['num', 12], ['dec', 1.5], ['big', 12345678901234567890], ['true', true], ['false', false], ['obj', { a: 1, b: [2, 'x'] }],
      ['arr', [1, 'cls_a']], ['null', null], ['empty', ''], ['str', 'zz'], ['quote', 'cls_"q"\\ü'], ['numtext', '12'],
    ];
    const ids = [...odd.map(([name]) => `enr_odd_${name}`), 'enr_odd_absent'];
    await g.store.transaction(async (tx) => {
      for (const [name, classId] of [...odd, ['absent', undefined] as const]) {
        const data: Record<string, unknown> = { personId: person, role: 'student' };
        if (classId !== undefined) data['classId'] = classId;
        await tx.putEntity({ id: `enr_odd_${name}`, type: 'enrollment', data, updatedAt: new Date().toISOString(), updatedSeq: 1 });
        await tx.setLinks(`enr_odd_${name}`, [{ rel: 'enrollment.person', to: person }]);
      }
    });
    try {
      // The key's second part as the database's ORDER BY makes it, for every enrollment of the person.
      const text = kind === 'postgres'
        ? sql`CASE WHEN jsonb_typeof(data -> 'classId') = 'string' THEN data ->> 'classId' ELSE '' END`
        : sql`CASE json_type(data, '$.classId') WHEN 'text' THEN json_extract(data, '$.classId') ELSE '' END`;
      const expected = new Map((await g.store.transaction((tx) => sql<{ id: string; c: string }>`SELECT id, ${text} AS c FROM entities WHERE type = 'enrollment'`
        .execute((tx as WriteTx).db))).rows.map((r) => [r.id, r.c]));
      // In memory (a nested list filtered by updatedSince is sorted there): the same part for each.
      const rows = (await g.store.getEntities(ids)).filter((r) => r !== undefined);
      expect(rows).toHaveLength(ids.length);
      for (const r of rows) expect(sortKeyOf('enrollment', r, () => 'p')![1], r.id).toBe(expected.get(r.id));
      expect(expected.get('enr_odd_num')).toBe('');
      expect(expected.get('enr_odd_numtext')).toBe('12');
      // The person's nested list, cut in SQL, in pages of 1 and of all: the same parts, in key order.
      for (const first of [1, 500]) {
        const keys: string[][] = [];
        for (let afterKey: string[] | undefined, pages = 0; ; ) {
          if (++pages > 100) throw new Error('the nested list does not end');
          const p = (await g.store.linkedPages({ rel: 'enrollment.person', type: 'enrollment', order, first, afterKey }, [person])).get(person)!;
          keys.push(...p.keys);
          if (!p.hasNext) break;
          afterKey = p.keys.at(-1);
        }
        for (const k of keys) expect(k[1], k[2]).toBe(expected.get(k[2]!));
        expect(keys.map((k) => k[2]).filter((id) => id!.startsWith('enr_odd_')).sort()).toEqual([...ids].sort());
        for (let i = 1; i < keys.length; i++) expect(compareKeys(keys[i - 1]!, keys[i]!)).toBeLessThan(0);
      }
      for (const first of [1, 2, 3, 500]) {
        const got = await all({ type: 'enrollment', order }, first);
        got.ids.forEach((id, i) => {
          expect(got.keys[i]![1], `${id}, pages of ${first}`).toEqual(expected.get(id));
          expect(got.keys[i]![2]).toBe(id);
        });
        expect(got.ids.filter((id) => id.startsWith('enr_odd_')).sort(), `pages of ${first}: ${JSON.stringify(got.keys.filter((k) => k[2]!.startsWith('enr_odd')))}`).toEqual([...ids].sort());
        expect(new Set(got.ids).size).toBe(got.ids.length);
        for (let i = 1; i < got.keys.length; i++) expect(compareKeys(got.keys[i - 1]!, got.keys[i]!)).toBeLessThan(0);
      }
    } finally {
      await g.store.transaction(async (tx) => { for (const id of ids) await tx.deleteEntity(id); });
    }
  });

  // Last: it adds pseudonyms to the store, behind putPseudonyms' back (which would drop them). A
  // pseudonym whose person is gone cannot be stored through the store, but the page must not come
  // back short or end early where one is: PostgreSQL reads a page's pseudonyms before their people
  // (peopleKeysFirst in src/store/queries/store-reads.ts) and must read on.
  it('leaves out pseudonyms without their person, however many in a row, and pages on past them', async () => {
    const before = await all({ type: 'person', order }, 7);
    const lead = before.keys[10]![0]!;
    const someClass = (await g.store.list({ type: 'class', first: 1 })).rows[0]!.id;
    // '~' sorts after every character of a pseudonym: these come right after the 11th person, and at the end.
    const orphans = [
      ...Array.from({ length: 40 }, (_, i) => ({ entityId: `per_gone${i}`, value: `${lead}~${String(i).padStart(2, '0')}` })),
      { entityId: someClass, value: `${lead}~~` },
      ...Array.from({ length: 20 }, (_, i) => ({ entityId: `per_gone_last${i}`, value: `~~~${String(i).padStart(2, '0')}` })),
    ];
    await g.store.transaction((tx) => (tx as WriteTx).db.insertInto('pseudonyms')
      .values(orphans.map((o) => ({ domain: order.domain, version: order.version, entity_id: o.entityId, value: o.value }))).execute());
    for (const first of [7, 3, 1, 500]) {
      const after = await all({ type: 'person', order }, first);
      expect(after, `pages of ${first}`).toEqual(before);
    }
    // A page that starts among them.
    const r = await g.store.list({ type: 'person', order, first: 5, afterKey: [`${lead}~05`] });
    expect(r.rows.map((x) => x.id)).toEqual(before.ids.slice(11, 16));
    expect(r.hasNext).toBe(true);
    // The last page: only the orphans follow it.
    const last = await g.store.list({ type: 'person', order, first: 5, afterKey: before.keys.at(-3) });
    expect(last.rows.map((x) => x.id)).toEqual(before.ids.slice(-2));
    expect(last.hasNext).toBe(false);
  });
});
