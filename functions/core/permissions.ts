/**
 * Authorization rules of the management API, pure and in one place.
 *
 * A caller holds a permission when a token scope names it (API keys, service tokens, Auth0
 * RBAC `permissions`) or when one of its roles grants it (user tokens). Every tenant-level
 * permission applies only inside the caller's own tenant, except for platform operators.
 */
import type { Principal } from './principal.js';

export const PERMISSIONS = ['tenants:admin', 'keys:read', 'keys:write', 'users:read', 'users:write', 'audit:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const PLATFORM_ADMIN = 'platform:admin';
export const TENANT_ADMIN = 'tenant:admin';
export const TENANT_MEMBER = 'tenant:member';
/** Roles a tenant may hand its own users; platform roles are never assignable through the API. */
export const TENANT_ROLES = [TENANT_ADMIN, TENANT_MEMBER] as const;

/** What each role grants (the local identity provider emits the same as Auth0 RBAC `permissions`). */
export const ROLE_GRANTS: Readonly<Record<string, readonly Permission[]>> = {
  [PLATFORM_ADMIN]: PERMISSIONS,
  [TENANT_ADMIN]: ['keys:read', 'keys:write', 'users:read', 'users:write', 'audit:read'],
  [TENANT_MEMBER]: ['users:read'],
};

export function isPlatformAdmin(p: Principal): boolean {
  return p.roles.includes(PLATFORM_ADMIN);
}

/** A machine caller: an API key (on either path) or a service token; no end user. */
export function isMachine(p: Principal): boolean {
  return p.userId === undefined;
}

export function hasPermission(p: Principal, perm: string): boolean {
  if (p.scopes.includes(perm)) return true;
  return p.roles.some((r) => (ROLE_GRANTS[r] as readonly string[] | undefined)?.includes(perm) ?? false);
}

/**
 * Roles `p` may hand to a user: tenant roles only (platform roles never go through the API), and
 * only those whose permissions `p` holds itself, so no caller can make a user stronger than itself.
 */
export function assignableRoles(p: Principal): string[] {
  return TENANT_ROLES.filter((r) => ROLE_GRANTS[r]!.every((perm) => hasPermission(p, perm)));
}

/**
 * The roles a user ends up with when `p` asks for `requested`: the requested roles `p` may assign,
 * plus every role the user holds that `p` may not manage (kept, never removed by a weaker caller).
 * `notAllowed` lists requested roles `p` may not assign.
 */
export function rolesAfterChange(p: Principal, current: readonly string[], requested: readonly string[]): { roles: string[]; notAllowed: string[] } {
  const mine = assignableRoles(p);
  const notAllowed = requested.filter((r) => !mine.includes(r) && !current.includes(r));
  const kept = current.filter((r) => !mine.includes(r));
  return { roles: [...new Set([...requested.filter((r) => mine.includes(r) || current.includes(r)), ...kept])], notAllowed };
}

/** A user only platform operators may change: one holding a role that is not a tenant role. */
export function isPlatformManaged(roles: readonly string[]): boolean {
  return roles.some((r) => !(TENANT_ROLES as readonly string[]).includes(r));
}

export type TenantAccess = { ok: true; tenantId: string } | { ok: false; reason: 'no-tenant' | 'other-tenant' };

/**
 * Which tenant a request acts on. `requested` is the tenant named by the path or query, if any.
 * Platform operators may name any tenant; everyone else acts on their own tenant only.
 */
export function resolveTenant(p: Principal, requested: string | undefined): TenantAccess {
  if (isPlatformAdmin(p)) {
    const t = requested ?? p.tenantId;
    return t === undefined ? { ok: false, reason: 'no-tenant' } : { ok: true, tenantId: t };
  }
  if (p.tenantId === undefined) return { ok: false, reason: 'no-tenant' };
  if (requested !== undefined && requested !== p.tenantId) return { ok: false, reason: 'other-tenant' };
  return { ok: true, tenantId: p.tenantId };
}

/**
 * Scopes a key may be given, rotated or revoked with: only those the deployment allows for keys;
 * a machine caller (an API key on either path, a service token) only scopes it holds itself, so a
 * key cannot mint, take over or revoke a stronger key; a user only Latchkey permissions it holds.
 */
export function grantableScopes(p: Principal, requested: readonly string[], allowed: readonly string[]): { ok: true } | { ok: false; notAllowed: string[] } {
  const machine = isMachine(p);
  const notAllowed = requested.filter(
    (s) => !allowed.includes(s) || (machine ? !p.scopes.includes(s) : (PERMISSIONS as readonly string[]).includes(s) && !hasPermission(p, s)),
  );
  return notAllowed.length === 0 ? { ok: true } : { ok: false, notAllowed };
}
