/**
 * Tenant management: tenants (platform operators) and a tenant's API keys (tenant admins and
 * platform operators). The routes validate and authorize; the life of keys and tenants is
 * `KeyLifecycle`'s (`functions/core/key-lifecycle.ts`). A key's secret is returned exactly once,
 * at creation and at rotation.
 */
import * as z from 'zod';
import { formatApiKey } from '../core/api-key.js';
import type { Clock } from '../core/clock.js';
import { MAX_ROTATION_GRACE_S, type IssuedKey, type KeyLifecycle } from '../core/key-lifecycle.js';
import { TENANT_ID_PATTERN } from '../core/tenant-id.js';
import { PLAN_NAME_PATTERN, type UsageKeyProvisioner } from '../core/usage-plans.js';
import type { UsageReader } from '../core/usage-counter.js';
import { InvalidCursorError, TenantExistsError, type ApiKeyRecord, type Tenant, type TenantStore } from '../core/tenant-store.js';
import { parse, type ApiRequest, type Route } from '../http/api-handler.js';
import { actingTenant, requirePermission } from '../http/guards.js';
import { badRequest, conflict, notFound } from '../http/problem.js';

export interface TenantRoutesDeps {
  store: TenantStore;
  keys: KeyLifecycle;
  clock: Clock;
  keyPrefix: string;
  /** Per-tenant usage plans (REST API): each tenant's API Gateway key, attached to its plan. Absent: no plans deployed. */
  usage?: { provisioner: UsageKeyProvisioner; defaultPlan: string } | undefined;
  /** The authorizer's usage counters. */
  usageCounts?: UsageReader | undefined;
}

const SCOPE = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'not a valid scope');
const NAME = z.string().trim().min(1).max(200);
const PLAN = z.string().regex(PLAN_NAME_PATTERN, 'a usage plan name').describe('Usage plan (tier) whose rate, burst and quota apply to the tenant, e.g. `free`, `standard`, `enterprise`.');
export const createTenantBody = z.strictObject({
  tenantId: z.string().regex(TENANT_ID_PATTERN, 'letters, digits, _ and -, 1-64 characters'),
  name: NAME,
  plan: PLAN.optional(),
});
export const patchTenantBody = z
  .strictObject({ name: NAME.optional(), status: z.enum(['active', 'disabled']).optional(), plan: PLAN.optional() })
  .refine((b) => b.name !== undefined || b.status !== undefined || b.plan !== undefined, 'name, status or plan is required');
export const createKeyBody = z.strictObject({
  name: NAME,
  // At least one scope; duplicates are dropped. Which scopes a key may hold is KeyLifecycle's rule.
  scopes: z
    .array(SCOPE)
    .min(1, 'a key needs at least one scope')
    .max(50)
    .transform((xs) => [...new Set(xs)]),
});
export const rotateKeyBody = z.strictObject({ graceSeconds: z.number().int().min(0).max(MAX_ROTATION_GRACE_S).default(0) }).default({ graceSeconds: 0 });
const DAY = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, yyyy-mm-dd (UTC)').refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'not a date');
/** The longest range one usage request covers. */
export const MAX_USAGE_DAYS = 92;
export const usageQuery = z
  .strictObject({
    from: DAY.describe('First day (UTC), inclusive.'),
    to: DAY.describe('Last day (UTC), inclusive.'),
    granularity: z.enum(['day']).default('day').describe('Only `day`.'),
  })
  .refine((q) => q.from <= q.to, { message: 'from is after to', path: ['from'] })
  .refine((q) => (Date.parse(q.to) - Date.parse(q.from)) / 86_400_000 < MAX_USAGE_DAYS, { message: `at most ${MAX_USAGE_DAYS} days`, path: ['to'] });

export const listQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(2048).optional() });

/**
 * One CSV field: RFC 4180 quoting of a comma, quote or line break, and no formula. Spreadsheets
 * run a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return; key and client ids
 * come from tokens, so such a value is kept behind a leading `'` (OWASP's CSV-injection advice).
 * The lone `-` (a request without key or client) is not a formula and stays as it is.
 */
const csvField = (raw: string) => {
  const v = /^[=+\-@\t\r]/.test(raw) && raw !== '-' ? `'${raw}` : raw;
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
};

/** Counts per key (or client) as the usage answer lists them: `{id, requests}`, by id. */
const requestsById = (counts: ReadonlyMap<string, number>) => [...counts].map(([id, requests]) => ({ id, requests })).sort((a, b) => a.id.localeCompare(b.id));

/** The path's tenant, after checking the caller may act on it (403 otherwise). */
function pathTenant(req: ApiRequest): string {
  const requested = req.path.tenantId ?? '';
  if (!TENANT_ID_PATTERN.test(requested)) throw notFound('the tenant');
  return actingTenant(req.caller, requested);
}

const now = (clock: Clock) => new Date(clock.now()).toISOString();

