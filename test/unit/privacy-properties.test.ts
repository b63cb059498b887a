/**
 * Property-based checks (fast-check) of the analytics view over generated rosters and generated
 * queries: no response, extract or introspection ever carries a name, email, username, source id, SIS or
 * state id, student number or gateway person id — nor an MD5/SHA-1/SHA-256 of one; pseudonyms are
 * stable across queries and syncs, distinct across domains, and all change on rotation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  getIntrospectionQuery,
  getNamedType,
  isObjectType,
  isAbstractType,
  parse,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import type { PersonData } from '../../src/model/records.ts';
import { demoPrivacyConfig, privateGateway, TEST_MASTER_KEY, type PrivateGateway } from '../support/privacy.ts';
import { randomQuery, type QueryPools } from '../support/query-generator.ts';
import { DATASETS } from '../../src/extract/columns.ts';
import { DEFAULT_LIMITS, measureOperation, shapeLimits } from '../../src/server/limits.ts';
import { request } from 'undici';

const TYPE_NAMES = ['Person', 'Demographics', 'SourceRef', 'Enrollment', 'Guardianship', 'PersonConnection', 'Node', 'RosterRecord', 'Query', 'Webhook', 'Mutation', 'Pseudonym', 'NoSuchType'];

/** Every field coordinate reachable from the root and the introspection entry points. */
function reachable(schema: GraphQLSchema): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  const queue: GraphQLNamedType[] = [schema.getQueryType()!, schema.getType('__Schema')!, schema.getType('__Type')!];
  while (queue.length) {
    const t = queue.shift()!;
    if (seen.has(t.name)) continue;
    seen.add(t.name);
    if (isAbstractType(t)) queue.push(...schema.getPossibleTypes(t));
    if (!isObjectType(t)) continue;
    for (const f of Object.values(t.getFields())) {
      out.add(`${t.name}.${f.name}`);
      queue.push(getNamedType(f.type));
    }
  }
  return out;
}

function touched(schema: GraphQLSchema, query: string): string[] {
  const info = new TypeInfo(schema);
  const out: string[] = [];
  visit(parse(query), visitWithTypeInfo(info, { Field(node) { if (info.getParentType() && node.name.value !== '__typename') out.push(`${info.getParentType()!.name}.${node.name.value}`); } }));
  return out;
}

describe('the query generator', () => {
  const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
  const schema = privacy.schemas.get('analytics')!.schema;
  const pools: QueryPools = { ids: ['p1_AAAAAAAAAAAAAAAAAAAAAA', 'per_AAAAAAAAAAAAAAAAAAAAAA'], typeNames: TYPE_NAMES };

  it('keeps to the gateway\'s alias limit even for seeds whose first draw goes over it', () => {
    // 620832743 drew 51+ aliases (a property run failed on it with "more than 50 aliases").
    for (const seed of [620832743, 633533, 3975351]) expect(validate(schema, parse(randomQuery(schema, seed, pools)), [shapeLimits()]), String(seed)).toEqual([]);
  });

  it('keeps to the default cost and token limits, and still replays a seed to the same query', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const q = randomQuery(schema, seed, pools);
      expect(randomQuery(schema, seed, pools)).toBe(q);
      const doc = parse(q, { maxTokens: DEFAULT_LIMITS.maxTokens });
      expect(measureOperation(schema, doc, doc.definitions[0] as never).cost, q).toBeLessThanOrEqual(DEFAULT_LIMITS.maxCost);
    }
  });

  it('writes valid queries that, over a few hundred seeds, reach every field of the analytics schema, introspection included', () => {
    const reached = new Set<string>();
    for (let seed = 1; seed <= 400; seed++) {
      const q = randomQuery(schema, seed, pools);
      expect(validate(schema, parse(q)), q).toEqual([]);
      // Within the gateway's shape limits, which would refuse it before it ran.
      expect(validate(schema, parse(q), [shapeLimits()]), q).toEqual([]);
      for (const c of touched(schema, q)) reached.add(c);
    }
    const missed = [...reachable(schema)].filter((c) => !reached.has(c));
    expect(missed).toEqual([]);
    for (const c of ['Query.person', 'Query.node', 'Query.changes', 'ChangeEdge.node', 'Person.demographics', 'SourceRef.source', '__Schema.types', '__Type.fields', '__Field.description']) expect(reached).toContain(c);
  });
});

