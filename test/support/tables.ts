/** Tables in the shared DynamoDB Local of the test run, with the stack's key schemas. */
import { randomUUID } from 'node:crypto';
import { STATE_FEED_ATTRIBUTES, STATE_FEED_INDEX } from '../../functions/adapters/dynamodb-state-items.js';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export function localDynamoClient(): DynamoDBClient {
  if (!process.env.AWS_ENDPOINT_URL_DYNAMODB) throw new Error('AWS_ENDPOINT_URL_DYNAMODB is not set: is the global setup running DynamoDB Local?');
  return new DynamoDBClient({});
}

const S = (name: string) => ({ AttributeName: name, AttributeType: 'S' as const });
const key = (hash: string, range?: string) => [{ AttributeName: hash, KeyType: 'HASH' as const }, ...(range ? [{ AttributeName: range, KeyType: 'RANGE' as const }] : [])];

/** Creates a uniquely named pay-per-request table and returns its name. */
async function createTable(prefix: string, schema: Omit<CreateTableCommandInput, 'TableName' | 'BillingMode'>, ttlAttribute?: string): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const db = localDynamoClient();
  try {
    await db.send(new CreateTableCommand({ TableName: name, BillingMode: 'PAY_PER_REQUEST', ...schema }));
    if (ttlAttribute) await db.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true } }));
  } finally {
    db.destroy();
  }
  return name;
}

/** Token-cache table: partition key `pk`, TTL attribute `ttl`, the principal-state feed index. */
export const createTokenCacheTable = (prefix = 'token-cache') =>
  createTable(
    prefix,
    {
      AttributeDefinitions: [S('pk'), S('feed'), { AttributeName: 'changedAt', AttributeType: 'N' }],
      KeySchema: key('pk'),
      GlobalSecondaryIndexes: [
        { IndexName: STATE_FEED_INDEX, KeySchema: key('feed', 'changedAt'), Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...STATE_FEED_ATTRIBUTES] } },
      ],
    },
    'ttl',
  );

/** Tenants/key-registry table: `pk`/`sk` with GSI `gsi1` on `gsi1pk`/`gsi1sk`. */
export const createTenantsTable = (prefix = 'tenants') =>
  createTable(prefix, {
    AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk'].map(S),
    KeySchema: key('pk', 'sk'),
    GlobalSecondaryIndexes: [{ IndexName: 'gsi1', KeySchema: key('gsi1pk', 'gsi1sk'), Projection: { ProjectionType: 'ALL' } }],
  });

/** Powertools idempotency table: partition key `id`, TTL attribute `expiration`. */
export const createIdempotencyTable = (prefix = 'idempotency') => createTable(prefix, { AttributeDefinitions: [S('id')], KeySchema: key('id') }, 'expiration');

/** Audit table: `pk`/`sk` with GSI `gsi1` on `gsi1pk`/`gsi1sk` (every partition by time), TTL `expiresAt`. */
export const createAuditTable = (prefix = 'audit') =>
  createTable(
    prefix,
    {
      AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk'].map(S),
      KeySchema: key('pk', 'sk'),
      GlobalSecondaryIndexes: [{ IndexName: 'gsi1', KeySchema: key('gsi1pk', 'gsi1sk'), Projection: { ProjectionType: 'ALL' } }],
    },
    'expiresAt',
  );
