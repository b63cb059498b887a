/** Tenant management through the admin GraphQL API (admin purpose only), over a real gateway. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { CatalogTenants } from '../../src/tenants/catalog-tenants.ts';
import { tenantAdmin } from '../../src/tenants/admin.ts';
import { tempDir } from '../support/stores.ts';

describe('admin GraphQL: tenants', { timeout: 120_000 }, () => {
  let g: PrivateGateway;
  let tenants: CatalogTenants;
  beforeAll(async () => {
    g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 }, undefined, {
      tenantAdmin: (store, location) => tenantAdmin((tenants = new CatalogTenants({ storeLocation: location, homeStore: store, home: { id: 'test', sources: [] }, refreshMs: 0 }))),
      // The vendor's operator: an admin of every tenant.
      adminTenants: ['*'],
    });
  });
  afterAll(async () => {
    await tenants.close();
    await g.close();
  });
  // The operator's admin client reads every tenant, so each request names one (the home tenant).
  const admin = (query: string, variables?: unknown) => g.gql('admin-demo', query, variables, 'test');
  const TENANT = `{ id name status home createdAt updatedAt sources { id type config } }`;

  it('adds, lists, updates, pauses, resumes and removes tenants', async () => {
    const drop = join(tempDir(), 'drop');
    mkdirSync(drop);
    let r = await admin(`mutation($s: String) { addTenant(id: "north", name: "North", sources: $s) ${TENANT} }`,
      { s: JSON.stringify([{ id: 'sis', type: 'oneroster-csv', path: drop }]) });
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.addTenant).toMatchObject({ id: 'north', name: 'North', status: 'ACTIVE', home: false, sources: [{ id: 'sis', type: 'oneroster-csv' }] });
    expect(JSON.parse(r.body.data.addTenant.sources[0].config)).toMatchObject({ path: drop, mode: 'tolerant' });

    r = await admin(`{ tenants { id status home } }`);
    expect(r.body.data.tenants).toEqual([{ id: 'test', status: 'ACTIVE', home: true }, { id: 'north', status: 'ACTIVE', home: false }]);

    r = await admin(`mutation { updateTenant(id: "north", name: "North District", sources: "- id: api\\n  type: clever\\n  token: env:NORTH_CLEVER\\n") ${TENANT} }`);
    expect(r.body.data.updateTenant).toMatchObject({ name: 'North District', sources: [{ id: 'api', type: 'clever' }] });
    expect(JSON.parse(r.body.data.updateTenant.sources[0].config).token).toBe('env:NORTH_CLEVER');

    expect((await admin(`mutation { pauseTenant(id: "north") { status } }`)).body.data.pauseTenant.status).toBe('PAUSED');
    expect((await admin(`mutation { resumeTenant(id: "north") { status } }`)).body.data.resumeTenant.status).toBe('ACTIVE');

    expect((await admin(`mutation { removeTenant(id: "north") }`)).body.data.removeTenant).toBe(true);
    expect((await admin(`{ tenants { id } }`)).body.data.tenants).toEqual([{ id: 'test' }]);
    const where = tenants.storage('north');
    expect(where.kind === 'sqlite' && existsSync(where.path)).toBe(false);
    const [removal] = await tenants.catalog.removals();
    expect(removal).toMatchObject({ tenantId: 'north', removedBy: 'admin client admin-demo' });
  });

  it('refuses literal secrets and unknown tenants with coded errors, and other purposes do not see tenants', async () => {
    let r = await admin(`mutation { addTenant(id: "south", name: "South", sources: "[{\\"id\\":\\"api\\",\\"type\\":\\"clever\\",\\"token\\":\\"literal-token\\"}]") { id } }`);
    expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(r.body.errors?.[0].message).toMatch(/token: a secret given literally/);
    expect(r.body.errors?.[0].message).not.toContain('literal-token');
    r = await admin(`mutation { pauseTenant(id: "nobody") { id } }`);
    expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
    r = await g.gql('lms-demo', `{ tenants { id } }`);
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0].message).toMatch(/tenants/);
  });

  it('is refused to an admin of one tenant: a district admin must not list, add or remove the others', async () => {
    let other: CatalogTenants | undefined;
    const home = await privateGateway({ students: 5, teachers: 1, classes: 1, schools: 1 }, undefined, {
      tenantAdmin: (store, location) => tenantAdmin((other = new CatalogTenants({ storeLocation: location, homeStore: store, home: { id: 'test', sources: [] }, refreshMs: 0 }))),
    });
    try {
      const r = await home.gql('admin-demo', `{ tenants { id } }`);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const add = await home.gql('admin-demo', `mutation { addTenant(id: "west", name: "West") { id } }`);
      expect(add.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect((await other!.list()).map((t) => t.id)).toEqual(['test']);
    } finally {
      await other?.close();
      await home.close();
    }
  });
});
