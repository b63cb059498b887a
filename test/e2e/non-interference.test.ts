/**
 * Non-interference: the guarantee that a purpose learns nothing it is denied, tested as such rather
 * than field by field. For each demo purpose, two stores are built that differ only in what that
 * purpose may not see — direct fields, identifiers, special categories, a person's school, exact
 * values whose generalisation stays the same, free text, and the time at which those changed — and
 * everything the purpose's schema offers is read from both: every root list fully paged with every
 * field two levels deep, the same lists filtered by `updatedSince`, `person`/`node` by every id
 * seen, the change feed, webhook payloads and every extract. The answers must be byte-identical.
 *
 * Both stores are synced from the same generated district at the same (fixed) instants, with
 * gateway ids drawn from the same deterministic sequence, so that everything a purpose may see is
 * equal by construction; only the denied values (and the source's stamps of changing them) differ.
 * Sealed cursors carry a random nonce, so they are compared by what they lead to (paging), not by
 * their text. A control shows the comparison is not blind: one visible change does make a difference.
 */
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { getNamedType, isLeafType, isObjectType, isUnionType, type GraphQLField, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS } from '../../src/demo/demo-policy.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import { serveStore } from '../../src/runtime.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';
import { runExtract, FORMATS } from '../../src/extract/extract.ts';
import { DATASETS, type Dataset } from '../../src/extract/columns.ts';
import type { Store } from '../../src/store/types.ts';
import type { Config } from '../../src/config/config.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { openTestStore, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';

// Gateway ids are random in production; here both stores draw them from one replayable sequence.
const ids = vi.hoisted(() => ({ n: 0 }));
vi.mock('../../src/sync/ids.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/sync/ids.ts')>();
  return {
    ...orig,
    newEntityId: (type: Parameters<typeof orig.newEntityId>[0]) =>
      `${orig.ID_PREFIX[type]}_${createHash('sha256').update(`id-${ids.n++}`).digest().subarray(0, 16).toString('base64url')}`,
  };
});

const DISTRICT = { students: 36, teachers: 4, classes: 6, schools: 2, seed: 11 };
const T0 = new Date('2026-03-02T08:00:00.000Z'); // first sync
const T1 = new Date('2026-03-09T08:00:00.000Z'); // second sync: the hidden change, in one store only
const T2 = new Date('2026-03-16T08:00:00.000Z'); // reading
const PURPOSE_CLIENT = Object.fromEntries(DEMO_CLIENTS.map((c) => [c.purpose, c.id]));

/** Another value of the same kind, so a change is a change and nothing else. */
const other = (v: unknown, tag: string): unknown => {
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'number') return v + 1;
  if (Array.isArray(v)) return v.length ? [...v].reverse().concat(`${tag}`) : [tag];
  return `${tag}-${String(v ?? '')}`.replace(/[^A-Za-z0-9-]/g, '');
};

/**
 * Changes, in the dataset, values the purpose does not receive (its `received` set, which every
 * surface is derived from). Generalised forms it does receive are kept: a birth date moves within
 * its year, a grade within its band, a postal code keeps its area. Returns what it changed.
 */
