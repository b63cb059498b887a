/**
 * Per-request GraphQL context. Loaders are built per request (and, once purposes exist, per
 * purpose): a loader shared across requests would leak one consumer's cache to another.
 */
import type { Store } from '../store/types.ts';
import { createLoaders, type Loaders } from './loaders.ts';
import type { SourceType } from '../../connectors/types.ts';

export interface GraphQLContext {
  store: Store;
  loaders: Loaders;
  /** Configured source id → its type, for provenance. */
  sourceTypes: ReadonlyMap<string, SourceType>;
}

export function createContext(store: Store, sourceTypes: ReadonlyMap<string, SourceType>): GraphQLContext {
  return { store, loaders: createLoaders(store), sourceTypes };
}
