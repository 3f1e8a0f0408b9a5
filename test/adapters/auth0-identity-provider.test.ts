import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Auth0IdentityProvider,
  createAuth0IdentityProvider,
  generatePassword,
  luceneQuote,
  rateLimitWaitMs,
  type Auth0IdentityProviderOptions,
} from '../../functions/adapters/auth0-identity-provider.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import { IdentityProviderError } from '../../functions/core/identity-provider.js';
import { evaluateUserQuery, startFakeAuth0Management, type FakeAuth0Management } from '../support/fake-auth0-management.js';

const DOMAIN = 'latchkey-test.eu.auth0.com';
const MGMT = { clientId: 'mgmt-client-id', clientSecret: 'mgmt-secret-do-not-leak-7f3a9c' };
const AUDIENCE = 'https://api.latchkey.test';

let fake: FakeAuth0Management;
let sleeps: number[];

beforeEach(async () => {
  fake = await startFakeAuth0Management({ domain: DOMAIN, ...MGMT, resourceServers: [AUDIENCE] });
  sleeps = [];
});
afterEach(async () => {
  await fake.close();
});

function idp(options: Partial<Auth0IdentityProviderOptions> = {}): Auth0IdentityProvider {
  return new Auth0IdentityProvider({
    domain: DOMAIN,
    ...MGMT,
    baseUrl: fake.origin,
    // Generous: a loaded machine must never turn a good answer into a timeout.
    timeoutMs: 30_000,
    retry: { baseDelayMs: 10, sleep: async (ms) => void sleeps.push(ms) },
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function idpError(promise: Promise<unknown>, code: string, status: number): Promise<IdentityProviderError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(IdentityProviderError);
  expect((err as IdentityProviderError).code).toBe(code);
  expect((err as IdentityProviderError).status).toBe(status);
  return err as IdentityProviderError;
}

async function unavailable(promise: Promise<unknown>, code: string): Promise<UpstreamUnavailableError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(UpstreamUnavailableError);
  expect((err as UpstreamUnavailableError).code).toBe(code);
  return err as UpstreamUnavailableError;
}

const apiCalls = (method: string, path: string | RegExp) =>
  fake.requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)));

const nowS = () => Math.floor(Date.now() / 1000);

const keyInput = { name: 'acme / ci key', tenantId: 'acme', keyId: 'key_01', audience: AUDIENCE, scopes: ['read:orders', 'write:orders'] };

