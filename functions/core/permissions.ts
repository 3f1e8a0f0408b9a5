/**
 * Authorization rules of the management API, pure and in one place.
 *
 * A caller holds a permission when a token scope names it (API keys, service tokens, Auth0
 * RBAC `permissions`) or when one of its roles grants it (user tokens). Every tenant-level
 * permission applies only inside the caller's own tenant, except for platform operators.
 */
import type { Principal } from './principal.js';

export const PERMISSIONS = ['tenants:admin', 'keys:read', 'keys:write', 'users:read', 'users:write'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const PLATFORM_ADMIN = 'platform:admin';
export const TENANT_ADMIN = 'tenant:admin';
export const TENANT_MEMBER = 'tenant:member';
/** Roles a tenant may hand its own users; platform roles are never assignable through the API. */
export const TENANT_ROLES = [TENANT_ADMIN, TENANT_MEMBER] as const;

const ROLE_GRANTS: Record<string, readonly Permission[]> = {
  [PLATFORM_ADMIN]: PERMISSIONS,
  [TENANT_ADMIN]: ['keys:read', 'keys:write', 'users:read', 'users:write'],
  [TENANT_MEMBER]: ['users:read'],
};

export function isPlatformAdmin(p: Principal): boolean {
  return p.roles.includes(PLATFORM_ADMIN);
}

export function hasPermission(p: Principal, perm: Permission): boolean {
  if (p.scopes.includes(perm)) return true;
  return p.roles.some((r) => ROLE_GRANTS[r]?.includes(perm) ?? false);
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
 * Scopes a key may be given (issued or rotated): only those the deployment allows for keys, and
 * never more than a machine caller holds itself (an API key on either path, a service token):
 * a key cannot mint or take over a stronger key.
 */
export function grantableScopes(p: Principal, requested: readonly string[], allowed: readonly string[]): { ok: true } | { ok: false; notAllowed: string[] } {
  const machine = p.userId === undefined;
  const notAllowed = requested.filter((s) => !allowed.includes(s) || (machine && !p.scopes.includes(s)));
  return notAllowed.length === 0 ? { ok: true } : { ok: false, notAllowed };
}
