/**
 * The API-key path against real local servers: DynamoDB Local (level 2) and the local
 * oidc-provider authorization server (token endpoint with a request counter).
 */
import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
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
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { restEvent } from '../support/events.js';
import { ManualClock } from '../support/clock.js';
import { counting } from '../support/counting.js';
import { createTokenCacheTable, localDynamoClient } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let table: string;
let config: AuthorizerConfig;
let clock: ManualClock;

/** One simulated Lambda container: its own memory caches, the shared table. */
function container(opts: { shared?: SharedTokenCache | null } = {}) {
  const verifier = new JwtVerifier({ config: config.jwt, clock });
  const counted = counting(new DynamoDbTokenCache({ tableName: table }));
  const exchange = new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() }),
    shared: opts.shared === null ? undefined : (opts.shared ?? counted.shared),
    log: silentLog,
  });
  return { exchange, dynamoCalls: counted.calls, verifier };
}

async function newKey(tenantId = 'acme', scopes = ['read:things']) {
  return idp.registerClient({ tenantId, scopes, keyId: randomUUID() });
}

const exchanges = () => idp.stats.tokenRequests;

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things', 'write:things', 'users:read', 'users:write'] });
  table = await createTokenCacheTable();
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(() => {
  idp.setFailure('none');
  idp.resetStats();
  clock = new ManualClock(Date.now());
  config = loadAuthorizerConfig({
    ISSUER: idp.issuer,
    AUDIENCE: idp.audience,
    JWKS_URI: idp.jwksUri,
    TOKEN_ENDPOINT: idp.tokenEndpoint,
    TOKEN_AUDIENCE_PARAM: 'resource',
    TOKEN_CACHE_TABLE: table,
    EXCHANGE_TIMEOUT_MS: '10000',
  });
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
    expect(dump).not.toContain('eyJ'); // no JWT in clear
    const sealed = item!.sealed!.S!;
    expect(openToken(key, cacheKey, sealed)).toMatch(/^eyJ/);
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

  it('goes on with level 1 and direct exchanges when DynamoDB is unreachable', async () => {
    const key = await newKey();
    const broken = new DynamoDbTokenCache({ tableName: table, clientConfig: { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 } });
    const c = container({ shared: broken });
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
    await warm.exchange.authenticate(key);
    clock.advance(1000);
    const revocations = new DynamoDbTokenCache({ tableName: table });
    await revocations.revokeClient(key.clientId, clock.now());
    await idp.deleteClient(key.clientId);
    // A container that has only level 2 refuses at once.
    await expect(container().exchange.authenticate(key)).rejects.toMatchObject({ code: 'ERR_API_KEY_REVOKED' });
    // The warm container stops within the bound, measured in one-second steps.
    let stoppedAfterS: number | undefined;
    for (let s = 0; s <= 120 && stoppedAfterS === undefined; s++) {
      const ok = await warm.exchange.authenticate(key).then(
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

  it('stops the old secret after a rotation while the new one works', async () => {
    const key = await newKey();
    const warm = container();
    await warm.exchange.authenticate(key);
    clock.advance(1000);
    await new DynamoDbTokenCache({ tableName: table }).setNotBefore(key.clientId, clock.now());
    const rotated = await idp.rotateClientSecret(key.clientId);
    clock.advance(config.apiKey.revocationCheckS * 1000);
    await expect(warm.exchange.authenticate(key)).rejects.toBeInstanceOf(CredentialsError);
    await expect(warm.exchange.authenticate({ clientId: key.clientId, clientSecret: rotated.clientSecret })).resolves.toMatchObject({ clientId: key.clientId });
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
