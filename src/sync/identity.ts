/**
 * Identity resolution: the same person, or the same school or district, arriving from several
 * sources is linked to one gateway id, so queries and analytics join across sources. Rules are
 * tried in order (people: by default SIS id, then normalised email; organisations: their official
 * identifier, then their SIS id). A link is made only when the evidence is unambiguous; anything else becomes a
 * reported conflict and a separate record — never a silent merge.
 */
import type { OrgData, PersonData } from '../model/records.ts';
import type { EntityRow, StoreTx as FullTx } from '../store/types.ts';

/** The reads resolution makes (a page unit of work answers them from its plan). */
type StoreTx = Pick<FullTx, 'findByMatchKey' | 'sourceRecordsOf' | 'getEntity'>;

export type MatchRule = 'sisId' | 'email' | 'stateId';
export const DEFAULT_MATCH_RULES: MatchRule[] = ['sisId', 'email'];

/**
 * Organisation rules, one per kind of id (see OrgData): `identifier` is the official NCES / DfE id,
 * `sisId` the district SIS's own id for the school (what Graph and SDS call externalId / SIS ID),
 * `stateId` the state's id, `schoolNumber` the district's number. SIS ids and school numbers are
 * unique only within one district, like a person's SIS id. The default links what real
 * deployments share: the official id where a vendor has one, else the SIS's id (Graph has no
 * official id at all); rules that point at different organisations are a conflict. `stateId` is
 * not a default: Microsoft's own SDS sample fills a school's State ID with the state's code ("WA").
 */
export const ORG_MATCH_RULES = ['identifier', 'sisId', 'stateId', 'schoolNumber'] as const;
export type OrgMatchRule = (typeof ORG_MATCH_RULES)[number];
export const DEFAULT_ORG_MATCH_RULES: OrgMatchRule[] = ['identifier', 'sisId'];

export function normaliseMatchValue(rule: MatchRule | OrgMatchRule, v: string | undefined): string | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (!t) return undefined;
  return rule === 'email' ? t.toLowerCase() : t.toUpperCase();
}

export interface MatchKey {
  /** The rule: `sisId`, `email`, `stateId` for people; `org.identifier`, `org.sisId`, `org.stateId`, `org.schoolNumber` for organisations. */
  kind: string;
  value: string;
}

/** Organisation keys live beside people's in one index, under their own kinds (and hash keys). */
const ORG_KIND_PREFIX = 'org.';
const ruleOf = (kind: string) => (kind.startsWith(ORG_KIND_PREFIX) ? kind.slice(ORG_KIND_PREFIX.length) : kind);

type Hash = (kind: string, v: string) => string;

function keysOf(values: Partial<Record<string, unknown>>, rules: readonly (MatchRule | OrgMatchRule)[], prefix: string, hash?: Hash): MatchKey[] {
  const out: MatchKey[] = [];
  for (const r of rules) {
    const raw = values[r];
    const v = normaliseMatchValue(r, typeof raw === 'string' ? raw : undefined);
    const kind = `${prefix}${r}`;
    if (v) out.push({ kind, value: hash ? hash(kind, v) : v });
  }
  return out;
}

/**
 * Match keys of a person, in rule order. With `hash` (the gateway's keyed hash), the store keeps
 * only keyed hashes of SIS ids and emails, so matching works even for fields ingest minimisation
 * does not store.
 */
export function matchKeysOf(data: Partial<PersonData>, rules: readonly MatchRule[], hash?: Hash): MatchKey[] {
  return keysOf(data, rules, '', hash);
}

/** Match keys of an organisation, in rule order; hashed like people's, since minimisation may not store the identifier. */
export function orgMatchKeysOf(data: Partial<OrgData>, rules: readonly OrgMatchRule[], hash?: Hash): MatchKey[] {
  return keysOf(data, rules, ORG_KIND_PREFIX, hash);
}

export type Resolution =
  | { kind: 'new' }
  | { kind: 'link'; entityId: string; rule: string }
  | { kind: 'conflict'; reason: string; candidates: string[] };

