/**
 * What one sync run knows the store holds, carried from one group's transaction to the next: the
 * entity id of each source record a group read or wrote (null: pending or absent), for the types a
 * reference can name. A group's references mostly name records earlier groups wrote (an enrollment
 * its class and person), so without it every group read their entity ids back from the store:
 * 199,612 rows in 40 reads for a direct sync of 20,000 students, 1.1 s of PostgreSQL's time.
 *
 * The memo holds only while nothing but the run wrote the roster since its last commit. Between two
 * groups the roster's lock is free, and an operator's link or unlink, an erasure or another
 * source's sync may move a record to another entity or delete it. Every such writer logs what it
 * changed in the change log (the change feed must tell consumers), so the change log's next seq is
 * a counter of the roster's writes: each group checks, under the lock, that it is the one the run
 * left at its last commit, and forgets everything if not. A writer that logs a change the run does
 * not care about costs the run its memo, never a wrong answer.
 */
import { REFERENCES, type EntityType } from '../model/records.ts';
import type { StoreTx } from './types.ts';

/** Types a reference can name: the only records whose entity ids a group asks for without their data. */
const REFERENCED = new Set<string>(Object.values(REFERENCES).flatMap((refs) => Object.values(refs as Record<string, EntityType>)));

/** Past this many records the memo stops learning (a district's people and classes fit many times over). */
const DEFAULT_LIMIT = 2_000_000;

export class RunMemo {
  private readonly entityIds = new Map<string, string | null>();
  /** The change log's next seq when the run last committed; undefined: nothing known yet. */
  private nextSeq: number | undefined;
  private staged: { entries: [string, string | null][]; nextSeq: number } | undefined;
  /**
   * Whether the run's last group found any of its records stored (undefined: no group yet). The
   * group after one that found none (a first sync's) does not try to settle unchanged records, since
   * the statement would find nothing (src/sync/ingest.ts, `prefetchRecords`). Only a hint, so unlike
   * the entity ids it needs no check and is not forgotten: a wrong guess costs one statement, or one
   * group's settling.
   */
  foundStored: boolean | undefined;

  constructor(private readonly limit = DEFAULT_LIMIT) {}

  /** At a group's start, under the lock: forgets what it knew if anyone else wrote since the run's last commit. */
  async check(tx: StoreTx): Promise<void> {
    this.staged = undefined;
    if (this.nextSeq === undefined) return;
    if ((await tx.nextChangeSeq()) !== this.nextSeq) this.forget();
  }

  /** A record's entity id as the run left it (null: pending or absent); undefined: not known. `k` as the page unit keys records. */
  entityIdOf(k: string): string | null | undefined {
    return this.entityIds.get(k);
  }

  /**
   * What a group's unit knew and planned, at the end of its transaction, with the change log's next
   * seq after its writes: kept only when that transaction commits (`kept`).
   */
  stage(entries: Iterable<[string, string | null]>, nextSeq: number): void {
    const out: [string, string | null][] = [];
    for (const e of entries) if (REFERENCED.has(typeOf(e[0]))) out.push(e);
    this.staged = { entries: out, nextSeq };
  }

  /** The group's transaction committed: what it staged is what the store holds. */
  kept(): void {
    const s = this.staged;
    this.staged = undefined;
    if (!s) return this.forget();
    for (const [k, id] of s.entries) if (this.entityIds.size < this.limit || this.entityIds.has(k)) this.entityIds.set(k, id);
    this.nextSeq = s.nextSeq;
  }

  /** The group's transaction did not commit, or wrote without staging: nothing known holds for sure. */
  forget(): void {
    this.entityIds.clear();
    this.nextSeq = undefined;
    this.staged = undefined;
  }
}

/** The type part of a record key (`recKey`: source, type and key joined by NUL). */
function typeOf(k: string): string {
  const a = k.indexOf('\0');
  return k.slice(a + 1, k.indexOf('\0', a + 1));
}