function hideChanges(ds: RosterDataset, received: ReadonlySet<string>): string[] {
  const changed: string[] = [];
  const hidden = (coord: string) => !received.has(coord);
  const schools = ds.list('org').filter((o) => o.data.type === 'school').map((o) => o.key);
  const students = ds.list('person').filter((p) => p.data.roles.includes('student')).slice(0, 4);
  const staff = ds.list('person').filter((p) => !p.data.roles.includes('student')).slice(0, 2);
  for (const [i, p] of [...students, ...staff].entries()) {
    const patch: Record<string, unknown> = {};
    for (const f of ['givenName', 'familyName', 'middleName', 'preferredGivenName', 'username', 'phone', 'sms', 'photoUrl', 'sisId', 'stateId', 'studentNumber', 'teacherNumber', 'graduationYear', 'title'] as const) {
      if (hidden(`Person.${f}`)) patch[f] = other(p.data[f], `h${i}`);
    }
    if (hidden('Person.email')) patch.email = `hidden.change${i}@example.org`;
    if (hidden('Person.grades') && p.data.grades?.length) {
      const sameBand: Record<string, string> = { '09': '10', '10': '11', '11': '12', '12': '09', '06': '07', '07': '08', '08': '06', '03': '04', '04': '05', '05': '03', KG: '01', '01': '02', '02': 'KG' };
      patch.grades = received.has('Person.gradeBand') ? p.data.grades.map((g) => sameBand[g] ?? g) : ['05'];
    }
    if (hidden('Person.organizations') && hidden('Person.primaryOrganization') && p.data.primaryOrgKey) {
      const moved = schools.find((s) => s !== p.data.primaryOrgKey)!;
      patch.orgKeys = (p.data.orgKeys ?? []).map((k) => (k === p.data.primaryOrgKey ? moved : k));
      patch.primaryOrgKey = moved;
    }
    if (Object.keys(patch).length) (ds.upsert('person', p.key, patch), changed.push(...Object.keys(patch).map((f) => `Person.${f}`)));
    const d = ds.list('demographics').find((x) => x.data.personKey === p.key);
    if (!d) continue;
    const dp: Record<string, unknown> = {};
    if (hidden('Demographics.birthDate') && d.data.birthDate) {
      const keepYear = received.has('Demographics.birthYear') || received.has('Demographics.ageBand');
      const [y, m] = d.data.birthDate.split('-');
      dp.birthDate = keepYear ? `${y}-${m === '11' ? '02' : '11'}-15` : `${Number(y) - 4}-06-01`;
    }
    if (hidden('Demographics.sex')) dp.sex = d.data.sex === 'female' ? 'male' : 'female';
    if (hidden('Demographics.postalCode') && d.data.postalCode) dp.postalCode = received.has('Demographics.postalArea') ? `${d.data.postalCode.slice(0, 3)}99` : '99999';
    for (const f of ['americanIndianOrAlaskaNative', 'asian', 'blackOrAfricanAmerican', 'white', 'hispanicOrLatino', 'englishLanguageLearner', 'iep', 'section504', 'gifted'] as const) {
      if (hidden(`Demographics.${f}`)) dp[f] = !d.data[f];
    }
    if (hidden('Demographics.freeReducedLunch')) dp.freeReducedLunch = d.data.freeReducedLunch === 'free' ? 'paid' : 'free';
    if (hidden('Demographics.homeLanguage')) dp.homeLanguage = 'xx';
    if (Object.keys(dp).length) (ds.upsert('demographics', d.key, dp), changed.push(...Object.keys(dp).map((f) => `Demographics.${f}`)));
  }
  // Free text and codes schools fill, on a class and a course.
  const cls = ds.list('class')[0]!;
  const cp: Record<string, unknown> = {};
  for (const f of ['title', 'classCode', 'location'] as const) if (hidden(`Class.${f}`)) cp[f] = `hidden ${f} - Greene`;
  if (hidden('Class.grades')) cp.grades = ['07'];
  if (Object.keys(cp).length) (ds.upsert('class', cls.key, cp), changed.push(...Object.keys(cp).map((f) => `Class.${f}`)));
  const crs = ds.list('course')[0]!;
  const rp: Record<string, unknown> = {};
  for (const f of ['title', 'courseCode'] as const) if (hidden(`Course.${f}`)) rp[f] = `hidden ${f} - Greene`;
  if (Object.keys(rp).length) (ds.upsert('course', crs.key, rp), changed.push(...Object.keys(rp).map((f) => `Course.${f}`)));
  return [...new Set(changed)].sort();
}

// ---- reading everything a purpose's schema offers ----

const isConnection = (t: GraphQLObjectType) => t.name.endsWith('Connection');
// A connection whose records have nothing the purpose may see keeps only its cursors (no `node`).
const nodeOf = (t: GraphQLObjectType) => (getNamedType(t.getFields().edges!.type) as GraphQLObjectType).getFields().node;
const nodeTypeOf = (t: GraphQLObjectType) => getNamedType(nodeOf(t)!.type);
const optionalArgsOnly = (f: GraphQLField<unknown, unknown>) => f.args.every((a) => a.type.toString().slice(-1) !== '!');

/** Every field of a type, `depth` relations deep (lists 4 long below the root), sorted for stable text. */
function selection(schema: GraphQLSchema, type: GraphQLObjectType, depth: number): string {
  const parts: string[] = [];
  for (const f of Object.values(type.getFields()).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!optionalArgsOnly(f)) continue;
    const t = getNamedType(f.type);
    if (isLeafType(t)) parts.push(f.name);
    else if (isObjectType(t) && isConnection(t)) {
      if (depth > 0 && nodeOf(t)) parts.push(`${f.name}(first: 4) { totalCount pageInfo { hasNextPage } edges { node { ${selection(schema, nodeTypeOf(t) as GraphQLObjectType, depth - 1)} } } }`);
    } else if (isObjectType(t)) {
      const inner = depth > 0 ? selection(schema, t, depth - 1) : Object.values(t.getFields()).filter((x) => isLeafType(getNamedType(x.type)) && optionalArgsOnly(x)).map((x) => x.name).join(' ');
      if (inner) parts.push(`${f.name} { ${inner} }`);
    }
  }
  return parts.join(' ') || '__typename';
}

interface Reader {
  gql(query: string, variables?: Record<string, unknown>): Promise<unknown>;
}

