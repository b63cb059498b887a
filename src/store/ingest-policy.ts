/**
 * The ingest policy: the privacy work every write of source data must carry — minimisation,
 * match-key hashing, erasure suppression — and the rows that must follow every change the log
 * records — pseudonyms of created people, each purpose's view times. It is a required argument of
 * the page unit of work (src/store/page-unit.ts), which is the only path that appends to the change
 * log during sync and identity decisions, so no such writer can leave these out.
 *
 * Set-at-a-time and pure: the unit plans a page in memory and asks the policy for the rows a whole
 * page of changes needs at flush, written in multi-row statements.
 */
import type { EntityType } from '../model/records.ts';
import type { ChangeRow, ViewTimeEffect } from './types.ts';

export interface PseudonymRow {
  domain: string;
  version: number;
  entityId: string;
  value: string;
}

export interface IngestPolicy {
  /** Strips fields no purpose may receive, before anything is stored (identity: store as delivered). */
  minimise: (type: EntityType, data: Record<string, unknown>) => Record<string, unknown>;
  /** Keyed hash for identity match keys (KeyRing.matchKey); null: keys are stored as normalised text. */
  hashMatchKey: ((kind: string, value: string) => string) | null;
  /** Pseudonyms, in each domain's current version, of people created (no domains: none). */
  personCreated: (entityIds: readonly string[]) => PseudonymRow[];
  /**
   * What logged changes (numbered: `seq` set) do to each purpose's view times, in change order: for
   * every view with times of the changed record, whether the change moves its time or leaves it.
   */
  changeLogged: (changes: readonly ChangeRow[]) => ViewTimeEffect[];
  /**
   * Keyed hash of a source record's key for the erasure suppression list (KeyRing.suppressionKey);
   * null where nothing can be erased (no key ring: open access).
   */
  suppressionKey: ((source: string, type: EntityType, key: string) => string) | null;
}

/** Parts of a policy a caller may leave out (a test, an open-access deployment): absent means "none". */
export type PolicyParts = Partial<{ [K in keyof IngestPolicy]: IngestPolicy[K] | undefined }>;

const NONE_PSEUDONYMS: IngestPolicy['personCreated'] = () => [];
const NONE_VIEW_TIMES: IngestPolicy['changeLogged'] = () => [];

/**
 * A complete policy from optional parts: a part left out does nothing (nothing minimised, keys
 * unhashed, no pseudonym domains, no purposes' views, no suppression list) — what a deployment
 * without purposes (server.openAccess) means, said explicitly rather than skipped.
 */
export function ingestPolicy(parts: PolicyParts = {}): IngestPolicy {
  return {
    minimise: parts.minimise ?? ((_t, d) => d),
    hashMatchKey: parts.hashMatchKey ?? null,
    personCreated: parts.personCreated ?? NONE_PSEUDONYMS,
    changeLogged: parts.changeLogged ?? NONE_VIEW_TIMES,
    suppressionKey: parts.suppressionKey ?? null,
  };
}
