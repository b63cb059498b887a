/**
 * The extract's memo of related records' keys (KeyMemo in src/graphql/loaders.ts): bounded, and
 * roomy enough that the records every page asks for (an enrollments extract's classes) are looked
 * up once, not once per generation.
 */
import { describe, expect, it } from 'vitest';
import { KeyMemo } from '../../src/graphql/loaders.ts';

/** A deterministic shuffle (xorshift), so the order the keys are asked in is not the order they were added. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Keys asked round after round, each in another order; a key the memo lacks is "looked up" and set. */
function lookups(memo: KeyMemo, keys: string[], rounds: number): number {
  let misses = 0;
  for (let r = 0; r < rounds; r++) {
    for (const id of shuffled(keys, r + 1)) {
      if (memo.get(id) === undefined) {
        misses++;
        memo.set(id, 'class');
      }
    }
  }
  return misses;
}

describe('KeyMemo', () => {
  const keys = (n: number) => Array.from({ length: n }, (_, i) => `cls_${i.toString(36).padStart(8, '0')}`);

  it('keeps a working set of up to half its limit whole: each key is looked up once', () => {
    expect(lookups(new KeyMemo(1000), keys(500), 5)).toBe(500);
  });

  it('by default holds the classes of a district of about 130,000 students (30,000) across every page', () => {
    expect(lookups(new KeyMemo(), keys(30_000), 3)).toBe(30_000);
  });

  it('stays bounded: past its limit keys are dropped and looked up again', () => {
    const memo = new KeyMemo(1000);
    expect(lookups(memo, keys(5000), 2)).toBeGreaterThan(5000);
    const held = keys(5000).filter((id) => memo.get(id) !== undefined).length;
    expect(held).toBeLessThanOrEqual(1000);
  });
});