function forbiddenValues(g: PrivateGateway, gatewayPersonIds: string[]): { exact: Set<string>; words: string[] } {
  const exact = new Set<string>();
  const words: string[] = [];
  const add = (v: string | undefined) => {
    if (!v) return;
    exact.add(v);
    for (const alg of ['md5', 'sha1', 'sha256']) {
      for (const input of [v, v.toLowerCase()]) {
        const h = createHash(alg).update(input);
        const hex = h.copy().digest('hex');
        exact.add(hex);
        exact.add(hex.toUpperCase());
        exact.add(h.copy().digest('base64'));
        exact.add(h.digest('base64url'));
      }
    }
  };
  for (const p of g.dataset.listWithDeleted('person')) {
    const d = p.data as PersonData;
    [d.email, d.username, d.sisId, d.stateId, d.studentNumber, d.teacherNumber, p.key].forEach(add);
    [d.givenName, d.familyName].forEach((n) => {
      add(n);
      words.push(n);
    });
    add(`${d.givenName} ${d.familyName}`);
  }
  for (const e of g.dataset.listWithDeleted('enrollment')) add(e.key);
  for (const e of g.dataset.listWithDeleted('guardianship')) add(e.key);
  // Gateway person ids, and their random part (demographics ids reuse it).
  for (const id of gatewayPersonIds) {
    add(id);
    exact.add(id.slice(id.indexOf('_') + 1));
  }
  return { exact, words: [...new Set(words)] };
}

