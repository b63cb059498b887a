/**
 * Defective vendor data of our own making (every person, id and address here is made up), synced
 * through the real connectors into SQLite and PostgreSQL: each defect yields its report entry
 * naming source, resource, record (by source key) and field; the rest of the data lands; every
 * field of every record can be queried afterwards; and the next normal run after a failure
 * completes without --full.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oneRosterCsvDefinition } from '../../connectors/oneroster-csv/index.ts';
import { testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';
import { syncSource, type SyncSummary } from '../../src/sync/runner.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { queryEveryField } from '../support/every-field.ts';
import { FILES, MANIFEST, writeDrop } from '../support/defective-drop.ts';
import type { Store } from '../../src/store/types.ts';
import type { ReportEntry } from '../../src/sync/report.ts';
import { formatSummary } from '../../src/sync/progress.ts';
import { reportDocument } from '../../src/commands/sync.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, cleverId, cleverSandbox, CLEVER_SANDBOX_TOKEN } from '../../connectors/clever/index.ts';

const log = createLogger({ level: 'silent' });
const schema = buildUnifiedSchema();

const connector = (path: string) =>
  oneRosterCsvDefinition.create(oneRosterCsvDefinition.configSchema.parse({ id: 'or-csv', type: 'oneroster-csv', path, mode: 'tolerant' }), { http: testHttp('or-csv'), log });

const find = (s: SyncSummary, e: Partial<ReportEntry>) => s.report.entries.filter((x) => Object.entries(e).every(([k, v]) => (x as unknown as Record<string, unknown>)[k] === v));

describe.each(storeKinds())('defective OneRoster CSV data on %s', (kind) => {
  let store: Store;
  let summary: SyncSummary;
  beforeAll(async () => {
    store = await openTestStore(kind);
    summary = await syncSource(store, connector(writeDrop(FILES)));
  });
  afterAll(() => store?.close());

  it('completes, and the rest of the data lands', async () => {
    expect(summary.status).toBe('complete');
    const counts = await store.counts();
    expect(counts).toMatchObject({ org: 3, academicSession: 2, course: 1, class: 3, person: 4, enrollment: 4 });
  });

  it('invalid emails are left out with a warning naming source resource, record and field, never the value', () => {
    for (const key of ['usr-1', 'usr-2']) {
      expect(find(summary, { kind: 'dropped-value', resource: 'users.csv', record: `person ${key}`, field: 'email' })).toEqual([
        { kind: 'dropped-value', resource: 'users.csv', record: `person ${key}`, field: 'email', message: 'not a valid email address: left out' },
      ]);
    }
    const text = JSON.stringify(reportDocument([summary]));
    for (const personal of ['hauc', 'seth_', 'testc.', 'Testa', 'Onesie', 'Twosie']) expect(text).not.toContain(personal);
  });

  it('dateLastModified in the forms vendors send is repaired (UTC, midnight, day first when the day is over 12), an ambiguous one dropped', () => {
    expect(find(summary, { record: 'org org-s1', field: 'lastModified' })[0]).toMatchObject({ kind: 'repaired-value', resource: 'orgs.csv', message: 'repaired (read as UTC (no zone given))' });
    expect(find(summary, { record: 'org org-s2', field: 'lastModified' })[0]).toMatchObject({ kind: 'repaired-value', message: 'repaired (a date: midnight UTC)' });
    expect(find(summary, { record: 'academicSession term-1', field: 'lastModified' })[0]).toMatchObject({ kind: 'repaired-value' });
    expect(find(summary, { record: 'academicSession term-2', field: 'lastModified' })[0]).toMatchObject({
      kind: 'dropped-value', resource: 'academicSessions.csv', message: 'an ambiguous date (day and month could be either way round): left out',
    });
  });

  it('dangling references are reported by record and field: class → course and term, org → parent, user → school, enrollment → class', () => {
    const dangling = summary.report.entries.filter((e) => e.kind === 'dangling-reference').map((e) => `${e.record} ${e.field}`);
    expect(dangling).toEqual(expect.arrayContaining(['class cls-2 courseKey', 'class cls-2 termKeys', 'org org-s2 parentKey', 'person usr-4 orgKeys', 'enrollment enr-5 classKey']));
    expect(find(summary, { record: 'enrollment enr-5' })[0]!.message).toMatch(/held back/);
    expect(summary.unresolved).toBe(1);
    expect(formatSummary(summary)).toContain('1 records wait for references that never arrived: enrollment enr-5 (classKey)');
  });

  it('a blank required courseSourcedId and tobedeleted / inactive rows of a bulk file are reported; those rows are not stored', async () => {
    expect(find(summary, { kind: 'drop-defect', resource: 'classes.csv', field: undefined }).map((e) => e.message)).toContain(
      'classes.csv line 4, column courseSourcedId: required reference is blank (sourcedId cls-3)',
    );
    expect(summary.report.entries.map((e) => e.message)).toEqual(expect.arrayContaining([
      'classes.csv line 4, column courseSourcedId: required reference is blank (sourcedId cls-3)',
      'orgs.csv line 5, sourcedId org-s3: status tobedeleted in a bulk file: row skipped (a record absent from a bulk file is removed)',
      'orgs.csv line 6, sourcedId org-s4: status inactive in a bulk file: row skipped (a record absent from a bulk file is removed)',
    ]));
    expect(find(summary, { kind: 'skipped-row' })).toHaveLength(2);
    const names = (await queryEveryField(schema, store)).data.organizations!.edges.map((e) => e.node.name);
    expect(names.sort()).toEqual(['Test District', 'Test School One', 'Test School Two']);
  });

  it('the human summary counts by kind and points at the report file', () => {
    const text = formatSummary(summary, { reportFile: 'report.json' });
    expect(text).toMatch(/report: \d+ values repaired, 3 invalid values dropped, \d+ dangling references, 2 rows skipped, \d+ drop defects \(every entry in report\.json\)/);
  });

  it('every field of every record can be queried afterwards, email and sources { lastModified } included', async () => {
    const { data, errors } = await queryEveryField(schema, store);
    expect(errors.map((e) => e.message)).toEqual([]);
    const people = Object.fromEntries(data.people!.edges.map((e) => [(e.node.sources as { sourcedId: string }[])[0]!.sourcedId, e.node]));
    expect(people['usr-1']!.email).toBeNull();
    expect(people['usr-2']!.email).toBeNull();
    expect(people['usr-3']!.email).toBe('testc.threesie@example.org');
    const orgs = Object.fromEntries(data.organizations!.edges.map((e) => [(e.node.sources as { sourcedId: string }[])[0]!.sourcedId, e.node.sources as { lastModified: string | null }[]]));
    // The DateTime scalar serialises to a Date here (JSON makes it ISO text on the wire).
    expect(JSON.stringify(orgs['org-s1']![0]!.lastModified)).toBe('"2017-05-06T08:01:05.000Z"');
    expect(JSON.stringify(orgs['org-s2']![0]!.lastModified)).toBe('"2023-05-01T00:00:00.000Z"');
  });

  it('a row with the wrong number of fields fails with its line, expected and found; fixed, the next normal run completes and is not a resume', async () => {
    const broken = { ...FILES, 'users.csv': FILES['users.csv']!.replace('usr-3,,,true', 'usr-3,,,true,extra') };
    const failed = await syncSource(store, connector(writeDrop(broken)), { onFailure: 'return' });
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('source or-csv, resource users.csv, record line 4: the row has a different number of fields than the header: expected 18, found 19');
    const fixed = { ...FILES, 'courses.csv': FILES['courses.csv']!.replace('Test Course', 'Test Course Renamed') };
    const next = await syncSource(store, connector(writeDrop(fixed)));
    expect([next.status, next.mode]).toEqual(['complete', 'incremental']);
    expect((await queryEveryField(schema, store)).errors).toEqual([]);
  });

  it('a manifest error names the manifest line and what was expected', async () => {
    const failed = await syncSource(store, connector(writeDrop(FILES, MANIFEST('1.0'))), { onFailure: 'return' });
    expect(failed.error).toBe('source or-csv, resource manifest.csv, record line 3, column value: oneroster.version must be 1.1 or 1.2 (expected 1.1 or 1.2, found another value)');
    const next = await syncSource(store, connector(writeDrop(FILES)));
    expect([next.status, next.mode]).toEqual(['complete', 'incremental']);
  });
});

describe.each(storeKinds())('defective Clever data on %s', (kind) => {
  let store: Store;
  let sandbox: RunningSandbox;
  let dataset: RosterDataset;
  afterAll(async () => {
    await sandbox?.close();
    await store?.close();
  });

  it('emails Clever really delivers broken are left out with a warning; every field queries; the next run completes', async () => {
    dataset = RosterDataset.generate({ students: 30, teachers: 3, classes: 4, schools: 1 });
    const [a, b] = dataset.list('person').filter((p) => p.data.roles.includes('student'));
    dataset.upsert('person', a!.key, { email: 'hauc"k.testa@example.com' });
    dataset.upsert('person', b!.key, { email: 'seth_testb.example.org' });
    sandbox = await startSandboxServer({ dataset, apps: [cleverSandbox()] });
    const make = () =>
      cleverDefinition.create(
        cleverDefinition.configSchema.parse({ id: 'clever-bad', type: 'clever', baseUrl: sandbox.urlOf('/clever'), token: CLEVER_SANDBOX_TOKEN, pageSize: 50 }),
        { http: testHttp('clever-bad'), log },
      );
    store = await openTestStore(kind);
    const s = await syncSource(store, make());
    expect(s.status).toBe('complete');
    const dropped = s.report.entries.filter((e) => e.kind === 'dropped-value');
    expect(dropped).toEqual(
      expect.arrayContaining([
        { kind: 'dropped-value', resource: 'users', record: `person ${cleverId('person', a!.key)}`, field: 'email', message: 'not a valid email address: left out' },
        { kind: 'dropped-value', resource: 'users', record: `person ${cleverId('person', b!.key)}`, field: 'email', message: 'not a valid email address: left out' },
      ]),
    );
    expect((await store.counts()).person).toBe(dataset.list('person').length);
    expect((await queryEveryField(schema, store)).errors).toEqual([]);
    const again = await syncSource(store, make());
    expect(again.status).toBe('complete');
    expect((await queryEveryField(schema, store)).errors).toEqual([]);
  });
});