describe('machine clients', () => {
  it('creates a non-interactive client with tenant metadata and one grant', async () => {
    const created = await idp().createMachineClient(keyInput);

    const stored = fake.clients.get(created.clientId);
    expect(stored).toMatchObject({
      name: 'acme / ci key',
      app_type: 'non_interactive',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
      client_metadata: { tenant_id: 'acme', key_id: 'key_01' },
    });
    expect(created.clientSecret).toBe(stored?.client_secret);
    expect(fake.grants).toEqual([{ id: expect.stringMatching(/^cgr_/), client_id: created.clientId, audience: AUDIENCE, scope: ['read:orders', 'write:orders'] }]);
    expect(fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /oauth/token 200',
      'POST /api/v2/clients 201',
      'POST /api/v2/client-grants 201',
    ]);
  });

  it('deletes the new client when the grant is refused (no orphan)', async () => {
    const err = await idpError(idp().createMachineClient({ ...keyInput, audience: 'https://unknown.api' }), 'ERR_IDP_NOT_FOUND', 404);
    expect(err.message).toContain('No resource server found');
    expect(fake.clients.size).toBe(0);
    expect(apiCalls('DELETE', /^\/api\/v2\/clients\//)).toHaveLength(1);
  });

  it('deletes the new client when the grant fails with 5xx', async () => {
    fake.failNext(1, 503, {}, { path: '/api/v2/client-grants' });
    await unavailable(idp().createMachineClient(keyInput), 'ERR_IDP_UNAVAILABLE');
    expect(fake.clients.size).toBe(0);
    expect(fake.grants).toHaveLength(0);
  });

  it('rotates the secret', async () => {
    const provider = idp();
    const created = await provider.createMachineClient(keyInput);
    const rotated = await provider.rotateClientSecret(created.clientId);
    expect(rotated.clientId).toBe(created.clientId);
    expect(rotated.clientSecret).not.toBe(created.clientSecret);
    expect(rotated.clientSecret).toBe(fake.clients.get(created.clientId)?.client_secret);
    expect(apiCalls('POST', `/api/v2/clients/${created.clientId}/rotate-secret`)).toHaveLength(1);
    await idpError(provider.rotateClientSecret('no-such-client'), 'ERR_IDP_NOT_FOUND', 404);
  });

  it('lists the clients that carry a key id, over every page, filtered by tenant and key id', async () => {
    const fakeClient = (i: number, meta: Record<string, string>) => ({
      client_id: `client-${String(i).padStart(4, '0')}`,
      client_secret: `secret-${i}`,
      name: `c${i}`,
      app_type: 'non_interactive',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
      client_metadata: meta,
    });
    for (let i = 0; i < 230; i++) {
      const c = fakeClient(i, i === 7 ? {} : { tenant_id: i % 2 === 0 ? 'acme' : 'globex', key_id: `key_${i}` });
      fake.clients.set(c.client_id, c);
    }
    const provider = idp();
    const all = await provider.listMachineClients();
    expect(all).toHaveLength(229); // the one without metadata is not a key
    expect(all).not.toContainEqual(expect.objectContaining({ clientId: 'client-0007' }));
    const pages = apiCalls('GET', '/api/v2/clients');
    expect(pages.map((r) => [r.query['page'], r.query['per_page'], r.query['include_totals']])).toEqual([
      ['0', '100', 'true'],
      ['1', '100', 'true'],
      ['2', '100', 'true'],
    ]);
    expect(JSON.stringify(all)).not.toContain('secret-');
    expect(await provider.listMachineClients({ tenantId: 'acme', keyId: 'key_200' })).toEqual([{ clientId: 'client-0200', tenantId: 'acme', keyId: 'key_200' }]);
    expect(await provider.listMachineClients({ tenantId: 'globex', keyId: 'key_200' })).toEqual([]);
    expect((await provider.listMachineClients({ tenantId: 'globex' })).every((c) => c.tenantId === 'globex')).toBe(true);
    fake.failNext(1, 503, {}, { path: '/api/v2/clients' });
    await unavailable(provider.listMachineClients(), 'ERR_IDP_UNAVAILABLE');
  });

  it('deletes a client with its grants; an already deleted client is fine', async () => {
    const provider = idp();
    const created = await provider.createMachineClient(keyInput);
    await provider.deleteMachineClient(created.clientId);
    expect(fake.clients.size).toBe(0);
    expect(fake.grants).toHaveLength(0);
    await expect(provider.deleteMachineClient(created.clientId)).resolves.toBeUndefined();
    expect(apiCalls('DELETE', `/api/v2/clients/${created.clientId}`).map((r) => r.status)).toEqual([204, 404]);
  });
});

describe('users', () => {
  it('creates a user with tenant and roles in app_metadata and a strong generated password', async () => {
    const user = await idp().createUser({ tenantId: 'acme', email: 'Ana@Example.com', name: 'Ana', roles: ['admin'] });
    expect(user).toEqual({
      userId: expect.stringMatching(/^auth0\|[0-9a-f]{24}$/),
      email: 'ana@example.com',
      name: 'Ana',
      tenantId: 'acme',
      roles: ['admin'],
      blocked: false,
      emailVerified: false,
      createdAt: expect.any(String),
      lastLogin: undefined,
    });
    const stored = fake.users.get(user.userId);
    expect(stored?.['app_metadata']).toEqual({ tenant_id: 'acme', roles: ['admin'] });
    expect(stored?.['user_metadata']).toEqual({});
    expect((stored?.['identities'] as { connection: string }[])[0]?.connection).toBe('Username-Password-Authentication');
    const password = fake.passwordOf(user.userId) ?? '';
    expect(password.length).toBeGreaterThanOrEqual(40);
    expect(password).toMatch(/[a-z]/);
    expect(password).toMatch(/[A-Z]/);
    expect(password).toMatch(/[0-9]/);
    expect(password).toMatch(/[^A-Za-z0-9]/);
  });

  it('uses the given password and the configured connection', async () => {
    await fake.close();
    fake = await startFakeAuth0Management({ domain: DOMAIN, ...MGMT, connections: ['latchkey-users'] });
    const user = await idp({ connection: 'latchkey-users' }).createUser({ tenantId: 't1', email: 'bo@example.com', password: 'Corr3ct-Horse!', roles: [] });
    expect(fake.passwordOf(user.userId)).toBe('Corr3ct-Horse!');
    expect((fake.users.get(user.userId)?.['identities'] as { connection: string }[])[0]?.connection).toBe('latchkey-users');
    expect(user.name).toBe('bo@example.com'); // Auth0 defaults the name to the e-mail
  });

  it('maps 409 (user exists) and 400 (Auth0 message kept)', async () => {
    const provider = idp();
    await provider.createUser({ tenantId: 'acme', email: 'dup@example.com', roles: [] });
    const conflict = await idpError(provider.createUser({ tenantId: 'other', email: 'DUP@example.com', roles: [] }), 'ERR_IDP_CONFLICT', 409);
    expect(conflict.message).toContain('The user already exists.');
    const invalid = await idpError(provider.createUser({ tenantId: 'acme', email: 'weak@example.com', password: 'short', roles: [] }), 'ERR_IDP_INVALID', 400);
    expect(invalid.message).toContain('Password is too weak');
  });

  it('gets a user; an unknown user is undefined', async () => {
    const provider = idp();
    const created = await provider.createUser({ tenantId: 'acme', email: 'get@example.com', roles: ['viewer'] });
    expect(await provider.getUser(created.userId)).toEqual(created);
    expect(await provider.getUser('auth0|000000000000000000000000')).toBeUndefined();
  });

  it('maps odd Auth0 user JSON defensively', async () => {
    const seeded = fake.seedUser({
      email: 'odd@example.com',
      name: 42 as unknown as string,
      blocked: 'yes',
      email_verified: true,
      last_login: '2025-01-02T03:04:05.000Z',
      app_metadata: { tenant_id: 7, roles: ['ok', 3, null, 'ok', ''] },
      user_metadata: { tenant_id: 'acme', roles: ['owner'] }, // must be ignored
    });
    expect(await idp().getUser(seeded.user_id)).toEqual({
      userId: seeded.user_id,
      email: 'odd@example.com',
      name: undefined,
      tenantId: undefined,
      roles: ['ok'],
      blocked: false,
      emailVerified: true,
      createdAt: seeded.created_at,
      lastLogin: '2025-01-02T03:04:05.000Z',
    });
  });

  it('updates name, blocked and roles without losing the tenant', async () => {
    const provider = idp();
    const created = await provider.createUser({ tenantId: 'acme', email: 'upd@example.com', roles: ['admin', 'viewer'] });
    const updated = await provider.updateUser(created.userId, { roles: ['viewer'], name: 'Renamed', blocked: true });
    expect(updated).toMatchObject({ tenantId: 'acme', roles: ['viewer'], name: 'Renamed', blocked: true });
    expect(fake.users.get(created.userId)?.['app_metadata']).toEqual({ tenant_id: 'acme', roles: ['viewer'] });
    expect(apiCalls('PATCH', `/api/v2/users/${encodeURIComponent(created.userId)}`)).toHaveLength(1);

    const unblocked = await provider.updateUser(created.userId, { blocked: false });
    expect(unblocked).toMatchObject({ tenantId: 'acme', roles: ['viewer'], blocked: false });
    // An empty patch is a read (Auth0 refuses an empty PATCH).
    expect(await provider.updateUser(created.userId, {})).toEqual(unblocked);
    await idpError(provider.updateUser('auth0|000000000000000000000000', { name: 'x' }), 'ERR_IDP_NOT_FOUND', 404);
    await idpError(provider.updateUser('auth0|000000000000000000000000', {}), 'ERR_IDP_NOT_FOUND', 404);
  });

  it('deletes a user; a user already gone (204 or 404) is fine', async () => {
    const provider = idp();
    const created = await provider.createUser({ tenantId: 'acme', email: 'del@example.com', roles: [] });
    await provider.deleteUser(created.userId);
    expect(await provider.getUser(created.userId)).toBeUndefined();
    await expect(provider.deleteUser(created.userId)).resolves.toBeUndefined();
    fake.failNext(1, 404, {}, { method: 'DELETE', body: { statusCode: 404, error: 'Not Found', message: 'The user does not exist.', errorCode: 'inexistent_user' } });
    await expect(provider.deleteUser(created.userId)).resolves.toBeUndefined();
  });
});

describe('listing users', () => {
  async function seedTenants(provider: Auth0IdentityProvider) {
    const t1: string[] = [];
    for (let i = 0; i < 5; i++) t1.push((await provider.createUser({ tenantId: 't1', email: `u${i}@t1.example.com`, roles: [] })).userId);
    await provider.createUser({ tenantId: 't2', email: 'u0@t2.example.com', roles: [] });
    await provider.createUser({ tenantId: 't2', email: 'shared@example.com', roles: [] });
    return t1;
  }

  it('lists one tenant page by page with totals', async () => {
    const provider = idp();
    const t1 = await seedTenants(provider);
    const pages = [];
    for (let page = 0; page < 3; page++) pages.push(await provider.listUsers({ tenantId: 't1', page, perPage: 2 }));
    expect(pages.map((p) => p.users.length)).toEqual([2, 2, 1]);
    expect(pages.every((p) => p.total === 5 && p.perPage === 2)).toBe(true);
    expect(pages.flatMap((p) => p.users.map((u) => u.userId))).toEqual(t1);
    expect(pages.flatMap((p) => p.users).every((u) => u.tenantId === 't1')).toBe(true);

    const sent = apiCalls('GET', '/api/v2/users').at(-1)?.query;
    expect(sent).toEqual({
      q: 'app_metadata.tenant_id:"t1"',
      search_engine: 'v3',
      page: '2',
      per_page: '2',
      include_totals: 'true',
      sort: 'created_at:1',
    });
  });

  it('filters by exact e-mail (case-insensitive) within the tenant', async () => {
    const provider = idp();
    await seedTenants(provider);
    const page = await provider.listUsers({ tenantId: 't1', email: 'U3@T1.example.com', page: 0, perPage: 10 });
    expect(page.users.map((u) => u.email)).toEqual(['u3@t1.example.com']);
    expect(fake.userSearches.at(-1)).toBe('app_metadata.tenant_id:"t1" AND email:"U3@T1.example.com"');
    // The same e-mail in another tenant is not visible.
    expect((await provider.listUsers({ tenantId: 't1', email: 'u0@t2.example.com', page: 0, perPage: 10 })).users).toEqual([]);
  });

  it.each([
    ['a quote and OR', 'x" OR app_metadata.tenant_id:"t2', 'app_metadata.tenant_id:"t1" AND email:"x\\" OR app_metadata.tenant_id:\\"t2"'],
    ['a trailing backslash', 'x\\', 'app_metadata.tenant_id:"t1" AND email:"x\\\\"'],
    ['a backslash before a quote', 'x\\" OR email:*', 'app_metadata.tenant_id:"t1" AND email:"x\\\\\\" OR email:*"'],
    ['a bare OR', 'nobody@example.com OR shared@example.com', 'app_metadata.tenant_id:"t1" AND email:"nobody@example.com OR shared@example.com"'],
  ])('an e-mail with %s cannot widen the query', async (_label, email, expectedQ) => {
    const provider = idp();
    await seedTenants(provider);
    const page = await provider.listUsers({ tenantId: 't1', email, page: 0, perPage: 50 });
    expect(fake.userSearches.at(-1)).toBe(expectedQ);
    expect(page.users).toEqual([]);
    expect(page.total).toBe(0);
  });

  it('the fake would widen an unescaped query (the escaping tests have teeth)', async () => {
    const provider = idp();
    await seedTenants(provider);
    const naive = 'app_metadata.tenant_id:"t1" AND email:"x" OR app_metadata.tenant_id:"t2"';
    expect([...fake.users.values()].filter((u) => evaluateUserQuery(naive, u)).map((u) => u.email)).toContain('shared@example.com');
  });

  it('escapes the tenant id too', async () => {
    const provider = idp();
    await seedTenants(provider);
    const page = await provider.listUsers({ tenantId: 't1" OR app_metadata.tenant_id:"t2', page: 0, perPage: 50 });
    expect(fake.userSearches.at(-1)).toBe('app_metadata.tenant_id:"t1\\" OR app_metadata.tenant_id:\\"t2"');
    expect(page.users).toEqual([]);
  });

  it('refuses control characters before calling Auth0', async () => {
    await idpError(idp().listUsers({ tenantId: 't1', email: 'a@b.c\n', page: 0, perPage: 10 }), 'ERR_IDP_INVALID', 400);
    await idpError(idp().listUsers({ tenantId: 't1\u0000', page: 0, perPage: 10 }), 'ERR_IDP_INVALID', 400);
    expect(apiCalls('GET', '/api/v2/users')).toHaveLength(0);
  });

  it('drops users whose app_metadata does not name exactly the tenant (defence in depth)', async () => {
    const provider = idp();
    await seedTenants(provider);
    // Auth0 search matches inside arrays, so this user matches tenant_id:"t1"; it must not be listed.
    fake.seedUser({ email: 'multi@example.com', app_metadata: { tenant_id: ['t1', 't2'] } });
    const page = await provider.listUsers({ tenantId: 't1', page: 0, perPage: 50 });
    expect(page.users.map((u) => u.email)).not.toContain('multi@example.com');
    expect(page.users).toHaveLength(5);
  });

  it("passes Auth0's paging limit through as ERR_IDP_INVALID", async () => {
    const err = await idpError(idp().listUsers({ tenantId: 't1', page: 20, perPage: 50 }), 'ERR_IDP_INVALID', 400);
    expect(err.message).toContain('first 1000 records');
  });
});

describe('rate limits and failures', () => {
  it('retries 429 and honours x-ratelimit-reset', async () => {
    const provider = idp();
    const created = await provider.createUser({ tenantId: 'acme', email: 'rl@example.com', roles: [] });
    const reset = nowS() + 1;
    fake.failNext(2, 429, { 'x-ratelimit-reset': String(reset) });
    expect((await provider.getUser(created.userId))?.userId).toBe(created.userId);
    expect(sleeps).toHaveLength(2);
    for (const ms of sleeps) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(1_000 + 100);
    }
    expect(apiCalls('GET', /^\/api\/v2\/users\//).map((r) => r.status)).toEqual([429, 429, 200]);
  });

  it('backs off exponentially when Auth0 gives no reset time, or follows Retry-After', async () => {
    const provider = idp();
    fake.failNext(2, 429, { 'x-ratelimit-reset': '' });
    await provider.listUsers({ tenantId: 't1', page: 0, perPage: 10 });
    expect(sleeps[0]).toBeGreaterThanOrEqual(10);
    expect(sleeps[0]).toBeLessThan(21);
    expect(sleeps[1]).toBeGreaterThanOrEqual(20);
    expect(sleeps[1]).toBeLessThan(31);

    sleeps.length = 0;
    fake.failNext(1, 429, { 'x-ratelimit-reset': '', 'retry-after': '1' });
    await provider.listUsers({ tenantId: 't1', page: 0, perPage: 10 });
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(1_000);
  });

  it('gives up after the bounded attempts with retryAfterS from x-ratelimit-reset', async () => {
    const reset = nowS() + 2;
    fake.failNext(10, 429, { 'x-ratelimit-reset': String(reset) });
    const err = await unavailable(idp({ retry: { maxAttempts: 3, sleep: async (ms) => void sleeps.push(ms) } }).getUser('auth0|abc'), 'ERR_IDP_RATE_LIMITED');
    expect(err.retryAfterS).toBeGreaterThanOrEqual(1);
    expect(err.retryAfterS).toBeLessThanOrEqual(2);
    expect(sleeps).toHaveLength(2);
    expect(apiCalls('GET', '/api/v2/users/auth0%7Cabc')).toHaveLength(3);
  });

  it('fails fast when the announced reset is beyond the wait cap', async () => {
    fake.failNext(1, 429, { 'x-ratelimit-reset': String(nowS() + 60) });
    const err = await unavailable(idp().getUser('auth0|abc'), 'ERR_IDP_RATE_LIMITED');
    expect(err.retryAfterS).toBeGreaterThanOrEqual(59);
    expect(err.retryAfterS).toBeLessThanOrEqual(60);
    expect(sleeps).toHaveLength(0);
  });

  it('retries a throttled token request too', async () => {
    fake.failNext(1, 429, { 'x-ratelimit-reset': '' }, { path: '/oauth/token', body: { error: 'too_many_requests', error_description: 'Too Many Requests' } });
    expect(await idp().getUser('auth0|nobody')).toBeUndefined();
    expect(sleeps).toHaveLength(1);
    expect(fake.managementTokenRequests).toBe(1);
  });

  it('maps 5xx to UpstreamUnavailableError without retrying', async () => {
    fake.failNext(1, 500);
    const err = await unavailable(idp().getUser('auth0|abc'), 'ERR_IDP_UNAVAILABLE');
    expect(err.retryAfterS).toBe(5);
    expect(apiCalls('GET', '/api/v2/users/auth0%7Cabc')).toHaveLength(1);

    fake.failNext(1, 503, { 'retry-after': '7' });
    expect((await unavailable(idp().getUser('auth0|abc'), 'ERR_IDP_UNAVAILABLE')).retryAfterS).toBe(7);

    fake.failNext(1, 502, {}, { body: '<html>bad gateway</html>' });
    await unavailable(idp().deleteUser('auth0|abc'), 'ERR_IDP_UNAVAILABLE');
  });

  it('maps timeouts and unreachable hosts to UpstreamUnavailableError', async () => {
    // The warm-up must fit in the timeout on a loaded machine, and the delayed call never can.
    const provider = idp({ timeoutMs: 3_000 });
    await provider.getUser('auth0|warm'); // token fetched before the slow call
    fake.delayNext(1, 15_000);
    const timedOut = await unavailable(provider.getUser('auth0|abc'), 'ERR_IDP_UNAVAILABLE');
    expect(timedOut.message).toContain('timed out');

    const closed = await startFakeAuth0Management({ domain: DOMAIN, ...MGMT });
    const origin = closed.origin;
    await closed.close();
    await unavailable(idp({ baseUrl: origin }).getUser('auth0|abc'), 'ERR_IDP_UNAVAILABLE');
  });

  it('maps 403 to ERR_IDP_FORBIDDEN', async () => {
    fake.failNext(1, 403);
    await idpError(idp().createUser({ tenantId: 'acme', email: 'f@example.com', roles: [] }), 'ERR_IDP_FORBIDDEN', 403);
  });
});

describe('Management API token', () => {
  it('is fetched once and reused across calls', async () => {
    const provider = idp();
    const created = await provider.createUser({ tenantId: 'acme', email: 'tok@example.com', roles: [] });
    await provider.getUser(created.userId);
    await provider.listUsers({ tenantId: 'acme', page: 0, perPage: 10 });
    await provider.updateUser(created.userId, { name: 'x' });
    await provider.createMachineClient(keyInput);
    expect(fake.managementTokenRequests).toBe(1);
    expect(apiCalls('POST', '/oauth/token')).toHaveLength(1);
  });

  it('is fetched again once when Auth0 refuses it', async () => {
    const provider = idp();
    await provider.getUser('auth0|a');
    fake.revokeTokens();
    expect(await provider.getUser('auth0|b')).toBeUndefined();
    expect(fake.managementTokenRequests).toBe(2);
  });

  it('wrong Management credentials give ERR_IDP_FORBIDDEN without leaking the secret', async () => {
    const err = await idpError(idp({ clientSecret: 'wrong-secret-value' }).getUser('auth0|a'), 'ERR_IDP_FORBIDDEN', 401);
    expect(err.message).not.toContain('wrong-secret-value');
    expect(JSON.stringify(fake.requests)).not.toContain(MGMT.clientSecret);
  });
});

describe('createAuth0IdentityProvider (lazy credentials)', () => {
  it('reads credentials lazily, keeps one client while they are unchanged, rebuilds when they change', async () => {
    let loads = 0;
    let secret = 'stale-secret';
    const provider = createAuth0IdentityProvider(
      async () => {
        loads++;
        return { domain: DOMAIN, clientId: MGMT.clientId, clientSecret: secret };
      },
      { baseUrl: fake.origin, retry: { sleep: async () => undefined } },
    );
    expect(loads).toBe(0);
    await idpError(provider.getUser('auth0|a'), 'ERR_IDP_FORBIDDEN', 401);
    secret = MGMT.clientSecret; // rotated in Secrets Manager
    await provider.getUser('auth0|a');
    await provider.getUser('auth0|b');
    await provider.listUsers({ tenantId: 'acme', page: 0, perPage: 5 });
    expect(loads).toBe(4);
    expect(fake.managementTokenRequests).toBe(1);
  });

  it('passes credential errors through', async () => {
    const provider = createAuth0IdentityProvider(async () => {
      throw new UpstreamUnavailableError('ERR_SECRET_UNAVAILABLE', 'down', 5);
    });
    await unavailable(provider.getUser('auth0|a'), 'ERR_SECRET_UNAVAILABLE');
  });
});

describe('helpers', () => {
  it('luceneQuote escapes backslash and quote only', () => {
    expect(luceneQuote('plain@example.com')).toBe('"plain@example.com"');
    expect(luceneQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(luceneQuote('a OR b*')).toBe('"a OR b*"');
    expect(() => luceneQuote('a\tb')).toThrow(IdentityProviderError);
    expect(() => luceneQuote('a\u007fb')).toThrow(IdentityProviderError);
  });

  it('rateLimitWaitMs reads epoch reset, delta reset, Retry-After seconds and dates', () => {
    const now = 1_700_000_000_000;
    expect(rateLimitWaitMs(new Headers({ 'x-ratelimit-reset': '1700000003' }), now)).toBe(3_000);
    expect(rateLimitWaitMs(new Headers({ 'x-ratelimit-reset': '1699999990' }), now)).toBe(0);
    expect(rateLimitWaitMs(new Headers({ 'x-ratelimit-reset': '2' }), now)).toBe(2_000);
    expect(rateLimitWaitMs(new Headers({ 'retry-after': '4' }), now)).toBe(4_000);
    expect(rateLimitWaitMs(new Headers({ 'retry-after': new Date(now + 5_000).toUTCString() }), now)).toBe(5_000);
    expect(rateLimitWaitMs(new Headers({ 'x-ratelimit-reset': 'soon' }), now)).toBeUndefined();
    expect(rateLimitWaitMs(new Headers(), now)).toBeUndefined();
  });

  it('generatePassword is long, mixed and never repeats a character three times in a row', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = generatePassword();
      expect(p.length).toBeLessThanOrEqual(72);
      expect(p).not.toMatch(/(.)\1\1/);
      seen.add(p);
    }
    expect(seen.size).toBe(200);
  });
});
