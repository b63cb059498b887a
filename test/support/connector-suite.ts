/**
 * The suite every connector must pass, whatever its vendor: run with `defineConnectorSuite`.
 * It drives a connector against its sandbox and applies pages the way the sync engine does (an
 * in-memory model of it), then checks pagination ends, keys are unique, references resolve, a
 * run killed after any page resumes without gaps, incremental reads see changes, and faults give
 * clear errors that carry no personal data.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import type { Connector, ConnectorState, Page } from '../../connectors/types.ts';
import type { RosterDataset } from '../../src/demo/dataset.ts';
import type { RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { REFERENCES, type EntityType, type SourceRecord } from '../../src/model/records.ts';
import { RostergateError } from '../../src/errors.ts';
import { HttpClient } from '../../connectors/http.ts';
import { createLogger } from '../../src/log.ts';
import { definitionOf } from '../../connectors/registry.ts';

/** An HTTP client for tests: real undici, tiny retry delays, silent logs. */
export function testHttp(sourceId: string, opts: { maxRetries?: number; timeoutMs?: number; requestDeadlineMs?: number; maxBodyBytes?: number } = {}): HttpClient {
  return new HttpClient({
    sourceId, baseDelayMs: 1, maxDelayMs: 5, maxRetries: opts.maxRetries ?? 3, timeoutMs: opts.timeoutMs ?? 5_000,
    requestDeadlineMs: opts.requestDeadlineMs, maxBodyBytes: opts.maxBodyBytes, log: createLogger({ level: 'silent' }),
  });
}

export interface SuiteHarness {
  dataset: RosterDataset;
  /** A fresh connector against the running sandbox (or files). */
  make(): Connector;
  sandbox?: RunningSandbox;
  close(): Promise<void>;
}

export interface ConnectorSuiteOptions {
  name: string;
  start(): Promise<SuiteHarness>;
  /** Entity types this connector delivers. */
  types: EntityType[];
  /** False for sources with no change detection beyond a re-read (CSV drops). */
  incremental?: boolean;
  /** False for file sources, which have no HTTP to fault. */
  faults?: boolean;
  /** Key of a person the test renames, as the connector reports it, and how to find it in the dataset. */
  renameTarget?: { datasetKey: string };
}

/** Reads a whole run, returning pages (bounded, so a paging loop cannot hang the suite). */
export async function collect(connector: Connector, state: ConnectorState | null, opts: { full?: boolean; maxPages?: number } = {}) {
  const pages: Page[] = [];
  for await (const p of connector.read(state, { full: opts.full })) {
    pages.push(p);
    if (pages.length > (opts.maxPages ?? 10_000)) throw new Error('paging did not end');
  }
  return pages;
}

/** The sync engine's semantics in miniature: upserts, deletions, and `completes` sweeps. */
export class MiniStore {
  readonly records = new Map<string, SourceRecord>();
  private seen = new Set<string>();
  apply(pages: Page[]): this {
    for (const p of pages) {
      for (const r of p.records) {
        const id = `${r.type}/${r.key}`;
        if (r.deleted) this.records.delete(id);
        else this.records.set(id, r);
        this.seen.add(id);
      }
      for (const t of p.completes ?? []) {
        for (const id of [...this.records.keys()]) if (id.startsWith(`${t}/`) && !this.seen.has(id)) this.records.delete(id);
      }
    }
    return this;
  }
  newRun(): this {
    this.seen = new Set();
    return this;
  }
  ofType<T extends EntityType>(t: T) {
    return [...this.records.values()].filter((r) => r.type === t) as Extract<SourceRecord, { type: T; deleted?: false }>[];
  }
}

