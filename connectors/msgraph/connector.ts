/**
 * Reading Microsoft Graph Education. A full run lists schools (and which users and classes each
 * school has), then users and classes through their delta functions — so the run ends holding the
 * deltaLinks — then each class's members and teachers. Incremental runs re-list the schools (few,
 * and without them a new school's classes would wait), then follow the deltaLinks;
 * changed classes get their rosters re-read (removed members become deletions), and because class
 * delta leaves out deleted classes, the class ids are listed each run and missing ones deleted.
 * A delta token Graph no longer accepts leads to a full run, logged.
 */
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import type { SourceRecord } from '../../src/model/records.ts';
import { RostergateError, isRostergateError } from '../../src/errors.ts';
import { LoopGuard } from '../http.ts';
import { clientCredentials, describeGraphError } from './auth.ts';
import type { MsGraphConfig } from './config.ts';
import { classRecords, enrollmentKey, schoolRecord, tenantKey, userRecords } from './mapping.ts';
import { CLASS_SELECT, SCHOOL_SELECT, USER_SELECT, type EduClass, type EduSchool, type EduUser, type ODataPage } from './wire.ts';

/** Members of a class, teachers marked with a leading "t:". */
type Rosters = Record<string, string[]>;

type FullState = {
  phase: 'full';
  step: 'schools' | 'users' | 'classes' | 'rosters';
  next?: string;
  userSchools: Record<string, string[]>;
  classSchool: Record<string, string>;
  classIds: string[];
  rosterIndex: number;
  rosters: Rosters;
  usersDelta?: string;
  classesDelta?: string;
};
type DeltaState = {
  phase: 'delta';
  usersDelta: string;
  classesDelta: string;
  rosters: Rosters;
};
type State = FullState | DeltaState;

const USER_PROPS = USER_SELECT.split(',');

export class MsGraphConnector implements Connector {
  readonly type = 'msgraph' as const;
  readonly sourceId: string;
  private readonly base: string;

  constructor(private readonly cfg: MsGraphConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
    this.base = cfg.baseUrl.replace(/\/$/, '');
    ctx.http.setErrorDescriber(describeGraphError);
    ctx.http.setAuth(clientCredentials(ctx.http, cfg));
  }

  async *read(prev: ConnectorState | null, opts: ReadOptions = {}): AsyncIterable<Page> {
    const state = prev as State | null;
    if (state?.phase === 'delta' && !opts.full) {
      try {
        yield* this.delta(state);
        return;
      } catch (e) {
        if (!(isRostergateError(e) && e.code === 'SOURCE_CURSOR_EXPIRED')) throw e;
        this.ctx.log.warn({ source: this.sourceId }, 'Graph no longer accepts the delta token: running a full sync');
      }
    }
    const start: FullState = state?.phase === 'full' && !opts.full
      ? state
      : { phase: 'full', step: 'schools', userSchools: {}, classSchool: {}, classIds: [], rosterIndex: 0, rosters: {} };
    yield* this.full(start);
  }

  private url(path: string, params: Record<string, string> = {}): string {
    const u = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  }

  private async get<T>(url: string, resource: string, headers?: Record<string, string>): Promise<ODataPage<T>> {
    const r = await this.ctx.http.jsonResponse<ODataPage<T> & { error?: { code?: string } }>({ url, resource, headers, acceptStatuses: [400, 410] });
    // Only a delta round can have an expired token; a 410 elsewhere is an ordinary error, not a reason to resync.
    const delta = new URL(url).pathname.endsWith('/delta');
    if (delta && (r.status === 410 || (r.status === 400 && /resyncRequired|syncStateNotFound|syncStateInvalid/i.test(r.body?.error?.code ?? '')))) {
      throw new RostergateError('SOURCE_CURSOR_EXPIRED', 'Graph no longer accepts this delta token', { source: this.sourceId, resource, status: r.status });
    }
    if (r.status === 410) throw new RostergateError('SOURCE_HTTP', `gone (410)${describeGraphError(410, JSON.stringify(r.body)) ? ` — ${describeGraphError(410, JSON.stringify(r.body))}` : ''}`, { source: this.sourceId, resource, status: 410 });
    if (r.status === 400) throw new RostergateError('SOURCE_HTTP', `bad request (400)${describeGraphError(400, JSON.stringify(r.body)) ? ` — ${describeGraphError(400, JSON.stringify(r.body))}` : ''}`, { source: this.sourceId, resource, status: 400 });
    if (!r.body || !Array.isArray(r.body.value)) throw new RostergateError('SOURCE_BAD_PAGE', 'response has no "value" array', { source: this.sourceId, resource }, { retryable: true });
    return r.body;
  }

  /** Every page of a collection (the ids of a school's users, a class's members). */
  private async all<T>(url: string, resource: string): Promise<T[]> {
    const out: T[] = [];
    const guard = new LoopGuard(this.sourceId, resource);
    for (let next: string | undefined = url; next; ) {
      const p: ODataPage<T> = await this.get<T>(next, resource);
      out.push(...p.value);
      next = p['@odata.nextLink'];
      if (next) guard.check(next);
    }
    return out;
  }

