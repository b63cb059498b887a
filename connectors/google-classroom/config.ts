import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { secret } from '../../src/secret.ts';

export const COURSE_STATES = ['ACTIVE', 'ARCHIVED', 'PROVISIONED', 'DECLINED', 'SUSPENDED'] as const;

/** `type: google-classroom` — a service account with domain-wide delegation, impersonating an admin. */
export const googleConfigSchema = sourceBase
  .extend({
    type: z.literal('google-classroom'),
    /** Path to the service account's JSON key (must be readable only by its owner)… */
    serviceAccountKeyFile: z.string().optional(),
    /** …or the key JSON itself (env:NAME or file:PATH like every secret). */
    serviceAccountKey: secret.optional(),
    /** The Workspace admin to impersonate (domain-wide delegation). */
    subject: z.string().email(),
    baseUrl: z.string().url().default('https://classroom.googleapis.com'),
    /** Default: the key's token_uri, else https://oauth2.googleapis.com/token. */
    tokenUrl: z.string().url().optional(),
    /** Classroom has no schools: every course belongs to this placeholder school. */
    placeholderSchool: z.object({ key: z.string().default('classroom:placeholder'), name: z.string().default('Google Classroom') }).strict().default({ key: 'classroom:placeholder', name: 'Google Classroom' }),
    /**
     * Course states to read: all of them by default (Classroom's own default omits SUSPENDED), since
     * a course in a state not read looks deleted and its class would become a tombstone.
     */
    courseStates: z.array(z.enum(COURSE_STATES)).min(1).default([...COURSE_STATES]),
    /** Read guardians where the domain grants it. */
    guardians: z.boolean().default(true),
    pageSize: z.number().int().min(1).max(1000).default(100),
  })
  .strict()
  .refine((c) => !!c.serviceAccountKeyFile !== !!c.serviceAccountKey, { message: 'give exactly one of serviceAccountKeyFile and serviceAccountKey' });
export type GoogleConfig = z.infer<typeof googleConfigSchema>;

export interface ServiceAccountKey {
  type?: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}
