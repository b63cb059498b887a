/**
 * The tenant catalog and CatalogTenants on real stores (SQLite and PostgreSQL): catalog CRUD with
 * its checks, a store per tenant with keys per tenant, per-tenant write locks on PostgreSQL, and
 * removal that erases.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { createLogger } from '../../src/log.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/types.ts';
import { CatalogTenants } from '../../src/tenants/catalog-tenants.ts';
import { syncTenant } from '../../src/tenants/sync-tenant.ts';
import { newPostgresDatabase, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';

const silent = createLogger({ level: 'silent' });

interface Deployment {
  location: string;
  home: Store;
  tenants: CatalogTenants;
  /** A second process's view of the same deployment (its own registry on its own home store connection). */
  another(): Promise<CatalogTenants & { homeStore: Store }>;
  close(): Promise<void>;
}

async function deployment(kind: StoreKind): Promise<Deployment> {
  const extra: (() => Promise<void>)[] = [];
  let location: string;
  let drop = async () => {};
  if (kind === 'sqlite') location = join(tempDir(), 'rg.db');
  else {
    const db = await newPostgresDatabase();
    location = db.url;
    drop = db.drop;
  }
  const open = () => (kind === 'sqlite' ? Promise.resolve(SqliteStore.open(location)) : PostgresStore.open(location));
  const registry = (home: Store) =>
    new CatalogTenants({ storeLocation: location, homeStore: home, home: { id: 'test', sources: [] }, keyring: new KeyRing(TEST_MASTER_KEY, 'test'), refreshMs: 0 });
  const home = await open();
  const tenants = registry(home);
  return {
    location, home, tenants,
    async another() {
      const h = await open();
      const t = Object.assign(registry(h), { homeStore: h });
      extra.push(async () => (await t.close(), await h.close()));
      return t;
    },
    async close() {
      for (const f of extra) await f();
      await tenants.close();
      await home.close();
      await drop();
    },
  };
}

/** A OneRoster CSV drop of a generated district, as a tenant's source. */
function drop(seed: number, students = 20): { dataset: RosterDataset; sources: unknown[] } {
  const dataset = RosterDataset.generate({ seed, students, teachers: 3, classes: 3, schools: 1 });
  const dir = join(tempDir(), 'drop');
  mkdirSync(dir);
  writeOneRosterDrop(dataset, dir);
  return { dataset, sources: [{ id: 'sis', type: 'oneroster-csv', path: dir }] };
}

let open: Deployment[] = [];
afterEach(async () => {
  for (const d of open) await d.close();
  open = [];
});
const make = async (kind: StoreKind) => {
  const d = await deployment(kind);
  open.push(d);
  return d;
};

