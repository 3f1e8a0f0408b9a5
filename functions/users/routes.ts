/**
 * The tenant's users, relayed to the identity provider with the tenant stamped in
 * `app_metadata`. The tenant always comes from the caller (a platform operator may name one
 * with `?tenantId=`), never from the body; a user of another tenant is answered 404, as if it
 * did not exist, and nothing is changed.
 */
import * as z from 'zod';
import { IdentityProviderError, type IdentityProvider, type IdpUser } from '../core/identity-provider.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { userStateAfter, type PrincipalStateWriter } from '../core/principal-state.js';
import { isPlatformAdmin, isPlatformManaged, rolesAfterChange, TENANT_ADMIN, TENANT_ROLES } from '../core/permissions.js';
import type { TenantStore } from '../core/tenant-store.js';
import { parse, type ApiRequest, type Route } from '../http/api-handler.js';
import { actingTenant, activeTenant, requirePermission } from '../http/guards.js';
import { badRequest, conflict, forbidden, notFound } from '../http/problem.js';

export interface UserRoutesDeps {
  store: TenantStore;
  idp: () => Promise<IdentityProvider>;
  /** Where blocks, deletions and role changes reach the authorizer. */
  states: PrincipalStateWriter;
  clock: Clock;
  log: Log;
}

/** Fields only the platform sets; named here so the answer says why rather than "unrecognized key". */
const PROTECTED_FIELDS = ['tenantId', 'tenant_id', 'app_metadata', 'user_metadata', 'connection', 'email_verified', 'verify_email', 'user_id', 'userId'];

const roles = z.array(z.enum(TENANT_ROLES)).max(10);
export const createUserBody = z.strictObject({
  email: z.email().max(254),
  name: z.string().trim().min(1).max(200).optional(),
  password: z.string().min(8).max(128).optional(),
  roles: roles.default([]),
});
export const patchUserBody = z
  .strictObject({ name: z.string().trim().min(1).max(200).optional(), roles: roles.optional(), blocked: z.boolean().optional() })
  .refine((b) => b.name !== undefined || b.roles !== undefined || b.blocked !== undefined, 'name, roles or blocked is required');
export const listQuery = z.strictObject({
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

const isActiveAdmin = (u: IdpUser) => !u.blocked && u.roles.includes(TENANT_ADMIN);

export function createUserRoutes(d: UserRoutesDeps): Route[] {
  /** The user, if it belongs to the tenant; 404 otherwise, so other tenants' users stay invisible. */
  async function ownUser(req: ApiRequest, tenantId: string): Promise<IdpUser> {
    const userId = req.path.userId ?? '';
    if (!USER_ID.test(userId)) throw notFound('the user');
    const user = await (await d.idp()).getUser(userId);
    if (!user || user.tenantId !== tenantId) throw notFound('the user');
    return user;
  }

  /** The user, if the caller may change it: users holding a platform role are the platform's. */
  async function changeableUser(req: ApiRequest, tenantId: string): Promise<IdpUser> {
    const user = await ownUser(req, tenantId);
    if (isPlatformManaged(user.roles) && !isPlatformAdmin(req.caller)) throw forbidden('this user is managed by the platform operators');
    return user;
  }

  /**
   * A creation retried after a crash (the provider created the user, the answer was lost): the
   * provider says the e-mail exists. The existing user is answered only when the retry is
   * marked as one (an Idempotency-Key, whose record may have expired; answered 201 as its replay
   * would have been) and the user is in the
   * caller's tenant, unblocked, with exactly the requested roles (and name, when one was given): what this request would
   * have created. Anything else stays 409 and says nothing of the user, so no other tenant's user
   * is ever disclosed (a caller with users:write can already find its own tenant's users by e-mail).
   */
  async function createdByEarlierAttempt(err: unknown, req: ApiRequest, tenantId: string, body: { email: string; name?: string | undefined; roles: string[] }): Promise<IdpUser | undefined> {
    if (!(err instanceof IdentityProviderError) || err.code !== 'ERR_IDP_CONFLICT' || req.idempotencyKey === undefined) return undefined;
    const { users } = await (await d.idp()).listUsers({ tenantId, email: body.email, page: 0, perPage: 10 });
    const email = body.email.toLowerCase();
    const sameRoles = (u: IdpUser) => u.roles.length === body.roles.length && body.roles.every((r) => u.roles.includes(r));
    return users.find((u) => u.tenantId === tenantId && u.email.toLowerCase() === email && !u.blocked && (body.name === undefined || u.name === body.name) && sameRoles(u));
  }

  /** A tenant keeps at least one active admin: the last one cannot be deleted, blocked or demoted (409). */
  async function keepAnAdmin(user: IdpUser, tenantId: string): Promise<void> {
    if (!isActiveAdmin(user)) return;
    const idp = await d.idp();
    for (let page = 0; ; page++) {
      const res = await idp.listUsers({ tenantId, page, perPage: 100 });
      if (res.users.some((u) => u.userId !== user.userId && u.tenantId === tenantId && isActiveAdmin(u))) return;
      if (res.users.length < 100 || (page + 1) * 100 >= res.total) break;
    }
    throw conflict('this is the last active admin of the tenant; make another user admin first');
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
        const { notAllowed } = rolesAfterChange(req.caller, [], body.roles);
        if (notAllowed.length > 0) throw forbidden(`you cannot give these roles: ${notAllowed.join(', ')}`);
        await activeTenant(d.store, tenantId);
        const idp = await d.idp();
        let user: IdpUser;
        try {
          user = await idp.createUser({ tenantId, email: body.email, name: body.name, password: body.password, roles: body.roles });
        } catch (err) {
          const earlier = await createdByEarlierAttempt(err, req, tenantId, body);
          if (!earlier) throw err;
          d.log.info('user creation retried: answering the user an earlier attempt created', { tenantId, userId: earlier.userId, by: req.caller.subject });
          return { status: 201, headers: { Location: `/users/${encodeURIComponent(earlier.userId)}` }, body: publicUser(earlier) };
        }
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
        const user = await changeableUser(req, tenantId);
        let roles: string[] | undefined = body.roles;
        if (roles !== undefined) {
          const change = rolesAfterChange(req.caller, user.roles, roles);
          if (change.notAllowed.length > 0) throw forbidden(`you cannot give these roles: ${change.notAllowed.join(', ')}`);
          roles = change.roles;
        }
        if (body.blocked === true || (roles !== undefined && !roles.includes(TENANT_ADMIN))) await keepAnAdmin(user, tenantId);
        const rolesChanged = roles !== undefined && [...roles].sort().join() !== [...user.roles].sort().join();
        const restricts = body.blocked === true || rolesChanged;
        const write = async () => {
          if (body.blocked === undefined && !rolesChanged) return;
          const previous = await d.states.getState('user', user.userId);
          await d.states.putState(userStateAfter(previous, user.userId, { blocked: body.blocked, rolesChanged }, d.clock.now()));
        };
        // A restriction reaches the authorizers before the provider; a release only after it.
        if (restricts) await write();
        const updated = await (await d.idp()).updateUser(user.userId, { ...body, roles });
        if (!restricts) await write();
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
        const user = await changeableUser(req, tenantId);
        await keepAnAdmin(user, tenantId);
        await d.states.putState(userStateAfter(undefined, user.userId, { deleted: true }, d.clock.now()));
        await (await d.idp()).deleteUser(user.userId);
        d.log.info('user deleted', { tenantId, userId: user.userId, by: req.caller.subject });
        return { status: 204 };
      },
    },
  ];
}
