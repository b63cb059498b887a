import { describe, expect, it } from 'vitest';
import { PseudonymCache } from '../../src/privacy/pseudonym-cache.ts';

describe('pseudonym cache', () => {
  it('keeps values per domain version, drops older versions of a domain once a newer one is used, and starts over when full', () => {
    const c = new PseudonymCache(3);
    c.set('analytics', 1, new Map([['per_a', 'p1_a'], ['per_b', 'p1_b']]));
    c.set('research', 1, new Map([['per_a', 'p1_x']]));
    expect(c.get('analytics', 1, 'per_a')).toBe('p1_a');
    expect(c.get('research', 1, 'per_a')).toBe('p1_x');
    expect(c.get('analytics', 2, 'per_a')).toBeUndefined();
    c.set('analytics', 2, new Map([['per_a', 'p2_a']]));
    expect(c.get('analytics', 2, 'per_a')).toBe('p2_a');
    expect(c.get('analytics', 1, 'per_a')).toBeUndefined();
    expect(c.get('research', 1, 'per_a')).toBe('p1_x');
    c.set('analytics', 2, new Map([['per_b', 'p2_b'], ['per_c', 'p2_c'], ['per_d', 'p2_d']]));
    expect(c.get('analytics', 2, 'per_a')).toBeUndefined();
    expect(c.get('analytics', 2, 'per_d')).toBe('p2_d');
  });
});