function publicKey(k: ApiKeyRecord, lastUsedAt: number | undefined) {
  return {
    keyId: k.keyId,
    name: k.name,
    clientId: k.clientId,
    scopes: k.scopes,
    status: k.status,
    createdAt: k.createdAt,
    createdBy: k.createdBy,
    rotatedAt: k.rotatedAt ?? null,
    revokedAt: k.revokedAt ?? null,
    lastUsedAt: lastUsedAt === undefined ? null : new Date(lastUsedAt).toISOString(),
    previousClients: k.retiring.map((r) => ({ clientId: r.clientId, stopsAt: new Date(r.retireAt).toISOString() })),
  };
}

export function createTenantRoutes(d: TenantRoutesDeps): Route[] {
  const withSecret = (issued: IssuedKey) => ({
    ...publicKey(issued.record, undefined),
    clientSecret: issued.credentials.clientSecret,
    apiKey: formatApiKey(d.keyPrefix, issued.credentials),
  });

  /** The plan asked for (or the default), checked against the deployed plans; undefined where none are deployed. */
  const knownPlan = (asked: string | undefined): string | undefined => {
    if (!d.usage) {
      if (asked !== undefined) throw badRequest('this deployment has no usage plans', [{ path: 'plan', message: 'no usage plans are deployed' }]);
      return undefined;
    }
    const plan = asked ?? d.usage.defaultPlan;
    if (!d.usage.provisioner.plans.includes(plan)) throw badRequest(`no usage plan named ${plan}`, [{ path: 'plan', message: `one of ${d.usage.provisioner.plans.join(', ')}` }]);
    return plan;
  };

  return [
    {
      method: 'GET',
      resource: '/tenants/{tenantId}/usage',
      async handle(req) {
        // The tenant's admins (keys:read) and operators; counts per key reveal no more than the key list.
        requirePermission(req.caller, 'keys:read');
        const tenantId = pathTenant(req);
        const q = parse(usageQuery, req.query, 'query');
        if (!d.usageCounts) throw notFound('usage counting');
        const dayList: string[] = [];
        for (let t = Date.parse(`${q.from}T00:00:00Z`); t <= Date.parse(`${q.to}T00:00:00Z`); t += 86_400_000) dayList.push(new Date(t).toISOString().slice(0, 10));
        const stored = new Map((await d.usageCounts.days(tenantId, dayList)).map((u) => [u.day, u]));
        // Per-day totals: what API Gateway served with the tenant's usage key where plans are
        // deployed (GetUsage), else the authorizer's counts; per key, always the counts.
        const tenant = d.usage ? await d.store.getTenant(tenantId) : undefined;
        const served = d.usage && tenant?.plan ? await d.usage.provisioner.requestsByDay(tenantId, tenant.plan, dayList) : undefined;
        const days = dayList.map((day) => {
          const u = stored.get(day);
          const keys = u ? requestsById(u.subjects) : [];
          const counted = u?.total ?? 0;
          return { day, requests: served ? (served.get(day) ?? 0) : counted, counted, keys };
        });
        const perKey = new Map<string, number>();
        for (const day of days) for (const k of day.keys) perKey.set(k.id, (perKey.get(k.id) ?? 0) + k.requests);
        const accept = req.headers?.accept ?? '';
        if (/\btext\/csv\b/i.test(accept)) {
          // Billing exports: one row per day and key, and the tenant's total per day (key `*`).
          const tenantCell = csvField(tenantId);
          const rows = ['day,tenant_id,key_id,requests', ...days.flatMap((day) => [`${day.day},${tenantCell},*,${day.requests}`, ...day.keys.map((k) => `${day.day},${tenantCell},${csvField(k.id)},${k.requests}`)])];
          return { status: 200, text: `${rows.join('\r\n')}\r\n`, headers: { 'Content-Type': 'text/csv; charset=utf-8; header=present', 'Content-Disposition': `attachment; filename="usage-${tenantId}-${q.from}-${q.to}.csv"` } };
        }
        return {
          status: 200,
          body: {
            tenantId,
            from: q.from,
            to: q.to,
            granularity: q.granularity,
            source: served ? 'gateway' : 'counters',
            requests: days.reduce((n, day) => n + day.requests, 0),
            keys: requestsById(perKey),
            days,
          },
        };
      },
    },
    {
      method: 'POST',
      resource: '/tenants',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        const body = parse(createTenantBody, req.body);
        const at = now(d.clock);
        const plan = knownPlan(body.plan);
        const tenant: Tenant = { tenantId: body.tenantId, name: body.name, status: 'active', createdAt: at, updatedAt: at, ...(plan !== undefined ? { plan } : {}) };
        if (d.usage && plan !== undefined) {
          // The key first: provisioning is idempotent and leaves no record behind when API
          // Gateway is rate-limiting (503), so the client's retry finishes it. A tenant that
          // exists already keeps its key on its own plan.
          if (await d.store.getTenant(body.tenantId)) throw conflict(`tenant ${body.tenantId} already exists`);
          await d.usage.provisioner.provision(body.tenantId, plan);
        }
        try {
          await d.store.createTenant(tenant);
        } catch (err) {
          if (!(err instanceof TenantExistsError)) throw err;
          // A concurrent creation won the write. Its plan stands: ours may have moved its key.
          const winner = d.usage && plan !== undefined ? await d.store.getTenant(body.tenantId) : undefined;
          if (winner?.plan !== undefined && winner.plan !== plan) await d.usage!.provisioner.move(body.tenantId, plan, winner.plan);
          throw conflict(`tenant ${body.tenantId} already exists`);
        }
        return { status: 201, headers: { Location: `/tenants/${tenant.tenantId}` }, body: tenant };
      },
    },
    {
      method: 'GET',
      resource: '/tenants',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        const q = parse(listQuery, req.query, 'query');
        let page;
        try {
          page = await d.store.listTenants(q.limit, q.cursor);
        } catch (err) {
          if (err instanceof InvalidCursorError) throw badRequest('the cursor is not valid');
          throw err;
        }
        return { status: 200, body: { items: page.items, nextCursor: page.cursor ?? null } };
      },
    },
    {
      method: 'GET',
      resource: '/tenants/{tenantId}',
      async handle(req) {
        // Any caller of the tenant may read its own record; others get 403 from pathTenant.
        const tenantId = pathTenant(req);
        const tenant = await d.store.getTenant(tenantId);
        if (!tenant) throw notFound('the tenant');
        return { status: 200, body: tenant };
      },
    },
    {
      method: 'PATCH',
      resource: '/tenants/{tenantId}',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        const tenantId = pathTenant(req);
        const body = parse(patchTenantBody, req.body);
        if (body.plan !== undefined) {
          const plan = knownPlan(body.plan)!;
          const current = await d.store.getTenant(tenantId);
          if (!current) throw notFound('the tenant');
          // A deleted tenant's key is gone for good (it counts against the account's 10,000).
          if (await d.keys.isDeleted(tenantId)) throw conflict('the tenant is deleted');
          // Also with the plan on record: the move is idempotent and repairs a key that a
          // half-done move or a change outside Latchkey left missing or on another plan.
          await d.usage!.provisioner.move(tenantId, current.plan, plan);
          await d.store.updateTenant(tenantId, { plan }, now(d.clock));
          if (body.status === undefined && body.name === undefined) return { status: 200, body: { ...current, plan, updatedAt: now(d.clock) } };
        }
        if (body.status !== undefined) return { status: 200, body: await d.keys.setTenantStatus(tenantId, body.status, body.name) };
        const tenant = await d.store.updateTenant(tenantId, { name: body.name }, now(d.clock));
        if (!tenant) throw notFound('the tenant');
        return { status: 200, body: tenant };
      },
    },
    {
      method: 'DELETE',
      resource: '/tenants/{tenantId}',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        const tenantId = pathTenant(req);
        await d.keys.deleteTenant(tenantId);
        // Its API Gateway key goes too (the account holds at most 10,000); a 503 here is finished by a retry.
        await d.usage?.provisioner.release(tenantId);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      resource: '/tenants/{tenantId}/api-keys',
      async handle(req) {
        requirePermission(req.caller, 'keys:write');
        const tenantId = pathTenant(req);
        const body = parse(createKeyBody, req.body);
        // The key id follows from the Idempotency-Key: a retry, even after its record expired, finds the first attempt's client.
        const issued = await d.keys.issue(req.caller, tenantId, body, { idempotencyKey: req.idempotencyKey });
        return { status: 201, headers: { Location: `/tenants/${tenantId}/api-keys/${issued.record.keyId}` }, body: withSecret(issued) };
      },
    },
    {
      method: 'GET',
      resource: '/tenants/{tenantId}/api-keys',
      async handle(req) {
        requirePermission(req.caller, 'keys:read');
        const keys = await d.keys.list(pathTenant(req));
        return { status: 200, body: { items: keys.map((k) => publicKey(k.key, k.lastUsedAt)) } };
      },
    },
    {
      method: 'POST',
      resource: '/tenants/{tenantId}/api-keys/{keyId}/rotate',
      async handle(req) {
        requirePermission(req.caller, 'keys:write');
        const tenantId = pathTenant(req);
        const body = parse(rotateKeyBody, req.body);
        return { status: 200, body: withSecret(await d.keys.rotate(req.caller, tenantId, req.path.keyId ?? '', body.graceSeconds)) };
      },
    },
    {
      method: 'DELETE',
      resource: '/tenants/{tenantId}/api-keys/{keyId}',
      async handle(req) {
        requirePermission(req.caller, 'keys:write');
        await d.keys.revoke(req.caller, pathTenant(req), req.path.keyId ?? '');
        return { status: 204 };
      },
    },
  ];
}
