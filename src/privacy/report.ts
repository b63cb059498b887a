/**
 * The privacy report (`rostergate privacy-report`): a privacy leaflet for parents and schools,
 * followed by a record of processing activities (GDPR art. 30) for a data protection officer.
 *
 * Generated, never written by hand: every list of fields comes from the running configuration and
 * the schema — the connectors' declared mappings (what each source delivers), ingest minimisation
 * (what is stored and what is dropped), each purpose's derived schema (allowed, pseudonymised,
 * generalised, denied, withheld relations), its k-anonymity policy, and the retention the code
 * enforces. Only what cannot be derived (who the controller and processor are, where processing
 * happens, sub-processors) comes from the `privacy` config keys declared here.
 *
 * config + privacy → `ReportModel` (pure data, tested) → `Doc` → Markdown or HTML.
 */
import type { ReportConfig } from './config.ts';
import { CONNECTORS, definitionOf } from '../../connectors/registry.ts';
import { ENTITY_TYPES, REFERENCES, type EntityType } from '../model/records.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import { RostergateError } from '../errors.ts';
import type { Category } from './classification.ts';
import { createMinimiser } from './minimise.ts';
import type { PrivacyPolicy } from './privacy-policy.ts';
import { toHtml, toMarkdown, type Block, type Doc, type Inline, type Text } from './report-render.ts';

// ---------------------------------------------------------------- config keys

