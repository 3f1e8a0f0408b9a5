/**
 * A real local HTTP server that answers the parts of Auth0 that Latchkey uses: the
 * client-credentials token endpoint and the Management API v2 endpoints for clients,
 * client grants and users, with Auth0's status codes and body shapes. State lives in
 * memory; controls let tests inject failures (429 with rate-limit headers, 5xx, delays)
 * and inspect what was asked. The request log never records bodies or headers, so no
 * secret or token ends up in it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface FakeAuth0Options {
  /** The tenant domain the SDK is configured with; it appears in the token audience. */
  domain: string;
  /** Credentials of the Management API client (the M2M app Latchkey runs as). */
  clientId: string;
  clientSecret: string;
  /** Lifetime of issued Management API tokens (Auth0's default is 24 h). */
  tokenLifetimeS?: number;
  /** Audiences (API identifiers) that client grants may name. */
  resourceServers?: string[];
  /** Database connections users may be created in. */
  connections?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

export interface FakeClient {
  client_id: string;
  client_secret: string;
  name: string;
  app_type: string | undefined;
  grant_types: string[];
  token_endpoint_auth_method: string;
  client_metadata: Record<string, string>;
}

export interface FakeGrant {
  id: string;
  client_id: string;
  audience: string;
  scope: string[];
}

/** A stored user, in Auth0's JSON shape. */
export type FakeUser = Record<string, unknown> & { user_id: string; email: string; created_at: string };

interface Failure {
  remaining: number;
  status: number;
  headers: Record<string, string>;
  body: unknown;
  matches: (method: string, path: string) => boolean;
}

interface FailOptions {
  /** Only requests whose path matches fail (default: every `/api/v2/` request). */
  path?: string | RegExp;
  method?: string;
  /** Body to answer instead of Auth0's standard error body for the status. */
  body?: unknown;
}

