/**
 * Tenants known when the process starts: the config file's own tenant (its store and key ring as
 * `serve` and `sync` open them), and any others handed in already opened. No catalog, so nothing
 * is added or removed at run time; the catalog registry (issue 15) does that.
 */
import type { Tenant, Tenants, TenantInfo } from './tenants.ts';

export class FixedTenants implements Tenants {
  private readonly byId: Map<string, Tenant>;

  constructor(readonly home: string, tenants: Tenant[]) {
    this.byId = new Map(tenants.map((t) => [t.id, t]));
    if (!this.byId.has(home)) throw new Error(`FixedTenants: the home tenant ${home} is not among the tenants given`);
  }

  async list(): Promise<TenantInfo[]> {
    return [...this.byId.values()].map(({ store: _s, keyring: _k, ...info }) => info);
  }

  async open(id: string): Promise<Tenant | undefined> {
    return this.byId.get(id);
  }

  /** The stores were opened by the caller, who closes them. */
  async close(): Promise<void> {}
}
