/**
 * Principal state on every path (issue #10): a revoked or rotated key, a blocked, deleted or
 * re-roled user and a disabled or deleted tenant stop within the bound on every credential
 * form — API key (X-Api-Key, Basic), the key's own token fetched from the identity provider
 * and sent as Bearer, user tokens — in every container, stepped through the bound with the
 * injected clock. Real parts: DynamoDB Local, the local oidc-provider, the real handlers.
 */
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../../functions/adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { LocalIdentityProvider } from '../../functions/adapters/local-identity-provider.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler, type AuthorizerEvent } from '../../functions/authorizer/create-handler.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { DEFAULT_KEY_SCOPES, loadAuthorizerConfig, type AuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { KeyLifecycle } from '../../functions/core/key-lifecycle.js';
import { silentLog, type Log } from '../../functions/core/log.js';
import { ROLE_GRANTS } from '../../functions/core/permissions.js';
import { FEED_PROPAGATION_MARGIN_MS, PrincipalStateSnapshot, type PrincipalStateFeed } from '../../functions/core/principal-state.js';
import { createApiHandler } from '../../functions/http/api-handler.js';
import { createTenantRoutes } from '../../functions/tenants/routes.js';
import { createUserRoutes } from '../../functions/users/routes.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { rng } from '../../bench/lib/stats.js';
import { createHarness, type Harness } from '../support/api-harness.js';
import { ManualClock } from '../support/clock.js';
import { counting, countingFeed, type FeedReads } from '../support/counting.js';
import { orHang } from '../support/hang.js';
import { keyHolderToken } from '../support/servers.js';
import { addBulkStates, createTenantsTable, createTokenCacheTable } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let clock: ManualClock;
let config: AuthorizerConfig;
let cacheTable: string;
let tenantsTable: string;
let boundMs: number;

interface Container {
  authorizer: (e: AuthorizerEvent) => ReturnType<ReturnType<typeof createAuthorizerHandler>>;
  state: PrincipalStateSnapshot;
  feedReads: FeedReads;
}

/** One simulated Lambda container of the authorizer: its own caches and state snapshot. */
/** Every line the authorizers and handlers log, for the test that looks for secrets in them. */
const logged: string[] = [];
const capture = (level: string) => (message: string, ...extra: Record<string, unknown>[]) => void logged.push(JSON.stringify({ level, message, extra }));
const log: Log = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') };

/** `feedOf` wraps the container's feed (to hold a sync at a chosen moment); the table's by default. */
function container(feedOf: (shared: DynamoDbTokenCache) => PrincipalStateFeed = (shared) => shared): Container {
  const verifier = new JwtVerifier({ config: config.jwt, clock });
  const shared = new DynamoDbTokenCache({ tableName: cacheTable });
  const exchangeDeps = {
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() }),
    shared,
    log,
  };
  // The whole feed (point reads too), so these containers take every path a deployed one takes.
  const { feed, reads: feedReads } = countingFeed(feedOf(shared));
  const state = new PrincipalStateSnapshot({ feed, clock, log: silentLog, maxAgeMs: boundMs, retryAfterS: 5 });
  const exchange = new ApiKeyExchange({ ...exchangeDeps, keys: (id) => state.knownKey(id) });
  const authorizer = createAuthorizerHandler({ authenticator: new Authenticator({ verifier, state, keyPrefix: 'lk', apiKeys: async () => exchange }), log });
  return { authorizer, state, feedReads };
}

let containers: Container[];
let api: Harness;
let via = 0;
let ops: string;

async function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown; query?: Record<string, string> } = {}) {
  return api.call(method, path, opts);
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const xApiKey = (key: string) => ({ 'X-Api-Key': key });
const basic = (id: string, secret: string) => ({ Authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });


interface IssuedKey {
  keyId: string;
  clientId: string;
  clientSecret: string;
  apiKey: string;
}

async function issueKey(tenantId: string, scopes = ['users:read', 'keys:read']): Promise<IssuedKey> {
  const res = await call('POST', `/tenants/${tenantId}/api-keys`, { headers: bearer(ops), body: { name: 'k', scopes } });
  expect(res.status).toBe(201);
  return res.body as IssuedKey;
}

/** The credential forms of a key (README, "How callers authenticate"). */
const KEY_FORMS = ['xApiKey', 'basic', 'bearerApiKey', 'basicApiKey', 'directBearer'] as const;
type KeyForm = (typeof KEY_FORMS)[number];

/**
 * Every credential form of a key: `lk_…` in X-Api-Key, as `Bearer lk_…` and as the Basic user
 * name; client id and secret as Basic; and its own token fetched from the provider, as Bearer.
 */
async function keyForms(k: { clientId: string; clientSecret: string; apiKey: string }): Promise<Record<KeyForm, Record<string, string>>> {
  return {
    xApiKey: xApiKey(k.apiKey),
    basic: basic(k.clientId, k.clientSecret),
    bearerApiKey: bearer(k.apiKey),
    basicApiKey: { Authorization: `Basic ${Buffer.from(`${k.apiKey}:`).toString('base64')}` },
    directBearer: bearer(await keyHolderToken(idp, k)),
  };
}

/** Status of GET /me through each container. */
async function statuses(headers: Record<string, string>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < containers.length; i++) {
    via = i;
    out.push((await call('GET', '/me', { headers })).status);
  }
  via = 0;
  return out;
}

