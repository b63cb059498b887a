/**
 * Assembles the privacy layer from the config: classification, purposes and their schemas, the key
 * ring, ingest minimisation and pseudonym materialisation for sync, and for serving the client
 * authentication, per-request contexts and the audit plugin.
 *
 * In the GraphQL layer, not in privacy/: serving builds GraphQL contexts and an Apollo plugin. What
 * the privacy layer's own operations read of the result is `PrivacyPolicy` (src/privacy/privacy-policy.ts).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, TypeInfo, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { PrivacyConfig } from '../privacy/config.ts';
import { AuthenticationError, RostergateError } from '../errors.ts';
import { sealedCursors } from './connection.ts';
import { createContext, rawStore, type GraphQLContext } from './context.ts';
import type { Store } from '../store/types.ts';
import type { IngestPolicy } from '../store/ingest-policy.ts';
import { hashApiKey, keyFromHeaders } from '../privacy/api-keys.ts';
import { createJwtVerifier, looksLikeJwt, TokenRefused, type JwtVerifier } from '../privacy/jwt.ts';
import { AuditLog, type AuditInput } from '../privacy/audit.ts';
import { classify, type Classification } from '../privacy/classification.ts';
import { createMinimiser, type Minimiser } from '../privacy/minimise.ts';
import { validatePurpose, type Purpose } from '../privacy/policy.ts';
import { buildPurposeSchema, type PurposeSchema } from '../privacy/purpose-schema.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { TenantAdmin } from './admin-services.ts';
import { Pseudonymiser } from '../privacy/pseudonymiser.ts';
import type { SourceType } from '../../connectors/types.ts';
import type { EntityType } from '../model/records.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import { fieldFeeds } from '../privacy/relevance.ts';
import { ViewTimes, type NamedView } from './view-times.ts';
import { PseudonymCache } from '../privacy/pseudonym-cache.ts';
import type { KeyMemo } from './loaders.ts';
import type { PrivacyPolicy } from '../privacy/privacy-policy.ts';
import { ApiKeyCache } from '../privacy/api-key-cache.ts';

/** Who a request comes from: its client and purpose, and the one tenant its API key is narrowed to, if any. */
export interface Who {
  client: string;
  purpose: Purpose;
  /** Set when the API key was created for one tenant (`keys create --tenant`): the request may use only that one. */
  keyTenant?: string;
}

export interface Privacy extends PrivacyPolicy {
  /** The tenant whose key ring this privacy derives pseudonyms, cursors and audit hashes with. */
  readonly tenant: string;
  pseudonymiser: Pseudonymiser;
  /** Each purpose's last visible change per record (updatedAt / updatedSince), kept at sync time. */
  viewTimes: ViewTimes;
  /** Fresh per sync run: minimisation records what it dropped. */
  ingest(store: Store): Promise<IngestPolicy & { minimiser: Minimiser }>;
  /**
   * Audits a disclosure made outside a client's request (webhook payloads) and records it in the
   * ledger. `rendered` is the operation that rendered it, in the purpose's schema: its hash and the
   * classified fields it selects are audited as a request's would be.
   */
  recordDisclosure(
    store: Store, client: string, purpose: string, people: string[], kind: string, events: number,
    rendered?: { schema: GraphQLSchema; document: DocumentNode; source: string },
  ): Promise<void>;
  /**
   * The audit log this tenant writes in `store`: one per store, shared by requests, webhooks and
   * extracts, so a person disclosed again within the ledger's resolution (an hour) costs no ledger
   * write whichever of them disclosed it first, and shutdown (`drainAudit`) waits for all of it.
   */
  auditLog(store: Store): AuditLog;
  /**
   * The client of a request, by API key (x-api-key or Bearer rgk_…) or JWT bearer token (auth.jwt).
   * Throws AuthenticationError (401, with a reason) or AUTH_UNAVAILABLE (503: the issuer's keys could not be fetched).
   */
  authenticate(store: Store, req: Pick<IncomingMessage, 'headers'>): Promise<Who>;
  /**
   * The tenants a client may use (`clients[].tenants`): ids, or '*' for every tenant of the
   * deployment; the home tenant (`privacy.tenant`) alone when its config names none.
   */
  clientTenants(clientId: string): readonly string[] | '*';
  /** Whether a client may read more than one tenant: its extract rows and webhook payloads then say their tenant. */
  seesTenants(clientId: string): boolean;
  /**
   * This privacy for another tenant: the same purposes, schemas and client authentication (built
   * once, whatever the number of tenants), with that tenant's key ring for pseudonyms, match keys,
   * sealed cursors and webhook secrets, and its own audit log (written to the store its contexts
   * are given: the tenant's). One per tenant id, kept.
   */
  forTenant(tenant: string, keyring: KeyRing): Privacy;
  /**
   * What builds this privacy again on another thread of this process (`privacyFromRecipe`): the
   * purposes and clients of the config, this tenant, and its key ring's master key. In memory only.
   */
  threadRecipe(): PrivacyRecipe;
  /**
   * A request's context. `sharedCache: false` for work that reads everything once (extracts):
   * it keeps its pseudonyms to itself instead of filling the serving process's cache.
   */
  context(
    store: Store, sourceTypes: ReadonlyMap<string, SourceType>, who: { client: string; purpose: Purpose },
    opts?: {
      sharedCache?: boolean; signal?: AbortSignal;
      /** Keys of related records found by earlier pages of the same extract (src/graphql/loaders.ts). */
      keyMemo?: KeyMemo;
      /** The tenant's configured source ids (an admin erasure holds their leases); default: the config's own sources. */
      sources?: readonly string[];
    },
  ): Promise<GraphQLContext>;
  /**
   * Audits each request of a purpose's clients. The entry's commit goes into the context's `audited`:
   * the server must hold the answer until it settles (serveTenants gives it to the gateway's `holdAnswer`).
   */
  auditPlugin(purpose: Purpose, schema: GraphQLSchema): ApolloServerPlugin<GraphQLContext>;
  /** Waits until every audit entry handed over so far, of every tenant, is committed (serve's shutdown, after the last request). */
  drainAudit(): Promise<void>;
}

