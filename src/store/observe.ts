/**
 * What the stores tell metrics and traces: every write transaction is timed (begin to commit or
 * rollback, the write lock's wait included, since that is what a caller waits for) and, when
 * tracing is on, is a `store.transaction` span; every read is a `store.read` span. Attributes
 * are the store's kind only: never a statement, whose parameters are data.
 */
import { secondsSince, storeTransactionDuration } from '../kernel/metrics.ts';
import { tracingOn, withSpan } from '../kernel/tracing.ts';

export async function observedTransaction<T>(kind: 'sqlite' | 'postgres', run: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  let outcome = 'rollback';
  try {
    const out = await withSpan('store.transaction', { 'db.system': dbSystem(kind) }, run);
    outcome = 'commit';
    return out;
  } finally {
    storeTransactionDuration.observe({ store: kind, outcome }, secondsSince(started));
  }
}

/** A read, in a span when tracing is on; otherwise `read` is called as it is (reads are the hottest path). */
export function observedRead<R>(kind: 'sqlite' | 'postgres', read: () => R | Promise<R>): R | Promise<R> {
  return tracingOn() ? withSpan('store.read', { 'db.system': dbSystem(kind) }, async () => read()) : read();
}

const dbSystem = (kind: 'sqlite' | 'postgres') => (kind === 'postgres' ? 'postgresql' : 'sqlite');
