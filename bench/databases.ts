/**
 * A fresh PostgreSQL database for a bench, on the server ROSTERGATE_BENCH_POSTGRES (or
 * ROSTERGATE_TEST_POSTGRES) names, and how to drop it: every bench that makes its own store on
 * PostgreSQL takes one here. `drop` ends the connections still open to it (WITH (FORCE)).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

async function onServer(server: string, q: string): Promise<void> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try {
    await c.query(q);
  } finally {
    await c.end();
  }
}

export async function freshDatabase(server: string, prefix = 'rg_bench'): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await onServer(server, `CREATE DATABASE ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => onServer(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
