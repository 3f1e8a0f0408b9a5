/**
 * The API-key path against real local servers: DynamoDB Local (level 2) and the local
 * oidc-provider authorization server (token endpoint with a request counter).
 */
import { randomUUID } from 'node:crypto';
import { DeleteItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../../functions/adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler, AuthorizerUnavailableError } from '../../functions/authorizer/create-handler.js';
import { formatApiKey } from '../../functions/core/api-key.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { loadAuthorizerConfig, type AuthorizerConfig } from '../../functions/core/config.js';
import { CredentialsError, UpstreamUnavailableError } from '../../functions/core/errors.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { silentLog } from '../../functions/core/log.js';
import { credentialsCacheKey, openToken } from '../../functions/core/token-crypto.js';
import type { SharedTokenCache } from '../../functions/core/token-cache.js';
import { PrincipalStateSnapshot, type PrincipalState } from '../../functions/core/principal-state.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { restEvent } from '../support/events.js';
import { ManualClock } from '../support/clock.js';
import { counting } from '../support/counting.js';
import { keyHolderToken, localAuthorizerEnv } from '../support/servers.js';
import { createTenantsTable, createTokenCacheTable, localDynamoClient } from '../support/tables.js';
import { migrateToStateModel } from '../../functions/adapters/state-migration.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let table: string;
let config: AuthorizerConfig;
let clock: ManualClock;

/** One simulated Lambda container: its own memory caches, the shared table. */
function container(opts: { shared?: SharedTokenCache | null } = {}) {
  const verifier = new JwtVerifier({ config: config.jwt, clock });
  const counted = counting(new DynamoDbTokenCache({ tableName: table }));
  const state = new PrincipalStateSnapshot({ feed: new DynamoDbTokenCache({ tableName: table }), clock, log: silentLog, maxAgeMs: config.apiKey.revocationCheckS * 1000, retryAfterS: 5 });
  const exchange = new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() }),
    shared: opts.shared === null ? undefined : (opts.shared ?? counted.shared),
    keys: (id) => state.knownKey(id),
    log: silentLog,
  });
  const authenticator = new Authenticator({ verifier, state, keyPrefix: 'lk', apiKeys: async () => exchange });
  /** The whole decision, as the authorizer makes it: the exchange, then the principal's state. */
  const authenticate = (key: { clientId: string; clientSecret: string }) => exchange.authenticate(key).then((p) => state.check(p));
  return { exchange, dynamoCalls: counted.calls, verifier, authenticator, authenticate, state };
}

/** What the management functions write with: their (longer) DynamoDB deadlines. */
const states = () => new DynamoDbTokenCache({ tableName: table, client: createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE) });

const revoked = (clientId: string, at: number): PrincipalState => ({ kind: 'client', id: clientId, status: 'revoked', revokedAt: at, notBefore: 0, changedAt: at });

/** A key as the management API issues it: a client at the provider and its state record. */
async function newKey(tenantId = 'acme', scopes = ['read:things']) {
  const keyId = randomUUID();
  const client = await idp.registerClient({ tenantId, scopes, keyId });
  await new DynamoDbTokenCache({ tableName: table }).putState({ kind: 'client', id: client.clientId, status: 'active', revokedAt: 0, notBefore: 0, changedAt: Date.now(), tenantId, keyId });
  return client;
}

const exchanges = () => idp.stats.tokenRequests;

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things', 'write:things', 'users:read', 'users:write'] });
  table = await createTokenCacheTable();
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async () => {
  // A pause the provider asked for in one test is honoured by every container: start each test without one.
  const db = localDynamoClient();
  await db.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'backoff#token-endpoint' } } }));
  db.destroy();
  idp.setFailure('none');
  idp.resetStats();
  clock = new ManualClock(Date.now());
  config = loadAuthorizerConfig(localAuthorizerEnv(idp, table, { EXCHANGE_TIMEOUT_MS: '10000' }));
});

