/**
 * `rostergate erase`: erasure on request (src/privacy/erasure.ts), and `--lift` to let a source
 * deliver an erased person again. Output names the person only by the audit log's keyed hash.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { erasePerson, liftSuppression } from '../privacy/erasure.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import { loadConfig } from '../config/config.ts';

export interface EraseOptions {
  config?: string;
  person?: string;
  source?: string;
  key?: string;
  lift?: boolean;
  wait?: boolean;
}

export async function eraseCommand(opts: EraseOptions): Promise<void> {
  assertPersonNamed(opts);
  const cfg = loadConfig(opts.config, opts.lift ? 'erase --lift' : 'erase');
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store)) throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first`);
  const privacy = setupPrivacy(cfg, buildUnifiedSchema());
  const store = await openStore(cfg);
  try {
    // A different master key would hash keys that never meet the suppression entries.
    await assertStoreKey(store, privacy.keyring);
    if (opts.lift) {
      const n = await liftSuppression(store, privacy, { source: opts.source!, type: 'person', key: opts.key! });
      if (n === 0) throw new RostergateError('NOT_FOUND', `no erasure suppresses a person with that key in source ${opts.source}; nothing was lifted`);
      process.stdout.write(`lifted ${n} suppression entr${n === 1 ? 'y' : 'ies'}: the next sync of ${opts.source} stores the person again, as a new person\n`);
      return;
    }
    const personId = await personOf(store, opts);
    const res = await erasePerson({
      store, privacy, personId, sources: cfg.sources.map((s) => s.id), requestedBy: { client: 'operator', name: operatorName() }, wait: opts.wait,
    });
    const lines = [
      `erased person ${res.ref} (the audit log's name for them): ${res.records} record(s) removed, ${res.suppressed} source record(s) suppressed against later syncs`,
      res.notified.length ? `clients that received them (disclosure ledger), told by a ${'person.erased'} webhook:` : 'no client received them (disclosure ledger): nobody to tell',
      ...res.notified.map((n) => `  ${n.client}: ${n.subscriptions ? `${n.subscriptions} webhook subscription(s) queued` : 'no webhook subscription for person.erased: tell this client another way'}`),
      `recorded in the audit log (entry ${res.auditSeq})`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await store.close();
  }
}

/** The person is named one way, checked before the config, key or store is read (a usage error comes first). */
function assertPersonNamed(o: EraseOptions): void {
  if (o.lift) {
    if (o.person !== undefined || !o.source || !o.key) {
      throw new RostergateError('CONFIG_INVALID', 'erase --lift names the erased person by --source ID and --key KEY (their key in that source); a gateway id no longer exists after an erasure');
    }
    return;
  }
  const byKey = o.source !== undefined || o.key !== undefined;
  if ((o.person !== undefined) === byKey) throw new RostergateError('CONFIG_INVALID', 'name the person one way: --person ID, or --source ID and --key KEY');
  if (byKey && (!o.source || !o.key)) throw new RostergateError('CONFIG_INVALID', '--source and --key go together: the source id and the person\'s key in that source');
}

async function personOf(store: Awaited<ReturnType<typeof openStore>>, o: EraseOptions): Promise<string> {
  if (o.person !== undefined) {
    const [e] = await store.getEntities([o.person]);
    if (!e || e.type !== 'person') throw new RostergateError('NOT_FOUND', `no person ${o.person} in the store (gateway ids look like per_…); nothing was erased`);
    return e.id;
  }
  const id = await store.entityOfRecord({ source: o.source!, type: 'person', key: o.key! });
  if (!id) throw new RostergateError('NOT_FOUND', `source ${o.source} has delivered no person with that key (or it is not linked to a person yet); nothing was erased`);
  return id;
}

function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown user';
  }
}
