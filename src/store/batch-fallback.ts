/**
 * A BatchTx made of loops over the singular StoreTx operations: each set-at-a-time call means
 * exactly what its loop does, which is the contract of BatchTx itself (src/store/types.ts). It lets
 * the page unit of work run on any StoreTx, and is the reference the batch tests compare with.
 *
 * `nextChangeSeq` cannot be asked of a StoreTx (it only appends); the caller supplies a peek at
 * the store's head before the first append, and every append checks that the store gave the seq
 * planned, so a wrong peek fails the transaction instead of misnumbering entities and view times.
 */
import type { EntityType } from '../model/records.ts';
import type { BatchTx, ChangeRow, EntityRow, SourceRecordRef, SourceRecordRow, StoreTx } from './types.ts';

export function loopBatch(tx: StoreTx, peekNextSeq: () => Promise<number>): BatchTx {
  let next: number | undefined;
  return {
    async getSourceRecords(refs) {
      const out: SourceRecordRow[] = [];
      for (const r of refs) {
        const row = await tx.getSourceRecord(r.source, r.type, r.key);
        if (row) out.push(row);
      }
      return out;
    },
    async sourceRecordsOfEntities(ids) {
      const out: SourceRecordRow[] = [];
      for (const id of ids) out.push(...(await tx.sourceRecordsOf(id)));
      return out;
    },
    async entitiesById(ids) {
      const out: EntityRow[] = [];
      for (const id of ids) {
        const e = await tx.getEntity(id);
        if (e) out.push(e);
      }
      return out;
    },
    async linksToMany(rel, toIds) {
      const out: { from: string; to: string }[] = [];
      for (const to of toIds) for (const from of await tx.linksTo(rel, to)) out.push({ from, to });
      return out;
    },
    async matchKeyEntities(keys) {
      const out: { kind: string; value: string; entityId: string }[] = [];
      for (const k of keys) for (const entityId of await tx.findByMatchKey(k.kind, k.value)) out.push({ ...k, entityId });
      return out;
    },
    async identityOverridesOf(refs) {
      const out: (SourceRecordRef & { entityId: string })[] = [];
      for (const r of refs) {
        const entityId = await tx.identityOverride(r);
        if (entityId) out.push({ source: r.source, type: r.type, key: r.key, entityId });
      }
      return out;
    },
    async suppressedOf(source, entries) {
      const out: { type: EntityType; keyHash: string }[] = [];
      for (const e of entries) if (await tx.isSuppressed(source, e.type, e.keyHash)) out.push(e);
      return out;
    },
    async pseudonymsOfEntities(ids) {
      const out = new Map<string, Record<string, string>>();
      for (const id of ids) {
        const p = await tx.pseudonymsOfEntity(id);
        if (Object.keys(p).length) out.set(id, p);
      }
      return out;
    },
    async putSourceRecords(rows) {
      for (const r of rows) await tx.putSourceRecord(r);
    },
    async deleteSourceRecords(refs) {
      for (const r of refs) await tx.deleteSourceRecord(r.source, r.type, r.key);
    },
    async putEntities(rows) {
      for (const r of rows) await tx.putEntity(r);
    },
    async deleteEntities(ids) {
      for (const id of ids) await tx.deleteEntity(id);
    },
    async replaceLinks(entries) {
      for (const e of entries) await tx.setLinks(e.fromId, e.links);
    },
    async replaceMatchKeys(entries) {
      for (const e of entries) await tx.setMatchKeys(e.entityId, e.keys);
    },
    async nextChangeSeq() {
      next ??= await peekNextSeq();
      return next;
    },
    async appendChanges(rows: readonly ChangeRow[]) {
      for (const { seq, ...c } of rows) {
        const got = await tx.appendChange(c);
        if (got !== seq) throw new Error(`change log numbering: planned seq ${seq}, the store gave ${got}`);
        next = got + 1;
      }
    },
  };
}
