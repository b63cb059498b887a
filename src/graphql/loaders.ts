/**
 * DataLoaders that keep nested queries to a bounded number of store queries: entities by id, and
 * reverse links (classes of a school, enrollments of a class) by target id, each batched per tick.
 */
import DataLoader from 'dataloader';
import type { EntityRow, LinkedPage, LinkedPageQuery, Store, ViewTime } from '../store/types.ts';
import { PseudonymCache } from '../privacy/pseudonym-cache.ts';

export interface Loaders {
  entity: DataLoader<string, EntityRow | undefined>;
  /**
   * Records by id as keys only (`store.entityKeys`: no data read or decoded): rows whose `id` and
   * `type` are real and whose `data`, `updatedAt` and `updatedSeq` throw `KeyOnlyRead` when read.
   * For code that needs only a related record's existence and key (an extract's `class.id`, see
   * src/extract/projection.ts); absent ids are undefined, as with `entity`.
   */
  entityKey: DataLoader<string, EntityRow | undefined>;
  /**
   * A record known at once, without a read or a promise, or undefined (then load it). Only the
   * key-only view of an extract answers (`entityKeyNow`, put here by src/extract/projection.ts);
   * for every other request this is undefined.
   */
  entityNow?(id: string): EntityRow | undefined;
  /**
   * `entityKey`'s answer for a record an earlier page of the same extract found (the `KeyMemo`), at
   * once: the row `entityKey` would give, without a batch and its promises. Undefined for an id the
   * memo does not hold, and for a person whose pseudonym this process does not hold yet (the
   * batch reads it with the key, so `Person.id` answers synchronously).
   */
  entityKeyNow(id: string): EntityRow | undefined;
  /**
   * Records a read found stored (a list in pseudonym order tells whether each row's leading person
   * is): `entityKey` and `entityKeyNow` answer them without a lookup of their own.
   */
  primeKeys(keys: Iterable<{ id: string; type: EntityRow['type'] }>): void;
  /** For a link name (e.g. 'enrollment.class'), the ids of entities linking to each target id. */
  linkedFrom(rel: string): DataLoader<string, string[]>;
  /**
   * For a nested list in pseudonym order (its link, filters, page size and cursor: every parent of
   * one field shares them), each parent's page (`store.linkedPages`): one read for all the parents.
   */
  linkedPage(q: LinkedPageQuery): DataLoader<string, LinkedPage>;
  /** How many children such a list has per parent, all pages together (`store.linkedCounts`), for totalCount. */
  linkedCount(q: Omit<LinkedPageQuery, 'first' | 'afterKey'>): DataLoader<string, number>;
  sources: DataLoader<string, { source: string; key: string; lastModified: string | null }[]>;
  /** Person gateway id → pseudonym in the request's domain (materialised at sync time: no HMAC here). */
  pseudonym: DataLoader<string, string | undefined>;
  /**
   * The pseudonym of a person already known to this process, without waiting: people loaded by id
   * have theirs fetched in the same batch, so `Person.id` resolves synchronously for them.
   */
  pseudonymNow(id: string): string | undefined;
  /** Pseudonyms the request learnt otherwise (a list in pseudonym order carries them as sort keys): id → pseudonym. */
  primePseudonyms(values: ReadonlyMap<string, string>): void;
  /** Entity id → when it last changed as the request's purpose sees it (maintained at sync time); absent for open access. */
  viewTime?: DataLoader<string, ViewTime | undefined>;
}

/** What reading anything but the key of a key-only row throws: the reader needed the whole record. */
export class KeyOnlyRead extends Error {
  constructor(what: string) {
    super(`a key-only record's ${what} was read`);
    this.name = 'KeyOnlyRead';
  }
}

/**
 * A record known by its key alone. Reading what was not read from the store throws instead of
 * answering undefined, so a value can never silently depend on data that is not there. Not a
 * tombstone (`tombstone` absent), like every record the entity loader reads from the store.
 */
class KeyOnlyRow {
  constructor(readonly id: string, readonly type: EntityRow['type']) {}
  get data(): never {
    throw new KeyOnlyRead('data');
  }
  get updatedAt(): never {
    throw new KeyOnlyRead('updatedAt');
  }
  get updatedSeq(): never {
    throw new KeyOnlyRead('updatedSeq');
  }
}

/**
 * Keys of records that earlier pages of the same piece of work (an extract) found: id → type, so a
 * record related to rows of many pages (a class of enrollments in pseudonym order, spread over every
 * page) is looked up once rather than once per page. Only records found are remembered (one found
 * absent is asked again), at most `limit` of them, those unused longest going first, so memory
 * stays flat whatever the district's size. Rows across pages were never one snapshot (each page is
 * read at its own time): a key remembered from an earlier page is what that page read.
 */
export class KeyMemo {
  // Two generations instead of an exact LRU (whose delete and set on every hit showed in profiles,
  // about 2 % of an enrollments extract): keys go into `young`; when it is full it becomes `old` and the previous old goes. A
  // key found in `old` moves back to young, so the classes asked on every page stay while the people
  // met once go.
  private young = new Map<string, EntityRow['type']>();
  private old = new Map<string, EntityRow['type']>();
  /**
   * 60,000: a generation of 30,000 holds every class of a district of about 130,000 students. At
   * 20,000 the 11,111 classes of a 50,000-student district did not fit one generation: an enrollments
   * extract looked classes up 21,860 times in 160 reads, against 11,111 in 43 (on PostgreSQL a read
   * is a round trip of several ms). About 6 MB at most.
   */
  constructor(readonly limit = 60_000) {}
  get(id: string): EntityRow['type'] | undefined {
    const type = this.young.get(id);
    if (type !== undefined) return type;
    const aged = this.old.get(id);
    if (aged !== undefined) this.set(id, aged);
    return aged;
  }
  set(id: string, type: EntityRow['type']): void {
    if (this.young.size >= Math.max(1, this.limit >> 1)) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(id, type);
  }
}

