/**
 * Correcting identity by hand (`rostergate identity link` / `unlink`), on every store the suite runs
 * on: a record a conflict kept apart is merged into the person or school it belongs to, a wrong link
 * is split, every reference follows, the change feed and webhooks tell consumers (the merged-away
 * record's tombstone names its survivor), pseudonyms, the disclosure ledger and the conflict report
 * follow, each decision is audited, and later syncs keep it — even when a record goes and comes back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { linkRecord, unlinkRecord, type OperatorOptions } from '../../src/sync/overrides.ts';
import { demographicsIdFor } from '../../src/sync/ids.ts';
import { auditLogFor } from '../../src/graphql/privacy.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';
import { createLogger } from '../../src/log.ts';
import { isRostergateError } from '../../src/errors.ts';
import { mergedIntoOf, type ChangeRow, type SourceRecordRef } from '../../src/store/types.ts';
import type { Connector } from '../../connectors/types.ts';
import type { EntityType, SourceRecord } from '../../src/model/records.ts';
import type { DatasetRow } from '../../connectors/dataset-view.ts';

const DISTRICT = { students: 24, teachers: 3, classes: 4, schools: 1 };
const PRECEDENCE = ['demo', 'lms', 'third'];
const ALL: EntityType[] = ['org', 'person', 'demographics', 'class', 'enrollment', 'guardianship'];

/** A second source delivering exactly `records()` on every run (a complete listing of its types). */
function source(id: string, records: () => SourceRecord[]): Connector {
  return { sourceId: id, type: 'sds-csv', async *read() { yield { resource: 'all', records: records(), state: { done: true }, completes: ALL }; } };
}

let g: PrivateGateway | undefined;
afterEach(async () => {
  await g?.close();
  g = undefined;
});

