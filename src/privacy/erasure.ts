/**
 * Erasure on request (GDPR art. 17): a person and everything that exists because of them go from
 * the store in one transaction, a keyed suppression entry per erased source record keeps later
 * syncs from bringing them back, the change feed gets a tombstone without their last state, and
 * exactly the clients the disclosure ledger names are told by a `person.erased` webhook.
 *
 * Serialised with sync: the leases of every configured source are held for the whole erasure, so
 * no run can write the person back between reading and deleting (src/store/lease.ts).
 */
import { createHmac, randomUUID, randomBytes } from 'node:crypto';
import { RostergateError } from '../errors.ts';
import { PERSON_ERASED, subscribed } from '../model/event-types.ts';
import type { EntityRow, Store, StoreTx, SuppressionRow } from '../store/types.ts';
import { acquireSourceLease, type SourceLease } from '../store/lease.ts';
import { openPageUnit } from '../store/page-unit.ts';
import { appendAudit } from './audit.ts';
import type { PrivacyPolicy } from './privacy-policy.ts';

/** Links through which a record exists only because of its person. */
const DEPENDENT_RELS = ['demographics.person', 'enrollment.person', 'guardianship.guardian', 'guardianship.student'] as const;

export interface ErasureRequest {
  store: Store;
  privacy: PrivacyPolicy;
  personId: string;
  /** Every configured source: their leases are held while the erasure runs. */
  sources: readonly string[];
  /** Who asked: the operator's OS user name, or the admin client. */
  requestedBy: { client: string; name: string };
  /** Wait for running syncs instead of refusing with SYNC_BUSY. */
  wait?: boolean;
  now?: Date;
}

export interface ErasureResult {
  /** Keyed hash naming the person in the audit log (the same as a subject export's). */
  ref: string;
  at: string;
  /** Records erased: the person and their demographics, enrollments, guardianships. */
  records: number;
  /** Source records suppressed against later syncs. */
  suppressed: number;
  /** Clients the ledger says received the person, and how many of their webhook subscriptions were told. */
  notified: { client: string; subscriptions: number }[];
  auditSeq: number;
}

/** The keyed hash an erasure and a subject export name a person by in the audit log. */
export function erasureRef(auditKey: Buffer, personId: string): string {
  return createHmac('sha256', auditKey).update(`subject-export\n${personId}`).digest('hex').slice(0, 32);
}

export async function erasePerson(r: ErasureRequest): Promise<ErasureResult> {
  const leases: SourceLease[] = [];
  try {
    for (const s of r.sources) leases.push(await acquireSourceLease(r.store, s, { wait: r.wait }));
    return await eraseHeld(r);
  } finally {
    for (const l of leases) await l.release();
  }
}

async function eraseHeld(r: ErasureRequest): Promise<ErasureResult> {
  const { store, privacy, personId } = r;
  const at = (r.now ?? new Date()).toISOString();
  const keyring = privacy.keyring;
  // Read before the transaction (the store's read side): every version of the pseudonyms, so
  // webhook payloads naming the person by an older one go too; and the recipients.
  const held = await store.subjectRows([personId]);
  const allPseudonyms = held.pseudonyms.map((p) => p.value);
  const recipients = (await store.disclosuresOf(personId)).map((d) => d.client).sort();
  const subscriptions = await store.webhooks.list();
  const erasure = randomUUID();
  const policy = await privacy.ingest(store);

  return store.transaction(async (tx) => {
    const person = await tx.getEntity(personId);
    if (!person || person.type !== 'person') throw new RostergateError('NOT_FOUND', `no person ${personId} in the store (gateway ids look like per_…); nothing was erased`);
    const current = await tx.pseudonymsOfEntity(personId);
    const dependents = await dependentsOf(tx, personId);
    const entities: EntityRow[] = [...dependents, person];
    const suppressions: SuppressionRow[] = [];
    for (const e of entities) {
      for (const sr of await tx.sourceRecordsOf(e.id)) {
        suppressions.push({ source: sr.source, type: sr.type, keyHash: keyring.suppressionKey(sr.source, sr.type, sr.key), erasure, createdAt: at });
        await tx.deleteSourceRecord(sr.source, sr.type, sr.key);
      }
      await tx.deleteEntity(e.id);
    }
    await tx.addSuppressions(suppressions);
    const ids = entities.map((e) => e.id);
    await tx.eraseTraces(ids, [...new Set([...allPseudonyms, ...Object.values(current)])]);

    // The tombstone keeps no last state: placeholders for the fields the schema requires, and the
    // pseudonyms a pseudonymising client knows the person by, so its feed can name them.
    // Logged through a unit of work like every change, so the policy's view times follow it (a
    // deletion moves none today: it takes the record out of every view).
    const unit = openPageUnit(tx, policy);
    await unit.appendChange({
      at, entityId: personId, type: 'person', op: 'deleted', fields: ['erased'], source: null,
      before: { givenName: '', familyName: '', roles: [], grades: [], orgIds: [], _pseudonyms: current, _erased: true },
    });
    const seq = (await unit.flush())[0]!.seq;

    const notified: ErasureResult['notified'] = [];
    for (const client of recipients) {
      const purpose = privacy.clientPurpose(client);
      // The id as this client's purpose sees the person: its pseudonym, or the gateway id.
      const id = purpose && privacy.schemas.get(purpose.id)?.pseudonymises ? current[purpose.domain] : personId;
      const subs = subscriptions.filter((w) => w.client === client && subscribed(w.events, PERSON_ERASED));
      await tx.addDeliveries(subs.map((w) => ({
        webhookId: w.id, seq, msgId: `msg_${w.id}_erased_${randomBytes(6).toString('hex')}`, eventType: PERSON_ERASED,
        payload: JSON.stringify({ type: PERSON_ERASED, timestamp: at, data: { op: 'ERASED', type: 'PERSON', at, fields: ['erased'], ...(privacy.tenant && privacy.seesTenants?.(client) ? { tenant: privacy.tenant } : {}), record: { id: id ?? null } } }),
        nextAttemptAt: at, createdAt: at,
      })));
      notified.push({ client, subscriptions: subs.length });
    }

    const key = keyring.auditKey();
    const ref = erasureRef(key, personId);
    // The operation text is bounded (src/privacy/audit.ts): the clients told go in `fields`, one
    // `notified:<client>` each, where a query's entry lists the schema coordinates it touched.
    const auditSeq = await appendAudit(tx, key, {
      at, client: r.requestedBy.client, purpose: 'erasure', kind: 'erasure',
      operation: `erasure (requested by ${r.requestedBy.name}) ${entities.length} records ${suppressions.length} suppressed`,
      operationHash: ref, categories: {}, fields: notified.map((n) => `notified:${n.client}`), people: 1,
    });
    return { ref, at, records: entities.length, suppressed: suppressions.length, notified, auditSeq };
  });
}

async function dependentsOf(tx: StoreTx, personId: string): Promise<EntityRow[]> {
  const out = new Map<string, EntityRow>();
  for (const rel of DEPENDENT_RELS) {
    for (const id of await tx.linksTo(rel, personId)) {
      const e = await tx.getEntity(id);
      if (e) out.set(id, e);
    }
  }
  return [...out.values()];
}

/** Lifts the suppression of one erasure, named by one of its records: returns how many entries went. */
export async function liftSuppression(store: Store, privacy: PrivacyPolicy, ref: { source: string; type: 'person'; key: string }): Promise<number> {
  return store.transaction((tx) => tx.liftSuppression(ref.source, ref.type, privacy.keyring.suppressionKey(ref.source, ref.type, ref.key)));
}
