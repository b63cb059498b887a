/**
 * The statement floor (issue 13): what a sync's own SQL costs with none of the engine's JavaScript.
 *
 * The floor in bench/floor.ts writes one table with one index. A sync writes what the engine's
 * data model holds: each record's entity, its source record, its change, its links, match keys,
 * pseudonyms and a view time per purpose, each with its indexes. This floor separates the two
 * questions the ratio to the first floor mixes: how much of a sync's cost is the statements
 * themselves (the data model, and how it is written), and how much is the engine deciding what to
 * write (identity, merging, minimisation, hashing, planning).
 *
 * How: the bench records every statement the direct sync sends through better-sqlite3 or pg (the
 * SQL, the method, the parameters, in order, transaction statements included; a COPY with the data
 * written to it), then replays them
 * verbatim, in the same order and the same transactions, into a fresh store of the same schema
 * opened as the store opens it. The replay reads nothing and decides nothing, so what it costs is
 * the statements alone. Its answers are the same as the sync's: the same statements on the same
 * starting state (rows get the same keys and sequence numbers).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { SqliteStore, writerSettings } from '../src/store/sqlite.ts';
import { PostgresStore } from '../src/store/postgres.ts';
import { BACKSTOP_PAGES, BackgroundCheckpointer, WAL_SIZE_LIMIT_BYTES } from '../src/store/sqlite-checkpointer.ts';
import type { FloorResult } from './floor.ts';

/** One statement as better-sqlite3 ran it: a prepared statement's method, or `exec` of a script. */
export interface SqliteCall {
  sql: string;
  method: 'run' | 'get' | 'all' | 'iterate' | 'exec';
  args: unknown[];
}

/**
 * One query as pg's client sent it: its arguments (text or a config object, then values), or a COPY
 * (rows known to be new, src/store/postgres-copy.ts) with the data written to it.
 */
export type PostgresCall = unknown[] | { copy: string; data: unknown[] };

/** The class of pg-copy-streams' COPY FROM queries, to tell them from other queries. */
const CopyFromQuery = copyFrom('COPY x FROM STDIN').constructor as new (...a: unknown[]) => Writable & { text: string };

export interface Recording {
  sqlite: SqliteCall[];
  postgres: PostgresCall[];
}

/** A parameter copied at the call, since a caller may reuse its arrays (pg's config objects carry theirs in `values`). */
function copyArg(x: unknown): unknown {
  if (Array.isArray(x)) return [...x];
  if (x === null || typeof x !== 'object' || Buffer.isBuffer(x)) return x;
  const o = { ...(x as Record<string, unknown>) };
  if (Array.isArray(o.values)) o.values = [...o.values];
  return o;
}
const copyArgs = (a: readonly unknown[]): unknown[] => a.map(copyArg);

/**
 * Wraps better-sqlite3's and pg's prototypes once: every statement counts, and while `recording`
 * is set it is also recorded. Blind to which query layer sits above them.
 */
export function probeStatements(): { counts: { sqlite: number; postgres: number }; record(into: Recording | undefined): void } {
  const counts = { sqlite: 0, postgres: 0 };
  let recording: Recording | undefined;
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  probe.close();
  for (const m of ['run', 'get', 'all', 'iterate'] as const) {
    const orig = proto[m]!;
    proto[m] = function (this: { source: string }, ...a: unknown[]) {
      counts.sqlite++;
      recording?.sqlite.push({ sql: this.source, method: m, args: copyArgs(a) });
      return orig.apply(this, a);
    };
  }
  const dbProto = Database.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const exec = dbProto.exec!;
  dbProto.exec = function (this: unknown, ...a: unknown[]) {
    counts.sqlite++;
    recording?.sqlite.push({ sql: String(a[0]), method: 'exec', args: [] });
    return exec.apply(this, a);
  };
  const clientProto = pg.Client.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const query = clientProto.query!;
  clientProto.query = function (this: unknown, ...a: unknown[]) {
    counts.postgres++;
    if (a[0] instanceof CopyFromQuery) {
      // A COPY: its text, and the data as it is written to the stream.
      const q = a[0];
      const call = { copy: q.text, data: [] as unknown[] };
      if (recording) {
        recording.postgres.push(call);
        const write = q.write.bind(q) as (...w: unknown[]) => boolean;
        q.write = ((chunk: unknown, ...rest: unknown[]) => (call.data.push(chunk), write(chunk, ...rest))) as typeof q.write;
      }
      return query.apply(this, a);
    }
    // Only what names a query: a callback argument (pg's own internals) is not replayable, nor needed.
    recording?.postgres.push(copyArgs(a.filter((x) => typeof x !== 'function')));
    return query.apply(this, a);
  };
  return { counts, record: (into) => void (recording = into) };
}

/**
 * Replays recorded SQLite statements into a fresh store file in `dir`: the schema as
 * SqliteStore.open creates it, the writer's settings as it sets them (WAL, synchronous=NORMAL,
 * page cache, memory map), and checkpoints on the store's background thread after each COMMIT.
 */
export async function replaySqlite(calls: readonly SqliteCall[], records: number, dir: string): Promise<FloorResult> {
  const path = join(dir, 'replay.db');
  await (SqliteStore.open(path)).close();
  const db = new Database(path);
  // The writer's settings, as the store gives them (the schema's migrations are done above).
  writerSettings(db);
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  const checkpointer = new BackgroundCheckpointer(path, () => db.pragma('wal_autocheckpoint = 1000'));
  const prepared = new Map<string, Database.Statement>();
  const t = process.hrtime.bigint();
  try {
    for (const c of calls) {
      if (c.method === 'exec') {
        db.exec(c.sql);
        if (/^\s*COMMIT\b/i.test(c.sql)) checkpointer.committed();
        continue;
      }
      let s = prepared.get(c.sql);
      if (!s) prepared.set(c.sql, (s = db.prepare(c.sql)));
      if (c.method === 'iterate') for (const _ of s.iterate(...c.args)) void _;
      else s[c.method](...c.args);
    }
  } finally {
    await checkpointer.stop();
    db.close();
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { seconds, recordsPerSecond: records / seconds };
}

/**
 * Replays recorded PostgreSQL queries, one after the other on one connection, into a fresh
 * database at `url` whose schema PostgresStore.open creates first.
 */
export async function replayPostgres(calls: readonly PostgresCall[], records: number, url: string): Promise<FloorResult> {
  await (await PostgresStore.open(url)).close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const t = process.hrtime.bigint();
  try {
    for (const c of calls) {
      if (Array.isArray(c)) await (client.query as (...a: unknown[]) => Promise<unknown>)(...c);
      else await pipeline(Readable.from(c.data), client.query(copyFrom(c.copy)));
    }
  } finally {
    await client.end();
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { seconds, recordsPerSecond: records / seconds };
}