export const REPORT_FORMATS = ['md', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

// ---------------------------------------------------------------- model

export type Treatment =
  | { kind: 'allowed' }
  | { kind: 'pseudonymised'; domain: string }
  /** A coarser form computed from `from` (a coordinate); `exactToo` when the purpose receives the exact value as well. */
  | { kind: 'generalised'; from: string; exactToo: boolean }
  /** `emptyType`: allowed by the policy, but nothing on the field's type is received, so there is nothing to show. */
  | { kind: 'denied'; emptyType?: boolean }
  /** Allowed by the policy, withheld because it would tell the Person field `reveals`, which the purpose denies. */
  | { kind: 'withheld'; reveals: string };

export interface FieldRow {
  coordinate: string;
  category: Category;
  treatment: Treatment;
}

export interface PurposeModel {
  id: string;
  description?: string;
  legalBasis: string;
  clients: { id: string; description?: string }[];
  /** Personal fields (every category but NONE) of the roster types, each with its treatment. */
  personal: FieldRow[];
  /** Relations and filters (any category) withheld beyond the policy, each with the Person field it would reveal. */
  withheld: { coordinate: string; reveals: string }[];
  /** Non-personal fields (NONE) received, and denied. */
  otherReceived: string[];
  otherDenied: string[];
  extracts: boolean;
  admin: boolean;
  kAnonymity?: { k: number; onViolation: string; maxSuppressShare: number };
}

export interface SourceModel {
  id: string;
  type: string;
  records: { type: string; stored: string[]; dropped: string[]; links: string[] }[];
}

export interface CategoryModel {
  category: Exclude<Category, 'NONE'>;
  /** Record fields of this category any source type can deliver that the store keeps, and that it drops at ingest. */
  stored: string[];
  notStored: string[];
}

export interface RetentionRow {
  kind: string;
  /** The enforced period in plain words, or undefined where none is configured yet. */
  period?: string;
  how: string;
}

export interface ReportModel {
  tenant: string;
  controller?: { name: string; contact: string };
  processor?: { name: string; contact: string; dpo?: string };
  processingLocations: string[];
  subProcessors: { name: string; purpose: string; location: string }[];
  sources: SourceModel[];
  categories: CategoryModel[];
  purposes: PurposeModel[];
  retention: RetentionRow[];
  webhooks: { maxAttempts: number };
}

/** The types whose fields the report lists: the roster records, the value objects they hold, and classified lookups (Query.personBySignIn). */
const REPORT_TYPES = ['Person', 'Demographics', 'Guardianship', 'Enrollment', 'Class', 'Course', 'AcademicSession', 'Organization', 'Address', 'SourceRef', 'Query'];
const typeRank = (coord: string) => REPORT_TYPES.indexOf(coord.slice(0, coord.indexOf('.')));
const TYPE_OF_GRAPHQL = new Map(ENTITY_TYPES.map((t) => [GRAPHQL_TYPE[t], t] as const));

export function buildReportModel(cfg: ReportConfig, privacy: PrivacyPolicy): ReportModel {
  if (privacy.purposes.size === 0) {
    throw new RostergateError('CONFIG_INVALID', `${cfg.file ?? 'config'}: no purposes configured, so there is nothing to report on: the report describes who receives what, per purpose`);
  }
  const cls = privacy.classification;
  const fields = [...cls.values()].filter((f) => REPORT_TYPES.includes(f.type) && !(f.type === 'Query' && f.category === 'NONE')).sort((a, b) => typeRank(a.coordinate) - typeRank(b.coordinate));
  const minimiser = createMinimiser(cls, privacy.received);
  const coordOf = (t: EntityType, field: string) => `${GRAPHQL_TYPE[t]}.${field}`;
  const isReference = (t: EntityType, field: string) => field in REFERENCES[t];

  const sources: SourceModel[] = cfg.sources.map((s) => {
    const delivers = definitionOf(s.type)!.delivers as Partial<Record<EntityType, readonly string[]>>;
    const records = ENTITY_TYPES.filter((t) => delivers[t]?.length).map((t) => {
      const own = delivers[t]!.filter((f) => !isReference(t, f));
      const kept = minimiser.kept.get(t)!;
      return {
        type: GRAPHQL_TYPE[t],
        stored: own.filter((f) => kept.has(f)).map((f) => coordOf(t, f)),
        dropped: own.filter((f) => !kept.has(f)).map((f) => coordOf(t, f)),
        links: [...new Set(delivers[t]!.filter((f) => isReference(t, f)).map((f) => GRAPHQL_TYPE[(REFERENCES[t] as Record<string, EntityType>)[f]!]))],
      };
    });
    return { id: s.id, type: s.type, records };
  });

  // Every record field any registered source type can deliver: what could arrive, and whether it is kept.
  const deliverable = new Set(CONNECTORS.flatMap((d) => Object.entries(d.delivers as Record<string, readonly string[]>).flatMap(([t, fs]) => fs.map((f) => `${t}.${f}`))));
  const categories: CategoryModel[] = (['DIRECT', 'IDENTIFIER', 'QUASI', 'SPECIAL'] as const).map((category) => {
    const stored: string[] = [];
    const notStored: string[] = [];
    for (const f of fields) {
      const t = TYPE_OF_GRAPHQL.get(f.type);
      if (f.category !== category || !t || !deliverable.has(`${t}.${f.field}`) || isReference(t, f.field)) continue;
      (minimiser.kept.get(t)!.has(f.field) ? stored : notStored).push(f.coordinate);
    }
    return { category, stored, notStored };
  });

  const purposes: PurposeModel[] = [...privacy.purposes.values()].map((p) => {
    const ps = privacy.schemas.get(p.id)!;
    const treatment = (coord: string): Treatment => {
      const f = cls.get(coord)!;
      if (ps.received.has(coord)) {
        if (ps.actions.get(coord) === 'pseudonymise') return { kind: 'pseudonymised', domain: p.domain };
        if (f.generalises) return { kind: 'generalised', from: `${f.type}.${f.generalises}`, exactToo: ps.received.has(`${f.type}.${f.generalises}`) };
        return { kind: 'allowed' };
      }
      const reveals = ps.withheld.get(coord);
      if (reveals) return { kind: 'withheld', reveals };
      return ps.actions.get(coord) === 'deny' ? { kind: 'denied' } : { kind: 'denied', emptyType: true };
    };
    const rows = fields.map((f) => ({ coordinate: f.coordinate, category: f.category, treatment: treatment(f.coordinate) }));
    const other = rows.filter((r) => r.category === 'NONE');
    return {
      id: p.id,
      description: p.description,
      legalBasis: p.legalBasis,
      clients: cfg.clients.filter((c) => c.purpose === p.id).map((c) => ({ id: c.id, description: c.description })),
      personal: rows.filter((r) => r.category !== 'NONE'),
      withheld: [...ps.withheld].map(([coordinate, reveals]) => ({ coordinate, reveals })).sort((a, b) => a.coordinate.localeCompare(b.coordinate)),
      otherReceived: other.filter((r) => r.treatment.kind === 'allowed').map((r) => r.coordinate),
      otherDenied: other.filter((r) => r.treatment.kind === 'denied').map((r) => r.coordinate),
      extracts: p.extracts,
      admin: p.admin,
      kAnonymity: p.extracts ? { ...p.kAnonymity } : undefined,
    };
  });

  const r = cfg.retention;
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  const run = r.runEveryHours ? `\`rostergate retention run\`, and every ${plural(r.runEveryHours, 'hour')} inside \`serve\`` : '`rostergate retention run` (the scheduled run in `serve` is off)';
  const retention: RetentionRow[] = [
    { kind: 'Change log and deletion tombstones (change feed, webhooks)', period: plural(r.changeLogDays, 'day'), how: `Older changes and tombstones are removed after every sync run and by ${run} (config key retention.changeLogDays).` },
    { kind: 'People, classes and other roster records', how: `Kept while a source delivers them; a record a full sync no longer sees is deleted at once. What remains of a person no source delivers any more is the tombstone in the change log, removed after ${plural(r.changeLogDays, 'day')}.` },
    { kind: 'Audit log', period: plural(r.auditMonths, 'month'), how: `Older entries are removed by ${run}; a checkpoint entry keeps the hash chain verifiable (config key retention.auditMonths, at least 6 months).` },
    { kind: 'Disclosure ledger', how: 'Kept while the person is stored: it says which clients must be told of an erasure.' },
    { kind: 'Webhook deliveries', period: plural(r.webhookDeliveryDays, 'day'), how: `Delivered and dead deliveries are removed by ${run}; pending ones are kept until delivered (config key retention.webhookDeliveryDays).` },
    { kind: 'Extract files and their reports', period: 'not kept by the gateway', how: 'The gateway keeps no copy: an extract is written to the file the operator names, or streamed to the client.' },
  ];

  return {
    tenant: cfg.privacy.tenant,
    controller: cfg.privacy.controller,
    processor: cfg.privacy.processor,
    processingLocations: cfg.privacy.processingLocations ?? [],
    subProcessors: cfg.privacy.subProcessors ?? [],
    sources, categories, purposes, retention,
    webhooks: { maxAttempts: cfg.webhooks.maxAttempts },
  };
}

// ---------------------------------------------------------------- document

const CATEGORY_LABEL: Record<Category, string> = {
  DIRECT: 'Directly identifying data (names, contact details, usernames, photos, free text that may name someone)',
  IDENTIFIER: 'Identifiers (ids that point at a person)',
  QUASI: 'Indirectly identifying data (birth date, sex, grade, school, postal code, class codes)',
  SPECIAL: 'Special and sensitive categories (ethnicity, special needs, free or reduced lunch, language, country of birth)',
  NONE: 'Not personal data',
};
/** Record types in the leaflet's plain words. */
const PLAIN_TYPE: Record<string, string> = {
  Organization: 'schools and districts', AcademicSession: 'school years and terms', Course: 'courses', Person: 'people (students, staff, guardians)',
  Demographics: 'demographic data', Class: 'classes', Enrollment: 'class memberships', Guardianship: 'guardian relationships',
};
const SHORT_LABEL: Record<Category, string> = { DIRECT: 'direct', IDENTIFIER: 'identifier', QUASI: 'quasi-identifier', SPECIAL: 'special category', NONE: 'not personal' };

const code = (c: string): Inline => ({ code: c });
/** A comma-separated list of coordinates as code, or a word when empty. */
function codes(list: readonly string[], empty = 'none'): Inline[] {
  if (list.length === 0) return [empty];
  return list.flatMap((c, i) => (i === 0 ? [code(c)] : [', ', code(c)]));
}

function treatmentText(t: Treatment): Inline[] {
  switch (t.kind) {
    case 'allowed':
      return ['allowed (the value itself)'];
    case 'pseudonymised':
      return ['pseudonymised: a keyed pseudonym (HMAC-SHA256) in domain ', code(t.domain), '; the real id is never shown'];
    case 'generalised':
      return ['generalised: a coarser form of ', code(t.from), t.exactToo ? ' (the exact value is received too)' : '; the exact value is not received'];
    case 'denied':
      return t.emptyType ? ['denied (nothing else of its type is received)'] : ['denied'];
    case 'withheld':
      return ['withheld: it would tell a person\u2019s ', code(t.reveals), ', which this purpose does not receive'];
  }
}

const sourceLabel = (s: SourceModel) => `${s.id} (${s.type})`;
const partyText = (p: { name: string; contact: string } | undefined, key: string): Inline[] => (p ? [`${p.name}, ${p.contact}`] : ['not configured (', code(key), ')']);

export function reportDocument(m: ReportModel): Doc {
  const b: Block[] = [];
  const h = (level: 1 | 2 | 3 | 4, text: Text) => b.push({ kind: 'heading', level, text });
  const p = (text: Text) => b.push({ kind: 'para', text });
  const list = (items: Text[]) => b.push({ kind: 'list', items });
  const table = (head: string[], rows: Text[][]) => b.push({ kind: 'table', head, rows });
  const controllerName = m.controller?.name ?? 'your school';

  const title = `Privacy leaflet and record of processing — rostergate (${m.tenant})`;
  h(1, title);
  p(['Generated by ', code('rostergate privacy-report'), ' from the running configuration and schema. Every list of data below is derived from what the gateway enforces; regenerate it after any change to the configuration.']);

  // ---- Part 1: the leaflet
  h(2, 'Part 1 — Privacy leaflet');
  h(3, 'Who we are');
  list([
    ['Responsible for your data (controller): ', ...partyText(m.controller, 'privacy.controller')],
    ['Runs this service for them (processor): ', ...partyText(m.processor, 'privacy.processor')],
    ...(m.processor?.dpo ? [[`Data protection officer of the processor: ${m.processor.dpo}`] as Inline[]] : []),
  ]);
  p(`This service (rostergate) collects the class lists (rosters) that ${controllerName} keeps in its school systems and passes each receiving application only the data it needs for its purpose.`);

  h(3, 'Which data, from where');
  if (m.sources.length === 0) p('No sources are configured: no data is collected.');
  else list(m.sources.map((s) => [`${sourceLabel(s)}: ${s.records.map((r) => PLAIN_TYPE[r.type] ?? r.type).join(', ')}`]));

  h(3, 'What we keep, and what we throw away on arrival');
  p('Data that no receiving application is allowed to get is dropped as it arrives and never stored.');
  list(
    m.categories.map((c) => [
      `${CATEGORY_LABEL[c.category]}: `,
      ...(c.stored.length === 0 ? ['not stored — dropped on arrival'] : c.notStored.length === 0 ? ['stored'] : ['stored in part; not stored: ', ...codes(c.notStored)]),
    ]),
  );

  h(3, 'Who receives what, and why');
  for (const pm of m.purposes) {
    const having = (kind: Treatment['kind'], pick: (t: Treatment) => boolean = () => true) =>
      pm.personal.filter((r) => r.treatment.kind === kind && pick(r.treatment)).map((r) => r.coordinate);
    const clients = pm.clients.length ? pm.clients.map((c) => c.id).join(', ') : 'no client configured';
    const coarseOnly = having('generalised', (t) => t.kind === 'generalised' && !t.exactToo);
    h(4, [code(pm.id), pm.description ? ` — ${pm.description}` : '']);
    list([
      [`Receiving applications: ${clients}.`],
      [`Legal basis: ${pm.legalBasis}`],
      ['Receives as is: ', ...codes(pm.personal.filter((r) => r.treatment.kind === 'allowed' || (r.treatment.kind === 'generalised' && r.treatment.exactToo)).map((r) => r.coordinate), 'no personal data')],
      ...(having('pseudonymised').length ? [['Receives only as a pseudonym (a code that cannot be traced back without our key): ', ...codes(having('pseudonymised'))] as Inline[]] : []),
      ...(coarseOnly.length ? [['Receives only in a coarser form: ', ...codes(coarseOnly)] as Inline[]] : []),
      pm.personal.some((r) => r.category === 'SPECIAL' && r.treatment.kind !== 'denied' && r.treatment.kind !== 'withheld')
        ? ['Receives special categories: ', ...codes(pm.personal.filter((r) => r.category === 'SPECIAL' && r.treatment.kind !== 'denied' && r.treatment.kind !== 'withheld').map((r) => r.coordinate))]
        : ['Never receives special categories.'],
    ]);
  }

  h(3, 'How long we keep it');
  list(m.retention.map((r) => [`${r.kind}: ${r.period ?? 'no retention period configured yet'}.`]));

  h(3, 'Where your data is processed');
  p(m.processingLocations.length ? `Processing locations: ${m.processingLocations.join('; ')}.` : ['No processing location is configured (', code('privacy.processingLocations'), ').']);
  if (m.subProcessors.length) p(`Sub-processors: ${m.subProcessors.map((s) => `${s.name} (${s.purpose}, ${s.location})`).join('; ')}.`);
  else p('No sub-processors are configured.');

  h(3, 'Your rights');
  p(
    `You may ask ${controllerName} which data about you or your child is held, to correct it, to have it erased, or to object to its use, and you may complain to your data protection authority. ` +
      (m.controller ? `Contact: ${m.controller.contact}.` : 'Ask your school how to reach it.'),
  );

  // ---- Part 2: the record of processing activities
  h(2, 'Part 2 — Record of processing activities (GDPR art. 30)');
  h(3, '1. Controller and processor');
  table(['Role', 'Name and contact'], [
    ['Controller', partyText(m.controller, 'privacy.controller')],
    ['Processor', partyText(m.processor, 'privacy.processor')],
    ['Processor\u2019s data protection officer', m.processor?.dpo ?? 'not configured (privacy.processor.dpo)'],
    ['Tenant (pseudonym keys are derived per tenant)', [code(m.tenant)]],
  ]);

  h(3, '2. Sources and ingest minimisation');
  p('For each configured source: the unified fields its connector maps, which of them are stored, and which are dropped at ingest because no purpose receives them in any form (a generalised form keeps its exact field). Links between records are kept as the roster\u2019s structure.');
  if (m.sources.length === 0) p('No sources are configured.');
  for (const s of m.sources) {
    h(4, `Source ${sourceLabel(s)}`);
    table(['Record', 'Stored', 'Dropped at ingest', 'Links kept to'], s.records.map((r) => [r.type, codes(r.stored), codes(r.dropped), r.links.join(', ') || 'none']));
  }

  h(3, '3. Categories of personal data held');
  p('Over every field a supported source type can deliver:');
  table(['Category', 'Stored', 'Never stored (dropped at ingest)'], m.categories.map((c) => [SHORT_LABEL[c.category], codes(c.stored), codes(c.notStored)]));

  h(3, '4. Recipients, purposes and what each receives');
  for (const pm of m.purposes) {
    h(4, ['Purpose ', code(pm.id)]);
    table(['Item', 'Value'], [
      ['Description', pm.description ?? 'none given'],
      ['Legal basis', pm.legalBasis],
      ['Clients', pm.clients.length ? pm.clients.flatMap((c, i): Inline[] => [...(i ? ['; '] : []), code(c.id), ...(c.description ? [` (${c.description})`] : [])]) : 'none'],
      ['Extracts', pm.extracts && pm.kAnonymity
        ? `yes, k-anonymity k = ${pm.kAnonymity.k}, on violation: ${pm.kAnonymity.onViolation}, at most ${formatShare(pm.kAnonymity.maxSuppressShare)} of rows suppressed`
        : 'no'],
      ['Administration (webhooks, keys)', pm.admin ? 'yes' : 'no'],
    ]);
    table(['Personal field', 'Category', 'Treatment'], pm.personal.map((r) => [[code(r.coordinate)], SHORT_LABEL[r.category], treatmentText(r.treatment)]));
    if (pm.withheld.length) {
      p('Relations and filters withheld because they would tell what this purpose may not know:');
      list(pm.withheld.map((w) => [code(w.coordinate), ' — would tell a person\u2019s ', code(w.reveals)]));
    }
    p(['Non-personal fields received: ', ...codes(pm.otherReceived)]);
    if (pm.otherDenied.length) p(['Non-personal fields denied: ', ...codes(pm.otherDenied)]);
  }

  h(3, '5. Retention');
  table(['Data', 'Period', 'How'], m.retention.map((r) => [r.kind, r.period ?? 'none configured', r.how]));

  h(3, '6. Processing locations and sub-processors');
  p(m.processingLocations.length ? `Processing locations: ${m.processingLocations.join('; ')}.` : ['No processing location is configured (', code('privacy.processingLocations'), ').']);
  if (m.subProcessors.length) table(['Sub-processor', 'Purpose', 'Location'], m.subProcessors.map((s) => [s.name, s.purpose, s.location]));
  else p('No sub-processors are configured.');

  h(3, '7. Technical measures the gateway enforces');
  list([
    'Data minimisation at ingest: fields no purpose receives are never written to the store (section 2).',
    'Per-purpose schemas: a denied field does not exist for that purpose\u2019s clients; asking for it is an error.',
    'Pseudonyms are keyed (HMAC-SHA256 with a key per tenant, domain and version, derived from one master key): unlinkable across domains, not reversible without the key.',
    'Relations that would reveal a denied membership (school, class, grade) are withheld from every side (section 4).',
    `Webhooks are signed (Standard Webhooks) and retried at most ${m.webhooks.maxAttempts} times per event.`,
    'Every disclosure (query, webhook, extract) is written to a hash-chained audit log and a disclosure ledger per person.',
  ]);
  return { title, blocks: b };
}

function formatShare(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

export function renderReport(m: ReportModel, format: ReportFormat): string {
  const doc = reportDocument(m);
  return format === 'html' ? toHtml(doc) : toMarkdown(doc);
}