/** Every id-like value in an answer: gateway ids and pseudonyms. */
function idsIn(v: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => idsIn(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === 'id' && typeof x === 'string' ? out.add(x) : idsIn(x, out);
  return out;
}

/** Sealed cursors differ on every encoding: keep where they are, not their text. */
function withoutCursorText(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutCursorText);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'cursor' || k === 'endCursor' || k === 'changesHead' ? (x === null ? null : '<cursor>') : withoutCursorText(x)]));
  return v;
}

async function readEverything(schema: GraphQLSchema, r: Reader): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const query = schema.getQueryType()!;
  const seen = new Set<string>();
  for (const root of Object.values(query.getFields()).sort((a, b) => a.name.localeCompare(b.name))) {
    const t = getNamedType(root.type);
    if (!isObjectType(t) || !isConnection(t) || !nodeOf(t) || root.name === 'changes' || !optionalArgsOnly(root)) continue;
    const node = nodeTypeOf(t) as GraphQLObjectType;
    for (const since of [undefined, T1.toISOString()]) {
      if (since && !root.args.some((a) => a.name === 'updatedSince')) continue;
      const pages: unknown[] = [];
      let after: string | null = null;
      for (let page = 0; page < 100; page++) {
        const data = (await r.gql(
          `query($after: Cursor${since ? ', $since: DateTime' : ''}) { list: ${root.name}(first: 7, after: $after${since ? ', updatedSince: $since' : ''}) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${selection(schema, node, 2)} } } } }`,
          since ? { after, since } : { after },
        )) as { list: { pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
        pages.push(data);
        idsIn(data, seen);
        if (!data.list.pageInfo.hasNextPage) break;
        after = data.list.pageInfo.endCursor;
      }
      out[`${root.name}${since ? ' since T1' : ''}`] = pages;
    }
  }
  // Every record by every id seen, through person(id:) and node(id:).
  const person = schema.getType('Person') as GraphQLObjectType | undefined;
  for (const id of [...seen].sort()) {
    if (query.getFields().person && person) out[`person(${id})`] = await r.gql(`query($id: ${query.getFields().person!.args[0]!.type.toString()}) { person(id: $id) { ${selection(schema, person, 1)} } }`, { id });
    if (query.getFields().node) out[`node(${id})`] = await r.gql(`query($id: ${query.getFields().node!.args[0]!.type.toString()}) { node(id: $id) { __typename } }`, { id });
  }
  // The change feed, a type at a time (one document holding every type's fields would need aliases
  // past the gateway's limit, as webhooks render them), every event with its record.
  const union = schema.getType('RosterRecord');
  if (query.getFields().changes && isUnionType(union)) {
    out.changesHead = await r.gql('{ changesHead }');
    for (const member of union.getTypes()) {
      const type = member.name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
      const pages: unknown[] = [];
      let after: string | null = null;
      for (let page = 0; page < 200; page++) {
        const data = (await r.gql(
          `query($after: Cursor) { changes(first: 50, after: $after, types: [${type}]) { pageInfo { hasNextPage endCursor } edges { cursor node { op type at fields record { ... on ${member.name} { ${selection(schema, member, 0)} } } } } } }`,
          { after },
        )) as { changes: { pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
        pages.push(data);
        if (!data.changes.pageInfo.hasNextPage) break;
        after = data.changes.pageInfo.endCursor;
      }
      out[`changes ${type}`] = pages;
    }
  }
  return withoutCursorText(out) as Record<string, unknown>;
}

// ---- building the two stores ----

interface Built {
  store: Store;
  privacy: Privacy;
  config: Config;
  answers: Record<string, unknown>;
  changed: string[];
}

async function build(kind: StoreKind, purpose: string, variant: 'same' | 'hidden' | 'visible'): Promise<Built> {
  ids.n = 0;
  vi.setSystemTime(T0);
  const dataset = RosterDataset.generate(DISTRICT, { now: () => new Date() });
  const config = demoPrivacyConfig(`${tempDir()}/rg.db`, { webhooks: { allowHttp: true, allowPrivateNetworks: true, maxAttempts: 1, retrySeconds: [0], timeoutMs: 2000 } });
  const store = kind === 'postgres' ? await openTestStore('postgres') : await openTestStore('sqlite');
  const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test'), versionCacheMs: 0 });
  const sync = async () => {
    const ingest = await privacy.ingest(store);
    return syncSource(store, directConnector('demo', dataset, { pageSize: 60 }), { ...ingest, matchRules: config.identity.match });
  };
  await sync();
  const client = PURPOSE_CLIENT[purpose]!;
  const key = newApiKey();
  await store.addApiKey(hashApiKey(key), client, T0.toISOString());
  // A webhook for the purpose's client, from the first change on.
  const hook = await webhookReceiver();
  await store.webhooks.create({ id: 'whk_test', client, url: hook.url, events: [], secret: privacy.keyring.sealCursor('webhook-secrets', 'whsec_test'), cursorSeq: 0, createdAt: T0.toISOString() });

  vi.setSystemTime(T1);
  const received = privacy.schemas.get(purpose)!.received;
  const changed = variant === 'hidden' ? hideChanges(dataset, received) : [];
  if (variant === 'visible') {
    const p = dataset.list('person').find((x) => x.data.roles.includes('student'))!;
    // Grades and grade band, seen by every demo purpose.
    dataset.upsert('person', p.key, { grades: p.data.grades?.[0] === '01' ? ['11'] : ['01'] });
  }
  const second = await sync();
  // A change to what some purpose receives is stored (and must still not show); one to what none
  // receives (special categories in the demo) is dropped at ingest, leaving only the source's stamps.
  if (variant === 'visible' || changed.some((c) => privacy.received.has(c))) expect(second.counters.updated, 'records the second sync changed').toBeGreaterThan(0);

  vi.setSystemTime(T2);
  const gw = await serveStore(store, config, createLogger({ level: 'silent' }), { port: 0, privacy, webhooks: false });
  const schema = privacy.schemas.get(purpose)!.schema;
  const reader: Reader = {
    async gql(query, variables) {
      const res = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query, variables }) });
      const body = (await res.body.json()) as { data?: unknown; errors?: unknown[] };
      expect(body.errors, query).toBeUndefined();
      return body.data;
    },
  };
  const answers = await readEverything(schema, reader);
  // Webhook payloads: one dispatcher round delivers what the subscription's purpose sees.
  const dispatcher = new WebhookDispatcher(store, privacy, new Map(), config.webhooks, createLogger({ level: 'silent' }));
  for (let round = 0; round < 50; round++) {
    const before = hook.bodies.length;
    await dispatcher.tick(T2);
    if (hook.bodies.length === before) break;
  }
  await dispatcher.stop();
  answers.webhooks = hook.bodies.map((b) => withoutCursorText(JSON.parse(b)));
  hook.close();
  // Every extract the purpose may pull, in each format.
  if (privacy.purposes.get(purpose)!.extracts) {
    for (const dataset of Object.keys(DATASETS) as Dataset[]) {
      for (const format of FORMATS) {
        let text = '';
        const out = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
        try {
          await runExtract({ client, dataset, format, store, privacy, sourceTypes: new Map(), out, pageSize: 9 });
          answers[`extract ${dataset}.${format}`] = text;
        } catch (e) {
          answers[`extract ${dataset}.${format}`] = `refused: ${(e as Error).message}`;
        }
      }
    }
  }
  await gw.close();
  return { store, privacy, config, answers, changed };
}

