/**
 * The shared (level-2) token cache and the principal state, in one DynamoDB table with a
 * string partition key `pk` and a TTL attribute `ttl`:
 * - `tok#<hash of credentials>`: a sealed token, or a negative entry for rejected credentials;
 * - `lease#<hash>`: who is exchanging those credentials right now (conditional write);
 * - `client#<client id>`, `user#<user id>`, `tenant#<tenant id>`: principal state (and, for
 *   clients, when the key was last used). State items carry `feed = 'state'` and `changedAt`,
 *   the keys of the sparse index `STATE_FEED_INDEX` the authorizer's snapshot syncs from.
 * One table, because the authorizer already reads it on the API-key path (a key's token and its
 * client state in one consistent BatchGet) and the feed adds one index, not a second table.
 * DynamoDB deletes expired items lazily, so every read checks expiry itself.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { stateRetentionUntilS, type PrincipalKind, type PrincipalRef, type PrincipalState, type PrincipalStateFeed, type PrincipalStateWriter } from '../core/principal-state.js';
import { FEED, STATE_FEED_PAGE, STATE_FEED_QUERY, statePk, statesByKeys, toPrincipalState } from './dynamodb-state-items.js';
import type { LeaseFailure, SharedLease, SharedNegativeEntry, SharedTokenCache, SharedTokenEntry, TokenCacheMaintenance } from '../core/token-cache.js';
import { AUTHORIZER_DYNAMODB_DEADLINE, dynamoDbClientConfig, withOperationDeadline, type DynamoDbDeadline } from './dynamodb-deadline.js';

const tokPk = (cacheKey: string) => `tok#${cacheKey}`;
const leasePk = (cacheKey: string) => `lease#${cacheKey}`;
const clientPk = (clientId: string) => statePk('client', clientId);
/** The identity provider asked for a pause (429/503 with a reset time): one item for all containers. */
const BACKOFF_PK = 'backoff#token-endpoint';

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

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string }).name === 'ConditionalCheckFailedException';
}

export class DynamoDbTokenCache implements SharedTokenCache, TokenCacheMaintenance, PrincipalStateWriter, PrincipalStateFeed {
  readonly #table: string;
  readonly #db: DynamoDBDocumentClient;

  constructor(opts: DynamoDbTokenCacheOptions) {
    this.#table = opts.tableName;
    this.#db = opts.client ?? createDocumentClient(opts.clientConfig);
  }

  async read(cacheKey: string, clientId: string, opts: { withLease?: boolean } = {}) {
    const keys = [{ pk: tokPk(cacheKey) }, { pk: clientPk(clientId) }, { pk: BACKOFF_PK }];
    if (opts.withLease) keys.push({ pk: leasePk(cacheKey) });
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
    const backoff = items.find((i) => i.pk === BACKOFF_PK);
    const lease = opts.withLease ? toLease(items.find((i) => i.pk === leasePk(cacheKey))) : undefined;
    return { entry: toEntry(tok), client: toPrincipalState(client), providerBackoffUntil: typeof backoff?.until === 'number' ? backoff.until : undefined, lease };
  }

