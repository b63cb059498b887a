/**
 * Reading OneRoster REST: each resource paged by limit/offset (X-Total-Count when sent). A full run
 * completes each resource; later runs ask only for `filter=dateLastModified>'<since>'`, where
 * `since` is when the previous run started (less an overlap for clock skew), and apply
 * `status: tobedeleted` records as deletions. Re-reading a record costs nothing downstream.
 */
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import type { EntityType, SourceRecord } from '../../src/model/records.ts';
import { RostergateError } from '../../src/errors.ts';
import { oauth1, oauth2ClientCredentials } from './auth.ts';
import type { OneRosterConfig } from './config.ts';
import { RESOURCES } from './mapping.ts';
import { ENVELOPE } from './wire.ts';

type State =
  | { phase: 'full' | 'delta'; resource: number; offset: number; since?: string; startedAt: string; received?: number }
  | { phase: 'done'; since: string };

export class OneRosterConnector implements Connector {
  readonly type = 'oneroster' as const;
  readonly sourceId: string;
  private readonly base: string;

  constructor(private readonly cfg: OneRosterConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
    this.base = cfg.baseUrl.replace(/\/$/, '');
    ctx.http.setErrorDescriber(describeOneRosterError);
    ctx.http.setAuth(
      cfg.version === '1.1'
        ? oauth1(cfg.clientId, cfg.clientSecret)
        : oauth2ClientCredentials(ctx.http, {
            source: cfg.id, tokenUrl: cfg.tokenUrl ?? `${new URL(cfg.baseUrl).origin}/token`, clientId: cfg.clientId, clientSecret: cfg.clientSecret, scope: cfg.scope,
          }),
    );
  }

  async *read(prev: ConnectorState | null, opts: ReadOptions = {}): AsyncIterable<Page> {
    const now = (this.ctx.now ?? (() => new Date()))().toISOString();
    let state = prev as State | null;
    if (!state || opts.full) state = { phase: 'full', resource: 0, offset: 0, startedAt: now };
    else if (state.phase === 'done') state = { phase: 'delta', resource: 0, offset: 0, since: state.since, startedAt: now };
    const run = state;
    const nextSince = new Date(Date.parse(run.startedAt) - this.cfg.deltaOverlapSeconds * 1000).toISOString();
    for (let i = run.resource; i < RESOURCES.length; i++) {
      const res = RESOURCES[i]!;
      let offset = i === run.resource ? run.offset : 0;
      let received = i === run.resource ? run.received ?? 0 : 0;
      let firstIdOfPrevious: string | undefined;
      for (;;) {
        const { items, total } = await this.page(res.name, offset, run.phase === 'delta' ? run.since : undefined);
        const firstId = (items[0] as { sourcedId?: string } | undefined)?.sourcedId;
        if (firstId && firstId === firstIdOfPrevious) {
          throw new RostergateError('SOURCE_PAGING_LOOP', `offset ${offset} returned the same page as offset ${offset - this.cfg.pageSize}: the server ignores paging`, {
            source: this.sourceId, resource: res.name,
          });
        }
        firstIdOfPrevious = firstId;
        const records: SourceRecord[] = items.flatMap((x, idx) => {
          try {
            return res.map(x);
          } catch (e) {
            throw new RostergateError('SOURCE_BAD_RECORD', `${(e as Error).message}`, { source: this.sourceId, resource: res.name, record: `#${offset + idx}` });
          }
        });
        const next = offset + items.length;
        received += items.length;
        // With X-Total-Count, a short page is not the end; without it, it is.
        const last = items.length === 0 || (total !== undefined ? next >= total : items.length < this.cfg.pageSize);
        const after: State = !last
          ? { ...run, resource: i, offset: next, received }
          : i === RESOURCES.length - 1
            ? { phase: 'done', since: nextSince }
            : { ...run, resource: i + 1, offset: 0, received: 0 };
        // A listing that came up short of its own total cannot prove anything is gone: no tombstones
        // from it (the next full run tries again).
        const complete = total === undefined || received >= total;
        if (last && run.phase === 'full' && !complete) {
          this.ctx.log.warn({ source: this.sourceId, resource: res.name, received, total }, 'listing returned fewer records than X-Total-Count: deletions deferred');
        }
        yield { resource: res.name, records, state: after, completes: last && run.phase === 'full' && complete ? ([...res.completes] as EntityType[]) : undefined };
        if (last) break;
        offset = next;
      }
    }
  }

  private async page(resource: string, offset: number, since?: string): Promise<{ items: unknown[]; total?: number }> {
    const url = new URL(`${this.base}/${resource}`);
    url.searchParams.set('limit', String(this.cfg.pageSize));
    url.searchParams.set('offset', String(offset));
    if (since) url.searchParams.set('filter', `dateLastModified>'${since}'`);
    const res = await this.ctx.http.jsonResponse<Record<string, unknown>>({ url, resource });
    const body = res.body;
    const items = body?.[ENVELOPE[resource]!];
    if (!Array.isArray(items)) {
      throw new RostergateError('SOURCE_BAD_PAGE', `response has no "${ENVELOPE[resource]}" array`, { source: this.sourceId, resource, record: `offset ${offset}` }, { retryable: true });
    }
    const h = res.headers['x-total-count'];
    const total = h === undefined ? undefined : Number(Array.isArray(h) ? h[0] : h);
    return { items, total: Number.isFinite(total) ? total : undefined };
  }
}

/** OneRoster error bodies (imsx_StatusInfo) carry codes that are safe to show. */
export function describeOneRosterError(_status: number, body: string): string | undefined {
  try {
    const b = JSON.parse(body) as { imsx_codeMajor?: string; imsx_CodeMinor?: unknown; error?: string };
    const minor = JSON.stringify(b.imsx_CodeMinor ?? '').match(/"imsx_codeMinorFieldValue":"([A-Za-z_]+)"/)?.[1];
    return [b.imsx_codeMajor, minor, b.error].filter(Boolean).join(' ') || undefined;
  } catch {
    return undefined;
  }
}