describe('exchange and caching', () => {
  it('gives a principal with the tenant from the verified token, and no user', async () => {
    const key = await newKey('globex', ['read:things', 'write:things']);
    const principal = await container().exchange.authenticate(key);
    expect(principal).toMatchObject({ tenantId: 'globex', clientId: key.clientId, userId: undefined, authMethod: 'api_key' });
    expect(principal.scopes).toEqual(expect.arrayContaining(['read:things', 'write:things']));
  });

  it('makes one exchange for 50 concurrent first uses in one container', async () => {
    const key = await newKey();
    const c = container();
    const results = await Promise.all(Array.from({ length: 50 }, () => c.exchange.authenticate(key)));
    expect(new Set(results.map((p) => p.clientId))).toEqual(new Set([key.clientId]));
    expect(exchanges()).toBe(1);
  });

  it('answers level-1 hits with no exchange and no DynamoDB call', async () => {
    const key = await newKey();
    const c = container();
    await c.exchange.authenticate(key);
    const before = { ex: exchanges(), db: c.dynamoCalls.n };
    for (let i = 0; i < 100; i++) await c.exchange.authenticate(key);
    expect(exchanges() - before.ex).toBe(0);
    expect(c.dynamoCalls.n - before.db).toBe(0);
  });

  it('answers a level-2 hit in a new container with one DynamoDB call and no exchange', async () => {
    const key = await newKey();
    await container().exchange.authenticate(key);
    const c2 = container();
    const before = exchanges();
    await c2.exchange.authenticate(key);
    expect(exchanges() - before).toBe(0);
    expect(c2.dynamoCalls.n).toBe(1);
  });

  it('keeps a cold-start stampede to at most 2 exchanges: 200 first uses over 4 containers', async () => {
    const key = await newKey();
    const containers = Array.from({ length: 4 }, () => container());
    await Promise.all(Array.from({ length: 200 }, (_, i) => containers[i % 4]!.exchange.authenticate(key)));
    expect(exchanges()).toBeLessThanOrEqual(2);
  });

  it('refreshes shortly before expiry, and never serves an expired token', async () => {
    const key = await newKey();
    const c = container();
    const first = await c.exchange.authenticate(key);
    const lifetimeMs = first.expiresAt * 1000 - clock.now();
    clock.advance(lifetimeMs - (config.apiKey.refreshBeforeS - 5) * 1000);
    idp.resetStats();
    const refreshed = await c.exchange.authenticate(key);
    expect(exchanges()).toBe(1);
    expect(refreshed.expiresAt).toBeGreaterThan(first.expiresAt - 1);
  });
});

describe('the shared cache item is useless without the secret', () => {
  it('holds neither the secret nor a usable token', async () => {
    const key = await newKey();
    await container().exchange.authenticate(key);
    const db = localDynamoClient();
    const { Items = [] } = await db.send(new ScanCommand({ TableName: table }));
    db.destroy();
    const cacheKey = credentialsCacheKey(key);
    const item = Items.find((i) => i.pk?.S === `tok#${cacheKey}`);
    expect(item).toBeDefined();
    const dump = JSON.stringify(Items);
    expect(dump).not.toContain(key.clientSecret);
    // No JWT in clear: neither this token nor anything shaped like one (a random id or a sealed
    // value may contain the letters "eyJ"; a compact JWS has two dots between base64url parts).
    const sealed = item!.sealed!.S!;
    const token = openToken(key, cacheKey, sealed);
    expect(token).toMatch(/^eyJ/);
    expect(dump).not.toContain(token!.split('.')[1]!);
    expect(dump).not.toMatch(/eyJ[\w-]*\.[\w-]+\.[\w-]*/);
    expect(openToken({ ...key, clientSecret: `${key.clientSecret}x` }, cacheKey, sealed)).toBeUndefined();
    expect(openToken(key, credentialsCacheKey({ ...key, clientId: 'other' }), sealed)).toBeUndefined();
  });
});

describe('wrong secrets', () => {
  it('are refused, cached negatively in both levels, while the right secret keeps working', async () => {
    const key = await newKey();
    const wrong = { ...key, clientSecret: 'not-the-secret' };
    const c = container();
    await expect(c.exchange.authenticate(wrong)).rejects.toBeInstanceOf(CredentialsError);
    expect(exchanges()).toBe(1);
    for (let i = 0; i < 20; i++) await expect(c.exchange.authenticate(wrong)).rejects.toBeInstanceOf(CredentialsError);
    await expect(container().exchange.authenticate(wrong)).rejects.toBeInstanceOf(CredentialsError);
    expect(exchanges()).toBe(1);
    await expect(c.exchange.authenticate(key)).resolves.toMatchObject({ clientId: key.clientId });
    clock.advance((config.apiKey.negativeCacheS + 1) * 1000);
    await expect(c.exchange.authenticate(wrong)).rejects.toBeInstanceOf(CredentialsError);
    expect(exchanges()).toBe(3);
  });
});

