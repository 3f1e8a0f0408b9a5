/**
 * The audit trail's place in the frame: which route is which change, and the one wrapper that
 * writes each change's event ahead, runs the route, and seals the event with the outcome; a
 * refused read (403) is recorded too. Routes stay unaware of it.
 */
import { actorOf, type AuditAction, type AuditEvent, type AuditInput, type AuditLog, type AuditOutcome, type AuditTarget } from '../core/audit.js';
import type { Log } from '../core/log.js';
import { resolveTenant } from '../core/permissions.js';
import { isTenantId } from '../core/tenant-id.js';
import type { ApiRequest, ApiResponse, Route } from './api-handler.js';

export interface AuditTrailOptions {
  log: AuditLog;
}

/** Where the request came from, as API Gateway saw it. */
export interface RequestSource {
  sourceIp: string | undefined;
  userAgent: string | undefined;
}

interface Change {
  action: AuditAction;
  /** The tenant whose trail holds the event (undefined: the platform's). */
  tenantId: string | undefined;
  target: AuditTarget;
  details?: AuditInput['details'];
}

const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
/** Field names only: values may be secrets (a password) and are never recorded. Capped: bodies are the caller's. */
const fieldsOf = (body: unknown) =>
  Object.keys(obj(body))
    .sort()
    .slice(0, 20)
    .map((k) => k.slice(0, 64));
/** Scopes or roles as asked (before validation), capped in number and length. */
const listOf = (v: unknown): string[] => (Array.isArray(v) ? v.slice(0, 50).map((x) => String(x).slice(0, 128)) : []);

/** The tenant the request names (path, then query, then body), else the caller's own. */
function namedTenant(req: ApiRequest, fromBody = false): string | undefined {
  const named = req.path.tenantId ?? req.query.tenantId ?? (fromBody ? obj(req.body).tenantId : undefined);
  if (isTenantId(named)) return named;
  const own = resolveTenant(req.caller, undefined);
  return own.ok ? own.tenantId : undefined;
}

/** The change a route makes, or undefined for reads. */
function describeChange(route: Route, req: ApiRequest): Change | undefined {
  const body = obj(req.body);
  const tenantId = namedTenant(req, true);
  const tenant: AuditTarget = { type: 'tenant', id: tenantId ?? '' };
  const key: AuditTarget = { type: 'key', id: req.path.keyId ?? '' };
  const user: AuditTarget = { type: 'user', id: req.path.userId ?? '' };
  switch (`${route.method} ${route.resource}`) {
    case 'POST /tenants':
      return { action: 'tenant.create', tenantId, target: tenant };
    case 'PATCH /tenants/{tenantId}': {
      const action = body.status === 'disabled' ? 'tenant.disable' : body.status === 'active' ? 'tenant.enable' : 'tenant.update';
      const named = (k: 'status' | 'plan', max: number) => (typeof body[k] === 'string' ? { [k]: body[k].slice(0, max) } : {});
      return { action, tenantId, target: tenant, details: { fields: fieldsOf(body), ...named('status', 16), ...named('plan', 32) } };
    }
    case 'DELETE /tenants/{tenantId}':
      return { action: 'tenant.delete', tenantId, target: tenant };
    case 'POST /tenants/{tenantId}/api-keys':
      return { action: 'key.issue', tenantId, target: key, details: { scopes: listOf(body.scopes) } };
    case 'POST /tenants/{tenantId}/api-keys/{keyId}/rotate':
      return { action: 'key.rotate', tenantId, target: key, details: { graceSeconds: typeof body.graceSeconds === 'number' ? body.graceSeconds : 0 } };
    case 'DELETE /tenants/{tenantId}/api-keys/{keyId}':
      return { action: 'key.revoke', tenantId, target: key };
    case 'POST /users':
      return { action: 'user.create', tenantId, target: user, details: { roles: listOf(body.roles) } };
    case 'PATCH /users/{userId}': {
      const action = body.blocked === true ? 'user.block' : body.blocked === false ? 'user.unblock' : body.roles !== undefined ? 'user.roles' : 'user.update';
      return { action, tenantId, target: user, details: { fields: fieldsOf(body), ...(Array.isArray(body.roles) ? { roles: listOf(body.roles) } : {}) } };
    }
    case 'DELETE /users/{userId}':
      return { action: 'user.delete', tenantId, target: user };
    default:
      return undefined;
  }
}

/** One log line per event (what the local stack shows; the deployed stack also sends them to EventBridge). */
function logged(log: Log, e: AuditEvent | undefined): void {
  if (e) log.info('audit event', { action: e.action, outcome: e.outcome, tenantId: e.tenantId, target: `${e.target.type}:${e.target.id}`, actor: e.actor.principalId, seq: e.seq, requestId: e.request.requestId });
}

const outcomeOf = (status: number): AuditOutcome => (status < 400 ? 'success' : status === 403 ? 'refused' : 'failed');

/** The id a create answered with (key or user), else the one the request named. */
function targetAfter(target: AuditTarget, res: ApiResponse): AuditTarget {
  const body = obj(res.body);
  const id = target.type === 'key' ? body.keyId : target.type === 'user' ? body.userId : undefined;
  return typeof id === 'string' && target.id === '' ? { ...target, id } : target;
}

/**
 * Runs the route with its audit event: a change's event is written ahead (if that fails, the
 * change does not start) and sealed with the outcome; a refused read gets one `access` event.
 */
export async function auditedHandle(
  trail: AuditTrailOptions,
  log: Log,
  route: Route,
  req: ApiRequest,
  source: RequestSource,
  statusOf: (err: unknown) => number,
): Promise<ApiResponse> {
  const change = describeChange(route, req);
  const base = {
    actor: actorOf(req.caller),
    request: { requestId: req.requestId, sourceIp: source.sourceIp, userAgent: source.userAgent?.slice(0, 512) },
  };
  const pending = change ? await trail.log.begin({ ...base, ...change, outcome: 'unconfirmed' }) : undefined;
  let res: ApiResponse;
  try {
    res = await route.handle(req);
  } catch (err) {
    const status = statusOf(err);
    try {
      if (pending) logged(log, await trail.log.seal(pending, { outcome: outcomeOf(status), status, target: pending.input.target }));
      else if (status === 403) {
        logged(log, await trail.log.append({ ...base, tenantId: namedTenant(req), action: 'access', target: { type: 'route', id: `${route.method} ${route.resource}` }, outcome: 'refused', status }));
      }
    } catch (auditErr) {
      // The pending event is sealed later as `unconfirmed`; the caller's answer stays the route's.
      log.error('could not write the audit event', { error: String(auditErr), requestId: req.requestId });
    }
    throw err;
  }
  if (pending) {
    try {
      logged(log, await trail.log.seal(pending, { outcome: 'success', status: res.status, target: targetAfter(pending.input.target, res) }));
    } catch (auditErr) {
      // The change is made: answer it. Its pending event cannot be lost (sealed later as `unconfirmed`).
      log.error('could not seal the audit event', { error: String(auditErr), requestId: req.requestId });
    }
  }
  return res;
}
