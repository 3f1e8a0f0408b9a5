/**
 * JSON admin API of the local identity provider, for a local IdentityProvider adapter and for
 * shell scripts. Every route needs `Authorization: Bearer <adminToken>` (returned by start).
 * Users are shown in this shape (never with a password):
 *
 *   { user_id, email, name, tenant_id?, roles, blocked, created_at, updated_at }
 *
 *   GET    /local-admin/users?tenant_id=&email=&page=0&per_page=50
 *          -> 200 { users, total, page, per_page }   (page is 0-based, per_page <= 100)
 *   GET    /local-admin/users/:user_id                 -> 200 user | 404
 *   POST   /local-admin/users { email, password, tenant_id?, roles?, name? }
 *          -> 201 user | 400 invalid_input | 409 user_exists
 *   PATCH  /local-admin/users/:user_id { name?, roles?, blocked?, password? } -> 200 user | 404
 *   DELETE /local-admin/users/:user_id                 -> 204 | 404
 *   POST   /local-admin/token { user_id, scope? }      (scope: space-separated API scopes)
 *          -> 200 { access_token, token_type, expires_in } | 404 | 403 user_blocked
 *   GET    /local-admin/clients?tenant_id=&key_id=     -> 200 { clients: [{ client_id, tenant_id, key_id }] }
 *          (clients that carry a tenant and key id; both filters optional)
 *   POST   /local-admin/clients/:client_id/rotate-secret -> 200 { client_id, client_secret } | 404
 *   DELETE /local-admin/clients/:client_id             -> 204 | 404
 *
 * Errors are `{ error: <code>, message }`. `:user_id` contains `|`: percent-encode it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalIdpError, type LocalIdpErrorCode } from './errors.js';
import { BodyError, hasBearer, pathSegments, readJsonObject, sendJson } from './http.js';
import type { LocalUser, UserStore } from './user-store.js';

export const ADMIN_PREFIX = '/local-admin/';

export interface AdminActions {
  adminToken: string;
  users: UserStore;
  issueUserToken(input: { userId: string; scopes?: string[] }): Promise<{ accessToken: string; expiresIn: number }>;
  rotateClientSecret(clientId: string): Promise<{ clientId: string; clientSecret: string }>;
  deleteClient(clientId: string): Promise<boolean>;
  listKeyClients(filter: { tenantId?: string; keyId?: string }): { clientId: string; tenantId: string; keyId: string }[];
}

const STATUS: Record<LocalIdpErrorCode, number> = {
  invalid_input: 400,
  unknown_scope: 400,
  registration_failed: 400,
  user_exists: 409,
  user_not_found: 404,
  client_not_found: 404,
  user_blocked: 403,
  not_running: 503,
};

export function userJson(u: LocalUser): Record<string, unknown> {
  return {
    user_id: u.userId,
    email: u.email,
    name: u.name,
    ...(u.tenantId !== undefined ? { tenant_id: u.tenantId } : {}),
    roles: u.roles,
    blocked: u.blocked,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
  };
}

function intParam(v: string | null, fallback: number): number {
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new LocalIdpError('invalid_input', 'page and per_page must be non-negative integers');
  return n;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new LocalIdpError('invalid_input', `${key} must be a string`);
  return v;
}

export async function handleAdmin(a: AdminActions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  if (!hasBearer(req, a.adminToken)) return sendJson(res, 401, { error: 'unauthorized', message: 'admin bearer token required' }, { 'www-authenticate': 'Bearer' });
  try {
    await route(a, req, res, url);
  } catch (err) {
    if (err instanceof LocalIdpError) return sendJson(res, STATUS[err.code], { error: err.code, message: err.message });
    if (err instanceof BodyError) return sendJson(res, 400, { error: 'invalid_input', message: err.message });
    throw err;
  }
}

async function route(a: AdminActions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const parts = pathSegments(url.pathname.slice(ADMIN_PREFIX.length));
  if (!parts) throw new LocalIdpError('invalid_input', 'malformed percent-encoding in the path');
  const [collection, id, action] = parts;
  const method = req.method ?? 'GET';

  if (collection === 'users' && parts.length === 1) {
    if (method === 'GET') {
      const q = url.searchParams;
      const page = intParam(q.get('page'), 0);
      const perPage = Math.min(intParam(q.get('per_page'), 50) || 50, 100);
      const { users, total } = a.users.list({ tenantId: q.get('tenant_id') ?? undefined, email: q.get('email') ?? undefined, page, perPage });
      return sendJson(res, 200, { users: users.map(userJson), total, page, per_page: perPage });
    }
    if (method === 'POST') {
      const body = await readJsonObject(req);
      const user = a.users.add({
        email: optionalString(body, 'email') ?? '',
        password: optionalString(body, 'password') ?? '',
        tenantId: optionalString(body, 'tenant_id'),
        roles: body['roles'] as string[] | undefined,
        name: optionalString(body, 'name'),
      });
      return sendJson(res, 201, userJson(user));
    }
  }

  if (collection === 'users' && id && parts.length === 2) {
    if (method === 'GET') {
      const user = a.users.get(id);
      return user ? sendJson(res, 200, userJson(user)) : sendJson(res, 404, { error: 'user_not_found', message: 'The user does not exist.' });
    }
    if (method === 'PATCH') {
      const body = await readJsonObject(req);
      const user = a.users.update(id, {
        name: optionalString(body, 'name'),
        roles: body['roles'] as string[] | undefined,
        blocked: body['blocked'] as boolean | undefined,
        password: optionalString(body, 'password'),
      });
      return sendJson(res, 200, userJson(user));
    }
    if (method === 'DELETE') {
      return a.users.delete(id) ? sendJson(res, 204, undefined) : sendJson(res, 404, { error: 'user_not_found', message: 'The user does not exist.' });
    }
  }

  if (collection === 'token' && parts.length === 1 && method === 'POST') {
    const body = await readJsonObject(req);
    const userId = optionalString(body, 'user_id');
    if (!userId) throw new LocalIdpError('invalid_input', 'user_id is required');
    const scope = optionalString(body, 'scope');
    const { accessToken, expiresIn } = await a.issueUserToken({ userId, scopes: scope ? scope.split(' ').filter(Boolean) : [] });
    return sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn });
  }

  if (collection === 'clients' && !id && parts.length === 1 && method === 'GET') {
    const tenantId = url.searchParams.get('tenant_id') ?? undefined;
    const keyId = url.searchParams.get('key_id') ?? undefined;
    const clients = a.listKeyClients({ ...(tenantId !== undefined ? { tenantId } : {}), ...(keyId !== undefined ? { keyId } : {}) });
    return sendJson(res, 200, { clients: clients.map((c) => ({ client_id: c.clientId, tenant_id: c.tenantId, key_id: c.keyId })) });
  }
  if (collection === 'clients' && id && action === 'rotate-secret' && parts.length === 3 && method === 'POST') {
    const { clientId, clientSecret } = await a.rotateClientSecret(id);
    return sendJson(res, 200, { client_id: clientId, client_secret: clientSecret });
  }
  if (collection === 'clients' && id && parts.length === 2 && method === 'DELETE') {
    return (await a.deleteClient(id)) ? sendJson(res, 204, undefined) : sendJson(res, 404, { error: 'client_not_found', message: 'The client does not exist.' });
  }

  return sendJson(res, 404, { error: 'not_found', message: `no route ${method} ${url.pathname}` });
}
