/**
 * Builds the executable unified schema from schema/*.graphql and the resolvers. Scalar fields of
 * roster types are stored in `row.data`; the default field resolver reads them there.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import { defaultFieldResolver, isObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.ts';
import type { GraphQLContext } from './context.ts';
import type { EntityRow } from '../store/types.ts';
import { updatedAtOf } from './updated-at.ts';
import { loadTypeDefs } from './type-defs.ts';

export function buildUnifiedSchema(): GraphQLSchema {
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as never });
  // Every field gets an explicit resolver, so the schema behaves the same under any executor:
  // Apollo wraps resolvers and, in a plain graphql execute (extracts), would otherwise fall back to
  // graphql's default resolver instead of ours.
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const f of Object.values(type.getFields())) f.resolve ??= fieldResolver;
  }
  return schema;
}

/**
 * Reads `row.data[field]` for roster entities, falling back to the parent's own property;
 * `updatedAt` is the last change the request's purpose sees (./updated-at.ts); `tenant` the request's tenant.
 */
export const fieldResolver: GraphQLFieldResolver<unknown, unknown> = (source, args, ctx, info) => {
  if (source && typeof source === 'object' && 'data' in source && 'type' in source && 'id' in source) {
    if (info.fieldName === 'id') return (source as EntityRow).id;
    if (info.fieldName === 'updatedAt') return updatedAtOf(ctx as GraphQLContext, source as EntityRow);
    // A record belongs to the store it was read from: the request's tenant.
    if (info.fieldName === 'tenant') return (ctx as GraphQLContext).tenant;
    const data = (source as { data: Record<string, unknown> }).data;
    if (info.fieldName in data) return data[info.fieldName];
    return undefined;
  }
  return defaultFieldResolver(source, args, ctx, info);
};
