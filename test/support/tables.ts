/** Tables in the shared DynamoDB Local of the test run, with the stack's key schemas. */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';

export function localDynamoClient(): DynamoDBClient {
  if (!process.env.AWS_ENDPOINT_URL_DYNAMODB) throw new Error('AWS_ENDPOINT_URL_DYNAMODB is not set: is the global setup running DynamoDB Local?');
  return new DynamoDBClient({});
}

/** Token-cache table: partition key `pk`, TTL attribute `ttl`. Returns its (unique) name. */
export async function createTokenCacheTable(prefix = 'token-cache'): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const db = localDynamoClient();
  await db.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  await db.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }));
  db.destroy();
  return name;
}

/** Tenants/key-registry table: `pk`/`sk` with GSI `gsi1` on `gsi1pk`/`gsi1sk`. */
export async function createTenantsTable(prefix = 'tenants'): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const db = localDynamoClient();
  await db.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk'].map((a) => ({ AttributeName: a, AttributeType: 'S' as const })),
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  db.destroy();
  return name;
}

/** Powertools idempotency table: partition key `id`, TTL attribute `expiration`. */
export async function createIdempotencyTable(prefix = 'idempotency'): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const db = localDynamoClient();
  await db.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    }),
  );
  db.destroy();
  return name;
}
