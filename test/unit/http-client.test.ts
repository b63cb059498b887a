/** The shared HTTP layer with undici's MockAgent and the network disabled. */
import { describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';
import { HttpClient, decideRetry, serverRequestedWait } from '../../connectors/http.ts';
import { RostergateError } from '../../src/errors.ts';

const opts = { maxRetries: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };

describe('the retry decision', () => {
  it('retries 429/5xx/timeouts with jittered exponential backoff and gives up after the last retry', () => {
    const a = decideRetry({ status: 503, attempt: 1, opts, random: 0.5, now: 0 });
    const b = decideRetry({ status: 503, attempt: 3, opts, random: 0.5, now: 0 });
    expect(a).toEqual({ action: 'retry', delayMs: 75 });
    expect(b).toEqual({ action: 'retry', delayMs: 300 });
    expect(decideRetry({ status: 503, attempt: 4, opts, random: 0.5, now: 0 })).toMatchObject({ action: 'fail', code: 'SOURCE_HTTP', retryable: true });
    expect(decideRetry({ errorCode: 'timeout', attempt: 4, opts, random: 0, now: 0 })).toMatchObject({ action: 'fail', code: 'SOURCE_TIMEOUT' });
    expect(decideRetry({ status: 404, attempt: 1, opts, random: 0, now: 0 })).toMatchObject({ action: 'fail', code: 'SOURCE_HTTP', retryable: false });
    expect(decideRetry({ status: 401, attempt: 1, opts, random: 0, now: 0 })).toMatchObject({ action: 'fail', code: 'SOURCE_AUTH' });
  });

  it('honours Retry-After (seconds or date) and X-RateLimit-Reset, and refuses waits that are too long', () => {
    expect(serverRequestedWait({ 'retry-after': '2' }, 0)).toBe(2000);
    expect(serverRequestedWait({ 'retry-after': new Date(10_000).toUTCString() }, 4000)).toBe(6000);
    expect(serverRequestedWait({ 'x-ratelimit-reset': '1700000003' }, 1_700_000_000_000)).toBe(3000);
    expect(decideRetry({ status: 429, attempt: 1, headers: { 'retry-after': '1' }, opts, random: 0, now: 0 })).toEqual({ action: 'retry', delayMs: 1000 });
    expect(decideRetry({ status: 429, attempt: 1, headers: { 'retry-after': '3600' }, opts, random: 0, now: 0 })).toMatchObject({ action: 'fail', code: 'SOURCE_RATE_LIMITED' });
  });
});

describe('HttpClient over a mocked network', () => {
  it('retries a 429 storm, then succeeds; counts requests; enforces the budget', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('https://vendor.example');
    pool.intercept({ path: '/x', method: 'GET' }).reply(429, '{}', { headers: { 'retry-after': '0' } }).times(3);
    pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{"ok":true}');
    const waits: number[] = [];
    const http = new HttpClient({ sourceId: 's', dispatcher: agent, sleep: async (ms) => void waits.push(ms), maxRetries: 5, budget: 5 });
    expect(await http.json({ url: 'https://vendor.example/x', resource: 'x' })).toEqual({ ok: true });
    expect(http.requestCount).toBe(4);
    expect(waits).toEqual([0, 0, 0]);
    pool.intercept({ path: '/x', method: 'GET' }).reply(200, '{}').times(2);
    await http.json({ url: 'https://vendor.example/x' });
    const e = await http.json({ url: 'https://vendor.example/x', resource: 'x' }).catch((x: unknown) => x);
    expect((e as RostergateError).code).toBe('SOURCE_BUDGET');
  });

  it('keeps under the configured requests per minute by waiting, not by failing', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent.get('https://vendor.example').intercept({ path: '/r', method: 'GET' }).reply(200, '{}').times(5);
    let now = 1_000_000;
    const waits: number[] = [];
    const http = new HttpClient({ sourceId: 's', dispatcher: agent, requestsPerMinute: 2, now: () => now, sleep: async (ms) => void (waits.push(ms), (now += ms)) });
    for (let i = 0; i < 5; i++) {
      await http.json({ url: 'https://vendor.example/r' });
      now += 1000;
    }
    // Two requests per rolling minute: the third waits for the first to age out, and so on.
    expect(waits).toEqual([58_000, 58_000]);
    expect(http.requestCount).toBe(5);
  });

  it('after a 401 drops the cached token and tries once more with a fresh one', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('https://vendor.example');
    pool.intercept({ path: '/y', method: 'GET', headers: { authorization: 'Bearer old' } }).reply(401, '{}');
    pool.intercept({ path: '/y', method: 'GET', headers: { authorization: 'Bearer new' } }).reply(200, '[1]');
    let token = 'old';
    const http = new HttpClient({ sourceId: 's', dispatcher: agent });
    http.setAuth({ authorize: async ({ headers }) => void (headers.authorization = `Bearer ${token}`), invalidate: () => void (token = 'new') });
    expect(await http.json({ url: 'https://vendor.example/y' })).toEqual([1]);
  });

  it('a page that stays malformed is SOURCE_BAD_PAGE without its body in the message', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent.get('https://vendor.example').intercept({ path: '/z', method: 'GET' }).reply(200, '{"name":"Ada Lovel').times(5);
    const http = new HttpClient({ sourceId: 'src', dispatcher: agent, maxRetries: 2 });
    const e = await http.json({ url: 'https://vendor.example/z', resource: 'users' }).catch((x: unknown) => x);
    expect((e as RostergateError).code).toBe('SOURCE_BAD_PAGE');
    expect((e as Error).message).toMatch(/^source src, resource users: malformed JSON page/);
    expect((e as Error).message).not.toContain('Ada');
  });
});
