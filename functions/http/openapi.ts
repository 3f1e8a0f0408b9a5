/**
 * The OpenAPI 3.1 document of the management API, generated from the zod schemas the handlers
 * validate requests with (`z.toJSONSchema`, JSON Schema 2020-12 as OpenAPI 3.1 uses), the
 * problem catalogue and the answer shapes below. `npm run openapi` writes it to `openapi.json`;
 * a test fails when the committed file is stale, and another compares its routes with the
 * synthesized REST API's.
 */
import { z } from 'zod';
import { TENANT_ROLES } from '../core/permissions.js';
import { TENANT_ID_PATTERN } from '../core/tenant-id.js';
import * as audit from '../audit/routes.js';
import { AUDIT_ACTIONS } from '../core/audit.js';
import { USAGE_FLUSH_DEFAULTS } from '../core/usage-counter.js';
import * as tenants from '../tenants/routes.js';
import * as users from '../users/routes.js';
import { IDEMPOTENCY_KEY_PATTERN, MAX_BODY_BYTES } from './api-handler.js';
import { CORS_ALLOW_HEADERS } from '../../packages/cdk/src/contract/cors.js';
import { PROBLEM_TYPES, problemTypeUri, type ProblemSlug } from '../../packages/cdk/src/contract/problem-types.js';
import { OPENAPI_PATH } from './public-handler.js';

type Json = Record<string, unknown>;

// Answer shapes. The handlers build these objects; the end-to-end tests validate real answers
// against the document, so a drift between the two fails there.
const timestamp = z.iso.datetime();
const tenant = z.object({
  tenantId: z.string(),
  name: z.string(),
  status: z.enum(['active', 'disabled']),
  createdAt: timestamp,
  updatedAt: timestamp,
  plan: z.string().optional().describe('Usage plan (tier) whose limits apply on the REST API; absent where no plans are deployed.'),
});
const apiKey = z.object({
  keyId: z.string(),
  name: z.string(),
  clientId: z.string(),
  scopes: z.array(z.string()),
  status: z.enum(['active', 'revoked']),
  createdAt: timestamp,
  createdBy: z.string(),
  rotatedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
  previousClients: z
    .array(z.object({ clientId: z.string(), stopsAt: timestamp }))
    .describe('Clients replaced by a rotation with a grace: they keep working until `stopsAt`, then are refused and deleted.'),
});
const apiKeySecret = apiKey.extend({
  clientSecret: z.string().optional().describe('Returned once; absent in a replayed answer (`secretRedacted`).'),
  apiKey: z.string().optional().describe('`lk_…` single-string key; returned once.'),
  secretRedacted: z.literal(true).optional().describe('Set on an `Idempotency-Key` replay: the secret is never stored. Rotate the key if the first answer was lost.'),
});
const user = z.object({
  userId: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  tenantId: z.string(),
  roles: z.array(z.enum(TENANT_ROLES)),
  blocked: z.boolean(),
  emailVerified: z.boolean(),
  createdAt: z.string().nullable(),
  lastLogin: z.string().nullable(),
});
const me = z.object({
  subject: z.string(),
  tenantId: z.string().nullable(),
  userId: z.string().nullable(),
  clientId: z.string().nullable(),
  roles: z.array(z.string()),
  scopes: z.array(z.string()),
  authMethod: z.enum(['jwt', 'api_key']),
});

const keyUsage = z.object({ id: z.string().describe('Key id (`key_…`), or the client id of a caller without a key.'), requests: z.number().int() });
const tenantUsage = z
  .object({
    tenantId: z.string(),
    from: z.string(),
    to: z.string(),
    granularity: z.enum(['day']),
    source: z
      .enum(['gateway', 'counters'])
      .describe("Where the per-day totals come from: `gateway`, what API Gateway served with the tenant's usage key on its current plan (GetUsage; the REST API with usage plans); `counters`, the authorizer's counts."),
    requests: z.number().int().describe('All requests in the range (per-day totals summed).'),
    keys: z.array(keyUsage).describe("Requests per key (or client) over the range, from the authorizer's counts."),
    days: z.array(
      z.object({
        day: z.string(),
        requests: z.number().int().describe('The total of the day, from `source`.'),
        counted: z.number().int().describe("The authorizer's count of the day (it also counts requests the gateway then throttled)."),
        keys: z.array(keyUsage),
      }),
    ),
  })
  .describe(`Usage per UTC day. The authorizer's counts are approximate within its flush interval (USAGE_FLUSH_S, ${USAGE_FLUSH_DEFAULTS.seconds} s).`);

