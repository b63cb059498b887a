/**
 * A write's statements are sent without waiting for each answer where the store runs them elsewhere
 * (inOrder, src/store/queries/batch-tx.ts): the next is built while the store executes this one,
 * they are sent in order, the first failure is the one raised and nothing is sent after it, and a
 * failure met while the next statement is built never surfaces as an unhandled rejection. Where
 * they may not be pipelined (SQLite), each waits for the answer before it.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { endOfTurn as turn } from '../../src/kernel/yield-turn.ts';
import { inOrder } from '../../src/store/queries/batch-tx.ts';

/** A statement the test answers by hand: records when it was sent, settles when told. */
function manual() {
  const log: string[] = [];
  const pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  const statement = (part: number) => {
    log.push(`sent ${part}`);
    return new Promise<number>((resolve, reject) => pending.set(part, { resolve, reject }));
  };
  return { log, pending, statement };
}

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('inOrder', () => {
  it('sends the next statement before the one before it is answered, in order, and returns the answers in order', async () => {
    const m = manual();
    const all = inOrder([1, 2, 3], m.statement, true);
    await turn();
    await turn();
    await turn();
    // All three sent while none has been answered: the next is built while the store works on this one.
    expect(m.log).toEqual(['sent 1', 'sent 2', 'sent 3']);
    m.pending.get(3)!.resolve(30);
    m.pending.get(1)!.resolve(10);
    m.pending.get(2)!.resolve(20);
    expect(await all).toEqual([10, 20, 30]);
  });

  it('raises the first failure, sends nothing after it, and leaves no unhandled rejection', async () => {
    const m = manual();
    const all = inOrder([1, 2, 3, 4], m.statement, true);
    const outcome = all.then(() => 'resolved', (e: Error) => e.message);
    await turn();
    m.pending.get(1)!.reject(new Error('unique violation in statement 1'));
    await turn();
    await turn();
    await turn();
    // The statements queued behind a failed one fail too (PostgreSQL refuses them): not what is raised.
    for (const [part, p] of m.pending) if (part !== 1) p.reject(new Error('current transaction is aborted'));
    expect(await outcome).toBe('unique violation in statement 1');
    expect(m.log.length).toBeLessThan(4);
    await turn();
    expect(unhandled).toEqual([]);
  });

  it('waits for each answer before the next statement when not pipelined', async () => {
    const m = manual();
    const all = inOrder([1, 2], m.statement, false);
    await turn();
    await turn();
    expect(m.log).toEqual(['sent 1']);
    m.pending.get(1)!.resolve(10);
    await turn();
    expect(m.log).toEqual(['sent 1', 'sent 2']);
    m.pending.get(2)!.resolve(20);
    expect(await all).toEqual([10, 20]);
  });

  it('sends nothing for no parts, and one statement at once', async () => {
    expect(await inOrder([], async () => 1, true)).toEqual([]);
    const m = manual();
    const all = inOrder([7], m.statement, true);
    expect(m.log).toEqual(['sent 7']);
    m.pending.get(7)!.resolve(70);
    expect(await all).toEqual([70]);
  });
});
