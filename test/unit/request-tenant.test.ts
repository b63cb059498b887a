/**
 * Which tenant a request reads (src/tenants/request-tenant.ts): the client's tenants, narrowed by
 * its key, and the header; refusals that do not tell an unknown tenant from a forbidden one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRostergateError, refusalAnswer } from '../../src/errors.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import type { Store } from '../../src/store/types.ts';
import { FixedTenants } from '../../src/tenants/fixed-tenants.ts';
import { checkClientTenants, grantedTenants, requestTenant, tenantHeader } from '../../src/tenants/request-tenant.ts';
import type { Tenant } from '../../src/tenants/tenants.ts';
import { openTestStore } from '../support/stores.ts';

const ring = (id: string) => new KeyRing(Buffer.alloc(32, 3), id);

describe('requestTenant', () => {
  let stores: Store[];
  let tenants: FixedTenants;
  beforeAll(async () => {
    stores = [await openTestStore('sqlite'), await openTestStore('sqlite'), await openTestStore('sqlite')];
    const t = (id: string, store: Store, status: Tenant['status'] = 'active'): Tenant => ({ id, name: id, status, sources: [], createdAt: '', updatedAt: '', store, keyring: ring(id) });
    tenants = new FixedTenants('home', [t('home', stores[0]!), t('north', stores[1]!), t('south', stores[2]!, 'paused')]);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isRostergateError(e) ? e.code : String(e)));

  it('a client of one tenant reads it without naming it, and may name it', async () => {
    expect((await requestTenant(tenants, { client: 'c', tenants: ['home'] }, undefined)).id).toBe('home');
    expect((await requestTenant(tenants, { client: 'c', tenants: ['north'] }, 'north')).id).toBe('north');
  });

  it('a client of several names one; "*" reads any that exists', async () => {
    expect(await codeOf(requestTenant(tenants, { client: 'c', tenants: ['home', 'north'] }, undefined))).toBe('TENANT_REQUIRED');
    expect(await codeOf(requestTenant(tenants, { client: 'c', tenants: '*' }, undefined))).toBe('TENANT_REQUIRED');
    expect((await requestTenant(tenants, { client: 'c', tenants: '*' }, 'north')).id).toBe('north');
  });

  it('forbidden and unknown tenants get the same refusal (403); a paused one only to a client that may read it (503)', async () => {
    const answer = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => JSON.stringify(refusalAnswer(e)).replace(/\\"[a-z]+\\" /, ''));
    const forbidden = await answer(requestTenant(tenants, { client: 'c', tenants: ['home'] }, 'north'));
    const unknown = await answer(requestTenant(tenants, { client: 'c', tenants: ['home'] }, 'west'));
    const unknownToAll = await answer(requestTenant(tenants, { client: 'c', tenants: '*' }, 'west'));
    const pausedForbidden = await answer(requestTenant(tenants, { client: 'c', tenants: ['home'] }, 'south'));
    expect(forbidden).toContain('"status":403');
    expect(forbidden).toContain('TENANT_REFUSED');
    expect([unknown, unknownToAll, pausedForbidden]).toEqual([forbidden, forbidden, forbidden]);
    expect(await codeOf(requestTenant(tenants, { client: 'c', tenants: '*' }, 'south'))).toBe('TENANT_PAUSED');
    // Not a tenant id at all: refused alike, and not repeated back.
    const odd = await requestTenant(tenants, { client: 'c', tenants: '*' }, '<script>').catch((e: Error) => e.message);
    expect(odd).toMatch(/^no tenant that this client may read/);
  });

  it('a key narrowed to one tenant reads only that one, and nothing once its client may no longer read it', async () => {
    expect(grantedTenants({ client: 'c', tenants: '*', keyTenant: 'north' })).toEqual(['north']);
    expect(grantedTenants({ client: 'c', tenants: ['home'], keyTenant: 'north' })).toEqual([]);
    expect((await requestTenant(tenants, { client: 'c', tenants: '*', keyTenant: 'north' }, undefined)).id).toBe('north');
    expect(await codeOf(requestTenant(tenants, { client: 'c', tenants: '*', keyTenant: 'north' }, 'home'))).toBe('TENANT_REFUSED');
    expect(await codeOf(requestTenant(tenants, { client: 'c', tenants: ['home'], keyTenant: 'north' }, undefined))).toBe('TENANT_REFUSED');
  });

  it('reads the header, a repeated one as no tenant id', () => {
    expect(tenantHeader({ 'x-rostergate-tenant': ' north ' })).toBe('north');
    expect(tenantHeader({ 'x-rostergate-tenant': ['north', 'home'] })).toBe('north,home');
    expect(tenantHeader({})).toBeUndefined();
  });

  it('refuses clients[].tenants entries that are not tenant ids, and "*" among others', () => {
    expect(() => checkClientTenants({ clients: [{ id: 'a', tenants: ['*'] }, { id: 'b', tenants: ['north', 'home'] }, { id: 'c' }] })).not.toThrow();
    expect(() => checkClientTenants({ clients: [{ id: 'a', tenants: ['North'] }] })).toThrow(/clients\[0\] \(a\)\.tenants: "North" is not a tenant id/);
    expect(() => checkClientTenants({ clients: [{ id: 'a', tenants: ['*', 'north'] }] })).toThrow(/"\*" is not a tenant id/);
  });
});
