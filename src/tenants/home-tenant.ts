/**
 * The config file's own tenant (`privacy.tenant`) as a `Tenant`: its sources are the file's, its
 * store the configured one. Commands that work through `Tenants` (`worker`, `serve`'s schedule)
 * start from `FixedTenants(home, [homeTenant(cfg, store)])` until the catalog replaces the registry.
 */
import type { Config } from '../config/config.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';
import type { Tenant } from './tenants.ts';
import { FixedTenants } from './fixed-tenants.ts';

export function homeTenant(cfg: Config, store: Store, now = new Date()): Tenant {
  const at = now.toISOString();
  return { id: cfg.privacy.tenant, name: cfg.privacy.tenant, status: 'active', sources: cfg.sources, createdAt: at, updatedAt: at, store, keyring: lazyKeyRing(cfg) };
}

/**
 * The master key read when the key ring is first used: a deployment without purposes
 * (server.openAccess) has no master key and never uses one, yet every Tenant has a key ring.
 */
function lazyKeyRing(cfg: Config): KeyRing {
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

export function homeTenants(cfg: Config, store: Store): FixedTenants {
  return new FixedTenants(cfg.privacy.tenant, [homeTenant(cfg, store)]);
}
