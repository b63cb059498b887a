/** Purposes in the config: what is accepted, what is refused (naming the key), and how a field's action is decided. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { classify } from '../../src/privacy/classification.ts';
import { decide } from '../../src/privacy/policy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';

const cls = classify(buildUnifiedSchema());
const field = (c: string) => cls.get(c)!;
const keyring = new KeyRing(Buffer.alloc(32, 1), 't');
const setup = (purposes: Record<string, unknown>, clients: unknown[] = []) =>
  setupPrivacy(parseConfig({ store: ':memory:', purposes, clients }, 'rg.yaml'), buildUnifiedSchema(), { keyring });

describe('purpose policy', () => {
  it('a field override wins over its category, and anything unsaid is denied', () => {
    const p = { categories: { DIRECT: 'allow', IDENTIFIER: 'pseudonymise' } as const, fields: { 'Person.email': 'deny' } as const };
    expect(decide(p, field('Person.givenName'))).toBe('allow');
    expect(decide(p, field('Person.email'))).toBe('deny');
    expect(decide(p, field('Person.id'))).toBe('pseudonymise');
    // Only the person's own id carries the pseudonym; other identifiers are withheld.
    expect(decide(p, field('Person.sisId'))).toBe('deny');
    expect(decide(p, field('SourceRef.sourcedId'))).toBe('deny');
    expect(decide(p, field('Demographics.birthDate'))).toBe('deny');
    expect(decide(p, field('Class.classType'))).toBe('deny');
  });

  it('a purpose must state its legal basis', () => {
    expect(() => parseConfig({ purposes: { lms: { categories: { NONE: 'allow' } } } }, 'rg.yaml')).toThrow(/rg\.yaml: purposes\.lms\.legalBasis/);
  });

  it('refuses unknown coordinates, impossible pseudonymisation, unknown actions and clients of unknown purposes, naming each', () => {
    expect(() => setup({ lms: { legalBasis: 'contract', fields: { 'Person.shoeSize': 'allow' } } })).toThrow(/purposes\.lms\.fields: unknown field Person\.shoeSize/);
    expect(() => setup({ lms: { legalBasis: 'contract', fields: { 'Person.sisId': 'pseudonymise' } } })).toThrow(/purposes\.lms\.fields\.Person\.sisId: only Person\.id can be pseudonymised/);
    expect(() => setup({ lms: { legalBasis: 'contract', categories: { DIRECT: 'pseudonymise' } } })).toThrow(/purposes\.lms\.categories\.DIRECT: pseudonymise applies to IDENTIFIER only/);
    expect(() => setup({ lms: { legalBasis: 'contract', categories: { DIRECT: 'show' } } })).toThrow(/purposes\.lms\.categories\.DIRECT/);
    expect(() => setup({ lms: { legalBasis: 'contract' } }, [{ id: 'x', purpose: 'nope' }])).toThrow(/clients\[0\] \(x\)\.purpose: no purpose "nope"/);
  });

  it('purposes share a pseudonymisation domain only when they say so', () => {
    const p = setup({
      a: { legalBasis: 'x', categories: { IDENTIFIER: 'pseudonymise' } },
      b: { legalBasis: 'x', categories: { IDENTIFIER: 'pseudonymise' }, pseudonymDomain: 'a' },
      c: { legalBasis: 'x', categories: { IDENTIFIER: 'pseudonymise' } },
      lms: { legalBasis: 'x', categories: { IDENTIFIER: 'allow' } },
    });
    expect([...p.purposes.values()].map((x) => [x.id, x.domain])).toEqual([['a', 'a'], ['b', 'a'], ['c', 'c'], ['lms', 'lms']]);
    // Only pseudonymising purposes get pseudonyms materialised.
    expect(p.pseudonymiser.domains).toEqual(['a', 'c']);
  });
});
