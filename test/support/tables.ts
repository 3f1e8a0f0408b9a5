/** Tables in the shared DynamoDB Local of the test run, with the stack's key schemas. */
import { randomUUID } from 'node:crypto';
import { credentialsFromEnv, type LightDynamoDbOptions } from '../../functions/adapters/dynamodb-light.js';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { FEED, STATE_FEED_ATTRIBUTES, STATE_FEED_INDEX, STATE_FEED_PAGE } from '../../functions/adapters/dynamodb-state-items.js';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, type BatchWriteCommandInput, type BatchWriteCommandOutput } from '@aws-sdk/lib-dynamodb';

/**
 * The authorizer's small DynamoDB client (state feed, usage sink) on a table of DynamoDB Local:
 * the run's endpoint and region, dummy credentials; `overrides` as a container's config gives
 * them (its endpoint behind a fault proxy, its timeout).
 */
export function localLightDynamoDb(tableName: string, overrides: Partial<LightDynamoDbOptions> = {}): LightDynamoDbOptions {
  return {
    tableName,
    region: process.env.AWS_REGION ?? 'us-east-1',
    endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB,
    credentials: credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }),
    http: nodeHttpClient,
    timeoutMs: 5000,
    ...overrides,
  };
}

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

/**
 * Writes more state items than one page of the feed (`STATE_FEED_PAGE` + 1 by default) to a
 * token-cache table, as a large deployment has: active clients `client#bulk-<i>` of tenant
 * `bulk`, no principal of any test, changed at `changedAt` and the milliseconds before. A new
 * container's first sync of the table then spans pages. `remove` deletes them again.
 */
export async function addBulkStates(table: string, opts: { count?: number; changedAt?: number } = {}): Promise<{ count: number; remove(): Promise<void> }> {
  const count = opts.count ?? STATE_FEED_PAGE + 1;
  const changedAt = opts.changedAt ?? Date.now();
  const pks = Array.from({ length: count }, (_, i) => `client#bulk-${i}`);
  type Request = NonNullable<BatchWriteCommandInput['RequestItems']>[string];
  const write = async (requests: Request) => {
    const doc = DynamoDBDocumentClient.from(localDynamoClient());
    try {
      for (let i = 0; i < requests.length; i += 25) {
        let batch: Request | undefined = requests.slice(i, i + 25);
        while (batch && batch.length > 0) {
          const out: BatchWriteCommandOutput = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: batch } }));
          batch = out.UnprocessedItems?.[table];
        }
      }
    } finally {
      doc.destroy();
    }
  };
  const item = (pk: string, i: number) => ({ pk, feed: FEED, stateKind: 'client', status: 'active', revokedAt: 0, notBefore: 0, changedAt: changedAt - i, tenantId: 'bulk', keyId: `bulk-${i}` });
  await write(pks.map((pk, i) => ({ PutRequest: { Item: item(pk, i) } })));
  return { count, remove: () => write(pks.map((pk) => ({ DeleteRequest: { Key: { pk } } }))) };
}
