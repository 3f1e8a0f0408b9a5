/**
 * The shared (level-2) token cache and the revocation state, in one DynamoDB table with a
 * string partition key `pk` and a TTL attribute `ttl`:
 * - `tok#<hash of credentials>`: a sealed token, or a negative entry for rejected credentials;
 * - `lease#<hash>`: who is exchanging those credentials right now (conditional write);
 * - `client#<client id>`: revocation state and when the key was last used.
 * DynamoDB deletes expired items lazily, so every read checks expiry itself.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ACTIVE_CLIENT,
  type ClientRevocations,
  type ClientState,
  type SharedNegativeEntry,
  type SharedTokenCache,
  type SharedTokenEntry,
} from '../core/token-cache.js';
import { AUTHORIZER_DYNAMODB_DEADLINE, dynamoDbClientConfig, withOperationDeadline, type DynamoDbDeadline } from './dynamodb-deadline.js';

const tokPk = (cacheKey: string) => `tok#${cacheKey}`;
const leasePk = (cacheKey: string) => `lease#${cacheKey}`;
const clientPk = (clientId: string) => `client#${clientId}`;
/** Revocation markers outlive any token issued before them (Auth0's longest M2M lifetime is 30 days). */
const REVOCATION_RETENTION_S = 31 * 24 * 3600;

export interface DynamoDbTokenCacheOptions {
  tableName: string;
  /** A DocumentClient to share; by default one with short timeouts, since callers fall back when it fails. */
  client?: DynamoDBDocumentClient;
  clientConfig?: DynamoDBClientConfig;
}

/** A DocumentClient whose every operation has a hard deadline (the authorizer's by default). */
export function createDocumentClient(config: DynamoDBClientConfig = {}, deadline: DynamoDbDeadline = AUTHORIZER_DYNAMODB_DEADLINE): DynamoDBDocumentClient {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient(dynamoDbClientConfig(deadline, config)), { marshallOptions: { removeUndefinedValues: true } });
  return withOperationDeadline(client, deadline.operationMs);
}

function clientState(item: Record<string, unknown> | undefined): ClientState {
  if (!item) return ACTIVE_CLIENT;
  return { revoked: item.revoked === true, notBefore: typeof item.notBefore === 'number' ? item.notBefore : 0 };
}

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string }).name === 'ConditionalCheckFailedException';
}

export class DynamoDbTokenCache implements SharedTokenCache, ClientRevocations {
  readonly #table: string;
  readonly #db: DynamoDBDocumentClient;

  constructor(opts: DynamoDbTokenCacheOptions) {
    this.#table = opts.tableName;
    this.#db = opts.client ?? createDocumentClient(opts.clientConfig);
  }

  async read(cacheKey: string, clientId: string) {
    const keys = [{ pk: tokPk(cacheKey) }, { pk: clientPk(clientId) }];
    let items: Record<string, unknown>[] = [];
    let request: Record<string, unknown>[] | undefined = keys;
    for (let attempt = 0; request && request.length > 0 && attempt < 3; attempt++) {
      const out = await this.#db.send(new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: request, ConsistentRead: true } } }));
      items = items.concat(out.Responses?.[this.#table] ?? []);
      request = out.UnprocessedKeys?.[this.#table]?.Keys as Record<string, unknown>[] | undefined;
    }
    if (request && request.length > 0) throw new Error('token cache read was throttled');
    const tok = items.find((i) => i.pk === tokPk(cacheKey));
    const client = items.find((i) => i.pk === clientPk(clientId));
    return { entry: toEntry(tok), client: clientState(client) };
  }

  async checkIn(clientId: string, now: number): Promise<ClientState> {
    const out = await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: clientPk(clientId) },
        UpdateExpression: 'SET lastUsedAt = :now',
        ExpressionAttributeValues: { ':now': now },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return clientState(out.Attributes);
  }

  async putToken(cacheKey: string, e: SharedTokenEntry): Promise<void> {
    await this.#db.send(
      new PutCommand({
        TableName: this.#table,
        Item: { pk: tokPk(cacheKey), kind: 'token', clientId: e.clientId, sealed: e.sealed, exchangedAt: e.exchangedAt, expiresAt: e.expiresAt, ttl: e.expiresAt },
      }),
    );
  }

  async putNegative(cacheKey: string, e: SharedNegativeEntry): Promise<void> {
    await this.#db.send(
      new PutCommand({
        TableName: this.#table,
        Item: { pk: tokPk(cacheKey), kind: 'invalid', clientId: e.clientId, until: e.until, ttl: Math.ceil(e.until / 1000) },
      }),
    );
  }

  async acquireLease(cacheKey: string, holder: string, now: number, leaseMs: number): Promise<boolean> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: leasePk(cacheKey), holder, leaseUntil: now + leaseMs, ttl: Math.ceil((now + leaseMs) / 1000) + 60 },
          ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async releaseLease(cacheKey: string, holder: string): Promise<void> {
    try {
      await this.#db.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { pk: leasePk(cacheKey) },
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': holder },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async revokeClient(clientId: string, at: number): Promise<void> {
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: clientPk(clientId) },
        UpdateExpression: 'SET revoked = :t, revokedAt = :at, #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':t': true, ':at': at, ':ttl': Math.ceil(at / 1000) + REVOCATION_RETENTION_S },
      }),
    );
  }

  async setNotBefore(clientId: string, at: number): Promise<void> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: clientPk(clientId) },
          UpdateExpression: 'SET notBefore = :at',
          ConditionExpression: 'attribute_not_exists(notBefore) OR notBefore < :at',
          ExpressionAttributeValues: { ':at': at },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async purge(cacheKeys: string[]): Promise<void> {
    for (let i = 0; i < cacheKeys.length; i += 25) {
      let writes: unknown[] | undefined = cacheKeys.slice(i, i + 25).map((k) => ({ DeleteRequest: { Key: { pk: tokPk(k) } } }));
      for (let attempt = 0; writes && writes.length > 0 && attempt < 5; attempt++) {
        const out: { UnprocessedItems?: Record<string, unknown[]> } = await this.#db.send(new BatchWriteCommand({ RequestItems: { [this.#table]: writes as never } }));
        writes = out.UnprocessedItems?.[this.#table];
      }
    }
  }

  async lastUsed(clientIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < clientIds.length; i += 100) {
      const keys = clientIds.slice(i, i + 100).map((id) => ({ pk: clientPk(id) }));
      const res = await this.#db.send(new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: keys, ProjectionExpression: 'pk, lastUsedAt' } } }));
      for (const item of res.Responses?.[this.#table] ?? []) {
        if (typeof item.lastUsedAt === 'number' && typeof item.pk === 'string') out.set(item.pk.slice('client#'.length), item.lastUsedAt);
      }
    }
    return out;
  }
}

function toEntry(item: Record<string, unknown> | undefined): SharedTokenEntry | SharedNegativeEntry | undefined {
  if (!item || typeof item.clientId !== 'string') return undefined;
  if (item.kind === 'token' && typeof item.sealed === 'string' && typeof item.exchangedAt === 'number' && typeof item.expiresAt === 'number') {
    return { kind: 'token', clientId: item.clientId, sealed: item.sealed, exchangedAt: item.exchangedAt, expiresAt: item.expiresAt };
  }
  if (item.kind === 'invalid' && typeof item.until === 'number') return { kind: 'invalid', clientId: item.clientId, until: item.until };
  return undefined;
}