/**
 * The privacy layer a sync stores through. Without purposes nothing says which fields may be
 * received, so a sync would store every field of every source: that is refused, unless the
 * deployment already serves everything to anyone (`server.openAccess`, a local experiment), where
 * every field may be received and there is nothing to minimise (undefined: store as delivered).
 */
export function privacyForSync(cfg: PrivacyConfig, base: GraphQLSchema, opts: { keyring?: KeyRing } = {}): Privacy | undefined {
  if (Object.keys(cfg.purposes).length) return setupPrivacy(cfg, base, opts);
  if (cfg.server.openAccess) return undefined;
  throw new RostergateError(
    'CONFIG_INVALID',
    `${cfg.file ?? 'config'}: no purposes configured, so nothing says which fields may be stored: configure at least one purpose ` +
      '(docs/privacy.md, "Purposes: who gets what"), or set server.openAccess for a local experiment that stores and serves everything. Nothing was synced.',
  );
}

/** How long a verified API key is trusted when the caller does not say (`server.apiKeyCacheSeconds`' default). */
const DEFAULT_API_KEY_CACHE_MS = 5000;

/**
 * The privacy layer of the home tenant (`privacy.tenant`, with `keyring`). What depends only on the
 * config — purposes, their schemas, classification, views, client authentication — is built here
 * once; `forTenant` binds it to another tenant's key ring without building any of it again.
 */
/** See Privacy.threadRecipe. Structured-cloneable: no functions, no JWT verifier (a worker authenticates nobody). */
export interface PrivacyRecipe {
  config: PrivacyConfig;
  /** The tenant this privacy is bound to, and the label its key ring derives keys under (the same but in tests). */
  tenant: string;
  keyTenant: string;
  master: Buffer;
}

/** The privacy a recipe describes: as `setupPrivacy` built it, bound to the recipe's tenant. */
export function privacyFromRecipe(r: PrivacyRecipe, base: GraphQLSchema): Privacy {
  const keyring = new KeyRing(r.master, r.keyTenant);
  if (r.tenant === r.config.privacy.tenant) return setupPrivacy(r.config, base, { keyring });
  return setupPrivacy(r.config, base, { keyring: keyring.forTenant(r.config.privacy.tenant) }).forTenant(r.tenant, keyring);
}

