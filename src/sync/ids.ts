/**
 * Gateway ids: a type prefix and 128 random bits. Random, not derived from source ids, so that an
 * id reveals nothing about the source record (a hash of a student number would be guessable).
 */
import { randomBytes } from 'node:crypto';
import type { EntityType } from '../model/records.ts';

export const ID_PREFIX: Record<EntityType, string> = {
  org: 'org',
  academicSession: 'ses',
  course: 'crs',
  person: 'per',
  demographics: 'dem',
  class: 'cls',
  enrollment: 'enr',
  guardianship: 'gdn',
};

const TYPE_BY_PREFIX = new Map(Object.entries(ID_PREFIX).map(([t, p]) => [p, t as EntityType]));

export function newEntityId(type: EntityType): string {
  return `${ID_PREFIX[type]}_${randomBytes(16).toString('base64url')}`;
}

/** Demographics are one entity per person, whichever sources contribute: the id follows the person's. */
export function demographicsIdFor(personId: string): string {
  return `dem_${personId.slice(personId.indexOf('_') + 1)}`;
}

export function typeOfId(id: string): EntityType | undefined {
  return TYPE_BY_PREFIX.get(id.slice(0, id.indexOf('_')));
}
