/**
 * Tenant management: tenants (platform operators) and a tenant's API keys (tenant admins and
 * platform operators). A key is a machine-to-machine client at the identity provider; its
 * secret is returned exactly once, at creation and at rotation.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { formatApiKey } from '../core/api-key.js';
import type { Clock } from '../core/clock.js';
import type { IdentityProvider } from '../core/identity-provider.js';
import type { Log } from '../core/log.js';
import { grantableScopes } from '../core/permissions.js';
import { TENANT_ID_PATTERN } from '../core/tenant-id.js';
import type { ClientRevocations } from '../core/token-cache.js';
import { credentialsCacheKey } from '../core/token-crypto.js';
import { InvalidCursorError, TenantExistsError, type ApiKeyRecord, type Tenant, type TenantStore } from '../core/tenant-store.js';
import { parse, type ApiRequest, type ApiResponse, type Route } from '../http/api-handler.js';
import { actingTenant, activeTenant, requirePermission } from '../http/guards.js';
import { badRequest, conflict, notFound } from '../http/problem.js';

export interface TenantRoutesDeps {
  store: TenantStore;
  /** Resolved lazily: the provider's credentials are read on first use. */
  idp: () => Promise<IdentityProvider>;
  revocations: ClientRevocations;
  /** Flushes API Gateway's authorizer cache of the stage, so a revoked key stops at once there. */
  flushAuthorizerCache?: (() => Promise<void>) | undefined;
  clock: Clock;
  log: Log;
  /** Audience the keys' clients are granted. */
  audience: string;
  /** Scopes a key may be given. */
  keyScopes: readonly string[];
  keyPrefix: string;
}

const SCOPE = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'not a valid scope');
const NAME = z.string().trim().min(1).max(200);
const createTenantBody = z.strictObject({ tenantId: z.string().regex(TENANT_ID_PATTERN, 'letters, digits, _ and -, 1-64 characters'), name: NAME });
const patchTenantBody = z
  .strictObject({ name: NAME.optional(), status: z.enum(['active', 'disabled']).optional() })
  .refine((b) => b.name !== undefined || b.status !== undefined, 'name or status is required');
const createKeyBody = z.strictObject({ name: NAME, scopes: z.array(SCOPE).max(50).default([]) });
const listQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(2048).optional() });

/** The path's tenant, after checking the caller may act on it (403 otherwise). */
function pathTenant(req: ApiRequest): string {
  const requested = req.path.tenantId ?? '';
  if (!TENANT_ID_PATTERN.test(requested)) throw notFound('the tenant');
  return actingTenant(req.caller, requested);
}

const now = (clock: Clock) => new Date(clock.now()).toISOString();
const newKeyId = () => `key_${randomBytes(12).toString('base64url')}`;

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
  };
}

