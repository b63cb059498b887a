/**
 * Logs never carry personal data: the demo synced through every vendor sandbox and served over
 * HTTP, with every log line captured at debug level and searched for the district's names, emails,
 * person ids (SIS, state, vendor, gateway) and keys; and resolver, extract and webhook failures
 * whose messages quote personal values are logged by kind and place only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { createLogger } from '../../src/log.ts';
import { startDemo, type Demo } from '../../src/demo/demo.ts';
import { serveStore } from '../../src/runtime.ts';
import { startGateway, type RunningGateway } from '../../src/server/gateway.ts';
import { progressHooks } from '../../src/sync/progress.ts';
import { tempDir } from '../support/stores.ts';
import { privateGateway } from '../support/privacy.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';

function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } as never });
  return { log, lines };
}

/** Log lines holding something that identifies a person, with what was found. */
function personalDataIn(lines: string[], values: Set<string>, patterns: RegExp[]): string[] {
  const found: string[] = [];
  for (const line of lines) {
    for (const v of values) if (line.includes(v)) found.push(`${v} in ${line}`);
    for (const p of patterns) {
      const m = p.exec(line);
      if (m) found.push(`${m[0]} in ${line}`);
    }
  }
  return found;
}

describe('logs of the demo, from sync to queries', () => {
  let demo: Demo;
  let gw: RunningGateway;
  const { log, lines } = capture();
  const key = (client: string) => demo.keys.find((k) => k.client === client)!.key;
  const post = async (apiKey: string | undefined, query: string) => {
    const r = await request(`${gw.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
      body: JSON.stringify({ query }),
    });
    return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: { message: string }[] } };
  };

  beforeAll(async () => {
    const nonTty = Object.assign(Object.create(process.stderr), { isTTY: false });
    demo = await startDemo({ dataDir: tempDir(), district: { students: 60 }, log, hooks: progressHooks(log, nonTty) });
    gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, webhooks: false });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await demo?.close();
  });

  it('hold counts, sources and paths, and no name, email, person id or key', async () => {
    const nested = `{ schools { edges { node { name classes(first: 5) { edges { node { title
      enrollments(first: 5) { edges { node { role person { id givenName familyName email sisId } } } } } } } } } } }`;
    const lms = await post(key('lms-demo'), nested);
    expect(lms.status).toBe(200);
    const student = lms.body.data.schools.edges.flatMap((s: any) => s.node.classes.edges.flatMap((c: any) => c.node.enrollments.edges))[0].node.person;
    expect(student.email).toMatch(/@/);
    // Requests that fail in different ways, some carrying personal values in the query itself.
    expect((await post(key('analytics-demo'), `{ people { edges { node { email } } } }`)).status).toBe(400);
    expect((await post(undefined, nested)).status).toBe(401);
    expect((await post('rgk_not-a-key', nested)).status).toBe(401);
    expect((await post(key('lms-demo'), `{ person(id: "${student.id}") { givenName } }`)).status).toBe(200);
    const get = await request(`${gw.url}/graphql?query=${encodeURIComponent(`{ person(id: "${student.id}") { email } }`)}`, {
      headers: { 'x-api-key': key('lms-demo'), 'apollo-require-preflight': 'true' },
    });
    await get.body.dump();

    expect(lines.some((l) => l.includes('"msg":"sync started"'))).toBe(true);
    expect(lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(6);
    const people = demo.dataset.list('person').map((p) => p.data);
    const values = new Set<string>([
      ...people.flatMap((p) => [p.email, p.sisId, p.stateId, `${p.givenName} ${p.familyName}`]),
      ...people.map((p) => p.familyName).filter((f) => f.length >= 6),
      ...demo.keys.map((k) => k.key),
      student.id, student.email, student.givenName,
    ].filter((v): v is string => !!v));
    const patterns = [
      /\b(stu|tch|stf|adm|gdn)-\d{4,6}\b/, // the district SIS's keys
      /\b[0-9a-f]{24}\b/, // Clever ids
      /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/, // Graph / OneRoster ids
      /\b\d{21}\b/, // Google ids
      /\b(per|enr|gdn|dem)_[A-Za-z0-9_-]{10,}/, // gateway ids
      /\bp\d+_[A-Za-z0-9_-]{10,}/, // pseudonyms
    ];
    expect(personalDataIn(lines, values, patterns)).toEqual([]);
  });
});

describe('resolver failures in the log', () => {
  it('are logged by kind and place, never by a message that quotes a value', async () => {
    const { log, lines } = capture();
    const schema = makeExecutableSchema({
      typeDefs: `type Query { lookup: String  age: Int }`,
      resolvers: {
        Query: {
          lookup: () => {
            throw new Error('no match for Zoë Østergaard <zoe.ostergaard@students.rostergate-demo.example>');
          },
          // graphql's serialisation error quotes the value: Int cannot represent … "Zoë Østergaard"
          age: () => 'Zoë Østergaard',
        },
      },
    });
    const gw = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log });
    try {
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ lookup age }' }) });
      const body = (await r.body.json()) as { errors: { message: string }[] };
      expect(body.errors.map((e) => e.message)).toEqual(['internal error', 'internal error']);
    } finally {
      await gw.close();
    }
    const errors = lines.filter((l) => l.includes('"msg":"resolver error"')).map((l) => JSON.parse(l));
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e.err).toMatch(/Error$/);
      expect(e.at).toMatch(/:\d+:\d+/);
    }
    expect(lines.join('\n')).not.toMatch(/Zoë|Østergaard|zoe\.ostergaard/);
  });
});

describe('extract and webhook failures in the log', () => {
  it('are logged by kind and place, never by a message that quotes a value', async () => {
    const { log, lines } = capture();
    const g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 }, undefined, {
      config: { webhooks: { allowHttp: true, allowPrivateNetworks: true } },
    });
    const gw = await serveStore(g.store, g.config, log, { port: 0, privacy: g.privacy, webhooks: false });
    const quoting = () => {
      throw new Error('no match for Zoë Østergaard <zoe.ostergaard@students.rostergate-demo.example>');
    };
    try {
      // An extract whose store fails once the response has started.
      const list = g.store.list.bind(g.store);
      g.store.list = quoting;
      // The stream is cut off without its trailer (or before the headers reach the client).
      await request(`${gw.url}/extracts/people.csv`, { headers: { 'x-api-key': g.keys['analytics-demo']! } }).then((r) => r.body.text()).catch(() => undefined);
      g.store.list = list;
      await new Promise((ok) => setTimeout(ok, 50));
      const extract = lines.filter((l) => l.includes('"msg":"extract failed"')).map((l) => JSON.parse(l));
      expect(extract).toHaveLength(1);
      expect(extract[0]).toMatchObject({ err: 'STORE', client: 'analytics-demo', dataset: 'people' });

      // A webhook subscription that fails, and a dispatcher round that fails.
      const created = await g.gql('admin-demo', `mutation { createWebhook(client: "lms-demo", url: "http://127.0.0.1:9/h") { webhook { id } } }`);
      const id = created.body.data.createWebhook.webhook.id as string;
      const dispatcher = new WebhookDispatcher(g.store, g.privacy, new Map(), g.config.webhooks, log);
      const nextPending = g.store.webhooks.nextPending;
      g.store.webhooks.nextPending = quoting;
      await dispatcher.tick();
      g.store.webhooks.nextPending = nextPending;
      g.store.webhooks.list = quoting;
      dispatcher.start();
      await dispatcher.stop();
      const sub = lines.filter((l) => l.includes('"msg":"webhook subscription failed this round"')).map((l) => JSON.parse(l));
      expect(sub).toHaveLength(1);
      expect(sub[0]).toMatchObject({ webhook: id, err: 'Error' });
      expect(sub[0].at).toMatch(/:\d+:\d+/);
      const round = lines.filter((l) => l.includes('"msg":"webhook dispatcher tick failed"')).map((l) => JSON.parse(l));
      expect(round).toHaveLength(1);
      expect(round[0].err).toBe('Error');
    } finally {
      await gw.close();
      await g.close();
    }
    expect(lines.join('\n')).not.toMatch(/Zoë|Østergaard|zoe\.ostergaard/);
  });
});
