/**
 * `rostergate keys …` and `rostergate audit verify`: API keys for clients (shown once, stored as
 * hashes), the master key, pseudonym-domain rotation with an optional re-keying table.
 */
import { chmodSync, createWriteStream, existsSync, rmSync, writeFileSync } from 'node:fs';
import { stringify } from 'csv-stringify';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { hashApiKey, newApiKey } from '../privacy/api-keys.ts';
import { auditLogFor, setupPrivacy } from '../graphql/privacy.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { openStore } from '../store/open.ts';
import { loadConfig } from '../config/config.ts';
import { EXIT } from '../exit-codes.ts';
import type { ClientConfig } from '../privacy/policy.ts';
import { TENANT_ID } from '../tenants/tenants.ts';

const out = (s: string) => process.stdout.write(s + '\n');

export async function keysCreate(opts: { config?: string; client: string; tenant?: string }): Promise<void> {
  const cfg = loadConfig(opts.config, 'keys create');
  const client = cfg.clients.find((c) => c.id === opts.client);
  if (!client) throw new RostergateError('CONFIG_INVALID', `no client "${opts.client}" in the config (clients: ${cfg.clients.map((c) => c.id).join(', ') || 'none'})`);
  if (opts.tenant !== undefined) checkKeyTenant(client, opts.tenant, cfg.privacy.tenant);
  // Keys are the deployment's, whichever tenants they read: kept in the home tenant's store (the configured one).
  const store = await openStore(cfg);
  try {
    const key = newApiKey();
    await store.addApiKey(hashApiKey(key), client.id, new Date().toISOString(), opts.tenant);
    out(`New API key for client ${client.id} (purpose ${client.purpose}${opts.tenant ? `, tenant ${opts.tenant} only` : ''}). It is shown only this once; rostergate keeps only its hash.`);
    out(key);
  } finally {
    await store.close();
  }
}

/** A key may be narrowed only to a tenant its client may use (clients[].tenants; by default the home tenant). */
function checkKeyTenant(client: ClientConfig, tenant: string, home: string): void {
  if (!TENANT_ID.test(tenant)) throw new RostergateError('CONFIG_INVALID', `--tenant: "${tenant.slice(0, 70)}" is not a tenant id (lower-case letters, digits and "-")`);
  const may = client.tenants ?? [home];
  if (!(may.length === 1 && may[0] === '*') && !may.includes(tenant)) {
    throw new RostergateError('CONFIG_INVALID', `--tenant ${tenant}: client ${client.id} may not read it (its tenants: ${may.join(', ')}; clients[].tenants in the config)`);
  }
}

export async function keysList(opts: { config?: string }): Promise<void> {
  const cfg = loadConfig(opts.config, 'keys list');
  const store = await openStore(cfg);
  try {
    for (const k of await store.listApiKeys()) out(`${k.client.padEnd(20)} ${k.hashPrefix}…  created ${k.createdAt}${k.tenant ? `  tenant ${k.tenant}` : ''}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}`);
  } finally {
    await store.close();
  }
}

export async function keysRevoke(opts: { config?: string; client: string }): Promise<void> {
  const cfg = loadConfig(opts.config, 'keys revoke');
  const store = await openStore(cfg);
  try {
    const client = cfg.clients.find((c) => c.id === opts.client);
    if (!client) throw new RostergateError('CONFIG_INVALID', `no client "${opts.client}" in the config (clients: ${cfg.clients.map((c) => c.id).join(', ') || 'none'})`);
    out(`revoked ${await store.revokeApiKeys(opts.client, new Date().toISOString())} key(s) of client ${opts.client}`);
    // Keys written into the config are the config's to withdraw: the store cannot overrule it.
    if (client.keyHashes.length) out(`client ${opts.client} also has ${client.keyHashes.length} key(s) listed under keyHashes in the config: remove them there to revoke them`);
  } finally {
    await store.close();
  }
}

