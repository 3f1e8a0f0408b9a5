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
import { InvalidCursorError, TenantExistsError, type ApiKeyRecord, type Tenant, type TenantStore } from '../core/tenant-store.js';
import { parse, type ApiRequest, type Route } from '../http/api-handler.js';
import { actingTenant, requirePermission } from '../http/guards.js';
import { badRequest, conflict, notFound } from '../http/problem.js';

export interface TenantRoutesDeps {
  store: TenantStore;
  keys: KeyLifecycle;
  clock: Clock;
  keyPrefix: string;
}

const SCOPE = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'not a valid scope');
const NAME = z.string().trim().min(1).max(200);
export const createTenantBody = z.strictObject({ tenantId: z.string().regex(TENANT_ID_PATTERN, 'letters, digits, _ and -, 1-64 characters'), name: NAME });
export const patchTenantBody = z
  .strictObject({ name: NAME.optional(), status: z.enum(['active', 'disabled']).optional() })
  .refine((b) => b.name !== undefined || b.status !== undefined, 'name or status is required');
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
export const listQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(2048).optional() });

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

  return [
    {
      method: 'POST',
      resource: '/tenants',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        const body = parse(createTenantBody, req.body);
        const at = now(d.clock);
        const tenant: Tenant = { tenantId: body.tenantId, name: body.name, status: 'active', createdAt: at, updatedAt: at };
        try {
          await d.store.createTenant(tenant);
        } catch (err) {
          if (err instanceof TenantExistsError) throw conflict(`tenant ${body.tenantId} already exists`);
          throw err;
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
        if (body.status !== undefined) return { status: 200, body: await d.keys.setTenantStatus(tenantId, body.status, body.name) };
        const tenant = await d.store.updateTenant(tenantId, body, now(d.clock));
        if (!tenant) throw notFound('the tenant');
        return { status: 200, body: tenant };
      },
    },
    {
      method: 'DELETE',
      resource: '/tenants/{tenantId}',
      async handle(req) {
        requirePermission(req.caller, 'tenants:admin');
        await d.keys.deleteTenant(pathTenant(req));
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