export function setupPrivacy(
  cfg: PrivacyConfig,
  base: GraphQLSchema,
  opts: {
    keyring?: KeyRing; versionCacheMs?: number;
    /** Tenant management for admin purposes (src/tenants/admin.ts). */
    tenantAdmin?: TenantAdmin;
    /** How long a verified API key is trusted (`server.apiKeyCacheSeconds`; tests that revoke a key and expect the next request to fail pass 0). */
    apiKeyCacheMs?: number;
  } = {},
): Privacy {
  const classification = classify(base);
  const tenantAdmin = opts.tenantAdmin;
  const keyring = opts.keyring ?? KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  const purposes = new Map<string, Purpose>();
  const errors: string[] = [];
  for (const [id, p] of Object.entries(cfg.purposes)) {
    errors.push(...validatePurpose(id, p, classification));
    purposes.set(id, { ...p, id, domain: p.pseudonymDomain ?? id });
  }
  if (errors.length) throw new RostergateError('CONFIG_INVALID', `${cfg.file ?? 'config'}: ${errors.join('; ')}`);
  const schemas = new Map([...purposes.values()].map((p) => [p.id, buildPurposeSchema(base, classification, p)]));
  // An explicit allow that the purpose's own denials overrule is a contradiction in the policy: say so.
  for (const p of purposes.values()) {
    for (const [coord, because] of schemas.get(p.id)!.withheld) {
      if (p.fields[coord] === 'allow') {
        errors.push(`purposes.${p.id}.fields.${coord}: allowed, but it tells a person's ${because}, which the purpose denies: allow ${because} too, or leave ${coord} out`);
      }
    }
  }
  if (errors.length) throw new RostergateError('CONFIG_INVALID', `${cfg.file ?? 'config'}: ${errors.join('; ')}`);
  const feeds = fieldFeeds(classification);
  const views = new Map(
    [...schemas].map(([id, ps]): [string, NamedView] => {
      const types = new Set([...ps.received].map((c) => c.slice(0, c.indexOf('.'))));
      return [id, { name: id, feeds, received: ps.received, typeVisible: (t: EntityType) => types.has(GRAPHQL_TYPE[t]) }];
    }),
  );
  const viewTimes = new ViewTimes([...views.values()]);
  const received = new Set([...schemas.values()].flatMap((s) => [...s.received]));
  const domains = [...new Set([...purposes.values()].filter((p) => schemas.get(p.id)!.pseudonymises).map((p) => p.domain))];
  const keyHashes = new Map(cfg.clients.flatMap((c) => c.keyHashes.map((h) => [h, c.id] as const)));
  const storedKeys = new ApiKeyCache<{ client: string; tenant: string | null }>(opts.apiKeyCacheMs ?? DEFAULT_API_KEY_CACHE_MS);
  const clients = new Map(cfg.clients.map((c) => [c.id, c]));
  const verifyJwt: JwtVerifier | undefined = cfg.auth.jwt && createJwtVerifier(cfg.auth.jwt, cfg.file);
  const home = cfg.privacy.tenant;
  const clientTenants = (clientId: string): readonly string[] | '*' => {
    const t = clients.get(clientId)?.tenants;
    return t?.length === 1 && t[0] === '*' ? '*' : (t ?? [home]);
  };
  const clientPurpose = (clientId: string) => {
    const c = clients.get(clientId);
    return c && purposes.get(c.purpose);
  };

  // Who a request comes from does not depend on the tenant: keys and clients are the deployment's.
  const authenticate: Privacy['authenticate'] = async (store, req) => {
    const credential = keyFromHeaders(req.headers);
    if (!credential) throw new AuthenticationError('missing_credentials', 'no credentials: send an API key in the x-api-key header, or an API key or JWT as Authorization: Bearer', 'none');
    // Told apart by shape: a JWT is three base64url parts with dots; an API key (rgk_…) has none.
    if (looksLikeJwt(credential)) {
      const fail = (reason: string, message: string) => new AuthenticationError(reason, `invalid bearer token: ${message}`, 'Bearer');
      if (!verifyJwt) throw fail('jwt_not_configured', 'this gateway accepts no JWTs (auth.jwt is not configured): use an API key');
      let token;
      try {
        token = await verifyJwt(credential);
      } catch (e) {
        if (e instanceof TokenRefused) throw fail(e.reason, e.message);
        throw e;
      }
      const client = clients.get(token.client);
      // Client ids are configuration names, not personal data; anything else is not repeated.
      if (!client) throw fail('unknown_client', /^[a-z0-9][a-z0-9._-]{0,63}$/i.test(token.client) ? `no client "${token.client}" is configured (clients[].id)` : 'the client it names is not configured (clients[].id)');
      if (token.purpose !== undefined && token.purpose !== client.purpose) {
        throw fail('purpose_mismatch', `the token's purpose claim does not match client ${client.id}'s purpose "${client.purpose}"`);
      }
      return { client: client.id, purpose: purposes.get(client.purpose)! };
    }
    const hash = hashApiKey(credential);
    const configured = keyHashes.get(hash);
    const found = configured ? { client: configured, tenant: null } : await storedKeys.client(hash, async (h) => {
      const stored = await store.findApiKey(h);
      return stored && !stored.revokedAt ? { client: stored.client, tenant: stored.tenant } : undefined;
    });
    const client = found ? clients.get(found.client) : undefined;
    if (!client) throw new AuthenticationError('invalid_api_key', 'invalid API key: unknown or revoked (send it in the x-api-key header or as Authorization: Bearer)', 'ApiKey');
    return { client: client.id, purpose: purposes.get(client.purpose)!, ...(found?.tenant ? { keyTenant: found.tenant } : {}) };
  };

  // Every tenant's audit log, so shutdown drains them all.
  const audits = new Set<AuditLog>();
  const bound = new Map<string, Privacy>();

  /** The per-tenant part: what derives from the tenant's key ring, and its audit log. */
  const bind = (tenant: string, keyring: KeyRing): Privacy => {
    const pseudonymiser = new Pseudonymiser(keyring, domains);
    const pseudonymCache = new PseudonymCache();
    // The audit log of each store this tenant's contexts read: one store, unless the tenant was
    // removed and added again under its id (a new store, whose log must not go to the old one).
    const readsTenant = (clientId: string) => {
      const may = clientTenants(clientId);
      return may === '*' || may.includes(tenant);
    };
    const auditByStore = new WeakMap<Store, AuditLog>();
    const auditOf = (store: Store) => {
      store = rawStore(store);
      let audit = auditByStore.get(store);
      if (!audit) {
        auditByStore.set(store, (audit = auditLogFor(store, keyring)));
        audits.add(audit);
      }
      return audit;
    };
    // Domain versions change only on rotation; re-read them now and then, not on every request.
    let versionCache: { at: number; versions: Map<string, number> } | undefined;
    const versions = async (store: Store) => {
      if (!versionCache || Date.now() - versionCache.at >= (opts.versionCacheMs ?? 10_000)) versionCache = { at: Date.now(), versions: await pseudonymiser.versions(store) };
      return versionCache.versions;
    };

    const self: Privacy = {
      tenant, keyring, classification, purposes, schemas, pseudonymiser, viewTimes, received,

      threadRecipe() {
        const config: PrivacyConfig = {
          ...(cfg.file ? { file: cfg.file } : {}),
          privacy: { tenant: home }, purposes: cfg.purposes, clients: cfg.clients, auth: {},
          webhooks: cfg.webhooks, sources: cfg.sources.map((src) => ({ id: src.id })), server: { openAccess: cfg.server.openAccess },
        };
        const { master, tenant: keyTenant } = keyring.material();
        return { config, tenant, keyTenant, master };
      },

      auditLog: auditOf,

      async recordDisclosure(store, client, purpose, people, kind, events, rendered) {
        const fields = rendered ? touchedFields(rendered.schema, rendered.document, classification) : [];
        await auditOf(store).record(
          {
            at: new Date().toISOString(), client, purpose, kind, operation: `${kind}:${events} events`,
            operationHash: rendered ? operationHash(rendered.source) : null, categories: countByCategory(fields, classification), fields, people: people.length,
          },
          people,
        );
      },

      // A client of other tenants is no client here: no webhook of this tenant's delivers to it, no
      // admin can subscribe it, no extract of this tenant is made for it.
      clientPurpose: (clientId) => (readsTenant(clientId) ? clientPurpose(clientId) : undefined),

      async ingest(store) {
        const minimiser = createMinimiser(classification, received);
        const v = await pseudonymiser.versions(store);
        return {
          minimiser, minimise: minimiser, hashMatchKey: (k, val) => keyring.matchKey(k, val), personCreated: pseudonymiser.rowsFor(v), changeLogged: viewTimes.changeLogged, suppressionKey: (src, t, k) => keyring.suppressionKey(src, t, k),
        };
      },

      authenticate,
      clientTenants,

      seesTenants(clientId) {
        const t = clientTenants(clientId);
        return t === '*' || t.length > 1;
      },

      forTenant(id, ring) {
        let p = bound.get(id);
        if (!p) bound.set(id, (p = bind(id, ring)));
        return p;
      },

      async context(store, sourceTypes, who, opts) {
        const ps = schemas.get(who.purpose.id)!;
        const domain = ps.pseudonymises ? { domain: who.purpose.domain, version: (await versions(store)).get(who.purpose.domain)! } : undefined;
        return createContext(store, sourceTypes, {
          client: { id: who.client, purpose: who.purpose.id },
          pseudonymDomain: domain,
          ...(opts?.sharedCache === false ? {} : { pseudonymCache }),
          ...(opts?.keyMemo ? { keyMemo: opts.keyMemo } : {}),
          view: views.get(who.purpose.id)!,
          signal: opts?.signal,
          // Tenant management only for an admin of every tenant (the vendor's operator): an admin of one
          // district must not add, list or remove the others.
          admin: who.purpose.admin ? { store, privacy: self, webhooks: cfg.webhooks, sources: opts?.sources ?? cfg.sources.map((x) => x.id), tenants: clientTenants(who.client) === '*' ? tenantAdmin : undefined } : undefined,
          tenant,
          audit: (entry: AuditInput, people: string[]) => auditOf(store).record(entry, people),
          cursors: sealedCursors((p) => keyring.sealCursor(who.purpose.domain, p), (s) => keyring.openCursor(who.purpose.domain, s)),
          resolvePersonId: domain ? (id) => store.entityByPseudonym(domain.domain, id) : async (id) => id,
        });
      },

      auditPlugin(purpose, schema) {
        // What an operation touches depends only on its document, and Apollo hands the same parsed
        // document to every request with the same text: worked out once per document, not per request.
        const byDocument = new WeakMap<DocumentNode, { source: string | undefined; fields: string[]; categories: Record<string, number>; hash: string | null }>();
        const shapeOf = (document: DocumentNode | undefined, source: string | undefined) => {
          const known = document && byDocument.get(document);
          if (known && known.source === source) return known;
          const fields = document ? touchedFields(schema, document, classification) : [];
          const shape = { source, fields, categories: countByCategory(fields, classification), hash: source ? operationHash(source) : null };
          if (document) byDocument.set(document, shape);
          return shape;
        };
        return {
          async requestDidStart() {
            return {
              async willSendResponse(rc) {
                const ctx = rc.contextValue;
                if (!ctx.client) return;
                const { fields, categories, hash } = shapeOf(rc.document, rc.source);
                // The tenant's own log (the context's); settles once the entry is committed (group
                // commit: src/privacy/group-commit.ts). Not awaited here: the gateway holds the
                // finished answer until then (`holdAnswer`, src/server/gateway.ts), and sends an
                // error instead of the data if the commit fails. Waiting here instead kept the whole
                // execution (its loaders' rows, the result tree) alive for the wait.
                const record = ctx.audit ?? ((e: AuditInput, people: string[]) => auditOf(ctx.store).record(e, people));
                const audited = record(
                  {
                    at: new Date().toISOString(), client: ctx.client.id, purpose: purpose.id, kind: 'query',
                    // A request refused in validation has no resolved operation: take its name from the request or document.
                    operation: rc.operationName ?? rc.request.operationName ?? (rc.document ? soleOperationName(rc.document) : undefined) ?? null,
                    operationHash: hash,
                    categories, fields, people: ctx.people.size,
                  },
                  [...ctx.people],
                );
                ctx.audited.push(withheldIfFailed(audited));
              },
            };
          },
        };
      },

      async drainAudit() {
        await Promise.all([...audits].map((a) => a.drain()));
      },
    };
    return self;
  };
  const root = bind(home, keyring);
  bound.set(home, root);
  return root;
}

