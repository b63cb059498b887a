/**
 * The audit log: one entry per request or extract — client, purpose, operation name and hash,
 * the classified fields it touched counted by category, and how many people it returned. Entries
 * are append-only and chained: each hash is an HMAC (keyed by the gateway's key, so a store-level
 * attacker cannot recompute it) over the entry and the previous hash. `verify` walks the chain.
 *
 * The disclosure ledger, written in the same transaction, records which people (gateway ids) each
 * client has received data about, so erasure notices reach exactly those clients. Requests' entries
 * are group-committed (./group-commit.ts): one transaction for all the entries queued meanwhile.
 */
import { createHash, createHmac } from 'node:crypto';
import type { AuditRow, Store, StoreTx } from '../store/types.ts';
import { stableJson } from '../model/stable-json.ts';
import { GroupCommitter } from './group-commit.ts';

export type AuditInput = Omit<AuditRow, 'prevHash' | 'hash'>;
/** The link of the first entry: its "previous hash". */
export const GENESIS = 'genesis';

export function entryHash(key: Buffer, prevHash: string, e: AuditInput): string {
  const body = stableJson({
    at: e.at, client: e.client, purpose: e.purpose, kind: e.kind, operation: e.operation, operationHash: e.operationHash,
    categories: e.categories, fields: e.fields, people: e.people,
  });
  return createHmac('sha256', key).update(prevHash).update('\n').update(body).digest('base64url');
}

/** A retention checkpoint's operation text (src/privacy/retention.ts); `parseCheckpoint` reads it back. */
export function checkpointText(seq: number, hash: string): string {
  return `checkpoint: removed through ${seq} last hash ${hash}`;
}
export function parseCheckpoint(operation: string | null): { seq: number; hash: string } | undefined {
  const m = /^checkpoint: removed through (\d+) last hash ([A-Za-z0-9_-]+)$/.exec(operation ?? '');
  return m ? { seq: Number(m[1]), hash: m[2]! } : undefined;
}

/** Longest operation text kept as it is. GraphQL names are rarely over 60 characters. */
export const AUDIT_TEXT_MAX = 100;
const PLAIN_TEXT = /^[A-Za-z0-9_:.() -]*$/;
const KEPT_PREFIX = 40;

/**
 * The operation text an entry keeps. It can come from the client (a request's operationName, up to
 * the body limit), and the log is append-only: a client must not be able to grow it by megabytes a
 * request, nor write control characters or markup into it. Text of at most AUDIT_TEXT_MAX
 * characters from a plain set (letters, digits, `_ : . ( ) -`, space: every GraphQL name, and the
 * gateway's own `extract:people:csv`, `identity link (person)`) is kept; anything else becomes its
 * first 40 characters (those outside the set replaced by `?`), then `…#sha256:` and 16 hex digits of
 * the SHA-256 of the whole text — at most 65 characters, still telling apart (and letting an
 * investigator match) operations that differ only past the prefix.
 */
export function boundAuditText(text: string | null): string | null {
  if (text === null || (text.length <= AUDIT_TEXT_MAX && PLAIN_TEXT.test(text))) return text;
  const head = text.slice(0, KEPT_PREFIX).replace(/[^A-Za-z0-9_:.() -]/g, '?');
  return `${head}…#sha256:${createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16)}`;
}

/**
 * Appends one entry to the chain inside the caller's transaction, so an operation and its audit
 * entry commit together or not at all (an operator's identity link, for one). Every writer comes
 * through here or `appendAudits`, so the operation text is bounded here (the hash covers the bounded text).
 */
export async function appendAudit(tx: StoreTx, key: Buffer, input: AuditInput): Promise<number> {
  return (await appendAudits(tx, key, [input]))[0]!;
}

/**
 * Appends entries to the chain in order inside the caller's transaction: the head is read once
 * (inside the transaction, so a writer in another process or replica is never forked from), each
 * entry's hash links to the one before it in memory, and seq comes from the store. Returns the seqs.
 */
export async function appendAudits(tx: StoreTx, key: Buffer, inputs: readonly AuditInput[]): Promise<number[]> {
  let prev = (await tx.lastAudit())?.hash ?? GENESIS;
  const seqs: number[] = [];
  for (const input of inputs) {
    const entry = { ...input, operation: boundAuditText(input.operation) };
    const hash = entryHash(key, prev, entry);
    seqs.push(await tx.insertAudit({ ...entry, prevHash: prev, hash }));
    prev = hash;
  }
  return seqs;
}

