/**
 * The ranges of a parallel extract in list order (`inOrder`, src/extract/parallel.ts): however the
 * extract ends, no range is left running on the threads after it. A stand-in pool whose ranges end
 * when the test says so stands in for the worker threads.
 */
import { describe, expect, it } from 'vitest';
import { inOrder, type Job, type RangeResult } from '../../src/extract/parallel.ts';

/** A pool whose ranges end when `end(i, outcome)` is called; records which ranges have ended. */
function standInPool() {
  const ends: ((outcome: 'ok' | Error) => void)[] = [];
  const ended = new Set<number>();
  const done: string[] = [];
  const pool = {
    run: (_job: Job) => {
      const i = ends.length;
      return new Promise<RangeResult>((resolve, reject) => {
        ends.push((outcome) => {
          ended.add(i);
          if (outcome === 'ok') resolve({ i } as unknown as RangeResult);
          else reject(outcome);
        });
      });
    },
    done: (extractId: string) => void done.push(extractId),
  };
  return { pool, ends, ended, done };
}

const jobs = (n: number): Job[] => Array.from({ length: n }, () => ({ extractId: 'x1' }) as unknown as Job);
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('parallel extract ranges in order', () => {
  it('a range that fails ends the extract only once the ranges still running have ended', async () => {
    const { pool, ends, ended, done } = standInPool();
    const reading = (async () => {
      for await (const _ of inOrder(pool, jobs(6), 3)) void _;
    })();
    let failedAt: number[] | undefined;
    reading.catch(() => (failedAt = [...ended]));
    await tick();
    expect(ends.length).toBe(3);
    ends[0]!(new Error('range 0 failed'));
    await tick();
    // Ranges 1 and 2 are still on the threads: the extract has not ended yet.
    expect(failedAt).toBeUndefined();
    ends[1]!('ok');
    ends[2]!(new Error('range 2 failed too'));
    await expect(reading).rejects.toThrow('range 0 failed');
    expect(failedAt).toEqual([0, 1, 2]);
    // No range after the failure was started, and the threads were told the extract is over.
    expect(ends.length).toBe(3);
    expect(done).toEqual(['x1']);
  });

  it('a caller that stops reading waits for the ranges it started', async () => {
    const { pool, ends, ended } = standInPool();
    const ranges = inOrder(pool, jobs(6), 3);
    const first = ranges.next();
    await tick();
    ends[0]!('ok');
    expect((await first).done).toBe(false);
    // Range 3 started in place of range 0; 1, 2 and 3 are running.
    let stopped = false;
    const stopping = ranges.return(undefined).then(() => (stopped = true));
    await tick();
    expect(stopped).toBe(false);
    for (const i of [1, 2, 3]) ends[i]!('ok');
    await stopping;
    expect([...ended].sort()).toEqual([0, 1, 2, 3]);
  });
});