describe.each(storeKinds())('tenant catalog on %s', { timeout: 60_000 }, (kind) => {
  it('adds, lists, changes, pauses, resumes and removes tenants, recording removals', async () => {
    const { tenants } = await make(kind);
    expect((await tenants.list()).map((t) => t.id)).toEqual(['test']);
    const a = await tenants.add({ id: 'district-a', name: 'District A', sources: [{ id: 'c', type: 'clever', token: 'env:DISTRICT_A_TOKEN' }] });
    expect(a).toMatchObject({ id: 'district-a', name: 'District A', status: 'active' });
    // Kept as validated (defaults filled in), the secret as its reference.
    expect(a.sources[0]).toMatchObject({ id: 'c', type: 'clever', token: 'env:DISTRICT_A_TOKEN', baseUrl: 'https://api.clever.com' });
    await tenants.add({ id: 'district-b', name: 'District B' });
    expect((await tenants.list()).map((t) => t.id)).toEqual(['test', 'district-a', 'district-b']);

    expect((await tenants.catalog.update('district-b', { status: 'paused' })).status).toBe('paused');
    expect((await tenants.open('district-b'))!.status).toBe('paused');
    expect((await tenants.catalog.update('district-b', { status: 'active', name: 'District B (north)' }))).toMatchObject({ status: 'active', name: 'District B (north)' });
    const changed = await tenants.catalog.update('district-a', { sources: [] });
    expect(changed.sources).toEqual([]);

    await tenants.remove('district-a', { by: 'operator jo' });
    expect((await tenants.list()).map((t) => t.id)).toEqual(['test', 'district-b']);
    expect(await tenants.open('district-a')).toBeUndefined();
    const [removal] = await tenants.catalog.removals();
    expect(removal).toMatchObject({ tenantId: 'district-a', name: 'District A', removedBy: 'operator jo' });
    expect(Date.parse(removal!.removedAt)).not.toBeNaN();
  });

  it('refuses a literal secret naming its key, a bad or taken id, the home id, and an unknown source type', async () => {
    const { tenants } = await make(kind);
    await expect(tenants.add({ id: 'a', name: 'A', sources: [{ id: 'ms', type: 'msgraph', tenantId: 't', clientId: 'env:MS_ID', clientSecret: 'hunter2-literal' }] }))
      .rejects.toThrow(/sources\[0\] \(ms\): clientSecret: a secret given literally: give it by reference, as env:NAME or file:\/absolute\/path/);
    await expect(tenants.add({ id: 'Bad_Id', name: 'x' })).rejects.toThrow(/tenant id "Bad_Id": lower-case letters/);
    await expect(tenants.add({ id: 'x'.repeat(57), name: 'x' })).rejects.toThrow(/at most 56 characters/);
    await expect(tenants.add({ id: 'test', name: 'x' })).rejects.toThrow(/the config file's own tenant/);
    await expect(tenants.add({ id: 'a', name: 'A', sources: [{ id: 's', type: 'nope' }] })).rejects.toThrow(/unknown source type "nope"/);
    await tenants.add({ id: 'a', name: 'A' });
    await expect(tenants.add({ id: 'a', name: 'A again' })).rejects.toThrow(/tenant "a" exists already/);
    await expect(tenants.catalog.update('a', { sources: [{ id: 'c', type: 'clever', token: 'plain' }] })).rejects.toThrow(/token: a secret given literally/);
    expect((await tenants.catalog.require('a')).sources).toEqual([]);
  });

  it('syncs two tenants into separate stores, the same person under unrelated pseudonyms', async () => {
    const d = await make(kind);
    const cfg = demoPrivacyConfig(d.location);
    const { dataset, sources } = drop(11);
    await d.tenants.add({ id: 'north', name: 'North', sources });
    await d.tenants.add({ id: 'south', name: 'South', sources });
    const north = (await d.tenants.open('north'))!;
    const south = (await d.tenants.open('south'))!;
    expect(north.store).not.toBe(south.store);
    // At the same time: on PostgreSQL their connections come from one pool, switching schemas between them.
    const runs = await Promise.all([north, south].map((t) => syncTenant(t, 'test', cfg, silent)));
    for (const r of runs) expect(r.map((s) => s.status)).toEqual(['complete']);
    expect(await north.store.counts()).toEqual(await south.store.counts());

    const person = dataset.list('person')[0]!;
    const pseudonymsIn = async (store: Store) => {
      const id = await store.entityOfRecord({ source: 'sis', type: 'person', key: person.key });
      expect(id).toBeDefined();
      return (await store.subjectRows([id!])).pseudonyms.filter((p) => p.current);
    };
    const [pn, ps] = [await pseudonymsIn(north.store), await pseudonymsIn(south.store)];
    expect(pn.length).toBeGreaterThan(0);
    expect(pn.map((p) => p.domain)).toEqual(ps.map((p) => p.domain));
    pn.forEach((p, i) => expect(p.value).not.toBe(ps[i]!.value));
    // The home store holds none of it.
    expect(await d.home.entityOfRecord({ source: 'sis', type: 'person', key: person.key })).toBeUndefined();
  });

  it('refuses to sync a paused tenant', async () => {
    const d = await make(kind);
    await d.tenants.add({ id: 'north', name: 'North', sources: drop(3).sources });
    await d.tenants.catalog.update('north', { status: 'paused' });
    await expect(syncTenant((await d.tenants.open('north'))!, 'test', demoPrivacyConfig(d.location), silent)).rejects.toMatchObject({ code: 'TENANT_PAUSED' });
  });

  it('removal erases the store, is refused while a sync holds a lease, and a re-added tenant starts empty', async () => {
    const d = await make(kind);
    const cfg = demoPrivacyConfig(d.location);
    const { sources } = drop(5);
    await d.tenants.add({ id: 'north', name: 'North', sources });
    const north = (await d.tenants.open('north'))!;
    await syncTenant(north, 'test', cfg, silent);
    expect((await north.store.headSeq())).toBeGreaterThan(0);
    expect(await d.tenants.storageExists('north')).toBe(true);

    // Another process syncing it: removal refused, the tenant as it was.
    const other = await d.another();
    const { acquireSourceLease } = await import('../../src/store/lease.ts');
    const lease = await acquireSourceLease((await other.open('north'))!.store, 'sis');
    await expect(d.tenants.remove('north', { by: 'op' })).rejects.toMatchObject({ code: 'SYNC_BUSY' });
    expect((await d.tenants.catalog.require('north')).status).toBe('active');
    await lease.release();

    // A key narrowed to north (keys create --tenant) and one of the same client for every tenant.
    await d.home.addApiKey('a'.repeat(64), 'lms', new Date().toISOString(), 'north');
    await d.home.addApiKey('b'.repeat(64), 'lms', new Date().toISOString());
    await d.tenants.remove('north', { by: 'op' });
    expect(await d.tenants.storageExists('north')).toBe(false);
    // North's key goes with it (a tenant added again under the id must not open to it); the other stays.
    expect((await d.home.findApiKey('a'.repeat(64)))?.revokedAt).toBeTruthy();
    expect((await d.home.findApiKey('b'.repeat(64)))?.revokedAt).toBeNull();
    const where = d.tenants.storage('north');
    if (where.kind === 'sqlite') expect(existsSync(where.path)).toBe(false);
    // The other process sees it gone without a restart.
    expect(await other.open('north')).toBeUndefined();

    await d.tenants.add({ id: 'north', name: 'North again', sources });
    const again = (await d.tenants.open('north'))!;
    expect(await again.store.headSeq()).toBe(0);
    expect(Object.values(await again.store.counts()).every((n) => n === 0)).toBe(true);
  });
});

describe.runIf(storeKinds().includes('postgres'))('tenant write locks on PostgreSQL', { timeout: 60_000 }, () => {
  it('a tenant holding its write lock does not hold up another tenant, but does hold up itself', async () => {
    const d = await make('postgres');
    await d.tenants.add({ id: 'a', name: 'A' });
    await d.tenants.add({ id: 'b', name: 'B' });
    const [a, b] = [(await d.tenants.open('a'))!, (await d.tenants.open('b'))!];
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    // Tenant a's transaction holds a's write lock until told to finish.
    const aTx = a.store.transaction(async () => {
      entered();
      await held;
    });
    await inside;
    // b commits while a's lock is held: it never waits on it.
    await b.store.transaction(async (tx) => tx.putLease({ key: 'probe', token: 't', holderHost: 'h', holderPid: 1, acquiredAt: 'x', heartbeatAt: 'x', expiresAt: 'x' }));
    expect(await (await d.tenants.open('b'))!.store.transaction(async (tx) => (await tx.getLease('probe'))?.token)).toBe('t');
    // The home store's lock is its own too.
    await d.home.transaction(async () => undefined);
    // A writer of tenant a in another process waits for a's lock (seen in pg_locks, not timed).
    const other = await d.another();
    let otherDone = false;
    const otherTx = (await other.open('a'))!.store.transaction(async () => void (otherDone = true));
    const waiting = async () => (await (d.home as PostgresStore).rows<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`))[0]!.n;
    while ((await waiting()) === 0) await new Promise((r) => setTimeout(r, 20));
    expect(otherDone).toBe(false);
    finish();
    await aTx;
    await otherTx;
    expect(otherDone).toBe(true);
  });

  it('keeps every tenant on one shared pool, each in its own schema', async () => {
    const d = await make('postgres');
    for (const id of ['one-x', 'two', 'three']) await d.tenants.add({ id, name: id });
    for (const id of ['one-x', 'two', 'three']) await (await d.tenants.open(id))!.store.headSeq();
    const home = d.home as PostgresStore;
    const schemas = (await home.rows<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%' ORDER BY 1`)).map((r) => r.nspname);
    expect(schemas).toEqual(['tenant_one_x', 'tenant_three', 'tenant_two']);
    // Backends of this database: the home store's pool plus ONE shared pool (at most its size), not a pool per tenant.
    const backends = (await home.rows<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()`))[0]!.n;
    expect(backends).toBeLessThanOrEqual(8 + 16);
    const tables = (await home.rows<{ n: number }>(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'tenant_two' AND table_name = 'entities'`))[0]!.n;
    expect(tables).toBe(1);
  });
});