async function webhookReceiver(): Promise<{ url: string; bodies: string[]; close(): void }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, close: () => (server.closeAllConnections(), server.close()) };
}

/** The first place two answers differ, for a readable failure. */
function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path}: ${JSON.stringify(a)?.slice(0, 300)} ≠ ${JSON.stringify(b)?.slice(0, 300)}`;
}

const open: Store[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  return () => vi.useRealTimers();
});
afterAll(async () => {
  for (const s of open) await s.close();
});

describe.each(storeKinds())('non-interference on %s', (kind) => {
  for (const purpose of ['analytics', 'roster-sync', 'sso', 'admin']) {
    it(`${purpose}: two stores differing only in what it may not see answer byte for byte alike on every surface`, async () => {
      const a = await build(kind, purpose, 'same');
      const b = await build(kind, purpose, 'hidden');
      open.push(a.store, b.store);
      // The variation is real: what the purpose is denied did change in the second store.
      expect(b.changed.length, 'hidden changes made').toBeGreaterThan(0);
      expect(Object.keys(a.answers).length).toBeGreaterThan(10);
      expect(JSON.stringify(a.answers).length).toBeGreaterThan(5_000);
      // A purpose without the change feed (sso) gets no webhook deliveries at all; the others do.
      const feed = a.privacy.schemas.get(purpose)!.received.has('Change.record');
      expect(feed || purpose === 'sso', 'only sso lacks the change feed').toBe(true);
      if (feed) expect((a.answers.webhooks as unknown[]).length, 'webhook deliveries').toBeGreaterThan(0);
      else expect(a.answers.webhooks, 'webhook deliveries without the change feed').toEqual([]);
      expect(firstDifference(a.answers, b.answers)).toBeUndefined();
      expect(JSON.stringify(b.answers)).toBe(JSON.stringify(a.answers));
    }, 240_000);
  }

  it('the comparison is not blind: one change the purpose does see makes the answers differ', async () => {
    const a = await build(kind, 'analytics', 'same');
    const c = await build(kind, 'analytics', 'visible');
    open.push(a.store, c.store);
    expect(firstDifference(a.answers, c.answers)).toBeDefined();
  }, 240_000);
});
