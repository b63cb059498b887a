/**
 * Subject access: everything the gateway holds about one person, gathered from the store for the
 * school to hand to the person or their parent (GDPR art. 15). Pure reading, apart from the audit
 * entry the command appends (src/commands/subject-export.ts).
 *
 * What "about the person" covers: the person's record and the records that exist because of them
 * (demographics, enrollments, guardianships), each source's stored version of those records, the
 * pseudonyms, match keys and identity decisions keyed to the person, the change log of those
 * records, the disclosure ledger, and the audit entries that can concern them. Other people appear
 * only by gateway id and relation (a guardian's name is the guardian's own data), organisations and
 * classes by their name or title (not personal data).
 */
import { createHmac } from 'node:crypto';
import type { EntityType } from '../model/records.ts';
import type { AuditRow, EntityRow, Store, SubjectRows } from '../store/types.ts';
import type { Category, Classification } from './classification.ts';
import type { Purpose } from './policy.ts';
import type { PurposeSchema } from './purpose-schema.ts';

export const SUBJECT_EXPORT_FORMAT = 'rostergate-subject-export/1';

/** GraphQL types whose fields carry data about a person, and the entity type they render. */
const PERSON_TYPES: Record<string, EntityType> = { Person: 'person', Demographics: 'demographics', Enrollment: 'enrollment', Guardianship: 'guardianship' };

/** The ledger keeps `last_at` to the hour (src/privacy/audit.ts): a disclosure may be that much later. */
const LEDGER_SLACK_MS = 3_600_000;

export interface SubjectExportInput {
  store: Store;
  personId: string;
  classification: Classification;
  purposes: ReadonlyMap<string, Purpose>;
  schemas: ReadonlyMap<string, PurposeSchema>;
  clients: readonly { id: string; purpose: string; description?: string }[];
  sourceTypes: ReadonlyMap<string, string>;
  tenant: string;
  now?: Date;
}

export interface SubjectExport {
  format: typeof SUBJECT_EXPORT_FORMAT;
  generatedAt: string;
  tenant: string;
  person: { id: string; updatedAt: string };
  /** The unified record as the gateway serves it to a purpose allowed everything. */
  unified: {
    person: Record<string, unknown>;
    demographics: Record<string, unknown> | null;
    organisations: { id: string; name: string; type: string }[];
    enrollments: { id: string; sources: string[]; role: unknown; beginDate?: unknown; endDate?: unknown; primary?: unknown; class: { id: string; title: string | null; classCode: string | null } | null; school: { id: string; name: string } | null }[];
    /** The other person by gateway id only: their name is their own data. */
    guardianships: { id: string; sources: string[]; relation: unknown; personIs: 'guardian' | 'student'; otherPersonId: string | null }[];
  };
  sourceRecords: { source: string; sourceType: string | null; type: EntityType; key: string; entityId: string | null; lastModified: string | null; data: unknown }[];
  pseudonyms: { domain: string; version: number; value: string; current: boolean; purposes: string[] }[];
  matchKeys: { kind: string; hash: string }[];
  identity: {
    overrides: SubjectRows['overrides'];
    conflicts: { id: number; at: string; source: string; key: string; reason: string; resolvedAt: string | null; resolution: string | null }[];
  };
  changes: SubjectRows['changes'];
  disclosures: Disclosure[];
  audit: { note: string; entries: (Omit<AuditRow, 'prevHash' | 'hash'> & { seq: number })[] };
  notes: string[];
}

export interface Disclosure {
  client: string;
  purpose: string | null;
  clientDescription: string | null;
  purposeDescription: string | null;
  legalBasis: string | null;
  firstAt: string;
  lastAt: string;
  /** What the client's purpose receives about a person, field by field, grouped by category. */
  receives: Partial<Record<Category, { field: string; as: 'allowed' | 'pseudonymised' | 'generalised' }[]>>;
}

