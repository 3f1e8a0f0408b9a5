/**
 * Tenants and their API keys in one table (`pk`, `sk`, GSI `gsi1` on `gsi1pk`/`gsi1sk`):
 * - `tenant#<id>` / `tenant`: the tenant; `gsi1pk = 'tenant'`, `gsi1sk = <id>` lists tenants;
 * - `tenant#<id>` / `key#<keyId>`: an API key of that tenant. Keys live in their tenant's
 *   partition, so a lookup can only ever find keys of the tenant it names.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { MANAGEMENT_DYNAMODB_DEADLINE } from './dynamodb-deadline.js';
import { createDocumentClient } from './dynamodb-token-cache.js';
import { ConcurrentChangeError, InvalidCursorError, TenantExistsError, type ApiKeyRecord, type Page, type RotationRecord, type Tenant, type TenantStore } from '../core/tenant-store.js';

const tenantPk = (id: string) => `tenant#${id}`;

export class DynamoDbTenantStore implements TenantStore {
  readonly #table: string;
  readonly #db: DynamoDBDocumentClient;

  constructor(opts: { tableName: string; client?: DynamoDBDocumentClient }) {
    this.#table = opts.tableName;
    this.#db = opts.client ?? createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE);
  }

  async createTenant(t: Tenant): Promise<void> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: tenantPk(t.tenantId), sk: 'tenant', gsi1pk: 'tenant', gsi1sk: t.tenantId, ...t },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') throw new TenantExistsError(`tenant ${t.tenantId} exists`);
      throw err;
    }
  }

  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    const out = await this.#db.send(new GetCommand({ TableName: this.#table, Key: { pk: tenantPk(tenantId), sk: 'tenant' }, ConsistentRead: true }));
    return out.Item ? toTenant(out.Item) : undefined;
  }

  async listTenants(limit: number, cursor: string | undefined): Promise<Page<Tenant>> {
    const out = await this.#db.send(
      new QueryCommand({
        TableName: this.#table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :t',
        ExpressionAttributeValues: { ':t': 'tenant' },
        Limit: limit,
        ExclusiveStartKey: decodeCursor(cursor),
      }),
    );
    return { items: (out.Items ?? []).map(toTenant), cursor: encodeCursor(out.LastEvaluatedKey) };
  }

  async updateTenant(tenantId: string, patch: Partial<Pick<Tenant, 'name' | 'status' | 'plan'>>, updatedAt: string): Promise<Tenant | undefined> {
    const names: Record<string, string> = { '#u': 'updatedAt' };
    const values: Record<string, unknown> = { ':u': updatedAt };
    const sets = ['#u = :u'];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      names[`#${k}`] = k;
      values[`:${k}`] = v;
      sets.push(`#${k} = :${k}`);
    }
    try {
      const out = await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: tenantPk(tenantId), sk: 'tenant' },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? toTenant(out.Attributes) : undefined;
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return undefined;
      throw err;
    }
  }

  async putKey(k: ApiKeyRecord): Promise<void> {
    await this.#db.send(new PutCommand({ TableName: this.#table, Item: { pk: tenantPk(k.tenantId), sk: `key#${k.keyId}`, ...k } }));
  }

  async putPendingKey(k: ApiKeyRecord): Promise<ApiKeyRecord | undefined> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: tenantPk(k.tenantId), sk: `key#${k.keyId}`, ...k, status: 'pending' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return undefined;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
      return this.getKey(k.tenantId, k.keyId);
    }
  }

  async activateKey(tenantId: string, keyId: string, a: { clientId: string; cacheKey: string }): Promise<void> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` },
          UpdateExpression: 'SET #s = :active, clientId = :client, cacheKeys = list_append(if_not_exists(cacheKeys, :empty), :k)',
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':active': 'active', ':pending': 'pending', ':client': a.clientId, ':k': [a.cacheKey], ':empty': [] },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') throw new ConcurrentChangeError();
      throw err;
    }
  }

  async deletePendingKey(tenantId: string, keyId: string): Promise<void> {
    try {
      await this.#db.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` },
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending' },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
    }
  }

  async getKey(tenantId: string, keyId: string): Promise<ApiKeyRecord | undefined> {
    const out = await this.#db.send(new GetCommand({ TableName: this.#table, Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` }, ConsistentRead: true }));
    return out.Item ? toKey(out.Item) : undefined;
  }

  async listKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    const items: ApiKeyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :k)',
          ExpressionAttributeValues: { ':pk': tenantPk(tenantId), ':k': 'key#' },
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(out.Items ?? []).map(toKey));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async recordRotation(tenantId: string, keyId: string, r: RotationRecord): Promise<void> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` },
          UpdateExpression:
            'SET rotatedAt = :at, clientId = :client, cacheKeys = list_append(if_not_exists(cacheKeys, :empty), :k), retiring = list_append(if_not_exists(retiring, :empty), :r)',
          // Two rotations racing: only the one that saw the current client records its successor.
          ConditionExpression: 'attribute_exists(pk) AND clientId = :previous',
          ExpressionAttributeValues: {
            ':at': r.at,
            ':client': r.clientId,
            ':previous': r.previousClientId,
            ':k': [r.cacheKey],
            ':r': [{ clientId: r.previousClientId, retireAt: r.retireAt }],
            ':empty': [],
          },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') throw new ConcurrentChangeError();
      throw err;
    }
  }

  async removeRetiring(tenantId: string, keyId: string, clientIds: string[]): Promise<void> {
    const key = await this.getKey(tenantId, keyId);
    if (!key) return;
    const keep = key.retiring.filter((r) => !clientIds.includes(r.clientId));
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` },
        UpdateExpression: 'SET retiring = :keep',
        ExpressionAttributeValues: { ':keep': keep },
      }),
    );
  }

  async markRevoked(tenantId: string, keyId: string, at: string): Promise<void> {
    await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { pk: tenantPk(tenantId), sk: `key#${keyId}` },
        UpdateExpression: 'SET #s = :r, revokedAt = if_not_exists(revokedAt, :at)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':r': 'revoked', ':at': at },
      }),
    );
  }
}

function toTenant(i: Record<string, unknown>): Tenant {
  return {
    tenantId: String(i.tenantId),
    name: String(i.name),
    status: i.status === 'disabled' ? 'disabled' : 'active',
    createdAt: String(i.createdAt),
    updatedAt: String(i.updatedAt),
    ...(typeof i.plan === 'string' ? { plan: i.plan } : {}),
  };
}

function toKey(i: Record<string, unknown>): ApiKeyRecord {
  return {
    tenantId: String(i.tenantId),
    keyId: String(i.keyId),
    name: String(i.name),
    clientId: String(i.clientId),
    scopes: Array.isArray(i.scopes) ? i.scopes.map(String) : [],
    status: i.status === 'revoked' ? 'revoked' : i.status === 'pending' ? 'pending' : 'active',
    createdAt: String(i.createdAt),
    createdBy: String(i.createdBy ?? ''),
    rotatedAt: typeof i.rotatedAt === 'string' ? i.rotatedAt : undefined,
    revokedAt: typeof i.revokedAt === 'string' ? i.revokedAt : undefined,
    cacheKeys: Array.isArray(i.cacheKeys) ? i.cacheKeys.map(String) : [],
    // Records written before rotation by successor clients have none.
    retiring: Array.isArray(i.retiring)
      ? i.retiring.flatMap((r: unknown) => {
          const o = r as { clientId?: unknown; retireAt?: unknown };
          return typeof o?.clientId === 'string' && typeof o.retireAt === 'number' ? [{ clientId: o.clientId, retireAt: o.retireAt }] : [];
        })
      : [],
  };
}

function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

/** Only cursors of the shape this store hands out are accepted; anything else is refused. */
function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (cursor === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o ?? {}).sort().join(',');
  if (typeof v !== 'object' || v === null || keys !== 'gsi1pk,gsi1sk,pk,sk' || o.gsi1pk !== 'tenant' || Object.values(o).some((x) => typeof x !== 'string')) {
    throw new InvalidCursorError();
  }
  return o;
}
