/**
 * Ingest minimisation: a personal field that no configured purpose may receive in any form is
 * never written to the store. Derived from the same classification and policies as the
 * per-purpose schemas, so the two cannot disagree. References between records are kept (the
 * structure of the roster is not itself a field anyone receives), and identity match keys are taken
 * before minimisation (see sync/ingest.ts).
 */
import { REFERENCES, type EntityType } from '../model/records.ts';
import type { Classification } from './classification.ts';

const TYPE_OF_GRAPHQL: Record<string, EntityType> = {
  Organization: 'org', AcademicSession: 'academicSession', Course: 'course', Class: 'class', Person: 'person',
  Demographics: 'demographics', Enrollment: 'enrollment', Guardianship: 'guardianship',
};

export interface Minimiser {
  (type: EntityType, data: Record<string, unknown>): Record<string, unknown>;
  /** Record fields dropped so far, as `type.field` (for the sync summary). */
  dropped: Set<string>;
  /** The fields this minimiser would drop, by entity type. */
  plan: Map<EntityType, Set<string>>;
}

/**
 * @param received coordinates some purpose receives (allow or pseudonymise), over all purposes.
 */
export function createMinimiser(cls: Classification, received: Set<string>): Minimiser {
  // A record field is needed if any coordinate reading it is received: the field itself, or a
  // generalised form derived from it.
  const needed = new Map<EntityType, Set<string>>();
  const personal = new Map<EntityType, Set<string>>();
  for (const f of cls.values()) {
    const type = TYPE_OF_GRAPHQL[f.type];
    if (!type) continue;
    const field = f.generalises ?? f.field;
    if (f.category !== 'NONE' && !f.generalises) (personal.get(type) ?? personal.set(type, new Set()).get(type)!).add(field);
    if (received.has(f.coordinate)) (needed.get(type) ?? needed.set(type, new Set()).get(type)!).add(field);
  }
  const plan = new Map<EntityType, Set<string>>();
  for (const [type, fields] of personal) {
    const refs = new Set(Object.keys(REFERENCES[type]));
    const drop = [...fields].filter((f) => !needed.get(type)?.has(f) && !refs.has(f) && f !== 'id');
    if (drop.length) plan.set(type, new Set(drop));
  }
  const dropped = new Set<string>();
  const fn = ((type: EntityType, data: Record<string, unknown>) => {
    const drop = plan.get(type);
    if (!drop) return data;
    let out: Record<string, unknown> | undefined;
    for (const k of drop) {
      if (data[k] === undefined) continue;
      out ??= { ...data };
      delete out[k];
      dropped.add(`${type}.${k}`);
    }
    return out ?? data;
  }) as Minimiser;
  fn.dropped = dropped;
  fn.plan = plan;
  return fn;
}