/** Warms every container with the credential, then steps the clock until each refuses; returns seconds. */
async function secondsUntilRefused(headers: Record<string, string>, change: () => Promise<void>, refusal: number): Promise<number> {
  expect(await statuses(headers)).toEqual(containers.map(() => 200));
  const changedAt = clock.now();
  await change();
  for (let s = 0; s <= 120; s++) {
    const st = await statuses(headers);
    if (st.every((x) => x === refusal)) return (clock.now() - changedAt) / 1000;
    // Anything but an Allow or the expected refusal is a bug (a 503 would tell the caller to retry a dead key).
    for (const x of st) expect([200, refusal]).toContain(x);
    clock.advance(1000);
  }
  throw new Error('never refused');
}

async function user(tenantId: string, roles: string[]): Promise<{ userId: string; token: () => Promise<string> }> {
  const u = idp.addUser({ email: `${Math.random().toString(36).slice(2)}@example.test`, password: 'correct horse battery', tenantId, roles });
  return { userId: u.userId, token: () => idp.issueUserToken({ userId: u.userId }) };
}

beforeAll(async () => {
  // Auth0 with RBAC on: user tokens carry the permissions of their roles, and only those.
  idp = await startLocalIdentityProvider({ port: 0, rolePermissions: ROLE_GRANTS });
  [cacheTable, tenantsTable] = await Promise.all([createTokenCacheTable('state'), createTenantsTable('state-tenants')]);
  config = loadAuthorizerConfig({ ISSUER: idp.issuer, AUDIENCE: idp.audience, TOKEN_AUDIENCE_PARAM: 'resource', TOKEN_CACHE_TABLE: cacheTable });
  boundMs = config.apiKey.revocationCheckS * 1000;
  clock = new ManualClock(Date.now() - 10 * 60_000);
  const store = new DynamoDbTenantStore({ tableName: tenantsTable });
  // The management side writes with its (longer) DynamoDB deadlines, as deployed.
  const shared = new DynamoDbTokenCache({ tableName: cacheTable, client: createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE) });
  const local = new LocalIdentityProvider({ baseUrl: idp.origin, adminToken: idp.adminToken, registrationToken: idp.initialAccessToken });
  const now = { now: () => clock.now() };
  const keys = new KeyLifecycle({ store, idp: async () => local, states: shared, tokens: shared, clock: now, log: silentLog, audience: idp.audience, keyScopes: DEFAULT_KEY_SCOPES.split(' ') });
  const tenantRoutes = createTenantRoutes({ store, keys, clock: now, keyPrefix: 'lk' });
  const userRoutes = createUserRoutes({ store, idp: async () => local, states: shared, clock: now, log: silentLog });
  api = createHarness({
    authorizer: (e) => containers[via]!.authorizer(e),
    routes: [
      { name: 'tenants', resources: tenantRoutes.map((r) => r.resource), handler: createApiHandler({ routes: tenantRoutes, log: silentLog }) },
      { name: 'users', resources: userRoutes.map((r) => r.resource), handler: createApiHandler({ routes: userRoutes, log: silentLog }) },
    ],
  });
  const operator = idp.addUser({ email: 'ops@example.test', password: 'correct horse battery', roles: ['platform:admin'] });
  ops = await idp.issueUserToken({ userId: operator.userId });
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(() => {
  via = 0;
  idp.setFailure('none');
  // Behind real time: tokens the provider issues during a test are never "before" a change the test makes.
  clock = new ManualClock(Date.now() - 10 * 60_000);
  containers = [container(), container(), container()];
});

/** Resolves once `done` holds, checking after every turn of the event loop (no real time). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setImmediate(r));
}

let tenantSeq = 0;
async function newTenant(): Promise<string> {
  const tenantId = `t${++tenantSeq}-${Date.now().toString(36)}`;
  expect((await call('POST', '/tenants', { headers: bearer(ops), body: { tenantId, name: tenantId } })).status).toBe(201);
  return tenantId;
}

/** Issues a key, revokes it and checks that this form of it is refused within the bound. */
async function revokedKeyStopsWithinBound(form: KeyForm): Promise<void> {
  const tenantId = await newTenant();
  const key = await issueKey(tenantId);
  const headers = (await keyForms(key))[form];
  const s = await secondsUntilRefused(headers, async () => {
    expect((await call('DELETE', `/tenants/${tenantId}/api-keys/${key.keyId}`, { headers: bearer(ops) })).status).toBe(204);
  }, 401);
  expect(s).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
}

describe('a revoked key', () => {
  it.each(KEY_FORMS)('stops within the bound in every container: %s', async (form) => {
    await revokedKeyStopsWithinBound(form);
  });

  it("counts a key's own bearer token as that key: its tenant, its key id, and no stronger key from it", async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId, ['keys:write', 'keys:read']);
    const headers = bearer(await keyHolderToken(idp, key));
    const me = await call('GET', '/me', { headers });
    expect(me.body).toMatchObject({ tenantId, clientId: key.clientId, userId: null });
    const stronger = await call('POST', `/tenants/${tenantId}/api-keys`, { headers, body: { name: 'x', scopes: ['users:write'] } });
    expect(stronger.status).toBe(400);
  });

  it('after revocation, its direct token can neither create users nor issue keys', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId, ['users:write', 'keys:write']);
    const headers = bearer(await keyHolderToken(idp, key));
    await call('DELETE', `/tenants/${tenantId}/api-keys/${key.keyId}`, { headers: bearer(ops) });
    clock.advance(boundMs);
    expect((await call('POST', '/users', { headers, body: { email: 'late@example.test' } })).status).toBe(401);
    expect((await call('POST', `/tenants/${tenantId}/api-keys`, { headers, body: { name: 'late', scopes: ['users:write'] } })).status).toBe(401);
  });
});

