/**
 * The tenant's users, relayed to the identity provider with the tenant stamped in
 * `app_metadata`. The tenant always comes from the caller (a platform operator may name one
 * with `?tenantId=`), never from the body; a user of another tenant is answered 404, as if it
 * did not exist, and nothing is changed.
 */
import * as z from 'zod';
import type { IdentityProvider, IdpUser } from '../core/identity-provider.js';
import type { Log } from '../core/log.js';
import { TENANT_ROLES } from '../core/permissions.js';
import type { TenantStore } from '../core/tenant-store.js';
import { parse, type ApiRequest, type Route } from '../http/api-handler.js';
import { actingTenant, activeTenant, requirePermission } from '../http/guards.js';
import { badRequest, notFound } from '../http/problem.js';

export interface UserRoutesDeps {
  store: TenantStore;
  idp: () => Promise<IdentityProvider>;
  log: Log;
}

/** Fields only the platform sets; named here so the answer says why rather than "unrecognized key". */
const PROTECTED_FIELDS = ['tenantId', 'tenant_id', 'app_metadata', 'user_metadata', 'connection', 'email_verified', 'verify_email', 'user_id', 'userId'];

const roles = z.array(z.enum(TENANT_ROLES)).max(10);
const createUserBody = z.strictObject({
  email: z.email().max(254),
  name: z.string().trim().min(1).max(200).optional(),
  password: z.string().min(8).max(128).optional(),
  roles: roles.default([]),
});
const patchUserBody = z
  .strictObject({ name: z.string().trim().min(1).max(200).optional(), roles: roles.optional(), blocked: z.boolean().optional() })
  .refine((b) => b.name !== undefined || b.roles !== undefined || b.blocked !== undefined, 'name, roles or blocked is required');
const listQuery = z.strictObject({
  tenantId: z.string().optional(),
  page: z.coerce.number().int().min(0).max(1000).default(0),
  per_page: z.coerce.number().int().min(1).max(100).default(50),
  email: z.email().max(254).optional(),
});
const USER_ID = /^[\x21-\x7e]{1,256}$/;

function refuseProtected(body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  const named = PROTECTED_FIELDS.filter((f) => Object.hasOwn(body, f));
  if (named.length > 0) throw badRequest(`these fields cannot be set: ${named.join(', ')}`, named.map((f) => ({ path: f, message: 'not settable' })));
}

const targetTenant = (req: ApiRequest): string => actingTenant(req.caller, req.query.tenantId);

const publicUser = (u: IdpUser) => ({
  userId: u.userId,
  email: u.email,
  name: u.name ?? null,
  tenantId: u.tenantId,
  roles: u.roles,
  blocked: u.blocked,
  emailVerified: u.emailVerified,
  createdAt: u.createdAt ?? null,
  lastLogin: u.lastLogin ?? null,
});

export function createUserRoutes(d: UserRoutesDeps): Route[] {
  /** The user, if it belongs to the tenant; 404 otherwise, so other tenants' users stay invisible. */
  async function ownUser(req: ApiRequest, tenantId: string): Promise<IdpUser> {
    const userId = req.path.userId ?? '';
    if (!USER_ID.test(userId)) throw notFound('the user');
    const user = await (await d.idp()).getUser(userId);
    if (!user || user.tenantId !== tenantId) throw notFound('the user');
    return user;
  }

  return [
    {
      method: 'GET',
      resource: '/me',
      async handle(req) {
        const c = req.caller;
        return {
          status: 200,
          body: { subject: c.subject, tenantId: c.tenantId ?? null, userId: c.userId ?? null, clientId: c.clientId ?? null, roles: c.roles, scopes: c.scopes, authMethod: c.authMethod },
        };
      },
    },
    {
      method: 'POST',
      resource: '/users',
      async handle(req) {
        requirePermission(req.caller, 'users:write');
        const tenantId = targetTenant(req);
        refuseProtected(req.body);
        const body = parse(createUserBody, req.body);
        await activeTenant(d.store, tenantId);
        const user = await (await d.idp()).createUser({ tenantId, email: body.email, name: body.name, password: body.password, roles: body.roles });
        d.log.info('user created', { tenantId, userId: user.userId, by: req.caller.subject });
        return { status: 201, headers: { Location: `/users/${encodeURIComponent(user.userId)}` }, body: publicUser(user) };
      },
    },
    {
      method: 'GET',
      resource: '/users',
      async handle(req) {
        requirePermission(req.caller, 'users:read');
        const tenantId = targetTenant(req);
        const q = parse(listQuery, req.query, 'query');
        const page = await (await d.idp()).listUsers({ tenantId, email: q.email, page: q.page, perPage: q.per_page });
        // Defence in depth: whatever the provider's search returned, only this tenant's users leave.
        const users = page.users.filter((u) => u.tenantId === tenantId);
        return { status: 200, body: { items: users.map(publicUser), page: page.page, perPage: page.perPage, total: page.total } };
      },
    },
    {
      method: 'GET',
      resource: '/users/{userId}',
      async handle(req) {
        requirePermission(req.caller, 'users:read');
        return { status: 200, body: publicUser(await ownUser(req, targetTenant(req))) };
      },
    },
    {
      method: 'PATCH',
      resource: '/users/{userId}',
      async handle(req) {
        requirePermission(req.caller, 'users:write');
        const tenantId = targetTenant(req);
        refuseProtected(req.body);
        const body = parse(patchUserBody, req.body);
        const user = await ownUser(req, tenantId);
        const updated = await (await d.idp()).updateUser(user.userId, body);
        d.log.info('user updated', { tenantId, userId: user.userId, by: req.caller.subject });
        return { status: 200, body: publicUser(updated) };
      },
    },
    {
      method: 'DELETE',
      resource: '/users/{userId}',
      async handle(req) {
        requirePermission(req.caller, 'users:write');
        const tenantId = targetTenant(req);
        const user = await ownUser(req, tenantId);
        await (await d.idp()).deleteUser(user.userId);
        d.log.info('user deleted', { tenantId, userId: user.userId, by: req.caller.subject });
        return { status: 204 };
      },
    },
  ];
}