/**
 * The commit an answer waits for, failing as an error that says the answer was withheld. Out here,
 * not a closure in the audit hook: a closure there would keep the request's context (its loaders
 * and rows) alive until the commit. Handled at once, so that it is never an unhandled rejection
 * before the gateway awaits it.
 */
function withheldIfFailed(commit: Promise<unknown>): Promise<unknown> {
  const p = commit.catch(asWithheld);
  p.catch(ignore);
  return p;
}
function asWithheld(e: unknown): never {
  // The store's own message can quote values (ids in a constraint error): it stays in the cause.
  throw new RostergateError('STORE', 'the audit entry of this request could not be committed, so its answer was withheld', {}, { retryable: true, cause: e });
}
function ignore(): void {}

/** The audited hash of an operation's text (the text itself may carry ids, so it is not kept). */
function operationHash(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 32);
}

function countByCategory(fields: string[], cls: Classification): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of fields) {
    const c = cls.get(f)!.category;
    out[c] = (out[c] ?? 0) + 1;
  }
  return out;
}

function soleOperationName(document: DocumentNode): string | undefined {
  const ops = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  return ops.length === 1 ? ops[0]!.name?.value : undefined;
}

/** Classified schema coordinates an operation selects. */
export function touchedFields(schema: GraphQLSchema, document: Parameters<typeof visit>[0], cls: Classification): string[] {
  const info = new TypeInfo(schema);
  const out = new Set<string>();
  visit(
    document,
    visitWithTypeInfo(info, {
      Field(node) {
        const parent = info.getParentType();
        if (!parent) return;
        const coord = `${parent.name}.${node.name.value}`;
        if (cls.has(coord)) out.add(coord);
      },
    }),
  );
  return [...out].sort();
}

export function auditLogFor(store: Store, keyring: KeyRing): AuditLog {
  return new AuditLog(store, keyring.auditKey());
}