  private async *full(st: FullState): AsyncIterable<Page> {
    const top = String(this.cfg.pageSize);
    // Terms and courses are embedded in every class: send each once per run.
    const sent = new Set<string>();
    const once = (rs: SourceRecord[]) => rs.filter((r) => (r.type === 'class' ? true : !sent.has(`${r.type}/${r.key}`) && !!sent.add(`${r.type}/${r.key}`)));
    if (st.step === 'schools') {
      const guard = new LoopGuard(this.sourceId, 'schools');
      let next = st.next ?? this.url('/education/schools', { $top: top, $select: SCHOOL_SELECT });
      let first = !st.next;
      for (;;) {
        const page = await this.get<EduSchool>(next, 'schools');
        const records: SourceRecord[] = first ? [{ type: 'org', key: tenantKey(this.cfg.tenantId), data: { name: this.cfg.districtName, type: 'district' } }] : [];
        first = false;
        for (const school of page.value) {
          records.push(schoolRecord(school, this.cfg.tenantId));
          for (const u of await this.all<{ id: string }>(this.url(`/education/schools/${school.id}/users`, { $select: 'id', $top: top }), 'schools/users')) {
            (st.userSchools[u.id] ??= []).push(school.id);
          }
          for (const c of await this.all<{ id: string }>(this.url(`/education/schools/${school.id}/classes`, { $select: 'id', $top: top }), 'schools/classes')) {
            st.classSchool[c.id] ??= school.id;
          }
        }
        const link = page['@odata.nextLink'];
        st = link ? { ...st, next: link } : { ...st, step: 'users', next: undefined };
        yield { resource: 'schools', records, state: st, completes: link ? undefined : ['org'] };
        if (!link) break;
        guard.check(link);
        next = link;
      }
    }
    if (st.step === 'users') {
      for await (const { items, deltaLink, next } of this.pages<EduUser>(st.next ?? this.url('/education/users/delta', { $select: USER_SELECT }), 'users/delta')) {
        const records = items.filter((u) => !u['@removed']).flatMap((u) => userRecords(u, st.userSchools[u.id]));
        st = deltaLink ? { ...st, step: 'classes', next: undefined, usersDelta: deltaLink, userSchools: {} } : { ...st, next };
        yield { resource: 'users', records, state: st, completes: deltaLink ? ['person', 'demographics'] : undefined };
      }
    }
    if (st.step === 'classes') {
      for await (const { items, deltaLink, next } of this.pages<EduClass>(st.next ?? this.url('/education/classes/delta', { $select: CLASS_SELECT }), 'classes/delta')) {
        const live = items.filter((c) => !c['@removed']);
        const records = once(live.flatMap((c) => classRecords(c, st.classSchool[c.id])));
        st = { ...st, classIds: [...st.classIds, ...live.map((c) => c.id)] };
        st = deltaLink ? { ...st, step: 'rosters', next: undefined, classesDelta: deltaLink, classSchool: {} } : { ...st, next };
        yield { resource: 'classes', records, state: st, completes: deltaLink ? ['class', 'academicSession', 'course'] : undefined };
      }
    }
    // Rosters, a few classes per page.
    const ids = [...new Set(st.classIds)];
    for (let i = st.rosterIndex; i < ids.length || i === 0; i += 10) {
      const batch = ids.slice(i, i + 10);
      const records: SourceRecord[] = [];
      const rosters = { ...st.rosters };
      for (const id of batch) {
        const { recs, members } = await this.roster(id);
        records.push(...recs);
        rosters[id] = members;
      }
      const last = i + 10 >= ids.length;
      st = { ...st, rosterIndex: i + 10, rosters };
      const done: DeltaState = { phase: 'delta', usersDelta: st.usersDelta!, classesDelta: st.classesDelta!, rosters };
      yield { resource: 'classes/members', records, state: last ? done : st, completes: last ? ['enrollment'] : undefined };
      if (last) break;
    }
  }

  /**
   * Pages of a delta round: items, then the deltaLink on the last page. Delta functions take their
   * page size from `Prefer: odata.maxpagesize`, not `$top` (which directory delta does not support),
   * and the header goes with every nextLink, since the links themselves carry no page size.
   */
  private async *pages<T>(start: string, resource: string): AsyncIterable<{ items: T[]; next?: string; deltaLink?: string }> {
    const guard = new LoopGuard(this.sourceId, resource);
    const prefer = { prefer: `odata.maxpagesize=${this.cfg.pageSize}` };
    for (let url: string | undefined = start; url; ) {
      const p: ODataPage<T> = await this.get<T>(url, resource, prefer);
      const next = p['@odata.nextLink'];
      const deltaLink = p['@odata.deltaLink'];
      if (!next && !deltaLink) throw new RostergateError('SOURCE_BAD_PAGE', 'a delta page with neither nextLink nor deltaLink', { source: this.sourceId, resource });
      yield { items: p.value, next, deltaLink };
      if (next) guard.check(next);
      url = next;
    }
  }

