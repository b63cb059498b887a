/**
 * Extracts over HTTP and the CLI: through the purpose view (agreeing with GraphQL), streamed,
 * checked for k-anonymity with a report, audited, and refusing bad requests clearly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parse as parseCsv } from 'csv-parse/sync';
import { demoPrivacyConfig, privateGateway, TEST_MASTER_KEY, type PrivateGateway } from '../support/privacy.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { tempDir } from '../support/stores.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { humanSummary, runExtract } from '../../src/extract/extract.ts';
import { Writable } from 'node:stream';
import type { Store } from '../../src/store/types.ts';
import { generalise, type Value } from '../../src/extract/kanonymity.ts';
import { extractProgress } from '../../src/extract/progress.ts';
import { fakeTerminal } from '../support/terminal.ts';
import { cell, columnsFor, DATASETS, type Dataset } from '../../src/extract/columns.ts';
import { getNamedType, GraphQLBoolean, type GraphQLObjectType } from 'graphql';
import { CLI_BIN } from '../support/cli-bin.ts';

let g: PrivateGateway;
beforeAll(async () => {
  g = await privateGateway({}); // the default demo district: 1,500 students
  g.dataset.upsert('class', g.dataset.list('class')[0]!.key, { title: '=HYPERLINK("http://evil.example")' });
  await g.resync();
});
afterAll(() => g?.close());

async function extract(client: string, path: string) {
  const r = await request(`${g.gw.url}${path}`, { headers: { 'x-api-key': g.keys[client] ?? client } });
  const body = await r.body.text();
  return { status: r.statusCode, body, report: r.trailers['x-rostergate-extract-report'] ? JSON.parse(r.trailers['x-rostergate-extract-report'] as string) : undefined };
}

describe('extracts', () => {
  it('an analytics extract of the demo district passes k-anonymity (k=5) and says how', async () => {
    const r = await extract('analytics-demo', '/extracts/people.ndjson');
    expect(r.status).toBe(200);
    const rows = r.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(r.report.kAnonymity).toMatchObject({ applicable: true, k: 5 });
    expect(r.report.kAnonymity.kReached).toBeGreaterThanOrEqual(5);
    expect(r.report.kAnonymity.quasiIdentifiers).toEqual(expect.arrayContaining(['gradeBand', 'demographics.birthYear', 'demographics.ageBand']));
    expect(r.report.written).toBe(rows.length);
    expect(r.report.rows).toBe(g.dataset.list('person').length);
    expect(r.report.written + r.report.suppressed).toBe(r.report.rows);
    // No column the purpose may not see; people as pseudonyms.
    expect(Object.keys(rows[0])).not.toEqual(expect.arrayContaining(['givenName']));
    for (const row of rows.slice(0, 50)) expect(row.id).toMatch(/^p1_/);
    // Groups really are ≥ k over the quasi-identifiers.
    const groups = new Map<string, number>();
    for (const row of rows) {
      const key = JSON.stringify(r.report.kAnonymity.quasiIdentifiers.map((c: string) => row[c]));
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    expect(Math.min(...groups.values())).toBeGreaterThanOrEqual(5);
  });

  /** Every node of a root list, paged through GraphQL as the same client. */
  async function all(client: string, root: string, fields: string) {
    const out: any[] = [];
    let after: string | null = null;
    for (;;) {
      const r: any = await g.gql(client, `query($after: Cursor) { ${root}(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${fields} } } } }`, { after });
      expect(r.body.errors).toBeUndefined();
      out.push(...r.body.data[root].edges.map((e: any) => e.node));
      if (!r.body.data[root].pageInfo.hasNextPage) return out;
      after = r.body.data[root].pageInfo.endCursor;
    }
  }

  it('extract and GraphQL agree value for value (enrollments: every row)', async () => {
    const r = await extract('analytics-demo', '/extracts/enrollments.csv');
    expect(r.report.kAnonymity.quasiIdentifiers).toEqual([]);
    const rows = parseCsv(r.body, { columns: true }) as Record<string, string>[];
    // No school column: analytics may not join a person to a school (docs/privacy.md, "Relations are quasi-identifiers too").
    expect(Object.keys(rows[0]!)).not.toContain('school.id');
    const fromCsv = rows.map((x) => `${x['class.id']}|${x['person.id']}|${x.role}|${x.beginDate}|${x.endDate}`).sort();
    const gq = await all('analytics-demo', 'enrollments', 'role beginDate endDate class { id } person { id }');
    const fromGql = gq.map((n) => `${n.class.id}|${n.person.id}|${n.role}|${n.beginDate ?? ''}|${n.endDate ?? ''}`).sort();
    expect(fromCsv.length).toBe(g.dataset.list('enrollment').length);
    expect(fromCsv).toEqual(fromGql);
  });

  it('extract and GraphQL agree value for value (people: as is, or generalised one step as the report says)', async () => {
    const r = await extract('analytics-demo', '/extracts/people.ndjson');
    const rows = r.body.trim().split('\n').map((l) => JSON.parse(l));
    const gq = new Map((await all('analytics-demo', 'people', 'id roles gradeBand enabled demographics { birthYear ageBand }')).map((n) => [n.id, n]));
    expect(gq.size).toBe(r.report.written + r.report.suppressed);
    const levels: Record<string, number> = r.report.kAnonymity.generalised;
    for (const row of rows) {
      const n = gq.get(row.id)!;
      expect(n, row.id).toBeDefined();
      const exact: Record<string, unknown> = {
        id: n.id, roles: n.roles.join(';'), gradeBand: n.gradeBand, enabled: n.enabled,
        'demographics.birthYear': n.demographics?.birthYear ?? null, 'demographics.ageBand': n.demographics?.ageBand ?? null,
      };
      for (const [col, v] of Object.entries(exact)) {
        if (!levels[col]) expect(row[col], `${row.id} ${col}`).toEqual(v);
        else expect(row[col], `${row.id} ${col}`).toEqual(generalise([v as Value], [col], levels)[0]);
      }
    }
  });

  it('an extract carrying direct identifiers says the check does not apply, and why, rather than claim a k', async () => {
    const r = await extract('admin-demo', '/extracts/people.csv');
    expect(r.status).toBe(200);
    expect(r.report.kAnonymity).toMatchObject({ applicable: false, kReached: null, generalised: {} });
    expect(r.report.kAnonymity.reason).toMatch(/^the extract carries direct identifiers \(.*givenName.*\), so grouping cannot protect anyone$/);
    expect(r.report).toMatchObject({ suppressed: 0, written: g.dataset.list('person').length });
    expect(humanSummary(r.report)).toMatch(/k-anonymity: not applicable — the extract carries direct identifiers/);
  });

  it('k can be raised per extract, never lowered below the purpose’s', async () => {
    const low = await extract('analytics-demo', '/extracts/people.csv?k=2');
    expect(low.status).toBe(400);
    expect(JSON.parse(low.body).error).toMatch(/k must be a whole number ≥ 5, the k of purpose analytics: an extract may raise k, never lower it/);
    const high = await extract('analytics-demo', '/extracts/people.csv?k=12');
    expect(high.status).toBe(200);
    expect(high.report.kAnonymity).toMatchObject({ k: 12 });
    expect(high.report.kAnonymity.kReached).toBeGreaterThanOrEqual(12);
  });

  it('every dataset extracts for analytics, with as many rows as GraphQL lists', async () => {
    const roots: Record<string, string> = { classes: 'classes', schools: 'schools', organizations: 'organizations', courses: 'courses', sessions: 'academicSessions', guardianships: 'guardianships' };
    for (const [dataset, root] of Object.entries(roots)) {
      const r = await extract('analytics-demo', `/extracts/${dataset}.ndjson`);
      expect(r.status, dataset).toBe(200);
      const lines = r.body.trim() ? r.body.trim().split('\n') : [];
      expect(lines.length, dataset).toBe(r.report.written);
      expect(r.report.written + r.report.suppressed, dataset).toBe((await all('analytics-demo', root, '__typename')).length);
    }
  });

  it('CSV writes booleans as true/false, equal to GraphQL for every boolean column of every dataset (null stays empty)', async () => {
    const purpose = g.privacy.clientPurpose('admin-demo')!.id;
    const schema = g.privacy.schemas.get(purpose)!.schema;
    const seen = new Set<string>();
    let checked = 0;
    for (const dataset of Object.keys(DATASETS) as Dataset[]) {
      const { columns, selection } = columnsFor(schema, dataset);
      const booleans = columns.filter((c) => {
        const [type, field] = c.coordinate.split('.');
        const f = (schema.getType(type!) as GraphQLObjectType).getFields()[field!]!;
        return getNamedType(f.type) === GraphQLBoolean && c.path.at(-1) === field;
      });
      if (!booleans.length) continue;
      const r = await extract('admin-demo', `/extracts/${dataset}.csv`);
      expect(r.status, dataset).toBe(200);
      const rows = new Map((parseCsv(r.body, { columns: true }) as Record<string, string>[]).map((x) => [x.id, x]));
      const nodes = await all('admin-demo', DATASETS[dataset].root, selection);
      expect(rows.size, dataset).toBe(nodes.length);
      for (const node of nodes) {
        for (const c of booleans) {
          const v = cell(node, c);
          const csv = rows.get(node.id)![c.name];
          expect(csv, `${dataset} ${c.name}`).toBe(v === null ? '' : String(v));
          seen.add(csv!);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
    for (const v of seen) expect(['true', 'false', '']).toContain(v);
    expect(seen.has('true') && seen.has('false')).toBe(true);
  });

  it('shows a bar per pass at a terminal, filled to the rows read', async () => {
    const term = fakeTerminal();
    const progress = extractProgress('people', await g.store.counts(), term.stream);
    const rows: string[] = [];
    const out = new Writable({ write: (c, _e, cb) => (rows.push(String(c)), cb()) });
    const report = await runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'people', format: 'ndjson', out, pageSize: 500, onProgress: progress.onProgress });
    progress.stop();
    const people = (await g.store.counts()).person;
    expect(report.rows).toBe(people);
    expect(term.text()).toContain(`k-anonymity check`);
    expect(term.text()).toContain(`writing`);
    expect(term.text()).toContain(`${people}/${people} rows`);
    // Not a terminal: nothing drawn.
    const quiet = extractProgress('people', await g.store.counts(), { isTTY: false } as NodeJS.WriteStream);
    expect(quiet.onProgress).toBeUndefined();
  });

  it('protects CSV cells against formula injection', async () => {
    // Class titles are free text (DIRECT): the admin purpose's extract carries them.
    const r = await extract('admin-demo', '/extracts/classes.csv');
    expect(r.status, r.body).toBe(200);
    expect(r.body).toContain(`"'=HYPERLINK(""http://evil.example"")"`);
    expect(r.body).not.toMatch(/(^|,)=HYPERLINK/m);
  });

  it('refuses clients without extract rights, unknown datasets and formats, and missing keys', async () => {
    expect((await extract('lms-demo', '/extracts/people.csv')).status).toBe(403);
    expect(JSON.parse((await extract('analytics-demo', '/extracts/shoes.csv')).body).error).toMatch(/unknown dataset "shoes"/);
    expect(JSON.parse((await extract('analytics-demo', '/extracts/people.xlsx')).body).error).toMatch(/unknown format "xlsx"/);
    expect((await extract('nobody', '/extracts/people.csv')).status).toBe(401);
  });

  it('an extract whose reader goes away midway stops, and is still audited as incomplete', async () => {
    const before = (await g.store.auditEntries({})).length;
    // A socket that closes after the first chunk, as when an HTTP client hangs up.
    let chunks = 0;
    const out = new Writable({
      write(_chunk, _enc, cb) {
        chunks++;
        cb();
        this.destroy();
      },
    });
    await expect(runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'enrollments', format: 'ndjson', out, pageSize: 200 }))
      .rejects.toThrow(/premature close/i);
    expect(chunks).toBe(1);
    const e = (await g.store.auditEntries({})).slice(before);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ client: 'analytics-demo', kind: 'extract', operation: 'extract:enrollments:ndjson:incomplete' });
    expect(e[0]!.people).toBeGreaterThan(0);
    expect(e[0]!.people).toBeLessThan(g.dataset.list('person').length);
  });

  it('records itself in the audit log and the disclosure ledger', async () => {
    const before = (await g.store.auditEntries({})).length;
    // A k high enough that some groups are suppressed.
    const r = await extract('analytics-demo', '/extracts/people.csv?k=40');
    const e = (await g.store.auditEntries({})).slice(before);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ client: 'analytics-demo', kind: 'extract', operation: 'extract:people:csv' });
    expect(e[0]!.people).toBeGreaterThan(1000);
    // People suppressed by the k-anonymity check were not sent: one person per row written.
    expect(r.report.suppressed).toBeGreaterThan(0);
    expect(e[0]!.people).toBe(r.report.written);
    const someone = (await g.store.list({ type: 'person', first: 1 })).rows[0]!;
    expect((await g.store.disclosuresOf(someone.id)).map((d) => d.client)).toContain('analytics-demo');
  });

  it('an extract repeated within the ledger’s hour is audited again but writes no ledger rows again, over HTTP or run directly', async () => {
    // The ledger keeps last_at to the hour (src/privacy/audit.ts): the people an extract disclosed
    // need no second write when disclosed again within it. That holds only if every extract writes
    // through the one audit log of the store (Privacy.auditLog); a log made per extract rewrote the
    // ledger row of every person each time (at 50,000 students on PostgreSQL, a third of a people extract).
    const ledger: string[][] = [];
    const s = g.store as unknown as { transaction: Store['transaction'] };
    const transaction = s.transaction;
    s.transaction = function (this: Store, fn) {
      return transaction.call(this, (tx) => fn(new Proxy(tx, {
        get(t, p) {
          if (p === 'recordDisclosures') return (client: string, ids: string[], at: string) => (ledger.push(ids), t.recordDisclosures(client, ids, at));
          const v = (t as unknown as Record<string | symbol, unknown>)[p];
          return typeof v === 'function' ? v.bind(t) : v;
        },
      })));
    } as Store['transaction'];
    try {
      const before = (await g.store.auditEntries({})).length;
      const first = await extract('analytics-demo', '/extracts/people.csv');
      expect(first.status).toBe(200);
      ledger.length = 0;
      const again = await extract('analytics-demo', '/extracts/people.csv');
      expect(again.status).toBe(200);
      const out = new Writable({ write: (_c, _e, done) => done() });
      const direct = await runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'people', format: 'csv', out });
      expect(ledger.flat()).toEqual([]);
      // Each is still audited, with the people it sent.
      const e = (await g.store.auditEntries({})).slice(before);
      expect(e.map((x) => x.operation)).toEqual(['extract:people:csv', 'extract:people:csv', 'extract:people:csv']);
      expect(e.map((x) => x.people)).toEqual([first.report.written, again.report.written, direct.written]);
    } finally {
      s.transaction = transaction;
    }
  });

  // It changes the district: the tests that count rows run before it.
  it('writes what it counted: a sync that shrinks a group to k - 1 during the writing pass changes nothing written', async () => {
    const first = await extract('analytics-demo', '/extracts/people.ndjson');
    const qi: string[] = first.report.kAnonymity.quasiIdentifiers;
    const groupsOf = (body: string) => {
      const groups = new Map<string, string[]>();
      for (const row of body.trim().split('\n').map((l) => JSON.parse(l))) {
        const key = JSON.stringify(qi.map((c) => row[c]));
        groups.set(key, [...(groups.get(key) ?? []), row.id]);
      }
      return groups;
    };
    // The smallest group; remove just enough of it, from the last pages, to leave k - 1.
    const members = [...groupsOf(first.body).values()].sort((a, b) => a.length - b.length)[0]!;
    const ids = (await Promise.all(members.map((p) => g.store.entityByPseudonym('analytics', p)))).map((x) => x!).sort();
    const leaving = ids.slice(-(members.length - 5 + 1));
    const keys = [...(await g.store.sourcesOf(leaving)).values()].map((s) => s[0]!.key);
    let sabotaged = false;
    const chunks: string[] = [];
    const out = new Writable({
      // The first write is the writing pass's first page, after the check pass read the store: the sync lands right after it.
      async write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        if (!sabotaged) {
          sabotaged = true;
          for (const k of keys) g.dataset.remove('person', k);
          await g.resync();
        }
        cb();
      },
      highWaterMark: 1,
    });
    const report = await runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'people', format: 'ndjson', out, pageSize: 50 });
    expect(sabotaged).toBe(true);
    // Before the sync, in full: the people it removed included, their group as large as it was counted.
    expect(report.written).toBe(first.report.written);
    const written = groupsOf(chunks.join(''));
    expect(written).toEqual(groupsOf(first.body));
    expect(Math.min(...[...written.values()].map((m) => m.length))).toBeGreaterThanOrEqual(5);
    expect(report.kAnonymity.kReached).toBeGreaterThanOrEqual(5);
    // The next extract reads the district after the sync, and generalises or suppresses that group.
    const after = await extract('analytics-demo', '/extracts/people.ndjson');
    expect(after.report.written).toBeLessThan(first.report.written);
    expect(Math.min(...[...groupsOf(after.body).values()].map((m) => m.length))).toBeGreaterThanOrEqual(5);
  });

  // In-process and seconds long: placed before the CLI test, not before a test that reuses an HTTP
  // connection left idle meanwhile (the gateway closes idle connections after 5 s).
  it('follows the purpose’s k-anonymity policy: its k, and onViolation: suppress leaves values exact', async () => {
    const purposes = { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, kAnonymity: { k: 10, onViolation: 'suppress' } } };
    const strict = setupPrivacy(demoPrivacyConfig(g.config.store, { purposes }), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const chunks: string[] = [];
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    const report = await runExtract({ store: g.store, privacy: strict, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'people', format: 'ndjson', out });
    const rows = chunks.join('').trim().split('\n').map((l) => JSON.parse(l));
    expect(report.kAnonymity).toMatchObject({ applicable: true, k: 10, generalised: {} });
    expect(report.kAnonymity.kReached).toBeGreaterThanOrEqual(10);
    expect(report.suppressed).toBeGreaterThan(0);
    expect(rows).toHaveLength(report.written);
    const qi: string[] = report.kAnonymity.quasiIdentifiers;
    const groups = new Map<string, number>();
    for (const row of rows) groups.set(JSON.stringify(qi.map((c) => row[c])), (groups.get(JSON.stringify(qi.map((c) => row[c]))) ?? 0) + 1);
    expect(Math.min(...groups.values())).toBeGreaterThanOrEqual(10);
    // Nothing generalised: birth years are years, not spans.
    expect(rows.every((r) => r['demographics.birthYear'] === null || Number.isInteger(r['demographics.birthYear']))).toBe(true);
    // Generalising (the default) with no suppression allowed: columns go coarser, fewer rows go.
    const kAnonymity = { k: 10, maxSuppressShare: 0 };
    const generalising = setupPrivacy(demoPrivacyConfig(g.config.store, { purposes: { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, kAnonymity } } }), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const g2 = await runExtract({ store: g.store, privacy: generalising, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'people', format: 'ndjson', out: new Writable({ write: (_c, _e, cb) => cb() }) });
    expect(g2.kAnonymity.kReached).toBeGreaterThanOrEqual(10);
    expect(Object.keys(g2.kAnonymity.generalised).length).toBeGreaterThan(0);
    expect(g2.suppressed).toBeLessThan(report.suppressed);
    expect(humanSummary(g2)).toMatch(/^generalised: .*\(level \d\)/m);
  });

  // Each run starts a Node process: several of them on a shared machine take a while.
  it('the CLI writes the file and its report, and refuses to overwrite without --force', { timeout: 180_000 }, () => {
    const dir = tempDir();
    const cfg = join(dir, 'rg.yaml');
    writeFileSync(cfg, stringify({ store: g.config.store, privacy: { tenant: 'test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS }));
    const out = join(dir, 'people.csv');
    const bin = CLI_BIN;
    const env = { ...process.env, ROSTERGATE_MASTER_KEY: TEST_MASTER_KEY.toString('base64url'), ROSTERGATE_LOG_LEVEL: 'silent' };
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'extract', '--config', cfg, ...args], { encoding: 'utf8', env, timeout: 60_000 });
    const ok = run('--client', 'analytics-demo', '--dataset', 'people', '--out', out);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/k-anonymity: k=5 required, \d+ reached/);
    expect(readFileSync(out, 'utf8').split('\n')[0]).toMatch(/^id,/);
    expect(JSON.parse(readFileSync(`${out}.report.json`, 'utf8')).kAnonymity.kReached).toBeGreaterThanOrEqual(5);
    const again = run('--client', 'analytics-demo', '--dataset', 'people', '--out', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/exists: refusing to overwrite \(pass --force\)/);
    // The report beside it is not overwritten either.
    const other = join(dir, 'other.csv');
    writeFileSync(`${other}.report.json`, '{}');
    const reportThere = run('--client', 'analytics-demo', '--dataset', 'people', '--out', other);
    expect(reportThere.status).toBe(2);
    expect(reportThere.stderr).toMatch(/other\.csv\.report\.json exists: refusing to overwrite/);
    expect(existsSync(other)).toBe(false);
    const lowK = run('--client', 'analytics-demo', '--dataset', 'people', '--k', '3', '--out', join(dir, 'low.csv'));
    expect(lowK.status).toBe(2);
    expect(lowK.stderr).toMatch(/an extract may raise k, never lower it/);
    expect(run('--client', 'analytics-demo', '--dataset', 'people', '--out', out, '--force').status).toBe(0);
    expect(run('--client', 'lms-demo', '--dataset', 'people', '--out', join(dir, 'x.csv')).stderr).toMatch(/no extract rights/);
    const nobody = run('--client', 'nobody', '--dataset', 'people', '--out', join(dir, 'n.csv'));
    expect(nobody.status).toBe(2);
    expect(nobody.stderr).toMatch(/no client "nobody" in the config/);
    expect(existsSync(join(dir, 'n.csv'))).toBe(false);
    expect(existsSync(join(dir, 'x.csv.partial'))).toBe(false);
    expect(run('--client', 'analytics-demo', '--dataset', 'people', '--format', 'xml', '--out', join(dir, 'y')).stderr).toMatch(/unknown format "xml"/);
    const shoes = run('--client', 'analytics-demo', '--dataset', 'shoes', '--out', join(dir, 'z'));
    expect(shoes.status).toBe(2);
    expect(shoes.stderr).toMatch(/unknown dataset "shoes" \(datasets: people, enrollments, classes/);
  });

});
