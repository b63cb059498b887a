/**
 * Identity resolution: the same person arriving from several sources is linked to one gateway id,
 * so analytics can join across sources. Rules are tried in order (by default SIS id, then
 * normalised email). A link is made only when the evidence is unambiguous; anything else becomes a
 * reported conflict and a separate person — never a silent merge.
 */
import type { PersonData } from '../model/records.ts';
import type { StoreTx } from '../store/types.ts';

export type MatchRule = 'sisId' | 'email' | 'stateId';
export const DEFAULT_MATCH_RULES: MatchRule[] = ['sisId', 'email'];

export function normaliseMatchValue(rule: MatchRule, v: string | undefined): string | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (!t) return undefined;
  return rule === 'email' ? t.toLowerCase() : t.toUpperCase();
}

export interface MatchKey {
  kind: MatchRule;
  value: string;
}

/**
 * Match keys of a person, in rule order. With `hash` (the gateway's keyed hash), the store keeps
 * only keyed hashes of SIS ids and emails, so matching works even for fields ingest minimisation
 * does not store.
 */
export function matchKeysOf(data: Partial<PersonData>, rules: MatchRule[], hash?: (kind: string, v: string) => string): MatchKey[] {
  const out: MatchKey[] = [];
  for (const r of rules) {
    const v = normaliseMatchValue(r, data[r]);
    if (v) out.push({ kind: r, value: hash ? hash(r, v) : v });
  }
  return out;
}

export type Resolution =
  | { kind: 'new' }
  | { kind: 'link'; entityId: string; rule: MatchRule }
  | { kind: 'conflict'; reason: string; candidates: string[] };

/**
 * Rules whose ids are issued per role: an SIS keeps students and staff in separate tables, so a
 * student's SIS id can equal a teacher's. A match by one of these links a student only to a student.
 * Emails are unique across roles and need no such check.
 */
const PER_ROLE_RULES: ReadonlySet<MatchRule> = new Set(['sisId', 'stateId']);

const isStudent = (roles: readonly string[]) => roles.includes('student');

/**
 * Decides which existing person (if any) a new source record of a person belongs to. `roles` are
 * the record's roles, checked against the candidate's when the deciding rule is a per-role id.
 */
export async function resolvePerson(tx: StoreTx, source: string, keys: MatchKey[], roles: readonly string[] = []): Promise<Resolution> {
  const byRule: { rule: MatchRule; ids: string[] }[] = [];
  for (const k of keys) {
    const ids = await tx.findByMatchKey(k.kind, k.value);
    if (ids.length) byRule.push({ rule: k.kind, ids });
  }
  if (byRule.length === 0) return { kind: 'new' };
  const first = byRule[0]!;
  if (first.ids.length > 1) return { kind: 'conflict', reason: `ambiguous ${first.rule}: matches ${first.ids.length} people`, candidates: first.ids };
  const candidate = first.ids[0]!;
  const disagreeing = byRule.slice(1).find((r) => !r.ids.includes(candidate));
  if (disagreeing) {
    return {
      kind: 'conflict',
      reason: `${first.rule} and ${disagreeing.rule} point at different people`,
      candidates: [...new Set([candidate, ...disagreeing.ids])],
    };
  }
  // A source that already delivered this person under another key says these are two people.
  const sameSource = (await tx.sourceRecordsOf(candidate)).some((r) => r.source === source);
  if (sameSource) return { kind: 'conflict', reason: `${first.rule} matches a different record of the same source`, candidates: [candidate] };
  if (PER_ROLE_RULES.has(first.rule) && roles.length > 0) {
    const theirs = ((await tx.getEntity(candidate))?.data as { roles?: string[] } | undefined)?.roles ?? [];
    if (theirs.length > 0 && isStudent(theirs) !== isStudent(roles)) {
      return { kind: 'conflict', reason: `${first.rule} matches a ${isStudent(theirs) ? 'student' : 'non-student'} but this record is ${isStudent(roles) ? 'a student' : 'not a student'}`, candidates: [candidate] };
    }
  }
  return { kind: 'link', entityId: candidate, rule: first.rule };
}