/** The request's loader for one kind of batched read (a link, a nested list's page shape), made on first use. */
function loaderFor<V>(loaders: Map<string, DataLoader<string, V>>, key: string, batch: (ids: readonly string[]) => Promise<V[]>): DataLoader<string, V> {
  let l = loaders.get(key);
  if (!l) loaders.set(key, (l = new DataLoader(batch, { maxBatchSize: 5000 })));
  return l;
}

export function createLoaders(
  store: Store, domain?: { domain: string; version: number }, view?: string, cache?: PseudonymCache, keyMemo?: KeyMemo,
): Loaders {
  const byRel = new Map<string, DataLoader<string, string[]>>();
  const pages = new Map<string, DataLoader<string, LinkedPage>>();
  const counts = new Map<string, DataLoader<string, number>>();
  // Without the process's cache, one for this request still lets Person.id resolve without a promise.
  const known = domain ? (cache ?? new PseudonymCache()) : undefined;
  const fetchPseudonyms = async (ids: readonly string[]) => {
    const missing = ids.filter((id) => known!.get(domain!.domain, domain!.version, id) === undefined);
    if (missing.length) known!.set(domain!.domain, domain!.version, await store.pseudonymsOf(domain!.domain, domain!.version, missing));
  };
  const primed = new Map<string, EntityRow['type']>();
  const entityKey = new DataLoader<string, EntityRow | undefined>(async (ids) => {
    const keys = keyMemo ? await memoKeys(store, keyMemo, ids) : await store.entityKeys(ids);
    if (domain) await fetchPseudonyms(keys.flatMap((k) => (k?.type === 'person' ? [k.id] : [])));
    return keys.map((k) => k && (new KeyOnlyRow(k.id, k.type) as unknown as EntityRow));
  }, { maxBatchSize: 5000 });
  return {
    entity: new DataLoader(async (ids) => {
      const rows = await store.getEntities(ids);
      // A pseudonymising request will ask people's ids: fetch them with the people, in one batch.
      if (domain) await fetchPseudonyms(rows.flatMap((r) => (r?.type === 'person' ? [r.id] : [])));
      return rows;
    }, { maxBatchSize: 5000 }),
    entityKey,
    entityKeyNow: (id) => {
      const type = primed.get(id) ?? keyMemo?.get(id);
      if (type === undefined || (type === 'person' && domain && known!.get(domain.domain, domain.version, id) === undefined)) return undefined;
      return new KeyOnlyRow(id, type) as unknown as EntityRow;
    },
    primeKeys: (keys) => {
      // Kept with the loaders (a page's), not in the extract's memo: a page's people are met once,
      // and would push out of the memo the classes that every page asks for.
      for (const k of keys) {
        primed.set(k.id, k.type);
        entityKey.prime(k.id, new KeyOnlyRow(k.id, k.type) as unknown as EntityRow);
      }
    },
    linkedFrom: (rel) => loaderFor(byRel, rel, async (ids) => {
      const m = await store.linkedFrom(rel, ids);
      return ids.map((id) => m.get(id) ?? []);
    }),
    linkedPage: (q) => loaderFor(pages, JSON.stringify(q), async (parents) => {
      const m = await store.linkedPages(q, parents);
      return parents.map((id) => m.get(id)!);
    }),
    linkedCount: (q) => loaderFor(counts, JSON.stringify(q), async (parents) => {
      const m = await store.linkedCounts(q, parents);
      return parents.map((id) => m.get(id)!);
    }),
    sources: new DataLoader(async (ids) => {
      const m = await store.sourcesOf(ids);
      return ids.map((id) => m.get(id) ?? []);
    }, { maxBatchSize: 5000 }),
    pseudonym: new DataLoader(async (ids) => {
      if (!domain) throw new Error('no pseudonym domain for this request');
      await fetchPseudonyms(ids);
      return ids.map((id) => known!.get(domain.domain, domain.version, id));
    }, { maxBatchSize: 5000 }),
    pseudonymNow: (id) => (domain ? known!.get(domain.domain, domain.version, id) : undefined),
    primePseudonyms: (values) => {
      if (domain) known!.set(domain.domain, domain.version, values);
    },
    viewTime: view === undefined ? undefined : new DataLoader(async (ids) => {
      const m = await store.viewTimes(view, ids);
      return ids.map((id) => m.get(id));
    }, { maxBatchSize: 5000 }),
  };
}

/** `store.entityKeys` for the ids the memo does not know, the memo answering the others. */
async function memoKeys(store: Store, memo: KeyMemo, ids: readonly string[]): Promise<({ id: string; type: EntityRow['type'] } | undefined)[]> {
  const keys: ({ id: string; type: EntityRow['type'] } | undefined)[] = new Array(ids.length);
  const missing: string[] = [];
  const at: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const type = memo.get(ids[i]!);
    if (type !== undefined) keys[i] = { id: ids[i]!, type };
    else {
      missing.push(ids[i]!);
      at.push(i);
    }
  }
  if (missing.length) {
    const found = await store.entityKeys(missing);
    for (let j = 0; j < found.length; j++) {
      const k = found[j];
      keys[at[j]!] = k;
      if (k) memo.set(k.id, k.type);
    }
  }
  return keys;
}
