/** The Powertools half of `idempotency.ts`, in its own module so that it loads on first use. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import type { IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { IdempotentEvent } from '../http/api-handler.js';
import { dynamoDbClientConfig, MANAGEMENT_DYNAMODB_DEADLINE, withOperationDeadline } from './dynamodb-deadline.js';
import { redactStoredResponse } from './idempotency.js';

class RedactingPersistenceLayer extends DynamoDBPersistenceLayer {
  protected override _updateRecord(record: IdempotencyRecord): Promise<void> {
    record.responseData = redactStoredResponse(record.responseData) as IdempotencyRecord['responseData'];
    return super._updateRecord(record);
  }
}

export function powertoolsIdempotency(tableName: string): MiddlewareObj<IdempotentEvent, APIGatewayProxyResult> {
  // Hard deadlines on every call, as for Latchkey's own tables: a hung table answers 503, never hangs.
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
