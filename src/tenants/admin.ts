/**
 * The admin GraphQL API's tenant management (src/graphql/admin-services.ts TenantAdmin) over
 * CatalogTenants: graphql/ may not import tenants/, so the assembly hands this in. Sources arrive as
 * JSON or YAML text (the schema has no JSON scalar) and are validated as the CLI's sources files.
 */
import { parse as parseYaml } from 'yaml';
import { RostergateError } from '../errors.ts';
import type { TenantAdmin, TenantView } from '../graphql/admin-services.ts';
import type { CatalogTenants } from './catalog-tenants.ts';
import type { TenantInfo } from './tenants.ts';

function sourcesOf(text: string): unknown {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new RostergateError('CONFIG_INVALID', `sources: not valid JSON or YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return Array.isArray(raw) ? raw : ((raw as { sources?: unknown } | null)?.sources ?? raw);
}

export function tenantAdmin(tenants: CatalogTenants): TenantAdmin {
  const view = (t: TenantInfo): TenantView => ({ ...t, home: t.id === tenants.home });
  return {
    list: async () => (await tenants.list()).map(view),
    add: async (t) => view(await tenants.add({ id: t.id, name: t.name, sources: t.sources === undefined ? [] : sourcesOf(t.sources) })),
    update: async (id, patch) => {
      if (id === tenants.home) throw new RostergateError('CONFIG_INVALID', `tenant ${id} is the config file's own: change it in the config file`);
      return view(await tenants.catalog.update(id, { ...patch, sources: patch.sources === undefined ? undefined : sourcesOf(patch.sources) }));
    },
    remove: (id, by) => tenants.remove(id, { by }),
  };
}

