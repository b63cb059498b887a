/**
 * What a stored value may be: the one check shared by the mapping boundary (every record a
 * connector delivers passes `checkRecord` before ingest) and by GraphQL, whose `Date`, `DateTime`
 * and `EmailAddress` scalars are the `SCALARS` below (src/graphql/scalars.ts wraps them only to
 * report refused input as BAD_USER_INPUT; their serialize is these scalars' own). A value is
 * accepted exactly when the scalar that serves it would serialise it, so nothing stored can make a
 * query fail.
 *
 * "Repaired unambiguously" means: one reading only, with no guess about the vendor's intent.
 *  - Emails: surrounding blanks are trimmed. Nothing else is repaired (`a"b@x.org`, `a.x.org` are
 *    dropped): guessing at an address would send mail to someone else.
 *  - Date-times without a zone (`2017-05-06 08:01:05`, `2017-05-06T08:01:05`) are read as UTC, as
 *    OneRoster defines dateLastModified in UTC; a bare date (`2023-05-01`) is midnight UTC.
 *  - Dates written with slashes are repaired only when one reading exists: `15/06/2023` (15 is no
 *    month: day first), `06/15/2023` (month first, as Clever and SDS v1 write), `05/05/2023`.
 *    `06/05/2023` is dropped: May 6th and June 5th are both dates. `YYYYMMDD` and an ISO date-time
 *    whose date part is a valid date are repaired to the date.
 *  - Enumerations: a value is matched case-insensitively (`Student` → `student`); anything else is
 *    not a member and is dropped (or, for a required field, holds its record back).
 */
import { DateResolver, DateTimeResolver, EmailAddressResolver } from 'graphql-scalars';
import type { GraphQLScalarType } from 'graphql';
import { REFERENCES, type EntityType, type SourceRecord } from './records.ts';
import { SURROGATE, wellFormed } from './unicode.ts';

/** The scalars GraphQL serves these values with (src/graphql/scalars.ts wraps exactly these for input). */
export const SCALARS = { Date: DateResolver, DateTime: DateTimeResolver, EmailAddress: EmailAddressResolver } as const;

function serialises(scalar: GraphQLScalarType, v: unknown): boolean {
  try {
    scalar.serialize(v);
    return true;
  } catch {
    return false;
  }
}
export const acceptsEmail = (v: unknown): boolean => typeof v === 'string' && serialises(SCALARS.EmailAddress, v);
/**
 * The scalar's answer for each text it was asked about, up to `MEMO_LIMIT` texts (a district's
 * dates repeat: terms, enrollments' first and last days, one sync's timestamps). Each answer costs
 * a regular expression and a Date otherwise, per value of every record a sync checks. The scalars'
 * serialize depends on the text alone, so a remembered answer is the answer.
 */
const MEMO_LIMIT = 4096;
function remembered(scalar: GraphQLScalarType): (v: string) => boolean {
  const memo = new Map<string, boolean>();
  return (v) => {
    let ok = memo.get(v);
    if (ok === undefined) {
      ok = serialises(scalar, v);
      if (memo.size < MEMO_LIMIT) memo.set(v, ok);
    }
    return ok;
  };
}
const dateServes = remembered(SCALARS.Date);
const dateTimeServes = remembered(SCALARS.DateTime);
export const acceptsDate = (v: unknown): boolean => typeof v === 'string' && dateServes(v);
export const acceptsDateTime = (v: unknown): boolean => typeof v === 'string' && dateTimeServes(v);

/** The outcome for one value: kept (maybe repaired, saying how) or not storable (saying why). */
export type Verdict = { ok: true; value: string; repaired?: string } | { ok: false; problem: string };

export function checkEmail(v: string): Verdict {
  if (acceptsEmail(v)) return { ok: true, value: v };
  const t = v.trim();
  if (t !== v && acceptsEmail(t)) return { ok: true, value: t, repaired: 'blanks trimmed' };
  return { ok: false, problem: 'not a valid email address' };
}

const pad = (n: string) => n.padStart(2, '0');