/**
 * What differs between entity kinds: how their records are called in conflict reasons, and a last
 * check of the candidate the rules agree on (undefined: compatible; else why not).
 */
interface Subject {
  plural: string;
  /** `candidate` reads the candidate entity, only when a check needs it (one lookup fewer per link otherwise). */
  incompatible(candidate: () => Promise<EntityRow | undefined>, rule: string): Promise<string | undefined>;
}

/**
 * The shared decision: the first rule with a match decides, every later rule with a match must
 * agree, and a source that already delivered the candidate under another key says these are two.
 */
async function resolve(tx: StoreTx, source: string, keys: MatchKey[], subject: Subject): Promise<Resolution> {
  const byRule: { rule: string; ids: string[] }[] = [];
  for (const k of keys) {
    const ids = await tx.findByMatchKey(k.kind, k.value);
    if (ids.length) byRule.push({ rule: ruleOf(k.kind), ids });
  }
  if (byRule.length === 0) return { kind: 'new' };
  const first = byRule[0]!;
  if (first.ids.length > 1) return { kind: 'conflict', reason: `ambiguous ${first.rule}: matches ${first.ids.length} ${subject.plural}`, candidates: first.ids };
  const candidate = first.ids[0]!;
  const disagreeing = byRule.slice(1).find((r) => !r.ids.includes(candidate));
  if (disagreeing) {
    return {
      kind: 'conflict',
      reason: `${first.rule} and ${disagreeing.rule} point at different ${subject.plural}`,
      candidates: [...new Set([candidate, ...disagreeing.ids])],
    };
  }
  if ((await tx.sourceRecordsOf(candidate)).some((r) => r.source === source)) {
    return { kind: 'conflict', reason: `${first.rule} matches a different record of the same source`, candidates: [candidate] };
  }
  const why = await subject.incompatible(() => tx.getEntity(candidate), first.rule);
  if (why) return { kind: 'conflict', reason: why, candidates: [candidate] };
  return { kind: 'link', entityId: candidate, rule: first.rule };
}

/**
 * Rules whose ids are issued per role: an SIS keeps students and staff in separate tables, so a
 * student's SIS id can equal a teacher's. A match by one of these links a student only to a student.
 * Emails are unique across roles and need no such check.
 */
const PER_ROLE_RULES: ReadonlySet<string> = new Set<MatchRule>(['sisId', 'stateId']);

const isStudent = (roles: readonly string[]) => roles.includes('student');

/**
 * Decides which existing person (if any) a new source record of a person belongs to. `roles` are
 * the record's roles, checked against the candidate's when the deciding rule is a per-role id.
 */
export async function resolvePerson(tx: StoreTx, source: string, keys: MatchKey[], roles: readonly string[] = []): Promise<Resolution> {
  return resolve(tx, source, keys, {
    plural: 'people',
    async incompatible(candidate, rule) {
      if (!PER_ROLE_RULES.has(rule) || roles.length === 0) return undefined;
      const theirs = ((await candidate())?.data as { roles?: string[] } | undefined)?.roles ?? [];
      if (theirs.length === 0 || isStudent(theirs) === isStudent(roles)) return undefined;
      return `${rule} matches a ${isStudent(theirs) ? 'student' : 'non-student'} but this record is ${isStudent(roles) ? 'a student' : 'not a student'}`;
    },
  });
}

/**
 * Decides which existing organisation (if any) a new source record of an organisation belongs to.
 * Only the same type links (a school to a school, a district to a district): a school and a district
 * sharing an identifier is a data error to report, not a reason to merge them.
 */
export async function resolveOrg(tx: StoreTx, source: string, keys: MatchKey[], type: OrgData['type']): Promise<Resolution> {
  return resolve(tx, source, keys, {
    plural: 'organisations',
    async incompatible(candidate, rule) {
      const theirs = ((await candidate())?.data as { type?: string } | undefined)?.type;
      return theirs && theirs !== type ? `${rule} matches a ${theirs} but this record is a ${type}` : undefined;
    },
  });
}