describe('new containers whose first sync spans pages', () => {
  // A large deployment: each container's first sync reads two pages, so it decides its first
  // requests on point reads (and the management API's authorizer, container 0, too).
  let bulk: { remove(): Promise<void> } | undefined;
  beforeAll(async () => {
    bulk = await addBulkStates(cacheTable, { changedAt: Date.now() - 3600_000 });
  });
  afterAll(() => bulk?.remove());

  it.each(KEY_FORMS)('decide their first requests on point reads, and a revoked key stops within the bound in each: %s', async (form) => {
    await revokedKeyStopsWithinBound(form);
    for (const c of containers) expect(c.feedReads.pointReads).toBeGreaterThanOrEqual(1);
  });

  it('decide user and service tokens on point reads too: a blocked user (401) and a disabled tenant (403) stop within the bound in each', async () => {
    const tenantId = await newTenant();
    await user(tenantId, ['tenant:admin']); // the tenant keeps an admin: the last one could not be blocked
    const u = await user(tenantId, ['tenant:member']);
    const blocked = await secondsUntilRefused(bearer(await u.token()), async () => {
      expect((await call('PATCH', `/users/${encodeURIComponent(u.userId)}`, { headers: bearer(ops), query: { tenantId }, body: { blocked: true } })).status).toBe(200);
    }, 401);
    expect(blocked).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
    for (const c of containers) expect(c.feedReads.pointReads).toBeGreaterThanOrEqual(1);

    const other = await newTenant();
    const service = await idp.registerClient({ tenantId: other, scopes: ['users:read'] });
    const member = await user(other, ['tenant:member']);
    for (const headers of [bearer(await keyHolderToken(idp, service)), bearer(await member.token())]) {
      containers = [container(), container(), container()];
      const s = await secondsUntilRefused(headers, async () => {
        expect((await call('PATCH', `/tenants/${other}`, { headers: bearer(ops), body: { status: 'disabled' } })).status).toBe(200);
      }, 403);
      expect(s).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
      for (const c of containers) expect(c.feedReads.pointReads).toBeGreaterThanOrEqual(1);
      expect((await call('PATCH', `/tenants/${other}`, { headers: bearer(ops), body: { status: 'active' } })).status).toBe(200);
      clock.advance(boundMs);
    }
  });
});

describe('rotation', () => {
  it('without grace: the old key stops within the bound on every path, the new one works at once', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const forms = await keyForms(key);
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([200, 200, 200]);
    const res = await call('POST', `/tenants/${tenantId}/api-keys/${key.keyId}/rotate`, { headers: bearer(ops) });
    expect(res.status).toBe(200);
    const rotated = res.body as IssuedKey;
    const rotatedAt = clock.now();
    for (const h of Object.values(await keyForms(rotated))) expect(await statuses(h)).toEqual([200, 200, 200]);
    for (const [form, h] of Object.entries(forms)) {
      let st = await statuses(h);
      while (st.some((x) => x === 200) && clock.now() - rotatedAt <= boundMs) {
        clock.advance(1000);
        st = await statuses(h);
      }
      expect(st, form).toEqual([401, 401, 401]);
      expect(clock.now() - rotatedAt, form).toBeLessThanOrEqual(boundMs);
    }
    expect(rotated.keyId).toBe(key.keyId);
    for (const headers of Object.values(await keyForms(rotated!))) expect(await statuses(headers)).toEqual([200, 200, 200]);
  });

  it('with graceSeconds: the old key keeps serving through the grace, then stops within the bound', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const forms = await keyForms(key);
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([200, 200, 200]);
    const res = await call('POST', `/tenants/${tenantId}/api-keys/${key.keyId}/rotate`, { headers: bearer(ops), body: { graceSeconds: 600 } });
    expect(res.status).toBe(200);
    clock.advance(599_000);
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([200, 200, 200]);
    clock.advance(1000 + boundMs);
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([401, 401, 401]);
    const listed = (await call('GET', `/tenants/${tenantId}/api-keys`, { headers: bearer(ops) })).body as { items: { previousClients: unknown[] }[] };
    expect(listed.items[0]!.previousClients).toEqual([]);
  });

  it('refuses a grace outside 0..86400 s', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    for (const graceSeconds of [-1, 86_401, 1.5]) {
      expect((await call('POST', `/tenants/${tenantId}/api-keys/${key.keyId}/rotate`, { headers: bearer(ops), body: { graceSeconds } })).status).toBe(400);
    }
  });
});