/** `YYYY-MM-DD` from a date written another way, when there is exactly one reading. */
export function checkDate(v: string): Verdict {
  if (acceptsDate(v)) return { ok: true, value: v };
  const t = v.trim();
  const candidates: string[] = [];
  const compact = /^(\d{4})(\d{2})(\d{2})$/.exec(t);
  if (compact) candidates.push(`${compact[1]}-${compact[2]}-${compact[3]}`);
  const isoPrefix = /^(\d{4}-\d{2}-\d{2})[T ]/.exec(t);
  if (isoPrefix && acceptsDateTime(t.replace(' ', 'T').replace(/(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/, '$1Z'))) candidates.push(isoPrefix[1]!);
  if (t !== v) candidates.push(t);
  const slash = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(t);
  if (slash) {
    const [a, b, y] = [slash[1]!, slash[2]!, slash[3]!];
    // Both readings that give a real date; one left (or both the same day) is unambiguous.
    const readings = new Set([`${y}-${pad(a)}-${pad(b)}`, `${y}-${pad(b)}-${pad(a)}`].filter(acceptsDate));
    if (readings.size > 1) return { ok: false, problem: 'an ambiguous date (day and month could be either way round)' };
    candidates.push(...readings);
  }
  const good = candidates.find(acceptsDate);
  return good ? { ok: true, value: good, repaired: 'rewritten as YYYY-MM-DD' } : { ok: false, problem: 'not a date' };
}

/** An ISO 8601 date-time with zone, from the forms vendors really send (see the header). */
export function checkDateTime(v: string): Verdict {
  if (acceptsDateTime(v)) return { ok: true, value: v };
  const t = v.trim();
  if (t !== v && acceptsDateTime(t)) return { ok: true, value: t, repaired: 'blanks trimmed' };
  const local = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)$/.exec(t);
  if (local) {
    const time = local[2]!.length === 5 ? `${local[2]}:00` : local[2];
    const iso = `${local[1]}T${time}Z`;
    if (acceptsDateTime(iso)) return { ok: true, value: iso, repaired: 'read as UTC (no zone given)' };
  }
  if (!local) {
    const d = checkDate(t);
    if (d.ok) return { ok: true, value: `${d.value}T00:00:00Z`, repaired: 'a date: midnight UTC' };
    if (/ambiguous/.test(d.problem)) return { ok: false, problem: d.problem };
  }
  return { ok: false, problem: 'not an ISO 8601 date-time' };
}

export const ORG_TYPES = ['district', 'school', 'department', 'local', 'state', 'national', 'other'] as const;
export const SESSION_TYPES = ['schoolYear', 'semester', 'term', 'gradingPeriod'] as const;
export const PERSON_ROLES = ['student', 'teacher', 'staff', 'administrator', 'guardian'] as const;
export const ENROLLMENT_ROLES = ['student', 'teacher', 'administrator', 'aide', 'proctor'] as const;
export const SEXES = ['male', 'female', 'other', 'unspecified'] as const;
export const FREE_REDUCED_LUNCH = ['free', 'reduced', 'paid', 'other'] as const;
export const GUARDIAN_RELATIONS = ['parent', 'guardian', 'grandparent', 'relative', 'sibling', 'aunt_uncle', 'self', 'other'] as const;

type Kind =
  | { kind: 'email' | 'date' | 'text' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'enumList'; values: readonly string[] };
interface FieldRule { rule: Kind; required?: boolean }
const email: FieldRule = { rule: { kind: 'email' } };
const date: FieldRule = { rule: { kind: 'date' } };
const text = (required = true): FieldRule => ({ rule: { kind: 'text' }, required });
const oneOf = (values: readonly string[], required = false): FieldRule => ({ rule: { kind: 'enum', values }, required });

/** Typed fields of each entity type; `required` ones are non-null in the schema, so a record without them is held back. */
export const FIELD_RULES: { [T in EntityType]: Record<string, FieldRule> } = {
  org: { name: text(), type: oneOf(ORG_TYPES, true) },
  academicSession: { title: text(), type: oneOf(SESSION_TYPES, true), startDate: date, endDate: date },
  course: { title: text() },
  person: { givenName: text(), familyName: text(), email, roles: { rule: { kind: 'enumList', values: PERSON_ROLES } } },
  demographics: { birthDate: date, sex: oneOf(SEXES), freeReducedLunch: oneOf(FREE_REDUCED_LUNCH) },
  class: { title: text() },
  enrollment: { role: oneOf(ENROLLMENT_ROLES, true), beginDate: date, endDate: date },
  guardianship: { relation: oneOf(GUARDIAN_RELATIONS) },
};

/** Reference fields without which a record means nothing: blank, the record is held back. */
export const REQUIRED_REFERENCES: Partial<Record<EntityType, string[]>> = {
  demographics: ['personKey'],
  enrollment: ['classKey', 'personKey'],
  guardianship: ['guardianKey', 'studentKey'],
};

