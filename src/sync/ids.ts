/**
 * Gateway ids: a type prefix and 128 random bits. Random, not derived from source ids, so that an
 * id reveals nothing about the source record (a hash of a student number would be guessable).
 */
import { randomFillSync } from 'node:crypto';
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

/**
 * Random bits drawn from the CSPRNG 4 KiB at a time and handed out 16 bytes per id: one call per
 * 256 ids instead of one per id (a call costs more than the bits; a sync mints one id per record).
 * Each id's bytes are used once, so ids are as unpredictable as with a call each.
 */
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;

function random16(): Buffer {
  if (poolAt === POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  poolAt += 16;
  return POOL.subarray(poolAt - 16, poolAt);
}

export function newEntityId(type: EntityType): string {
  return `${ID_PREFIX[type]}_${random16().toString('base64url')}`;
}

/** Demographics are one entity per person, whichever sources contribute: the id follows the person's. */
export function demographicsIdFor(personId: string): string {
  return `dem_${personId.slice(personId.indexOf('_') + 1)}`;
}

export function typeOfId(id: string): EntityType | undefined {
  return TYPE_BY_PREFIX.get(id.slice(0, id.indexOf('_')));
}
