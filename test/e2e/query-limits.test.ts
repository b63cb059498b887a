/**
 * Query limits, hang-ups and scalar input over HTTP with the demo purposes (rostergate issue 11):
 * the costly query is refused before it runs, naming the limit and the estimate; its
 * fragment chain validates at once; per-purpose limits from config apply to that purpose only; a
 * client that hangs up stops the store reads of its query; wrong-typed scalar input is
 * BAD_USER_INPUT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { COSTLY, fragmentChain } from '../support/costly-queries.ts';
import type { Store } from '../../src/store/types.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the resolvers make; each is slowed so a deep query is still running when its client leaves. */
const READS = new Set(['getEntities', 'linkedFrom', 'list', 'sourcesOf', 'pseudonymsOf', 'viewTimes']);
function slowCountingStore(counter: { reads: number; slow: boolean }) {
  return (store: Store): Store =>
    new Proxy(store, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function') return v;
        if (!READS.has(String(prop))) return (v as (...a: unknown[]) => unknown).bind(target);
        return async (...args: unknown[]) => {
          counter.reads++;
          if (counter.slow) await sleep(40);
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
}

/** Records to lists to records, eleven levels, each waiting for the one above: a dozen or more sequential, slowed store reads. */
function deepQuery(): string {
  let q = 'id';
  for (let i = 0; i < 3; i++) q = `enrollments(first: 2) { edges { node { class { enrollments(first: 2) { edges { node { person { ${q} } } } } } } } }`;
  return `{ schools(first: 2) { edges { node { classes(first: 2) { edges { node { enrollments(first: 2) { edges { node { person { ${q} } } } } } } } } } } }`;
}
const DEEP = deepQuery();

describe.each(storeKinds())('on %s', (kind) => {
  let g: PrivateGateway;
  const counter = { reads: 0, slow: false };
  beforeAll(async () => {
    g = await privateGateway({ students: 60, teachers: 6, classes: 8, schools: 2 }, undefined, {
      store: kind,
      served: slowCountingStore(counter),
      config: {
        purposes: {
          ...DEMO_PURPOSES,
          // Tight limits for analytics, generous ones for roster-sync: each purpose gets its own.
          analytics: { ...DEMO_PURPOSES.analytics, limits: { maxCost: 50_000, maxDepth: 8, maxTokens: 200 } },
          'roster-sync': { ...DEMO_PURPOSES['roster-sync'], limits: { maxCost: Number.MAX_SAFE_INTEGER, maxDepth: 60 } },
        },
      },
    });
  });
  afterAll(() => g?.close());

  it('refuses the issue\'s costly query before running it, naming the limit, the purpose and the estimate', async () => {
    const before = counter.reads;
    const started = performance.now();
    const r = await g.gql('admin-demo', COSTLY);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(r.status).toBe(400);
    expect(r.body.data).toBeUndefined();
    expect(r.body.errors).toEqual([expect.objectContaining({
      message: 'query cost 3,003,003,003,000 exceeds the limit of 250,000 for purpose "admin" (cost = rows requested: each list\'s first, multiplied along its path)',
      extensions: expect.objectContaining({ code: 'QUERY_TOO_COSTLY', cost: 3_003_003_003_000, maxCost: 250_000 }),
    })]);
    expect(counter.reads).toBe(before);
  });

  it('validates the issue\'s 22-deep fragment chain at once and answers it', async () => {
    const started = performance.now();
    const r = await g.gql('lms-demo', fragmentChain(22));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.schools.totalCount).toBe(2);
  });

  it('applies a purpose\'s own limits from config, and only to that purpose', async () => {
    const q = '{ people(first: 1000) { edges { node { enrollments(first: 100) { totalCount } } } } }';
    const a = await g.gql('analytics-demo', q);
    expect(a.status).toBe(400);
    expect(a.body.errors![0]).toMatchObject({ message: expect.stringMatching(/^query cost 101,000 exceeds the limit of 50,000 for purpose "analytics"/), extensions: { code: 'QUERY_TOO_COSTLY' } });
    // The cost counts `first` as sent in variables.
    const v = await g.gql('analytics-demo', 'query($n: Int) { people(first: $n) { edges { node { enrollments(first: 100) { totalCount } } } } }', { n: 10 });
    expect(v.body.errors).toBeUndefined();
    expect((await g.gql('lms-demo', q)).body.errors).toBeUndefined();

    let deep = 'role';
    for (let i = 0; i < 3; i++) deep = `class { enrollments(first: 1) { edges { node { ${deep} } } } }`;
    const d = await g.gql('analytics-demo', `{ enrollments(first: 1) { edges { node { ${deep} } } } }`);
    expect(d.body.errors![0]).toMatchObject({ message: 'query is 16 levels deep; the limit (maxDepth) is 8 for purpose "analytics"', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });

    const long = `{ ${Array.from({ length: 250 }, () => '__typename').join(' ')} }`;
    const t = await g.gql('analytics-demo', long);
    expect(t.status).toBe(400);
    expect(t.body.errors![0]).toMatchObject({ message: expect.stringMatching(/200 tokens/), extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    expect((await g.gql('lms-demo', long)).body.errors).toBeUndefined();
  });

  it('stops reading the store when the client hangs up', async () => {
    counter.slow = true;
    try {
      // The whole query, for scale.
      let before = counter.reads;
      const full = await g.gql('lms-demo', DEEP);
      expect(full.body.errors).toBeUndefined();
      const fullReads = counter.reads - before;
      // Batching may merge reads of one level differently under load; the levels keep it well above a few.
      expect(fullReads).toBeGreaterThan(6);

      before = counter.reads;
      const ac = new AbortController();
      const pending = request(`${g.gw.url}/graphql`, {
        method: 'POST', signal: ac.signal,
        headers: { 'content-type': 'application/json', 'x-api-key': g.keys['lms-demo']! },
        body: JSON.stringify({ query: DEEP }),
      }).catch((e: Error) => e);
      while (counter.reads - before < 2) await sleep(5);
      ac.abort();
      expect(await pending).toBeInstanceOf(Error);
      const atAbort = counter.reads;
      await sleep(fullReads * 40 + 500);
      // A read already started when the hang-up arrives may finish; none starts after it.
      expect(counter.reads - atAbort).toBeLessThanOrEqual(2);
      expect(counter.reads - before).toBeLessThan(fullReads);
    } finally {
      counter.slow = false;
    }
    // The gateway serves the next request as usual.
    expect((await g.gql('lms-demo', '{ schools { totalCount } }')).body.data.schools.totalCount).toBe(2);
  });

  it('answers wrong-typed custom scalar input, as variable and as literal, with BAD_USER_INPUT saying what was expected', async () => {
    const cases: { client: string; query: string; variables?: Record<string, unknown>; expected: RegExp }[] = [
      { client: 'analytics-demo', query: 'query($id: Pseudonym!) { person(id: $id) { id } }', variables: { id: { a: 1 } }, expected: /Pseudonym expects a pseudonym string/ },
      { client: 'analytics-demo', query: '{ person(id: { a: 1 }) { id } }', expected: /Pseudonym expects a pseudonym string/ },
      { client: 'analytics-demo', query: '{ person(id: 5) { id } }', expected: /Pseudonym expects a pseudonym string/ },
      { client: 'lms-demo', query: 'query($c: Cursor) { people(after: $c) { totalCount } }', variables: { c: 12 }, expected: /Cursor expects a cursor string/ },
      { client: 'lms-demo', query: '{ people(after: { x: 1 }) { totalCount } }', expected: /Cursor expects a cursor string/ },
      { client: 'lms-demo', query: 'query($s: DateTime) { people(updatedSince: $s) { totalCount } }', variables: { s: { a: 1 } }, expected: /DateTime expects an RFC 3339 date-time/ },
      { client: 'lms-demo', query: 'query($s: DateTime) { people(updatedSince: $s) { totalCount } }', variables: { s: 'yesterday' }, expected: /DateTime expects an RFC 3339 date-time/ },
      { client: 'lms-demo', query: '{ people(updatedSince: "yesterday") { totalCount } }', expected: /DateTime expects an RFC 3339 date-time/ },
      { client: 'lms-demo', query: '{ people(updatedSince: 2024) { totalCount } }', expected: /DateTime expects an RFC 3339 date-time/ },
    ];
    for (const c of cases) {
      const r = await g.gql(c.client, c.query, c.variables);
      expect(r.status, c.query).toBe(400);
      expect(r.body.errors, c.query).toEqual([expect.objectContaining({ message: expect.stringMatching(c.expected), extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
    }
  });

  it('sends nosniff, no-framing, no-referrer and a deny-all CSP with JSON answers', async () => {
    for (const path of ['/graphql', '/healthz', '/nowhere']) {
      const r = await request(`${g.gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': g.keys['lms-demo']! }, body: JSON.stringify({ query: '{ changesHead }' }) });
      await r.body.text();
      expect(r.headers, path).toMatchObject({
        'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      });
    }
  });
});
