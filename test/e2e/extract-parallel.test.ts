/**
 * Parallel extracts (src/extract/parallel.ts): pages projected on worker threads must come out byte
 * for byte as one thread writes them, disclose and audit the same people, and cut the list into
 * ranges that hold every row once. A worker that cannot start fails the extract with a clear
 * error instead of hanging it. On SQLite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_CLIENTS } from '../../src/demo/demo-policy.ts';
import { prepareExtract, runExtract, type ExtractFormat } from '../../src/extract/extract.ts';
import { compileProjection, projectedPages } from '../../src/extract/projection.ts';
import { closeExtractThreads, listRanges, rowsPerThreadRange } from '../../src/extract/parallel.ts';
import { SpillFolder } from '../../src/extract/spill.ts';
import type { Dataset } from '../../src/extract/columns.ts';
import { isRostergateError } from '../../src/errors.ts';
import type { EntityType } from '../../src/model/records.ts';
import type { ListQuery, Store } from '../../src/store/types.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds, tempDir } from '../support/stores.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';

const clientOf = (purpose: string) => DEMO_CLIENTS.find((c) => c.purpose === purpose)!.id;

/** An extract's text, report and the audit entry it made, with `threads`. */
async function extract(
  g: PrivateGateway, client: string, dataset: Dataset, format: ExtractFormat, threads: number, store: Store = g.store,
  more: { k?: number; onChunk?: () => void } = {},
) {
  let text = '';
  const out = new Writable({ write(chunk, _enc, done) { text += String(chunk); more.onChunk?.(); done(); } });
  const before = (await g.store.auditEntries({})).at(-1)?.seq ?? 0;
  // Tiny pages and no row threshold: many ranges, several per thread, even in a small district.
  const report = await runExtract({
    store, privacy: g.privacy, sourceTypes: new Map(), client, dataset, format, out, threads, parallelFrom: 0, pageSize: 7, ...(more.k ? { k: more.k } : {}),
  });
  const audit = (await g.store.auditEntries({ afterSeq: before })).map((a) => ({ operation: a.operation, people: a.people, fields: a.fields }));
  const { startedAt: _s, endedAt: _e, ...rest } = report;
  return { text, report: rest, audit };
}

/** Every row of a list read range by range (pages of `first` inside each), as ids in order. */
async function byRanges(store: Store, q: Omit<ListQuery, 'first'>, rows: number, leadRatio: number, threads: number): Promise<{ ids: string[]; ranges: number }> {
  const ranges = await listRanges(store, { type: q.type, ...(q.order ? { order: q.order as never } : {}) }, rowsPerThreadRange(rows, 5, threads), leadRatio);
  const ids: string[] = [];
  for (const range of ranges) {
    let position: Partial<ListQuery> = {};
    for (;;) {
      const r = await store.list({ ...q, first: 5, lead: range.lead, ...position });
      ids.push(...r.rows.map((row) => row.id));
      if (!r.hasNext) break;
      position = r.keys ? { afterKey: r.keys.at(-1)! } : { afterId: r.rows.at(-1)!.id };
    }
  }
  return { ids, ranges: ranges.length };
}

async function all(store: Store, q: Omit<ListQuery, 'first'>): Promise<string[]> {
  const ids: string[] = [];
  let position: Partial<ListQuery> = {};
  for (;;) {
    const r = await store.list({ ...q, first: 50, ...position });
    ids.push(...r.rows.map((row) => row.id));
    if (!r.hasNext) return ids;
    position = r.keys ? { afterKey: r.keys.at(-1)! } : { afterId: r.rows.at(-1)!.id };
  }
}

