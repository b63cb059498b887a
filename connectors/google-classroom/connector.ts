/**
 * Reading Google Classroom. There is no delta API, so every run re-lists: courses (all configured
 * states, paged by pageToken, newest first), each course's students and teachers (their profiles
 * come inline; `userProfiles.get` only for one that came without a name), then guardians for all
 * students at once where the domain grants it (`userProfiles.get` for a student in no course). Every run completes all it reads; the sync engine's content hashes make unchanged
 * records free. A run killed mid-way resumes at the courses page it reached.
 */
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import type { SourceRecord } from '../../src/model/records.ts';
import { RostergateError, isRostergateError } from '../../src/errors.ts';
import { LoopGuard } from '../http.ts';
import { describeGoogleError, isGoogleRateLimit, jwtBearer, loadServiceAccountKey } from './auth.ts';
import type { GoogleConfig } from './config.ts';

interface Profile { id: string; name?: { givenName?: string; familyName?: string; fullName?: string }; emailAddress?: string; photoUrl?: string }
interface Course { id: string; name?: string; section?: string; room?: string; ownerId?: string; courseState?: string; updateTime?: string }
type State = { phase: 'courses' | 'guardians'; pageToken?: string } | { phase: 'done' };

export class GoogleClassroomConnector implements Connector {
  readonly type = 'google-classroom' as const;
  readonly sourceId: string;
  private readonly base: string;

  constructor(private readonly cfg: GoogleConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
    this.base = cfg.baseUrl.replace(/\/$/, '');
    ctx.http.setErrorDescriber(describeGoogleError);
    ctx.http.setRateLimitDetector(isGoogleRateLimit);
    ctx.http.setAuth(jwtBearer(ctx.http, cfg, loadServiceAccountKey(cfg)));
  }

