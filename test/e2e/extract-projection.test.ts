/**
 * Compiled extract projections against GraphQL: for every demo purpose and every dataset, the rows
 * a projection makes straight from the store must equal, column by column and in the same order,
 * what a GraphQL execution of the same purpose schema returns for the same records — and so must
 * the people each discloses (audit, ledger). On SQLite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import type { GraphQLSchema } from 'graphql';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { columnsFor, DATASETS, type Dataset } from '../../src/extract/columns.ts';
import { compileProjection, projectedPages } from '../../src/extract/projection.ts';
import { pageRangesOf, runExtract } from '../../src/extract/extract.ts';
import { Writable } from 'node:stream';
import type { Value } from '../../src/extract/kanonymity.ts';
import { isRostergateError } from '../../src/errors.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { graphqlExtract, type ReferenceRows } from '../support/extract-reference.ts';
import { KeyMemo } from '../../src/graphql/loaders.ts';
import { demographicsIdFor, typeOfId } from '../../src/sync/ids.ts';
import type { EntityRow } from '../../src/store/types.ts';

const DATASET_NAMES = Object.keys(DATASETS) as Dataset[];
const clientOf = (purpose: string) => DEMO_CLIENTS.find((c) => c.purpose === purpose)!.id;

/**
 * The compiled projection's rows (pages of an odd size, so page boundaries differ from the
 * reference's), related records' keys remembered across pages as runExtract does.
 */
async function projected(g: PrivateGateway, client: string, dataset: Dataset, schema?: GraphQLSchema, keyMemo = new KeyMemo(), inRanges = false): Promise<ReferenceRows> {
  const purpose = g.privacy.clientPurpose(client)!;
  const own = g.privacy.schemas.get(purpose.id)!.schema;
  const { columns } = columnsFor(own, dataset);
  const projection = compileProjection(schema ?? own, dataset, columns);
  const out: ReferenceRows = { columns: columns.map((c) => c.name), cells: [], people: new Set() };
  const newContext = () => g.privacy.context(g.store, new Map(), { client, purpose }, { sharedCache: false, keyMemo });
  // In ranges of about a page, the next range listed beside this one, as runExtract reads on PostgreSQL.
  const ranges = inRanges ? await pageRangesOf(g.store, dataset, newContext, 37) : undefined;
  for await (const page of projectedPages(projection, newContext, 37, ranges)) {
    out.cells.push(...page.cells);
    for (const id of page.people) out.people.add(id);
  }
  return out;
}

/** The rows `run` projects, and the ids of every record the store was asked for whole meanwhile. */
async function readingWhole(g: PrivateGateway, run: () => Promise<ReferenceRows>): Promise<{ rows: ReferenceRows; whole: Set<string> }> {
  const whole = new Set<string>();
  const store = g.store as { getEntities: typeof g.store.getEntities };
  const { getEntities } = store;
  store.getEntities = (ids) => (ids.forEach((id) => whole.add(id)), getEntities.call(g.store, ids));
  try {
    return { rows: await run(), whole };
  } finally {
    store.getEntities = getEntities;
  }
}

/** Every cell where the two disagree, as "row i, column: projection ≠ reference". */
function differences(a: ReferenceRows, b: ReferenceRows): string[] {
  const out: string[] = [];
  if (a.cells.length !== b.cells.length) out.push(`rows: ${a.cells.length} ≠ ${b.cells.length}`);
  const show = (v: Value | undefined) => JSON.stringify(v);
  for (let i = 0; i < Math.min(a.cells.length, b.cells.length); i++) {
    a.columns.forEach((c, j) => {
      if (!Object.is(a.cells[i]![j], b.cells[i]![j])) out.push(`row ${i}, ${c}: ${show(a.cells[i]![j])} ≠ ${show(b.cells[i]![j])}`);
    });
  }
  return out;
}