/** Writes a new random master key to a file only its owner can read. */
export function keysMaster(opts: { out: string; force?: boolean }): void {
  if (existsSync(opts.out) && !opts.force) throw new RostergateError('CONFIG_INVALID', `${opts.out} exists: refusing to overwrite a master key (pass --force)`);
  // `mode` applies only to a file being created: replace, never rewrite, an existing one.
  rmSync(opts.out, { force: true });
  const text = KeyRing.generateText();
  writeFileSync(opts.out, text + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(opts.out, 0o600);
  out(`wrote a new master key to ${opts.out} (mode 600). Point privacy.masterKeyFile at it, or export ROSTERGATE_MASTER_KEY.`);
  // The fingerprint reveals nothing about the key; a store records it and names it when refusing another key.
  out(`its fingerprint: ${new KeyRing(KeyRing.parse(text), '').fingerprint()}`);
}

export async function keysRotate(opts: { config?: string; domain: string; rekeyTable?: string; force?: boolean }): Promise<void> {
  if (opts.rekeyTable && existsSync(opts.rekeyTable) && !opts.force) {
    throw new RostergateError('CONFIG_INVALID', `${opts.rekeyTable} exists: refusing to overwrite (pass --force)`);
  }
  const cfg = loadConfig(opts.config, 'keys rotate');
  const privacy = setupPrivacy(cfg, buildUnifiedSchema());
  const store = await openStore(cfg);
  try {
    // Before the re-keying table is created: a refused key leaves no file behind.
    await assertStoreKey(store, privacy.keyring);
    let table: ReturnType<typeof stringify> | undefined;
    let done: Promise<void> | undefined;
    if (opts.rekeyTable) {
      table = stringify({ header: true, columns: ['old_pseudonym', 'new_pseudonym'] });
      // Created afresh (an overwritten file would keep its old, perhaps wider, mode), owner-only.
      rmSync(opts.rekeyTable, { force: true });
      const file = createWriteStream(opts.rekeyTable, { mode: 0o600, flags: 'wx' });
      await new Promise<void>((r, reject) => file.once('open', () => r()).once('error', reject));
      chmodSync(opts.rekeyTable, 0o600);
      table.pipe(file);
      done = new Promise((r) => file.on('finish', () => r()));
    }
    // Rows sorted by old pseudonym, not in the gateway-id order rotation visits people in: two
    // domains' tables would otherwise list the same people at the same rows, and pairing rows by
    // position would link the domains (docs/privacy.md, "Order leaks nothing"). One pair per person, about
    // 50 bytes each, so even a large district's table is sorted in memory.
    const pairs: [string, string][] = [];
    const r = await privacy.pseudonymiser.rotate(store, opts.domain, table ? (o, n) => pairs.push([o, n]) : undefined);
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const pair of pairs) table?.write(pair);
    table?.end();
    await done;
    out(`domain ${opts.domain}: version ${r.from} → ${r.to}; ${r.people} people re-keyed${r.tombstones ? `, and ${r.tombstones} deleted people in the change feed` : ''}.`);
    if (opts.rekeyTable) out(`re-keying table (old → new) written to ${opts.rekeyTable}; hand it only to the domain's owner.`);
  } finally {
    await store.close();
  }
}

export async function auditVerify(opts: { config?: string; anchor?: string }): Promise<number> {
  const cfg = loadConfig(opts.config, 'audit verify');
  const keyring = KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  const store = await openStore(cfg);
  try {
    // Checked, never recorded: verifying is read-only. A wrong key would otherwise read as tampering.
    await assertStoreKey(store, keyring, { record: false });
    const r = await auditLogFor(store, keyring).verify(opts.anchor);
    if (r.ok) {
      out(`audit log intact: ${r.entries} entries verified`);
      // Cutting entries from the end leaves a valid chain: only a head noted elsewhere catches that.
      if (r.head) out(`head: entry ${r.head.seq}, hash ${r.head.hash} (keep it apart from the store; pass it as --anchor next time)`);
      return EXIT.OK;
    }
    out(`audit log TAMPERED at entry ${r.firstBad!.seq}: ${r.firstBad!.reason}`);
    return EXIT.TAMPERED;
  } finally {
    await store.close();
  }
}
