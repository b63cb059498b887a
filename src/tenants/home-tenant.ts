/**
 * The config file's own tenant (`privacy.tenant`) as a `Tenant`: its sources are the file's, its
 * store the configured one. Without a catalog (tests, the demo, `serveStore`) a deployment is
 * `FixedTenants(home, [homeTenant(cfg, store)])`; the catalog registry's home tenant is the same.
 */
import type { Config } from '../config/config.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';
import type { Tenant } from './tenants.ts';
import { FixedTenants } from './fixed-tenants.ts';

/** `keyring` left out: the master key is read when the key ring is first used (see lazyKeyRing). */
export function homeTenant(cfg: Pick<Config, 'privacy' | 'sources'>, store: Store, keyring?: KeyRing): Tenant {
  const at = new Date(0).toISOString();
  return { id: cfg.privacy.tenant, name: cfg.privacy.tenant, status: 'active', sources: cfg.sources, createdAt: at, updatedAt: at, store, keyring: keyring ?? lazyKeyRing(cfg) };
}

/**
 * The master key read when the key ring is first used: a deployment without purposes
 * (server.openAccess) has no master key and never uses one, yet every Tenant has a key ring.
 */
export function lazyKeyRing(cfg: Pick<Config, 'privacy'>): KeyRing {
  let ring: KeyRing | undefined;
  const load = () => (ring ??= KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile }));
  return new Proxy({} as KeyRing, {
    get: (_t, p) => {
      const r = load();
      const v = Reflect.get(r, p, r) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
    },
    getPrototypeOf: () => Object.getPrototypeOf(load()) as object,
  });
}

export function homeTenants(cfg: Pick<Config, 'privacy' | 'sources'>, store: Store, keyring?: KeyRing): FixedTenants {
  return new FixedTenants(cfg.privacy.tenant, [homeTenant(cfg, store, keyring)]);
}