describe('new credentials the provider does not accept yet (Auth0: up to 30 s)', () => {
  it('answer 503 with Retry-After and no negative entry inside the window, and work once accepted', async () => {
    const tenantId = await newTenant();
    idp.setCredentialPropagation(600_000);
    try {
      const key = await issueKey(tenantId);
      for (let i = 0; i < 3; i++) {
        const res = await call('GET', '/me', { headers: xApiKey(key.apiKey) });
        expect(res.status).toBe(503);
        expect(Number(res.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
      }
      idp.setCredentialPropagation(0);
      clock.advance(5000);
      expect(await statuses(xApiKey(key.apiKey))).toEqual([200, 200, 200]);
    } finally {
      idp.setCredentialPropagation(0);
    }
  });

  it('after the documented window, a refusal is final: 401', async () => {
    const tenantId = await newTenant();
    idp.setCredentialPropagation(600_000);
    try {
      const key = await issueKey(tenantId);
      clock.advance(31_000);
      expect((await call('GET', '/me', { headers: xApiKey(key.apiKey) })).status).toBe(401);
    } finally {
      idp.setCredentialPropagation(0);
    }
  });
});

describe('an exchange in flight across a revocation', () => {
  it('is never trusted past the bound measured from the revocation', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    idp.setFailure('slow', { delayMs: 1500 });
    const requests = idp.stats.tokenRequests;
    via = 1;
    const inFlight = call('GET', '/me', { headers: xApiKey(key.apiKey) });
    via = 0;
    // The revocation starts once the exchange has reached the provider (the event, not a sleep).
    await orHang(until(() => idp.stats.tokenRequests > requests));
    const revokedAt = clock.now();
    expect((await call('DELETE', `/tenants/${tenantId}/api-keys/${key.keyId}`, { headers: bearer(ops) })).status).toBe(204);
    idp.setFailure('none');
    // Whatever it answered (allowed on state read before the revocation, refused on state read
    // after it, or 503 past the budget), from here on the bound applies.
    expect([200, 401, 503]).toContain((await inFlight).status);
    clock.advance(Math.max(0, revokedAt + boundMs - clock.now()));
    expect(await statuses(xApiKey(key.apiKey))).toEqual([401, 401, 401]);
  });
});

describe('a revocation written while a sync is in flight', () => {
  it('is picked up by the next sync: the key stops within the bound on every path, measured from the revocation', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const forms = await keyForms(key);
    // Container 1's sync can be held once its Query has read the feed and before the state lands.
    let hold: { read: () => void; release: Promise<void> } | undefined;
    const held = (shared: DynamoDbTokenCache): PrincipalStateFeed => ({
      changesSince: async (since, onMorePages) => {
        const changes = await shared.changesSince(since, onMorePages);
        const h = hold;
        hold = undefined;
        if (h) {
          h.read();
          await h.release;
        }
        return changes;
      },
      statesOf: (keys) => shared.statesOf(keys),
    });
    containers = [container(), container(held)];
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([200, 200]);
    const c = containers[1]!;
    // Past half the trusted age, a decision starts a sync in the background and goes on.
    clock.advance(Math.ceil((boundMs - FEED_PROPAGATION_MARGIN_MS) / 2));
    let read!: () => void;
    const readDone = new Promise<void>((r) => (read = r));
    let release!: () => void;
    hold = { read, release: new Promise<void>((r) => (release = r)) };
    const syncsBefore = c.state.syncs;
    via = 1;
    expect((await call('GET', '/me', { headers: forms.directBearer })).status).toBe(200);
    via = 0;
    await orHang(readDone);
    // The feed has been read; the revocation is written before that read lands.
    const revokedAt = clock.now();
    expect((await call('DELETE', `/tenants/${tenantId}/api-keys/${key.keyId}`, { headers: bearer(ops) })).status).toBe(204);
    release();
    await orHang(until(() => c.state.syncs > syncsBefore));
    for (const [form, h] of Object.entries(forms)) {
      via = 1;
      let st = (await call('GET', '/me', { headers: h })).status;
      while (st === 200 && clock.now() - revokedAt <= boundMs) {
        clock.advance(1000);
        st = (await call('GET', '/me', { headers: h })).status;
      }
      via = 0;
      expect(st, form).toBe(401);
      expect(clock.now() - revokedAt, form).toBeLessThanOrEqual(boundMs);
    }
  });
});

