/**
 * How several sources' versions of one entity become one record: sources earlier in the config
 * take precedence field by field; list fields (roles, organisations, grades) are unioned. Also the
 * reference resolution from source keys to gateway ids, and the link rows derived from it.
 */
import { REFERENCES, type EntityType } from '../model/records.ts';
import { stableJson } from '../model/stable-json.ts';

const nameOfResolved = (field: string) => (field.endsWith('Keys') ? `${field.slice(0, -4)}Ids` : field.endsWith('Key') ? `${field.slice(0, -3)}Id` : field);

/** The model's reference fields' resolved names, worked out once: a sync asks for each several times per record. */
const RESOLVED_NAMES = new Map(Object.values(REFERENCES).flatMap((refs) => Object.keys(refs)).map((f) => [f, nameOfResolved(f)]));

export function resolvedName(field: string): string {
  return RESOLVED_NAMES.get(field) ?? nameOfResolved(field);
}

/** Reference fields without which the record means nothing (an enrollment without its class). */
export const REQUIRED_REFS: Partial<Record<EntityType, string[]>> = {
  demographics: ['personKey'],
  enrollment: ['classKey', 'personKey'],
  guardianship: ['guardianKey', 'studentKey'],
};

export type KeyResolver = (type: EntityType, key: string) => Promise<string | undefined>;

/**
 * Replaces source keys with gateway ids. Returns the unresolved reference fields too, so the
 * caller can hold the record back until its targets arrive.
 */
export async function resolveRefs(
  type: EntityType,
  data: Record<string, unknown>,
  resolve: KeyResolver,
  opts: { dropUnresolved?: boolean } = {},
): Promise<{ data: Record<string, unknown>; unresolved: string[] }> {
  const out: Record<string, unknown> = {};
  const unresolved: string[] = [];
  const refs = REFERENCES[type] as Record<string, EntityType>;
  // `for … in` over a record's own fields (plain JSON objects), without a [key, value] pair per field.
  for (const field in data) {
    const value = data[field];
    const target = refs[field];
    if (!target || value === undefined || value === null) {
      out[field] = value;
      continue;
    }
    if (Array.isArray(value)) {
      const ids: string[] = [];
      for (const k of value as string[]) {
        const id = await resolve(target, k);
        if (id) ids.push(id);
        else unresolved.push(field);
      }
      out[resolvedName(field)] = [...new Set(ids)];
    } else {
      const id = await resolve(target, value as string);
      if (id) out[resolvedName(field)] = id;
      else unresolved.push(field);
    }
  }
  return { data: out, unresolved: opts.dropUnresolved || unresolved.length === 0 ? [] : [...new Set(unresolved)] };
}

/**
 * How a source record keeps its resolved form: the reference fields alone (`refs`: for each
 * reference `raw` names, its resolved field as `resolved` has it), from which `withRefs` gives the
 * form back. Whole (`resolved`) where `raw` itself has a field named like a resolved reference
 * (`classId` beside `classKey`): which of the two the form holds then depends on their order,
 * which the fields alone do not keep.
 */
export function keptResolved(type: EntityType, raw: Record<string, unknown>, resolved: Record<string, unknown>): { refs: Record<string, unknown> } | { resolved: Record<string, unknown> } {
  const refs = REFERENCES[type] as Record<string, EntityType>;
  const out: Record<string, unknown> = {};
  for (const field in raw) {
    if (!refs[field] || raw[field] === undefined || raw[field] === null) continue;
    const name = resolvedName(field);
    if (name !== field && name in raw) return { resolved };
    if (name in resolved) out[name] = resolved[name];
  }
  return { refs: out };
}

/**
 * The resolved form of `raw` given the `refs` keptResolved kept: the fields in `raw`'s order, each
 * reference replaced by its resolved field (left out where it did not resolve), as resolveRefs built it.
 */
export function withRefs(type: EntityType, raw: Record<string, unknown>, resolvedRefs: Record<string, unknown>): Record<string, unknown> {
  const refs = REFERENCES[type] as Record<string, EntityType>;
  const out: Record<string, unknown> = {};
  for (const field in raw) {
    const value = raw[field];
    if (!refs[field] || value === undefined || value === null) {
      out[field] = value;
      continue;
    }
    const name = resolvedName(field);
    if (name in resolvedRefs) out[name] = resolvedRefs[name];
  }
  return out;
}

const UNION_FIELDS = new Set(['roles', 'orgIds', 'grades', 'termIds', 'subjects', 'periods']);

/** Merges resolved data of several sources; `parts` are in precedence order (first wins). */
export function mergeData(parts: Record<string, unknown>[]): Record<string, unknown> {
  if (parts.length === 1) return parts[0]!;
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    for (const [k, v] of Object.entries(part)) {
      if (v === undefined || v === null || v === '') continue;
      if (UNION_FIELDS.has(k) && Array.isArray(v)) {
        out[k] = [...new Set([...((out[k] as unknown[]) ?? []), ...v])];
      } else if (!(k in out)) {
        out[k] = v;
      }
    }
  }
  return out;
}

/** Names of fields whose values differ. */
export function changedFields(before: Record<string, unknown> | undefined, after: Record<string, unknown>): string[] {
  if (!before) return Object.keys(after).filter((k) => after[k] !== undefined).sort();
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => stableJson(before[k]) !== stableJson(after[k])).sort();
}

const relName = (type: EntityType, field: string) => `${type}.${resolvedName(field).replace(/Ids?$/, '')}`;

/** Per type, each reference field's resolved name and link name, worked out once up front (linksOf runs per record). */
const LINK_FIELDS = new Map(Object.entries(REFERENCES).map(([type, refs]) => [
  type as EntityType,
  Object.keys(refs).map((field) => ({ resolved: resolvedName(field), rel: relName(type as EntityType, field) })),
]));

/** Link rows of an entity: one per resolved reference, named `<type>.<field without Id/Ids>`. */
export function linksOf(type: EntityType, data: Record<string, unknown>): { rel: string; to: string }[] {
  const out: { rel: string; to: string }[] = [];
  for (const { resolved, rel } of LINK_FIELDS.get(type) ?? []) {
    const v = data[resolved];
    if (Array.isArray(v)) for (const to of v as string[]) out.push({ rel, to });
    else if (v) out.push({ rel, to: v as string });
  }
  return out;
}

/** Link names under which records of any type refer to an entity of `target` (`enrollment.person`, `class.school`, …). */
export function relsTo(target: EntityType): string[] {
  return (Object.entries(REFERENCES) as [EntityType, Record<string, EntityType>][]).flatMap(([type, refs]) =>
    Object.entries(refs).filter(([, t]) => t === target).map(([field]) => relName(type, field)),
  );
}