  async putProviderBackoff(until: number): Promise<void> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: BACKOFF_PK, until, ttl: Math.ceil(until / 1000) + 60 },
          // Never shorten a pause another container recorded.
          ConditionExpression: 'attribute_not_exists(pk) OR #u < :until',
          ExpressionAttributeNames: { '#u': 'until' },
          ExpressionAttributeValues: { ':until': until },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async recordUse(clientId: string, now: number): Promise<void> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: clientPk(clientId) },
          UpdateExpression: 'SET lastUsedAt = :now',
          // "Last used" never lands after the revocation took effect, whatever the order of writes.
          ConditionExpression: 'attribute_exists(pk) AND (revokedAt > :now OR (NOT #s = :revoked AND NOT revoked = :t))',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':now': now, ':revoked': 'revoked', ':t': true },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async putState(state: PrincipalState): Promise<void> {
    const until = stateRetentionUntilS(state);
    const values: Record<string, unknown> = {
      ':kind': state.kind,
      ':status': state.status,
      ':revokedAt': state.revokedAt,
      ':notBefore': state.notBefore,
      ':changedAt': state.changedAt,
      ':feed': FEED,
      // Read by authorizers of the version before the state model during a rolling deploy.
      ':revoked': state.status === 'revoked',
    };
    const sets = ['stateKind = :kind', '#s = :status', 'revokedAt = :revokedAt', 'notBefore = :notBefore', 'changedAt = :changedAt', 'feed = :feed', 'revoked = :revoked'];
    for (const k of ['tenantId', 'keyId', 'createdAt'] as const) {
      if (state[k] !== undefined) {
        values[`:${k}`] = state[k];
        sets.push(`${k} = :${k}`);
      }
    }
    let update = `SET ${sets.join(', ')}`;
    if (until === undefined) update += ' REMOVE #ttl';
    else {
      values[':ttl'] = until;
      update = update.replace('SET ', 'SET #ttl = :ttl, ');
    }
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: statePk(state.kind, state.id) },
        UpdateExpression: update,
        ExpressionAttributeNames: { '#s': 'status', '#ttl': 'ttl' },
        ExpressionAttributeValues: values,
      }),
    );
  }

  async getState(kind: PrincipalKind, id: string): Promise<PrincipalState | undefined> {
    const out = await this.#db.send(new GetCommand({ TableName: this.#table, Key: { pk: statePk(kind, id) }, ConsistentRead: true }));
    return toPrincipalState(out.Item);
  }

  statesOf(keys: readonly PrincipalRef[]): Promise<PrincipalState[]> {
    return statesByKeys(keys, (pk) => ({ pk }), async (request) => {
      const out = await this.#db.send(new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: request, ConsistentRead: true } } }));
      return { items: out.Responses?.[this.#table] ?? [], unprocessed: (out.UnprocessedKeys?.[this.#table]?.Keys ?? []) as { pk: string }[] };
    });
  }

  async changesSince(sinceMs: number | undefined, onMorePages?: () => void): Promise<PrincipalState[]> {
    const states: PrincipalState[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          ...STATE_FEED_QUERY(sinceMs, 'native'),
          Limit: STATE_FEED_PAGE,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        const state = toPrincipalState(item);
        if (state) states.push(state);
      }
      start = out.LastEvaluatedKey;
      if (start) onMorePages?.();
    } while (start);
    return states;
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
        Item: { pk: tokPk(cacheKey), kind: 'invalid', until: e.until, ttl: Math.ceil(e.until / 1000) },
      }),
    );
  }

  async acquireLease(cacheKey: string, holder: string, now: number, leaseMs: number): Promise<boolean> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: leasePk(cacheKey), holder, leaseUntil: now + leaseMs, ttl: Math.ceil((now + leaseMs) / 1000) + 60 },
          // A failure marker holds off new holders until it ends, as a running lease does.
          ConditionExpression: 'attribute_not_exists(pk) OR (leaseUntil <= :now AND (attribute_not_exists(failedUntil) OR failedUntil <= :now))',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async releaseLease(cacheKey: string, holder: string, failure?: LeaseFailure): Promise<void> {
    try {
      await this.#db.send(
        failure
          ? new UpdateCommand({
              TableName: this.#table,
              Key: { pk: leasePk(cacheKey) },
              // Released (nobody holds it) but marked: waiters answer 503 until `failedUntil`.
              UpdateExpression: 'SET leaseUntil = :zero, failedUntil = :until, failureCode = :code, #ttl = :ttl',
              ConditionExpression: 'holder = :holder',
              ExpressionAttributeNames: { '#ttl': 'ttl' },
              ExpressionAttributeValues: { ':holder': holder, ':zero': 0, ':until': failure.until, ':code': failure.code, ':ttl': Math.ceil(failure.until / 1000) + 60 },
            })
          : new DeleteCommand({
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

function toLease(item: Record<string, unknown> | undefined): SharedLease | undefined {
  if (!item || typeof item.holder !== 'string' || typeof item.leaseUntil !== 'number') return undefined;
  const lease: SharedLease = { holder: item.holder, leaseUntil: item.leaseUntil };
  if (typeof item.failedUntil === 'number') lease.failedUntil = item.failedUntil;
  if (typeof item.failureCode === 'string') lease.failureCode = item.failureCode;
  return lease;
}

function toEntry(item: Record<string, unknown> | undefined): SharedTokenEntry | SharedNegativeEntry | undefined {
  if (!item) return undefined;
  if (item.kind === 'token' && typeof item.clientId === 'string' && typeof item.sealed === 'string' && typeof item.exchangedAt === 'number' && typeof item.expiresAt === 'number') {
    return { kind: 'token', clientId: item.clientId, sealed: item.sealed, exchangedAt: item.exchangedAt, expiresAt: item.expiresAt };
  }
  // Negative entries of the previous version also held the client id as sent; it is not read.
  if (item.kind === 'invalid' && typeof item.until === 'number') return { kind: 'invalid', until: item.until };
  return undefined;
}
