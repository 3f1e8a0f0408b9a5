/**
 * The frame of a management Lambda: middy with a route table keyed by API Gateway's
 * `METHOD /resource/{param}`, the caller read from the authorizer context only, JSON bodies,
 * `Idempotency-Key` on POSTs, and every error answered as `application/problem+json`.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { ZodType } from 'zod';
import { headerValues } from '../core/credentials.js';
import { UpstreamUnavailableError } from '../core/errors.js';
import { IdentityProviderError } from '../core/identity-provider.js';
import { ManagementError } from '../core/key-lifecycle.js';
import type { Log } from '../core/log.js';
import { fromAuthorizerContext, type Principal } from '../core/principal.js';
import { corsHeaders } from '../../packages/cdk/src/contract/cors.js';
import { badRequest, conflict, forbidden, HttpProblem, methodNotAllowed, notFound, payloadTooLarge, unavailable } from './problem.js';
import { transientRetryAfterS } from './transient-errors.js';
import { auditedHandle, type AuditTrailOptions } from './audit-trail.js';

export interface ApiRequest {
  caller: Principal;
  path: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  requestId: string;
  /** Request headers, names lower-cased. */
  headers?: Record<string, string>;
  /** The `Idempotency-Key`, scoped to the caller and the route (never the raw header); absent without one. */
  idempotencyKey?: string | undefined;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /** A body sent as it is (e.g. CSV), with the route's `Content-Type`, instead of JSON. */
  text?: string;
  headers?: Record<string, string>;
}

export interface Route {
  method: string;
  /** API Gateway resource, e.g. `/tenants/{tenantId}`. */
  resource: string;
  handle(req: ApiRequest): Promise<ApiResponse>;
}

export interface ApiHandlerOptions {
  routes: Route[];
  log: Log;
  /** Makes POSTs with an `Idempotency-Key` header safe to retry (Powertools idempotency). */
  idempotency?: MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> | undefined;
  /** Browser origins whose `Origin` is answered with CORS headers (`functions/http/cors.ts`). */
  allowedOrigins?: readonly string[] | undefined;
  /** Records every change and every refused request in the audit trail (`audit-trail.ts`). */
  audit?: AuditTrailOptions | undefined;
}

/** The event after `idempotencyKeyMiddleware`: a key scoped to the caller, or none. */
export type IdempotentEvent = APIGatewayProxyEvent & { idempotencyKey?: string | undefined };

/** `Idempotency-Key`: 1-255 visible ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };
/** Largest body the management API reads; more is answered 413. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Parses and validates with a zod schema; failures become 400 problems naming each field. */
export function parse<T>(schema: ZodType<T>, value: unknown, what = 'request body'): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw badRequest(`the ${what} is not valid`, r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
}

const header = (event: APIGatewayProxyEvent, name: string): string | undefined => headerValues(event, name)[0];

function readBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body === '') return undefined;
  const bytes = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  // Size first: a large body is refused before anything reads it.
  if (bytes.length > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
  const type = header(event, 'content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i.test(type)) {
    throw new HttpProblem('unsupported-media-type', 'send the body as application/json');
  }
  const raw = bytes.toString('utf8');
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** Scopes an `Idempotency-Key` to the caller and the operation, so no one can replay another's answer. */
export function idempotencyKeyMiddleware(): MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> {
  return {
    before: (request) => {
      const event = request.event;
      const key = header(event, 'idempotency-key');
      if (event.httpMethod !== 'POST' || key === undefined) return;
      if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw badRequest('Idempotency-Key must be 1-255 visible ASCII characters');
      const ctx = (event.requestContext?.authorizer ?? {}) as Record<string, unknown>;
      event.idempotencyKey = [ctx.tenantId, ctx.principalId ?? ctx.clientId, event.httpMethod, event.path, key].map((x) => String(x ?? '')).join('\u0000');
    },
  };
}

/** Maps every error to a problem answer; unexpected ones are logged and shown as 500 without detail. */
export function problemMiddleware(log: Log): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  return {
    onError: (request) => {
      const err = request.error;
      const problem = toProblem(err);
      if (problem.status >= 500 && problem.status !== 503) log.error('request failed', { error: String(err), stack: (err as Error)?.stack });
      else if (problem.status === 503) log.warn('dependency unavailable', { error: String(err) });
      request.response = {
        statusCode: problem.status,
        headers: { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...problem.headers },
        body: JSON.stringify(problem.body(request.event.requestContext?.requestId)),
      };
    },
  };
}

