/**
 * Point reads of principal state against DynamoDB Local, through both adapters: the
 * authorizer's light SigV4 client (`DynamoDbStateFeed`) and the SDK one (`DynamoDbTokenCache`);
 * and a container whose first sync over a large feed has not landed deciding on them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateFeed } from '../../functions/adapters/dynamodb-state-feed.js';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { silentLog } from '../../functions/core/log.js';
import { PrincipalStateSnapshot, type PrincipalState, type PrincipalStateFeed } from '../../functions/core/principal-state.js';
import { STATE_FEED_PAGE } from '../../functions/adapters/dynamodb-state-items.js';
import { countingFeed } from '../support/counting.js';
import { addBulkStates, createTokenCacheTable, localLightDynamoDb } from '../support/tables.js';

let table: string;
let writer: DynamoDbTokenCache;
let light: DynamoDbStateFeed;
const now = Date.now();

beforeAll(async () => {
  table = await createTokenCacheTable();
  writer = new DynamoDbTokenCache({ tableName: table });
  light = new DynamoDbStateFeed(localLightDynamoDb(table));
  const states: PrincipalState[] = [
    { kind: 'client', id: 'c-revoked', status: 'revoked', revokedAt: now - 1000, notBefore: 0, changedAt: now, tenantId: 'acme', keyId: 'k1' },
    { kind: 'client', id: 'c-live', status: 'active', revokedAt: 0, notBefore: 0, changedAt: now, tenantId: 'frozen', keyId: 'k2' },
    { kind: 'tenant', id: 'frozen', status: 'disabled', revokedAt: 0, notBefore: 0, changedAt: now },
    { kind: 'user', id: 'auth0|blocked', status: 'blocked', revokedAt: 0, notBefore: 0, changedAt: now },
  ];
  for (const s of states) await writer.putState(s);
});

describe('statesOf', () => {
  it('reads the named states in one request through either adapter; unknown principals have none', async () => {
    const keys = [
      { kind: 'client', id: 'c-revoked' },
      { kind: 'tenant', id: 'frozen' },
      { kind: 'user', id: 'auth0|blocked' },
      { kind: 'user', id: 'auth0|nobody' },
    ] as const;
    for (const feed of [light, writer]) {
      const got = await feed.statesOf(keys);
      expect(got.map((s) => `${s.kind}#${s.id}:${s.status}`).sort()).toEqual(['client#c-revoked:revoked', 'tenant#frozen:disabled', 'user#auth0|blocked:blocked']);
      expect(got.find((s) => s.kind === 'client')).toMatchObject({ tenantId: 'acme', keyId: 'k1', revokedAt: now - 1000 });
    }
  });

  it("lets a container decide before its first sync, the tenant of a key's token read from its client", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const feed: PrincipalStateFeed = {
      changesSince: async (since, onMorePages) => {
        onMorePages?.(); // a large deployment: its first page says more are coming
        await held;
        return light.changesSince(since);
      },
      statesOf: (keys) => light.statesOf(keys),
    };
    const snapshot = new PrincipalStateSnapshot({ feed, clock: { now: () => Date.now() }, log: silentLog, maxAgeMs: 30_000, retryAfterS: 5 });
    const key = (clientId: string) => ({ subject: `${clientId}@clients`, tenantId: undefined, userId: undefined, clientId, roles: [], scopes: [], authMethod: 'jwt' as const, expiresAt: 2e9, issuedAtMs: now });
    await expect(Promise.resolve().then(() => snapshot.check(key('c-revoked')))).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    await expect(Promise.resolve().then(() => snapshot.check(key('c-live')))).rejects.toMatchObject({ code: 'ERR_TENANT_DISABLED' });
    expect(snapshot.syncs).toBe(0);
    release();
    await snapshot.current();
    expect(snapshot.syncs).toBe(1);
  });

  it('tells the snapshot when the feed spans pages, and a new container then decides on one point read per principal', async () => {
    const big = await createTokenCacheTable();
    await addBulkStates(big, { changedAt: now });
    await new DynamoDbTokenCache({ tableName: big }).putState({ kind: 'client', id: 'c-revoked', status: 'revoked', revokedAt: now - 1000, notBefore: 0, changedAt: now, tenantId: 'acme', keyId: 'k1' });
    const feed = new DynamoDbStateFeed(localLightDynamoDb(big, { region: 'us-east-1' }));
    let pages = 0;
    expect(await feed.changesSince(undefined, () => pages++)).toHaveLength(STATE_FEED_PAGE + 2);
    expect(pages).toBe(1);

    const counted = countingFeed(feed);
    const snapshot = new PrincipalStateSnapshot({ feed: counted.feed, clock: { now: () => Date.now() }, log: silentLog, maxAgeMs: 30_000, retryAfterS: 5 });
    const key = { subject: 'c-revoked@clients', tenantId: 'acme', userId: undefined, clientId: 'c-revoked', roles: [], scopes: [], authMethod: 'jwt' as const, expiresAt: 2e9, issuedAtMs: now };
    await expect(Promise.resolve().then(() => snapshot.check(key))).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    expect(counted.reads.pointReads).toBe(1);
  });
});
