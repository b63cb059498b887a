/**
 * Signed webhooks to a receiver on loopback: verifiable deliveries filtered by purpose, retries
 * with backoff, dead letters and their retry, replay, and a hanging consumer that never blocks a sync.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';
import { createLogger } from '../../src/log.ts';
import { serveStore } from '../../src/runtime.ts';

type Received = { headers: IncomingMessage['headers']; body: string; json: any; path?: string };

/**
 * A consumer written from the Standard Webhooks spec, independent of the gateway's code: the
 * timestamp within the spec's 5-minute tolerance (so a retry must be signed afresh), then the HMAC.
 */
function verify(secret: string, h: IncomingMessage['headers'], body: string): boolean {
  if (!/^\d+$/.test(String(h['webhook-timestamp'])) || Math.abs(Date.now() / 1000 - Number(h['webhook-timestamp'])) > 300) return false;
  const key = Buffer.from(secret.replace('whsec_', ''), 'base64');
  const expected = createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest();
  return String(h['webhook-signature']).split(' ').some((s) => {
    const [v, sig] = s.split(',');
    const got = Buffer.from(sig ?? '', 'base64');
    return v === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

let g: PrivateGateway;
let receiver: Server;
let url: string;
/** Deliveries answered 2xx. */
const received: Received[] = [];
/** Every request, whatever the answer. */
const attempts: Received[] = [];
let behaviour: 'ok' | 'fail' | 'hang' | 'trickle' = 'ok';
/** Requests to a path answered 503 before it answers as `behaviour` says. */
const failFirst = new Map<string, number>();
let dispatcher: WebhookDispatcher;

describe.each(storeKinds())('on %s', (kind) => {
beforeAll(async () => {
  received.length = 0;
  attempts.length = 0;
  behaviour = 'ok';
  g = await privateGateway({ students: 30, teachers: 3, classes: 4, schools: 1 }, undefined, {
    config: { webhooks: { allowHttp: true, allowPrivateNetworks: true, maxAttempts: 3, retrySeconds: [0], timeoutMs: 300 } },
    store: kind,
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      attempts.push({ headers: req.headers, body, json: JSON.parse(body), path: req.url });
      const failing = failFirst.get(req.url ?? '');
      if (failing) {
        failFirst.set(req.url!, failing - 1);
        res.writeHead(503).end();
        return;
      }
      if (behaviour === 'hang') return; // never answers
      if (behaviour === 'trickle') {
        // Answers 200 at once, then sends its body a byte at a time, for ever.
        received.push({ headers: req.headers, body, json: JSON.parse(body), path: req.url });
        res.writeHead(200, { 'content-type': 'text/plain' });
        const t = setInterval(() => res.write('.'), 50);
        res.on('close', () => clearInterval(t));
        return;
      }
      if (behaviour === 'fail') {
        res.writeHead(500).end();
        return;
      }
      received.push({ headers: req.headers, body, json: JSON.parse(body), path: req.url });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  dispatcher = new WebhookDispatcher(g.store, g.privacy, new Map(), g.config.webhooks, createLogger({ level: 'silent' }));
});
afterAll(async () => {
  await dispatcher?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
  await g?.close();
});

async function create(client: string) {
  const r = await g.gql('admin-demo', `mutation($c: String!, $u: String!) { createWebhook(client: $c, url: $u) { secret webhook { id client url } } }`, { c: client, u: url });
  expect(r.body.errors).toBeUndefined();
  return r.body.data.createWebhook as { secret: string; webhook: { id: string } };
}

describe('webhooks', () => {
  let lms: { secret: string; webhook: { id: string } };

  it('only admin clients can manage webhooks', async () => {
    const r = await g.gql('lms-demo', `mutation { deleteWebhook(id: "x") }`);
    expect(r.body.errors![0]).toMatchObject({ extensions: { code: 'OPERATION_NOT_ALLOWED' } });
    expect(r.body.errors![0].message).toMatch(/not configured to execute mutation operation: this client's purpose has no such operations/);
    const q = await g.gql('lms-demo', `{ webhooks { id } }`);
    expect(q.body.errors![0].message).toMatch(/Cannot query field "webhooks"/);
  });

  it('delivers signed, verifiable change events filtered by the client’s purpose', async () => {
    lms = await create('lms-demo');
    const an = await create('analytics-demo');
    const student = g.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
    g.dataset.upsert('person', student.key, { givenName: 'Océane' });
    await g.resync();
    await dispatcher.tick();
    const forLms = received.filter((r) => r.json.data.record?.givenName === 'Océane');
    expect(forLms).toHaveLength(1);
    expect(forLms[0]!.json.type).toBe('person.updated');
    expect(forLms[0]!.json.data.fields).toEqual(['givenName']);
    expect(verify(lms.secret, forLms[0]!.headers, forLms[0]!.body)).toBe(true);
    expect(verify(an.secret, forLms[0]!.headers, forLms[0]!.body)).toBe(false);
    // A name change is not an event for analytics: nothing it receives changed.
    expect(received.filter((r) => verify(an.secret, r.headers, r.body))).toHaveLength(0);
    // A birth date moved to another year is: analytics gets the person under its pseudonym, with
    // the birth year and age band it receives and nothing it does not.
    const demo = g.dataset.list('demographics').find((d) => d.key === student.key)!;
    const year = Number(String(demo.data.birthDate).slice(0, 4));
    g.dataset.upsert('demographics', demo.key, { birthDate: `${year - 3}-06-15` });
    await g.resync();
    await dispatcher.tick();
    const forAn = received.filter((r) => verify(an.secret, r.headers, r.body));
    expect(forAn).toHaveLength(1);
    expect(forAn[0]!.json).toMatchObject({ type: 'person.updated', data: { op: 'UPDATED', type: 'PERSON' } });
    expect(forAn[0]!.json.data.fields).toContain('demographics.birthYear');
    const rec = forAn[0]!.json.data.record;
    expect(rec.__typename).toBe('Person');
    expect(rec.id).toMatch(/^p1_/);
    expect(rec.demographics.birthYear).toBe(year - 3);
    expect(Object.keys(rec.demographics).sort()).toEqual(['ageBand', 'birthYear']);
    for (const denied of ['givenName', 'familyName', 'email', 'sisId', 'username', 'phone']) expect(rec, denied).not.toHaveProperty(denied);
    expect(forAn[0]!.body).not.toContain(String(student.data.givenName));
    expect(forAn[0]!.body).not.toContain(String(student.data.sisId));
    // The LMS got the same change with the real id and no demographics it is denied.
    const lmsSide = received.filter((r) => verify(lms.secret, r.headers, r.body) && r.json.data.fields.includes('demographics.birthDate'));
    expect(lmsSide).toHaveLength(1);
    expect(lmsSide[0]!.json.data.record.id).not.toMatch(/^p1_/);
    await g.gql('admin-demo', `mutation($id: ID!) { deleteWebhook(id: $id) }`, { id: an.webhook.id });
  });

  it('audits each round of deliveries with the rendering query\'s hash, the fields it carries by category and the people, and ledgers them', async () => {
    const before = (await g.store.auditEntries({})).length;
    const student = g.dataset.list('person').filter((p) => p.data.roles.includes('student'))[1]!;
    g.dataset.upsert('person', student.key, { familyName: 'Quennell' });
    await g.resync();
    await dispatcher.tick();
    expect(received.filter((r) => r.json.data.record?.familyName === 'Quennell')).toHaveLength(1);
    const entries = (await g.store.auditEntries({})).slice(before).filter((e) => e.kind === 'webhook');
    expect(entries).toHaveLength(1);
    const e = entries[0]!;
    expect(e).toMatchObject({ client: 'lms-demo', purpose: 'roster-sync', people: 1 });
    expect(e.operationHash).toMatch(/^[0-9a-f]{32}$/);
    // What the payloads can carry, as the purpose's schema classifies it: names yes, special categories never.
    expect(e.fields).toEqual(expect.arrayContaining(['Person.givenName', 'Person.familyName', 'Person.email', 'Demographics.birthDate']));
    expect(e.fields.filter((f) => ['Demographics.iep', 'Demographics.freeReducedLunch', 'Person.photoUrl'].includes(f))).toEqual([]);
    expect(e.categories.DIRECT).toBeGreaterThan(0);
    expect(e.categories.SPECIAL).toBeUndefined();
    const who = (await g.gql('admin-demo', `{ people(first: 1000) { edges { node { id familyName } } } }`)).body.data.people.edges.find((x: any) => x.node.familyName === 'Quennell').node.id;
    expect((await g.store.disclosuresOf(who)).map((d) => d.client)).toContain('lms-demo');
  });

  it('retries failed deliveries after a jittered backoff, with the same webhook-id and a valid signature each time', async () => {
    // Waits of 60 s (±20%): a tick before the wait is over does not retry.
    const patient = new WebhookDispatcher(g.store, g.privacy, new Map(), { ...g.config.webhooks, retrySeconds: [60] }, createLogger({ level: 'silent' }));
    behaviour = 'fail';
    g.dataset.upsert('person', g.dataset.list('person')[5]!.key, { familyName: 'Retry-Test' });
    await g.resync();
    const t0 = new Date();
    await patient.tick(t0);
    const tries = () => attempts.filter((r) => r.json.data.record?.familyName === 'Retry-Test');
    expect(tries()).toHaveLength(1);
    const [pending] = await g.store.webhooks.deliveries(lms.webhook.id, 'pending', 1);
    const wait = Date.parse(pending!.nextAttemptAt) - t0.getTime();
    expect(wait).toBeGreaterThanOrEqual(48_000);
    expect(wait).toBeLessThanOrEqual(72_000);
    await patient.tick(new Date(t0.getTime() + 47_000));
    expect(tries()).toHaveLength(1);
    behaviour = 'ok';
    await patient.tick(new Date(t0.getTime() + 73_000));
    await patient.stop();
    expect(tries()).toHaveLength(2);
    const [first, second] = tries();
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(second!.body).toBe(first!.body);
    for (const t of tries()) expect(verify(lms.secret, t.headers, t.body)).toBe(true);
    expect(received.filter((r) => r.json.data.record?.familyName === 'Retry-Test')).toHaveLength(1);
    const d = await g.store.webhooks.deliveries(lms.webhook.id, 'delivered', 1);
    expect(d[0]).toMatchObject({ attempts: 2, lastStatus: 204, msgId: first!.headers['webhook-id'] });
  });

  it('turns a delivery that fails every retry into a dead letter, moves on, and can retry it', async () => {
    behaviour = 'fail';
    g.dataset.upsert('person', g.dataset.list('person')[6]!.key, { familyName: 'Dead-Letter' });
    await g.resync();
    for (let i = 0; i < 3; i++) await dispatcher.tick();
    const dead = await g.store.webhooks.deliveries(lms.webhook.id, 'dead');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.lastStatus).toBe(500);
    const q = await g.gql('admin-demo', `{ webhooks { id dead deliveries(status: DEAD) { eventType attempts lastStatus } } }`);
    expect(q.body.data.webhooks[0]).toMatchObject({ dead: 1, deliveries: [{ eventType: 'person.updated', attempts: 3, lastStatus: 500 }] });
    behaviour = 'ok';
    const r = await g.gql('admin-demo', `mutation($id: ID!) { retryDeadLetters(id: $id) }`, { id: lms.webhook.id });
    expect(r.body.data.retryDeadLetters).toBe(1);
    await dispatcher.tick();
    expect(received.filter((x) => x.json.data.record?.familyName === 'Dead-Letter')).toHaveLength(1);
  });

  it('a consumer that hangs never blocks a sync, and times out', async () => {
    behaviour = 'hang';
    g.dataset.upsert('person', g.dataset.list('person')[7]!.key, { familyName: 'Hang-Test' });
    await g.resync();
    // A dispatcher that would wait a minute: the sync completes while its request still hangs.
    const slow = new WebhookDispatcher(g.store, g.privacy, new Map(), { ...g.config.webhooks, timeoutMs: 60_000 }, createLogger({ level: 'silent' }));
    let tickDone = false;
    const before = attempts.length;
    const tick = slow.tick().then(() => (tickDone = true));
    await vi.waitFor(() => expect(attempts.length).toBeGreaterThan(before), { timeout: 10_000 });
    g.dataset.upsert('person', g.dataset.list('person')[8]!.key, { familyName: 'During-Hang' });
    const s = await g.resync();
    expect(s.status).toBe('complete');
    expect(s.counters.updated).toBeGreaterThan(0);
    expect(tickDone).toBe(false);
    receiver.closeAllConnections();
    await tick;
    await slow.stop();
    // With the configured timeout (300 ms) a hanging consumer is a failed attempt, retried later.
    await dispatcher.tick();
    const pending = await g.store.webhooks.deliveries(lms.webhook.id, 'pending');
    expect(pending.some((p) => p.lastError === 'UND_ERR_HEADERS_TIMEOUT')).toBe(true);
    behaviour = 'ok';
    await dispatcher.tick();
    await dispatcher.tick();
    expect(received.some((x) => x.json.data.record?.familyName === 'Hang-Test')).toBe(true);
    expect(received.some((x) => x.json.data.record?.familyName === 'During-Hang')).toBe(true);
  });

  it('a consumer that answers 2xx and then trickles its body does not hold the dispatcher', async () => {
    behaviour = 'trickle';
    g.dataset.upsert('person', g.dataset.list('person')[12]!.key, { familyName: 'Trickle-Test' });
    await g.resync();
    let done = false;
    const tick = dispatcher.tick().then(() => (done = true));
    // timeoutMs is 300: the tick ends within a few of them, the body unread.
    await vi.waitFor(() => expect(done).toBe(true), { timeout: 5_000, interval: 50 });
    await tick;
    behaviour = 'ok';
    receiver.closeAllConnections();
    const [d] = (await g.store.webhooks.deliveries(lms.webhook.id, undefined, 500)).filter((x) => x.payload.includes('Trickle-Test'));
    expect(d).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 200 });
  });

  it('two dispatchers (two gateway replicas) queue each event once', async () => {
    const other = new WebhookDispatcher(g.store, g.privacy, new Map(), g.config.webhooks, createLogger({ level: 'silent' }));
    g.dataset.upsert('person', g.dataset.list('person')[9]!.key, { familyName: 'Two-Replicas' });
    await g.resync();
    await Promise.all([dispatcher.tick(), other.tick()]);
    await Promise.all([dispatcher.tick(), other.tick()]);
    await other.stop();
    const got = received.filter((r) => r.json.data.record?.familyName === 'Two-Replicas');
    expect(got.length).toBeGreaterThanOrEqual(1);
    // At least once: a delivery both happen to send goes out under one webhook-id.
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    const queued = (await g.store.webhooks.deliveries(lms.webhook.id, undefined, 500)).filter((d) => d.payload.includes('Two-Replicas'));
    expect(queued).toHaveLength(1);
  });

  it('replays from the change log', async () => {
    const before = received.length;
    const r = await g.gql('admin-demo', `mutation($id: ID!) { replayWebhook(id: $id) { id } }`, { id: lms.webhook.id });
    expect(r.body.errors).toBeUndefined();
    await dispatcher.tick();
    await dispatcher.tick();
    expect(received.length - before).toBeGreaterThan(50);
    expect(received.slice(before).some((x) => x.json.type === 'class.created')).toBe(true);
  });

  it('replays from a point in time: the events since then, nothing older', async () => {
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    g.dataset.upsert('person', g.dataset.list('person')[11]!.key, { familyName: 'Replay-Since' });
    await g.resync();
    await dispatcher.tick();
    const mark = received.length;
    const r = await g.gql('admin-demo', `mutation($id: ID!, $s: DateTime) { replayWebhook(id: $id, since: $s) { id } }`, { id: lms.webhook.id, s: since });
    expect(r.body.errors).toBeUndefined();
    await dispatcher.tick();
    const again = received.slice(mark).filter((x) => verify(lms.secret, x.headers, x.body));
    expect(again.map((x) => x.json.data.record?.familyName)).toEqual(['Replay-Since']);
  });

  it('a subscription to person.deleted receives deletions of people and nothing else', async () => {
    const r = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "lms-demo", url: $u, events: ["person.deleted"]) { secret webhook { id events } } }`, { u: url });
    expect(r.body.errors).toBeUndefined();
    const sub = r.body.data.createWebhook as { secret: string; webhook: { id: string; events: string[] } };
    await dispatcher.tick();
    expect(sub.webhook.events).toEqual(['person.deleted']);
    const ds = g.dataset;
    // A person and a class updated, and a person deleted with their enrollments.
    const people = ds.list('person');
    ds.upsert('person', people[people.length - 2]!.key, { familyName: 'Only-Updated' });
    ds.upsert('class', ds.list('class').at(-1)!.key, { title: 'Renamed class' });
    const leaver = people.at(-1)!;
    for (const e of ds.list('enrollment').filter((x) => x.data.personKey === leaver.key)) ds.remove('enrollment', e.key);
    for (const gd of ds.list('guardianship').filter((x) => x.data.studentKey === leaver.key || x.data.guardianKey === leaver.key)) ds.remove('guardianship', gd.key);
    ds.remove('person', leaver.key);
    const before = received.length;
    await g.resync();
    await dispatcher.tick();
    const all = received.slice(before);
    const mine = all.filter((x) => verify(sub.secret, x.headers, x.body));
    // The all-events subscription saw the rest, so there was more to filter out.
    expect(all.filter((x) => verify(lms.secret, x.headers, x.body)).map((x) => x.json.type)).toEqual(expect.arrayContaining(['person.updated', 'class.updated', 'enrollment.deleted', 'person.deleted']));
    expect(mine.map((x) => x.json.type)).toEqual(['person.deleted']);
    expect(mine[0]!.json.data.record).toMatchObject({ __typename: 'Person', givenName: leaver.data.givenName });
    const d = await g.store.webhooks.deliveries(sub.webhook.id, undefined, 500);
    expect(d.map((x) => x.eventType)).toEqual(['person.deleted']);
    await g.gql('admin-demo', `mutation($id: ID!) { deleteWebhook(id: $id) }`, { id: sub.webhook.id });
  });

  it('event types are checked when subscribing: an unknown name is refused, naming it', async () => {
    const bad = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "lms-demo", url: $u, events: ["person.deleted", "people.removed"]) { secret } }`, { u: url });
    expect(bad.body.errors![0].extensions.code).toBe('BAD_USER_INPUT');
    expect(bad.body.errors![0].message).toMatch(/^unknown event type "people\.removed": an event type is <record>\.<operation> with record one of organization, .*wildcards: "person\.\*", "\*\.deleted"; and person\.erased \(an erasure on request\)$/);
    const both = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "lms-demo", url: $u, events: ["person.*"], types: [CLASS]) { secret } }`, { u: url });
    expect(both.body.errors![0].message).toMatch(/either events or types/);
    // The record-type shorthand is stored as event types.
    const short = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "lms-demo", url: $u, types: [CLASS, ACADEMIC_SESSION]) { webhook { id events } } }`, { u: url });
    expect(short.body.data.createWebhook.webhook.events).toEqual(['class.*', 'academic_session.*']);
    await g.gql('admin-demo', `mutation($id: ID!) { deleteWebhook(id: $id) }`, { id: short.body.data.createWebhook.webhook.id });
    const list = await g.gql('admin-demo', `{ webhooks { id events } }`);
    expect(list.body.data.webhooks).toEqual([{ id: lms.webhook.id, events: [] }]);
  });

  it('a served gateway delivers on its own timer, retrying a failing consumer until it answers', async () => {
    // The gateway as `serve` runs it: the dispatcher polls by itself (here every 50 ms).
    const served = await serveStore(g.store, { ...g.config, webhooks: { ...g.config.webhooks, pollMs: 50 } }, createLogger({ level: 'silent' }), { port: 0, privacy: g.privacy });
    try {
      const path = '/hooks-timer';
      failFirst.set(path, 2);
      const r = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "lms-demo", url: $u, events: ["person.updated"]) { secret webhook { id } } }`, { u: `${url}-timer` });
      expect(r.body.errors).toBeUndefined();
      const sub = r.body.data.createWebhook as { secret: string; webhook: { id: string } };
      g.dataset.upsert('person', g.dataset.list('person')[10]!.key, { familyName: 'On-Its-Own' });
      await g.resync();
      const mine = (list: Received[]) => list.filter((x) => x.path === path && x.json.data.record?.familyName === 'On-Its-Own');
      await vi.waitFor(() => expect(mine(received)).toHaveLength(1), { timeout: 15_000, interval: 50 });
      // Two 503s, then delivered: three requests, one webhook-id, each signed for this subscription.
      const tries = mine(attempts);
      expect(tries).toHaveLength(3);
      expect(new Set(tries.map((t) => t.headers['webhook-id'])).size).toBe(1);
      for (const t of tries) expect(verify(sub.secret, t.headers, t.body)).toBe(true);
      // Recorded once the answer is in, just after the receiver saw the request.
      await vi.waitFor(async () => expect((await g.store.webhooks.deliveries(sub.webhook.id, 'delivered', 1))[0]).toMatchObject({ attempts: 3, lastStatus: 204 }), { timeout: 5_000, interval: 50 });
      await g.gql('admin-demo', `mutation($id: ID!) { deleteWebhook(id: $id) }`, { id: sub.webhook.id });
    } finally {
      await served.close();
    }
  });
});
});
