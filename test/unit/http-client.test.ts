/** The shared HTTP layer with undici's MockAgent and the network disabled. */
import { describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';
import { HttpClient, decideRetry, serverRequestedWait } from '../../connectors/http.ts';
import { RostergateError } from '../../src/errors.ts';
import { describeGoogleError, isGoogleRateLimit } from '../../connectors/google-classroom/auth.ts';

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

  it('a 403 the vendor marks as a rate limit is retried like a 429; any other 403 fails at once', () => {
    expect(decideRetry({ status: 403, rateLimited: true, attempt: 1, opts, random: 0.5, now: 0 })).toEqual({ action: 'retry', delayMs: 75 });
    expect(decideRetry({ status: 403, rateLimited: true, attempt: 3, opts, random: 0.5, now: 0 })).toEqual({ action: 'retry', delayMs: 300 });
    expect(decideRetry({ status: 403, rateLimited: true, attempt: 1, headers: { 'retry-after': '2' }, opts, random: 0, now: 0 })).toEqual({ action: 'retry', delayMs: 2000 });
    expect(decideRetry({ status: 403, rateLimited: true, attempt: 4, opts, random: 0.5, now: 0 })).toEqual({ action: 'fail', code: 'SOURCE_RATE_LIMITED', retryable: true });
    expect(decideRetry({ status: 403, rateLimited: false, attempt: 1, opts, random: 0, now: 0 })).toEqual({ action: 'fail', code: 'SOURCE_AUTH', retryable: false });
    expect(decideRetry({ status: 403, attempt: 1, opts, random: 0, now: 0 })).toEqual({ action: 'fail', code: 'SOURCE_AUTH', retryable: false });
  });
});

/** Google's error bodies as its APIs send them (synthetic messages). */
const google = {
  legacy: (reason: string) => JSON.stringify({ error: { code: 403, message: 'Quota reached.', errors: [{ domain: 'usageLimits', reason, message: 'Quota reached.' }] } }),
  exhausted: JSON.stringify({ error: { code: 403, message: 'Quota exceeded for quota metric.', status: 'RESOURCE_EXHAUSTED' } }),
  errorInfo: (reason: string, status = 'PERMISSION_DENIED') => JSON.stringify({
    error: {
      code: 403, message: 'Quota exceeded.', status,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata: { service: 'classroom.googleapis.com' } }],
    },
  }),
  denied: JSON.stringify({ error: { code: 403, message: '@ClassroomApiDisabled The user is not permitted to access the Classroom API.', status: 'PERMISSION_DENIED' } }),
};