export function defineConnectorSuite(o: ConnectorSuiteOptions): void {
  describe(`connector suite: ${o.name}`, () => {
    let h: SuiteHarness;
    let fullPages: Page[];
    beforeAll(async () => {
      h = await o.start();
      fullPages = await collect(h.make(), null, { full: true });
    });
    afterAll(async () => {
      await h?.close();
    });

    it('pagination ends and delivers every declared entity type', () => {
      expect(fullPages.length).toBeGreaterThan(0);
      const types = new Set(fullPages.flatMap((p) => p.records.map((r) => r.type)));
      for (const t of o.types) expect(types, `type ${t}`).toContain(t);
    });

    it('delivers only the record fields its definition declares (the privacy report lists them)', () => {
      const declared = definitionOf(h.make().type)!.delivers as Record<string, readonly string[] | undefined>;
      const undeclared = new Set<string>();
      for (const r of fullPages.flatMap((p) => p.records)) {
        if (r.deleted) continue;
        for (const [k, v] of Object.entries(r.data)) if (v !== undefined && !declared[r.type]?.includes(k)) undeclared.add(`${r.type}.${k}`);
      }
      expect([...undeclared].sort()).toEqual([]);
    });

    it('keys are unique per entity type within a full read', () => {
      const seen = new Set<string>();
      const dupes: string[] = [];
      for (const r of fullPages.flatMap((p) => p.records)) {
        const id = `${r.type}/${r.key}`;
        if (seen.has(id)) dupes.push(id);
        seen.add(id);
      }
      expect(dupes.slice(0, 5)).toEqual([]);
    });

    it('every reference points at a record delivered in the same read', () => {
      const store = new MiniStore().apply(fullPages);
      const missing: string[] = [];
      for (const r of store.records.values()) {
        if (r.deleted) continue;
        const refs = REFERENCES[r.type] as Record<string, EntityType>;
        for (const [field, target] of Object.entries(refs)) {
          if (!o.types.includes(target)) continue;
          const v = (r.data as unknown as Record<string, unknown>)[field];
          for (const k of Array.isArray(v) ? v : v === undefined ? [] : [v]) {
            if (!store.records.has(`${target}/${k}`)) missing.push(`${r.type}/${r.key}.${field} → ${target}/${k}`);
          }
        }
      }
      expect(missing.slice(0, 5)).toEqual([]);
    });

    it('a run killed after any page resumes from its state without gaps', async () => {
      const full = new MiniStore().apply(fullPages);
      const cuts = [0, Math.floor(fullPages.length / 3), Math.floor((2 * fullPages.length) / 3)].filter((k) => k < fullPages.length - 1);
      for (const k of new Set(cuts)) {
        const before = fullPages.slice(0, k + 1);
        const resumed = await collect(h.make(), before[before.length - 1]!.state, { full: false });
        const store = new MiniStore().apply([...before, ...resumed]);
        expect([...store.records.keys()].sort(), `resume after page ${k + 1}`).toEqual([...full.records.keys()].sort());
      }
    });

    if (o.faults !== false) {
    it('a 5xx storm fails with an error naming the source and no personal data', async () => {
      if (!h.sandbox) throw new Error('fault tests need a sandbox: pass faults: false for file sources');
      h.sandbox.faults.inject({ kind: 'status', status: 503 }, { times: 50 });
      const err = await collect(h.make(), null, { full: true }).then(() => undefined, (e: unknown) => e);
      h.sandbox.faults.clear();
      expect(err).toBeInstanceOf(RostergateError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/source /);
      const people = h.dataset.list('person').slice(0, 200);
      for (const p of people) {
        expect(msg).not.toContain(p.data.email ?? '\u0000');
        expect(msg).not.toContain(`${p.data.givenName} ${p.data.familyName}`);
      }
    });

    it('429 with Retry-After and a truncated page are retried transparently', async () => {
      if (!h.sandbox) throw new Error('fault tests need a sandbox: pass faults: false for file sources');
      h.sandbox.faults.inject({ kind: 'status', status: 429, retryAfter: '0' }, { times: 2 });
      h.sandbox.faults.inject({ kind: 'truncate' });
      const pages = await collect(h.make(), null, { full: true });
      const a = new MiniStore().apply(pages);
      const b = new MiniStore().apply(fullPages);
      expect(a.records.size).toBe(b.records.size);
    });
    }

    if (o.incremental !== false) {
      it('an incremental read after a full one sees updates and deletions', async () => {
        const last = fullPages[fullPages.length - 1]!.state;
        const store = new MiniStore().apply(fullPages);
        const target = o.renameTarget?.datasetKey ?? h.dataset.list('person').find((p) => p.data.roles.includes('student'))!.key;
        h.dataset.upsert('person', target, { givenName: 'Renamed', familyName: 'Änderung' });
        const gone = h.dataset.list('enrollment')[0]!;
        h.dataset.remove('enrollment', gone.key);
        const pages = await collect(h.make(), last);
        store.newRun().apply(pages);
        const people = store.ofType('person');
        expect(people.some((p) => p.data.givenName === 'Renamed' && p.data.familyName === 'Änderung')).toBe(true);
        expect(store.ofType('enrollment').length).toBe(h.dataset.list('enrollment').length);
      });
    }

  });
}
