/**
 * Builds the executable unified schema from schema/*.graphql and the resolvers. Scalar fields of
 * roster types are stored in `row.data`; the default field resolver reads them there.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { defaultFieldResolver, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.ts';

export const SCHEMA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../schema');

export function loadTypeDefs(): string {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(join(SCHEMA_DIR, f), 'utf8'))
    .join('\n');
}

export function buildUnifiedSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as never });
}

/** Reads `row.data[field]` for roster entities, falling back to the parent's own property. */
export const fieldResolver: GraphQLFieldResolver<unknown, unknown> = (source, args, ctx, info) => {
  if (source && typeof source === 'object' && 'data' in source && 'type' in source && 'id' in source) {
    if (info.fieldName === 'id' || info.fieldName === 'updatedAt') return (source as Record<string, unknown>)[info.fieldName];
    const data = (source as { data: Record<string, unknown> }).data;
    if (info.fieldName in data) return data[info.fieldName];
    return undefined;
  }
  return defaultFieldResolver(source, args, ctx, info);
};
