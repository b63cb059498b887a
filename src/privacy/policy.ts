/**
 * Purposes and clients. A purpose says, per classification category and optionally per field
 * (schema coordinate), whether its clients get the value (`allow`), a keyed pseudonym in its
 * domain (`pseudonymise`, identifiers only) or nothing (`deny`). Anything not said is denied.
 */
import { z } from 'zod';
import { CATEGORIES, type Category, type Classification, type FieldClass } from './classification.ts';

export const ACTIONS = ['allow', 'pseudonymise', 'deny'] as const;
export type Action = (typeof ACTIONS)[number];

export const purposeSchema = z
  .object({
    description: z.string().optional(),
    /** The legal basis the school relies on for this processing (GDPR art. 6 / FERPA exception). */
    legalBasis: z.string().min(1),
    categories: z.partialRecord(z.enum(CATEGORIES), z.enum(ACTIONS)).default({}),
    fields: z.record(z.string().regex(/^[A-Z][A-Za-z]*\.[a-z][A-Za-z0-9]*$/, 'use a schema coordinate like Person.email'), z.enum(ACTIONS)).default({}),
    /** Pseudonymisation domain; purposes sharing one can join each other's pseudonyms. Default: the purpose id. */
    pseudonymDomain: z.string().regex(/^[a-z0-9][a-z0-9-]*$/).optional(),
    /** May this purpose's clients pull extracts (data teams)? */
    extracts: z.boolean().default(false),
    /** May its clients manage webhooks and keys (admin)? */
    admin: z.boolean().default(false),
    /** Re-identification check on extracts: groups of quasi-identifiers smaller than k. */
    kAnonymity: z
      .object({
        k: z.number().int().min(2).default(5),
        onViolation: z.enum(['generalise', 'suppress']).default('generalise'),
        maxSuppressShare: z.number().min(0).max(1).default(0.05),
      })
      .strict()
      .default({ k: 5, onViolation: 'generalise', maxSuppressShare: 0.05 }),
    /**
     * Query limits for this purpose's clients; each key left out keeps its default (the defaults
     * and what each counts live in src/server/limits.ts).
     */
    limits: z
      .object({
        maxCost: z.number().int().positive(),
        maxDepth: z.number().int().positive(),
        maxAliases: z.number().int().nonnegative(),
        maxTokens: z.number().int().positive(),
        maxDirectives: z.number().int().nonnegative(),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();
export type PurposeConfig = z.infer<typeof purposeSchema>;

/**
 * A client's request rate: a token bucket holding `burst` requests, refilled at `requestsPerMinute`.
 * Kept in memory per gateway process, so with N replicas a client may make up to N times as many.
 */
export const rateLimitSchema = z
  .object({
    requestsPerMinute: z.number().positive(),
    /** Requests allowed at once after a quiet spell (default: one minute's worth, at least 1). */
    burst: z.number().int().min(1).optional(),
  })
  .strict()
  .transform((r) => ({ requestsPerMinute: r.requestsPerMinute, burst: r.burst ?? Math.max(1, Math.floor(r.requestsPerMinute)) }));
export type RateLimit = z.infer<typeof rateLimitSchema>;

export const clientSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i),
    purpose: z.string(),
    description: z.string().optional(),
    /** sha256 hashes of API keys (hex), for stateless replicas; `rostergate keys create` stores them in the store instead. */
    keyHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).default([]),
    /** This client's rate limit (overrides server.rateLimit); `false`: none, whatever the default. */
    rateLimit: z.union([z.literal(false), rateLimitSchema]).optional(),
    /**
     * The tenants (schools, districts) this client may read: tenant ids, or ["*"] for all of them
     * (a vendor's own backend). Left out: the config's own tenant (`privacy.tenant`) only. With
     * more than one, each request names its tenant in the x-rostergate-tenant header (docs/tenants-serving.md).
     */
    tenants: z.array(z.string()).min(1).optional(),
  })
  .strict();
export type ClientConfig = z.infer<typeof clientSchema>;

export interface Purpose extends PurposeConfig {
  id: string;
  domain: string;
}

/** The action for one field in one purpose: field override, then category, then deny. */
export function decide(purpose: Pick<PurposeConfig, 'categories' | 'fields'>, field: FieldClass): Action {
  const action = purpose.fields[field.coordinate] ?? purpose.categories[field.category] ?? 'deny';
  // A pseudonym stands for the person, so only the person's own id carries one; the person's other
  // identifiers (SIS id, state id, source ids) would only repeat it, and are withheld instead.
  if (action === 'pseudonymise' && field.coordinate !== 'Person.id') return 'deny';
  return action;
}

/** Checks a purpose against the classification: unknown coordinates and impossible actions are config errors. */
export function validatePurpose(id: string, p: PurposeConfig, cls: Classification): string[] {
  const errors: string[] = [];
  for (const [coord, action] of Object.entries(p.fields)) {
    const f = cls.get(coord);
    if (!f) errors.push(`purposes.${id}.fields: unknown field ${coord}`);
    else if (action === 'pseudonymise' && coord !== 'Person.id') {
      errors.push(`purposes.${id}.fields.${coord}: only Person.id can be pseudonymised (the pseudonym stands for the person)`);
    }
  }
  for (const [cat, action] of Object.entries(p.categories)) {
    if (action === 'pseudonymise' && cat !== 'IDENTIFIER') errors.push(`purposes.${id}.categories.${cat}: pseudonymise applies to IDENTIFIER only`);
  }
  return errors;
}

export function fieldActions(p: Pick<PurposeConfig, 'categories' | 'fields'>, cls: Classification): Map<string, Action> {
  return new Map([...cls.values()].map((f) => [f.coordinate, decide(p, f)]));
}

export function categoryOf(cls: Classification, coordinate: string): Category | undefined {
  return cls.get(coordinate)?.category;
}
