/**
 * Reading Clever: a full sync pages every resource by `starting_after` with the largest `limit`;
 * incremental syncs follow the Events API from the newest event id seen before the full sync
 * started (events during a full sync are applied again afterwards: processing is idempotent).
 * Where the Events API is not available to the app, every run is a full sync.
 */
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import { LoopGuard } from '../http.ts';
import type { EntityType, SourceRecord } from '../../src/model/records.ts';
import { RostergateError, isRostergateError } from '../../src/errors.ts';
import type { CleverConfig } from './config.ts';
import type { CleverEvent, CleverList, CleverSection, CleverUser } from './wire.ts';
import {
  courseRecord,
  districtRecord,
  enrollmentKey,
  guardianshipRecord,
  schoolRecord,
  sectionRecords,
  termRecord,
  userRecords,
} from './mapping.ts';

/** Resources of a full sync, in dependency order, and what each completes. */
const RESOURCES: { name: string; map: (x: never) => SourceRecord[]; completes?: EntityType[] }[] = [
  { name: 'districts', map: (x) => [districtRecord(x)] },
  { name: 'schools', map: (x) => [schoolRecord(x)], completes: ['org'] },
  { name: 'terms', map: (x) => [termRecord(x)], completes: ['academicSession'] },
  { name: 'courses', map: (x) => [courseRecord(x)], completes: ['course'] },
  { name: 'users', map: (x) => userRecords(x), completes: ['person', 'demographics', 'guardianship'] },
  { name: 'sections', map: (x) => sectionRecords(x), completes: ['class', 'enrollment'] },
];

type State =
  | { phase: 'full'; resource: number; startingAfter?: string; anchor: string | null }
  | { phase: 'events'; after: string | null }
  | { phase: 'done-full' };

/** Newest possible id: `ending_before` it returns the newest events. */
const MAX_ID = 'ffffffffffffffffffffffff';

export class CleverConnector implements Connector {
  readonly type = 'clever' as const;
  readonly sourceId: string;
  private readonly base: string;

  constructor(private readonly cfg: CleverConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
    this.base = `${cfg.baseUrl.replace(/\/$/, '')}/v${cfg.apiVersion}`;
    // Clever error bodies are {"message": "…"}: shown only when short and free of addresses.
    ctx.http.setErrorDescriber((_status, body) => {
      try {
        const m = (JSON.parse(body) as { message?: unknown }).message;
        return typeof m === 'string' && m.length <= 80 && !m.includes('@') ? `Clever says: ${m}` : undefined;
      } catch {
        return undefined;
      }
    });
    ctx.http.setAuth({
      authorize: async ({ headers }) => {
        headers.authorization = `Bearer ${cfg.token}`;
      },
    });
  }

  async *read(prev: ConnectorState | null, opts: ReadOptions = {}): AsyncIterable<Page> {
    let state = (prev as State | null) ?? null;
    if (!state || opts.full || state.phase === 'done-full') state = { phase: 'full', resource: 0, anchor: await this.newestEventId() };
    if (state.phase === 'full') {
      yield* this.full(state);
      return;
    }
    yield* this.events(state.after);
  }

  private async *full(start: Extract<State, { phase: 'full' }>): AsyncIterable<Page> {
    for (let i = start.resource; i < RESOURCES.length; i++) {
      const res = RESOURCES[i]!;
      let after = i === start.resource ? start.startingAfter : undefined;
      const guard = new LoopGuard(this.sourceId, res.name);
      for (;;) {
        const page = await this.list<Record<string, unknown>>(res.name, after);
        const items = page.data.map((d) => d.data);
        const next = nextStartingAfter(page);
        const last = items.length === 0 || !next;
        const finalState: State = i === RESOURCES.length - 1
          ? start.anchor === null ? { phase: 'done-full' } : { phase: 'events', after: start.anchor || null }
          : { phase: 'full', resource: i + 1, anchor: start.anchor };
        const records = items.flatMap((x, idx) => {
          try {
            return res.map(x as never);
          } catch (e) {
            throw new RostergateError('SOURCE_BAD_RECORD', `cannot read this ${res.name} record: ${(e as Error).message}`, {
              source: this.sourceId, resource: res.name, record: `#${idx} after ${after ?? 'start'}`,
            });
          }
        });
        yield {
          resource: res.name,
          records,
          state: last ? finalState : { phase: 'full', resource: i, startingAfter: String(items[items.length - 1]!.id), anchor: start.anchor },
          completes: last ? res.completes : undefined,
        };
        if (last) break;
        guard.check(next!);
        after = next;
      }
    }
    if (start.anchor === null) this.ctx.log.info({ source: this.sourceId }, 'Clever Events API not available to this app: every sync is a full sync');
  }

