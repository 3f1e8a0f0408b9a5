/** The Powertools half of `idempotency.ts`, in its own module so that it loads on first use. */
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import type { IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { IdempotentEvent } from '../http/api-handler.js';
import { redactStoredResponse } from './idempotency.js';

class RedactingPersistenceLayer extends DynamoDBPersistenceLayer {
  protected override _updateRecord(record: IdempotencyRecord): Promise<void> {
    record.responseData = redactStoredResponse(record.responseData) as IdempotencyRecord['responseData'];
    return super._updateRecord(record);
  }
}

export function powertoolsIdempotency(tableName: string): MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> {
  return makeHandlerIdempotent({
    persistenceStore: new RedactingPersistenceLayer({ tableName }),
    config: new IdempotencyConfig({
      eventKeyJmesPath: 'idempotencyKey',
      payloadValidationJmesPath: 'body',
      throwOnNoIdempotencyKey: false,
      expiresAfterSeconds: 24 * 3600,
    }),
  }) as MiddlewareObj<IdempotentEvent, APIGatewayProxyResult>;
}