export function createTenantRoutes(d: TenantRoutesDeps): Route[] {
  async function flush(): Promise<void> {
    if (!d.flushAuthorizerCache) return;
    // The authorizer's own bound still holds if this fails; say so in the log and go on.
    await d.flushAuthorizerCache().catch((err: unknown) => d.log.warn('could not flush the authorizer cache', { error: String(err) }));
  }

  async function revoke(k: ApiKeyRecord): Promise<void> {
    const at = d.clock.now();
    // Order matters: the marker first, so no cache serves the key once this call returns.
    await d.revocations.revokeClient(k.clientId, at);
    await (await d.idp()).deleteMachineClient(k.clientId);
    await d.revocations.purge(k.cacheKeys);
    await d.store.markRevoked(k.tenantId, k.keyId, new Date(at).toISOString());
    d.log.info('API key revoked', { tenantId: k.tenantId, keyId: k.keyId, clientId: k.clientId });
  }

  async function issue(req: ApiRequest, tenantId: string, body: z.infer<typeof createKeyBody>): Promise<ApiResponse> {
    const grant = grantableScopes(req.caller, body.scopes, d.keyScopes);
    if (!grant.ok) throw badRequest(`these scopes cannot be given to a key: ${grant.notAllowed.join(' ')}`);
    const keyId = newKeyId();
    const idp = await d.idp();
    const client = await idp.createMachineClient({ name: `${tenantId} ${body.name}`.slice(0, 128), tenantId, keyId, audience: d.audience, scopes: body.scopes });
    const record: ApiKeyRecord = {
      tenantId,
      keyId,
      name: body.name,
      clientId: client.clientId,
      scopes: body.scopes,
      status: 'active',
      createdAt: now(d.clock),
      createdBy: req.caller.subject,
      cacheKeys: [credentialsCacheKey(client)],
    };
    try {
      await d.store.putKey(record);
    } catch (err) {
      // A client the registry does not know could never be listed or revoked: remove it.
      await idp.deleteMachineClient(client.clientId).catch(() => undefined);
      throw err;
    }
    d.log.info('API key issued', { tenantId, keyId, clientId: client.clientId });
    return {
      status: 201,
      headers: { Location: `/tenants/${tenantId}/api-keys/${keyId}` },
      body: { ...publicKey(record, undefined), clientSecret: client.clientSecret, apiKey: formatApiKey(d.keyPrefix, client) },
    };
  }

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
        const tenantId = pathTenant(req);
        const tenant = await d.store.updateTenant(tenantId, { status: 'disabled' }, now(d.clock));
        if (!tenant) throw notFound('the tenant');
        const keys = await d.store.listKeys(tenantId);
        for (const k of keys) if (k.status === 'active') await revoke(k);
        await flush();
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
        await activeTenant(d.store, tenantId);
        return issue(req, tenantId, body);
      },
    },
    {
      method: 'GET',
      resource: '/tenants/{tenantId}/api-keys',
      async handle(req) {
        requirePermission(req.caller, 'keys:read');
        const tenantId = pathTenant(req);
        if (!(await d.store.getTenant(tenantId))) throw notFound('the tenant');
        const keys = await d.store.listKeys(tenantId);
        const lastUsed = keys.length > 0 ? await d.revocations.lastUsed(keys.map((k) => k.clientId)) : new Map<string, number>();
        return { status: 200, body: { items: keys.map((k) => publicKey(k, lastUsed.get(k.clientId))) } };
      },
    },
    {
      method: 'POST',
      resource: '/tenants/{tenantId}/api-keys/{keyId}/rotate',
      async handle(req) {
        requirePermission(req.caller, 'keys:write');
        const tenantId = pathTenant(req);
        await activeTenant(d.store, tenantId);
        const key = await d.store.getKey(tenantId, req.path.keyId ?? '');
        if (!key) throw notFound('the API key');
        if (key.status !== 'active') throw conflict('the API key is revoked');
        const at = d.clock.now();
        // Tokens obtained with the old secret stop being served from any cache.
        await d.revocations.setNotBefore(key.clientId, at);
        const client = await (await d.idp()).rotateClientSecret(key.clientId);
        const cacheKey = credentialsCacheKey(client);
        await d.store.recordRotation(tenantId, key.keyId, cacheKey, new Date(at).toISOString());
        await flush();
        d.log.info('API key rotated', { tenantId, keyId: key.keyId, clientId: key.clientId });
        const rotated = { ...key, rotatedAt: new Date(at).toISOString(), cacheKeys: [...key.cacheKeys, cacheKey] };
        return { status: 200, body: { ...publicKey(rotated, undefined), clientSecret: client.clientSecret, apiKey: formatApiKey(d.keyPrefix, client) } };
      },
    },
    {
      method: 'DELETE',
      resource: '/tenants/{tenantId}/api-keys/{keyId}',
      async handle(req) {
        requirePermission(req.caller, 'keys:write');
        const tenantId = pathTenant(req);
        const key = await d.store.getKey(tenantId, req.path.keyId ?? '');
        if (!key) throw notFound('the API key');
        if (key.status === 'active') {
          await revoke(key);
          await flush();
        }
        return { status: 204 };
      },
    },
  ];
}
