/**
 * Binds a store to its master key. Match keys, pseudonyms, sealed webhook secrets and the audit
 * chain are all derived from the key, so a store synced under another key silently duplicates
 * every person (their match keys no longer meet) and breaks every pseudonym. The store records the
 * key's fingerprint (KeyRing.fingerprint: a keyed derivation, never the key) on first use, and
 * every command that opens it with a key is refused if the key differs.
 */
import { RostergateError } from '../errors.ts';
import type { Store } from '../store/types.ts';
import { entryHash, GENESIS } from './audit.ts';
import type { KeyRing } from './pseudonym.ts';

export const KEY_FINGERPRINT_META = 'master_key_fingerprint';

const REMEDY =
  'pass the original key (ROSTERGATE_MASTER_KEY or privacy.masterKeyFile), or restore it from your key backup; ' +
  'a new key needs a new, empty store. Nothing was changed';

/**
 * Refuses a key that is not the store's. A store without a fingerprint (made before stores
 * recorded one) gets this key's, unless `record` is false (read-only commands), and provided its
 * audit log, when it has one, was written under this key: the first entry's hash proves it.
 */
export async function assertStoreKey(store: Store, keyring: KeyRing, opts: { record?: boolean } = {}): Promise<void> {
  const given = keyring.fingerprint();
  let stored = await store.meta(KEY_FINGERPRINT_META);
  if (stored === undefined) {
    if (opts.record === false) return;
    const [first] = await store.auditEntries({ afterSeq: 0, limit: 1 });
    if (first && entryHash(keyring.auditKey(), GENESIS, first) !== first.hash) {
      throw new RostergateError(
        'CONFIG_INVALID',
        `the master key (or privacy.tenant) does not match the one this store's audit log was written with (the store records no key fingerprint yet; the key given has ${given}): ${REMEDY}.`,
      );
    }
    stored = await store.initMeta(KEY_FINGERPRINT_META, given);
  }
  if (stored !== given) {
    throw new RostergateError(
      'CONFIG_INVALID',
      `the master key does not match the one this store was created with (store: key fingerprint ${stored}; the key given: ${given}): ${REMEDY}.`,
    );
  }
}
