/**
 * Materialises pseudonyms per domain in the store at sync time, so queries and extracts never pay
 * for HMAC and every response in a domain shows the same pseudonym for the same person. Also the
 * key rotation of a domain, with its optional re-keying table (old → new) for the domain's owner.
 */
import type { Store, StoreTx } from '../store/types.ts';
import type { PseudonymRow } from '../store/ingest-policy.ts';
import { versionOf, type KeyRing } from './pseudonym.ts';

const BATCH = 2000;

export class Pseudonymiser {
  constructor(private readonly keyring: KeyRing, readonly domains: string[]) {}

  /** Current version of each domain, creating version 1 for new domains. */
  async versions(store: Store): Promise<Map<string, number>> {
    return store.transaction(async (tx) => {
      const out = new Map<string, number>();
      for (const d of this.domains) {
        let v = await tx.getDomainVersion(d);
        if (v === undefined) {
          v = 1;
          await tx.setDomainVersion(d, v, new Date().toISOString());
        }
        out.set(d, v);
      }
      return out;
    });
  }

  /**
   * Ingest policy part (src/store/ingest-policy.ts): the pseudonyms of new people, which the page unit of
   * work writes in the same transaction that creates them.
   */
  rowsFor(versions: Map<string, number>): (entityIds: readonly string[]) => PseudonymRow[] {
    return (ids) => ids.flatMap((entityId) => [...versions].map(([domain, version]) => ({ domain, version, entityId, value: this.keyring.pseudonym(domain, version, entityId) })));
  }

  /** Fills in pseudonyms missing for (domain, version): new domains, people created during a rotation. */
  async backfill(store: Store, domain: string, version: number): Promise<number> {
    let n = 0;
    for (;;) {
      const ids = await store.peopleWithoutPseudonym(domain, version, BATCH);
      if (ids.length === 0) return n;
      await store.transaction((tx) => tx.putPseudonyms(ids.map((entityId) => ({ domain, version, entityId, value: this.keyring.pseudonym(domain, version, entityId) }))));
      n += ids.length;
    }
  }

  async backfillAll(store: Store): Promise<number> {
    let n = 0;
    for (const [d, v] of await this.versions(store)) n += await this.backfill(store, d, v);
    // A new domain's pseudonyms are a version the planner has no statistics for yet: see rotate.
    if (n > 0) await store.refreshStatistics(n);
    return n;
  }

  /**
   * Moves a domain to a new key version. Every person gets a new pseudonym; the previous version is
   * kept until the next rotation so in-flight clients can finish, older ones are deleted. The
   * tombstones of deleted people are re-keyed in the same transaction that switches the version,
   * so the change feed and webhook replays show deletions under the pseudonyms of the version
   * everything else is shown in. With `rekey`, the domain's owner receives each (old, new) pair —
   * for deleted people too — to carry its history over.
   */
  async rotate(
    store: Store, domain: string, rekey?: (oldP: string, newP: string) => void,
  ): Promise<{ from: number; to: number; people: number; tombstones: number }> {
    if (!this.domains.includes(domain)) throw new Error(`no pseudonymisation domain "${domain}" (configured: ${this.domains.join(', ') || 'none'})`);
    const from = (await this.versions(store)).get(domain)!;
    const to = from + 1;
    await this.backfill(store, domain, to);
    let people = 0;
    for (let after: string | undefined; ; ) {
      const ids = await store.personIds(after, BATCH);
      if (ids.length === 0) break;
      after = ids[ids.length - 1];
      people += ids.length;
      if (rekey) {
        const [olds, news] = await Promise.all([store.pseudonymsOf(domain, from, ids), store.pseudonymsOf(domain, to, ids)]);
        for (const id of ids) {
          const o = olds.get(id) ?? this.keyring.pseudonym(domain, from, id);
          rekey(o, news.get(id)!);
        }
      }
    }
    const tombstones = await store.transaction(async (tx) => {
      await tx.setDomainVersion(domain, to, new Date().toISOString());
      const n = await this.rekeyTombstones(tx, domain, to, rekey);
      for (let v = from - 1; v >= 1; v--) if ((await tx.deletePseudonyms(domain, v)) === 0) break;
      return n;
    });
    // Every person now has a pseudonym of a version PostgreSQL's planner has never seen, and lists
    // in pseudonym order filter on it: planned as if it matched nothing (a scan of the entities
    // for each nested page, docs/serving.md) until statistics are renewed. Renew them now rather
    // than at the next large sync or autovacuum.
    await store.refreshStatistics(people);
    return { from, to, people, tombstones };
  }

  /** Gives every person tombstone that keeps a pseudonym of `domain` from another version the one of version `to`. */
  private async rekeyTombstones(tx: StoreTx, domain: string, to: number, rekey?: (oldP: string, newP: string) => void): Promise<number> {
    let n = 0;
    for (let after = 0; ; ) {
      const page = await tx.personTombstones(after, BATCH);
      if (page.length === 0) return n;
      after = page[page.length - 1]!.seq;
      for (const t of page) {
        const old = t.pseudonyms[domain];
        if (!old || versionOf(old) === to) continue;
        const value = this.keyring.pseudonym(domain, to, t.entityId);
        await tx.setTombstonePseudonyms(t.seq, { ...t.pseudonyms, [domain]: value });
        rekey?.(old, value);
        n++;
      }
    }
  }
}
