/**
 * The unified schema's type definitions (schema/*.graphql), apart from the executable schema
 * (./schema.ts): what needs only the types and their classification — the view of open access in
 * ./context.ts — then does not import the resolvers, which import the context.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';

export const SCHEMA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../schema');

export function loadTypeDefs(): string {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(join(SCHEMA_DIR, f), 'utf8'))
    .join('\n');
}

/** The unified schema without resolvers: its types and `@pii` classification, nothing to execute. */
export function buildTypeSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs() });
}
