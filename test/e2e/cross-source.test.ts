/**
 * One person, and one school, across sources, end to end: the demo as `npm start` runs it (Clever,
 * OneRoster REST, OneRoster CSV, Graph and Classroom sandboxes, each serving its part of the
 * district), queried over HTTP through GraphQL, shows every person and every school once with every
 * source that delivered them; a later source whose SIS id and email disagree is kept apart and
 * reported by `rostergate identity conflicts`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { demoViews, startDemo, type Demo } from '../../src/demo/demo.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { sdsCsvDefinition } from '../../connectors/sds-csv/index.ts';
import type { SourceType } from '../../connectors/types.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import { testHttp } from '../support/connector-suite.ts';
import { openTestStore, storeKinds, tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const log = createLogger({ level: 'silent' });
const bin = CLI_BIN;

interface Node { id: string; sisId: string | null; email: string | null; roles: string[]; sources: { source: string; system: string; sourcedId: string }[] }

let demo: Demo;
let gw: RunningGateway;
const dir = tempDir();

async function people(): Promise<{ totalCount: number; nodes: Node[] }> {
  const key = demo.keys.find((k) => k.client === 'admin-demo')!.key;
  const r = await request(`${gw.url}/graphql`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query: '{ people(first: 1000) { totalCount edges { node { id sisId email roles sources { source system sourcedId } } } } }' }),
  });
  const body = (await r.body.json()) as { data?: { people: { totalCount: number; edges: { node: Node }[] } }; errors?: { message: string }[] };
  if (body.errors) throw new Error(body.errors[0]!.message);
  return { totalCount: body.data!.people.totalCount, nodes: body.data!.people.edges.map((e) => e.node) };
}

beforeAll(async () => {
  demo = await startDemo({ dataDir: join(dir, 'demo'), district: { students: 150, teachers: 9, classes: 15 }, log });
  gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, webhooks: false });
});
afterAll(async () => {
  await gw?.close();
  await demo?.close();
});

describe('one person across the four vendors', () => {
  it('GraphQL shows each person once, with every source that delivered them', async () => {
    expect(demo.summaries.map((s) => [s.source, s.status])).toEqual(demo.config.sources.map((s) => [s.id, 'complete']));
    const { totalCount, nodes } = await people();
    expect(totalCount).toBe(demo.dataset.list('person').length);
    const sisIds = nodes.map((n) => n.sisId).filter(Boolean);
    expect(new Set(sisIds).size).toBe(sisIds.length);
    expect(new Set(nodes.map((n) => n.email).filter(Boolean)).size).toBe(nodes.filter((n) => n.email).length);

    // Who each vendor's sandbox serves, from the demo's division of the district.
    const views = demoViews(demo.dataset);
    const idOf = (type: SourceType) => `demo-${type}`;
    const expected = new Map<string, Set<string>>();
    const expect_ = (personKey: string, type: SourceType) => {
      const sis = demo.dataset.get('person', personKey)!.data.sisId!;
      (expected.get(sis) ?? expected.set(sis, new Set()).get(sis)!).add(idOf(type));
    };
    for (const p of demo.dataset.list('person')) if (!p.data.roles.includes('guardian')) expect_(p.key, 'msgraph');
    for (const type of ['clever', 'oneroster', 'oneroster-csv', 'google-classroom'] as SourceType[]) {
      for (const e of views.get(type)!.list('enrollment')) expect_(e.data.personKey, type);
    }
    const classroom = views.get('google-classroom')!;
    for (const g of classroom.list('guardianship')) expect_(g.data.guardianKey, 'google-classroom');

    const systems: Record<string, string> = Object.fromEntries(demo.config.sources.map((s) => [s.id, s.type.toUpperCase().replace(/-/g, '_')]));
    let multi = 0;
    for (const n of nodes) {
      const got = n.sources.map((s) => s.source);
      expect(new Set(got).size, `${n.id} lists a source twice`).toBe(got.length);
      for (const s of n.sources) expect(s.system).toBe(systems[s.source]);
      const want = expected.get(n.sisId!) ?? new Set();
      for (const w of want) expect(got, `${n.id} from ${w}`).toContain(w);
      if (got.length >= 3) multi++;
    }
    expect(multi).toBeGreaterThan(20);
    // The teacher who teaches in two schools arrives through both schools' vendors and through Graph.
    const twoSchools = demo.dataset.list('person').find((p) => p.data.roles.includes('teacher') && (p.data.orgKeys ?? []).length > 1)!;
    expect(nodes.find((n) => n.sisId === twoSchools.data.sisId)!.sources.length).toBeGreaterThanOrEqual(3);
    expect(await demo.store.conflicts()).toEqual([]);
  });

  it('the analytics client sees one pseudonym per person, the same through every source\'s classes', async () => {
    const key = demo.keys.find((k) => k.client === 'analytics-demo')!.key;
    const ask = async (query: string) => {
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query }) });
      const body = (await r.body.json()) as { data?: any; errors?: { message: string }[] };
      if (body.errors) throw new Error(body.errors[0]!.message);
      return body.data;
    };
    const listed = (await ask('{ people(first: 1000) { edges { node { id sources { source } } } } }')).people.edges.map((e: any) => e.node);
    expect(listed).toHaveLength(demo.dataset.list('person').length);
    expect(new Set(listed.map((p: any) => p.id)).size).toBe(listed.length);
    const pseudonyms = new Set<string>(listed.map((p: any) => p.id));
    // Each source's classes (SIS sections, Classroom courses, Teams classes) name their students by
    // the one pseudonym of the person, whichever vendor delivered the class.
    const classes = (await ask('{ classes(first: 1000) { edges { node { sources { source } enrollments(first: 200) { edges { node { person { id } } } } } } } }')).classes.edges;
    const seenThrough = new Map<string, Set<string>>();
    for (const { node } of classes) {
      for (const { node: e } of node.enrollments.edges) {
        expect(pseudonyms).toContain(e.person.id);
        for (const s of node.sources) (seenThrough.get(e.person.id) ?? seenThrough.set(e.person.id, new Set()).get(e.person.id)!).add(s.source);
      }
    }
    const acrossVendors = [...seenThrough].filter(([, sources]) => sources.size >= 2);
    expect(acrossVendors.length).toBeGreaterThan(50);
    // A pseudonym seen through several vendors' classes is the person who holds every one of those sources.
    const admin = new Map((await people()).nodes.map((n) => [n.id, new Set(n.sources.map((s) => s.source))]));
    for (const [p, sources] of acrossVendors.slice(0, 40)) {
      const gatewayId = await demo.store.entityByPseudonym('analytics', p);
      for (const s of sources) expect(admin.get(gatewayId!), p).toContain(s);
    }
    expect(new Set(acrossVendors.flatMap(([, s]) => [...s]))).toEqual(new Set(['demo-clever', 'demo-oneroster', 'demo-oneroster-csv', 'demo-google-classroom', 'demo-msgraph']));
  });

  it('a later source whose SIS id and email point at different people is kept apart and reported', async () => {
    const [a, b, c] = demo.dataset.list('person').filter((p) => p.data.roles.includes('student'));
    // A School Data Sync upload where sourcedId is the SIS id: one row pairs a's SIS id with b's email.
    const drop = join(dir, 'sds');
    mkdirSync(drop, { recursive: true });
    const csv = (name: string, rows: string[][]) => writeFileSync(join(drop, name), rows.map((r) => r.join(',')).join('\r\n') + '\r\n');
    csv('orgs.csv', [['sourcedId', 'name', 'type', 'parentSourcedId'], ['sch-x', 'Summer School', 'school', '']]);
    csv('users.csv', [
      ['sourcedId', 'username', 'givenName', 'familyName', 'email'],
      [a!.data.sisId!, 'x1', 'Mixed', 'Record', b!.data.email!],
      [c!.data.sisId!, 'x2', c!.data.givenName, c!.data.familyName, c!.data.email!],
    ]);
    csv('roles.csv', [['userSourcedId', 'orgSourcedId', 'role'], [a!.data.sisId!, 'sch-x', 'student'], [c!.data.sisId!, 'sch-x', 'student']]);
    const cfg = sdsCsvDefinition.configSchema.parse({ id: 'summer-sds', type: 'sds-csv', path: drop, mode: 'strict' });
    const ingest = await demo.privacy.ingest(demo.store);
    const s = await syncSource(demo.store, sdsCsvDefinition.create(cfg, { http: testHttp('summer-sds'), log }), {
      ...ingest, precedence: [...demo.config.sources.map((x) => x.id), 'summer-sds'], matchRules: demo.config.identity.match,
    });
    expect(s.counters).toMatchObject({ linked: 1, conflicts: 1 });

    const { totalCount, nodes } = await people();
    expect(totalCount).toBe(demo.dataset.list('person').length + 1);
    expect(nodes.find((n) => n.sisId === c!.data.sisId)!.sources.map((x) => x.source)).toContain('summer-sds');
    for (const p of [a!, b!]) expect(nodes.find((n) => n.email === p.data.email && n.sisId === p.data.sisId)!.sources.map((x) => x.source)).not.toContain('summer-sds');

    const yaml = join(dir, 'rg.yaml');
    writeFileSync(yaml, `store: ${demo.config.store}\n`);
    const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, timeout: 60_000 });
    const text = run(['identity', 'conflicts', '--config', yaml]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`source summer-sds, person ${a!.data.sisId}: sisId and email point at different people; kept apart from per_\\S+, per_\\S+`));
    expect(text.stdout).not.toContain(b!.data.email!);
    const [conflict] = JSON.parse(run(['identity', 'conflicts', '--config', yaml, '--json']).stdout) as { candidates: string[] }[];
    const apart = nodes.filter((n) => n.sources.some((x) => x.source === 'summer-sds') && n.sisId === a!.data.sisId);
    expect(apart.map((n) => n.sources.length)).toEqual([1]);
    const ids = new Set(nodes.filter((n) => (n.sisId === a!.data.sisId || n.email === b!.data.email) && n !== apart[0]).map((n) => n.id));
    expect(ids.size).toBe(2);
    expect(new Set(conflict!.candidates)).toEqual(ids);
  });
});

interface OrgNode { id: string; name: string; type: string; identifier: string | null; sisId: string | null; stateId: string | null; sources: { source: string; system: string }[]; classes: { totalCount: number }; people: { totalCount: number } }

describe.each(storeKinds())('one school across the four vendors, on %s', (kind) => {
  let d: Demo;
  let g: RunningGateway;
  beforeAll(async () => {
    d = await startDemo({ dataDir: join(tempDir(), 'demo'), district: { students: 90, teachers: 6, classes: 9 }, log, store: await openTestStore(kind) });
    g = await serveStore(d.store, d.config, log, { port: 0, privacy: d.privacy, webhooks: false });
  });
  afterAll(async () => {
    await g?.close();
    await d?.close();
  });

  async function orgs(field: string): Promise<{ totalCount: number; nodes: OrgNode[] }> {
    const key = d.keys.find((k) => k.client === 'lms-demo')!.key;
    const query = `{ ${field}(first: 100) { totalCount edges { node { id name type identifier sisId stateId sources { source system } classes(first: 1) { totalCount } people(first: 1) { totalCount } } } } }`;
    const r = await request(`${g.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query }) });
    const body = (await r.body.json()) as { data?: Record<string, { totalCount: number; edges: { node: OrgNode }[] }>; errors?: { message: string }[] };
    if (body.errors) throw new Error(body.errors[0]!.message);
    return { totalCount: body.data![field]!.totalCount, nodes: body.data![field]!.edges.map((e) => e.node) };
  }

  it('GraphQL shows each real school once, with its own vendor and Graph; Classroom\'s placeholder stays a school of its own', async () => {
    expect(d.summaries.map((s) => [s.source, s.status, s.unresolved])).toEqual(d.config.sources.map((s) => [s.id, 'complete', 0]));
    const views = demoViews(d.dataset);
    const schools = d.dataset.list('org').filter((o) => o.data.type === 'school');
    // Who delivers each school, from the demo's division of the district (Classroom has no schools).
    const want = new Map(schools.map((o) => [o.data.identifier!, new Set<string>()]));
    for (const type of ['clever', 'oneroster', 'oneroster-csv', 'msgraph'] as SourceType[]) {
      for (const o of views.get(type)!.list('org')) if (o.data.type === 'school') want.get(o.data.identifier!)!.add(`demo-${type}`);
    }
    const { totalCount, nodes } = await orgs('schools');
    expect(totalCount).toBe(schools.length + 1);
    for (const o of schools) {
      const found = nodes.filter((n) => n.identifier === o.data.identifier);
      expect(found.map((n) => n.name), o.key).toEqual([o.data.name]);
      expect(found[0]!.sources.map((s) => s.source).sort(), o.key).toEqual([...want.get(o.data.identifier!)!].sort());
      expect(want.get(o.data.identifier!)!.size, o.key).toBe(2);
      // Graph knows the school only by its SIS id (externalId), the SIS vendor by its NCES id too:
      // the default rules link them. The state id comes from Clever, the only vendor that has one.
      expect(found[0]!.sisId, o.key).toBe(o.data.sisId);
      expect(found[0]!.stateId, o.key).toBe(want.get(o.data.identifier!)!.has('demo-clever') ? o.data.stateId : null);
      // Its SIS sections and its Teams classes, and everyone placed in it by either source.
      expect(found[0]!.classes.totalCount, o.key).toBe(d.dataset.list('class').filter((c) => c.data.schoolKey === o.key).length * 2);
      expect(found[0]!.people.totalCount, o.key).toBe(d.dataset.list('person').filter((p) => p.data.orgKeys?.includes(o.key)).length);
    }
    const placeholder = nodes.filter((n) => n.identifier === null);
    expect(placeholder.map((n) => [n.name, n.sources.map((s) => s.source)])).toEqual([['Google Classroom', ['demo-google-classroom']]]);
    // Every class of every source sits in one of these schools: none points at a duplicate.
    expect(nodes.reduce((n, x) => n + x.classes.totalCount, 0)).toBe((await d.store.counts()).class);

    // The district, delivered by the three SIS vendors, is one too; Graph's tenant (no identifier) stays apart.
    const districts = (await orgs('organizations')).nodes.filter((n) => n.type === 'DISTRICT');
    const district = d.dataset.list('org').find((o) => o.data.type === 'district')!;
    const real = districts.filter((n) => n.identifier === district.data.identifier);
    expect(real.map((n) => n.sources.map((s) => s.source).sort())).toEqual([['demo-clever', 'demo-oneroster', 'demo-oneroster-csv']]);
    expect(districts.filter((n) => n.identifier === null).map((n) => n.sources.map((s) => s.source))).toEqual([['demo-msgraph']]);
    expect(await d.store.conflicts()).toEqual([]);
  });
});
