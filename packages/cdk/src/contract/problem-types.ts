/**
 * Every problem type Latchkey answers, whoever answers it (a management handler or an API
 * Gateway gateway response). The one source of the `type` URIs, their status and title: the
 * handlers, the gateway responses, the OpenAPI document and the README table are made from it.
 */
export const PROBLEM_BASE = 'https://latchkey.dev/problems/';

export interface ProblemType {
  /** The HTTP status, or a class when API Gateway picks the status (`4XX`, `5XX`). */
  readonly status: number | '4XX' | '5XX';
  readonly title: string;
  /** When it is answered and what the caller should do; shown in the README and the OpenAPI document. */
  readonly description: string;
}

export const PROBLEM_TYPES = {
  'validation-error': {
    status: 400,
    title: 'Your request is not valid',
    description: 'A body, query or header failed validation; `errors` lists each field. Fix the request.',
  },
  unauthorized: {
    status: 401,
    title: 'Unauthorized',
    description: 'No, malformed, invalid, expired, revoked or rotated-away credentials (`WWW-Authenticate` names Bearer and Basic). Get a new token or use the current key.',
  },
  forbidden: {
    status: 403,
    title: 'Forbidden',
    description: 'Valid credentials that may not act here: another tenant, no tenant, a user only platform operators may change, a role or key stronger than the caller, a tenant that no usage plan admits (API Gateway). Do not retry.',
  },
  'tenant-disabled': {
    status: 403,
    title: 'Tenant disabled',
    description: "Valid credentials of a disabled or deleted tenant, refused by the authorizer on every route. Keep the credentials: they work again if the tenant's operator re-enables it.",
  },
  'insufficient-scope': {
    status: 403,
    title: 'Insufficient scope',
    description: 'Valid credentials without the permission the operation needs (`requiredScope`). Ask for the permission.',
  },
  'not-found': {
    status: 404,
    title: 'Not found',
    description: 'No such route, or no such tenant, key or user in your tenant (another tenant\'s look the same).',
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    description: 'The route exists but not with this method; `Allow` lists the methods it has.',
  },
  conflict: {
    status: 409,
    title: 'Conflict',
    description: 'The state forbids it: the tenant exists already or is disabled, the key is revoked, the user exists.',
  },
  'idempotency-in-progress': {
    status: 409,
    title: 'Request in progress',
    description: 'A request with this `Idempotency-Key` is still running. Retry after `Retry-After` seconds with the same key.',
  },
  'payload-too-large': {
    status: 413,
    title: 'Payload too large',
    description: 'The body is over the limit (64 KiB for the management API; 10 MB at API Gateway). Send less.',
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported media type',
    description: 'A body that is not `application/json`. Send JSON with that `Content-Type`.',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'Idempotency key reused',
    description: 'This `Idempotency-Key` was used with a different request. Use a new key for a new request.',
  },
  'too-many-requests': {
    status: 429,
    title: 'Too many requests',
    description: "API Gateway refused the call: over the rate or the quota of your tenant's usage plan, or the stage or account limits. Retry after `Retry-After` seconds (1 for the rate, 3600 for the quota, which resets at the start of its period, UTC).",
  },
  unavailable: {
    status: 503,
    title: 'Service unavailable',
    description: 'The identity provider, its key set or a store is down or rate-limiting. Retry after `Retry-After` seconds; keep the key.',
  },
  'client-error': {
    status: '4XX',
    title: 'Client error',
    description: 'Any other refusal by API Gateway itself (the status line carries the code).',
  },
  internal: {
    status: '5XX',
    title: 'Internal error',
    description: 'A fault on our side (500 from a handler, 502/504 from API Gateway). Retry later; report it with `instance`.',
  },
} as const satisfies Record<string, ProblemType>;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

/** The `type` URI of a problem. */
export const problemTypeUri = (slug: ProblemSlug): string => PROBLEM_BASE + slug;

/** The README's problem-type table, made from the catalogue (a test checks the README holds it). */
export function problemTypesMarkdown(): string {
  const rows = Object.entries(PROBLEM_TYPES).map(([slug, p]) => `| \`${slug}\` | ${p.status} | ${p.title} | ${p.description} |`);
  return ['| `type` (after `https://latchkey.dev/problems/`) | status | title | when, and what to do |', '|---|---|---|---|', ...rows].join('\n');
}
