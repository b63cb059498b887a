/**
 * The change feed's retention window as an operator runs it: `rostergate sync` (syncAll) purges
 * changes older than `changeFeed.retentionDays` (default 30); a cursor from before the purge is an
 * error telling the client to re-read, while a cursor inside the window reads on.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { serveStore, syncAll } from '../../src/runtime.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { openTestStore, storeKinds, tempDir } from '../support/stores.ts';

const DAY = 86_400_000;

describe.each(storeKinds())('on %s', (kind) => {
  it('sync keeps changeFeed.retentionDays of changes (default 30): an older cursor is expired, one inside the window reads on', async () => {
    const store = await openTestStore(kind);
    const config = demoPrivacyConfig(join(tempDir(), 'rg.db'));
    expect(config.changeFeed.retentionDays).toBe(30);
    const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test'), versionCacheMs: 0 });
    const log = createLogger({ level: 'silent' });
    const dataset = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const now = Date.now();
    const syncAt = async (daysAgo: number) => {
      const ingest = await privacy.ingest(store);
      return syncSource(store, directConnector('demo', dataset), { ...ingest, matchRules: config.identity.match, now: () => new Date(now - daysAgo * DAY) });
    };
    const key = newApiKey();
    await store.addApiKey(hashApiKey(key), 'lms-demo', new Date().toISOString());
    const gw = await serveStore(store, config, log, { port: 0, privacy, webhooks: false });
    const gql = async (query: string, variables?: unknown) => {
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query, variables }) });
      return (await r.body.json()) as { data?: any; errors?: any[] };
    };
    const feed = `query($after: Cursor) { changes(after: $after, first: 500) { edges { node { op type fields record { ... on Person { givenName } } } } } }`;
    try {
      // The district arrives 40 days ago; one student is renamed 20 days ago.
      await syncAt(40);
      const early = (await gql(`{ changes(first: 1) { pageInfo { endCursor } } }`)).data!.changes.pageInfo.endCursor;
      const head40 = (await gql(`{ changesHead }`)).data!.changesHead;
      const student = dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      dataset.upsert('person', student.key, { givenName: 'Maëlys' });
      await syncAt(20);
      const head20 = (await gql(`{ changesHead }`)).data!.changesHead;
      // Before the purge the early cursor still reads.
      expect((await gql(feed, { after: early })).errors).toBeUndefined();

      // A sync (of no source here: the purge ends every run) with the default window.
      const headSeq = await store.headSeq();
      await syncAll(store, { ...config, sources: [] }, log, { privacy });
      expect(await store.purgedThroughSeq()).toBeGreaterThan(0);
      expect(await store.purgedThroughSeq()).toBeLessThan(headSeq);

      const expired = await gql(feed, { after: early });
      expect(expired.errors![0].extensions.code).toBe('CHANGES_CURSOR_EXPIRED');
      expect(expired.errors![0].message).toMatch(/older than the retained change window .* read everything again, starting from changesHead/);
      // The cursor at the end of what was purged misses nothing: it reads the rename.
      const inside = await gql(feed, { after: head40 });
      expect(inside.errors).toBeUndefined();
      expect(inside.data!.changes.edges.map((e: any) => e.node)).toEqual([{ op: 'UPDATED', type: 'PERSON', fields: ['givenName'], record: { givenName: 'Maëlys' } }]);
      // With no cursor the feed starts where the log starts now: the rename, not the purged district.
      expect((await gql(feed)).data!.changes.edges.map((e: any) => e.node.op)).toEqual(['UPDATED']);

      // A shorter window, configured: the rename goes too, and so does the cursor before it.
      await syncAll(store, { ...config, sources: [], retention: { ...config.retention, changeLogDays: 10 } }, log, { privacy });
      expect((await gql(feed, { after: head40 })).errors![0].extensions.code).toBe('CHANGES_CURSOR_EXPIRED');
      const fresh = await gql(feed, { after: head20 });
      expect(fresh.errors).toBeUndefined();
      expect(fresh.data!.changes.edges).toEqual([]);
    } finally {
      await gw.close();
      await store.close();
    }
  });
});
