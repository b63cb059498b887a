/**
 * A purpose that receives only the generalised form of a quasi-identifier (birthYear, ageBand,
 * postalArea, gradeBand) learns nothing from a change of the exact value that keeps the coarse
 * one: no change-feed event and no webhook delivery. A change that moves the coarse value is one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';
import { createLogger } from '../../src/log.ts';

/** Analytics as in the demo, with the postal area allowed too: every generalised form, no exact one. */
const PURPOSES = {
  ...DEMO_PURPOSES,
  analytics: { ...DEMO_PURPOSES.analytics, fields: { ...DEMO_PURPOSES.analytics.fields, 'Demographics.postalArea': 'allow' } },
};

/**
 * Age band as the gateway defines it, worked out here rather than by the gateway's code: the age
 * reached in the current (UTC) year, from the birth year alone.
 */
function ageBandToday(birth: string): string {
  const age = new Date().getUTCFullYear() - Number(birth.slice(0, 4));
  return age >= 18 ? '18+' : age < 3 ? '0-2' : `${Math.floor(age / 3) * 3}-${Math.floor(age / 3) * 3 + 2}`;
}

interface Case {
  name: string;
  type: 'demographics' | 'person';
  from: Record<string, unknown>;
  to: Record<string, unknown>;
  /** The generalised fields whose value the change moves, as the feed names them. */
  moves: string[];
}

const Y = new Date().getUTCFullYear();
const birth = (name: string, from: string, to: string): Case => ({
  name, type: 'demographics', from: { birthDate: from }, to: { birthDate: to },
  moves: [
    ...(ageBandToday(from) !== ageBandToday(to) ? ['demographics.ageBand'] : []),
    ...(from.slice(0, 4) !== to.slice(0, 4) ? ['demographics.birthYear'] : []),
  ],
});
const CASES: Case[] = [
  // Ages 9 or 10 whatever the day: one band, one year.
  birth('birth date within its year and age band', `${Y - 10}-02-10`, `${Y - 10}-11-20`),
  birth('birth date into the next year, same age band', `${Y - 10}-12-31`, `${Y - 9}-01-01`),
  // 9 and 8 by date on every day but 31 December: a band computed from the full date would move
  // here, and next to birthYear narrow the birth date to days. From the year alone, nothing moves.
  birth('birth date where a band from the full date would cross, same year', `${Y - 9}-01-01`, `${Y - 9}-12-31`),
  birth('birth date across an age band, between years', `${Y - 9}-12-31`, `${Y - 8}-01-01`),
  birth('birth date three years earlier', `${Y - 10}-06-15`, `${Y - 13}-06-15`),
  { name: 'postal code within its area', type: 'demographics', from: { postalCode: '99901' }, to: { postalCode: '99955' }, moves: [] },
  { name: 'postal code into another area', type: 'demographics', from: { postalCode: '99901' }, to: { postalCode: '12345' }, moves: ['demographics.postalArea'] },
  { name: 'grade within its band', type: 'person', from: { grades: ['03'] }, to: { grades: ['05'] }, moves: [] },
  { name: 'grades added within the band', type: 'person', from: { grades: ['03'] }, to: { grades: ['03', '04'] }, moves: [] },
  { name: 'grade into another band', type: 'person', from: { grades: ['03'] }, to: { grades: ['07'] }, moves: ['gradeBand'] },
];

/** The exact field each case changes, as the LMS (which receives exact values) sees it. */
const exactField = (c: Case) => (c.type === 'person' ? Object.keys(c.to)[0]! : `demographics.${Object.keys(c.to)[0]}`);

it('the table covers, for each generalised field, a change that keeps it and one that moves it', () => {
  for (const f of ['demographics.birthYear', 'demographics.ageBand', 'demographics.postalArea', 'gradeBand']) {
    const source = f === 'gradeBand' ? 'grades' : f === 'demographics.postalArea' ? 'postalCode' : 'birthDate';
    const feeding = CASES.filter((c) => source in c.to);
    expect(feeding.some((c) => c.moves.includes(f)), `${f} moved`).toBe(true);
    expect(feeding.some((c) => !c.moves.includes(f)), `${f} kept`).toBe(true);
  }
});

describe.each(storeKinds())('generalised fields in the change feed and webhooks on %s', (kind) => {
  let g: PrivateGateway;
  let receiver: Server;
  let dispatcher: WebhookDispatcher;
  const delivered: any[] = [];

  beforeAll(async () => {
    g = await privateGateway({ students: 30, teachers: 3, classes: 4, schools: 1 }, undefined, {
      config: { purposes: PURPOSES, webhooks: { allowHttp: true, allowPrivateNetworks: true, maxAttempts: 3, retrySeconds: [0], timeoutMs: 2000 } },
      store: kind,
    });
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        delivered.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/analytics`;
    const r = await g.gql('admin-demo', `mutation($u: String!) { createWebhook(client: "analytics-demo", url: $u) { webhook { id } } }`, { u: url });
    expect(r.body.errors).toBeUndefined();
    dispatcher = new WebhookDispatcher(g.store, g.privacy, new Map(), g.config.webhooks, createLogger({ level: 'silent' }));
  });
  afterAll(async () => {
    await dispatcher?.stop();
    receiver?.close();
    await g?.close();
  });

  const head = async (client: string) => (await g.gql(client, `{ changesHead }`)).body.data.changesHead as string;
  const eventsAfter = async (client: string, after: string) => {
    const r = await g.gql(client, `query($after: Cursor) { changes(after: $after) { edges { node { op type fields } } } }`, { after });
    expect(r.body.errors).toBeUndefined();
    return r.body.data.changes.edges.map((e: any) => e.node);
  };

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const student = g.dataset.list('person').find((p) => p.data.roles.includes('student') && g.dataset.get('demographics', p.key))!;
    g.dataset.upsert(c.type, student.key, c.from as never);
    await g.resync();
    await dispatcher.tick();
    const [an, lms] = [await head('analytics-demo'), await head('lms-demo')];
    delivered.length = 0;

    g.dataset.upsert(c.type, student.key, c.to as never);
    await g.resync();
    await dispatcher.tick();

    // The change landed: the LMS, which receives the exact value, sees it.
    const forLms = await eventsAfter('lms-demo', lms);
    expect(forLms).toHaveLength(1);
    expect(forLms[0].fields).toContain(exactField(c));
    const expected = c.moves.length ? [{ op: 'UPDATED', type: 'PERSON', fields: c.moves }] : [];
    expect(await eventsAfter('analytics-demo', an)).toEqual(expected);
    expect(delivered.map((d) => ({ type: d.type, fields: d.data.fields }))).toEqual(expected.map((e) => ({ type: 'person.updated', fields: e.fields })));
  });
});
