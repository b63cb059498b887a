/**
 * Floors for the benchmarks: what the work costs at the least on this machine, measured in the same
 * run as the figure it stands beside, so a figure reads as "n× the floor" whatever the load of the
 * (shared) machine.
 *
 * The sync floor (issue 13) is what any sync of a district must at least do with its pages:
 * JSON.parse each page as it came off the wire, insert its records with multi-row INSERTs in one
 * transaction into a table keyed by (source, type, key), and compute one HMAC-SHA256 per person (the
 * keyed hashing privacy needs: match keys, pseudonyms). No identity resolution, merging, change log
 * or secondary index — the engine's own work is what the ratio to the floor shows.
 */
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { RosterDataset } from '../src/demo/dataset.ts';
import { ENTITY_TYPES } from '../src/model/records.ts';

/** A district as the wire would bring it: pages of JSON text, and what they hold. */
export interface FloorPages {
  pages: string[];
  records: number;
  people: number;
}

export interface FloorResult {
  seconds: number;
  recordsPerSecond: number;
}

const ROWS_PER_INSERT = 500;
const HMAC_KEY = Buffer.alloc(32, 7);

/** The dataset's records, page by page (`pageSize` a page, as a connector reads them), as JSON text. */
export function floorPages(dataset: RosterDataset, pageSize = 500): FloorPages {
  const pages: string[] = [];
  let records = 0;
  let people = 0;
  for (const type of ENTITY_TYPES) {
    const rows = dataset.list(type);
    if (type === 'person') people = rows.length;
    records += rows.length;
    for (let i = 0; i < rows.length; i += pageSize) {
      pages.push(JSON.stringify(rows.slice(i, i + pageSize).map((r) => ({ type, key: r.key, data: r.data, lastModified: r.lastModified }))));
    }
  }
  return { pages, records, people };
}

type Parsed = { type: string; key: string; data: unknown }[];

/** Parses each page, hashes its people and hands its rows on in chunks of ROWS_PER_INSERT. */
async function eachChunk(input: FloorPages, insert: (rows: Parsed) => Promise<void> | void): Promise<void> {
  for (const text of input.pages) {
    const records = JSON.parse(text) as Parsed;
    for (const r of records) if (r.type === 'person') createHmac('sha256', HMAC_KEY).update(r.key).digest();
    for (let i = 0; i < records.length; i += ROWS_PER_INSERT) await insert(records.slice(i, i + ROWS_PER_INSERT));
  }
}

/** The floor on SQLite: a fresh file in `dir`, WAL and synchronous=NORMAL as the store opens it. */
export async function sqliteFloor(input: FloorPages, dir: string): Promise<FloorResult> {
  const db = new Database(join(dir, 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE floor_records (source TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (source, type, key))');
  const statements = new Map<number, Database.Statement>();
  const statementFor = (n: number) => {
    let s = statements.get(n);
    if (!s) statements.set(n, (s = db.prepare(`INSERT INTO floor_records VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?)').join(', ')}`)));
    return s;
  };
  const t = process.hrtime.bigint();
  db.exec('BEGIN');
  await eachChunk(input, (rows) => void statementFor(rows.length).run(rows.flatMap((r) => ['bench', r.type, r.key, JSON.stringify(r.data)])));
  db.exec('COMMIT');
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  db.close();
  return { seconds, recordsPerSecond: input.records / seconds };
}

/** The floor on PostgreSQL: a table of its own in the database at `url`, dropped afterwards. */
export async function postgresFloor(input: FloorPages, url: string): Promise<FloorResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CREATE TABLE floor_records (source text NOT NULL, type text NOT NULL, key text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (source, type, key))');
    const t = process.hrtime.bigint();
    await c.query('BEGIN');
    await eachChunk(input, async (rows) => {
      const values = rows.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`).join(', ');
      await c.query(`INSERT INTO floor_records VALUES ${values}`, rows.flatMap((r) => ['bench', r.type, r.key, JSON.stringify(r.data)]));
    });
    await c.query('COMMIT');
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    return { seconds, recordsPerSecond: input.records / seconds };
  } finally {
    await c.query('DROP TABLE IF EXISTS floor_records').catch(() => undefined);
    await c.end();
  }
}
