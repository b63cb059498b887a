/**
 * The readable side of a subject access export: Markdown a school can hand to a parent. It says
 * the same as the JSON, in words, and names no other person (guardians and students by relation
 * and gateway id only).
 */
import type { SubjectExport } from './subject-export.ts';

const AS = { allowed: 'as held', pseudonymised: 'as a pseudonym', generalised: 'generalised' } as const;

const from = (sources: string[]) => (sources.length ? ` (from ${sources.join(', ')})` : '');

/** Values in a table cell: one line, no Markdown table breaks. */
function cell(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return (s ?? '').replace(/\|/g, '\\|').replace(/\s+/g, ' ');
}

function fieldTable(data: Record<string, unknown> | null): string[] {
  const entries = Object.entries(data ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (entries.length === 0) return ['(none held)'];
  return ['| Field | Value |', '| --- | --- |', ...entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`)];
}

export function subjectSummary(x: SubjectExport): string {
  const l: string[] = [];
  l.push(`# What rostergate holds about person ${x.person.id}`, '');
  l.push(`Generated ${x.generatedAt} (tenant ${x.tenant}). The full export is the JSON file this summary accompanies; this is the same content in words.`, '');

  l.push('## The person record', '', `As the gateway combines it from every source (last changed ${x.person.updatedAt}).`, '');
  l.push(...fieldTable(x.unified.person), '');
  l.push('### Demographics', '', ...fieldTable(x.unified.demographics), '');

  l.push('### Schools and organisations', '');
  l.push(...(x.unified.organisations.length ? x.unified.organisations.map((o) => `- ${o.name} (${o.type}, ${o.id})`) : ['(none)']), '');

  l.push('### Classes', '');
  l.push(
    ...(x.unified.enrollments.length
      ? x.unified.enrollments.map((e) => `- ${e.class?.title ?? 'class'}${e.class?.classCode ? ` (${e.class.classCode})` : ''} as ${cell(e.role)}${e.school ? `, at ${e.school.name}` : ''}${e.beginDate ? `, from ${cell(e.beginDate)}` : ''}${e.endDate ? ` to ${cell(e.endDate)}` : ''}${from(e.sources)}`)
      : ['(none)']),
    '',
  );

  l.push('### Guardians and students', '', 'Other people are named by their gateway id only: their details are their own.', '');
  l.push(
    ...(x.unified.guardianships.length
      ? x.unified.guardianships.map((g) => (g.personIs === 'student' ? `- has a ${cell(g.relation)}: person ${g.otherPersonId ?? '(unknown)'}${from(g.sources)}` : `- is ${cell(g.relation)} of person ${g.otherPersonId ?? '(unknown)'}${from(g.sources)}`))
      : ['(none)']),
    '',
  );

  l.push('## Records per source', '', 'Each source\'s own version of the records about this person, as stored (fields no purpose may receive are dropped when they arrive and never stored).', '');
  for (const r of x.sourceRecords) {
    l.push(`### ${r.source}${r.sourceType ? ` (${r.sourceType})` : ''}: ${r.type} ${r.key}`, '', `Last modified at the source: ${r.lastModified ?? 'not given'}.`, '');
    l.push(...fieldTable(r.data as Record<string, unknown>), '');
  }
  if (x.sourceRecords.length === 0) l.push('(none)', '');

  l.push('## Pseudonyms', '', 'Keyed codes that stand for this person towards clients that may not see who they are; a code cannot be traced back without the gateway\'s key.', '');
  l.push(...(x.pseudonyms.length ? x.pseudonyms.map((p) => `- domain ${p.domain}, version ${p.version}${p.current ? ' (current)' : ' (before a key rotation)'}: ${p.value}${p.purposes.length ? ` — used by ${p.purposes.join(', ')}` : ''}`) : ['(none)']), '');

  l.push('## Match keys', '', 'Keyed hashes of the SIS id, email or state id, kept to recognise this person when another source delivers them. The values themselves are not kept here.', '');
  l.push(...(x.matchKeys.length ? x.matchKeys.map((k) => `- ${k.kind}: ${k.hash}`) : ['(none)']), '');

  if (x.identity.overrides.length || x.identity.conflicts.length) {
    l.push('## Identity decisions', '');
    for (const o of x.identity.overrides) l.push(`- ${o.source} ${o.type} ${o.key} was kept with ${o.entityId} by an operator on ${o.decidedAt}`);
    for (const c of x.identity.conflicts) l.push(`- conflict #${c.id} (${c.at}): ${c.source} record ${c.key}: ${c.reason}${c.resolvedAt ? `; resolved ${c.resolvedAt}: ${c.resolution}` : ''}`);
    l.push('');
  }

  l.push('## Who received data about this person', '');
  if (x.disclosures.length === 0) l.push('No client has received data about this person.', '');
  for (const d of x.disclosures) {
    l.push(`### ${d.client}${d.clientDescription ? ` — ${d.clientDescription}` : ''}`, '');
    l.push(`First ${d.firstAt}, last ${d.lastAt}.`);
    if (d.purpose) l.push(`Purpose: ${d.purpose}${d.purposeDescription ? ` — ${d.purposeDescription}` : ''}.`);
    if (d.legalBasis) l.push(`Legal basis: ${d.legalBasis}.`);
    l.push('');
    const cats = Object.entries(d.receives);
    if (cats.length) {
      l.push('What this client receives about a person:', '');
      for (const [cat, fields] of cats) l.push(`- ${cat}: ${fields!.map((f) => `${f.field} (${AS[f.as]})`).join(', ')}`);
      l.push('');
    }
  }

  l.push('## Audit log', '', x.audit.note, '');
  if (x.audit.entries.length) {
    l.push('| When | Client | Kind | Operation | People in the response |', '| --- | --- | --- | --- | --- |');
    for (const e of x.audit.entries) l.push(`| ${e.at} | ${e.client} | ${e.kind} | ${cell(e.operation ?? '')} | ${e.people} |`);
    l.push('');
  }

  l.push('## History', '', `${x.changes.length} recorded change(s) to these records still in the change log (older ones are removed after the retention period).`, '');
  l.push('## Notes', '', ...x.notes.map((n) => `- ${n}`), '');
  return l.join('\n');
}