/** One finding about one field of one record. Never carries the value itself (it may be personal). */
export interface ValueIssue {
  field: string;
  problem: string;
  /** repaired: stored in its repaired form; dropped: stored without it; held-back: the record is not stored. */
  action: 'repaired' | 'dropped' | 'held-back';
}

function member(values: readonly string[], v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  return values.includes(v) ? v : values.find((x) => x.toLowerCase() === v.trim().toLowerCase());
}

/** Checks one value against its rule: the stored value (undefined: drop it) and any issue. */
function checkValue(field: string, r: FieldRule, v: unknown): { value: unknown; issue?: ValueIssue } {
  const rule = r.rule;
  const fail = (problem: string) => ({ value: undefined, issue: { field, problem, action: r.required ? 'held-back' : 'dropped' } as ValueIssue });
  const fix = (out: Verdict) =>
    out.ok ? { value: out.value, ...(out.repaired ? { issue: { field, problem: out.repaired, action: 'repaired' as const } } : {}) } : fail(out.problem);
  if (v === undefined || v === null || (v === '' && rule.kind !== 'text')) return r.required ? fail('missing') : { value: undefined };
  switch (rule.kind) {
    case 'text':
      return typeof v === 'string' ? { value: v } : fail('not text');
    case 'email':
      return typeof v === 'string' ? fix(checkEmail(v)) : fail('not text');
    case 'date':
      return typeof v === 'string' ? fix(checkDate(v)) : fail('not text');
    case 'enum': {
      const m = member(rule.values, v);
      if (m === undefined) return fail(`not one of ${rule.values.join(', ')}`);
      return m === v ? { value: m } : { value: m, issue: { field, problem: 'letter case normalised', action: 'repaired' } };
    }
    case 'enumList': {
      if (!Array.isArray(v)) return fail('not a list');
      const kept = v.map((x) => member(rule.values, x)).filter((x): x is string => x !== undefined);
      if (kept.length === v.length) return { value: kept };
      return { value: kept, issue: { field, problem: `${v.length - kept.length} value(s) not one of ${rule.values.join(', ')}`, action: 'dropped' } };
    }
  }
}

/**
 * Text that is not Unicode (src/model/unicode.ts) cannot be stored as it is: PostgreSQL refused the
 * record's JSON (failing the page it came in, at every retry) and SQLite kept U+FFFD three times in
 * its place. So text is made Unicode at the boundary, each lone half replaced by U+FFFD (what a
 * decoder puts for bytes it cannot read), and the repair reported.
 */
const NOT_UNICODE = 'not Unicode text (a lone surrogate)';

/**
 * The value with its text made Unicode (strings in lists and objects too); the same value when
 * nothing changes. A value met again inside itself (a connector's bug: JSON cannot make one) is
 * left as it is, for the store to refuse, naming the record.
 */
function wellFormedValue(v: unknown, inside?: Set<object>): unknown {
  if (typeof v === 'string') return SURROGATE.test(v) ? wellFormed(v) : v;
  if (!v || typeof v !== 'object' || inside?.has(v)) return v;
  // The objects above this one, made only when an object is met below it (lists of text are most).
  let path: Set<object> | undefined;
  const inner = (x: unknown) => (x && typeof x === 'object' ? wellFormedValue(x, (path ??= new Set(inside).add(v))) : wellFormedValue(x));
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const y = inner(v[i]);
      if (y !== v[i]) (out ??= [...v])[i] = y;
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    const y = inner(x);
    if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
  }
  return out ?? v;
}

/**
 * Checks a record against the unified types: returns it with values repaired or dropped, or null
 * when it must be held back (a required value or reference missing or unusable), and what was found.
 */
