/** Slots (src/kernel/slots.ts): never more than `size` at once, waiters served in order, a slot given back once. */
import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/kernel/slots.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('Slots', () => {
  it('runs at most `size` pieces of work at once, and all of them', async () => {
    const slots = new Slots(3);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await slots.forEach([...Array(10).keys()], async (i) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5 + (i % 3)));
      running--;
      done.push(i);
    });
    expect(most).toBe(3);
    expect(done.sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
  });

  it('hands a freed slot to the longest waiter, and a release given twice frees one slot only', async () => {
    const slots = new Slots(1);
    const release = await slots.take();
    const order: string[] = [];
    const first = slots.take().then((r) => (order.push('first'), r));
    const second = slots.take().then((r) => (order.push('second'), r));
    await tick();
    expect(order).toEqual([]);
    release();
    release();
    await tick();
    expect(order).toEqual(['first']);
    (await first)();
    await tick();
    expect(order).toEqual(['first', 'second']);
    (await second)();
  });

  it('gives the slot back when the work fails', async () => {
    const slots = new Slots(1);
    await expect(slots.run(async () => { throw new Error('no'); })).rejects.toThrow('no');
    expect(await slots.run(async () => 'next')).toBe('next');
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new Slots(0)).toThrow(RangeError);
    expect(() => new Slots(1.5)).toThrow(RangeError);
  });
});