export async function buildSubjectExport(i: SubjectExportInput): Promise<SubjectExport> {
  const [person] = await i.store.getEntities([i.personId]);
  if (!person || person.type !== 'person') throw new Error(`no person ${i.personId}`);
  const id = person.id;
  const rels = ['demographics.person', 'enrollment.person', 'guardianship.guardian', 'guardianship.student'] as const;
  const linked = Object.fromEntries(await Promise.all(rels.map(async (r) => [r, (await i.store.linkedFrom(r, [id])).get(id) ?? []] as const))) as Record<(typeof rels)[number], string[]>;
  const ownIds = [...new Set(rels.flatMap((r) => linked[r]))];
  const own = new Map((await i.store.getEntities(ownIds)).filter((e): e is EntityRow => !!e).map((e) => [e.id, e]));
  const rows = await i.store.subjectRows([id, ...ownIds]);

  const pdata = person.data as Record<string, unknown>;
  /** Which sources delivered a record: a class (and so an enrollment) is not matched across sources, so each source's is its own. */
  const sourcesOf = (entityId: string) => [...new Set(rows.sourceRecords.filter((r) => r.entityId === entityId).map((r) => r.source))];
  const enrollments = linked['enrollment.person'].map((e) => own.get(e)).filter((e): e is EntityRow => !!e);
  const classIds = enrollments.map((e) => (e.data as Record<string, unknown>).classId).filter((x): x is string => typeof x === 'string');
  const classes = new Map((await i.store.getEntities([...new Set(classIds)])).filter((e): e is EntityRow => !!e).map((e) => [e.id, e.data as Record<string, unknown>]));
  const orgIds = new Set<string>([...strings(pdata.orgIds), ...strings(pdata.primaryOrgId)]);
  for (const e of enrollments) for (const o of strings((e.data as Record<string, unknown>).schoolId)) orgIds.add(o);
  const orgs = new Map((await i.store.getEntities([...orgIds])).filter((e): e is EntityRow => !!e).map((e) => [e.id, e.data as Record<string, unknown>]));

  const demographics = linked['demographics.person'].map((d) => own.get(d)).find(Boolean);
  const guardianships = [
    ...linked['guardianship.guardian'].map((g) => [g, 'guardian'] as const),
    ...linked['guardianship.student'].map((g) => [g, 'student'] as const),
  ].flatMap(([g, personIs]) => {
    const row = own.get(g);
    if (!row) return [];
    const d = row.data as Record<string, unknown>;
    const other = personIs === 'guardian' ? d.studentId : d.guardianId;
    return [{ id: g, sources: sourcesOf(g), relation: d.relation ?? null, personIs, otherPersonId: typeof other === 'string' ? other : null }];
  });

  const domainPurposes = new Map<string, string[]>();
  for (const p of i.purposes.values()) {
    if (i.schemas.get(p.id)?.pseudonymises) (domainPurposes.get(p.domain) ?? domainPurposes.set(p.domain, []).get(p.domain)!).push(p.id);
  }
  const recordKeys = new Set(rows.sourceRecords.filter((r) => r.entityId === id).map((r) => `${r.source}\u0000${r.key}`));
  const conflicts = (await i.store.conflicts())
    .filter((c) => c.type === 'person' && (c.candidates.includes(id) || recordKeys.has(`${c.source}\u0000${c.key}`)))
    .map((c) => ({ id: c.id, at: c.at, source: c.source, key: c.key, reason: c.reason, resolvedAt: c.resolvedAt, resolution: c.resolution }));

  const disclosures = ledger(rows, i);
  const audit = await auditEntries(i.store, disclosures);

  return {
    format: SUBJECT_EXPORT_FORMAT,
    generatedAt: (i.now ?? new Date()).toISOString(),
    tenant: i.tenant,
    person: { id, updatedAt: person.updatedAt },
    unified: {
      person: pdata,
      demographics: demographics ? (demographics.data as Record<string, unknown>) : null,
      organisations: [...orgs].map(([oid, o]) => ({ id: oid, name: String(o.name ?? ''), type: String(o.type ?? '') })),
      enrollments: enrollments.map((e) => {
        const d = e.data as Record<string, unknown>;
        const cls = typeof d.classId === 'string' ? classes.get(d.classId) : undefined;
        const school = typeof d.schoolId === 'string' ? orgs.get(d.schoolId) : undefined;
        return {
          id: e.id, sources: sourcesOf(e.id), role: d.role ?? null, beginDate: d.beginDate, endDate: d.endDate, primary: d.primary,
          class: cls ? { id: d.classId as string, title: (cls.title as string | undefined) ?? null, classCode: (cls.classCode as string | undefined) ?? null } : null,
          school: school ? { id: d.schoolId as string, name: String(school.name ?? '') } : null,
        };
      }),
      guardianships,
    },
    sourceRecords: rows.sourceRecords.map((r) => ({
      source: r.source, sourceType: i.sourceTypes.get(r.source) ?? null, type: r.type, key: r.key, entityId: r.entityId, lastModified: r.lastModified, data: delivered(r.data),
    })),
    pseudonyms: rows.pseudonyms.filter((p) => p.entityId === id).map((p) => ({
      domain: p.domain, version: p.version, value: p.value, current: p.current, purposes: domainPurposes.get(p.domain) ?? [],
    })),
    matchKeys: rows.matchKeys.filter((k) => k.entityId === id).map((k) => ({ kind: k.kind, hash: k.value })),
    identity: { overrides: rows.overrides, conflicts },
    changes: rows.changes,
    disclosures,
    audit,
    notes: [
      'Source records are stored as each source delivered them, minus the fields no purpose may receive (dropped at ingest and never stored).',
      'Match keys are keyed hashes (HMAC-SHA256 under the gateway\'s key) of the normalised SIS id, email or state id; the gateway keeps them to recognise the same person from another source, not the values themselves.',
      'Pseudonyms are keyed per domain: the clients of the listed purposes know the person by the current one.',
      'Other people (guardians, students in a guardianship) are named by gateway id and relation only; their data is their own.',
      'Webhook deliveries queued for a client contain the same fields as that client\'s disclosures; they are not repeated here.',
    ],
  };
}