export function checkRecord<R extends SourceRecord>(record: R): { record: R | null; issues: ValueIssue[] } {
  const issues: ValueIssue[] = [];
  let lastModified = record.lastModified;
  if (lastModified !== undefined && lastModified !== null) {
    const v: Verdict = typeof lastModified === 'string' ? checkDateTime(lastModified) : { ok: false, problem: 'not text' };
    if (v.ok) {
      lastModified = v.value;
      if (v.repaired) issues.push({ field: 'lastModified', problem: v.repaired, action: 'repaired' });
    } else {
      lastModified = undefined;
      issues.push({ field: 'lastModified', problem: v.problem, action: 'dropped' });
    }
  }
  const withTime = <X extends object>(x: X): X => {
    const out = { ...x } as X & { lastModified?: string };
    if (lastModified === undefined) delete out.lastModified;
    else out.lastModified = lastModified;
    return out;
  };
  // A type the model does not know cannot be stored (a connector bug): held back, not thrown.
  if (!(record.type in FIELD_RULES)) return { record: null, issues: [...issues, { field: 'type', problem: 'not a record type of the model', action: 'held-back' }] };
  // A key is the record's identity: repairing it could make it another record's.
  if (typeof record.key === 'string' && SURROGATE.test(record.key) && wellFormed(record.key) !== record.key) {
    return { record: null, issues: [...issues, { field: 'key', problem: NOT_UNICODE, action: 'held-back' }] };
  }
  if (record.deleted) return { record: withTime(record), issues };
  const data = { ...(record.data as unknown as Record<string, unknown>) };
  for (const field of Object.keys(data)) {
    const v = wellFormedValue(data[field]);
    if (v === data[field]) continue;
    data[field] = v;
    issues.push({ field, problem: `${NOT_UNICODE}, replaced by U+FFFD`, action: 'repaired' });
  }
  let held = false;
  for (const [field, rule] of Object.entries(FIELD_RULES[record.type])) {
    // A field this delivery does not carry (`keep`) stands as stored: nothing to check.
    if (record.keep?.includes(field)) continue;
    const r = checkValue(field, rule, data[field]);
    if (r.issue) issues.push(r.issue);
    if (r.issue?.action === 'held-back') held = true;
    if (r.value === undefined) delete data[field];
    else data[field] = r.value;
  }
  const refs = REFERENCES[record.type] as Record<string, EntityType>;
  for (const field of Object.keys(refs)) {
    const v = data[field];
    const required = REQUIRED_REFERENCES[record.type]?.includes(field) ?? false;
    if (typeof v === 'string' ? v.trim() === '' : v === undefined || v === null) {
      if (required) {
        issues.push({ field, problem: 'reference is blank', action: 'held-back' });
        held = true;
      } else if (v !== undefined) {
        delete data[field];
      }
    } else if (Array.isArray(v)) {
      const kept = v.filter((k) => typeof k === 'string' && k.trim() !== '');
      if (kept.length !== v.length) data[field] = kept;
    }
  }
  if (held) return { record: null, issues };
  return { record: withTime({ ...record, data }) as R, issues };
}

/**
 * Repairs data stored before values were checked (the store migration "stored values repaired"):
 * the same rules as at the boundary, applied to an entity's or a source record's data. A required
 * value that cannot be repaired is left as it is (there is no record to hold back any more).
 * Returns undefined when nothing changes.
 */
export function repairStoredData(type: EntityType, data: unknown): Record<string, unknown> | undefined {
  if (!data || typeof data !== 'object' || !(type in FIELD_RULES)) return undefined;
  const out = { ...(data as Record<string, unknown>) };
  let changed = false;
  for (const [field, rule] of Object.entries(FIELD_RULES[type])) {
    if (!(field in out) || rule.rule.kind === 'text') continue;
    const r = checkValue(field, rule, out[field]);
    if (r.issue?.action === 'held-back') continue;
    if (r.value === undefined ? out[field] === undefined : JSON.stringify(r.value) === JSON.stringify(out[field])) continue;
    if (r.value === undefined) delete out[field];
    else out[field] = r.value;
    changed = true;
  }
  return changed ? out : undefined;
}

/** A stored `lastModified` as it may be served: repaired, or null. Undefined when it is fine as it is. */
export function repairStoredDateTime(v: string | null): string | null | undefined {
  if (v === null || acceptsDateTime(v)) return undefined;
  const r = checkDateTime(v);
  return r.ok ? r.value : null;
}

/** Repairs a stored source record's data (`{ raw, resolved, … }`, see src/sync/ingest.ts). */
export function repairSourceData(type: EntityType, data: unknown): Record<string, unknown> | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const d = data as { raw?: unknown; resolved?: unknown };
  const raw = repairStoredData(type, d.raw);
  const resolved = d.resolved ? repairStoredData(type, d.resolved) : undefined;
  if (!raw && !resolved) return undefined;
  return { ...(data as Record<string, unknown>), ...(raw ? { raw } : {}), ...(resolved ? { resolved } : {}) };
}
