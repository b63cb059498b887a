/**
 * Erasure on request, on SQLite and PostgreSQL: a student one client received (analytics, through
 * pseudonyms) and another never did (the LMS) is erased. Afterwards they are gone from GraphQL and
 * from every table of the store (the change log keeps only the erasure's tombstone), the feed shows
 * the erasure without their last state, only the client that received them gets a `person.erased`
 * webhook naming them as it knew them, the audit entry names neither id nor name, a full re-sync
 * does not bring them back (suppressed and counted), and `lift` lets the next sync store them anew.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { createLogger } from '../../src/log.ts';
import { erasePerson, erasureRef, liftSuppression, type ErasureResult } from '../../src/privacy/erasure.ts';
import { WebhookDispatcher, webhookConfigSchema } from '../../src/feeds/webhooks.ts';
import { newWebhookSecret } from '../../src/privacy/webhook-endpoints.ts';
import type { Store } from '../../src/store/types.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';

/** Every row of every table, as JSON text per table (SQLite file or PostgreSQL database). */
async function allRows(store: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (store.kind === 'sqlite') {
    const db = (store as unknown as { writer: { prepare(s: string): { all(): unknown[] } } }).writer;
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[];
    for (const t of tables) out[t.name] = JSON.stringify(db.prepare(`SELECT * FROM "${t.name}"`).all());
  } else {
    // rows() reads on a connection pointed at the store's own schema (a tenant's, or the default).
    const pg = store as unknown as { rows<R>(text: string): Promise<R[]> };
    const tables = await pg.rows<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()`);
    for (const t of tables) out[t.name] = JSON.stringify(await pg.rows(`SELECT * FROM "${t.name}"`));
  }
  return out;
}

describe.each(storeKinds())('erasure on %s', (kind) => {
  let g: PrivateGateway;
  let hooks: Server;
  const received: { path: string; body: { type: string; data: { fields?: string[]; record: { id: string } | null } } }[] = [];
  let studentKey: string;
  let personId: string;
  let pseudonym: string;
  let names: { givenName: string; familyName: string };
  let result: ErasureResult;

  beforeAll(async () => {
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(body) });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    g = await privateGateway({ students: 20, teachers: 3, classes: 3, schools: 1 }, undefined, { store: kind });
    // A student with a guardian: the guardianship goes with them, the guardian stays.
    studentKey = g.dataset.list('guardianship')[0]!.data.studentKey;
    const student = g.dataset.get('person', studentKey)!;
    names = { givenName: student.data.givenName, familyName: student.data.familyName };
    personId = (await g.store.entityOfRecord({ source: 'demo', type: 'person', key: studentKey }))!;
    pseudonym = (await g.store.pseudonymsOf('analytics', (await g.store.domainVersion('analytics'))!, [personId])).get(personId)!;
    // The analytics client receives every person (so the ledger lists it); the LMS never asks.
    const res = await g.gql('analytics-demo', '{ people(first: 1000) { edges { node { id } } } }');
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.people.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(pseudonym);
    const url = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
    const head = await g.store.headSeq();
    for (const client of ['analytics-demo', 'lms-demo']) {
      await g.store.webhooks.create({
        id: `wh_${client}`, client, url: `${url}/${client}`, events: [], secret: g.privacy.keyring.sealCursor('webhook-secrets', newWebhookSecret()),
        cursorSeq: head, createdAt: new Date().toISOString(),
      });
    }
    result = await erasePerson({ store: g.store, privacy: g.privacy, personId, sources: ['demo'], requestedBy: { client: 'operator', name: 'tester' } });
  }, 120_000);

  afterAll(async () => {
    await g?.close();
    hooks?.close();
  });

  it('tells exactly the clients the ledger names, by webhook, with the id they know', async () => {
    expect(result.notified).toEqual([{ client: 'analytics-demo', subscriptions: 1 }]);
    expect(result.records).toBeGreaterThan(1);
    const dispatcher = new WebhookDispatcher(g.store, g.privacy, new Map(), webhookConfigSchema.parse({ allowHttp: true, allowPrivateNetworks: true }), createLogger({ level: 'silent' }));
    await dispatcher.tick();
    await dispatcher.stop();
    const erased = received.filter((r) => r.body.type === 'person.erased');
    expect(erased).toEqual([{ path: '/analytics-demo', body: expect.objectContaining({ data: expect.objectContaining({ record: { id: pseudonym } }) }) }]);
    // The feed's tombstone of the erasure is not read out to other subscriptions as a deletion.
    expect(received.filter((r) => r.path === '/lms-demo' && JSON.stringify(r.body).includes(personId))).toEqual([]);
    expect(received.some((r) => r.body.type === 'person.deleted' && r.body.data.fields?.includes('erased'))).toBe(false);
    // Every delivery (queued or sent) names no erased person: nothing but the notice carries the pseudonym.
    expect(JSON.stringify(received.filter((r) => r.body.type !== 'person.erased'))).not.toContain(pseudonym);
  });

  it('is gone from GraphQL, and the feed shows the erasure without their last state', async () => {
    const lms = await g.gql('lms-demo', `{ people(first: 1000) { edges { node { id } } } node(id: "${personId}") { id } }`);
    expect(lms.body.errors).toBeUndefined();
    expect(lms.body.data.people.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(personId);
    expect(lms.body.data.node).toBeNull();
    const an = await g.gql('analytics-demo', `{ person(id: "${pseudonym}") { id } }`);
    expect(an.body.data?.person ?? null).toBeNull();
    const feed = await g.gql('lms-demo', '{ changes(first: 1000) { edges { node { op type fields record { ... on Person { id givenName familyName } } } } } }');
    expect(feed.body.errors).toBeUndefined();
    const events = feed.body.data.changes.edges.map((e: { node: unknown }) => e.node) as { op: string; fields: string[]; record: { id: string; givenName: string } | null }[];
    const erasure = events.filter((e) => e.op === 'DELETED' && e.fields.includes('erased'));
    expect(erasure).toEqual([{ op: 'DELETED', type: 'PERSON', fields: ['erased'], record: { id: personId, givenName: '', familyName: '' } }]);
    // No earlier event of theirs is left in the feed.
    expect(JSON.stringify(events.filter((e) => !e.fields.includes('erased')))).not.toContain(personId);
  });

  it('is in no extract: people, enrollments or guardianships', async () => {
    for (const dataset of ['people', 'enrollments', 'guardianships']) {
      const admin = await request(`${g.gw.url}/extracts/${dataset}.ndjson`, { headers: { 'x-api-key': g.keys['admin-demo']! } });
      expect(admin.statusCode).toBe(200);
      const text = await admin.body.text();
      expect(text.length).toBeGreaterThan(0);
      expect({ dataset, hasId: text.includes(personId) }).toEqual({ dataset, hasId: false });
      const an = await request(`${g.gw.url}/extracts/${dataset}.ndjson`, { headers: { 'x-api-key': g.keys['analytics-demo']! } });
      expect({ dataset, hasPseudonym: (await an.body.text()).includes(pseudonym) }).toEqual({ dataset, hasPseudonym: false });
    }
  });

  it('leaves no row naming them in any table, but the tombstone; the audit entry names neither id nor name', async () => {
    const rows = await allRows(g.store);
    expect(Object.keys(rows)).toEqual(expect.arrayContaining(['entities', 'source_records', 'match_keys', 'pseudonyms', 'disclosures', 'change_log', 'suppressions', 'audit_log']));
    for (const [table, text] of Object.entries(rows)) {
      if (table === 'change_log') continue;
      expect({ table, hasId: text.includes(personId), hasPseudonym: text.includes(pseudonym) && table !== 'webhook_deliveries' }).toEqual({ table, hasId: false, hasPseudonym: false });
      expect({ table, hasKey: text.includes(`"${studentKey}"`) }).toEqual({ table, hasKey: false });
    }
    // A relative may share the family name: no record holds both of theirs.
    const people = await g.store.list({ type: 'person', first: 10_000 });
    expect(people.rows.filter((r) => JSON.stringify(r.data).includes(`"givenName":"${names.givenName}"`) && JSON.stringify(r.data).includes(`"familyName":"${names.familyName}"`))).toEqual([]);
    const log = (await g.store.changes({ afterSeq: 0, limit: 100_000 })).filter((c) => c.entityId === personId || JSON.stringify(c.before ?? null).includes(personId));
    expect(log.map((c) => [c.op, c.fields])).toEqual([['deleted', ['erased']]]);
    expect(JSON.stringify(log)).not.toContain(names.familyName);
    const audit = (await g.store.auditEntries({})).filter((e) => e.kind === 'erasure');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.operationHash).toBe(erasureRef(g.privacy.keyring.auditKey(), personId));
    expect(audit[0]!.fields).toEqual(['notified:analytics-demo']);
    expect(audit[0]!.operation).toContain('tester');
    expect(JSON.stringify(audit)).not.toContain(personId);
    expect(JSON.stringify(audit)).not.toContain(names.familyName);
  });

  it('stays gone after a full re-sync (suppressed, counted), and comes back as a new person once lifted', async () => {
    // The source also delivers a new enrollment of theirs, under a key the erasure never saw.
    const enrollment = g.dataset.list('enrollment').find((e) => e.data.personKey === studentKey)!;
    g.dataset.upsert('enrollment', 'enr-after-erasure', { ...enrollment.data });
    const again = await g.resync();
    expect(again.counters.suppressed).toBe(result.suppressed + 1);
    expect(JSON.stringify(await allRows(g.store))).not.toContain('enr-after-erasure');
    expect(await g.store.entityOfRecord({ source: 'demo', type: 'person', key: studentKey })).toBeUndefined();
    expect(JSON.stringify(await allRows(g.store))).not.toContain(`"${studentKey}"`);
    expect(await liftSuppression(g.store, g.privacy, { source: 'demo', type: 'person', key: studentKey })).toBe(result.suppressed);
    const lifted = await g.resync();
    expect(lifted.counters.suppressed).toBe(0);
    const back = await g.store.entityOfRecord({ source: 'demo', type: 'person', key: studentKey });
    expect(back).toBeDefined();
    expect(back).not.toBe(personId);
    expect(await g.store.entityOfRecord({ source: 'demo', type: 'enrollment', key: 'enr-after-erasure' })).toMatch(/^enr_/);
  }, 60_000);

  it('is an admin mutation too: erasePerson, absent from other purposes\' schemas', async () => {
    const other = g.dataset.list('guardianship').find((x) => x.data.studentKey !== studentKey)!.data.studentKey;
    const id = (await g.store.entityOfRecord({ source: 'demo', type: 'person', key: other }))!;
    // By now the LMS has listed everyone too (the GraphQL test above), and the admin client extracted them.
    const mutation = 'mutation($id: ID!) { erasePerson(id: $id) { ref records suppressed notified { client subscriptions } } }';
    const lms = await g.gql('lms-demo', mutation, { id });
    expect(lms.body.errors?.[0]?.message).toMatch(/no such operations/);
    const ledger = (await g.store.disclosuresOf(id)).map((d) => d.client).sort();
    expect(ledger).toEqual(expect.arrayContaining(['analytics-demo', 'lms-demo']));
    const admin = await g.gql('admin-demo', mutation, { id });
    expect(admin.body.errors).toBeUndefined();
    // Exactly the ledger's clients; only the analytics and LMS clients have subscriptions here.
    const subs = (c: string) => (['analytics-demo', 'lms-demo'].includes(c) ? 1 : 0);
    expect(admin.body.data.erasePerson).toMatchObject({ ref: erasureRef(g.privacy.keyring.auditKey(), id), notified: ledger.map((client) => ({ client, subscriptions: subs(client) })) });
    expect(admin.body.data.erasePerson.records).toBeGreaterThan(1);
    expect((await g.store.getEntities([id]))[0]).toBeUndefined();
    const audit = (await g.store.auditEntries({})).filter((e) => e.kind === 'erasure').at(-1)!;
    expect(audit.client).toBe('admin-demo');
    const again = await g.gql('admin-demo', mutation, { id });
    expect(again.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('no person'), extensions: { code: 'NOT_FOUND' } });
  });

  it('refuses a person that does not exist, erasing nothing', async () => {
    await expect(erasePerson({ store: g.store, privacy: g.privacy, personId: 'per_nobody', sources: ['demo'], requestedBy: { client: 'operator', name: 'tester' } }))
      .rejects.toThrow(/no person per_nobody/);
  });
});
