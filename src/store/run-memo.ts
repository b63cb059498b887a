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
 *
 * It also knows which of the run's own source records are absent, when the run began on a source
 * with none stored (a source's first sync: a district onboarded). Only a run of a source creates
 * source records of it (ingest; an operator's link moves stored records, an erasure deletes them),
 * and a source has one run at a time (its lease). So a record of the source that none of the run's
 * committed groups read or wrote is not stored, and a group need not ask for it: on PostgreSQL that
 * read was a round trip a group, about a second of a 30-second first sync of 20,000 students
 * (docs/data-engine.md). Whether the
 * source was empty is asked once, under the lock, at the run's first group; anything that makes the
 * memo forget ends it for the rest of the run (the reads come back: never a wrong answer).
 */
import { REFERENCES, type EntityType } from '../model/records.ts';
import type { StoreTx } from './types.ts';

/** Types a reference can name: the only records whose entity ids a group asks for without their data. */
const REFERENCED = new Set<string>(Object.values(REFERENCES).flatMap((refs) => Object.values(refs as Record<string, EntityType>)));

/** Past this many records the memo stops learning (a district's people and classes fit many times over). */
const DEFAULT_LIMIT = 2_000_000;

export class RunMemo {
  private readonly entityIds = new Map<string, string | null>();
  /**
   * Whether the run's source held no source records when the run began: undefined until the first
   * group asks, false once the memo forgot (or was never told the source).
   */
  private sourceEmpty: boolean | undefined;
  /**
   * The source's records the run's committed groups read or wrote: the only ones that may be stored.
   * Held as 30-bit hashes of their keys (`touchedHash`), about 35 bytes a record where the keys
   * themselves took about 180 (104 MB at 50,000 students): two keys that share a hash only make
   * one of them look touched, so it is read, never taken for absent.
   */
  private readonly touched = new Set<number>();
  /** The change log's next seq when the run last committed; undefined: nothing known yet. */
  private nextSeq: number | undefined;
  private staged: { entries: [string, string | null][]; touched: number[]; nextSeq: number } | undefined;
  /** The run's source, or undefined: not told, so no record is known absent. */
  private readonly source: string | undefined;
  /** The record-key prefix of the run's source (`source` NUL). */
  private readonly prefix: string;
  /**
   * Whether the run's last group found any of its records stored (undefined: no group yet). The
   * group after one that found none (a first sync's) does not try to settle unchanged records, since
   * the statement would find nothing (src/sync/ingest.ts, `prefetchRecords`). Only a hint, so unlike
   * the entity ids it needs no check and is not forgotten: a wrong guess costs one statement, or one
   * group's settling.
   */
  foundStored: boolean | undefined;

  private readonly limit: number;

  /** `source`: the run's, for the records it knows absent (left out: none is); `limit`: how many records it learns at most. */
  constructor(opts: { source?: string; limit?: number } = {}) {
    this.limit = opts.limit ?? DEFAULT_LIMIT;
    this.source = opts.source;
    this.prefix = `${opts.source ?? ''}\0`;
    if (opts.source === undefined) this.sourceEmpty = false;
  }

  /**
   * At a group's start, under the lock: forgets what it knew if anyone else wrote since the run's last
   * commit. At the run's first group, asks whether the source holds any record.
   */
  async check(tx: StoreTx): Promise<void> {
    this.staged = undefined;
    if (this.sourceEmpty === undefined) this.sourceEmpty = !(await tx.hasSourceRecords(this.source!));
    if (this.nextSeq === undefined) return;
    if ((await tx.nextChangeSeq()) !== this.nextSeq) this.forget();
  }

  /**
   * Whether the run knows this record of its source is not stored: the source held none when the run
   * began, and no group the run committed read or wrote it. `k` as the page unit keys records.
   */
  knownAbsent(k: string): boolean {
    return this.sourceEmpty === true && k.startsWith(this.prefix) && !this.touched.has(touchedHash(k));
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
    const touched: number[] = [];
    const tracking = this.sourceEmpty === true;
    for (const e of entries) {
      if (REFERENCED.has(typeOf(e[0]))) out.push(e);
      // Every key the unit knew, stored or not: what it read may have been found, what it planned written.
      if (tracking && e[0].startsWith(this.prefix)) touched.push(touchedHash(e[0]));
    }
    this.staged = { entries: out, touched, nextSeq };
  }

  /** The group's transaction committed: what it staged is what the store holds. */
  kept(): void {
    const s = this.staged;
    this.staged = undefined;
    if (!s) return this.forget();
    for (const [k, id] of s.entries) if (this.entityIds.size < this.limit || this.entityIds.has(k)) this.entityIds.set(k, id);
    if (this.sourceEmpty) {
      // Past the bound, a key not kept would be taken for absent: the run stops knowing any.
      if (this.touched.size + s.touched.length > this.limit) this.stopKnowingAbsent();
      else for (const k of s.touched) this.touched.add(k);
    }
    this.nextSeq = s.nextSeq;
  }

  /** The group's transaction did not commit, or wrote without staging: nothing known holds for sure. */
  forget(): void {
    this.entityIds.clear();
    this.nextSeq = undefined;
    this.staged = undefined;
    this.stopKnowingAbsent();
  }

  /** From here on every record of the source may be stored (the run has written some, so it is not asked again). */
  private stopKnowingAbsent(): void {
    this.sourceEmpty = false;
    this.touched.clear();
  }
}

/** FNV-1a of a record key, cut to 30 bits so that V8 keeps it as a small integer (no boxed number per entry). */
function touchedHash(k: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

/** The type part of a record key (`recKey`: source, type and key joined by NUL). */
function typeOf(k: string): string {
  const a = k.indexOf('\0');
  return k.slice(a + 1, k.indexOf('\0', a + 1));
}
