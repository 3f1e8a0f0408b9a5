/**
 * The management API end to end in-process: real authorizer output for each kind of caller
 * (user tokens and M2M tokens from the local oidc-provider, API keys issued by this API),
 * the tenants and users handlers with their real adapters (DynamoDB Local, the local
 * identity provider over HTTP), Powertools idempotency.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { idempotencyMiddleware } from '../../functions/adapters/idempotency.js';
import { LocalIdentityProvider } from '../../functions/adapters/local-identity-provider.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { DEFAULT_KEY_SCOPES, loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { KeyLifecycle } from '../../functions/core/key-lifecycle.js';
import { PrincipalStateSnapshot } from '../../functions/core/principal-state.js';
import { silentLog } from '../../functions/core/log.js';
import { createApiHandler } from '../../functions/http/api-handler.js';
import { createTenantRoutes } from '../../functions/tenants/routes.js';
import { createUserRoutes } from '../../functions/users/routes.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { createHarness, type Harness, type HarnessResponse } from '../support/api-harness.js';
import { ManualClock } from '../support/clock.js';
import { createIdempotencyTable, createTenantsTable, createTokenCacheTable } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let api: Harness;
let clock: ManualClock;
let revocationCheckS: number;
const tokens: Record<string, string> = {};
const bearer = (who: string) => ({ Authorization: `Bearer ${tokens[who]}` });
const apiKeyHeader = (key: string) => ({ 'X-Api-Key': key });

function expectProblem(res: HarnessResponse, status: number, slug?: string) {
  expect(res.status).toBe(status);
  expect(res.headers['Content-Type']).toBe('application/problem+json');
  const body = res.body as { type: string; status: number; title: string };
  expect(body.status).toBe(status);
  if (slug) expect(body.type).toBe(`https://latchkey.dev/problems/${slug}`);
}

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0 });
  const [tenantsTable, cacheTable, idemTable] = await Promise.all([createTenantsTable(), createTokenCacheTable(), createIdempotencyTable()]);
  clock = new ManualClock(Date.now());
  const config = loadAuthorizerConfig({ ISSUER: idp.issuer, AUDIENCE: idp.audience, TOKEN_AUDIENCE_PARAM: 'resource', TOKEN_CACHE_TABLE: cacheTable });
  revocationCheckS = config.apiKey.revocationCheckS;
  const verifier = new JwtVerifier({ config: config.jwt, clock });
  const shared = new DynamoDbTokenCache({ tableName: cacheTable });
  const exchange = new ApiKeyExchange({ config: config.apiKey, jwtConfig: config.jwt, clock, verifier, tokenEndpoint: new OAuthTokenEndpoint(config.apiKey), shared, log: silentLog });
  const state = new PrincipalStateSnapshot({ feed: shared, clock, log: silentLog, maxAgeMs: revocationCheckS * 1000, retryAfterS: 5 });
  const authorizer = createAuthorizerHandler({ authenticator: new Authenticator({ verifier, state, keyPrefix: 'lk', apiKeys: async () => exchange }), log: silentLog });
  const store = new DynamoDbTenantStore({ tableName: tenantsTable });
  const local = new LocalIdentityProvider({ baseUrl: idp.origin, adminToken: idp.adminToken, registrationToken: idp.initialAccessToken });
  const keys = new KeyLifecycle({
    store,
    idp: async () => local,
    states: shared,
    tokens: shared,
    clock,
    log: silentLog,
    audience: idp.audience,
    keyScopes: DEFAULT_KEY_SCOPES.split(' '),
  });
  const tenantRoutes = createTenantRoutes({ store, keys, clock, keyPrefix: 'lk' });
  const userRoutes = createUserRoutes({ store, idp: async () => local, states: shared, clock, log: silentLog });
  const idem = idempotencyMiddleware(idemTable);
  api = createHarness({
    authorizer,
    routes: [
      { name: 'tenants', resources: tenantRoutes.map((r) => r.resource), handler: createApiHandler({ routes: tenantRoutes, log: silentLog, idempotency: idem }) },
      { name: 'users', resources: userRoutes.map((r) => r.resource), handler: createApiHandler({ routes: userRoutes, log: silentLog, idempotency: idem }) },
    ],
  });
  const people = {
    platform: { roles: ['platform:admin'] },
    acmeAdmin: { tenantId: 'acme', roles: ['tenant:admin'] },
    acmeMember: { tenantId: 'acme', roles: ['tenant:member'] },
    globexAdmin: { tenantId: 'globex', roles: ['tenant:admin'] },
  };
  for (const [who, p] of Object.entries(people)) {
    const user = idp.addUser({ email: `${who.toLowerCase()}@example.test`, password: 'correct horse battery', ...p });
    tokens[who] = await idp.issueUserToken({ userId: user.userId });
  }
  // A service calling with its own M2M token (Bearer), not through an API key.
  const svc = await idp.registerClient({ tenantId: 'acme', scopes: ['users:read'] });
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: idp.audience, client_id: svc.clientId, client_secret: svc.clientSecret }),
  });
  tokens.service = ((await res.json()) as { access_token: string }).access_token;
  for (const t of ['acme', 'globex']) {
    const created = await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: t, name: t.toUpperCase() } });
    expect(created.status).toBe(201);
  }
});
afterAll(async () => {
  await idp?.stop();
});

describe('tenants', () => {
  it('lets platform operators create, read, page through and update tenants', async () => {
    expectProblem(await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'acme', name: 'again' } }), 409, 'conflict');
    expectProblem(await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'bad id!', name: 'x' } }), 400, 'validation-error');
    expect((await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'initech', name: 'Initech' } })).status).toBe(201);
    const page1 = await api.call('GET', '/tenants', { headers: bearer('platform'), query: { limit: '2' } });
    const body1 = page1.body as { items: { tenantId: string }[]; nextCursor: string };
    expect(body1.items).toHaveLength(2);
    const page2 = await api.call('GET', '/tenants', { headers: bearer('platform'), query: { limit: '2', cursor: body1.nextCursor } });
    const ids = [...body1.items, ...(page2.body as { items: { tenantId: string }[] }).items].map((t) => t.tenantId);
    expect(ids.sort()).toEqual(['acme', 'globex', 'initech']);
    expectProblem(await api.call('GET', '/tenants', { headers: bearer('platform'), query: { cursor: 'garbage' } }), 400);
    const patched = await api.call('PATCH', '/tenants/initech', { headers: bearer('platform'), body: { name: 'Initech Corp' } });
    expect(patched.body).toMatchObject({ tenantId: 'initech', name: 'Initech Corp', status: 'active' });
  });

  it('lets a tenant read its own tenant only, and nobody but operators manage tenants', async () => {
    expect((await api.call('GET', '/tenants/acme', { headers: bearer('acmeMember') })).body).toMatchObject({ tenantId: 'acme' });
    expectProblem(await api.call('GET', '/tenants/globex', { headers: bearer('acmeAdmin') }), 403, 'forbidden');
    expectProblem(await api.call('POST', '/tenants', { headers: bearer('acmeAdmin'), body: { tenantId: 'mine', name: 'x' } }), 403, 'insufficient-scope');
    expectProblem(await api.call('GET', '/tenants', { headers: bearer('acmeAdmin') }), 403, 'insufficient-scope');
    expectProblem(await api.call('DELETE', '/tenants/acme', { headers: bearer('acmeAdmin') }), 403, 'insufficient-scope');
  });

  it('disables a tenant and revokes its keys on DELETE', async () => {
    await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'doomed', name: 'Doomed' } });
    const key = (await api.call('POST', '/tenants/doomed/api-keys', { headers: bearer('platform'), body: { name: 'k', scopes: ['users:read'] } })).body as { apiKey: string };
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(200);
    expect((await api.call('DELETE', '/tenants/doomed', { headers: bearer('platform') })).status).toBe(204);
    expect((await api.call('GET', '/tenants/doomed', { headers: bearer('platform') })).body).toMatchObject({ status: 'disabled' });
    clock.advance(revocationCheckS * 1000);
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(401);
    expectProblem(await api.call('POST', '/tenants/doomed/api-keys', { headers: bearer('platform'), body: { name: 'k2', scopes: ['users:read'] } }), 409);
    // Deleted is for good: it cannot be re-enabled (its registry record only says disabled).
    expectProblem(await api.call('PATCH', '/tenants/doomed', { headers: bearer('platform'), body: { status: 'active' } }), 409, 'conflict');
    expect((await api.call('GET', '/tenants/doomed', { headers: bearer('platform') })).body).toMatchObject({ status: 'disabled' });
  });
});

describe('API keys', () => {
  it('issues a key whose secret is shown once, lists it without secrets, and the key works', async () => {
    const created = await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'billing sync', scopes: ['users:read', 'users:write'] } });
    expect(created.status).toBe(201);
    const key = created.body as { keyId: string; clientId: string; clientSecret: string; apiKey: string };
    expect(key.apiKey).toMatch(/^lk_/);
    expect(created.headers.Location).toBe(`/tenants/acme/api-keys/${key.keyId}`);
    const me = await api.call('GET', '/me', { headers: { Authorization: `Basic ${Buffer.from(`${key.clientId}:${key.clientSecret}`).toString('base64')}` } });
    expect(me.body).toMatchObject({ tenantId: 'acme', authMethod: 'api_key', clientId: key.clientId, userId: null });
    const list = await api.call('GET', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin') });
    const listed = (list.body as { items: Record<string, unknown>[] }).items.find((k) => k.keyId === key.keyId)!;
    expect(listed).toMatchObject({ name: 'billing sync', status: 'active', scopes: ['users:read', 'users:write'] });
    expect(listed.lastUsedAt).toEqual(expect.any(String));
    expect(JSON.stringify(list.body)).not.toContain(key.clientSecret);
  });

  it('refuses scopes a key may not carry, and a key cannot mint a stronger key', async () => {
    expectProblem(await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'x', scopes: ['tenants:admin'] } }), 400);
    const weak = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'w', scopes: ['keys:write'] } })).body as { apiKey: string };
    expectProblem(await api.call('POST', '/tenants/acme/api-keys', { headers: apiKeyHeader(weak.apiKey), body: { name: 'x', scopes: ['users:write'] } }), 400);
    expect((await api.call('POST', '/tenants/acme/api-keys', { headers: apiKeyHeader(weak.apiKey), body: { name: 'y', scopes: ['keys:write'] } })).status).toBe(201);
  });

  it('rotates: the new secret works, the old one stops within the bound', async () => {
    const key = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'r', scopes: ['users:read'] } })).body as { keyId: string; apiKey: string };
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(200);
    clock.advance(1000);
    const rotated = await api.call('POST', `/tenants/acme/api-keys/${key.keyId}/rotate`, { headers: bearer('acmeAdmin') });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body as { apiKey: string; rotatedAt: string };
    expect(fresh.apiKey).not.toBe(key.apiKey);
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(fresh.apiKey) })).status).toBe(200);
    clock.advance(revocationCheckS * 1000);
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(401);
  });

  it('revokes: the key stops within the stated bound, and a second DELETE is harmless', async () => {
    const key = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'leaked', scopes: ['users:read'] } })).body as { keyId: string; apiKey: string };
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(200);
    expect((await api.call('DELETE', `/tenants/acme/api-keys/${key.keyId}`, { headers: bearer('acmeAdmin') })).status).toBe(204);
    expect((await api.call('DELETE', `/tenants/acme/api-keys/${key.keyId}`, { headers: bearer('acmeAdmin') })).status).toBe(204);
    clock.advance(revocationCheckS * 1000);
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(key.apiKey) })).status).toBe(401);
    const listed = ((await api.call('GET', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin') })).body as { items: { keyId: string; status: string }[] }).items;
    expect(listed.find((k) => k.keyId === key.keyId)).toMatchObject({ status: 'revoked' });
    expectProblem(await api.call('POST', `/tenants/acme/api-keys/${key.keyId}/rotate`, { headers: bearer('acmeAdmin') }), 409);
  });

  it('replays a retried creation without its secret, and refuses a reused key with another body', async () => {
    const headers = { ...bearer('acmeAdmin'), 'Idempotency-Key': randomUUID() };
    const first = await api.call('POST', '/tenants/acme/api-keys', { headers, body: { name: 'idem', scopes: ['users:read'] } });
    const again = await api.call('POST', '/tenants/acme/api-keys', { headers, body: { name: 'idem', scopes: ['users:read'] } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(again.status).toBe(201);
    const a = first.body as Record<string, unknown>;
    const b = again.body as Record<string, unknown>;
    expect(b.keyId).toBe(a.keyId);
    expect(a.clientSecret).toEqual(expect.any(String));
    expect(b).toMatchObject({ secretRedacted: true });
    expect(b.clientSecret).toBeUndefined();
    expectProblem(await api.call('POST', '/tenants/acme/api-keys', { headers, body: { name: 'other', scopes: ['users:read'] } }), 422, 'idempotency-key-reused');
    const keys = ((await api.call('GET', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin') })).body as { items: { name: string }[] }).items;
    expect(keys.filter((k) => k.name === 'idem')).toHaveLength(1);
  });
});

describe('users', () => {
  it('creates users in the caller’s tenant and refuses fields only the platform sets', async () => {
    const created = await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'new.user@acme.test', name: 'New User', roles: ['tenant:member'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'new.user@acme.test', tenantId: 'acme', roles: ['tenant:member'] });
    expect(idp.findUserByEmail('new.user@acme.test')).toMatchObject({ tenantId: 'acme' });
    for (const body of [
      { email: 'a@acme.test', tenantId: 'globex' },
      { email: 'a@acme.test', app_metadata: { tenant_id: 'globex' } },
      { email: 'a@acme.test', connection: 'other' },
      { email: 'a@acme.test', email_verified: true },
      { email: 'a@acme.test', roles: ['platform:admin'] },
      { email: 'not-an-email' },
      { email: 'a@acme.test', surprise: 1 },
    ]) {
      expectProblem(await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body }), 400, 'validation-error');
    }
    expect(idp.findUserByEmail('a@acme.test')).toBeUndefined();
    expectProblem(await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'new.user@acme.test' } }), 409);
  });

  it('lets a tenant back-end create its own users with an API key holding users:write', async () => {
    const key = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'backend', scopes: ['users:read', 'users:write'] } })).body as { apiKey: string };
    const created = await api.call('POST', '/users', { headers: apiKeyHeader(key.apiKey), body: { email: 'from.backend@acme.test' } });
    expect(created.body).toMatchObject({ tenantId: 'acme' });
    const readOnly = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'ro', scopes: ['users:read'] } })).body as { apiKey: string };
    expectProblem(await api.call('POST', '/users', { headers: apiKeyHeader(readOnly.apiKey), body: { email: 'nope@acme.test' } }), 403, 'insufficient-scope');
    expect((await api.call('GET', '/users', { headers: apiKeyHeader(readOnly.apiKey) })).status).toBe(200);
  });

  it('lists, reads, updates and deletes only the tenant’s users, with pagination and email filter', async () => {
    for (let i = 0; i < 3; i++) await api.call('POST', '/users', { headers: bearer('globexAdmin'), body: { email: `g${i}@globex.test` } });
    const page = await api.call('GET', '/users', { headers: bearer('globexAdmin'), query: { per_page: '2', page: '0' } });
    const body = page.body as { items: { tenantId: string }[]; total: number };
    expect(body.items).toHaveLength(2);
    expect(body.items.every((u) => u.tenantId === 'globex')).toBe(true);
    const byEmail = await api.call('GET', '/users', { headers: bearer('globexAdmin'), query: { email: 'g1@globex.test' } });
    expect((byEmail.body as { items: { email: string }[] }).items.map((u) => u.email)).toEqual(['g1@globex.test']);
    const user = (byEmail.body as { items: { userId: string }[] }).items[0]!;
    const path = `/users/${encodeURIComponent(user.userId)}`;
    expect((await api.call('PATCH', path, { headers: bearer('globexAdmin'), body: { name: 'G One', roles: ['tenant:admin'], blocked: true } })).body).toMatchObject({
      name: 'G One',
      roles: ['tenant:admin'],
      blocked: true,
    });
    expectProblem(await api.call('PATCH', path, { headers: bearer('globexAdmin'), body: { app_metadata: {} } }), 400);
    expectProblem(await api.call('PATCH', path, { headers: bearer('globexAdmin'), body: {} }), 400);
    expect((await api.call('DELETE', path, { headers: bearer('globexAdmin') })).status).toBe(204);
    expectProblem(await api.call('GET', path, { headers: bearer('globexAdmin') }), 404);
  });

  it('lets members read but not write, and platform operators act for a named tenant', async () => {
    expect((await api.call('GET', '/users', { headers: bearer('acmeMember') })).status).toBe(200);
    expectProblem(await api.call('POST', '/users', { headers: bearer('acmeMember'), body: { email: 'x@acme.test' } }), 403, 'insufficient-scope');
    const forGlobex = await api.call('POST', '/users', { headers: bearer('platform'), query: { tenantId: 'globex' }, body: { email: 'ops.made@globex.test' } });
    expect(forGlobex.body).toMatchObject({ tenantId: 'globex' });
    expectProblem(await api.call('GET', '/users', { headers: bearer('acmeAdmin'), query: { tenantId: 'globex' } }), 403, 'forbidden');
    expectProblem(await api.call('GET', '/users', { headers: bearer('platform') }), 403, 'forbidden');
  });

  it('makes a retried user creation safe with Idempotency-Key', async () => {
    const headers = { ...bearer('acmeAdmin'), 'Idempotency-Key': randomUUID() };
    const a = await api.call('POST', '/users', { headers, body: { email: 'idem.user@acme.test' } });
    const b = await api.call('POST', '/users', { headers, body: { email: 'idem.user@acme.test' } });
    expect(a.status).toBe(201);
    expect(b.body).toEqual(a.body);
    // The same key from another caller is another request.
    const other = await api.call('POST', '/users', { headers: { ...bearer('globexAdmin'), 'Idempotency-Key': headers['Idempotency-Key'] }, body: { email: 'idem.user@globex.test' } });
    expect(other.body).toMatchObject({ tenantId: 'globex' });
  });

  it('answers a creation retried after a crash with the user the provider created, never another tenant\'s', async () => {
    // The provider created the user; the answer was lost and the idempotency record is gone.
    const made = idp.addUser({ email: 'crashed.create@acme.test', password: 'correct horse battery', tenantId: 'acme', roles: ['tenant:member'], name: 'Crashed' });
    const body = { email: 'crashed.create@acme.test', name: 'Crashed', roles: ['tenant:member'] };
    const retried = await api.call('POST', '/users', { headers: { ...bearer('acmeAdmin'), 'Idempotency-Key': randomUUID() }, body });
    expect(retried.status).toBe(201);
    expect(retried.body).toMatchObject({ userId: made.userId, email: body.email, tenantId: 'acme', roles: ['tenant:member'] });
    expect(retried.headers.Location).toBe(`/users/${encodeURIComponent(made.userId)}`);
    // Not marked as a retry, or not what this request would have created: 409, as before.
    expectProblem(await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body }), 409);
    expectProblem(await api.call('POST', '/users', { headers: { ...bearer('acmeAdmin'), 'Idempotency-Key': randomUUID() }, body: { ...body, roles: ['tenant:admin'] } }), 409);
    // Another tenant's user with that e-mail: 409 that names nothing of it.
    const theirs = idp.addUser({ email: 'their.user@globex.test', password: 'correct horse battery', tenantId: 'globex', roles: ['tenant:member'] });
    const refused = await api.call('POST', '/users', { headers: { ...bearer('acmeAdmin'), 'Idempotency-Key': randomUUID() }, body: { email: 'their.user@globex.test', roles: ['tenant:member'] } });
    expectProblem(refused, 409);
    expect(JSON.stringify(refused.body)).not.toContain(theirs.userId);
    expect(JSON.stringify(refused.body)).not.toContain('globex');
  });
});

describe('identity provider down', () => {
  it('answers 503 with Retry-After and creates nothing', async () => {
    await idp.pause();
    try {
      const res = await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'while.down@acme.test' } });
      expectProblem(res, 503, 'unavailable');
      expect(Number(res.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
      expectProblem(await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'while down', scopes: ['users:read'] } }), 503, 'unavailable');
    } finally {
      await idp.resume();
    }
    expect(idp.findUserByEmail('while.down@acme.test')).toBeUndefined();
    const keys = ((await api.call('GET', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin') })).body as { items: { name: string }[] }).items;
    expect(keys.some((k) => k.name === 'while down')).toBe(false);
  });
});

describe('/me for each kind of caller', () => {
  it('shows the caller as the authorizer saw it', async () => {
    expect((await api.call('GET', '/me', { headers: bearer('acmeAdmin') })).body).toMatchObject({ tenantId: 'acme', roles: ['tenant:admin'], authMethod: 'jwt', userId: expect.any(String) });
    expect((await api.call('GET', '/me', { headers: bearer('service') })).body).toMatchObject({ tenantId: 'acme', authMethod: 'jwt', userId: null, scopes: ['users:read'] });
    expect((await api.call('GET', '/me', { headers: bearer('platform') })).body).toMatchObject({ tenantId: null, roles: ['platform:admin'] });
    expect((await api.call('GET', '/me')).status).toBe(401);
  });
});

describe('malformed requests', () => {
  it('answers problem+json for bad JSON, wrong media type, unknown methods and oversize bodies', async () => {
    expectProblem(await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: '{"email":' }), 400, 'validation-error');
    expectProblem(await api.call('POST', '/users', { headers: { ...bearer('acmeAdmin'), 'Content-Type': 'text/plain' }, body: 'hello' }), 415, 'unsupported-media-type');
    expectProblem(await api.call('PUT', '/users', { headers: bearer('acmeAdmin') }), 405, 'method-not-allowed');
    expectProblem(await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'big@acme.test', name: 'x'.repeat(70_000) } }), 413, 'payload-too-large');
    expectProblem(await api.call('GET', '/users', { headers: bearer('acmeAdmin'), query: { per_page: '1000' } }), 400);
  });
});

describe('tenant isolation: another tenant’s caller is refused on every route, after a legitimate warm-up', () => {
  let acmeKey: { keyId: string; apiKey: string };
  let acmeUser: string;
  let globexKey: { apiKey: string };

  beforeAll(async () => {
    acmeKey = (await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'iso', scopes: ['keys:read', 'keys:write', 'users:read', 'users:write'] } })).body as typeof acmeKey;
    globexKey = (await api.call('POST', '/tenants/globex/api-keys', { headers: bearer('globexAdmin'), body: { name: 'iso', scopes: ['keys:read', 'keys:write', 'users:read', 'users:write'] } })).body as typeof globexKey;
    acmeUser = ((await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'isolated@acme.test' } })).body as { userId: string }).userId;
  });

  const intruders = () => ({ 'globex admin token': bearer('globexAdmin'), 'globex API key': apiKeyHeader(globexKey.apiKey) });

  type Case = [method: string, path: () => string, expected: number];
  const cases: Case[] = [
    ['GET', () => '/tenants/acme', 403],
    ['GET', () => '/tenants/acme/api-keys', 403],
    ['POST', () => '/tenants/acme/api-keys', 403],
    ['POST', () => `/tenants/acme/api-keys/${acmeKey.keyId}/rotate`, 403],
    ['DELETE', () => `/tenants/acme/api-keys/${acmeKey.keyId}`, 403],
    ['POST', () => `/tenants/globex/api-keys/${acmeKey.keyId}/rotate`, 404],
    ['DELETE', () => `/tenants/globex/api-keys/${acmeKey.keyId}`, 404],
    ['GET', () => `/users/${encodeURIComponent(acmeUser)}`, 404],
    ['PATCH', () => `/users/${encodeURIComponent(acmeUser)}`, 404],
    ['DELETE', () => `/users/${encodeURIComponent(acmeUser)}`, 404],
  ];

  it.each(cases)('%s %s', async (method, path, expected) => {
    const body = method === 'PATCH' || (method === 'POST' && !path().endsWith('/rotate')) ? { name: 'pwned' } : undefined;
    // Warm the authorizer's caches with a legitimate request (same credentials kind, same API) first.
    const warm = path().startsWith('/users/') ? path() : '/tenants/acme/api-keys';
    expect((await api.call('GET', warm, { headers: bearer('acmeAdmin') })).status).toBe(200);
    for (const [, headers] of Object.entries(intruders())) {
      // The intruder's own legitimate call comes first, so its Allow is cached for the whole API.
      expect((await api.call('GET', '/tenants/globex/api-keys', { headers })).status).toBe(200);
      const res = await api.call(method, path(), { headers, body });
      expectProblem(res, expected);
    }
    // Nothing changed for acme.
    const user = await api.call('GET', `/users/${encodeURIComponent(acmeUser)}`, { headers: bearer('acmeAdmin') });
    expect(user.body).toMatchObject({ tenantId: 'acme', name: 'isolated@acme.test' });
    const keys = ((await api.call('GET', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin') })).body as { items: { keyId: string; status: string; rotatedAt: string | null }[] }).items;
    expect(keys.find((k) => k.keyId === acmeKey.keyId)).toMatchObject({ status: 'active', rotatedAt: null });
    expect(keys.some((k) => k.keyId !== acmeKey.keyId && (k as unknown as { name: string }).name === 'pwned')).toBe(false);
    expect((await api.call('GET', '/me', { headers: apiKeyHeader(acmeKey.apiKey) })).status).toBe(200);
  });
});
