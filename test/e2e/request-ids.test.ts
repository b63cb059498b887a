/**
 * Request ids: the caller's `x-request-id` is kept when it is a plain token and replaced when it is
 * not, the answer carries the id, and every log line written while the request is served — the
 * gateway's own and a resolver's, written through the shared logger with no id passed to it — carries
 * it, also when requests overlap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { createLogger } from '../../src/log.ts';
import { startGateway, type RunningGateway } from '../../src/server/gateway.ts';
import { requestIdFrom } from '../../src/kernel/request-context.ts';

/** A new id made by the gateway. */
const NEW_ID = /^rg-[A-Za-z0-9_-]{20}$/;

describe('x-request-id', () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } as never });
  let gw: RunningGateway;

  beforeAll(async () => {
    const schema = makeExecutableSchema({
      typeDefs: 'type Query { work(tag: String!, waitMs: Int!): String }',
      resolvers: {
        Query: {
          // Logs before and after an await: the id must survive the hop through the event loop.
          async work(_: unknown, { tag, waitMs }: { tag: string; waitMs: number }) {
            log.info({ tag }, 'resolver started');
            await new Promise((r) => setTimeout(r, waitMs));
            log.info({ tag }, 'resolver finished');
            return tag;
          },
        },
      },
    });
    gw = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), log, port: 0 });
  });
  afterAll(() => gw?.close());

  const ask = async (tag: string, waitMs: number, id?: string) => {
    const r = await request(`${gw.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(id !== undefined ? { 'x-request-id': id } : {}) },
      body: JSON.stringify({ query: `{ work(tag: "${tag}", waitMs: ${waitMs}) }` }),
    });
    await r.body.json();
    return String(r.headers['x-request-id']);
  };
  const linesOf = (tag: string) => lines.filter((l) => l.tag === tag);
  /** Waits for the 'request' line, written when the answer has been sent. */
  const requestLine = async (id: string) => {
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'request' && l.reqId === id); i++) await new Promise((r) => setTimeout(r, 10));
    return lines.filter((l) => l.msg === 'request' && l.reqId === id);
  };

  it('keeps a plain id, answers with it, and puts it on every line of the request, overlapping requests each their own', async () => {
    const [a, b] = await Promise.all([ask('a', 60, 'req-a.1:x_Y'), ask('b', 5, '0f8c7b6e-4d2a-4c9e-9a51-5b2f9e1d7c33')]);
    expect(a).toBe('req-a.1:x_Y');
    expect(b).toBe('0f8c7b6e-4d2a-4c9e-9a51-5b2f9e1d7c33');
    expect(linesOf('a').map((l) => l.reqId)).toEqual([a, a]);
    expect(linesOf('b').map((l) => l.reqId)).toEqual([b, b]);
    expect(await requestLine(a)).toHaveLength(1);
    expect(await requestLine(b)).toHaveLength(1);
  });

  it('makes one when there is none', async () => {
    const id = await ask('c', 0);
    expect(id).toMatch(NEW_ID);
    expect(linesOf('c').map((l) => l.reqId)).toEqual([id, id]);
    expect(await requestLine(id)).toHaveLength(1);
  });

  it('replaces a hostile one: too long, or with characters that could forge log fields or headers', async () => {
    for (const [tag, hostile] of [['d', 'x'.repeat(129)], ['e', 'a","admin":true,"b":"'], ['f', '<script>alert(1)</script>'], ['g', 'ünïcode']] as const) {
      const id = await ask(tag, 0, hostile);
      expect(id, hostile).toMatch(NEW_ID);
      expect(linesOf(tag).map((l) => l.reqId)).toEqual([id, id]);
      expect(JSON.stringify(lines)).not.toContain(hostile);
    }
  });

  it('accepts exactly the safe charset up to 128 characters', () => {
    expect(requestIdFrom('a'.repeat(128))).toBe('a'.repeat(128));
    expect(requestIdFrom(['first-id', 'second-id'])).toBe('first-id');
    for (const bad of ['', ' ', 'a b', 'a\tb', 'a/b', 'a=b', 'a;b', 'a'.repeat(129)]) expect(requestIdFrom(bad)).toMatch(NEW_ID);
  });

  it('lines written outside any request carry no id', () => {
    log.info({ tag: 'outside' }, 'between requests');
    expect(linesOf('outside')[0]).not.toHaveProperty('reqId');
  });
});