function leaks(json: unknown, f: { exact: Set<string>; words: string[] }, wordRe: RegExp): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (f.exact.has(v)) out.push(v);
      for (const x of f.exact) if (x.length >= 16 && v.includes(x)) out.push(x);
      if (wordRe.test(v)) out.push(v);
      if (/\b(per|enr|gdn|dem)_[A-Za-z0-9_-]{22}\b/.test(v)) out.push(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(json);
  return out;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const wordPattern = (words: string[]) => new RegExp(`(^|[^\\p{L}\\p{N}_])(${words.map(esc).join('|')})($|[^\\p{L}\\p{N}_])`, 'u');

describe('analytics view properties', () => {
  it('no generated query, extract or introspection of the analytics client reveals a direct identifier, or a plain hash of one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ seed: fc.integer({ min: 1, max: 1e9 }), students: fc.integer({ min: 15, max: 60 }), classes: fc.integer({ min: 2, max: 6 }), schools: fc.integer({ min: 1, max: 3 }) }),
        fc.array(fc.integer({ min: 1, max: 1e9 }), { minLength: 8, maxLength: 8 }),
        async (district, querySeeds) => {
          const g = await privateGateway({ ...district, teachers: 4 });
          try {
            const gatewayIds = (await g.store.list({ type: 'person', first: 1000 })).rows.map((r) => r.id);
            // Deletions put tombstones (last states, names included) into the change feed.
            const victim = g.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
            g.dataset.remove('person', victim.key);
            await g.resync();
            const f = forbiddenValues(g, gatewayIds);
            const wordRe = wordPattern(f.words);
            const schema = g.privacy.schemas.get('analytics')!.schema;
            // Ids a client has or might guess: its own pseudonyms, raw gateway ids of people,
            // enrollments and classes, junk.
            const own = (await g.gql('analytics-demo', `{ people(first: 5) { edges { node { id } } } }`)).body.data.people.edges.map((e: any) => e.node.id);
            const raw = (type: 'person' | 'enrollment' | 'class') => g.store.list({ type, first: 3 }).then((r) => r.rows.map((x) => x.id));
            const pools: QueryPools = { ids: [...own, ...(await raw('person')), ...(await raw('enrollment')), ...(await raw('class')), 'not-an-id'], typeNames: TYPE_NAMES };
            for (const s of querySeeds) {
              const q = randomQuery(schema, s, pools);
              const r = await g.gql('analytics-demo', q);
              expect(r.status, q).toBe(200);
              // Wrong ids may be refused as bad input; nothing else may fail.
              for (const e of r.body.errors ?? []) expect(e.extensions.code, `${q}\n${e.message}`).toBe('BAD_USER_INPUT');
              expect(leaks(r.body, f, wordRe), q).toEqual([]);
            }
            const intro = await g.gql('analytics-demo', getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, inputValueDeprecation: true }));
            expect(intro.body.errors).toBeUndefined();
            expect(leaks(intro.body, f, wordRe)).toEqual([]);
            // Extracts are responses too: every dataset, row by row (or the refusal, if k cannot be met).
            for (const dataset of Object.keys(DATASETS)) {
              const r = await request(`${g.gw.url}/extracts/${dataset}.ndjson`, { headers: { 'x-api-key': g.keys['analytics-demo']! } });
              const text = await r.body.text();
              const rows = r.statusCode === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [JSON.parse(text)];
              if (r.statusCode === 200 && dataset === 'people') expect(rows.length).toBeGreaterThan(0);
              expect(leaks([rows, r.trailers], f, wordRe), dataset).toEqual([]);
            }
          } finally {
            await g.close();
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 180_000);

  it('the same checks catch names, ids and hashes through roster-sync (the check can fail)', async () => {
    const g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 });
    try {
      const gatewayIds = (await g.store.list({ type: 'person', first: 1000 })).rows.map((r) => r.id);
      const f = forbiddenValues(g, gatewayIds);
      const wordRe = wordPattern(f.words);
      const found = (body: unknown) => leaks(body, f, wordRe).length;
      expect(found((await g.gql('lms-demo', `{ people(first: 5) { edges { node { givenName } } } }`)).body)).toBeGreaterThan(0);
      expect(found((await g.gql('lms-demo', `{ people(first: 5) { edges { node { email } } } }`)).body)).toBeGreaterThan(0);
      expect(found((await g.gql('lms-demo', `{ people(first: 5) { edges { node { sources { sourcedId } } } } }`)).body)).toBeGreaterThan(0);
      expect(found((await g.gql('lms-demo', `{ people(first: 5) { edges { node { id } } } }`)).body)).toBeGreaterThan(0);
      const email = g.dataset.list('person').find((p) => p.data.email)!.data.email!;
      expect(found({ x: createHash('sha1').update(email).digest('hex').toUpperCase() })).toBeGreaterThan(0);
      expect(found({ x: `hash:${createHash('md5').update(email.toLowerCase()).digest('base64')}` })).toBeGreaterThan(0);
    } finally {
      await g.close();
    }
  });

  it('pseudonyms are stable across queries and syncs, distinct across domains, shared within one, and all change on rotation', async () => {
    const config = {
      purposes: {
        ...DEMO_PURPOSES,
        research: { ...DEMO_PURPOSES.analytics, pseudonymDomain: 'research' },
        dashboards: { ...DEMO_PURPOSES.analytics, pseudonymDomain: 'analytics' },
      },
      clients: [...DEMO_CLIENTS, { id: 'research-demo', purpose: 'research' }, { id: 'dashboards-demo', purpose: 'dashboards' }],
    };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 10, max: 40 }), async (seed, students) => {
        const g = await privateGateway({ seed, students, teachers: 2, classes: 2, schools: 1 }, undefined, { config });
        try {
          const q = `{ people(first: 500) { edges { node { id } } } }`;
          const ids = async (client: string): Promise<string[]> => (await g.gql(client, q)).body.data.people.edges.map((e: any) => e.node.id);
          const a = await ids('analytics-demo');
          expect(await ids('analytics-demo')).toEqual(a);
          expect(new Set(a).size).toBe(a.length);
          // A later sync that renames one person and adds another changes no one's pseudonym.
          const someone = g.dataset.list('person')[0]!;
          g.dataset.upsert('person', someone.key, { givenName: `${someone.data.givenName}x` });
          g.dataset.upsert('person', 'late-arrival', { givenName: 'Late', familyName: 'Arrival', roles: ['student'] });
          await g.resync();
          const b = await ids('analytics-demo');
          expect(b.length).toBe(a.length + 1);
          expect(b.filter((p) => !a.includes(p))).toHaveLength(1);
          // Each domain lists people in its own pseudonym order (test/e2e/pseudonym-order.test.ts):
          // the same people, compared as sets.
          const research = await ids('research-demo');
          expect(research.length).toBe(b.length);
          expect(research.filter((p) => b.includes(p))).toEqual([]);
          expect(await ids('dashboards-demo')).toEqual(b);
          const table = new Map<string, string>();
          const r = await g.privacy.pseudonymiser.rotate(g.store, 'analytics', (o, n) => table.set(o, n));
          expect(r).toMatchObject({ from: 1, to: 2 });
          const c = await ids('analytics-demo');
          expect(c.filter((p) => b.includes(p))).toEqual([]);
          expect(c.every((p) => p.startsWith('p2_'))).toBe(true);
          expect(b.map((p) => table.get(p)).sort()).toEqual([...c].sort());
          expect(await ids('dashboards-demo')).toEqual(c);
          expect(await ids('research-demo')).toEqual(research);
          await g.resync();
          expect(await ids('analytics-demo')).toEqual(c);
        } finally {
          await g.close();
        }
      }),
      { numRuns: 4 },
    );
  });
});