/**
 * The record as its source delivered it (minimised at ingest): the stored row also keeps it with
 * references resolved and its match-key hashes, which the export shows as the unified record and
 * matchKeys instead of repeating them.
 */
function delivered(data: unknown): unknown {
  const d = data as { raw?: unknown } | null;
  return d && typeof d === 'object' && 'raw' in d ? d.raw : data;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []);

/** One entry per client in the ledger (the person, or records about them), with what its purpose receives. */
function ledger(rows: SubjectRows, i: SubjectExportInput): Disclosure[] {
  const byClient = new Map<string, { firstAt: string; lastAt: string }>();
  for (const d of rows.disclosures) {
    const c = byClient.get(d.client);
    if (!c) byClient.set(d.client, { firstAt: d.firstAt, lastAt: d.lastAt });
    else byClient.set(d.client, { firstAt: d.firstAt < c.firstAt ? d.firstAt : c.firstAt, lastAt: d.lastAt > c.lastAt ? d.lastAt : c.lastAt });
  }
  return [...byClient].map(([client, at]) => {
    const cfg = i.clients.find((c) => c.id === client);
    const purpose = cfg ? i.purposes.get(cfg.purpose) : undefined;
    return {
      client,
      purpose: purpose?.id ?? null,
      clientDescription: cfg?.description ?? null,
      purposeDescription: purpose?.description ?? null,
      legalBasis: purpose?.legalBasis ?? null,
      ...at,
      receives: purpose ? receivedFields(i.classification, i.schemas.get(purpose.id)) : {},
    };
  });
}

function receivedFields(cls: Classification, ps: PurposeSchema | undefined): Disclosure['receives'] {
  const out: Disclosure['receives'] = {};
  if (!ps) return out;
  for (const coord of [...ps.received].sort()) {
    const f = cls.get(coord);
    if (!f || !(f.type in PERSON_TYPES)) continue;
    const as = ps.actions.get(coord) === 'pseudonymise' ? 'pseudonymised' : f.generalises ? 'generalised' : 'allowed';
    (out[f.category] ??= []).push({ field: coord, as });
  }
  return out;
}

const AUDIT_NOTE =
  'The audit log records per request the client, purpose, operation, the fields touched (counted by category) and how many people it carried, ' +
  'but not who they were. Listed here are the entries of the clients the disclosure ledger says received this person, between the first and the ' +
  'last disclosure to each: they may concern this person, and every request that disclosed them is among them. Entries of other clients did ' +
  'not disclose this person. Operators\' identity decisions name no one in the log; the ones that pin this person\'s records are under identity.overrides.';

async function auditEntries(store: Store, disclosures: Disclosure[]): Promise<SubjectExport['audit']> {
  const windows = new Map(disclosures.map((d) => [d.client, { from: d.firstAt, to: new Date(Date.parse(d.lastAt) + LEDGER_SLACK_MS).toISOString() }]));
  const entries: SubjectExport['audit']['entries'] = [];
  if (windows.size === 0) return { note: AUDIT_NOTE, entries };
  for (let after = 0; ;) {
    const batch = await store.auditEntries({ afterSeq: after, limit: 5000 });
    if (batch.length === 0) break;
    for (const e of batch) {
      after = e.seq;
      const w = windows.get(e.client);
      if (!w || e.people === 0 || e.at < w.from || e.at > w.to) continue;
      const { prevHash: _p, hash: _h, ...entry } = e;
      entries.push(entry);
    }
  }
  return { note: AUDIT_NOTE, entries };
}

/**
 * How the audit log refers to an exported person: a keyed hash of the gateway id, so the log names
 * no one, while an operator holding the key can tell whether a given person's data was exported.
 */
export function subjectRef(auditKey: Buffer, personId: string): string {
  return createHmac('sha256', auditKey).update(`subject-export\n${personId}`).digest('hex').slice(0, 32);
}

/** Counts the classified fields an export holds about the person, by category, for its audit entry. */
export function exportedCategories(cls: Classification, x: SubjectExport): { categories: Record<string, number>; fields: string[] } {
  const fields: string[] = [];
  const add = (type: string, data: Record<string, unknown> | null) => {
    for (const [k, v] of Object.entries(data ?? {})) if (v !== undefined && v !== null && cls.has(`${type}.${k}`)) fields.push(`${type}.${k}`);
  };
  add('Person', x.unified.person);
  add('Demographics', x.unified.demographics);
  const categories: Record<string, number> = {};
  for (const f of fields) {
    const c = cls.get(f)!.category;
    categories[c] = (categories[c] ?? 0) + 1;
  }
  return { categories, fields: fields.sort() };
}