  private async *events(after: string | null): AsyncIterable<Page> {
    const guard = new LoopGuard(this.sourceId, 'events');
    let cursor = after;
    for (;;) {
      let page: CleverList<CleverEvent>;
      try {
        page = await this.list<CleverEvent>('events', cursor ?? undefined);
      } catch (e) {
        if (isRostergateError(e) && (e.context.status === 404 || e.context.status === 403)) {
          // Events were switched off for the app: fall back to a full sync.
          this.ctx.log.warn({ source: this.sourceId }, 'Clever Events API no longer available: running a full sync');
          yield* this.full({ phase: 'full', resource: 0, anchor: null });
          return;
        }
        throw e;
      }
      const events = page.data.map((d) => d.data);
      if (events.length === 0) {
        yield { resource: 'events', records: [], state: { phase: 'events', after: cursor } };
        return;
      }
      const records = events.flatMap((ev) => eventRecords(ev));
      cursor = events[events.length - 1]!.id;
      yield { resource: 'events', records, state: { phase: 'events', after: cursor } };
      guard.check(cursor);
      if (!nextStartingAfter(page)) return;
    }
  }

  /** The newest event id now ('' when there are none yet), or null when events are unavailable. */
  private async newestEventId(): Promise<string | null> {
    try {
      const r = await this.ctx.http.json<CleverList<CleverEvent>>({
        url: `${this.base}/events?ending_before=${MAX_ID}&limit=1`, resource: 'events',
      });
      return r.data.at(-1)?.data.id ?? '';
    } catch (e) {
      if (isRostergateError(e) && (e.context.status === 404 || e.context.status === 403)) return null;
      throw e;
    }
  }

  private async list<T>(resource: string, startingAfter?: string): Promise<CleverList<T>> {
    const url = new URL(`${this.base}/${resource}`);
    url.searchParams.set('limit', String(this.cfg.pageSize));
    if (startingAfter) url.searchParams.set('starting_after', startingAfter);
    const page = await this.ctx.http.json<CleverList<T>>({ url, resource });
    if (!page || !Array.isArray(page.data) || page.data.some((d) => !d || typeof d !== 'object' || !d.data || typeof (d.data as { id?: unknown }).id !== 'string')) {
      throw new RostergateError('SOURCE_BAD_PAGE', 'page is not a Clever list ({data:[{data:{id,…}}]})', { source: this.sourceId, resource }, { retryable: true });
    }
    return page;
  }
}

function nextStartingAfter(page: CleverList<unknown>): string | undefined {
  const next = page.links?.find((l) => l.rel === 'next')?.uri;
  if (!next) return undefined;
  return new URL(next, 'https://x').searchParams.get('starting_after') ?? undefined;
}

/** One event as upserts and deletions. Users and sections also delete what their update removed. */
export function eventRecords(ev: CleverEvent): SourceRecord[] {
  const [kind, action] = ev.type.split('.') as [string, string];
  const obj = ev.data?.object ?? {};
  const prev = ev.previous_attributes ?? ev.data?.previous_attributes ?? {};
  const id = String(obj.id ?? '');
  const resource = kind === 'students' || kind === 'teachers' || kind === 'contacts' || kind === 'districtadmins' ? 'users' : kind;
  if (action === 'deleted') {
    const type = ({ users: 'person', sections: 'class', schools: 'org', districts: 'org', terms: 'academicSession', courses: 'course' } as const)[resource as 'users'];
    return type ? [{ type, key: id, deleted: true }] : [];
  }
  switch (resource) {
    case 'districts':
      return [districtRecord(obj as never)];
    case 'schools':
      return [schoolRecord(obj as never)];
    case 'terms':
      return [termRecord(obj as never)];
    case 'courses':
      return [courseRecord(obj as never)];
    case 'users': {
      const u = obj as unknown as CleverUser;
      const out = userRecords(u);
      const before = ((prev.roles as CleverUser['roles'])?.contact?.student_relationships ?? []).map((r) => r.student);
      const now = new Set((u.roles?.contact?.student_relationships ?? []).map((r) => r.student));
      for (const st of before) if (!now.has(st)) out.push({ ...guardianshipRecord(u.id, { student: st }), deleted: true } as SourceRecord);
      if (prev.roles && !u.roles?.student && (prev.roles as CleverUser['roles'])?.student) out.push({ type: 'demographics', key: u.id, deleted: true });
      return out;
    }
    case 'sections': {
      const x = obj as unknown as CleverSection;
      const out = sectionRecords(x);
      const now = new Set([...(x.students ?? []), ...(x.teachers ?? []), ...(x.teacher ? [x.teacher] : [])]);
      const before = [...((prev.students as string[] | undefined) ?? []), ...((prev.teachers as string[] | undefined) ?? [])];
      for (const u of new Set(before)) if (!now.has(u)) out.push({ type: 'enrollment', key: enrollmentKey(x.id, u), deleted: true });
      return out;
    }
    default:
      return [];
  }
}