const auditEvent = z.object({
  partition: z.string(),
  seq: z.number().int(),
  at: timestamp,
  eventId: z.string(),
  prevHash: z.string(),
  hash: z.string(),
  tenantId: z.string().nullable(),
  action: z.enum(AUDIT_ACTIONS),
  target: z.object({ type: z.enum(['tenant', 'key', 'user', 'route', 'client']), id: z.string() }),
  actor: z.object({
    principalId: z.string(),
    authMethod: z.enum(['jwt', 'api_key']),
    clientId: z.string().optional(),
    keyId: z.string().optional(),
    userId: z.string().optional(),
    tenantId: z.string().optional(),
  }),
  request: z.object({ requestId: z.string(), sourceIp: z.string().optional(), userAgent: z.string().optional() }),
  outcome: z.string(),
  status: z.number().int().optional(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])).optional(),
});

const SCHEMAS: Record<string, z.ZodType> = {
  TenantUsage: tenantUsage,
  AuditEvent: auditEvent,
  AuditPage: z.object({ items: z.array(auditEvent), nextCursor: z.string().nullable() }),
  AuditVerification: z.object({
    ok: z.boolean(),
    checked: z.number().int(),
    firstSeq: z.number().int().optional(),
    lastSeq: z.number().int().optional(),
    firstBreak: z
      .object({ seq: z.number().int(), eventId: z.string().optional(), reason: z.enum(['hash-mismatch', 'prev-hash-mismatch', 'sequence-gap', 'head-mismatch']) })
      .optional(),
  }),
  Tenant: tenant,
  TenantList: z.object({ items: z.array(tenant), nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last.') }),
  ApiKey: apiKey,
  ApiKeyWithSecret: apiKeySecret,
  ApiKeyList: z.object({ items: z.array(apiKey) }),
  User: user,
  UserList: z.object({ items: z.array(user), page: z.number().int(), perPage: z.number().int(), total: z.number().int() }),
  Me: me,
  CreateTenant: tenants.createTenantBody,
  PatchTenant: tenants.patchTenantBody,
  CreateApiKey: tenants.createKeyBody,
  RotateApiKey: tenants.rotateKeyBody,
  CreateUser: users.createUserBody,
  PatchUser: users.patchUserBody,
};
type SchemaName = keyof typeof SCHEMAS & string;

/** A zod schema as the JSON Schema of what a caller sends (`input`: defaults make fields optional). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
  return rest;
}

const REQUEST_SCHEMAS = new Set(['CreateTenant', 'PatchTenant', 'CreateApiKey', 'CreateUser', 'PatchUser']);

/** Component schemas, with `$ref`s where one named schema holds another. */
function componentSchemas(): Json {
  const out: Json = {};
  for (const io of ['input', 'output'] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(SCHEMAS)) if (REQUEST_SCHEMAS.has(id) === (io === 'input')) registry.add(schema, { id });
    const { schemas } = z.toJSONSchema(registry, { io, target: 'draft-2020-12', unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
    for (const [id, { $schema: _drop, $id: _uri, id: _id, ...rest }] of Object.entries(schemas)) out[id] = rest;
  }
  return out;
}

/** `ValidationErrorProblem` for `validation-error`. */
export const problemSchemaName = (slug: ProblemSlug): string =>
  `${slug
    .split('-')
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')}Problem`;

function problemSchemas(): Json {
  const out: Json = {
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details (`application/problem+json`).',
      required: ['type', 'title'],
      properties: {
        type: { type: 'string', format: 'uri' },
        title: { type: 'string' },
        status: { type: 'integer', minimum: 400, maximum: 599 },
        detail: { type: 'string' },
        instance: { type: 'string', description: 'The request id, as in the access log.' },
      },
    },
  };
  for (const [slug, p] of Object.entries(PROBLEM_TYPES) as [ProblemSlug, (typeof PROBLEM_TYPES)[ProblemSlug]][]) {
    const status = typeof p.status === 'number' ? { const: p.status } : { minimum: p.status === '4XX' ? 400 : 500, maximum: p.status === '4XX' ? 499 : 599 };
    const extra: Json =
      slug === 'validation-error'
        ? { errors: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } } }
        : slug === 'insufficient-scope'
          ? { requiredScope: { type: 'string' } }
          : slug === 'payload-too-large'
            ? { limitBytes: { type: 'integer' } }
            : {};
    out[problemSchemaName(slug)] = {
      description: `${p.title} (${p.status}): ${p.description}`,
      allOf: [{ $ref: '#/components/schemas/Problem' }, { type: 'object', required: ['type'], properties: { type: { const: problemTypeUri(slug) }, status: { type: 'integer', ...status }, ...extra } }],
    };
  }
  return out;
}

