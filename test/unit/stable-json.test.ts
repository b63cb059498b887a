/**
 * stableJson's text never changes: content hashes in every store and the audit log's hash chain
 * were made with it. The function as first written is kept here and both must agree on any value.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stableJson } from '../../src/model/stable-json.ts';

function firstVersion(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(firstVersion).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${firstVersion((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

describe('stableJson', () => {
  it('writes what its first version wrote, for any value', () => {
    const value = fc.letrec((tie) => ({
      leaf: fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date()),
      node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node')), fc.dictionary(fc.string(), tie('node'))),
    })).node;
    fc.assert(fc.property(value, (v) => {
      expect(stableJson(v)).toBe(firstVersion(v));
    }), { numRuns: 3000 });
  });

  it('sorts few and many keys alike, integer-like keys as text', () => {
    // stableJson sorts up to 32 keys by insertion and more with Array#sort: both must give sort()'s order.
    for (const n of [2, 31, 32, 33, 200]) {
      const keys = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? String(i * 7) : i % 3 === 1 ? `k${(i * 13) % n}-\u00e9${i}` : `K${i}\ud83d\ude00`));
      const shuffled = fc.sample(fc.shuffledSubarray(keys, { minLength: n, maxLength: n }), { numRuns: 1, seed: n })[0]!;
      const v = Object.fromEntries(shuffled.map((k, i) => [k, i]));
      expect(stableJson(v)).toBe(firstVersion(v));
    }
  });

  it('sorts keys and leaves out undefined members, so equal content gives equal text', () => {
    expect(stableJson({ b: 1, a: [1, undefined, { d: undefined, c: 'x' }], z: undefined })).toBe('{"a":[1,,{"c":"x"}],"b":1}');
    expect(stableJson({ a: 1, b: 2 })).toBe(stableJson({ b: 2, a: 1 }));
  });
});
