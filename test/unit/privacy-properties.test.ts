/**
 * Property-based checks (fast-check) of the analytics view over generated rosters and generated
 * queries: no response or introspection ever carries a name, email, username, source id, SIS or
 * state id or student number — nor an MD5/SHA-1/SHA-256 of one; pseudonyms are stable across
 * queries and syncs and distinct across domains.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  getIntrospectionQuery,
  getNamedType,
  isEnumType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { prng } from '../../src/demo/generator.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import type { PersonData } from '../../src/model/records.ts';

/** A random query over the fields a schema offers: the client can only ask for what exists. */
export function randomQuery(schema: GraphQLSchema, seed: number): string {
  const rnd = prng(seed);
  const pick = <T>(xs: T[], n: number) => [...xs].sort(() => rnd() - 0.5).slice(0, Math.max(1, n));
  const selection = (type: GraphQLObjectType, depth: number, alias = ''): string => {
    const fields = Object.values(type.getFields()).filter((f) => !f.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined));
    const chosen = pick(fields, 1 + Math.floor(rnd() * Math.min(6, fields.length)));
    const parts = chosen.map((f) => field(f, depth, alias)).filter(Boolean);
    return parts.length ? parts.join(' ') : '__typename';
  };
  const field = (f: GraphQLField<unknown, unknown>, depth: number, alias = ''): string => {
    const named = getNamedType(f.type);
    const args = f.args.some((a) => a.name === 'first') ? '(first: 4)' : '';
    const name = alias ? `${alias}_${f.name}: ${f.name}` : f.name;
    if (isLeafType(named) || isEnumType(named)) return name;
    if (isUnionType(named) && depth < 4) {
      // Members may type the same field differently (Person.id is a Pseudonym): alias per member.
      return `${name} { __typename ${named.getTypes().map((t) => `... on ${t.name} { ${selection(t, depth + 1, t.name)} }`).join(' ')} }`;
    }
    if (!isObjectType(named) || depth >= 4) return '';
    if (named.name.endsWith('Connection')) {
      const edge = getNamedType(named.getFields().edges!.type) as GraphQLObjectType;
      const node = getNamedType(edge.getFields().node!.type) as GraphQLObjectType;
      const total = named.getFields().totalCount ? 'totalCount ' : '';
      return `${name}${args} { ${total}edges { cursor node { ${selection(node, depth + 1)} } } }`;
    }
    return `${name}${args} { ${selection(named, depth + 1)} }`;
  };
  const root = schema.getQueryType()!;
  const roots = Object.values(root.getFields()).filter((f) => f.args.every((a) => !isNonNullType(a.type)) && !isListType(f.type));
  return `{ ${pick(roots, 2).map((f) => field(f, 0)).join(' ')} }`;
}

function forbiddenValues(g: PrivateGateway): { exact: Set<string>; words: string[] } {
  const exact = new Set<string>();
  const words: string[] = [];
  const add = (v: string | undefined) => {
    if (!v) return;
    exact.add(v);
    for (const alg of ['md5', 'sha1', 'sha256']) {
      for (const input of [v, v.toLowerCase()]) {
        const h = createHash(alg).update(input);
        exact.add(h.copy().digest('hex'));
        exact.add(h.copy().digest('base64'));
        exact.add(h.digest('base64url'));
      }
    }
  };
  for (const p of g.dataset.list('person')) {
    const d = p.data as PersonData;
    [d.email, d.username, d.sisId, d.stateId, d.studentNumber, d.teacherNumber, p.key].forEach(add);
    [d.givenName, d.familyName].forEach((n) => {
      add(n);
      words.push(n);
    });
    add(`${d.givenName} ${d.familyName}`);
  }
  for (const e of g.dataset.list('enrollment')) add(e.key);
  return { exact, words: [...new Set(words)] };
}

function leaks(json: unknown, f: { exact: Set<string>; words: string[] }, wordRe: RegExp): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (f.exact.has(v)) out.push(v);
      for (const x of f.exact) if (x.length >= 16 && v.includes(x)) out.push(x);
      if (wordRe.test(v)) out.push(v);
      if (/\bper_[A-Za-z0-9_-]{22}\b/.test(v)) out.push(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(json);
  return out;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('analytics view properties', () => {
  it('no generated query or introspection of the analytics client reveals a direct identifier, or a plain hash of one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ seed: fc.integer({ min: 1, max: 1e9 }), students: fc.integer({ min: 15, max: 60 }), classes: fc.integer({ min: 2, max: 6 }), schools: fc.integer({ min: 1, max: 3 }) }),
        fc.array(fc.integer({ min: 1, max: 1e9 }), { minLength: 6, maxLength: 6 }),
        async (district, querySeeds) => {
          const g = await privateGateway({ ...district, teachers: 4 });
          try {
            const f = forbiddenValues(g);
            // Deletions put tombstones (last states, names included) into the change feed.
            const victim = g.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
            g.dataset.remove('person', victim.key);
            await g.resync();
            const wordRe = new RegExp(`(^|[^\\p{L}\\p{N}_])(${f.words.map(esc).join('|')})($|[^\\p{L}\\p{N}_])`, 'u');
            const schema = g.privacy.schemas.get('analytics')!.schema;
            for (const s of querySeeds) {
              const q = randomQuery(schema, s);
              const r = await g.gql('analytics-demo', q);
              expect(r.status, q).toBe(200);
              expect(r.body.errors, q).toBeUndefined();
              expect(leaks(r.body, f, wordRe), q).toEqual([]);
            }
            const intro = await g.gql('analytics-demo', getIntrospectionQuery());
            expect(leaks(intro.body, f, wordRe)).toEqual([]);
          } finally {
            await g.close();
          }
        },
      ),
      { numRuns: 6 },
    );
  });

  it('the same queries through roster-sync do show names (the check can fail)', async () => {
    const g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 });
    try {
      const f = forbiddenValues(g);
      const wordRe = new RegExp(`(^|[^\\p{L}\\p{N}_])(${f.words.map(esc).join('|')})($|[^\\p{L}\\p{N}_])`, 'u');
      const r = await g.gql('lms-demo', `{ people(first: 5) { edges { node { givenName email sisId } } } }`);
      expect(leaks(r.body, f, wordRe).length).toBeGreaterThan(0);
    } finally {
      await g.close();
    }
  });

  it('pseudonyms are stable across queries and syncs, and distinct across domains', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e9 }), async (seed) => {
        const g = await privateGateway({ seed, students: 25, teachers: 2, classes: 2, schools: 1 });
        try {
          const q = `{ people(first: 200) { edges { node { id } } } }`;
          const a = (await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id);
          await g.resync();
          const b = (await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id);
          expect(b).toEqual(a);
          expect(new Set(a).size).toBe(a.length);
          const ids = (await g.store.list({ type: 'person', first: 1000 })).rows.map((r) => r.id);
          const other = new Set(ids.map((id) => g.privacy.keyring.pseudonym('research', 1, id)));
          for (const p of a) expect(other.has(p)).toBe(false);
        } finally {
          await g.close();
        }
      }),
      { numRuns: 4 },
    );
  });
});