  private async roster(classId: string): Promise<{ recs: SourceRecord[]; members: string[] }> {
    const teachers = new Set((await this.all<{ id: string }>(this.url(`/education/classes/${classId}/teachers`, { $select: 'id' }), 'classes/teachers')).map((t) => t.id));
    const members = (await this.all<{ id: string }>(this.url(`/education/classes/${classId}/members`, { $select: 'id' }), 'classes/members')).map((m) => m.id);
    // Teachers are owners and usually members too; everyone else is a student.
    const all = [...new Set([...teachers, ...members])];
    const recs: SourceRecord[] = all.map((u, i) => ({
      type: 'enrollment', key: enrollmentKey(classId, u),
      data: { classKey: classId, personKey: u, role: teachers.has(u) ? 'teacher' : 'student', primary: teachers.has(u) ? [...teachers][0] === u : false },
    }));
    return { recs, members: all.map((u) => (teachers.has(u) ? `t:${u}` : u)).sort() };
  }

  private async *delta(st: DeltaState): AsyncIterable<Page> {
    // Schools first, listed whole (a district has few): a new school is there before the classes and
    // users that refer to it, and a deleted one is swept. Unchanged ones cost the store nothing.
    const guard = new LoopGuard(this.sourceId, 'schools');
    for (let next: string | undefined = this.url('/education/schools', { $top: String(this.cfg.pageSize), $select: SCHOOL_SELECT }), first = true; next; first = false) {
      const page: ODataPage<EduSchool> = await this.get<EduSchool>(next, 'schools');
      const records: SourceRecord[] = first ? [{ type: 'org', key: tenantKey(this.cfg.tenantId), data: { name: this.cfg.districtName, type: 'district' } }] : [];
      records.push(...page.value.map((school) => schoolRecord(school, this.cfg.tenantId)));
      next = page['@odata.nextLink'];
      if (next) guard.check(next);
      yield { resource: 'schools', records, state: st, completes: next ? undefined : ['org'] };
    }
    let usersDelta = st.usersDelta;
    for await (const { items, deltaLink, next } of this.pages<EduUser>(st.usersDelta, 'users/delta')) {
      const records: SourceRecord[] = [];
      for (const u of items) {
        if (u['@removed']) {
          // "deleted" or "changed" (out of scope, e.g. soft-deleted): either way gone from this source.
          records.push({ type: 'demographics', key: u.id, deleted: true }, { type: 'person', key: u.id, deleted: true });
          continue;
        }
        // Delta items carry at least the changed properties: a user lacking any selected property is
        // read whole, so a rename never loses the student facet (SIS id, birth date) it did not repeat.
        const full = USER_PROPS.every((k) => k in u) ? u : await this.ctx.http.json<EduUser>({ url: this.url(`/education/users/${u.id}`, { $select: USER_SELECT }), resource: 'users' });
        const schools = (await this.all<{ id: string }>(this.url(`/education/users/${u.id}/schools`, { $select: 'id' }), 'users/schools')).map((x) => x.id);
        records.push(...userRecords(full, schools));
      }
      // Mid-round, the nextLink is where to resume; at the end, the new deltaLink.
      usersDelta = deltaLink ?? next!;
      yield { resource: 'users/delta', records, state: { ...st, usersDelta } };
    }
    let rosters = { ...st.rosters };
    let classesDelta = st.classesDelta;
    for await (const { items, deltaLink } of this.pages<EduClass>(st.classesDelta, 'classes/delta')) {
      const records: SourceRecord[] = [];
      for (const c of items) {
        if (c['@removed']) {
          records.push({ type: 'class', key: c.id, deleted: true });
          delete rosters[c.id];
          continue;
        }
        const school = (await this.all<{ id: string }>(this.url(`/education/classes/${c.id}/schools`, { $select: 'id' }), 'classes/schools'))[0]?.id;
        records.push(...classRecords(c, school));
        const { recs, members } = await this.roster(c.id);
        records.push(...recs);
        for (const m of rosters[c.id] ?? []) {
          const id = m.replace(/^t:/, '');
          if (!members.some((x) => x.replace(/^t:/, '') === id)) records.push({ type: 'enrollment', key: enrollmentKey(c.id, id), deleted: true });
        }
        rosters = { ...rosters, [c.id]: members };
      }
      if (deltaLink) classesDelta = deltaLink;
      yield { resource: 'classes/delta', records, state: { phase: 'delta', usersDelta, classesDelta: st.classesDelta, rosters } };
    }
    // Class delta omits deleted classes: compare the ids that exist with the ones we know.
    const existing = new Set((await this.all<{ id: string }>(this.url('/education/classes', { $select: 'id', $top: String(this.cfg.pageSize) }), 'classes')).map((c) => c.id));
    const gone = Object.keys(rosters).filter((id) => !existing.has(id));
    for (const id of gone) delete rosters[id];
    yield { resource: 'classes', records: gone.map((id) => ({ type: 'class', key: id, deleted: true })), state: { phase: 'delta', usersDelta, classesDelta, rosters } };
  }
}
