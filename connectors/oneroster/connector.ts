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

/**
 * `short` marks a run in which some listing came up short of its own X-Total-Count (or whose total
 * moved while it was paged): records may have been skipped, so the run may not move the delta
 * window forward. `done` without `since` means the next run must be a full one.
 */
type State =
  | { phase: 'full' | 'delta'; resource: number; offset: number; since?: string; startedAt: string; received?: number; firstTotal?: number; short?: boolean }
  | { phase: 'done'; since?: string };

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
    if (!state || opts.full || (state.phase === 'done' && !state.since)) state = { phase: 'full', resource: 0, offset: 0, startedAt: now };
    else if (state.phase === 'done') state = { phase: 'delta', resource: 0, offset: 0, since: state.since, startedAt: now };
    const run = state;
    const nextSince = new Date(Date.parse(run.startedAt) - this.cfg.deltaOverlapSeconds * 1000).toISOString();
    let short = run.short ?? false;
    for (let i = run.resource; i < RESOURCES.length; i++) {
      const res = RESOURCES[i]!;
      const resuming = i === run.resource;
      let offset = resuming ? run.offset : 0;
      let received = resuming ? run.received ?? 0 : 0;
      let firstTotal = resuming ? run.firstTotal : undefined;
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
        firstTotal ??= total;
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
        // Offset paging over a listing that changes underneath (or a server that drops records)
        // skips some: a listing short of its total, or whose total moved, proves nothing complete.
        const complete = total === undefined || (received >= total && total === firstTotal);
        if (last && !complete) {
          short = true;
          this.ctx.log.warn({ source: this.sourceId, resource: res.name, received, total, firstTotal }, 'listing came up short of X-Total-Count: no deletions from it, and the next run reads this window again');
        }
        const after: State = !last
          ? { ...run, resource: i, offset: next, received, firstTotal, short }
          : i < RESOURCES.length - 1
            ? { ...run, resource: i + 1, offset: 0, received: 0, firstTotal: undefined, short }
            // A short run keeps the old window (a delta) or asks for a full read (a full run), so
            // whatever it skipped is read again next time.
            : short ? { phase: 'done', since: run.phase === 'delta' ? run.since : undefined } : { phase: 'done', since: nextSince };
        yield {
          resource: res.name, records, state: after, total, listed: items.length,
          completes: last && run.phase === 'full' && complete ? ([...res.completes] as EntityType[]) : undefined,
        };
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