describe.each(storeKinds())('compiled extract projections equal GraphQL, on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway(undefined, undefined, { store: kind });
  }, 300_000);
  afterAll(() => g?.close());

  it('for every demo purpose and every dataset: the same rows, column by column, in the same order, disclosing the same people', { timeout: 300_000 }, async () => {
    let compared = 0;
    const filled = new Set<string>();
    const readable: string[] = [];
    for (const purpose of Object.keys(DEMO_PURPOSES)) {
      const client = clientOf(purpose);
      const schema = g.privacy.schemas.get(purpose)!.schema;
      for (const dataset of DATASET_NAMES) {
        let reference: ReferenceRows;
        try {
          reference = await graphqlExtract(g.store, g.privacy, client, dataset);
        } catch (e) {
          // A dataset the purpose cannot list: neither can its projection be compiled.
          if (!isRostergateError(e, 'FORBIDDEN')) throw e;
          const { root, type } = DATASETS[dataset];
          expect(!schema.getQueryType()!.getFields()[root] || !schema.getType(type), `${purpose} ${dataset}`).toBe(true);
          await expect(projected(g, client, dataset)).rejects.toThrow(/cannot read/);
          continue;
        }
        readable.push(`${purpose}/${dataset}`);
        for (const inRanges of [false, true]) {
          const mine = await projected(g, client, dataset, undefined, undefined, inRanges);
          const what = `${purpose} ${dataset}${inRanges ? ' in ranges' : ''}`;
          expect(mine.columns).toEqual(reference.columns);
          expect(differences(mine, reference), what).toEqual([]);
          expect([...mine.people].sort(), `${what}: people disclosed`).toEqual([...reference.people].sort());
        }
        expect(reference.cells.length, `${purpose} ${dataset}`).toBeGreaterThan(0);
        compared += reference.cells.length * reference.columns.length;
        reference.columns.forEach((c, j) => {
          if (reference.cells.some((r) => r[j] !== null)) filled.add(`${dataset}.${c}`);
        });
      }
    }
    // The comparison covered what matters: every dataset for admin and analytics, and the transforms
    // that differ from the stored value (pseudonyms, generalised values, related ids, enums, lists).
    for (const dataset of DATASET_NAMES) expect(readable).toEqual(expect.arrayContaining([`admin/${dataset}`, `analytics/${dataset}`]));
    expect([...filled]).toEqual(expect.arrayContaining([
      'people.id', 'people.gradeBand', 'people.roles', 'people.demographics.birthYear', 'people.demographics.ageBand',
      'enrollments.person.id', 'enrollments.class.id', 'enrollments.role', 'classes.school.id', 'classes.terms.id', 'guardianships.guardian.id',
    ]));
    expect(compared).toBeGreaterThan(10_000);
  });

  it('notices a transform that differs from GraphQL’s, and a person id shown without its pseudonym', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const own = g.privacy.schemas.get('analytics')!.schema;
    const reference = await graphqlExtract(g.store, g.privacy, client, 'people');
    // The grade band made a different way: every row whose band is not 'K-2' now differs.
    const wrongBand = mapSchema(own, {
      [MapperKind.OBJECT_FIELD]: (f, name, type) => (type === 'Person' && name === 'gradeBand' ? { ...f, resolve: () => 'K-2' } : f),
    });
    const banded = differences(await projected(g, client, 'people', wrongBand), reference);
    expect(banded.length).toBeGreaterThan(0);
    expect(banded.every((d) => /^row \d+, gradeBand: "K-2" ≠ /.test(d))).toBe(true);
    // The same columns through the open schema: gateway ids where the purpose shows pseudonyms.
    const open = g.privacy.schemas.get('admin')!.schema;
    const unpseudonymised = differences(await projected(g, client, 'people', open), reference);
    expect(unpseudonymised.some((d) => /^row \d+, id: "per_/.test(d) || /^rows:/.test(d))).toBe(true);
  });

  it('a chain that reads more of a related record than its key gets whole records, and the same values', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const own = g.privacy.schemas.get('analytics')!.schema;
    const reference = await graphqlExtract(g.store, g.privacy, client, 'enrollments');
    // Enrollment.class made to look at the class's data: served a key-only row, it must not answer from nothing.
    const reading = mapSchema(own, {
      [MapperKind.OBJECT_FIELD]: (f, name, type) => {
        if (type !== 'Enrollment' || name !== 'class') return f;
        const inner = f.resolve!;
        return { ...f, resolve: async (...a: Parameters<typeof inner>) => {
          const c = (await inner(...a)) as { data: unknown } | null;
          return c && c.data ? c : null;
        } };
      },
    });
    const { rows: mine, whole } = await readingWhole(g, () => projected(g, client, 'enrollments', reading));
    expect(differences(mine, reference)).toEqual([]);
    expect([...whole].some((id) => id.startsWith('cls_'))).toBe(true);
  });

  it('a key remembered from an earlier page is served at once, and a chain reading more of it still gets the whole record', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const own = g.privacy.schemas.get('analytics')!.schema;
    const reference = await graphqlExtract(g.store, g.privacy, client, 'enrollments');
    // A memo that already holds every class: Enrollment.class answers from it without a promise.
    const keyMemo = new KeyMemo();
    expect(differences(await projected(g, client, 'enrollments', undefined, keyMemo), reference)).toEqual([]);
    let synchronous = 0;
    // Made to look at the class's data, synchronously: the key-only row served at once must throw,
    // not answer from nothing, and the cell be made again from the whole class.
    const reading = mapSchema(own, {
      [MapperKind.OBJECT_FIELD]: (f, name, type) => {
        if (type !== 'Enrollment' || name !== 'class') return f;
        const inner = f.resolve!;
        const look = (c: { data: unknown } | null) => (c && c.data ? c : null);
        return { ...f, resolve: (...a: Parameters<typeof inner>) => {
          const c = inner(...a) as { data: unknown } | null | Promise<{ data: unknown } | null>;
          if (c instanceof Promise) return c.then(look);
          synchronous++;
          return look(c);
        } };
      },
    });
    const { rows: mine, whole } = await readingWhole(g, () => projected(g, client, 'enrollments', reading, keyMemo));
    expect(synchronous).toBeGreaterThan(0);
    expect(differences(mine, reference)).toEqual([]);
    expect([...whole].some((id) => id.startsWith('cls_'))).toBe(true);
  });

  it('a related record found on one page is not looked up again on the next, within the memo\'s bound', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const reference = await graphqlExtract(g.store, g.privacy, client, 'enrollments');
    const asked = new Map<string, number>();
    const store = g.store as { entityKeys: typeof g.store.entityKeys };
    const { entityKeys } = store;
    store.entityKeys = (ids) => (ids.forEach((id) => asked.set(id, (asked.get(id) ?? 0) + 1)), entityKeys.call(g.store, ids));
    const count = async (keyMemo: KeyMemo) => {
      asked.clear();
      const rows = await projected(g, client, 'enrollments', undefined, keyMemo);
      expect(differences(rows, reference)).toEqual([]);
      return { classes: [...asked].filter(([id]) => id.startsWith('cls_')), lookups: [...asked.values()].reduce((a, b) => a + b, 0) };
    };
    try {
      const roomy = await count(new KeyMemo());
      // Classes recur on many pages of 37 enrollments in pseudonym order: each was asked once.
      expect(roomy.classes.length).toBeGreaterThan(1);
      expect(roomy.classes.every(([, n]) => n === 1)).toBe(true);
      // A memo of one key cannot hold them: the same values, from more lookups (the bound holds).
      const tight = await count(new KeyMemo(1));
      expect(tight.classes.some(([, n]) => n > 1)).toBe(true);
      expect(tight.lookups).toBeGreaterThan(roomy.lookups);
    } finally {
      store.entityKeys = entityKeys;
    }
  });

  it('lists the next page while this one waits for its related records, and still projects pages one after another', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const reference = await projected(g, client, 'guardianships');
    // A store whose key reads (the guardians of a page of guardianships) answer late, as a server's would.
    const events: string[] = [];
    const store = g.store as { list: typeof g.store.list; entityKeys: typeof g.store.entityKeys };
    const { list, entityKeys } = store;
    let lists = 0;
    let reads = 0;
    store.list = async (q) => {
      const n = ++lists;
      events.push(`list ${n}`);
      return list.call(g.store, q);
    };
    store.entityKeys = async (ids) => {
      const n = ++reads;
      events.push(`read ${n}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      events.push(`read ${n} done`);
      return entityKeys.call(g.store, ids);
    };
    try {
      const rows = await projected(g, client, 'guardianships');
      expect(differences(rows, reference)).toEqual([]);
      expect(reads).toBeGreaterThan(3);
      // The second page was listed before the first page's related records came back.
      expect(events.indexOf('list 2')).toBeLessThan(events.indexOf('read 1 done'));
      // Pages are projected in order, each after the one before it: no page's reads overlap another's.
      for (let n = 1; n < reads; n++) expect(events.indexOf(`read ${n} done`)).toBeLessThan(events.indexOf(`read ${n + 1}`));
    } finally {
      store.list = list;
      store.entityKeys = entityKeys;
    }
  });

  it('ranges that hold no rows (at the start, between two others, at the end) change nothing', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const purpose = g.privacy.clientPurpose(client)!;
    const schema = g.privacy.schemas.get(purpose.id)!.schema;
    const { columns } = columnsFor(schema, 'enrollments');
    const projection = compileProjection(schema, 'enrollments', columns);
    const newContext = () => g.privacy.context(g.store, new Map(), { client, purpose }, { sharedCache: false, keyMemo: new KeyMemo() });
    const ranges = await pageRangesOf(g.store, 'enrollments', newContext, 37);
    expect(ranges.length).toBeGreaterThan(3);
    // A range from a bound to itself holds nothing; so does one above the last bound but the last.
    const at = (b: string) => ({ ...ranges[1]!, lead: { above: b, upTo: b } });
    const first = ranges[0]!.lead.upTo!;
    const between = ranges[1]!.lead.upTo!;
    const withEmpty = [{ ...ranges[0]!, lead: { upTo: '' } }, ranges[0]!, ranges[1]!, at(between), ...ranges.slice(2), at(first)];
    const read = async (parts: typeof ranges) => {
      const cells: Value[][] = [];
      for await (const page of projectedPages(projection, newContext, 37, parts)) cells.push(...page.cells);
      return cells;
    };
    const whole = await read(ranges);
    expect(whole.length).toBeGreaterThan(100);
    expect(await read(withEmpty)).toEqual(whole);
  });

  it('on PostgreSQL a list of more than two pages is read in ranges, two listings at once, and gives the same text as one chain', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const text = async (pageSize: number) => {
      const chunks: string[] = [];
      const out = new Writable({ write: (c, _e, done) => (chunks.push(String(c)), done()) });
      const r = await runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client, dataset: 'enrollments', format: 'csv', out, pageSize });
      return { text: chunks.join(''), rows: r.rows };
    };
    // Listings that answer late, as a loaded server's would, counted while they run.
    const store = g.store as { list: typeof g.store.list };
    const { list } = store;
    let running = 0;
    let most = 0;
    let lists = 0;
    store.list = async (q) => {
      lists++;
      most = Math.max(most, ++running);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return await list.call(g.store, q);
      } finally {
        running--;
      }
    };
    let paged: Awaited<ReturnType<typeof text>>;
    try {
      paged = await text(37);
    } finally {
      store.list = list;
    }
    expect(paged.rows).toBeGreaterThan(4 * 37);
    expect(lists).toBeGreaterThan(4);
    // PostgreSQL lists the next range beside this one; SQLite reads on this thread, one page after another.
    expect(most).toBe(kind === 'postgres' ? 2 : 1);
    // One page holding the whole list is one chain on either store: the same text, row for row.
    expect(paged.text).toBe((await text(100_000)).text);
  });

  it('the people leading an enrollments walk are never looked up, and one who is gone takes their enrollments out of the extract as out of GraphQL', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const asked = new Set<string>();
    const store = g.store as { entityKeys: typeof g.store.entityKeys };
    const { entityKeys } = store;
    store.entityKeys = (ids) => (ids.forEach((id) => asked.add(id)), entityKeys.call(g.store, ids));
    const run = async () => {
      asked.clear();
      const mine = await projected(g, client, 'enrollments');
      expect(differences(mine, await graphqlExtract(g.store, g.privacy, client, 'enrollments'))).toEqual([]);
      return mine;
    };
    try {
      const before = await run();
      const personAt = before.columns.indexOf('person.id');
      expect(before.cells.filter((r) => r[personAt] !== null).length).toBeGreaterThan(100);
      // Classes are looked up (the walk does not read them); the people it is led by never are: a
      // stored pseudonym's person is stored (StoreTx.putPseudonyms).
      const peopleAsked = () => [...asked].filter((id) => typeOfId(id) === 'person');
      expect([...asked].some((id) => id.startsWith('cls_'))).toBe(true);
      expect(peopleAsked()).toEqual([]);
      // A person deleted: their pseudonyms go with them, and so do their rows, here as in GraphQL.
      const { rows } = await g.store.list({ type: 'enrollment', first: 1 });
      const gone = (rows[0]!.data as { personId: string }).personId;
      const theirs = (await g.store.linkedFrom('enrollment.person', [gone])).get(gone)!.length;
      expect(theirs).toBeGreaterThan(0);
      await g.store.transaction((tx) => tx.deleteEntity(gone));
      const after = await run();
      expect(peopleAsked()).toEqual([]);
      expect(after.cells.length).toBe(before.cells.length - theirs);
    } finally {
      store.entityKeys = entityKeys;
    }
  });

  it('a people extract reads each person\'s demographics with the page: none is looked up, and one that is gone gives empty cells as in GraphQL', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const run = async () => {
      const { rows, whole } = await readingWhole(g, () => projected(g, client, 'people'));
      expect(differences(rows, await graphqlExtract(g.store, g.privacy, client, 'people'))).toEqual([]);
      expect([...whole].filter((id) => typeOfId(id) === 'demographics')).toEqual([]);
      return rows;
    };
    const before = await run();
    const birthYear = before.columns.indexOf('demographics.birthYear');
    expect(birthYear).toBeGreaterThanOrEqual(0);
    const filled = before.cells.filter((r) => r[birthYear] !== null).length;
    expect(filled).toBeGreaterThan(100);
    // A stored student's demographics deleted (not those of a person an earlier test deleted): their
    // row's demographics cells are empty, still without a lookup.
    const { rows: people } = await g.store.list({ type: 'person', first: 500 });
    const dem = (await g.store.entityKeys(people.map((p) => demographicsIdFor(p.id)))).find((k) => k !== undefined);
    await g.store.transaction((tx) => tx.deleteEntity(dem!.id));
    const after = await run();
    expect(after.cells.filter((r) => r[birthYear] !== null).length).toBe(filled - 1);
  });

  it('a related record read as its key only: a reference to one that is gone gives an empty cell, as in GraphQL', { timeout: 120_000 }, async () => {
    const client = clientOf('analytics');
    const before = await graphqlExtract(g.store, g.privacy, client, 'enrollments');
    const classAt = before.columns.indexOf('class.id');
    const gone = before.cells[0]![classAt] as string;
    expect(gone).toMatch(/^cls_/);
    // A class deleted behind the enrollments' back (its links to its school go too; the enrollments keep their classId).
    await g.store.transaction((tx) => tx.deleteEntity(gone));
    // What the projection asks the store, by kind of read (the real store's own methods, counted).
    const asked = { whole: new Set<string>(), keys: new Set<string>() };
    const store = g.store as { getEntities: typeof g.store.getEntities; entityKeys: typeof g.store.entityKeys };
    const { getEntities, entityKeys } = store;
    store.getEntities = (ids) => (ids.forEach((id) => asked.whole.add(id)), getEntities.call(g.store, ids));
    store.entityKeys = (ids) => (ids.forEach((id) => asked.keys.add(id)), entityKeys.call(g.store, ids));
    let mine: ReferenceRows;
    try {
      mine = await projected(g, client, 'enrollments');
    } finally {
      Object.assign(store, { getEntities, entityKeys });
    }
    const reference = await graphqlExtract(g.store, g.privacy, client, 'enrollments');
    expect(differences(mine, reference)).toEqual([]);
    const emptied = reference.cells.filter((r) => r[classAt] === null);
    expect(emptied.length).toBe(before.cells.filter((r) => r[classAt] === gone).length);
    expect(reference.cells.some((r) => r[classAt] === gone)).toBe(false);
    // The classes (the gone one too) were asked as keys only, never read whole.
    expect(asked.keys.has(gone)).toBe(true);
    expect([...asked.whole].filter((id) => id.startsWith('cls_'))).toEqual([]);
  });

  /**
   * The analytics `dataset` projected through `schema`, how each listing asked for the records' data
   * (undefined: whole; [] : whole, reads told; names: only those members) recorded, and the reads
   * told counted by member; with the reference GraphQL gives through the same schema.
   */
  async function listingMembers(schema: GraphQLSchema, dataset: Dataset = 'people') {
    const client = clientOf('analytics');
    const type = DATASETS[dataset].entity;
    const reference = await graphqlExtract(g.store, g.privacy, client, dataset, 50, schema);
    const listings: (readonly string[] | undefined)[] = [];
    /** The ids each listing returned, by the listing's place in `listings`. */
    const pages: string[][] = [];
    const told = new Map<string | null, number>();
    const store = g.store as { list: typeof g.store.list };
    const { list } = store;
    store.list = async (q) => {
      if (q.type !== type) return list.call(g.store, q);
      const at = listings.push(q.fields ?? (q.memberReads ? [] : undefined)) - 1;
      const reads = q.memberReads;
      const r = await list.call(g.store, reads ? { ...q, memberReads: { read: (m) => (told.set(m, (told.get(m) ?? 0) + 1), reads.read(m)), members: (n) => reads.members?.(n) } } : q);
      pages[at] = r.rows.map((row) => row.id);
      return r;
    };
    try {
      return { mine: await projected(g, client, dataset, schema), reference, listings, pages, told };
    } finally {
      store.list = list;
    }
  }

  /** The people from the 100th on in the analytics list's order: the rows of the third page of 37 and later. */
  async function laterPeople(): Promise<(id: string) => boolean> {
    const ids: string[] = [];
    const store = g.store as { list: typeof g.store.list };
    const { list } = store;
    store.list = async (q) => {
      const r = await list.call(g.store, q);
      if (q.type === 'person') ids.push(...r.rows.map((row) => row.id));
      return r;
    };
    try {
      await projected(g, clientOf('analytics'), 'people');
    } finally {
      store.list = list;
    }
    expect(ids.length).toBeGreaterThan(250);
    const later = new Set(ids.slice(100));
    return (id) => later.has(id);
  }

  /** The analytics schema with Person.enabled made, from the `later` people on, by `value` of the stored record. */
  function enabledBy(later: (id: string) => boolean, value: (data: Record<string, unknown>) => boolean): GraphQLSchema {
    return mapSchema(g.privacy.schemas.get('analytics')!.schema, {
      [MapperKind.OBJECT_FIELD]: (f, name, type) => {
        if (type !== 'Person' || name !== 'enabled') return f;
        const inner = f.resolve!;
        return { ...f, resolve: (src: EntityRow, ...rest: unknown[]) =>
          (later(src.id) ? value(src.data as Record<string, unknown>) : (inner as (...a: unknown[]) => unknown)(src, ...rest)) };
      },
    });
  }

  it('decodes only the members the columns read, makes a row that reads another from its whole record, and decodes that member from then on', { timeout: 120_000 }, async () => {
    // From the 100th person on, Person.enabled depends on the family name (a member no analytics column reads).
    const { mine, reference, listings, told } = await listingMembers(enabledBy(await laterPeople(), (d) => String(d.familyName).length % 2 === 1));
    expect(differences(mine, reference)).toEqual([]);
    // The first listing reads whole records and learns what the columns read; then only those
    // members, without the family name; rows from the 100th on need it and are read again whole,
    // and the listings after read it too.
    expect(listings[0]).toEqual([]);
    const without = listings.findIndex((f) => f && f.length > 0 && !f.includes('familyName'));
    expect(without).toBeGreaterThan(0);
    expect(listings[without]).toEqual(expect.arrayContaining(['roles']));
    const knowing = (f: readonly string[] | undefined) => f !== undefined && f.includes('familyName');
    const after = listings.findIndex((f, i) => i > without && knowing(f));
    expect(after).toBeGreaterThan(without);
    expect(listings.slice(after).every(knowing)).toBe(true);
    // Members no column reads are not read.
    expect(listings.at(-1)).toEqual(['enabled', 'familyName', 'grades', 'roles']);
    expect(told.get('familyName')).toBeGreaterThan(0);
    expect(told.has(null)).toBe(false);
  });

  it('a row to be made again from its whole record that is gone by then fails the extract as retryable, with no read of the store left under way', { timeout: 120_000 }, async () => {
    const schema = enabledBy(await laterPeople(), (d) => String(d.familyName).length % 2 === 1);
    const store = g.store as { getEntities: typeof g.store.getEntities; list: typeof g.store.list };
    const { getEntities, list } = store;
    let gone = 0;
    // Every person read whole is gone by the time it is read.
    store.getEntities = async (ids) => (await getEntities.call(g.store, ids)).map((r) => (r?.type === 'person' ? (gone++, undefined) : r));
    // Contexts made slowly: the next page's listing, started before the failure, reaches the store
    // well after it unless the extract waits for it before it ends.
    const privacy = g.privacy as { context: typeof g.privacy.context };
    const { context } = privacy;
    privacy.context = async (...args) => (await new Promise((r) => setTimeout(r, 20)), context.apply(g.privacy, args));
    let ended = false;
    let listedAfter = 0;
    store.list = (q) => (ended && listedAfter++, list.call(g.store, q));
    try {
      const e = await projected(g, clientOf('analytics'), 'people', schema).then(() => undefined, (x: unknown) => x);
      ended = true;
      expect(isRostergateError(e, 'STORE')).toBe(true);
      expect((e as { retryable: boolean }).retryable).toBe(true);
      expect((e as Error).message).toMatch(/deleted while its page was read/);
      expect(gone).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 200));
      expect(listedAfter).toBe(0);
    } finally {
      store.getEntities = getEntities;
      store.list = list;
      privacy.context = context;
    }
  });

  it('a column that lists a record’s members makes the later pages read whole records, with the same values', { timeout: 120_000 }, async () => {
    // From the 100th person on, Person.enabled depends on how many members the record has.
    const later = await laterPeople();
    const { mine, reference, listings, pages, told } = await listingMembers(enabledBy(later, (d) => Object.keys(d).length % 2 === 1));
    expect(differences(mine, reference)).toEqual([]);
    expect(told.get(null)).toBeGreaterThan(0);
    // Where the first such person was listed: from then on the reads are not learnt any more. The
    // listing after that page may already be under way while it is projected (the next page is listed
    // meanwhile); every one after is whole. Before it, once the first page was projected, only the
    // members read are listed: the third page's listing at the latest.
    const first = pages.findIndex((ids) => ids.some(later));
    const seen = `listings ${JSON.stringify(listings)}, first read of every member on listing ${first}`;
    expect(first, seen).toBeGreaterThanOrEqual(2);
    const narrowed = listings.findIndex((f) => f && f.length > 0);
    expect(narrowed, seen).toBeGreaterThan(0);
    expect(narrowed, seen).toBeLessThanOrEqual(first);
    expect(listings.slice(first + 2).every((f) => f === undefined), seen).toBe(true);
    expect(listings.at(-1)).toBeUndefined();
  });

  it('columns that read most of each record read whole records once learnt (enrollments: 6 members of 7)', { timeout: 120_000 }, async () => {
    // A copy of the schema: members are learnt per schema, and this one has learnt none yet.
    const { mine, reference, listings } = await listingMembers(mapSchema(g.privacy.schemas.get('analytics')!.schema, {}), 'enrollments');
    expect(differences(mine, reference)).toEqual([]);
    expect(listings[0]).toEqual([]);
    expect(listings.some((f) => f && f.length > 0)).toBe(false);
    expect(listings.at(-1)).toBeUndefined();
  });
});
