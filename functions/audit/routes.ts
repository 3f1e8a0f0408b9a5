/**
 * Reading the audit trail: a tenant's events and their chain check for its admins (`audit:read`)
 * and operators; every tenant's events for operators only. Newest first.
 */
import { z } from 'zod';
import { AUDIT_ACTIONS, AuditCursorError, type AuditEvent, type AuditLog, type AuditQuery } from '../core/audit.js';
import { hasPermission } from '../core/permissions.js';
import { TENANT_ID_PATTERN } from '../core/tenant-id.js';
import { parse, type ApiRequest, type Route } from '../http/api-handler.js';
import { actingTenant, requirePermission } from '../http/guards.js';
import { badRequest, forbidden, notFound } from '../http/problem.js';

export interface AuditRoutesDeps {
  audit: AuditLog;
}

const isoTime = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());
export const auditQuery = z.strictObject({
  from: isoTime.optional(),
  to: isoTime.optional(),
  action: z.enum(AUDIT_ACTIONS).optional(),
  actor: z.string().min(1).max(256).optional(),
  cursor: z.string().max(2048).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

function pathTenant(req: ApiRequest): string {
  const requested = req.path.tenantId ?? '';
  if (!TENANT_ID_PATTERN.test(requested)) throw notFound('the tenant');
  return actingTenant(req.caller, requested);
}

async function page(audit: AuditLog, q: AuditQuery) {
  try {
    const out = await audit.query(q);
    return { status: 200, body: { items: out.items.map(publicEvent), nextCursor: out.cursor ?? null } };
  } catch (err) {
    if (err instanceof AuditCursorError) throw badRequest('the cursor is not valid');
    throw err;
  }
}

/** The event as stored: the chain fields included, so a reader can check the hashes too. */
const publicEvent = (e: AuditEvent) => ({ ...e, tenantId: e.tenantId ?? null });

export function createAuditRoutes(d: AuditRoutesDeps): Route[] {
  return [
    {
      method: 'GET',
      resource: '/tenants/{tenantId}/audit',
      async handle(req) {
        requirePermission(req.caller, 'audit:read');
        const tenantId = pathTenant(req);
        return page(d.audit, { ...parse(auditQuery, req.query, 'query'), tenantId });
      },
    },
    {
      method: 'GET',
      resource: '/tenants/{tenantId}/audit/verify',
      async handle(req) {
        requirePermission(req.caller, 'audit:read');
        return { status: 200, body: await d.audit.verify(pathTenant(req)) };
      },
    },
    {
      method: 'GET',
      resource: '/audit',
      async handle(req) {
        requirePermission(req.caller, 'audit:read');
        // Every tenant's trail: operators only (those who administer tenants).
        if (!hasPermission(req.caller, 'tenants:admin')) throw forbidden('only platform operators may read every tenant\'s trail');
        return page(d.audit, parse(auditQuery, req.query, 'query'));
      },
    },
  ];
}
