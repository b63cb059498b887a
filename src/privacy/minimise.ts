/**
 * Ingest minimisation: a record field that no configured purpose may receive in any form is never
 * written to the store. Derived from the same classification and policies as the per-purpose
 * schemas, so the two cannot disagree. It is an allow-list: a field is kept only if the schema
 * classifies it as not personal (NONE) or some purpose receives it (itself or a generalised form),
 * so a field a connector delivers that the schema does not know is dropped, not stored unseen.
 * References between records are kept (the structure of the roster is not itself a field anyone
 * receives), and identity match keys are taken before minimisation (see sync/ingest.ts).
 */
import { ENTITY_TYPES, REFERENCES, type EntityType } from '../model/records.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import type { Classification } from './classification.ts';

export interface Minimiser {
  (type: EntityType, data: Record<string, unknown>): Record<string, unknown>;
  /** Record fields dropped so far, as `type.field` (for the sync summary). */
  dropped: Set<string>;
  /** The record fields kept, by entity type; every other field is dropped. */
  kept: Map<EntityType, Set<string>>;
}

/**
 * @param received coordinates some purpose receives (allow or pseudonymise), over all purposes.
 */
export function createMinimiser(cls: Classification, received: Set<string>): Minimiser {
  const kept = new Map<EntityType, Set<string>>();
  const typeOf = new Map(ENTITY_TYPES.map((t) => [GRAPHQL_TYPE[t], t]));
  for (const t of ENTITY_TYPES) kept.set(t, new Set(Object.keys(REFERENCES[t])));
  for (const f of cls.values()) {
    const type = typeOf.get(f.type);
    if (!type) continue;
    // A generalised form reads the exact field: receiving it keeps the exact field in the store.
    if (received.has(f.coordinate) || (f.category === 'NONE' && !f.generalises)) kept.get(type)!.add(f.generalises ?? f.field);
  }
  const dropped = new Set<string>();
  const fn = ((type: EntityType, data: Record<string, unknown>) => {
    const keep = kept.get(type)!;
    let out: Record<string, unknown> | undefined;
    for (const k of Object.keys(data)) {
      if (keep.has(k) || data[k] === undefined) continue;
      out ??= { ...data };
      delete out[k];
      dropped.add(`${type}.${k}`);
    }
    return out ?? data;
  }) as Minimiser;
  fn.dropped = dropped;
  fn.kept = kept;
  return fn;
}