describe('identity provider failures are not the caller’s fault', () => {
  it.each(['unavailable', 'rate-limited', 'slow'] as const)('%s: 503 with Retry-After, no negative entry', async (mode) => {
    const key = await newKey();
    idp.setFailure(mode);
    const err = await container().exchange.authenticate(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).retryAfterS).toBeGreaterThanOrEqual(1);
    idp.setFailure('none');
    // A pause the provider asked for (429) is honoured until its end; then the key works.
    clock.advance((err as UpstreamUnavailableError).retryAfterS * 1000);
    await expect(container().exchange.authenticate(key)).resolves.toMatchObject({ clientId: key.clientId });
  });

  it('keeps serving a cached valid token while the provider is down, even past the refresh point', async () => {
    const key = await newKey();
    const c = container();
    const first = await c.exchange.authenticate(key);
    idp.setFailure('unavailable');
    clock.advance(first.expiresAt * 1000 - clock.now() - 10_000);
    await expect(c.exchange.authenticate(key)).resolves.toMatchObject({ clientId: key.clientId });
    clock.advance(20_000);
    await expect(c.exchange.authenticate(key)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('goes on with level 1 and direct exchanges for keys the state snapshot knows when level 2 is unreachable; others wait (503)', async () => {
    const key = await newKey();
    const broken = new DynamoDbTokenCache({ tableName: table, clientConfig: { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 } });
    const c = container({ shared: broken });
    // Before the container's state copy knows the key: not checked, so not sent to the provider.
    await expect(c.exchange.authenticate(key)).rejects.toMatchObject({ code: 'ERR_TOKEN_CACHE_UNAVAILABLE' });
    await expect(c.exchange.authenticate({ clientId: 'random-id', clientSecret: 'x' })).rejects.toBeInstanceOf(UpstreamUnavailableError);
    expect(exchanges()).toBe(0);
    await c.state.current(); // the container's state copy syncs (the feed is reachable; only level 2 is not)
    await expect(c.exchange.authenticate(key)).resolves.toMatchObject({ clientId: key.clientId });
    await expect(c.exchange.authenticate(key)).resolves.toMatchObject({ clientId: key.clientId });
    expect(exchanges()).toBe(1);
  });

  it('answers the authorizer with a failure (503), never Unauthorized', async () => {
    const key = await newKey();
    idp.setFailure('unavailable');
    const c = container();
    const handler = createAuthorizerHandler({
      authenticator: new Authenticator({ verifier: c.verifier, keyPrefix: 'lk', apiKeys: async () => c.exchange }),
      log: silentLog,
    });
    const basic = `Basic ${Buffer.from(`${key.clientId}:${key.clientSecret}`).toString('base64')}`;
    await expect(handler(restEvent({ Authorization: basic }))).rejects.toBeInstanceOf(AuthorizerUnavailableError);
  });
});

describe('revocation', () => {
  it('stops a revoked key within the stated bound (REVOCATION_CHECK_S) in every container', async () => {
    const key = await newKey();
    const warm = container();
    await warm.authenticate(key);
    clock.advance(1000);
    await states().putState(revoked(key.clientId, clock.now()));
    await idp.deleteClient(key.clientId);
    // A container that has only level 2 refuses at once.
    await expect(container().exchange.authenticate(key)).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    // The warm container stops within the bound, measured in one-second steps.
    let stoppedAfterS: number | undefined;
    for (let s = 0; s <= 120 && stoppedAfterS === undefined; s++) {
      const ok = await warm.authenticate(key).then(
        () => true,
        () => false,
      );
      if (!ok) stoppedAfterS = s;
      else clock.advance(1000);
    }
    expect(stoppedAfterS).toBeDefined();
    expect(stoppedAfterS!).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
    expect(config.apiKey.revocationCheckS).toBeLessThanOrEqual(60);
  });

  it('upgrades from the previous version: registry keys and old markers keep their meaning after the migration', async () => {
    const tenantsTable = await createTenantsTable('upgrade');
    const db = localDynamoClient();
    // The previous version's shapes: key records without state items, a revocation marker, a not-before.
    const live = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId: 'key_live' });
    const gone = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId: 'key_gone' });
    const rotated = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId: 'key_rotated' });
    const goneToken = await keyHolderToken(idp, gone);
    const oldKey = (k: { clientId: string }, keyId: string, status: string) => ({
      pk: { S: 'tenant#acme' }, sk: { S: `key#${keyId}` }, tenantId: { S: 'acme' }, keyId: { S: keyId }, name: { S: keyId }, clientId: { S: k.clientId },
      scopes: { L: [{ S: 'read:things' }] }, status: { S: status }, createdAt: { S: new Date(clock.now()).toISOString() }, createdBy: { S: 'ops' }, cacheKeys: { L: [] },
    });
    for (const item of [oldKey(live, 'key_live', 'active'), oldKey(gone, 'key_gone', 'revoked'), oldKey(rotated, 'key_rotated', 'active')]) {
      await db.send(new PutItemCommand({ TableName: tenantsTable, Item: item }));
    }
    await db.send(new PutItemCommand({ TableName: table, Item: { pk: { S: `client#${gone.clientId}` }, revoked: { BOOL: true }, revokedAt: { N: String(clock.now()) } } }));
    await db.send(new PutItemCommand({ TableName: table, Item: { pk: { S: `client#${rotated.clientId}` }, notBefore: { N: String(clock.now() + 1000) } } }));
    db.destroy();

    // Before the migration, the new authorizer does not know the live key: refused, and nothing reached the provider.
    idp.resetStats();
    await expect(container().exchange.authenticate(live)).rejects.toMatchObject({ code: 'ERR_API_KEY_UNKNOWN' });
    expect(exchanges()).toBe(0);

    const report = await migrateToStateModel({ tenantsTable, tokenCacheTable: table, states: states(), clock, log: silentLog });
    expect(report.keysRecorded).toBe(3);
    // Idempotent.
    expect(await migrateToStateModel({ tenantsTable, tokenCacheTable: table, states: states(), clock, log: silentLog })).toEqual({ keysRecorded: 0, markersJoined: 0 });

    clock.advance(2000);
    const c = container();
    await expect(c.authenticate(live)).resolves.toMatchObject({ clientId: live.clientId, tenantId: 'acme' });
    await expect(c.authenticate(gone)).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    // The revoked key's own bearer token, fetched before the upgrade, is refused too.
    await expect(c.authenticator.authenticate({ headers: { authorization: `Bearer ${goneToken}` } })).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    // A token issued before an old rotation's not-before is refused on the bearer path too.
    await expect(c.authenticator.authenticate({ headers: { authorization: `Bearer ${await keyHolderToken(idp, rotated)}` } })).rejects.toMatchObject({ code: 'ERR_API_KEY_ROTATED' });
  });
});