describe.each(storeKinds())('identity link and unlink on %s', (kind) => {
  const start = async () => {
    g = await privateGateway(DISTRICT, undefined, {
      store: kind, config: { webhooks: { allowHttp: true, allowPrivateNetworks: true, maxAttempts: 1, retrySeconds: [0], timeoutMs: 300 } },
    });
    return g;
  };
  const sync = async (c: Connector) => {
    const ingest = await g!.privacy.ingest(g!.store);
    return syncSource(g!.store, c, {
      ...ingest, precedence: PRECEDENCE, matchRules: g!.config.identity.match, orgMatchRules: g!.config.identity.matchOrgs, allowMassDelete: true,
    });
  };
  const operator = async (): Promise<OperatorOptions> => {
    const { personCreated, changeLogged } = await g!.privacy.ingest(g!.store);
    return { precedence: PRECEDENCE, personCreated, changeLogged, auditKey: g!.privacy.keyring.auditKey() };
  };
  const entityOf = (source: string, type: EntityType, key: string) => g!.store.transaction((tx) => tx.resolveKey(source, type, key));
  const entity = async (id: string) => (await g!.store.getEntities([id]))[0];
  const sourcesOf = async (id: string) => ((await g!.store.sourcesOf([id])).get(id) ?? []).map((s) => `${s.source}:${s.key}`).sort();
  const changesAfter = (seq: number) => g!.store.changes({ afterSeq: seq, limit: 10_000 });
  const students = () => g!.dataset.list('person').filter((p) => p.data.roles.includes('student') && p.data.email && p.data.sisId);

  /** The LMS's own copy of a student, with a's SIS id and b's email: a conflict, kept apart. */
  const lmsRecords = (a: DatasetRow<'person'>, b: DatasetRow<'person'>): SourceRecord[] => [
    { type: 'org', key: 'lms-school', data: { name: 'Online campus', type: 'school' } },
    { type: 'class', key: 'lms-c1', data: { title: 'Algebra online', schoolKey: 'lms-school' } },
    { type: 'person', key: 'x1', data: { givenName: 'Mixed', familyName: 'Record', roles: ['student'], sisId: a.data.sisId, email: b.data.email } },
    { type: 'demographics', key: 'x1', data: { personKey: 'x1', birthDate: '2011-03-04' } },
    { type: 'enrollment', key: 'lms-e1', data: { classKey: 'lms-c1', personKey: 'x1', role: 'student' } },
    { type: 'person', key: 'g1', data: { givenName: 'Gia', familyName: 'Guardian', roles: ['guardian'], email: 'gia.guardian@lms.example' } },
    { type: 'guardianship', key: 'g1:x1', data: { guardianKey: 'g1', studentKey: 'x1', relation: 'parent' } },
  ];
  const X1: SourceRecordRef = { source: 'lms', type: 'person', key: 'x1' };

  it('link: the conflicting record merges into the chosen person, every reference follows, the feed tells it, and syncs keep it', async () => {
    await start();
    const [a, b] = students();
    let records = lmsRecords(a!, b!);
    const lms = source('lms', () => records);
    expect((await sync(lms)).counters).toMatchObject({ conflicts: 1 });
    const A = (await entityOf('demo', 'person', a!.key))!;
    const M = (await entityOf('lms', 'person', 'x1'))!;
    expect(M).not.toBe(A);
    // Clients received both people before the operator's decision.
    await g!.store.transaction(async (tx) => {
      await tx.recordDisclosures('analytics-demo', [M], '2026-01-01T00:00:00.000Z');
      await tx.recordDisclosures('analytics-demo', [A], '2026-02-01T00:00:00.000Z');
      await tx.recordDisclosures('lms-demo', [M], '2026-03-01T00:00:00.000Z');
    });
    const version = (await g!.store.domainVersion('analytics'))!;
    const pseudonymOfM = (await g!.store.pseudonymsOf('analytics', version, [M])).get(M)!;
    const pseudonymOfA = (await g!.store.pseudonymsOf('analytics', version, [A])).get(A)!;
    const head = await g!.store.headSeq();
    await new Promise((r) => setTimeout(r, 5));
    const beforeLink = new Date().toISOString();

    const r = await linkRecord(g!.store, X1, A, await operator());
    expect(r).toMatchObject({ type: 'person', merged: M, into: A, records: 1, repointed: 3 });

    // The person is one: the SIS's record and the LMS's, the SIS's values first.
    expect(await entity(M)).toBeUndefined();
    expect(await sourcesOf(A)).toEqual([`demo:${a!.key}`, 'lms:x1']);
    expect((await entity(A))!.data).toMatchObject({ givenName: a!.data.givenName, email: a!.data.email });
    // Its enrollment, guardianship and demographics of the LMS point at it now.
    const enrollment = (await entity((await entityOf('lms', 'enrollment', 'lms-e1'))!))!;
    expect(enrollment.data).toMatchObject({ personId: A });
    expect((await entity((await entityOf('lms', 'guardianship', 'g1:x1'))!))!.data).toMatchObject({ studentId: A });
    expect(await entityOf('lms', 'demographics', 'x1')).toBe(demographicsIdFor(A));
    expect(await entity(demographicsIdFor(M))).toBeUndefined();
    expect((await g!.store.linkedFrom('enrollment.person', [A])).get(A)).toContain(enrollment.id);
    // The LMS's email now finds the person it was merged into.
    const byEmail = await g!.store.transaction((tx) => tx.findByMatchKey('email', g!.privacy.keyring.matchKey('email', b!.data.email!.toLowerCase())));
    expect(byEmail).toContain(A);
    // The merged-away person's pseudonyms went; the survivor's stayed.
    expect([...(await g!.store.pseudonymsOf('analytics', version, [M, A])).entries()]).toEqual([[A, pseudonymOfA]]);
    // The ledger: every client that received either person is on the survivor, earliest first.
    expect(await g!.store.disclosuresOf(M)).toEqual([]);
    expect(await g!.store.disclosuresOf(A)).toEqual([
      { client: 'analytics-demo', firstAt: '2026-01-01T00:00:00.000Z', lastAt: '2026-02-01T00:00:00.000Z' },
      { client: 'lms-demo', firstAt: '2026-03-01T00:00:00.000Z', lastAt: '2026-03-01T00:00:00.000Z' },
    ]);
    // The conflict is settled, naming the survivor.
    const [conflict] = await g!.store.conflicts();
    expect(conflict).toMatchObject({ source: 'lms', key: 'x1', resolution: `linked into ${A}` });
    expect(conflict!.resolvedAt).not.toBeNull();

    // The change log: the survivor updated (its provenance), the references re-pointed, then the
    // merged-away person deleted with its last state, its pseudonyms and the survivor's id.
    const log = await changesAfter(head);
    const last = log.at(-1)!;
    expect(last).toMatchObject({ entityId: M, op: 'deleted', type: 'person', source: 'operator:identity-link' });
    expect(mergedIntoOf(last)).toBe(A);
    expect((last.before as { _pseudonyms: Record<string, string> })._pseudonyms).toMatchObject({ analytics: pseudonymOfM });
    expect(log.find((c) => c.entityId === A)).toMatchObject({ op: 'updated', fields: expect.arrayContaining(['sources']) });
    expect(log.find((c) => c.entityId === enrollment.id)).toMatchObject({ op: 'updated', fields: ['personId'] });
    expect(log.findIndex((c) => c.entityId === enrollment.id)).toBeLessThan(log.length - 1);

    // Through the purposes: the LMS sees the deletion name the survivor by id, analytics by pseudonym.
    const feed = async (client: string) => {
      const res = await g!.gql(client, `query($a: Cursor) { changes(after: $a, first: 100, types: [PERSON]) { edges { node { op
        record { ... on Person { id } } mergedInto { ... on Person { id } } } } } }`, { a: null });
      expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
      return (res.body.data.changes.edges as { node: { op: string; record: { id: string } | null; mergedInto: { id: string } | null } }[]).map((e) => e.node);
    };
    const lmsFeed = (await feed('lms-demo')).filter((n) => n.mergedInto);
    expect(lmsFeed).toEqual([{ op: 'DELETED', record: { id: M }, mergedInto: { id: A } }]);
    const anFeed = (await feed('analytics-demo')).filter((n) => n.mergedInto);
    expect(anFeed).toEqual([{ op: 'DELETED', record: { id: pseudonymOfM }, mergedInto: { id: pseudonymOfA } }]);

    // Polling clients see it too: the survivor and the re-pointed enrollment changed for them now.
    const polled = await g!.gql('lms-demo', `query($t: DateTime) { people(updatedSince: $t, first: 100) { edges { node { id } } }
      enrollments(updatedSince: $t, first: 100) { edges { node { id } } } }`, { t: beforeLink });
    expect(polled.body.errors, JSON.stringify(polled.body.errors)).toBeUndefined();
    expect(polled.body.data.people.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(A);
    expect(polled.body.data.enrollments.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(enrollment.id);

    // The decision is audited in the chain, which still verifies.
    const entries = await g!.store.auditEntries({});
    expect(entries.filter((e) => e.kind === 'identity').map((e) => [e.client, e.operation, e.people])).toEqual([['operator', 'identity link (person)', 2]]);
    expect((await auditLogFor(g!.store, g!.privacy.keyring).verify()).ok).toBe(true);

    // Later syncs keep it: unchanged, changed, a full run of either source.
    records = records.map((x) => (x.key === 'x1' && x.type === 'person' && !x.deleted ? { ...x, data: { ...x.data, familyName: 'Recorded' } } : x));
    for (const c of [lms, directConnector('demo', g!.dataset)]) expect((await sync(c)).counters.conflicts).toBe(0);
    expect(await entityOf('lms', 'person', 'x1')).toBe(A);
    // The LMS drops the record, then delivers it again: it comes back to the survivor, no new conflict.
    const full = records;
    records = full.filter((x) => !['x1', 'lms-e1', 'g1:x1'].includes(x.key));
    await sync(lms);
    expect(await sourcesOf(A)).toEqual([`demo:${a!.key}`]);
    records = full;
    expect((await sync(lms)).counters).toMatchObject({ conflicts: 0, linked: 1 });
    expect(await entityOf('lms', 'person', 'x1')).toBe(A);
    expect((await g!.store.conflicts()).filter((c) => !c.resolvedAt)).toEqual([]);
  });

  it('unlink: a wrongly linked record becomes a person of its own; references of its source follow; the rest stays; syncs keep them apart', async () => {
    await start();
    // A teacher the LMS also delivers (same SIS id and email): linked by the rules.
    const t = g!.dataset.list('person').find((p) => p.data.roles.includes('teacher'))!;
    const lmsClass: SourceRecord[] = [
      { type: 'class', key: 'lms-c2', data: { title: 'Robotics club' } },
      { type: 'person', key: 'lt', data: { givenName: t.data.givenName, familyName: t.data.familyName, roles: ['teacher'], sisId: t.data.sisId, email: t.data.email } },
      { type: 'enrollment', key: 'lms-e2', data: { classKey: 'lms-c2', personKey: 'lt', role: 'teacher' } },
    ];
    let records = lmsClass;
    const lms = source('lms', () => records);
    expect((await sync(lms)).counters).toMatchObject({ linked: 1, conflicts: 0 });
    const E = (await entityOf('demo', 'person', t.key))!;
    expect(await entityOf('lms', 'person', 'lt')).toBe(E);
    const sisEnrollments = (await g!.store.linkedFrom('enrollment.person', [E])).get(E)!;
    await g!.store.transaction((tx) => tx.recordDisclosures('lms-demo', [E], '2026-01-01T00:00:00.000Z'));
    const head = await g!.store.headSeq();

    const r = await unlinkRecord(g!.store, { source: 'lms', type: 'person', key: 'lt' }, await operator());
    const F = r.to;
    expect(r).toMatchObject({ type: 'person', from: E, repointed: 1 });
    expect(F).toMatch(/^per_/);
    expect(await sourcesOf(F)).toEqual(['lms:lt']);
    expect(await sourcesOf(E)).toEqual([`demo:${t.key}`]);
    // The LMS's enrollment follows its record; the SIS's stay.
    const lmsEnrollment = (await entityOf('lms', 'enrollment', 'lms-e2'))!;
    expect((await entity(lmsEnrollment))!.data).toMatchObject({ personId: F });
    expect((await g!.store.linkedFrom('enrollment.person', [E])).get(E)!.sort()).toEqual(sisEnrollments.filter((id) => id !== lmsEnrollment).sort());
    // The new person has pseudonyms of its own; the ledger of the person it left is copied to it.
    const version = (await g!.store.domainVersion('analytics'))!;
    expect((await g!.store.pseudonymsOf('analytics', version, [E, F])).size).toBe(2);
    expect((await g!.store.disclosuresOf(F)).map((d) => d.client)).toEqual(['lms-demo']);
    expect((await g!.store.disclosuresOf(E)).map((d) => d.client)).toEqual(['lms-demo']);
    // The change log: the new person created, the old one updated (provenance), the enrollment re-pointed.
    const log = await changesAfter(head);
    expect(log.find((c) => c.entityId === F)).toMatchObject({ op: 'created', type: 'person' });
    expect(log.find((c) => c.entityId === E)).toMatchObject({ op: 'updated', fields: ['sources'] });
    expect(log.find((c) => c.entityId === lmsEnrollment)).toMatchObject({ op: 'updated', fields: ['personId'] });
    expect(log.some((c: ChangeRow) => c.op === 'deleted')).toBe(false);

    // Later syncs keep them apart: the rules would link them, the override says no.
    for (const c of [lms, directConnector('demo', g!.dataset)]) expect((await sync(c)).counters).toMatchObject({ linked: 0, conflicts: 0 });
    expect(await entityOf('lms', 'person', 'lt')).toBe(F);
    // A third source with the same ids now matches two people: a conflict, not a guess.
    const third = source('third', () => [{ type: 'person', key: 't3', data: { givenName: 'T', familyName: 'Three', roles: ['teacher'], sisId: t.data.sisId } }]);
    const s3 = await sync(third);
    expect(s3.counters).toMatchObject({ conflicts: 1, linked: 0 });
    expect((await g!.store.conflicts()).find((c) => c.source === 'third')!.candidates.sort()).toEqual([E, F].sort());
    // Each side goes and comes back to its own person, whichever record returns.
    records = [];
    await sync(lms);
    expect(await entity(F)).toBeUndefined();
    records = lmsClass;
    await sync(lms);
    expect(await entityOf('lms', 'person', 'lt')).toBe(F);
    g!.dataset.remove('person', t.key);
    await sync(directConnector('demo', g!.dataset));
    expect(await entity(E)).toBeUndefined();
    g!.dataset.upsert('person', t.key, t.data);
    await sync(directConnector('demo', g!.dataset));
    expect(await entityOf('demo', 'person', t.key)).toBe(E);
    expect(await entityOf('lms', 'person', 'lt')).toBe(F);
  });

  it('schools too: a school kept apart merges into the SIS school with its classes and people; its deletion names the survivor in webhooks', async () => {
    await start();
    const school = g!.dataset.list('org').find((o) => o.data.type === 'school')!;
    // A school another source knows by a different SIS id: the rules cannot link it.
    const records: SourceRecord[] = [
      { type: 'org', key: 'o-1', data: { name: school.data.name, type: 'school', sisId: 'OTHER-1' } },
      { type: 'class', key: 'o-c1', data: { title: 'Study hall', schoolKey: 'o-1' } },
      { type: 'person', key: 'o-p1', data: { givenName: 'Otto', familyName: 'Other', roles: ['staff'], orgKeys: ['o-1'], primaryOrgKey: 'o-1', email: 'otto.other@lms.example' } },
    ];
    await sync(source('lms', () => records));
    const S = (await entityOf('demo', 'org', school.key))!;
    const M = (await entityOf('lms', 'org', 'o-1'))!;
    expect(M).not.toBe(S);
    // Webhooks of the LMS client, from here on (delivery fails: the payloads are what counts).
    const since = await g!.store.headSeq();
    const hook = { id: 'wh_test', client: 'lms-demo', url: 'http://127.0.0.1:9/hook', events: [], secret: g!.privacy.keyring.sealCursor('webhook-secrets', 'whsec_dGVzdA=='), cursorSeq: since, createdAt: new Date().toISOString() };
    await g!.store.webhooks.create(hook);

    const r = await linkRecord(g!.store, { source: 'lms', type: 'org', key: 'o-1' }, S, await operator());
    expect(r).toMatchObject({ type: 'org', merged: M, into: S, records: 1, repointed: 2 });
    expect(await entity(M)).toBeUndefined();
    expect((await entity((await entityOf('lms', 'class', 'o-c1'))!))!.data).toMatchObject({ schoolId: S });
    expect((await entity((await entityOf('lms', 'person', 'o-p1'))!))!.data).toMatchObject({ orgIds: [S], primaryOrgId: S });
    // A school's decision names no person in the audit log.
    expect((await g!.store.auditEntries({})).filter((e) => e.kind === 'identity').map((e) => [e.operation, e.people])).toEqual([['identity link (org)', 0]]);

    const dispatcher = new WebhookDispatcher(g!.store, g!.privacy, new Map(), g!.config.webhooks, createLogger({ level: 'silent' }));
    await dispatcher.tick();
    await dispatcher.stop();
    const payloads = (await g!.store.webhooks.deliveries(hook.id, undefined, 1000)).map((d) => JSON.parse(d.payload));
    const gone = payloads.filter((p) => p.type === 'organization.deleted');
    expect(gone.map((p) => [p.data.record.id, p.data.mergedInto])).toEqual([[M, { __typename: 'Organization', id: S }]]);
    // Other events carry no mergedInto at all.
    expect(payloads.filter((p) => p.type !== 'organization.deleted').every((p) => !('mergedInto' in p.data))).toBe(true);
    expect(payloads.map((p) => p.type)).toEqual(expect.arrayContaining(['organization.updated', 'class.updated', 'person.updated']));
  });

  it('refuses what cannot be meant, naming the record, and changes nothing', async () => {
    await start();
    const [a, b] = students();
    await sync(source('lms', () => lmsRecords(a!, b!)));
    const A = (await entityOf('demo', 'person', a!.key))!;
    const school = (await entityOf('demo', 'org', g!.dataset.list('org').find((o) => o.data.type === 'school')!.key))!;
    const district = (await entityOf('demo', 'org', 'district'))!;
    const M = (await entityOf('lms', 'person', 'x1'))!;
    const head = await g!.store.headSeq();
    const op = await operator();
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['unknown record', () => linkRecord(g!.store, { source: 'lms', type: 'person', key: 'nobody' }, A, op), /source lms, record person nobody: the store has no such record/],
      ['unknown entity', () => linkRecord(g!.store, X1, 'per_missing', op), /there is no entity per_missing/],
      ['other type', () => linkRecord(g!.store, X1, school, op), /org_\S+ is not a person/],
      ['itself', () => linkRecord(g!.store, X1, M, op), /already part of/],
      ['school into district', () => linkRecord(g!.store, { source: 'lms', type: 'org', key: 'lms-school' }, district, op), /it is a school and org_\S+ a district/],
      ['not a person or org', () => linkRecord(g!.store, { source: 'lms', type: 'class', key: 'lms-c1' }, A, op), /only people and organisations/],
      ['only record', () => unlinkRecord(g!.store, X1, op), /only source record of per_\S+: there is nothing to split it from/],
    ];
    for (const [label, run, message] of cases) {
      const e = await run().then(() => undefined, (x: unknown) => x);
      expect(isRostergateError(e, 'IDENTITY_REFUSED'), label).toBe(true);
      expect((e as Error).message, label).toMatch(message);
      expect((e as Error).message, label).toMatch(/nothing was changed$/);
    }
    expect(await g!.store.headSeq()).toBe(head);
    expect((await g!.store.conflicts()).every((c) => c.resolvedAt === null)).toBe(true);
    expect((await g!.store.auditEntries({})).some((e) => e.kind === 'identity')).toBe(false);
  });
});

describe('a conflict found again is open again', () => {
  it.each(storeKinds())('on %s', async (kind) => {
    g = await privateGateway(DISTRICT, undefined, { store: kind });
    const ref: SourceRecordRef = { source: 's', type: 'person', key: 'k' };
    await g.store.transaction(async (tx) => {
      await tx.addConflict({ at: '2026-01-01T00:00:00.000Z', ...ref, reason: 'r', candidates: ['per_a'] });
      expect(await tx.resolveConflicts(ref, 'linked into per_a', '2026-01-02T00:00:00.000Z')).toBe(1);
      expect(await tx.resolveConflicts(ref, 'again', '2026-01-03T00:00:00.000Z')).toBe(0);
    });
    expect((await g.store.conflicts())[0]).toMatchObject({ resolvedAt: '2026-01-02T00:00:00.000Z', resolution: 'linked into per_a' });
    await g.store.transaction((tx) => tx.addConflict({ at: '2026-01-04T00:00:00.000Z', ...ref, reason: 'r', candidates: ['per_a', 'per_b'] }));
    expect((await g.store.conflicts())[0]).toMatchObject({ resolvedAt: null, resolution: null, candidates: ['per_a', 'per_b'] });
  });
});
