/**
 * Per-request GraphQL context. Loaders are built per request and per purpose: a loader shared
 * across requests would leak one consumer's cache to another.
 */
import type { Store } from '../store/types.ts';
import { createLoaders, type KeyMemo, type Loaders } from './loaders.ts';
import type { PseudonymCache } from '../privacy/pseudonym-cache.ts';
import type { SourceType } from '../../connectors/types.ts';
import { plainCursors, type CursorCodec } from './connection.ts';
import type { EntityType } from '../model/records.ts';
import { fieldFeeds, type FieldFeeds } from '../privacy/relevance.ts';
import { classify } from '../privacy/classification.ts';
import { buildTypeSchema } from './type-defs.ts';
import type { AdminServices } from './admin-services.ts';
import { RostergateError } from '../errors.ts';
import type { PseudonymOrder } from '../store/order.ts';
import type { AuditInput } from '../privacy/audit.ts';

/** The tenant of a context built without one: the config's default `privacy.tenant`. */
export const DEFAULT_TENANT = 'default';

/** What the request's purpose receives, for filtering the change feed (undefined: everything). */
export interface PurposeView {
  /** The purpose whose view times `updatedAt` / `updatedSince` read (src/feeds/view-times.ts); undefined: the records' own times. */
  name?: string;
  feeds: FieldFeeds;
  received: Set<string> | undefined;
  typeVisible(t: EntityType): boolean;
}

let openView: PurposeView | undefined;
/** The view of open access (no purposes): every field of every type. */
export function unrestrictedView(): PurposeView {
  openView ??= { feeds: fieldFeeds(classify(buildTypeSchema())), received: undefined, typeVisible: () => true };
  return openView;
}

export interface ClientIdentity {
  id: string;
  purpose: string;
}

export interface GraphQLContext {
  /** The tenant (school or district) whose store this request reads: every record says it (`tenant` fields). */
  tenant: string;
  store: Store;
  loaders: Loaders;
  /** Configured source id → its type, for provenance. */
  sourceTypes: ReadonlyMap<string, SourceType>;
  cursors: CursorCodec;
  /** Maps the id a client passes to `person(id:)` to a gateway id (pseudonymising purposes look it up). */
  resolvePersonId(id: string): Promise<string | undefined>;
  /** The authenticated client, when purposes are configured. */
  client?: ClientIdentity;
  /** Gateway ids of the people whose fields this request resolved (audit and disclosure ledger). */
  people: Set<string>;
  view: PurposeView;
  /** The pseudonymisation domain of a pseudonymising purpose (tombstones carry their pseudonyms per domain). */
  pseudonymDomain?: string;
  /**
   * In a pseudonymising purpose: the (domain, version) whose pseudonyms order its lists of people,
   * enrollments and guardianships (src/graphql/order.ts); undefined: every list in id order.
   */
  listOrder?: PseudonymOrder;
  /** Present for admin purposes only. */
  admin?: AdminServices;
  /**
   * Set when rendering a webhook subscription's events: the event types it receives
   * (src/feeds/event-types.ts). The change feed skips other events before rendering them, so
   * records that are not delivered are not disclosed either.
   */
  events?: readonly string[];
  /** Aborts when the HTTP client hangs up; `store` (and the loaders over it) then refuse to read. */
  signal?: AbortSignal;
  /** Records the request's audit entry in its tenant's audit log (set by the privacy layer's contexts). */
  audit?: (entry: AuditInput, people: string[]) => Promise<number>;
  /**
   * The commits of the request's audit entries (one per operation; the audit plugin adds them once
   * each has run), each rejecting if its commit failed. The server sends no byte of the answer
   * before all have settled, and an error without the data if one rejected (src/tenants/serving.ts
   * gives them to the gateway's `holdAnswer`). An array made with the context: Apollo hands its
   * hooks a shallow copy of the context, which shares it.
   */
  audited: Promise<unknown>[];
}

export function createContext(
  store: Store,
  sourceTypes: ReadonlyMap<string, SourceType>,
  extra: Partial<Pick<GraphQLContext, 'cursors' | 'resolvePersonId' | 'client' | 'view' | 'admin' | 'signal' | 'tenant' | 'audit'>> & {
    pseudonymDomain?: { domain: string; version: number };
    /** The serving process's cache of materialised pseudonyms (src/privacy/pseudonym-cache.ts). */
    pseudonymCache?: PseudonymCache;
    /** Keys of related records found by earlier pages of the same extract (Loaders.entityKey). */
    keyMemo?: KeyMemo;
  } = {},
): GraphQLContext {
  if (extra.signal) store = abortable(store, extra.signal);
  return {
    tenant: extra.tenant ?? DEFAULT_TENANT,
    store,
    signal: extra.signal,
    audit: extra.audit,
    audited: [],
    loaders: createLoaders(store, extra.pseudonymDomain, extra.view?.name, extra.pseudonymCache, extra.keyMemo),
    sourceTypes,
    cursors: extra.cursors ?? plainCursors,
    resolvePersonId: extra.resolvePersonId ?? (async (id) => id),
    client: extra.client,
    people: new Set(),
    view: extra.view ?? unrestrictedView(),
    pseudonymDomain: extra.pseudonymDomain?.domain,
    listOrder: extra.pseudonymDomain && { domain: extra.pseudonymDomain.domain, version: extra.pseudonymDomain.version },
    admin: extra.admin,
  };
}

const RAW = Symbol('raw store');

/**
 * The store behind an abortable one: the audit of a request records what it disclosed even when
 * the client hung up half-way (and the audit log caches the store it first gets, for every request).
 */
export function rawStore(store: Store): Store {
  return ((store as unknown as Record<symbol, Store | undefined>)[RAW]) ?? store;
}

/**
 * The store as a request sees it: once `signal` aborts, every call refuses before touching the
 * database. graphql-js keeps calling resolvers for the items of lists it already holds; each then
 * fails at once instead of reading, so a hung-up client's query winds down within a tick.
 */
export function abortable(store: Store, signal: AbortSignal): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === RAW) return target;
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (signal.aborted) throw new RostergateError('REQUEST_ABORTED', 'the client closed the request; its query was stopped');
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