describe('users', () => {
  it('a blocked user is refused within the bound and admitted again once unblocked', async () => {
    const tenantId = await newTenant();
    await user(tenantId, ['tenant:admin']); // the tenant keeps an admin: the last one could not be changed
    const u = await user(tenantId, ['tenant:admin']);
    const token = await u.token();
    const s = await secondsUntilRefused(bearer(token), async () => {
      expect((await call('PATCH', `/users/${encodeURIComponent(u.userId)}`, { headers: bearer(ops), query: { tenantId }, body: { blocked: true } })).status).toBe(200);
    }, 401);
    expect(s).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
    // Still refused much later, on a new container too.
    clock.advance(1800_000);
    containers.push(container());
    expect(await statuses(bearer(token))).toEqual(containers.map(() => 401));
    containers.pop();
    const unblocked = await call('PATCH', `/users/${encodeURIComponent(u.userId)}`, { headers: bearer(ops), query: { tenantId }, body: { blocked: false } });
    expect(unblocked.status, JSON.stringify(unblocked.body)).toBe(200);
    clock.advance(boundMs);
    expect(await statuses(bearer(token))).toEqual([200, 200, 200]);
  });

  it('a deleted user is refused within the bound, even a tenant admin who deleted themselves', async () => {
    const tenantId = await newTenant();
    await user(tenantId, ['tenant:admin']); // the tenant keeps an admin: the last one could not be changed
    const u = await user(tenantId, ['tenant:admin']);
    const token = await u.token();
    const s = await secondsUntilRefused(bearer(token), async () => {
      expect((await call('DELETE', `/users/${encodeURIComponent(u.userId)}`, { headers: bearer(token) })).status).toBe(204);
    }, 401);
    expect(s).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
    expect((await call('POST', '/users', { headers: bearer(token), body: { email: 'ghost@example.test' } })).status).toBe(401);
  });

  it('a change of roles refuses the tokens issued before it; a new sign-in works', async () => {
    const tenantId = await newTenant();
    await user(tenantId, ['tenant:admin']); // the tenant keeps an admin: the last one could not be changed
    const u = await user(tenantId, ['tenant:admin']);
    const token = await u.token();
    // The change happens in the second after the token was issued (`iat` has whole seconds).
    clock = new ManualClock(Date.now() + 1500);
    containers = [container(), container(), container()];
    let changedAt = 0;
    const s = await secondsUntilRefused(bearer(token), async () => {
      changedAt = clock.now();
      expect((await call('PATCH', `/users/${encodeURIComponent(u.userId)}`, { headers: bearer(ops), query: { tenantId }, body: { roles: ['tenant:member'] } })).status).toBe(200);
    }, 401);
    expect(s).toBeLessThanOrEqual(config.apiKey.revocationCheckS);
    // A sign-in after the change (by the provider's real clock) is admitted.
    await new Promise((r) => setTimeout(r, Math.max(0, changedAt - Date.now()) + 1000));
    const fresh = await u.token();
    clock.advance(boundMs);
    const me = await call('GET', '/me', { headers: bearer(fresh) });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ roles: ['tenant:member'] });
  });
});

describe('tenants', () => {
  it('a disabled tenant: keys (every form), users and service tokens get 403 within the bound; operators still manage it; re-enabling restores', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const u = await user(tenantId, ['tenant:admin']);
    // A service of the tenant: a machine client at the provider that is not a Latchkey key (no state item).
    const service = await idp.registerClient({ tenantId, scopes: ['users:read'] });
    const forms: Record<string, Record<string, string>> = { ...(await keyForms(key)), user: bearer(await u.token()), service: bearer(await keyHolderToken(idp, service)) };
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([200, 200, 200]);
    expect((await call('PATCH', `/tenants/${tenantId}`, { headers: bearer(ops), body: { status: 'disabled' } })).status).toBe(200);
    clock.advance(boundMs);
    for (const [form, h] of Object.entries(forms)) expect(await statuses(h), form).toEqual([403, 403, 403]);
    // Reads and writes alike.
    expect((await call('POST', '/users', { headers: forms.user, body: { email: 'x@example.test' } })).status).toBe(403);
    // The operator still reads and manages the tenant.
    expect((await call('GET', `/tenants/${tenantId}/api-keys`, { headers: bearer(ops) })).status).toBe(200);
    expect((await call('PATCH', `/tenants/${tenantId}`, { headers: bearer(ops), body: { status: 'active' } })).status).toBe(200);
    clock.advance(boundMs);
    for (const [form, h] of Object.entries(forms)) expect(await statuses(h), form).toEqual([200, 200, 200]);
  });

  it("a deleted tenant: keys revoked (401), users' tokens refused (403), for good", async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const u = await user(tenantId, ['tenant:member']);
    const userToken = await u.token();
    const forms = await keyForms(key);
    expect((await call('DELETE', `/tenants/${tenantId}`, { headers: bearer(ops) })).status).toBe(204);
    clock.advance(boundMs);
    for (const h of Object.values(forms)) expect(await statuses(h)).toEqual([401, 401, 401]);
    expect(await statuses(bearer(userToken))).toEqual([403, 403, 403]);
    expect((await call('GET', '/users', { headers: bearer(userToken) })).status).toBe(403);
    // Not even an operator brings it back: re-enabling a deleted tenant is refused.
    expect((await call('PATCH', `/tenants/${tenantId}`, { headers: bearer(ops), body: { status: 'active' } })).status).toBe(409);
    clock.advance(boundMs);
    expect(await statuses(bearer(userToken))).toEqual([403, 403, 403]);
  });
});

