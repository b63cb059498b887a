/**
 * Webhook event types, Standard Webhooks style: `<record>.<operation>` in lower case —
 * `person.created`, `person.updated`, `class.deleted`, `academic_session.updated` … — the name a
 * delivery's payload carries as `type` and the name a subscription filters on. A subscription lists
 * exact names or wildcards (`person.*`: every event of a record type; `*.deleted`: one operation
 * of every type); an empty list means every event. Demographics changes are `person.updated`.
 * Names only, so they sit with the model: the change feed, webhooks, the admin API and erasure
 * (which sends `person.erased`) all use them.
 */
import { RostergateError } from '../errors.ts';
import { RECORD_TYPE } from './names.ts';

const OPS = ['created', 'updated', 'deleted'] as const;
const RECORDS = Object.values(RECORD_TYPE).map((r) => r.toLowerCase());

/**
 * An erasure on request (`rostergate erase`): sent only to the clients the disclosure ledger says
 * received the person, never read from the change feed by subscriptions (src/privacy/erasure.ts).
 */
export const PERSON_ERASED = 'person.erased';

/** Every event type, in a stable order. */
export const EVENT_TYPES: readonly string[] = [...RECORDS.flatMap((r) => OPS.map((op) => `${r}.${op}`)), PERSON_ERASED];

/** The event type of a change: its RecordType and ChangeOp as the feed names them (PERSON, UPDATED). */
export function eventType(recordType: string, op: string): string {
  return `${recordType.toLowerCase()}.${op.toLowerCase()}`;
}

function matches(pattern: string, type: string): boolean {
  const [pr, po] = pattern.split('.') as [string, string];
  const [tr, to] = type.split('.') as [string, string];
  return (pr === '*' || pr === tr) && (po === '*' || po === to);
}

/**
 * Checks a subscription's event types and returns them without duplicates, or throws naming each
 * unknown one and what is accepted.
 */
export function checkEventTypes(patterns: readonly string[]): string[] {
  const valid = (p: string) => {
    const parts = p.split('.');
    if (p === PERSON_ERASED) return true;
    return parts.length === 2 && (parts[0] === '*' || RECORDS.includes(parts[0]!)) && (parts[1] === '*' || (OPS as readonly string[]).includes(parts[1]!));
  };
  const bad = patterns.filter((p) => !valid(p));
  if (bad.length) {
    throw new RostergateError(
      'CONFIG_INVALID',
      `unknown event type${bad.length > 1 ? 's' : ''} ${bad.map((b) => JSON.stringify(b)).join(', ')}: an event type is <record>.<operation> with record one of ` +
        `${RECORDS.join(', ')} and operation one of ${OPS.join(', ')}; wildcards: "person.*", "*.deleted"; and ${PERSON_ERASED} (an erasure on request)`,
    );
  }
  return [...new Set(patterns)];
}

/** Whether a subscription with these event types (none: all) receives an event of `type`. */
export function subscribed(patterns: readonly string[], type: string): boolean {
  return patterns.length === 0 || patterns.some((p) => matches(p, type));
}

/** The RecordType names a subscription can receive events of, to narrow the feed it reads; undefined for all. */
export function recordTypesOf(patterns: readonly string[]): string[] | undefined {
  if (patterns.length === 0) return undefined;
  const types = Object.values(RECORD_TYPE).filter((r) => OPS.some((op) => subscribed(patterns, eventType(r, op))));
  return types.length === Object.values(RECORD_TYPE).length ? undefined : types;
}

/** A record-type filter (`types: [PERSON]`) as event types (`person.*`). */
export function eventTypesOfRecordTypes(recordTypes: readonly string[]): string[] {
  return recordTypes.map((r) => `${r.toLowerCase()}.*`);
}