/** The problem types that can carry each status code. */
function slugsByStatus(): Map<string, ProblemSlug[]> {
  const by = new Map<string, ProblemSlug[]>();
  for (const [slug, p] of Object.entries(PROBLEM_TYPES) as [ProblemSlug, (typeof PROBLEM_TYPES)[ProblemSlug]][]) {
    by.set(String(p.status), [...(by.get(String(p.status)) ?? []), slug]);
  }
  return by;
}

const RETRY_AFTER = { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } };

/** A response per status code used; `4XX` may be any problem type, `5XX` the server-side ones. */
function problemResponses(used: Set<string>): Json {
  const out: Json = {};
  const by = slugsByStatus();
  for (const status of [...used].sort()) {
    const slugs =
      status === '4XX'
        ? (Object.keys(PROBLEM_TYPES) as ProblemSlug[])
        : status === '5XX'
          ? (Object.keys(PROBLEM_TYPES) as ProblemSlug[]).filter((s) => String(PROBLEM_TYPES[s].status).startsWith('5'))
          : (by.get(status) ?? []);
    const refs = slugs.map((s) => ({ $ref: `#/components/schemas/${problemSchemaName(s)}` }));
    const headers: Json = {};
    if (['409', '429', '503', '5XX'].includes(status)) headers['Retry-After'] = RETRY_AFTER;
    if (status === '401') headers['WWW-Authenticate'] = { description: 'The schemes accepted: Bearer and Basic.', schema: { type: 'string' } };
    out[`Problem${status}`] = {
      description: status === '4XX' ? 'Any other client error' : slugs.map((s) => `\`${s}\`: ${PROBLEM_TYPES[s].title}`).join('; '),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: { 'application/problem+json': { schema: refs.length === 1 ? refs[0] : { oneOf: refs } } },
    };
  }
  return out;
}

interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  operationId: string;
  summary: string;
  /** The permission the handler requires, for the description. */
  permission?: string;
  query?: z.ZodObject;
  body?: SchemaName;
  /** The body may be left out (its fields have defaults). */
  bodyOptional?: boolean;
  ok: { status: number; schema?: SchemaName; description: string; location?: boolean; csv?: string };
  /** Statuses of problems this operation answers itself, besides those every route can answer. */
  problems: number[];
}

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/tenants/{tenantId}/audit', operationId: 'listTenantAudit', summary: "The tenant's audit trail, newest first, filtered and paginated by cursor", permission: 'audit:read', query: audit.auditQuery, ok: { status: 200, schema: 'AuditPage', description: 'A page of events' }, problems: [400, 404] },
  { method: 'get', path: '/tenants/{tenantId}/audit/verify', operationId: 'verifyTenantAudit', summary: "Recompute the tenant's hash chain and report the first break", permission: 'audit:read', ok: { status: 200, schema: 'AuditVerification', description: 'The verification' }, problems: [404] },
  { method: 'get', path: '/audit', operationId: 'listAudit', summary: "Every tenant's audit trail (platform operators)", permission: 'audit:read', query: audit.auditQuery, ok: { status: 200, schema: 'AuditPage', description: 'A page of events' }, problems: [400] },
  { method: 'post', path: '/tenants', operationId: 'createTenant', summary: 'Create a tenant', permission: 'tenants:admin', body: 'CreateTenant', ok: { status: 201, schema: 'Tenant', description: 'Created', location: true }, problems: [400, 409] },
  { method: 'get', path: '/tenants', operationId: 'listTenants', summary: 'List tenants, paginated by cursor', permission: 'tenants:admin', query: tenants.listQuery, ok: { status: 200, schema: 'TenantList', description: 'A page of tenants' }, problems: [400] },
  { method: 'get', path: '/tenants/{tenantId}', operationId: 'getTenant', summary: 'Read a tenant (operators, or any caller of that tenant)', ok: { status: 200, schema: 'Tenant', description: 'The tenant' }, problems: [404] },
  { method: 'patch', path: '/tenants/{tenantId}', operationId: 'updateTenant', summary: 'Rename, disable or re-enable a tenant, or move it to another usage plan', permission: 'tenants:admin', body: 'PatchTenant', ok: { status: 200, schema: 'Tenant', description: 'The updated tenant' }, problems: [400, 404, 409] },
  { method: 'delete', path: '/tenants/{tenantId}', operationId: 'deleteTenant', summary: 'Disable a tenant and revoke all its keys', permission: 'tenants:admin', ok: { status: 204, description: 'Disabled' }, problems: [404] },
  {
    method: 'get',
    path: '/tenants/{tenantId}/usage',
    operationId: 'getTenantUsage',
    summary: "The tenant's requests per day, in total and per key (JSON, or CSV with Accept: text/csv)",
    permission: 'keys:read',
    query: tenants.usageQuery as unknown as z.ZodObject,
    ok: { status: 200, schema: 'TenantUsage', description: 'Usage per day', csv: 'RFC 4180 CSV with a header row: `day,tenant_id,key_id,requests`; `key_id` `*` is the tenant total of the day.' },
    problems: [400, 404],
  },
  { method: 'post', path: '/tenants/{tenantId}/api-keys', operationId: 'createApiKey', summary: 'Issue an API key (the secret is returned once)', permission: 'keys:write', body: 'CreateApiKey', ok: { status: 201, schema: 'ApiKeyWithSecret', description: 'Issued', location: true }, problems: [400, 404, 409] },
  { method: 'get', path: '/tenants/{tenantId}/api-keys', operationId: 'listApiKeys', summary: "List the tenant's API keys (never secrets)", permission: 'keys:read', ok: { status: 200, schema: 'ApiKeyList', description: 'The keys' }, problems: [404] },
  { method: 'post', path: '/tenants/{tenantId}/api-keys/{keyId}/rotate', operationId: 'rotateApiKey', summary: 'Rotate an API key: a successor client and secret; the old one stops when the grace ends (default at once), within the revocation bound', permission: 'keys:write', body: 'RotateApiKey', bodyOptional: true, ok: { status: 200, schema: 'ApiKeyWithSecret', description: 'Rotated' }, problems: [400, 403, 404, 409] },
  { method: 'delete', path: '/tenants/{tenantId}/api-keys/{keyId}', operationId: 'revokeApiKey', summary: 'Revoke an API key', permission: 'keys:write', ok: { status: 204, description: 'Revoked' }, problems: [403, 404] },
  { method: 'post', path: '/users', operationId: 'createUser', summary: "Create a user of the caller's tenant", permission: 'users:write', query: users.listQuery.pick({ tenantId: true }), body: 'CreateUser', ok: { status: 201, schema: 'User', description: 'Created', location: true }, problems: [400, 409] },
  { method: 'get', path: '/users', operationId: 'listUsers', summary: "List the tenant's users, paginated by page", permission: 'users:read', query: users.listQuery, ok: { status: 200, schema: 'UserList', description: 'A page of users' }, problems: [400] },
  { method: 'get', path: '/users/{userId}', operationId: 'getUser', summary: 'Read a user', permission: 'users:read', query: users.listQuery.pick({ tenantId: true }), ok: { status: 200, schema: 'User', description: 'The user' }, problems: [404] },
  { method: 'patch', path: '/users/{userId}', operationId: 'updateUser', summary: 'Update a user', permission: 'users:write', query: users.listQuery.pick({ tenantId: true }), body: 'PatchUser', ok: { status: 200, schema: 'User', description: 'The updated user' }, problems: [400, 403, 404, 409] },
  { method: 'delete', path: '/users/{userId}', operationId: 'deleteUser', summary: 'Delete a user', permission: 'users:write', query: users.listQuery.pick({ tenantId: true }), ok: { status: 204, description: 'Deleted' }, problems: [403, 404, 409] },
  { method: 'get', path: '/me', operationId: 'getMe', summary: 'The caller as the authorizer saw it', ok: { status: 200, schema: 'Me', description: 'The caller' }, problems: [] },
];

