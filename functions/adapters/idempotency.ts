/**
 * `Idempotency-Key` on POSTs through Powertools idempotency, with one change: answers are
 * stored without secrets. A retried key creation or rotation returns the same key without its
 * secret (`secretRedacted: true`) rather than keeping a live secret in a table for an hour.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import type { IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { IdempotentEvent } from '../http/api-handler.js';
import { dynamoDbClientConfig, MANAGEMENT_DYNAMODB_DEADLINE, withOperationDeadline } from './dynamodb-deadline.js';

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

class RedactingPersistenceLayer extends DynamoDBPersistenceLayer {
  protected override _updateRecord(record: IdempotencyRecord): Promise<void> {
    record.responseData = redactStoredResponse(record.responseData) as IdempotencyRecord['responseData'];
    return super._updateRecord(record);
  }
}

export function idempotencyMiddleware(tableName: string): MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> {
  const client = withOperationDeadline(new DynamoDBClient(dynamoDbClientConfig(MANAGEMENT_DYNAMODB_DEADLINE)), MANAGEMENT_DYNAMODB_DEADLINE.operationMs);
  return makeHandlerIdempotent({
    persistenceStore: new RedactingPersistenceLayer({ tableName, awsSdkV3Client: client }),
    config: new IdempotencyConfig({
      eventKeyJmesPath: 'idempotencyKey',
      payloadValidationJmesPath: 'body',
      throwOnNoIdempotencyKey: false,
      expiresAfterSeconds: 24 * 3600,
    }),
  }) as MiddlewareObj<IdempotentEvent, APIGatewayProxyResult>;
}
