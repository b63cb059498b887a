/**
 * The audit log is append-only, so text a client chooses must not grow it without bound: an
 * operation name of 900 KB is stored as a short prefix and a hash of the whole. A flood of such
 * requests over HTTP grows the log by a small, fixed amount per entry, and the chain still verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { Agent, request } from 'undici';
import { AUDIT_TEXT_MAX, boundAuditText } from '../../src/privacy/audit.ts';
import { auditLogFor } from '../../src/graphql/privacy.ts';
import type { PostgresStore } from '../../src/store/postgres.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';

const BOUNDED = /^[A-Za-z0-9_:.() ?-]{0,40}…#sha256:[0-9a-f]{16}$/;
/** A GraphQL name of about 900 KB that does not compress (a repeated letter would, in PostgreSQL's TOAST). */
const hugeName = () => `Q${randomBytes(675_000).toString('base64url').replaceAll('-', '_')}`;

describe('bounded audit text', () => {
  it('keeps short plain names and the gateway\'s own operation texts as they are', () => {
    for (const t of ['RosterSync', 'extract:people:csv', 'identity link (person)', 'webhook:3 events', 'A'.repeat(AUDIT_TEXT_MAX), null]) expect(boundAuditText(t)).toBe(t);
  });

  it('stores long or unusual text as a sanitised prefix and a hash of the whole', () => {
    const long = 'A'.repeat(AUDIT_TEXT_MAX + 1);
    expect(boundAuditText(long)).toMatch(BOUNDED);
    expect(boundAuditText(long)!.startsWith('A'.repeat(40) + '…')).toBe(true);
    // Names that differ only past the prefix stay distinguishable.
    expect(boundAuditText(long + 'x')).not.toBe(boundAuditText(long + 'y'));
    const evil = boundAuditText('Op\n{"forged":true}\u001b[2J<script>')!;
    expect(evil).toMatch(BOUNDED);
    expect(evil).not.toMatch(/[\n\u001b<>{}"]/);
    expect(boundAuditText(hugeName())!.length).toBeLessThanOrEqual(65);
  });
});

describe.each(storeKinds())('an operation-name flood over HTTP, on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 }, undefined, { store: kind });
  }, 120_000);
  afterAll(() => g?.close());

  /** Bytes the audit log takes on disk: the SQLite file and its WAL, or PostgreSQL's table with its TOAST and indexes. */
  const auditBytes = async (): Promise<number> => {
    if (g.store.kind === 'sqlite') return [g.config.store, `${g.config.store}-wal`].reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
    const [r] = await (g.store as unknown as PostgresStore).rows<{ n: number }>(`SELECT pg_total_relation_size('audit_log')::bigint AS n`);
    return Number(r!.n);
  };

  it('200 requests with 900 KB operation names grow the log by a small bound per entry, and the chain verifies', async () => {
    const before = await auditBytes();
    const seqBefore = (await g.store.auditEntries({ afterSeq: 0, limit: 100_000 })).length;
    const agent = new Agent({ connections: 4 });
    const post = async (body: unknown) => {
      const r = await request(`${g.gw.url}/graphql`, {
        method: 'POST', dispatcher: agent, body: JSON.stringify(body),
        headers: { 'content-type': 'application/json', 'x-api-key': g.keys['analytics-demo']! },
      });
      await r.body.dump();
      return r.statusCode;
    };
    const requests = 200;
    let sent = 0;
    for (let i = 0; i < requests; i += 4) {
      // Half name an operation the document does not have (refused, still audited with the
      // requested name); half are documents whose operation itself carries the huge name.
      await Promise.all(
        [0, 1, 2, 3].map((j) =>
          (i + j) % 2 === 0
            ? post({ query: '{ schools { totalCount } }', operationName: hugeName() })
            : post({ query: `query ${hugeName()} { schools { totalCount } }` }),
        ),
      );
      sent += 4;
    }
    await agent.close();
    const entries = (await g.store.auditEntries({ afterSeq: 0, limit: 100_000 })).slice(seqBefore);
    expect(entries).toHaveLength(sent);
    for (const e of entries) {
      expect(e.operation).toMatch(BOUNDED);
      expect(JSON.stringify(e).length).toBeLessThan(1_000);
    }
    // Unbounded, the names alone would add 180 MB.
    const grown = (await auditBytes()) - before;
    expect(grown).toBeLessThan(requests * 25_000);
    const verified = await auditLogFor(g.store, g.privacy.keyring).verify();
    expect(verified.ok).toBe(true);
    expect(verified.entries).toBe(seqBefore + sent);
  }, 120_000);

  it('keeps no header a client sends (user agent, forwarding headers, variables carrying a URL)', async () => {
    const marker = `m${randomBytes(8).toString('hex')}`;
    const r = await request(`${g.gw.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', 'x-api-key': g.keys['analytics-demo']!,
        'user-agent': `${marker}-agent-${'u'.repeat(6_000)}`, 'x-forwarded-for': `${marker}-fwd`, referer: `https://${marker}.example/`,
      },
      body: JSON.stringify({ query: 'query Plain($u: String) { schools { totalCount } }', variables: { u: `https://${marker}.example/hook` } }),
    });
    await r.body.dump();
    const last = (await g.store.auditEntries({ afterSeq: 0, limit: 100_000 })).at(-1)!;
    expect(last.operation).toBe('Plain');
    expect(JSON.stringify(last)).not.toContain(marker);
    expect(JSON.stringify(last).length).toBeLessThan(1_000);
  });
});