describe('cost on the hot path', () => {
  it('a first-seen user token costs no network call beyond the periodic state sync', async () => {
    const tenantId = await newTenant();
    const c = containers[2]!;
    via = 2;
    await call('GET', '/me', { headers: bearer(ops) });
    const before = c.feedReads.n;
    const users = await Promise.all(Array.from({ length: 20 }, () => user(tenantId, ['tenant:member'])));
    for (const u of users) expect((await call('GET', '/me', { headers: bearer(await u.token()) })).status).toBe(200);
    // Neither a sync nor a point read: the container has synced, so its copy serves.
    expect(c.feedReads.n - before).toBe(0);
  });

  it('syncs at most once per half bound per container, and never decides on state older than the bound', async () => {
    const c = containers[0]!;
    via = 0;
    await call('GET', '/me', { headers: bearer(ops) });
    const before = { ...c.feedReads };
    const trust = boundMs - FEED_PROPAGATION_MARGIN_MS;
    for (let i = 0; i < 100; i++) {
      await call('GET', '/me', { headers: bearer(ops) });
      clock.advance(trust / 20);
    }
    const syncs = c.feedReads.syncs - before.syncs;
    expect(syncs).toBeGreaterThanOrEqual(4);
    expect(syncs).toBeLessThanOrEqual(12);
    // A synced container never turns to point reads, however old its copy gets.
    expect(c.feedReads.pointReads - before.pointReads).toBe(0);
  });

  it('answers 503, never 401, when the state cannot be read past the bound', async () => {
    const broken = counting(new DynamoDbTokenCache({ tableName: 'no-such-table' }));
    const verifier = new JwtVerifier({ config: config.jwt, clock });
    const state = new PrincipalStateSnapshot({ feed: broken.shared, clock, log: silentLog, maxAgeMs: boundMs, retryAfterS: 5 });
    const authenticator = new Authenticator({ verifier, state, keyPrefix: 'lk' });
    await expect(authenticator.authenticate({ headers: bearer(ops) })).rejects.toMatchObject({ code: 'ERR_STATE_UNAVAILABLE' });
  });
});

describe('random interleavings (property)', () => {
  it.each([1, 2, 3])('seed %i: no Allow after the bound, on any path, in any container', async (seed) => {
    const rnd = rng(seed); // seeded: a failing seed can be replayed
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const tenantId = await newTenant();
    const keys = [await issueKey(tenantId), await issueKey(tenantId)];
    const users = [await user(tenantId, ['tenant:admin']), await user(tenantId, ['tenant:member'])];
    await user(tenantId, ['tenant:admin']); // another admin, so either user can be blocked
    /** Each credential, and from when it must be refused (epoch ms of the change that ends it). */
    const creds: { headers: Record<string, string>; deadAt: number; ends: string }[] = [];
    for (const [i, k] of keys.entries()) for (const h of Object.values(await keyForms(k))) creds.push({ headers: h, deadAt: Infinity, ends: `key${i}` });
    for (const [i, u] of users.entries()) creds.push({ headers: bearer(await u.token()), deadAt: Infinity, ends: `user${i}` });
    const end = (what: string) => {
      for (const c of creds) if ((c.ends === what || what === 'tenant') && c.deadAt === Infinity) c.deadAt = clock.now();
    };
    const violations: string[] = [];
    for (let step = 0; step < 60; step++) {
      const r = rnd();
      if (r < 0.06) {
        const i = Math.floor(rnd() * keys.length);
        await call('DELETE', `/tenants/${tenantId}/api-keys/${keys[i]!.keyId}`, { headers: bearer(ops) });
        end(`key${i}`);
      } else if (r < 0.12) {
        const i = Math.floor(rnd() * keys.length);
        const res = await call('POST', `/tenants/${tenantId}/api-keys/${keys[i]!.keyId}/rotate`, { headers: bearer(ops) });
        if (res.status === 200) end(`key${i}`);
      } else if (r < 0.17) {
        const i = Math.floor(rnd() * users.length);
        const res = await call('PATCH', `/users/${encodeURIComponent(users[i]!.userId)}`, { headers: bearer(ops), query: { tenantId }, body: { blocked: true } });
        if (res.status === 200) end(`user${i}`);
      } else if (r < 0.2) {
        await call('PATCH', `/tenants/${tenantId}`, { headers: bearer(ops), body: { status: 'disabled' } });
        end('tenant');
      } else if (r < 0.5) {
        clock.advance(Math.floor(rnd() * 10_000));
      } else {
        const c = pick(creds);
        via = Math.floor(rnd() * containers.length);
        const status = (await call('GET', '/me', { headers: c.headers })).status;
        via = 0;
        if (status === 200 && clock.now() >= c.deadAt + boundMs) violations.push(`step ${step}: ${c.ends} allowed ${(clock.now() - c.deadAt) / 1000} s after its end`);
        if (status !== 200 && c.deadAt === Infinity) violations.push(`step ${step}: ${c.ends} refused (${status}) while valid`);
      }
    }
    expect(violations).toEqual([]);
  });
});

