/**
 * `Idempotency-Key` on POSTs through Powertools idempotency, with one change: answers are
 * stored without secrets. A retried key creation or rotation returns the same key without its
 * secret (`secretRedacted: true`) rather than keeping a live secret in a table for an hour.
 *
 * Powertools (and its DynamoDB layer) is loaded by the first request that carries a key:
 * Powertools skips a request without one anyway (`throwOnNoIdempotencyKey: false`), so the
 * cold start of every other request does not pay for it.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { onFirstUse } from '../core/once.js';
import type { IdempotentEvent } from '../http/api-handler.js';

const SECRET_FIELDS = ['clientSecret', 'apiKey'];

/** Removes secret fields from a stored API Gateway proxy answer. */
export function redactStoredResponse(data: unknown): unknown {
  const res = data as { body?: unknown } | null;
  if (!res || typeof res.body !== 'string' || res.body === '') return data;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return data;
  }
  if (typeof body !== 'object' || body === null || !SECRET_FIELDS.some((f) => Object.hasOwn(body, f))) return data;
  const redacted: Record<string, unknown> = { ...(body as Record<string, unknown>), secretRedacted: true };
  for (const f of SECRET_FIELDS) delete redacted[f];
  return { ...res, body: JSON.stringify(redacted) };
}

export function idempotencyMiddleware(tableName: string): MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> {
  const powertools = onFirstUse(() => import('./powertools-idempotency.js').then((m) => m.powertoolsIdempotency(tableName)));
  const keyed = (event: IdempotentEvent) => event.idempotencyKey !== undefined;
  return {
    // A replay answers from `before`: its return value ends the request, so it is passed on.
    before: async (request) => (keyed(request.event) ? (await powertools()).before?.(request) : undefined),
    after: async (request) => {
      if (keyed(request.event)) await (await powertools()).after?.(request);
    },
    onError: async (request) => {
      if (keyed(request.event)) await (await powertools()).onError?.(request);
    },
  };
}
