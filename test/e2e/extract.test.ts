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
import { privateGateway, TEST_MASTER_KEY, type PrivateGateway } from '../support/privacy.ts';
import { tempDir } from '../support/stores.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';

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

  it('extract and GraphQL agree value for value where nothing was generalised', async () => {
    const r = await extract('analytics-demo', '/extracts/enrollments.csv?k=2');
    const rows = parseCsv(r.body, { columns: true }) as Record<string, string>[];
    const gq = await g.gql('analytics-demo', `{ enrollments(first: 1000) { edges { node { role beginDate class { id } person { id } } } } }`);
    const fromGql = new Set(gq.body.data.enrollments.edges.map((e: any) => `${e.node.class.id}|${e.node.person.id}|${e.node.role}|${e.node.beginDate}`));
    expect(r.report.kAnonymity.quasiIdentifiers).toEqual([]);
    const fromCsv = rows.map((x) => `${x['class.id']}|${x['person.id']}|${x.role}|${x.beginDate}`);
    expect(fromCsv.length).toBe(g.dataset.list('enrollment').length);
    const overlap = fromCsv.filter((x) => fromGql.has(x));
    expect(overlap.length).toBe(fromGql.size);
  });

  it('protects CSV cells against formula injection', async () => {
    const r = await extract('analytics-demo', '/extracts/classes.csv');
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

  it('records itself in the audit log and the disclosure ledger', async () => {
    const before = (await g.store.auditEntries({})).length;
    await extract('analytics-demo', '/extracts/people.csv');
    const e = (await g.store.auditEntries({})).slice(before);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ client: 'analytics-demo', kind: 'extract', operation: 'extract:people:csv' });
    expect(e[0]!.people).toBeGreaterThan(1000);
    const someone = (await g.store.list({ type: 'person', first: 1 })).rows[0]!;
    expect((await g.store.disclosuresOf(someone.id)).map((d) => d.client)).toContain('analytics-demo');
  });

  it('the CLI writes the file and its report, and refuses to overwrite without --force', () => {
    const dir = tempDir();
    const cfg = join(dir, 'rg.yaml');
    writeFileSync(cfg, stringify({ store: g.config.store, privacy: { tenant: 'test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS }));
    const out = join(dir, 'people.csv');
    const bin = join(import.meta.dirname, '../../bin/rostergate.mjs');
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
    expect(run('--client', 'analytics-demo', '--dataset', 'people', '--out', out, '--force').status).toBe(0);
    expect(run('--client', 'lms-demo', '--dataset', 'people', '--out', join(dir, 'x.csv')).stderr).toMatch(/no extract rights/);
    expect(existsSync(join(dir, 'x.csv.partial'))).toBe(false);
    expect(run('--client', 'analytics-demo', '--dataset', 'people', '--format', 'xml', '--out', join(dir, 'y')).stderr).toMatch(/unknown format "xml"/);
  });
});
