/**
 * A counting semaphore: at most `size` pieces of work at once, the others waiting their turn in
 * order. serve's rounds over tenants use it (webhook dispatchers, warm-up, readiness checks), so
 * one slow tenant takes one slot and never all of them, and hundreds of tenants never open
 * hundreds of connections at once. Hand-written rather than p-limit: twenty lines, and the caller
 * needs `take()` on its own (to start work without waiting for its end), which p-limit does not offer.
 */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Slots: size must be a positive integer, not ${size}`);
    this.free = size;
  }

  /** Waits for a free slot; the function it resolves to gives the slot back (once). */
  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next in line; only when nobody waits is it free again.
      if (next) next();
      else this.free++;
    };
  }

  /** Runs `work` in a slot. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.take();
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Runs `work` for every item, `size` at a time; resolves when all have ended (failures are `work`'s to handle). */
  async forEach<T>(items: Iterable<T>, work: (item: T) => Promise<void>): Promise<void> {
    await Promise.all([...items].map((item) => this.run(() => work(item))));
  }
}