export interface FakeAuth0Management {
  /** Origin to send the SDK's `https://<domain>` requests to. */
  readonly origin: string;
  readonly domain: string;
  readonly clients: Map<string, FakeClient>;
  readonly grants: FakeGrant[];
  readonly users: Map<string, FakeUser>;
  /** Every request, oldest first: method, path, parsed query and answered status. */
  readonly requests: RecordedRequest[];
  /** Raw `q` values received by `GET /api/v2/users`, to assert escaping. */
  readonly userSearches: string[];
  /** Number of client-credentials exchanges for the Management API. */
  readonly managementTokenRequests: number;
  /** Password a user was created with (test-only; Auth0 never reveals it). */
  passwordOf(userId: string): string | undefined;
  /** The next `n` matching requests are answered with `status` (and Auth0's error body). */
  failNext(n: number, status: number, headers?: Record<string, string>, options?: FailOptions): void;
  /** The next `n` `/api/v2/` requests are answered only after `ms`. */
  delayNext(n: number, ms: number): void;
  /** Invalidates every issued token, as if the signing key had been rotated. */
  revokeTokens(): void;
  /** Adds a user directly (e.g. with `last_login` or odd metadata). */
  seedUser(user: Partial<FakeUser> & { email: string }): FakeUser;
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

const DEFAULT_ERROR: Record<number, { message: string; errorCode?: string }> = {
  400: { message: 'Payload validation error', errorCode: 'invalid_body' },
  401: { message: 'Invalid token' },
  403: { message: 'Insufficient scope', errorCode: 'insufficient_scope' },
  404: { message: 'Not Found', errorCode: 'inexistent_resource' },
  409: { message: 'Conflict', errorCode: 'conflict' },
  429: { message: 'Global limit has been reached', errorCode: 'too_many_requests' },
};

/** Auth0's error body for the Management API. */
function apiError(status: number, message?: string, errorCode?: string): Record<string, unknown> {
  const fallback = DEFAULT_ERROR[status];
  const body: Record<string, unknown> = {
    statusCode: status,
    error: STATUS_TEXT[status] ?? 'Error',
    message: message ?? fallback?.message ?? STATUS_TEXT[status] ?? 'Error',
  };
  const code = errorCode ?? fallback?.errorCode;
  if (code) body['errorCode'] = code;
  return body;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

const fail = (status: number, message?: string, errorCode?: string): never => {
  throw new HttpError(status, apiError(status, message, errorCode));
};

const id = (bytes: number) => randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
const nowIso = () => new Date().toISOString();
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Auth0's default "good" password policy: 8+ characters, three of four character classes. */
function passwordIsStrongEnough(password: string): boolean {
  if (password.length < 8) return false;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length;
  return classes >= 3;
}

// ---------------------------------------------------------------------------------------------
// A small Lucene subset, enough for Auth0 v3 user search as Latchkey uses it:
//   expr := and (['OR'] and)* ; and := unary ('AND' unary)*
//   unary := 'NOT' unary | '(' expr ')' | [field ':'] (phrase | word)
// Default operator is OR, as in Lucene, so a query broken by bad escaping widens the result.
// ---------------------------------------------------------------------------------------------
type Node =
  | { kind: 'and' | 'or'; items: Node[] }
  | { kind: 'not'; item: Node }
  | { kind: 'term'; field: string | undefined; value: string; phrase: boolean };

class QueryError extends Error {}

function parseQuery(q: string): Node {
  let i = 0;
  const skipWs = () => {
    while (i < q.length && /\s/.test(q[i] ?? '')) i++;
  };
  const peekWord = (word: string) => {
    skipWs();
    return q.startsWith(word, i) && (i + word.length === q.length || /[\s(]/.test(q[i + word.length] ?? ''));
  };
  const readPhrase = (): string => {
    i++; // opening quote
    let out = '';
    while (i < q.length) {
      const c = q[i] as string;
      if (c === '\\') {
        if (i + 1 >= q.length) throw new QueryError('dangling escape');
        out += q[i + 1];
        i += 2;
        continue;
      }
      if (c === '"') {
        i++;
        return out;
      }
      out += c;
      i++;
    }
    throw new QueryError('unterminated phrase');
  };
  const readWord = (): string => {
    let out = '';
    while (i < q.length && !/[\s()":]/.test(q[i] ?? '')) {
      if (q[i] === '\\' && i + 1 < q.length) {
        out += q[i + 1];
        i += 2;
        continue;
      }
      out += q[i];
      i++;
    }
    if (!out) throw new QueryError(`unexpected character at ${i}`);
    return out;
  };
  const unary = (): Node => {
    skipWs();
    if (peekWord('NOT')) {
      i += 3;
      return { kind: 'not', item: unary() };
    }
    if (q[i] === '(') {
      i++;
      const inner = expr();
      skipWs();
      if (q[i] !== ')') throw new QueryError('missing )');
      i++;
      return inner;
    }
    if (q[i] === '"') return { kind: 'term', field: undefined, value: readPhrase(), phrase: true };
    const word = readWord();
    if (q[i] === ':') {
      i++;
      if (q[i] === '"') return { kind: 'term', field: word, value: readPhrase(), phrase: true };
      return { kind: 'term', field: word, value: readWord(), phrase: false };
    }
    return { kind: 'term', field: undefined, value: word, phrase: false };
  };
  const and = (): Node => {
    const items: Node[] = [unary()];
    while (peekWord('AND')) {
      i += 3;
      items.push(unary());
    }
    return items.length === 1 ? (items[0] as Node) : { kind: 'and', items };
  };
  const expr = (): Node => {
    const items: Node[] = [and()];
    for (;;) {
      skipWs();
      if (i >= q.length || q[i] === ')') break;
      // An explicit OR, or juxtaposed terms (Lucene's default operator is OR).
      if (peekWord('OR')) i += 2;
      items.push(and());
    }
    return items.length === 1 ? (items[0] as Node) : { kind: 'or', items };
  };
  const node = expr();
  skipWs();
  if (i !== q.length) throw new QueryError(`unexpected input at ${i}`);
  return node;
}

/** Normalized fields match case-insensitively; metadata fields are case-sensitive (as in Auth0). */
const CASE_INSENSITIVE = new Set(['email', 'name', 'given_name', 'family_name', 'nickname']);

function fieldValues(user: FakeUser, field: string): unknown[] {
  let values: unknown[] = [user];
  for (const part of field.split('.')) {
    values = values.flatMap((v) => (Array.isArray(v) ? v : [v])).flatMap((v) => (isRecord(v) && part in v ? [v[part]] : []));
  }
  return values.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

function matches(node: Node, user: FakeUser): boolean {
  switch (node.kind) {
    case 'and':
      return node.items.every((n) => matches(n, user));
    case 'or':
      return node.items.some((n) => matches(n, user));
    case 'not':
      return !matches(node.item, user);
    case 'term': {
      if (node.field === undefined) {
        // A term without a field searches the normalized profile fields, not metadata.
        const needle = node.value.toLowerCase();
        return ['email', 'name', 'nickname'].some((f) => String(user[f] ?? '').toLowerCase().includes(needle));
      }
      const values = fieldValues(user, node.field);
      if (!node.phrase && node.value === '*') return values.length > 0;
      const ci = CASE_INSENSITIVE.has(node.field);
      return values.some((v) => {
        if (v === null || typeof v === 'object') return false;
        const s = String(v);
        return ci ? s.toLowerCase() === node.value.toLowerCase() : s === node.value;
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined || status === 204) {
    res.writeHead(status, headers).end();
    return;
  }
  if (typeof body === 'string') {
    // Raw text, e.g. an HTML error page from a proxy in front of Auth0.
    res.writeHead(status, { 'content-type': 'text/html', ...headers }).end(body);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export async function startFakeAuth0Management(options: FakeAuth0Options): Promise<FakeAuth0Management> {
  const tokenLifetimeS = options.tokenLifetimeS ?? 86_400;
  const resourceServers = new Set(options.resourceServers ?? []);
  const connections = new Set(options.connections ?? ['Username-Password-Authentication']);
  const managementAudience = `https://${options.domain}/api/v2/`;

  const clients = new Map<string, FakeClient>();
  const grants: FakeGrant[] = [];
  const users = new Map<string, FakeUser>();
  const passwords = new Map<string, string>();
  const tokens = new Map<string, number>(); // token -> expiry (ms)
  const requests: RecordedRequest[] = [];
  const userSearches: string[] = [];
  const failures: Failure[] = [];
  const delays: { remaining: number; ms: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let managementTokenRequests = 0;

  const rateLimitHeaders = (): Record<string, string> => ({
    'x-ratelimit-limit': '2',
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 1),
  });

  function clientJson(c: FakeClient, withSecret: boolean): Record<string, unknown> {
    return {
      tenant: 'fake-tenant',
      global: false,
      is_token_endpoint_ip_header_trusted: false,
      name: c.name,
      is_first_party: true,
      oidc_conformant: true,
      sso_disabled: false,
      cross_origin_authentication: false,
      callbacks: [],
      allowed_origins: [],
      client_id: c.client_id,
      ...(withSecret ? { client_secret: c.client_secret } : {}),
      app_type: c.app_type,
      grant_types: c.grant_types,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      client_metadata: c.client_metadata,
      jwt_configuration: { alg: 'RS256', lifetime_in_seconds: 36000, secret_encoded: false },
      custom_login_page_on: true,
    };
  }

  function validateClientMetadata(value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (!isRecord(value)) fail(400, 'Payload validation error: \'Expected type object but found type array\' on property client_metadata.');
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > 10) fail(400, 'Payload validation error: \'Too many properties defined (11), maximum 10\' on property client_metadata.');
    for (const [key, v] of entries) {
      if (typeof v !== 'string') {
        fail(400, `Payload validation error: 'Expected type string but found type ${v === null ? 'null' : typeof v}' on property client_metadata.${key}.`);
      }
      if (key.length > 255 || (v as string).length > 255) fail(400, `Payload validation error: 'String is too long' on property client_metadata.${key}.`);
    }
    return value as Record<string, string>;
  }

  function createUser(body: Record<string, unknown>): FakeUser {
    const connection = body['connection'];
    if (typeof connection !== 'string') fail(400, "Payload validation error: 'Missing required property: connection'.");
    if (!connections.has(connection as string)) fail(400, 'The connection does not exist.', 'inexistent_connection');
    const email = body['email'];
    if (typeof email !== 'string') fail(400, "Payload validation error: 'Missing required property: email'.");
    if (!/^[^\s@"\\]+@[^\s@"\\]+\.[^\s@"\\]+$/.test(email as string)) {
      fail(400, "Payload validation error: 'Object didn't pass validation for format email: " + String(email) + "' on property email (The user's email).");
    }
    const password = body['password'];
    if (typeof password !== 'string') fail(400, "Payload validation error: 'Missing required property: password'.");
    if (!passwordIsStrongEnough(password as string)) fail(400, 'PasswordStrengthError: Password is too weak', 'invalid_password');
    if ((password as string).length > 72) fail(400, 'PasswordStrengthError: Password is too long', 'invalid_password');
    for (const key of ['app_metadata', 'user_metadata'] as const) {
      if (body[key] !== undefined && !isRecord(body[key])) fail(400, `Payload validation error: 'Expected type object' on property ${key}.`);
    }
    const lower = (email as string).toLowerCase();
    for (const u of users.values()) {
      const ident = (u['identities'] as { connection: string }[] | undefined)?.[0];
      if (u.email === lower && ident?.connection === connection) fail(409, 'The user already exists.', 'auth0_idp_error');
    }
    const hex = randomBytes(12).toString('hex');
    const created = nowIso();
    const user: FakeUser = {
      created_at: created,
      email: lower,
      email_verified: body['email_verified'] === true,
      identities: [{ connection, user_id: hex, provider: 'auth0', isSocial: false }],
      name: typeof body['name'] === 'string' ? body['name'] : lower,
      nickname: lower.split('@')[0],
      picture: 'https://s.gravatar.com/avatar/00000000000000000000000000000000?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fdefault.png',
      updated_at: created,
      user_id: `auth0|${hex}`,
      ...(isRecord(body['app_metadata']) && Object.keys(body['app_metadata']).length ? { app_metadata: body['app_metadata'] } : {}),
      user_metadata: isRecord(body['user_metadata']) ? body['user_metadata'] : {},
      ...(typeof body['blocked'] === 'boolean' ? { blocked: body['blocked'] } : {}),
    };
    users.set(user.user_id, user);
    passwords.set(user.user_id, password as string);
    return user;
  }

  /** Auth0 merges metadata objects at the top level; a `null` value removes the key. */
  function mergeMetadata(current: unknown, patch: unknown): Record<string, unknown> {
    const merged: Record<string, unknown> = { ...(isRecord(current) ? current : {}) };
    if (!isRecord(patch)) return merged;
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    return merged;
  }

  function updateUser(user: FakeUser, body: Record<string, unknown>): FakeUser {
    if (Object.keys(body).length === 0) fail(400, "Payload validation error: 'Too few properties defined (0), minimum 1'.");
    if (body['blocked'] !== undefined && typeof body['blocked'] !== 'boolean') fail(400, "Payload validation error: 'Expected type boolean' on property blocked.");
    if (body['name'] !== undefined && body['name'] !== null && typeof body['name'] !== 'string') {
      fail(400, "Payload validation error: 'Expected type string' on property name.");
    }
    for (const key of ['app_metadata', 'user_metadata'] as const) {
      if (body[key] !== undefined && body[key] !== null && !isRecord(body[key])) fail(400, `Payload validation error: 'Expected type object' on property ${key}.`);
    }
    if (typeof body['blocked'] === 'boolean') user['blocked'] = body['blocked'];
    if (typeof body['name'] === 'string') user['name'] = body['name'];
    if (body['app_metadata'] !== undefined) {
      const merged = mergeMetadata(user['app_metadata'], body['app_metadata']);
      if (Object.keys(merged).length) user['app_metadata'] = merged;
      else delete user['app_metadata'];
    }
    if (body['user_metadata'] !== undefined) user['user_metadata'] = mergeMetadata(user['user_metadata'], body['user_metadata']);
    user['updated_at'] = nowIso();
    return user;
  }

  /**
   * `GET /api/v2/clients`: `page` (0-based), `per_page` (default 50, at most 100), `include_totals`
   * (`{ start, limit, length, total, clients }`, else a bare array), `fields` + `include_fields`.
   * Secrets are left out, as when the token lacks `read:client_keys`.
   */
  function listClients(query: URLSearchParams): unknown {
    const page = Number(query.get('page') ?? '0');
    const perPage = Number(query.get('per_page') ?? '50');
    if (!Number.isInteger(page) || page < 0) fail(400, "Query validation error: 'Expected type integer' on property page.", 'invalid_query_string');
    if (!Number.isInteger(perPage) || perPage < 0 || perPage > 100) {
      fail(400, "Query validation error: 'Value must be less than or equal to 100' on property per_page.", 'invalid_query_string');
    }
    const fields = query.get('fields')?.split(',').filter(Boolean);
    const include = query.get('include_fields') !== 'false';
    const shape = (c: FakeClient) => {
      const json = clientJson(c, false);
      if (!fields) return json;
      return Object.fromEntries(Object.entries(json).filter(([k]) => fields.includes(k) === include));
    };
    const all = [...clients.values()];
    const start = page * perPage;
    const slice = all.slice(start, start + perPage).map(shape);
    if (query.get('include_totals') === 'true') return { start, limit: perPage, length: slice.length, total: all.length, clients: slice };
    return slice;
  }

  function listUsers(query: URLSearchParams): unknown {
    const q = query.get('q');
    if (q !== null) userSearches.push(q);
    const engine = query.get('search_engine');
    if (q !== null && engine !== 'v3') fail(400, 'You must specify search_engine=v3 to search users.', 'invalid_query_string');
    const page = Number(query.get('page') ?? '0');
    const perPage = Number(query.get('per_page') ?? '50');
    if (!Number.isInteger(page) || page < 0) fail(400, "Query validation error: 'Expected type integer' on property page.", 'invalid_query_string');
    if (!Number.isInteger(perPage) || perPage < 0 || perPage > 100) {
      fail(400, "Query validation error: 'Value must be less than or equal to 100' on property per_page.", 'invalid_query_string');
    }
    if (page * perPage + perPage > 1000) {
      fail(400, 'You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation', 'invalid_paging');
    }
    let selected = [...users.values()];
    if (q !== null && q !== '') {
      let node: Node;
      try {
        node = parseQuery(q);
      } catch (err) {
        return fail(400, `Query validation error: ${(err as Error).message}`, 'invalid_query_string');
      }
      selected = selected.filter((u) => matches(node, u));
    }
    const sort = query.get('sort');
    if (sort) {
      const m = /^([a-z_.]+):(1|-1)$/.exec(sort);
      if (!m) fail(400, "Query validation error: 'String does not match pattern' on property sort.", 'invalid_query_string');
      const [, field, dir] = m as RegExpExecArray;
      selected = selected
        .map((u, index) => ({ u, index }))
        .sort((a, b) => {
          const av = String(a.u[field as string] ?? '');
          const bv = String(b.u[field as string] ?? '');
          return (av < bv ? -1 : av > bv ? 1 : a.index - b.index) * (dir === '-1' ? -1 : 1);
        })
        .map(({ u }) => u);
    }
    const start = page * perPage;
    const slice = selected.slice(start, start + perPage);
    if (query.get('include_totals') === 'true') {
      return { start, limit: perPage, length: slice.length, total: selected.length, users: slice };
    }
    return slice;
  }

  function checkBearer(req: IncomingMessage): void {
    const header = req.headers.authorization;
    if (!header) throw new HttpError(401, { ...apiError(401, 'Missing authentication'), attributes: { error: 'Missing authentication' } });
    const match = /^Bearer (.+)$/.exec(header);
    const expiry = match ? tokens.get(match[1] as string) : undefined;
    if (expiry === undefined) throw new HttpError(401, { ...apiError(401, 'Invalid token'), attributes: { error: 'Invalid token' } });
    if (expiry <= Date.now()) throw new HttpError(401, { ...apiError(401, 'Expired token received for JSON Web Token validation'), attributes: { error: 'Expired token received for JSON Web Token validation' } });
  }

  async function token(req: IncomingMessage): Promise<[number, unknown]> {
    const raw = await readBody(req);
    const type = req.headers['content-type'] ?? '';
    let params: Record<string, string>;
    if (type.includes('application/json')) {
      try {
        const parsed: unknown = JSON.parse(raw);
        params = isRecord(parsed) ? Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)])) : {};
      } catch {
        return [400, { error: 'invalid_request', error_description: 'Invalid JSON body' }];
      }
    } else {
      params = Object.fromEntries(new URLSearchParams(raw));
    }
    let { client_id: clientId, client_secret: clientSecret } = params;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      clientId = decodeURIComponent(decoded.slice(0, colon));
      clientSecret = decodeURIComponent(decoded.slice(colon + 1));
    }
    if (params['grant_type'] !== 'client_credentials') {
      return [403, { error: 'unauthorized_client', error_description: 'Grant type not allowed for the client.' }];
    }
    if (clientId !== options.clientId || clientSecret === undefined || !safeEqual(clientSecret, options.clientSecret)) {
      return [401, { error: 'access_denied', error_description: 'Unauthorized' }];
    }
    if (params['audience'] !== managementAudience) {
      return [403, { error: 'access_denied', error_description: `Service not enabled within domain: ${params['audience'] ?? ''}` }];
    }
    managementTokenRequests++;
    const accessToken = `fake-mgmt-${id(24)}`;
    tokens.set(accessToken, Date.now() + tokenLifetimeS * 1000);
    return [200, { access_token: accessToken, scope: 'read:clients create:clients delete:clients update:client_keys create:client_grants read:users create:users update:users delete:users', expires_in: tokenLifetimeS, token_type: 'Bearer' }];
  }

  async function managementApi(req: IncomingMessage, path: string, query: URLSearchParams): Promise<[number, unknown]> {
    checkBearer(req);
    const method = req.method ?? 'GET';
    const raw = method === 'GET' || method === 'DELETE' ? '' : await readBody(req);
    let body: Record<string, unknown> = {};
    if (raw) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        return fail(400, 'Invalid request payload JSON format', 'invalid_body');
      }
      if (!isRecord(parsed)) return fail(400, "Payload validation error: 'Expected type object'.", 'invalid_body');
      body = parsed;
    }
    const segments = path.slice('/api/v2/'.length).split('/').map((s) => decodeURIComponent(s));
    const [resource, resourceId, action] = segments;

    if (resource === 'clients') {
      if (method === 'POST' && resourceId === undefined) {
        const name = body['name'];
        if (typeof name !== 'string' || name.length === 0) fail(400, "Payload validation error: 'Missing required property: name'.");
        if (/[<>]/.test(name as string)) fail(400, "Payload validation error: 'String does not match pattern ^[^<>]+$' on property name.");
        const authMethod = body['token_endpoint_auth_method'] ?? 'client_secret_post';
        if (!['none', 'client_secret_post', 'client_secret_basic'].includes(String(authMethod))) fail(400, 'Payload validation error on property token_endpoint_auth_method.');
        const client: FakeClient = {
          client_id: id(24).slice(0, 32),
          client_secret: id(48),
          name: name as string,
          app_type: typeof body['app_type'] === 'string' ? body['app_type'] : undefined,
          grant_types: Array.isArray(body['grant_types']) ? (body['grant_types'] as string[]) : ['authorization_code', 'implicit', 'refresh_token', 'client_credentials'],
          token_endpoint_auth_method: String(authMethod),
          client_metadata: validateClientMetadata(body['client_metadata']),
        };
        clients.set(client.client_id, client);
        return [201, clientJson(client, true)];
      }
      if (method === 'GET' && resourceId === undefined) return [200, listClients(query)];
      const client = resourceId === undefined ? undefined : clients.get(resourceId);
      if (method === 'POST' && action === 'rotate-secret') {
        if (!client) return fail(404, 'The client does not exist', 'inexistent_client');
        client.client_secret = id(48);
        return [200, clientJson(client, true)];
      }
      if (method === 'GET' && resourceId !== undefined && action === undefined) {
        if (!client) return fail(404, 'The client does not exist', 'inexistent_client');
        return [200, clientJson(client, true)];
      }
      if (method === 'DELETE' && resourceId !== undefined && action === undefined) {
        // Assumption: Auth0 answers 404 for an unknown client id (it answers 204 for unknown users).
        if (!client) return fail(404, 'The client does not exist', 'inexistent_client');
        clients.delete(client.client_id);
        for (let i = grants.length - 1; i >= 0; i--) if (grants[i]?.client_id === client.client_id) grants.splice(i, 1);
        return [204, undefined];
      }
    }

    if (resource === 'client-grants' && method === 'POST' && resourceId === undefined) {
      const { client_id: clientId, audience, scope } = body;
      if (typeof clientId !== 'string') fail(400, "Payload validation error: 'Missing required property: client_id'.");
      if (typeof audience !== 'string') fail(400, "Payload validation error: 'Missing required property: audience'.");
      if (!Array.isArray(scope) || scope.some((s) => typeof s !== 'string')) fail(400, "Payload validation error: 'Missing required property: scope'.");
      if (!clients.has(clientId as string)) fail(404, 'Client not found', 'inexistent_client');
      if (!resourceServers.has(audience as string)) fail(404, 'No resource server found by specified audience', 'inexistent_resource_server');
      if (grants.some((g) => g.client_id === clientId && g.audience === audience)) fail(409, 'A resource server grant already exists for this client', 'conflict');
      const grant: FakeGrant = { id: `cgr_${id(12).slice(0, 16)}`, client_id: clientId as string, audience: audience as string, scope: scope as string[] };
      grants.push(grant);
      return [201, grant];
    }

    if (resource === 'users') {
      if (resourceId === undefined) {
        if (method === 'POST') return [201, createUser(body)];
        if (method === 'GET') return [200, listUsers(query)];
      } else if (action === undefined) {
        const user = users.get(resourceId);
        if (method === 'DELETE') {
          // Auth0 answers 204 whether or not the user existed.
          users.delete(resourceId);
          passwords.delete(resourceId);
          return [204, undefined];
        }
        if (!user) return fail(404, 'The user does not exist.', 'inexistent_user');
        if (method === 'GET') return [200, user];
        if (method === 'PATCH') return [200, updateUser(user, body)];
      }
    }
    return fail(404, 'Not Found');
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), status: 0 };
    requests.push(record);
    const reply = (status: number, body?: unknown, headers?: Record<string, string>) => {
      record.status = status;
      if (!res.destroyed) send(res, status, body, headers);
    };
    const isApi = url.pathname.startsWith('/api/v2/');

    const failure = failures.find((f) => f.remaining > 0 && f.matches(method, url.pathname));
    if (failure) {
      failure.remaining--;
      // Drain the body so keep-alive connections stay usable.
      req.resume();
      reply(failure.status, failure.body, failure.headers);
      return;
    }

    const handle = async () => {
      try {
        if (method === 'POST' && url.pathname === '/oauth/token') {
          const [status, body] = await token(req);
          reply(status, body);
        } else if (isApi) {
          const [status, body] = await managementApi(req, url.pathname, url.searchParams);
          reply(status, body);
        } else {
          reply(404, apiError(404, 'Not Found'));
        }
      } catch (err) {
        if (err instanceof HttpError) reply(err.status, err.body, err.headers);
        else reply(500, apiError(500, 'Internal Server Error'));
      }
    };
    const delay = isApi ? delays.find((d) => d.remaining > 0) : undefined;
    if (delay) {
      delay.remaining--;
      const timer = setTimeout(() => {
        timers.delete(timer);
        void handle();
      }, delay.ms);
      timers.add(timer);
      return;
    }
    void handle();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    domain: options.domain,
    clients,
    grants,
    users,
    requests,
    userSearches,
    get managementTokenRequests() {
      return managementTokenRequests;
    },
    passwordOf: (userId) => passwords.get(userId),
    failNext(n, status, headers, failOptions = {}) {
      const pathFilter = failOptions.path ?? /^\/api\/v2\//;
      failures.push({
        remaining: n,
        status,
        headers: { ...(status === 429 ? rateLimitHeaders() : {}), ...headers },
        body: failOptions.body ?? apiError(status),
        matches: (method, path) =>
          (failOptions.method === undefined || failOptions.method === method) &&
          (typeof pathFilter === 'string' ? path === pathFilter : pathFilter.test(path)),
      });
    },
    delayNext(n, ms) {
      delays.push({ remaining: n, ms });
    },
    revokeTokens() {
      tokens.clear();
    },
    seedUser(partial) {
      const hex = randomBytes(12).toString('hex');
      const created = nowIso();
      const user: FakeUser = {
        created_at: created,
        updated_at: created,
        user_id: `auth0|${hex}`,
        identities: [{ connection: 'Username-Password-Authentication', user_id: hex, provider: 'auth0', isSocial: false }],
        name: partial.email,
        email_verified: false,
        ...partial,
        email: partial.email.toLowerCase(),
      } as FakeUser;
      users.set(user.user_id, user);
      return user;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Exposed so tests can check that the fake's query evaluator would widen an unescaped query. */
export function evaluateUserQuery(q: string, user: FakeUser): boolean {
  return matches(parseQuery(q), user);
}