describe.each(storeKinds())('parallel extracts, on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ students: 150, teachers: 10, classes: 16, schools: 2 }, undefined, { store: kind });
  }, 300_000);
  afterAll(async () => {
    await closeExtractThreads();
    await g?.close();
  });

  it('writes what one thread writes, byte for byte, and audits the same people (id order and pseudonym order)', { timeout: 300_000 }, async () => {
    // The lists cut into ranges, by the extracts on one thread and on two.
    const cutOne: string[] = [];
    const cutTwo: string[] = [];
    let cut = cutOne;
    const { leadBoundaries, counts } = g.store;
    g.store.leadBoundaries = (q) => (cut.push(q.type), leadBoundaries.call(g.store, q));
    // What the extracts on one thread counted: only the lists they go on to cut.
    const countedOne: string[] = [];
    g.store.counts = (types) => (cut === cutOne && countedOne.push(types!.join()), counts.call(g.store, types));
    try {
      // admin: id order, direct identifiers (no k-anonymity check); analytics: pseudonym order, and
      // people under k-anonymity (both passes on the threads, each spilling to a file of its own).
      const cases: [string, Dataset, ExtractFormat][] = [
        ['admin', 'people', 'csv'], ['admin', 'enrollments', 'ndjson'], ['admin', 'classes', 'csv'], ['admin', 'schools', 'csv'],
        ['analytics', 'enrollments', 'csv'], ['analytics', 'enrollments', 'ndjson'], ['analytics', 'guardianships', 'csv'], ['analytics', 'people', 'csv'],
      ];
      for (const [purpose, dataset, format] of cases) {
        cut = cutOne;
        const one = await extract(g, clientOf(purpose), dataset, format, 1);
        cut = cutTwo;
        const two = await extract(g, clientOf(purpose), dataset, format, 2);
        expect(one.report.written, `${purpose} ${dataset}`).toBeGreaterThan(0);
        expect(two.text, `${purpose} ${dataset}.${format}`).toBe(one.text);
        expect(two.report).toEqual(one.report);
        expect(two.audit).toEqual(one.audit);
        if (purpose === 'analytics' && dataset === 'people') expect(one.report.kAnonymity.quasiIdentifiers.length).toBeGreaterThan(0);
        if (dataset !== 'classes' && dataset !== 'schools') expect(two.audit[0]!.people, `${purpose} ${dataset}`).toBeGreaterThan(0);
      }
      // Every one was cut into ranges on the threads. On one thread PostgreSQL reads a list walked
      // through its people's pseudonyms in ranges too (pipelinedRanges: analytics' enrollments and
      // guardianships); SQLite never does.
      expect(cutTwo).toEqual(['person', 'enrollment', 'class', 'org', 'enrollment', 'enrollment', 'guardianship', 'person']);
      expect(cutOne).toEqual(kind === 'postgres' ? ['enrollment', 'enrollment', 'guardianship'] : []);
      expect(countedOne).toEqual(kind === 'postgres' ? ['enrollment,person', 'enrollment,person', 'guardianship,person'] : []);
    } finally {
      g.store.leadBoundaries = leadBoundaries;
      g.store.counts = counts;
    }
  });

  it('under k-anonymity, recodes and leaves out on the threads what one thread does, audits only the people written, and removes its spill folder', { timeout: 300_000 }, async () => {
    const folders: string[] = [];
    const create = SpillFolder.create;
    SpillFolder.create = async () => {
      const f = await create.call(SpillFolder);
      folders.push(f.path);
      return f;
    };
    try {
      const client = clientOf('analytics');
      for (const format of ['csv', 'ndjson'] as const) {
        // A k this district cannot meet everywhere: groups are generalised and some rows left out.
        const one = await extract(g, client, 'people', format, 1, g.store, { k: 25 });
        let spilled: string[] = [];
        const two = await extract(g, client, 'people', format, 2, g.store, { k: 25, onChunk: () => (spilled = readdirSync(folders.at(-1)!)) });
        expect(one.report.suppressed, format).toBeGreaterThan(0);
        expect(Object.keys(one.report.kAnonymity.generalised).length, format).toBeGreaterThan(0);
        expect(two.text, format).toBe(one.text);
        expect(two.report).toEqual(one.report);
        expect(two.audit).toEqual(one.audit);
        // The people left out were not disclosed: fewer in the audit than rows read.
        expect(two.audit[0]!.people).toBe(one.report.written);
        // Each thread spilled to a file of its own in the folder, which is gone with the extract.
        expect(spilled.length, format).toBe(2);
        expect(existsSync(folders.at(-1)!)).toBe(false);
      }
      // A client that goes away in the writing pass: the extract fails and its folder goes too.
      const e = await extract(g, client, 'people', 'csv', 2, g.store, { k: 25, onChunk: () => { throw new Error('the client went away'); } }).catch((err: unknown) => err);
      expect((e as Error).message).toMatch(/went away/);
      expect(folders.length).toBe(3);
      expect(existsSync(folders.at(-1)!)).toBe(false);
    } finally {
      SpillFolder.create = create;
    }
  });

  it('cuts a list into ranges that hold every row once, in order', { timeout: 120_000 }, async () => {
    const counts = await g.store.counts();
    const ctx = await g.privacy.context(g.store, new Map(), { client: clientOf('analytics'), purpose: g.privacy.clientPurpose(clientOf('analytics'))! });
    const order = ctx.listOrder!;
    const lists: [Omit<ListQuery, 'first'>, number][] = [
      [{ type: 'person' }, 1],
      [{ type: 'class' }, 1],
      [{ type: 'person', order }, 1],
      [{ type: 'enrollment', order }, counts.person / counts.enrollment],
      [{ type: 'org', fieldEquals: { field: 'type', value: 'school' } }, 1],
    ];
    for (const [q, leadRatio] of lists) {
      const whole = await all(g.store, q);
      const cut = await byRanges(g.store, q, counts[q.type as EntityType], leadRatio, 2);
      expect(cut.ids, JSON.stringify(q)).toEqual(whole);
      if (q.type !== 'org') expect(cut.ranges, JSON.stringify(q)).toBeGreaterThan(2);
    }
  });

  it('refuses a range cut under another pseudonym key version (a rotation since the extract began), as retryable', async () => {
    const client = clientOf('analytics');
    const purpose = g.privacy.clientPurpose(client)!;
    const newContext = () => g.privacy.context(g.store, new Map(), { client, purpose }, { sharedCache: false });
    const version = (await newContext()).listOrder!.version;
    const { ps, columns } = prepareExtract(g.privacy, { client, dataset: 'enrollments', format: 'csv' });
    const projection = compileProjection(ps.schema, 'enrollments', columns);
    const read = (v: number) => projectedPages(projection, newContext, 50, { lead: {}, version: v }).next();
    expect((await read(version)).value!.cells.length).toBeGreaterThan(0);
    const e = await read(version + 1).catch((err: unknown) => err);
    expect(isRostergateError(e) && e.code).toBe('STORE');
    expect((e as { retryable?: boolean }).retryable).toBe(true);
  });

  it('serves HTTP extracts on threads when server.extracts asks for them, the same bytes and report as on the serving thread', { timeout: 120_000 }, async () => {
    const cfg = { ...g.config, server: { ...g.config.server, extracts: { threads: 2, fromRows: 0 } } };
    const threaded = await serveStore(g.store, cfg, createLogger({ level: 'silent' }), { port: 0, privacy: g.privacy });
    // The lists cut into ranges, by the extracts on one thread and on two.
    const cutOne: string[] = [];
    const cutTwo: string[] = [];
    let cut = cutOne;
    const { leadBoundaries, counts } = g.store;
    g.store.leadBoundaries = (q) => (cut.push(q.type), leadBoundaries.call(g.store, q));
    // What the extracts on one thread counted: only the lists they go on to cut.
    const countedOne: string[] = [];
    g.store.counts = (types) => (cut === cutOne && countedOne.push(types!.join()), counts.call(g.store, types));
    try {
      for (const [client, path] of [[clientOf('analytics'), '/extracts/enrollments.csv'], [clientOf('analytics'), '/extracts/people.ndjson'], [clientOf('admin'), '/extracts/people.csv']] as const) {
        const get = async (url: string) => {
          const res = await fetch(`${url}${path}`, { headers: { 'x-api-key': g.keys[client]! } });
          const body = await res.text();
          return { status: res.status, body };
        };
        const one = await get(g.gw.url);
        const two = await get(threaded.url);
        expect(one.status, path).toBe(200);
        expect(one.body.length, path).toBeGreaterThan(100);
        expect(two.body, `${client} ${path}`).toBe(one.body);
      }
      // Only the threaded gateway cut its lists into ranges.
      expect(cut).toEqual(['enrollment', 'person', 'person']);
    } finally {
      g.store.leadBoundaries = leadBoundaries;
      await threaded.close();
    }
  });

  it('fails an extract whose worker threads cannot open the store, naming why, without hanging', { timeout: 120_000 }, async () => {
    const location = g.store.location.bind(g.store);
    // A folder that cannot be made (its parent is a file), or a server that is not there.
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    g.store.location = () => (kind === 'sqlite' ? { kind: 'sqlite', path: join(file, 'rg.db') } : { kind: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' });
    try {
      const e = await extract(g, clientOf('admin'), 'classes', 'csv', 2).catch((err: unknown) => err);
      expect(isRostergateError(e) && e.code).toBe(kind === 'sqlite' ? 'DATA_FOLDER' : 'STORE');
      expect((e as Error).message).toMatch(kind === 'sqlite' ? /parallel extract: no store at/ : /cannot open the PostgreSQL store/);
    } finally {
      g.store.location = location;
    }
    // The broken pool is not reused: the next parallel extract starts threads of its own.
    const again = await extract(g, clientOf('admin'), 'classes', 'csv', 2);
    expect(again.report.written).toBeGreaterThan(0);
  });
});