describe('least privilege: no path to a stronger credential (issue #11)', () => {
  it('a keys:write-only key can neither rotate nor revoke a stronger key; the owner keeps theirs', async () => {
    const tenantId = await newTenant();
    const strong = await issueKey(tenantId, ['users:read', 'users:write']);
    const weak = await issueKey(tenantId, ['keys:write']);
    for (const headers of Object.values(await keyForms(weak))) {
      const rotated = await call('POST', `/tenants/${tenantId}/api-keys/${strong.keyId}/rotate`, { headers });
      expect(rotated.status).toBe(403);
      expect(JSON.stringify(rotated.body)).not.toMatch(/clientSecret|lk_/);
      expect((await call('DELETE', `/tenants/${tenantId}/api-keys/${strong.keyId}`, { headers })).status).toBe(403);
    }
    clock.advance(boundMs);
    expect(await statuses(xApiKey(strong.apiKey))).toEqual([200, 200, 200]);
  });

  it('a key creates users only with roles whose permissions it holds', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId, ['users:read', 'users:write']);
    for (const headers of Object.values(await keyForms(key))) {
      const admin = await call('POST', '/users', { headers, body: { email: `a${Math.random()}@example.test`, password: 'chosen by the key', roles: ['tenant:admin'] } });
      expect(admin.status).toBe(403);
      expect((await call('POST', '/users', { headers, body: { email: `m${Math.random()}@example.test`, roles: ['tenant:member'] } })).status).toBe(201);
    }
    const writeOnly = await issueKey(tenantId, ['users:write']);
    expect((await call('POST', '/users', { headers: xApiKey(writeOnly.apiKey), body: { email: 'w@example.test', roles: ['tenant:member'] } })).status).toBe(403);
  });

  it("a user's requested scopes grant nothing their roles do not (RBAC): a member cannot create tenants or keys", async () => {
    const tenantId = await newTenant();
    const member = idp.addUser({ email: `m${Math.random()}@example.test`, password: 'correct horse battery', tenantId, roles: ['tenant:member'] });
    const token = await idp.issueUserToken({ userId: member.userId, scopes: ['tenants:admin', 'keys:write', 'users:read'] });
    expect((await call('POST', '/tenants', { headers: bearer(token), body: { tenantId: 'mine', name: 'x' } })).status).toBe(403);
    expect((await call('POST', `/tenants/${tenantId}/api-keys`, { headers: bearer(token), body: { name: 'x', scopes: ['users:read'] } })).status).toBe(403);
    expect((await call('GET', '/users', { headers: bearer(token) })).status).toBe(200);
  });

  it('a tenant admin cannot demote, block or delete a platform operator of their tenant, and reads them only', async () => {
    const tenantId = await newTenant();
    const admin = await user(tenantId, ['tenant:admin']);
    const operator = idp.addUser({ email: `op${Math.random()}@example.test`, password: 'correct horse battery', tenantId, roles: ['platform:admin'] });
    const headers = bearer(await admin.token());
    const path = `/users/${encodeURIComponent(operator.userId)}`;
    expect((await call('GET', path, { headers })).status).toBe(200);
    expect((await call('PATCH', path, { headers, body: { roles: ['tenant:member'] } })).status).toBe(403);
    expect((await call('PATCH', path, { headers, body: { blocked: true } })).status).toBe(403);
    expect((await call('DELETE', path, { headers })).status).toBe(403);
    expect(idp.getUser(operator.userId)).toMatchObject({ roles: ['platform:admin'], blocked: false });
  });

  it('a PATCH of roles keeps the roles the caller may not manage', async () => {
    const tenantId = await newTenant();
    const target = await user(tenantId, ['tenant:admin']);
    await user(tenantId, ['tenant:admin']);
    const key = await issueKey(tenantId, ['users:read', 'users:write']);
    const res = await call('PATCH', `/users/${encodeURIComponent(target.userId)}`, { headers: xApiKey(key.apiKey), body: { roles: ['tenant:member'] } });
    expect(res.status).toBe(200);
    expect([...(res.body as { roles: string[] }).roles].sort()).toEqual(['tenant:admin', 'tenant:member']);
  });

  it('the last active admin of a tenant cannot be deleted, blocked or demoted (409)', async () => {
    const tenantId = await newTenant();
    const only = await user(tenantId, ['tenant:admin']);
    const path = `/users/${encodeURIComponent(only.userId)}`;
    const q = { tenantId };
    expect((await call('DELETE', path, { headers: bearer(ops), query: q })).status).toBe(409);
    expect((await call('PATCH', path, { headers: bearer(ops), query: q, body: { blocked: true } })).status).toBe(409);
    expect((await call('PATCH', path, { headers: bearer(ops), query: q, body: { roles: ['tenant:member'] } })).status).toBe(409);
    // A blocked admin does not count as one.
    const blocked = await user(tenantId, ['tenant:admin']);
    idp.updateUser(blocked.userId, { blocked: true });
    expect((await call('DELETE', path, { headers: bearer(ops), query: q })).status).toBe(409);
    await user(tenantId, ['tenant:admin']);
    expect((await call('PATCH', path, { headers: bearer(ops), query: q, body: { roles: ['tenant:member'] } })).status).toBe(200);
  });

  it('key scopes: at least one, each from API_KEY_SCOPES, duplicates dropped', async () => {
    const tenantId = await newTenant();
    const post = (scopes: unknown) => call('POST', `/tenants/${tenantId}/api-keys`, { headers: bearer(ops), body: { name: 'k', scopes } });
    expect((await post([])).status).toBe(400);
    expect((await post(['tenants:admin'])).status).toBe(400);
    expect((await post(['users:read,users:write'])).status).toBe(400);
    const dup = await post(['users:read', 'users:read']);
    expect(dup.status).toBe(201);
    expect((dup.body as { scopes: string[] }).scopes).toEqual(['users:read']);
  });
});

