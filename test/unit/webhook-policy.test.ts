import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { afterAttempt } from '../../src/feeds/webhooks.ts';
import { checkEndpoint, isNonPublicAddress, newWebhookSecret, publicOnlyLookup, sign } from '../../src/privacy/webhook-endpoints.ts';
import { checkEventTypes, EVENT_TYPES, eventType, eventTypesOfRecordTypes, recordTypesOf, subscribed } from '../../src/model/event-types.ts';

describe('webhook endpoint policy', () => {
  const strict = { allowHttp: false, allowPrivateNetworks: false };
  it('accepts only https on public addresses by default', async () => {
    await expect(checkEndpoint('http://203.0.113.7/hook', strict)).rejects.toThrow(/must use https/);
    for (const u of ['https://127.0.0.1/h', 'https://10.1.2.3/h', 'https://192.168.0.9/h', 'https://172.20.0.1/h', 'https://[::1]/h', 'https://169.254.169.254/latest', 'https://[fd00::1]/h', 'https://100.64.0.1/h']) {
      await expect(checkEndpoint(u, strict), u).rejects.toThrow(/loopback or private address/);
    }
    await expect(checkEndpoint('https://user:pw@203.0.113.7/h', strict)).rejects.toThrow(/credentials/);
    await expect(checkEndpoint('https://203.0.113.7/hook', strict)).resolves.toBeInstanceOf(URL);
  });

  it('allows loopback and http only when the config says so', async () => {
    await expect(checkEndpoint('http://127.0.0.1:9/h', { allowHttp: true, allowPrivateNetworks: true })).resolves.toBeInstanceOf(URL);
    expect(isNonPublicAddress('8.8.8.8')).toBe(false);
    expect(isNonPublicAddress('::ffff:10.0.0.1')).toBe(true);
  });

  it('refuses IPv6 forms that carry a loopback or private IPv4 address, however they are written', async () => {
    // The URL parser writes [::ffff:127.0.0.1] as [::ffff:7f00:1]; a connection to either reaches 127.0.0.1.
    for (const u of ['https://[::ffff:127.0.0.1]/h', 'https://[::ffff:7f00:1]/h', 'https://[0:0:0:0:0:ffff:a00:1]/h', 'https://[::127.0.0.1]/h',
      'https://[64:ff9b::7f00:1]/h', 'https://[64:ff9b::a9fe:a9fe]/h', 'https://[2002:c0a8:1::1]/h', 'https://[fec0::1]/h', 'https://[febf::1]/h', 'https://[::]/h']) {
      await expect(checkEndpoint(u, strict), u).rejects.toThrow(/loopback or private address/);
    }
    for (const ip of ['::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '2002:808:808::1', '2606:4700:4700::1111', '2001:4860:4860::8888']) {
      expect(isNonPublicAddress(ip), ip).toBe(false);
    }
    for (const ip of ['::ffff:c0a8:101', '::ffff:169.254.169.254', 'fe80::1%eth0', 'ff02::1', 'fd12:3456::1', '100::1', '198.18.0.1', '192.0.0.8', 'not-an-ip']) {
      expect(isNonPublicAddress(ip), ip).toBe(true);
    }
  });
});

describe('delivery connections', () => {
  it('refuse a host name that resolves to a loopback or private address at connect time', async () => {
    const lookup = publicOnlyLookup();
    for (const all of [true, false]) {
      const err = await new Promise<NodeJS.ErrnoException | null>((r) => lookup('localhost', { all }, (e) => r(e)));
      expect(err?.code).toBe('ERR_WEBHOOK_NON_PUBLIC_ADDRESS');
      expect(err?.message).toMatch(/webhook host localhost resolves to a non-public address \((127\.0\.0\.1|::1)\)/);
    }
  });
});

describe('what follows a delivery attempt', () => {
  const cfg = { maxAttempts: 4, retrySeconds: [5, 30, 120] };
  it('2xx is delivered; 410 Gone is a dead letter at once', () => {
    expect(afterAttempt({ status: 204 }, 1, cfg)).toEqual({ status: 'delivered' });
    expect(afterAttempt({ status: 410 }, 1, cfg)).toEqual({ status: 'dead' });
  });

  it('failures wait the configured time for their attempt, jittered by ±20%, the last wait repeating', () => {
    expect(afterAttempt({ status: 500 }, 1, cfg, () => 0.5)).toEqual({ status: 'pending', retryInMs: 5000 });
    expect(afterAttempt({ status: null }, 2, cfg, () => 0)).toEqual({ status: 'pending', retryInMs: 24_000 });
    expect(afterAttempt({ status: 503 }, 3, cfg, () => 1)).toEqual({ status: 'pending', retryInMs: 144_000 });
    const waits = Array.from({ length: 200 }, () => (afterAttempt({ status: 500 }, 1, cfg) as { retryInMs: number }).retryInMs);
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(4000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(6000);
    expect(new Set(waits).size).toBeGreaterThan(20);
  });

  it('after maxAttempts the delivery is a dead letter', () => {
    expect(afterAttempt({ status: 500 }, 4, cfg)).toEqual({ status: 'dead' });
  });

  it('honours a longer Retry-After (seconds or HTTP date), capped at the longest configured wait', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(afterAttempt({ status: 429, retryAfter: '60' }, 1, cfg, () => 0.5, now)).toEqual({ status: 'pending', retryInMs: 60_000 });
    expect(afterAttempt({ status: 503, retryAfter: 'Thu, 01 Jan 2026 00:01:30 GMT' }, 1, cfg, () => 0.5, now)).toEqual({ status: 'pending', retryInMs: 90_000 });
    expect(afterAttempt({ status: 503, retryAfter: '86400' }, 1, cfg, () => 0.5, now)).toEqual({ status: 'pending', retryInMs: 120_000 });
    expect(afterAttempt({ status: 503, retryAfter: '1' }, 1, cfg, () => 0.5, now)).toEqual({ status: 'pending', retryInMs: 5000 });
    expect(afterAttempt({ status: 503, retryAfter: 'soon' }, 1, cfg, () => 0.5, now)).toEqual({ status: 'pending', retryInMs: 5000 });
  });
});

describe('Standard Webhooks signature', () => {
  it('is v1, base64 HMAC-SHA256 of "id.timestamp.body" keyed by the decoded whsec_ secret', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const sig = sign(secret, 'msg_1', 1700000000, '{"a":1}');
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update('msg_1.1700000000.{"a":1}').digest('base64');
    expect(sig).toBe(`v1,${expected}`);
  });

  it('matches the Standard Webhooks reference libraries’ test vector', () => {
    // From the spec's reference libraries (standard-webhooks/standard-webhooks, "sign function works").
    expect(sign('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'))
      .toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});

describe('webhook event types', () => {
  it('are <record>.<operation> for every record type the feed has, and a subscription matches exact names and wildcards', () => {
    // Three operations per record type, and the erasure notice (sent by `rostergate erase` only).
    expect(EVENT_TYPES).toHaveLength(7 * 3 + 1);
    expect(EVENT_TYPES.at(-1)).toBe('person.erased');
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['person.created', 'person.updated', 'person.deleted', 'class.deleted', 'academic_session.updated']));
    expect(eventType('ACADEMIC_SESSION', 'CREATED')).toBe('academic_session.created');
    const received = (events: string[]) => EVENT_TYPES.filter((t) => subscribed(events, t));
    expect(received(['person.deleted'])).toEqual(['person.deleted']);
    expect(received(['person.*'])).toEqual(['person.created', 'person.updated', 'person.deleted', 'person.erased']);
    expect(received(['person.erased'])).toEqual(['person.erased']);
    expect(received(['*.deleted'])).toHaveLength(7);
    expect(received(['*.deleted']).every((t) => t.endsWith('.deleted'))).toBe(true);
    expect(received([])).toEqual(EVENT_TYPES);
    expect(received(['*.*'])).toEqual(EVENT_TYPES);
  });

  it('narrow the feed a subscription reads to the record types it can receive', () => {
    expect(recordTypesOf(['person.deleted', 'class.*'])).toEqual(['PERSON', 'CLASS']);
    expect(recordTypesOf(['*.deleted'])).toBeUndefined();
    expect(recordTypesOf([])).toBeUndefined();
    expect(eventTypesOfRecordTypes(['PERSON', 'ACADEMIC_SESSION'])).toEqual(['person.*', 'academic_session.*']);
  });

  it('refuse an unknown name, naming it and what is accepted', () => {
    expect(checkEventTypes(['person.deleted', 'class.*', '*.updated', 'person.deleted'])).toEqual(['person.deleted', 'class.*', '*.updated']);
    expect(checkEventTypes(['person.erased'])).toEqual(['person.erased']);
    for (const bad of ['person.removed', 'people.deleted', 'Person.deleted', 'person', 'person.deleted.x', 'pers*.deleted', '']) {
      expect(() => checkEventTypes([bad]), bad).toThrow(`unknown event type ${JSON.stringify(bad)}: an event type is <record>.<operation> with record one of organization, academic_session, course, person, class, enrollment, guardianship and operation one of created, updated, deleted; wildcards: "person.*", "*.deleted"; and person.erased (an erasure on request)`);
    }
    expect(() => checkEventTypes(['person.removed', 'class.gone'])).toThrow(/^unknown event types "person.removed", "class.gone"/);
  });
});