function toProblem(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (err instanceof UpstreamUnavailableError) return unavailable(err.retryAfterS);
  if (err instanceof ManagementError) {
    if (err.code === 'ERR_NOT_FOUND') return new HttpProblem('not-found', err.message);
    if (err.code === 'ERR_CONFLICT') return conflict(err.message);
    if (err.code === 'ERR_FORBIDDEN') return forbidden(err.message);
    return badRequest(err.message);
  }
  if (err instanceof IdentityProviderError) {
    if (err.code === 'ERR_IDP_NOT_FOUND') return notFound('the resource');
    if (err.code === 'ERR_IDP_CONFLICT') return conflict(err.message);
    if (err.code === 'ERR_IDP_INVALID') return badRequest(err.message);
  }
  const name = (err as { name?: string })?.name;
  if (name === 'IdempotencyValidationError') {
    return new HttpProblem('idempotency-key-reused', 'this Idempotency-Key was used with a different request');
  }
  if (name === 'IdempotencyAlreadyInProgressError') {
    return new HttpProblem('idempotency-in-progress', 'a request with this Idempotency-Key is still in progress', {}, { 'Retry-After': '1' });
  }
  const retryAfterS = transientRetryAfterS(err);
  if (retryAfterS !== undefined) return unavailable(retryAfterS);
  if (name === 'IdempotencyPersistenceLayerError') return unavailable(2);
  return new HttpProblem('internal');
}

export function createApiHandler(opts: ApiHandlerOptions) {
  const table = new Map(opts.routes.map((r) => [`${r.method} ${r.resource}`, r]));
  const allow = new Map<string, string[]>();
  for (const r of opts.routes) allow.set(r.resource, [...(allow.get(r.resource) ?? []), r.method]);

  const core = async (event: IdempotentEvent, _context: Context): Promise<APIGatewayProxyResult> => {
    const route = table.get(`${event.httpMethod} ${event.resource}`);
    if (!route) {
      const methods = allow.get(event.resource);
      if (methods) throw methodNotAllowed(methods);
      throw notFound(`${event.resource}`);
    }
    const ctx = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
    const caller = fromAuthorizerContext(ctx);
    // The gateway only invokes us after the authorizer allowed the request; a missing context is a wiring fault.
    if (!caller) throw new HttpProblem('unauthorized', 'no authorizer context');
    const req: ApiRequest = {
      caller,
      path: Object.fromEntries(Object.entries(event.pathParameters ?? {}).filter((e): e is [string, string] => e[1] !== undefined)),
      query: Object.fromEntries(Object.entries(event.queryStringParameters ?? {}).filter((e): e is [string, string] => e[1] !== undefined)),
      body: readBody(event),
      requestId: event.requestContext?.requestId ?? '',
      headers: Object.fromEntries(Object.entries(event.headers ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [[k.toLowerCase(), v]]))),
      idempotencyKey: (event as IdempotentEvent).idempotencyKey,
    };
    const identity = event.requestContext?.identity as { sourceIp?: string; userAgent?: string | null } | undefined;
    const source = { sourceIp: identity?.sourceIp || undefined, userAgent: identity?.userAgent ?? undefined };
    const res = opts.audit ? await auditedHandle(opts.audit, opts.log, route, req, source, (err) => toProblem(err).status) : await route.handle(req);
    if (res.text !== undefined) return { statusCode: res.status, headers: { 'Cache-Control': 'no-store', ...res.headers }, body: res.text };
    return {
      statusCode: res.status,
      headers: { ...(res.body === undefined ? { 'Cache-Control': 'no-store' } : JSON_HEADERS), ...res.headers },
      body: res.body === undefined ? '' : JSON.stringify(res.body),
    };
  };

  const handler = middy<IdempotentEvent, APIGatewayProxyResult>(core)
    .use(problemMiddleware(opts.log) as MiddlewareObj<IdempotentEvent, APIGatewayProxyResult>)
    .use(idempotencyKeyMiddleware());
  if (opts.idempotency) handler.use(opts.idempotency);
  const origins = opts.allowedOrigins ?? [];
  // Outside middy, so every answer gets them: routes, problems and idempotent replays (which are
  // stored without them, since they depend on the caller's Origin).
  return async (event: IdempotentEvent, context: Context): Promise<APIGatewayProxyResult> => {
    const res = await handler(event, context);
    return { ...res, headers: { ...res.headers, ...corsHeaders(origins, event.headers) } };
  };
}