const PATH_PARAMETERS: Record<string, Json> = {
  tenantId: { type: 'string', pattern: TENANT_ID_PATTERN.source },
  keyId: { type: 'string' },
  userId: { type: 'string', description: "The identity provider's user id (URL-encode it: Auth0 ids hold `|`)." },
};

function queryParameters(query: z.ZodObject | undefined): Json[] {
  if (!query) return [];
  const schema = jsonSchema(query, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: (schema.required ?? []).includes(name),
    ...(name === 'tenantId' ? { description: 'A platform operator names the tenant; others act in their own.' } : {}),
    schema: s,
  }));
}

function operation(op: Operation, used: Set<string>): Json {
  const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1]!, in: 'path', required: true, schema: PATH_PARAMETERS[m[1]!] }));
  const parameters: Json[] = [...pathParams, ...queryParameters(op.query), ...(op.method === 'post' ? [{ $ref: '#/components/parameters/IdempotencyKey' }] : [])];
  const statuses = new Set([...op.problems, 401, 403, 429, 503, ...(op.method === 'post' || op.body ? [413, 415] : []), ...(op.method === 'post' ? [409, 422] : [])]);
  const responses: Json = {
    [String(op.ok.status)]: {
      description: op.ok.description,
      ...(op.ok.location ? { headers: { Location: { description: 'Path of the new resource.', schema: { type: 'string' } } } } : {}),
      ...(op.ok.schema
        ? {
            content: {
              'application/json': { schema: { $ref: `#/components/schemas/${op.ok.schema}` } },
              ...(op.ok.csv ? { 'text/csv': { schema: { type: 'string', description: op.ok.csv } } } : {}),
            },
          }
        : {}),
    },
  };
  for (const s of [...[...statuses].sort((a, b) => a - b).map(String), '4XX', '5XX']) {
    responses[s] = { $ref: `#/components/responses/Problem${s}` };
    used.add(s);
  }
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.permission ? { description: `Needs the \`${op.permission}\` permission (a scope, or a role that grants it).` } : {}),
    tags: [op.path.split('/')[1] === 'tenants' ? 'tenants' : 'users'],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: !op.bodyOptional, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body}` } } } } } : {}),
    responses,
  };
}

/** The document. */
export function buildOpenApiDocument(): Json & { paths: Record<string, Record<string, unknown>> } {
  const paths: Record<string, Record<string, unknown>> = {};
  const used = new Set<string>();
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operation(op, used);
  paths[OPENAPI_PATH] = {
    get: {
      operationId: 'getOpenApiDocument',
      summary: 'This document (no credentials needed)',
      tags: ['meta'],
      security: [],
      responses: { '200': { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } }, '4XX': { $ref: '#/components/responses/Problem4XX' } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey management API',
      version: '1.0.0',
      description: `Tenants, their API keys and their users, behind the Latchkey authorizer. Errors are RFC 9457 \`application/problem+json\` with a stable \`type\`. Bodies are JSON, at most ${MAX_BODY_BYTES} bytes. Browsers on configured origins may call it (CORS; request headers ${CORS_ALLOW_HEADERS.join(', ')}).`,
      license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
    },
    servers: [
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com/{stage}',
        description: 'The deployed stage (`ApiUrl` output of the stack); `npm start` serves it at http://127.0.0.1:3000/v1',
        variables: { apiId: { default: 'abc123' }, region: { default: 'eu-west-1' }, stage: { default: 'v1' } },
      },
    ],
    security: [{ bearer: [] }, { apiKey: [] }, { basic: [] }],
    tags: [
      { name: 'tenants', description: 'Tenants and their API keys' },
      { name: 'users', description: "The tenant's users and the caller" },
      { name: 'meta', description: 'About the API' },
    ],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "A user's or a service's access token, or an `lk_…` API key." },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: 'An `lk_…` API key.' },
        basic: { type: 'http', scheme: 'basic', description: "An API key's client id and secret (RFC 7617, each form-url-encoded)." },
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description: 'Makes a POST safe to retry: a retry with the same key gets the first answer (scoped to the caller; kept an hour).',
          schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source },
        },
      },
      schemas: { ...componentSchemas(), ...problemSchemas() },
      responses: problemResponses(used),
    },
  };
}

/** The document as committed (`openapi.json`): stable key order, two-space indent, final newline. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}