describe('abuse: unknown keys never reach the identity provider (issue #11)', () => {
  const randomBasic = () => basic(`id-${Math.random().toString(36).slice(2)}`, Math.random().toString(36).repeat(3));

  async function tableItems(): Promise<number> {
    const db = new DynamoDBClient({});
    const out = await db.send(new ScanCommand({ TableName: cacheTable, Select: 'COUNT' }));
    db.destroy();
    return out.Count ?? 0;
  }

  it('a flood of random credentials costs no exchange and no write; a real key used during it is allowed', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    idp.resetStats();
    const items = await tableItems();
    // Three containers, each serving one request at a time as Lambda does; the real key arrives mid-flood.
    const answers: number[] = [];
    let legit = 0;
    for (let i = 0; i < 200; i++) {
      via = i % 3;
      answers.push((await call('GET', '/me', { headers: randomBasic() })).status);
      if (i === 100) legit = (await call('GET', '/me', { headers: xApiKey(key.apiKey) })).status;
    }
    via = 0;
    expect(answers.every((s) => s === 401)).toBe(true);
    expect(legit).toBe(200);
    expect(idp.stats.tokenRequests).toBe(1); // the real key's exchange, nothing else
    // The real key's token and lease: nothing for the 200 random ones.
    expect((await tableItems()) - items).toBeLessThanOrEqual(2);
  });

  it('a flood of wrong secrets for a real key is held to the per-container budget, 503 past it, never 401 for the right secret', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    clock.advance(31_000); // past the window in which a new key's refusal is not final
    idp.resetStats();
    const budget = config.apiKey.exchangeBudgetPerMin;
    const answers = [];
    for (let i = 0; i < budget + 20; i++) answers.push((await call('GET', '/me', { headers: basic(key.clientId, `wrong-${i}`) })).status);
    expect(idp.stats.tokenRequests).toBe(budget);
    expect(answers.filter((s) => s === 503)).toHaveLength(20);
    expect(answers.filter((s) => s === 401)).toHaveLength(budget);
    // The right secret through another container: allowed.
    via = 1;
    expect((await call('GET', '/me', { headers: xApiKey(key.apiKey) })).status).toBe(200);
    via = 0;
  });

  it("honours the provider's Retry-After in every container: no token request before the reset", async () => {
    const tenantId = await newTenant();
    const keys = [await issueKey(tenantId), await issueKey(tenantId), await issueKey(tenantId)];
    const cached = await issueKey(tenantId);
    expect(await statuses(xApiKey(cached.apiKey))).toEqual([200, 200, 200]);
    idp.setFailure('rate-limited', { retryAfterS: 10 });
    idp.resetStats();
    via = 0;
    expect((await call('GET', '/me', { headers: xApiKey(keys[0]!.apiKey) })).status).toBe(503);
    expect(idp.stats.tokenRequests).toBe(1);
    idp.setFailure('none');
    for (let step = 0; step < 9; step++) {
      for (let c = 0; c < 3; c++) {
        via = c;
        expect((await call('GET', '/me', { headers: xApiKey(keys[1 + (step % 2)]!.apiKey) })).status).toBe(503);
        // Cached keys keep serving through the pause.
        expect((await call('GET', '/me', { headers: xApiKey(cached.apiKey) })).status).toBe(200);
      }
      clock.advance(1000);
    }
    expect(idp.stats.tokenRequests).toBe(1);
    clock.advance(1500);
    // After the reset every container exchanges again (a few tries: on a loaded machine one may run out of its decision budget).
    for (let c = 0; c < 3; c++) {
      via = c;
      let status = 0;
      for (let attempt = 0; attempt < 3 && status !== 200; attempt++) status = (await call('GET', '/me', { headers: xApiKey(keys[1]!.apiKey) })).status;
      expect(status, `container ${c}`).toBe(200);
    }
    via = 0;
  });

  it('after a suite of bad inputs, no secret or token is in any log line or table item', async () => {
    const tenantId = await newTenant();
    const key = await issueKey(tenantId);
    const direct = await keyHolderToken(idp, key);
    clock.advance(31_000); // past the window in which a new key's refusal is not final
    logged.length = 0;
    const bad: Record<string, string>[] = [
      basic(key.apiKey, 'a-password'), // an lk_ key as the Basic user name with a password
      basic('anything', key.apiKey), // ... or as the password with a user name
      basic(key.clientSecret, key.clientId), // id and secret swapped
      basic(key.clientId, `${key.clientSecret}x`), // a wrong secret
      xApiKey(`${key.apiKey.slice(0, -1)}0`), // a bad checksum
      bearer(`${direct.slice(0, -4)}AAAA`), // a tampered token
      randomBasic(),
    ];
    for (const headers of bad) expect((await call('GET', '/me', { headers })).status).toBe(401);
    await call('GET', '/me', { headers: xApiKey(key.apiKey) });
    await call('GET', '/me', { headers: bearer(direct) });
    const db = new DynamoDBClient({});
    const dump = JSON.stringify((await db.send(new ScanCommand({ TableName: cacheTable }))).Items);
    db.destroy();
    for (const secret of [key.clientSecret, key.apiKey, direct, direct.split('.')[2]!]) {
      expect(dump).not.toContain(secret);
      for (const line of logged) expect(line).not.toContain(secret);
    }
    expect(logged.length).toBeGreaterThan(0);
  });
});