  private async list<T>(path: string, key: string, params: Record<string, string | string[]>, resource: string): Promise<{ items: T[]; next?: string }> {
    const u = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) u.searchParams.append(k, x);
    const body = await this.ctx.http.json<Record<string, unknown>>({ url: u, resource });
    const items = body[key] ?? [];
    if (!Array.isArray(items)) throw new RostergateError('SOURCE_BAD_PAGE', `"${key}" is not a list`, { source: this.sourceId, resource }, { retryable: true });
    return { items: items as T[], next: (body.nextPageToken as string | undefined) || undefined };
  }

  private async all<T>(path: string, key: string, resource: string): Promise<T[]> {
    const out: T[] = [];
    const guard = new LoopGuard(this.sourceId, resource);
    for (let token: string | undefined; ; ) {
      // students/teachers default to 30 per page: ask for the largest.
      const { items, next } = await this.list<T>(path, key, { pageSize: String(this.cfg.pageSize), ...(token ? { pageToken: token } : {}) }, resource);
      out.push(...items);
      if (!next) return out;
      guard.check(next);
      token = next;
    }
  }

  /**
   * A roster entry's or guardian's profile, from `userProfiles.get` when it came without one or
   * without a name (each such user is asked for once per run).
   */
  private async profileOf(userId: string, inline: Profile | undefined, cache: Map<string, Profile>): Promise<Profile> {
    if (inline?.name && (inline.name.givenName || inline.name.familyName || inline.name.fullName)) return { ...inline, id: userId };
    let p = cache.get(userId);
    if (!p) {
      const u = new URL(`${this.base}/v1/userProfiles/${encodeURIComponent(userId)}`);
      p = { ...(await this.ctx.http.json<Profile>({ url: u, resource: 'userProfiles' })), id: userId };
      cache.set(userId, p);
    }
    return p;
  }

  private person(p: Profile, role: 'student' | 'teacher' | 'guardian'): SourceRecord {
    return {
      type: 'person', key: p.id,
      data: {
        givenName: p.name?.givenName ?? p.name?.fullName ?? '', familyName: p.name?.familyName ?? '', email: p.emailAddress || undefined,
        photoUrl: p.photoUrl ? (p.photoUrl.startsWith('//') ? `https:${p.photoUrl}` : p.photoUrl) : undefined, roles: [role],
        orgKeys: role === 'guardian' ? undefined : [this.cfg.placeholderSchool.key], primaryOrgKey: role === 'guardian' ? undefined : this.cfg.placeholderSchool.key,
      },
    };
  }

  async *read(prev: ConnectorState | null, _opts: ReadOptions = {}): AsyncIterable<Page> {
    let state = prev as State | null;
    if (!state || state.phase === 'done') state = { phase: 'courses' };
    // People appear in many courses: send each once per run (roles merged across their courses).
    const people = new Map<string, SourceRecord>();
    const profiles = new Map<string, Profile>();
    const school: SourceRecord = { type: 'org', key: this.cfg.placeholderSchool.key, data: { name: this.cfg.placeholderSchool.name, type: 'school' } };
    if (state.phase === 'courses') {
      const guard = new LoopGuard(this.sourceId, 'courses');
      let token = state.pageToken;
      for (;;) {
        const { items: courses, next } = await this.list<Course>('/v1/courses', 'courses', {
          pageSize: String(this.cfg.pageSize), courseStates: this.cfg.courseStates, ...(token ? { pageToken: token } : {}),
        }, 'courses');
        const records: SourceRecord[] = token ? [] : [school];
        for (const c of courses) {
          records.push({ type: 'class', key: c.id, lastModified: c.updateTime, data: { title: c.name || c.id, classCode: c.section || undefined, location: c.room || undefined, schoolKey: this.cfg.placeholderSchool.key } });
          const teachers = await this.all<{ userId: string; profile?: Profile }>(`/v1/courses/${c.id}/teachers`, 'teachers', 'courses.teachers');
          const students = await this.all<{ userId: string; profile?: Profile }>(`/v1/courses/${c.id}/students`, 'students', 'courses.students');
          for (const t of teachers) {
            this.add(people, records, this.person(await this.profileOf(t.userId, t.profile, profiles), 'teacher'));
            records.push({ type: 'enrollment', key: `${c.id}:${t.userId}`, data: { classKey: c.id, personKey: t.userId, role: 'teacher', primary: t.userId === c.ownerId, schoolKey: this.cfg.placeholderSchool.key } });
          }
          for (const st of students) {
            this.add(people, records, this.person(await this.profileOf(st.userId, st.profile, profiles), 'student'));
            records.push({ type: 'enrollment', key: `${c.id}:${st.userId}`, data: { classKey: c.id, personKey: st.userId, role: 'student', primary: false, schoolKey: this.cfg.placeholderSchool.key } });
          }
        }
        const after: State = next ? { phase: 'courses', pageToken: next } : { phase: 'guardians' };
        yield { resource: 'courses', records, state: after, completes: next ? undefined : ['org', 'class', 'enrollment'] };
        if (!next) break;
        guard.check(next);
        token = next;
      }
      state = { phase: 'guardians' };
    }
    const guardianRecords: SourceRecord[] = [];
    let unknownStudents = 0;
    if (this.cfg.guardians) {
      try {
        for (const g of await this.all<{ studentId: string; guardianId: string; guardianProfile?: Profile }>('/v1/userProfiles/-/guardians', 'guardians', 'userProfiles.guardians')) {
          // A student in no course is known only from the guardian link: read their profile, so the
          // link has its student (a profile that no longer exists drops the link).
          if (!people.has(g.studentId)) {
            const student = await this.profileOf(g.studentId, undefined, profiles).catch((e: unknown) => {
              if (isRostergateError(e) && e.context.status === 404) return undefined;
              throw e;
            });
            if (!student) {
              unknownStudents++;
              continue;
            }
            this.add(people, guardianRecords, this.person(student, 'student'));
          }
          this.add(people, guardianRecords, this.person(await this.profileOf(g.guardianId, g.guardianProfile, profiles), 'guardian'));
          guardianRecords.push({ type: 'guardianship', key: `${g.guardianId}:${g.studentId}`, data: { guardianKey: g.guardianId, studentKey: g.studentId } });
        }
        if (unknownStudents) this.ctx.log.warn({ source: this.sourceId, links: unknownStudents }, 'guardian links to students without a profile: left out');
      } catch (e) {
        // Refused (no guardian scope or access): skipped. A rate limit that outlasted the retries is
        // also a 403, but says nothing about access: the run fails and resumes here next time.
        if (!(isRostergateError(e) && e.code !== 'SOURCE_RATE_LIMITED' && (e.context.status === 403 || e.context.status === 400))) throw e;
        this.ctx.log.warn({ source: this.sourceId, status: e.context.status }, 'guardians are not available to this service account: skipped');
      }
    }
    yield { resource: 'userProfiles.guardians', records: guardianRecords, state: { phase: 'done' }, completes: ['person', 'guardianship'] };
  }

  /** Adds a person once per run; a person seen again in another role gets it added. */
  private add(people: Map<string, SourceRecord>, records: SourceRecord[], p: SourceRecord): void {
    const known = people.get(p.key);
    if (!known) {
      people.set(p.key, p);
      records.push(p);
      return;
    }
    const roles = (known as { data: { roles: string[] } }).data.roles;
    const role = (p as { data: { roles: string[] } }).data.roles[0]!;
    if (!roles.includes(role)) {
      roles.push(role);
      records.push(known);
    }
  }
}