describe('through the authorizer handler', () => {
  it('accepts Basic, X-Api-Key and a prefixed key, with api_key context and no user', async () => {
    const key = await newKey('initech');
    const c = container();
    const handler = createAuthorizerHandler({
      authenticator: new Authenticator({ verifier: c.verifier, keyPrefix: 'lk', apiKeys: async () => c.exchange }),
      log: silentLog,
    });
    const single = formatApiKey('lk', key);
    const forms: Record<string, string>[] = [
      { Authorization: `Basic ${Buffer.from(`${encodeURIComponent(key.clientId)}:${encodeURIComponent(key.clientSecret)}`).toString('base64')}` },
      { 'X-Api-Key': single },
      { Authorization: `Basic ${Buffer.from(`${single}:`).toString('base64')}` },
    ];
    for (const headers of forms) {
      const result = await handler(restEvent(headers));
      expect(result).toMatchObject({ principalId: `${key.clientId}@clients`, context: { tenantId: 'initech', userId: '', clientId: key.clientId, authMethod: 'api_key' } });
    }
    expect(exchanges()).toBe(1);
    await expect(handler(restEvent({ 'X-Api-Key': `${single.slice(0, -1)}x` }))).rejects.toThrow(/^Unauthorized$/);
    expect(exchanges()).toBe(1);
  });
});