describe('Google rate limits sent as 403', () => {
  it('recognises rateLimitExceeded, userRateLimitExceeded, RESOURCE_EXHAUSTED and ErrorInfo RATE_LIMIT_EXCEEDED, nothing else', () => {
    for (const body of [google.legacy('rateLimitExceeded'), google.legacy('userRateLimitExceeded'), google.exhausted, google.errorInfo('RATE_LIMIT_EXCEEDED')]) {
      expect(isGoogleRateLimit(403, body), body).toBe(true);
    }
    // A permission, a daily or allocation quota (waiting minutes does not help), other statuses, no JSON.
    for (const [status, body] of [
      [403, google.denied],
      [403, google.legacy('dailyLimitExceeded')],
      [403, google.errorInfo('RESOURCE_QUOTA_EXCEEDED', 'RESOURCE_EXHAUSTED')],
      [403, google.legacy('insufficientPermissions')],
      [400, google.legacy('rateLimitExceeded')],
      [403, '<html>Forbidden</html>'],
      [403, '{"error":"access_denied"}'],
    ] as const) {
      expect(isGoogleRateLimit(status, body), body).toBe(false);
    }
  });

  it('describes one by its codes only', () => {
    expect(describeGoogleError(403, google.legacy('userRateLimitExceeded'))).toBe('userRateLimitExceeded');
    expect(describeGoogleError(403, google.errorInfo('RATE_LIMIT_EXCEEDED'))).toBe('PERMISSION_DENIED RATE_LIMIT_EXCEEDED');
    expect(describeGoogleError(403, JSON.stringify({ error: { errors: [{ reason: 'Ada Lovelace is over quota' }] } }))).toBeUndefined();
  });

  it('over a mocked network: backs off and recovers; a lasting one is SOURCE_RATE_LIMITED; a permission 403 fails on the first answer', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('https://classroom.example');
    pool.intercept({ path: '/v1/courses', method: 'GET' }).reply(403, google.legacy('userRateLimitExceeded')).times(2);
    pool.intercept({ path: '/v1/courses', method: 'GET' }).reply(200, '{"courses":[]}');
    const waits: number[] = [];
    const http = new HttpClient({ sourceId: 'classroom', dispatcher: agent, sleep: async (ms) => void waits.push(ms), random: () => 0.5, maxRetries: 3, baseDelayMs: 100 });
    http.setErrorDescriber(describeGoogleError);
    http.setRateLimitDetector(isGoogleRateLimit);
    expect(await http.json({ url: 'https://classroom.example/v1/courses', resource: 'courses' })).toEqual({ courses: [] });
    expect(waits).toEqual([75, 150]);

    pool.intercept({ path: '/v1/courses', method: 'GET' }).reply(403, google.errorInfo('RATE_LIMIT_EXCEEDED')).times(4);
    const lasting = await http.json({ url: 'https://classroom.example/v1/courses', resource: 'courses' }).catch((x: unknown) => x);
    expect((lasting as RostergateError).code).toBe('SOURCE_RATE_LIMITED');
    expect((lasting as RostergateError).retryable).toBe(true);
    expect((lasting as Error).message).toBe('source classroom, resource courses, HTTP 403: rate limited (403) after 4 attempts — PERMISSION_DENIED RATE_LIMIT_EXCEEDED');

    const before = http.requestCount;
    pool.intercept({ path: '/v1/courses', method: 'GET' }).reply(403, google.denied);
    const denied = await http.json({ url: 'https://classroom.example/v1/courses', resource: 'courses' }).catch((x: unknown) => x);
    expect(http.requestCount).toBe(before + 1);
    expect((denied as RostergateError).code).toBe('SOURCE_AUTH');
    expect((denied as Error).message).toMatch(/^source classroom, resource courses, HTTP 403: access denied \(403\): .* — PERMISSION_DENIED @ClassroomApiDisabled: /);
    expect((denied as Error).message).not.toContain('not permitted');
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

  it('an answer saying the window is spent (X-RateLimit-Remaining: 0) makes the next request wait for its reset, not for a 429', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    let now = 1_700_000_000_500;
    const reset = String(Math.ceil(now / 1000) + 7);
    const pool = agent.get('https://vendor.example');
    pool.intercept({ path: '/p', method: 'GET' }).reply(200, '{}', { headers: { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': reset } });
    pool.intercept({ path: '/p', method: 'GET' }).reply(200, '{}', { headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset } });
    pool.intercept({ path: '/p', method: 'GET' }).reply(200, '{}', { headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.ceil(now / 1000) + 3600) } });
    pool.intercept({ path: '/p', method: 'GET' }).reply(200, '{}').times(2);
    const waits: number[] = [];
    const http = new HttpClient({ sourceId: 's', dispatcher: agent, maxRetryAfterMs: 120_000, now: () => now, sleep: async (ms) => void (waits.push(ms), (now += ms)) });
    await http.json({ url: 'https://vendor.example/p' });
    await http.json({ url: 'https://vendor.example/p' });
    expect(waits).toEqual([]);
    // The window reopens at the announced Unix second, 7.5 s after the answer.
    await http.json({ url: 'https://vendor.example/p' });
    expect(waits).toEqual([7_500]);
    // A reset further off than the longest accepted wait is not waited for up front.
    await http.json({ url: 'https://vendor.example/p' });
    expect(waits).toEqual([7_500]);
    expect(http.requestCount).toBe(4);
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

describe('upstream limits: overall deadline and body size', () => {
  it('a body over http.maxBodyBytes is refused (declared or streamed), retried with backoff like a 5xx, and a page within the limit then succeeds', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('https://vendor.example');
    const big = JSON.stringify({ data: 'x'.repeat(2_000) });
    // One answer declares its length, one streams without it: both are cut off at the limit.
    pool.intercept({ path: '/users', method: 'GET' }).reply(200, big, { headers: { 'content-length': String(big.length) } });
    pool.intercept({ path: '/users', method: 'GET' }).reply(200, () => big);
    pool.intercept({ path: '/users', method: 'GET' }).reply(200, '{"data":[]}');
    const waits: number[] = [];
    const http = new HttpClient({ sourceId: 'vendor', dispatcher: agent, maxBodyBytes: 1024, maxRetries: 3, baseDelayMs: 100, random: () => 0.5, sleep: async (ms) => void waits.push(ms) });
    expect(await http.json({ url: 'https://vendor.example/users', resource: 'users' })).toEqual({ data: [] });
    expect(waits).toEqual([75, 150]);

    pool.intercept({ path: '/users', method: 'GET' }).reply(200, big).times(4);
    const e = (await http.json({ url: 'https://vendor.example/users', resource: 'users' }).catch((x: unknown) => x)) as RostergateError;
    expect(e.code).toBe('SOURCE_TOO_LARGE');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('source vendor, resource users: response body exceeded 1 KiB (limit http.maxBodyBytes) after 4 attempts');
  });

  it('the retry decision treats a passed deadline as a timeout and an oversized body as its own failure, both retried', () => {
    expect(decideRetry({ errorCode: 'deadline', attempt: 1, opts, random: 0.5, now: 0 })).toEqual({ action: 'retry', delayMs: 75 });
    expect(decideRetry({ errorCode: 'too_large', attempt: 1, opts, random: 0.5, now: 0 })).toEqual({ action: 'retry', delayMs: 75 });
    expect(decideRetry({ errorCode: 'deadline', attempt: 4, opts, random: 0, now: 0 })).toEqual({ action: 'fail', code: 'SOURCE_TIMEOUT', retryable: true });
    expect(decideRetry({ errorCode: 'too_large', attempt: 4, opts, random: 0, now: 0 })).toEqual({ action: 'fail', code: 'SOURCE_TOO_LARGE', retryable: true });
  });
});
