import { existsSync } from 'node:fs';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import type { EntityType } from '../model/records.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import type { SourceRecordRef, Store } from '../store/types.ts';
import { typeOfId } from '../sync/ids.ts';
import { IDENTITY_TYPES, linkRecord, unlinkRecord, type OperatorOptions } from '../sync/overrides.ts';
import type { Config } from '../config/config.ts';
import { loadConfig } from '../config/config.ts';

const out = (s: string): void => void process.stdout.write(s + '\n');

/**
 * `rostergate identity conflicts`: records of people and organisations that matched more than one
 * record, or whose match rules disagreed, and were therefore kept apart. For the operator who
 * resolves them at the source or with `identity link`, so it names the source and the record's key
 * there, and the gateway ids involved — no names or emails.
 */
export async function identityConflicts(opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(opts.config, 'identity conflicts');
  const store = await openStore(cfg);
  try {
    const conflicts = await store.conflicts();
    if (opts.json) {
      out(JSON.stringify(conflicts, null, 2));
      return;
    }
    if (conflicts.length === 0) {
      out('no identity conflicts: every person and organisation matched at most one other');
      return;
    }
    for (const c of conflicts) {
      const settled = c.resolvedAt ? `  [resolved ${c.resolvedAt}: ${c.resolution}]` : '';
      out(`#${c.id} ${c.at}  source ${c.source}, ${c.type} ${c.key}: ${c.reason}; kept apart from ${c.candidates.join(', ')}${settled}`);
    }
    const open = conflicts.filter((c) => !c.resolvedAt).length;
    // Say what the gateway does and does not do: it never merges on its own.
    out(
      `${open} open conflict(s)${open < conflicts.length ? `, ${conflicts.length - open} resolved` : ''}. Each record was kept as a separate person or ` +
        'organisation; nothing was merged. Correct the matched id (SIS id or email of a person, official identifier or SIS id of a school or ' +
        'district) at the source, or decide by hand: `rostergate identity link --conflict ID --into ENTITY` merges the record into the entity ' +
        'it belongs to, and `rostergate identity unlink` splits a wrongly linked record off. Decisions hold across later syncs.',
    );
  } finally {
    await store.close();
  }
}

interface RecordOptions {
  config?: string;
  /** A conflict's id from `identity conflicts`: its record. */
  conflict?: string;
  source?: string;
  type?: string;
  key?: string;
  json?: boolean;
}

/** `rostergate identity link`: merges the entity holding a record into the entity it belongs to. */
export async function identityLink(opts: RecordOptions & { into: string }): Promise<void> {
  assertRecordNamed(opts);
  await withOperator(opts, 'identity link', async (store, operator) => {
    const record = await recordOf(store, opts, typeOfId(opts.into));
    const r = await linkRecord(store, record, opts.into, operator);
    if (opts.json) return out(JSON.stringify(r));
    out(
      `linked source ${record.source}, ${record.type} ${record.key}: ${r.merged} merged into ${r.into} (${r.records} source record(s) moved, ` +
        `${r.repointed} record(s) referring to them re-pointed). The change feed shows ${r.merged} deleted, naming ${r.into}; later syncs keep this decision.`,
    );
  });
}

/** `rostergate identity unlink`: splits one source's record off its entity into a new one. */
export async function identityUnlink(opts: RecordOptions): Promise<void> {
  assertRecordNamed(opts);
  await withOperator(opts, 'identity unlink', async (store, operator) => {
    const record = await recordOf(store, opts, 'person');
    const r = await unlinkRecord(store, record, operator);
    if (opts.json) return out(JSON.stringify(r));
    out(
      `unlinked source ${record.source}, ${record.type} ${record.key}: split off ${r.from} into the new ${r.to} (${r.repointed} record(s) referring ` +
        'to it re-pointed). Later syncs keep them apart.',
    );
  });
}

/**
 * Opens the store and what an operator's decision needs: the audit key and pseudonym
 * materialisation when purposes are configured (a store synced without purposes has neither).
 */
async function withOperator(opts: { config?: string }, command: string, fn: (store: Store, operator: OperatorOptions) => Promise<void>): Promise<void> {
  const cfg = loadConfig(opts.config, command);
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store)) {
    throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first`);
  }
  const privacy = Object.keys(cfg.purposes).length ? setupPrivacy(cfg, buildUnifiedSchema()) : undefined;
  const store = await openStore(cfg);
  try {
    if (privacy) await assertStoreKey(store, privacy.keyring);
    const ingest = privacy && (await privacy.ingest(store));
    await fn(store, {
      precedence: precedenceOf(cfg),
      personCreated: ingest?.personCreated,
      changeLogged: ingest?.changeLogged,
      auditKey: privacy?.keyring.auditKey(),
    });
  } finally {
    await store.close();
  }
}

const precedenceOf = (cfg: Config) => cfg.sources.map((s) => s.id);

/** The record is named one way, checked before the config or store is read (a usage error comes first). */
function assertRecordNamed(opts: RecordOptions): void {
  if (opts.conflict !== undefined) {
    if (opts.source || opts.key) throw new RostergateError('CONFIG_INVALID', 'name the record either by --conflict or by --source and --key, not both');
    return;
  }
  if (!opts.source || !opts.key) throw new RostergateError('CONFIG_INVALID', 'name the record: --conflict ID, or --source ID and --key KEY (and --type person|org)');
}

/** The record an operator names: by conflict id, or by source, type and key. */
async function recordOf(store: Store, opts: RecordOptions, defaultType: EntityType | undefined): Promise<SourceRecordRef> {
  assertRecordNamed(opts);
  if (opts.conflict !== undefined) {
    const c = (await store.conflicts()).find((x) => String(x.id) === opts.conflict);
    if (!c) throw new RostergateError('IDENTITY_REFUSED', `there is no conflict #${opts.conflict} (\`rostergate identity conflicts\` lists them); nothing was changed`);
    return { source: c.source, type: c.type, key: c.key };
  }
  const type = opts.type ?? defaultType;
  if (!type || !(IDENTITY_TYPES as readonly string[]).includes(type)) {
    throw new RostergateError('CONFIG_INVALID', `--type must be ${IDENTITY_TYPES.join(' or ')}${opts.type ? `, not ${opts.type}` : ''}`);
  }
  return { source: opts.source!, type: type as EntityType, key: opts.key! };
}
