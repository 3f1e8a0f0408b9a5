/** The authorization rules of `core/permissions.ts`, answered as HTTP problems. */
import { hasPermission, resolveTenant, type Permission } from '../core/permissions.js';
import type { Principal } from '../core/principal.js';
import type { Tenant, TenantStore } from '../core/tenant-store.js';
import { conflict, forbidden, insufficientScope, notFound } from './problem.js';

/** 403 `insufficient-scope` unless the caller holds `perm`. */
export function requirePermission(caller: Principal, perm: Permission): void {
  if (!hasPermission(caller, perm)) throw insufficientScope(perm);
}

/** The tenant a request acts on (`requested` from the path or query), or 403 `forbidden`. */
export function actingTenant(caller: Principal, requested: string | undefined): string {
  const access = resolveTenant(caller, requested);
  if (!access.ok) throw forbidden(access.reason === 'other-tenant' ? 'you cannot act on another tenant' : 'your credentials belong to no tenant');
  return access.tenantId;
}

/** The tenant, if it exists (404) and is active (409). */
export async function activeTenant(store: TenantStore, tenantId: string): Promise<Tenant> {
  const tenant = await store.getTenant(tenantId);
  if (!tenant) throw notFound('the tenant');
  if (tenant.status !== 'active') throw conflict('the tenant is disabled');
  return tenant;
}