/** The ledger's `last_at` is kept to the hour: a person shown again within it needs no write. */
const LEDGER_RESOLUTION_MS = 3_600_000;

export class AuditLog {
  private recent = new Map<string, Set<string>>();
  private recentSince = Date.now();
  /** Entries (with the ledger rows they bring) of concurrent requests, committed together. */
  private readonly committer: GroupCommitter<{ entry: AuditInput; disclosed: string[] }, number>;

  constructor(private readonly store: Store, private readonly key: Buffer) {
    // The audit log's lock only (TransactionOptions): a sync's group holding the roster's does not hold up the answers.
    this.committer = new GroupCommitter((batch) =>
      store.transaction(async (tx) => {
        const seqs = await appendAudits(tx, key, batch.map((b) => b.entry));
        // In entry order, so a person's first_at is the earliest entry's time.
        for (const { entry, disclosed } of batch) if (disclosed.length) await tx.recordDisclosures(entry.client, disclosed, entry.at);
        return seqs;
      }, { scope: 'audit' }),
    );
  }

  /**
   * Records an entry and its ledger rows; resolves with the entry's seq once both are committed
   * (group-committed with the entries of concurrent requests: ./group-commit.ts), rejects with the
   * store's error if that commit failed.
   */
  async record(entry: AuditInput, disclosed: string[] = []): Promise<number> {
    if (Date.now() - this.recentSince > LEDGER_RESOLUTION_MS) {
      this.recent = new Map();
      this.recentSince = Date.now();
    }
    const seen = this.recent.get(entry.client) ?? this.recent.set(entry.client, new Set()).get(entry.client)!;
    const fresh = disclosed.filter((id) => !seen.has(id));
    const seq = await this.committer.append({ entry, disclosed: fresh });
    for (const id of fresh) seen.add(id);
    return seq;
  }

  /** Resolves once every entry handed to `record` so far is committed (or failed): shutdown waits for it. */
  drain(): Promise<void> {
    return this.committer.drain();
  }

  /**
   * Walks the chain; the first entry whose hash or link does not match is reported. A chain can
   * only prove what it still holds: entries cut from its end leave a shorter, valid chain. So the
   * head is returned for the operator to note elsewhere, and `anchor` (a head noted earlier) must
   * still be on the chain.
   *
   * After a retention run the chain starts later: the first entry links to an entry that is gone.
   * That start is accepted only if a checkpoint entry further on (written by the run, before the
   * cut) recorded exactly that hash as the last one it removed (src/privacy/retention.ts).
   */
  async verify(anchor?: string): Promise<VerifyResult> {
    let prev = GENESIS;
    let n = 0;
    let after = 0;
    let anchored = anchor === undefined;
    let start: { seq: number; hash: string } | undefined;
    let checkpointed = false;
    for (;;) {
      const batch = await this.store.auditEntries({ afterSeq: after, limit: 5000 });
      if (batch.length === 0) break;
      for (const e of batch) {
        n++;
        if (n === 1 && e.prevHash !== GENESIS) {
          start = { seq: e.seq, hash: e.prevHash };
          prev = e.prevHash;
        }
        if (e.prevHash !== prev) return { ok: false, entries: n, firstBad: { seq: e.seq, reason: 'link to the previous entry is broken (an entry was removed or inserted)' } };
        if (e.hash !== entryHash(this.key, prev, e)) return { ok: false, entries: n, firstBad: { seq: e.seq, reason: 'content does not match its hash (the entry was edited, or inserted without the key)' } };
        if (start && e.kind === 'checkpoint') {
          const cp = parseCheckpoint(e.operation);
          if (cp && cp.hash === start.hash && cp.seq < start.seq) checkpointed = true;
        }
        if (e.hash === anchor) anchored = true;
        prev = e.hash;
        after = e.seq;
      }
    }
    if (start && !checkpointed) {
      return { ok: false, entries: n, firstBad: { seq: start.seq, reason: 'the chain starts after removed entries that no retention checkpoint accounts for' } };
    }
    const head = n ? { seq: after, hash: prev } : undefined;
    if (!anchored) return { ok: false, entries: n, head, firstBad: { seq: after + 1, reason: 'the anchor is not on the chain (entries were removed from its end)' } };
    return { ok: true, entries: n, head, ...(start ? { startsAfter: start.seq - 1 } : {}) };
  }
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  /** The last entry checked, to note down as a later anchor. */
  head?: { seq: number; hash: string };
  firstBad?: { seq: number; reason: string };
  /** Set when retention removed the entries before the chain's first: the first kept entry's seq − 1. */
  startsAfter?: number;
}
