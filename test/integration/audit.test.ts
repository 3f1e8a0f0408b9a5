/**
 * The audit trail end to end in-process: the real authorizer, the tenants and users handlers
 * with their real adapters (DynamoDB Local, the local identity provider) and the DynamoDB audit
 * log. Each change must leave exactly one event, refusals too; tenants must not read each
 * other's trails; an edited item must break the chain where it was edited; a fault between a
 * change and its event must leave neither or both.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbAuditLog } from '../../functions/adapters/dynamodb-audit-log.js';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { LocalIdentityProvider } from '../../functions/adapters/local-identity-provider.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuditRoutes } from '../../functions/audit/routes.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { DEFAULT_PENDING_STALE_MS, type AuditEvent, type AuditLog } from '../../functions/core/audit.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { DEFAULT_KEY_SCOPES, loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { KeyLifecycle } from '../../functions/core/key-lifecycle.js';
import { silentLog } from '../../functions/core/log.js';
import { CREDENTIAL_PROPAGATION_MS, PrincipalStateSnapshot } from '../../functions/core/principal-state.js';
import { SecurityEventAggregator } from '../../functions/core/security-events.js';
import { createApiHandler } from '../../functions/http/api-handler.js';
import { createTenantRoutes } from '../../functions/tenants/routes.js';
import { createUserRoutes } from '../../functions/users/routes.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { createHarness, type Harness } from '../support/api-harness.js';
import { ManualClock } from '../support/clock.js';
import { createAuditTable, createTenantsTable, createTokenCacheTable } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let clock: ManualClock;
let auditTable: string;
let audit: DynamoDbAuditLog;
/** The API with the audit trail, and a variant whose audit log is given per test. */
let api: Harness;
let apiWith: (log: AuditLog) => Harness;
let security: SecurityEventAggregator;
let revocationCheckS: number;
const tokens: Record<string, string> = {};
const bearer = (who: string) => ({ Authorization: `Bearer ${tokens[who]}`, 'User-Agent': `test-agent/${who}` });
const subjects: Record<string, string> = {};

/** Every event of a tenant's trail, oldest first. */
async function trail(tenantId: string): Promise<AuditEvent[]> {
  const all: AuditEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await audit.query({ tenantId, limit: 100, cursor });
    all.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return all.sort((a, b) => a.seq - b.seq);
}

/** Runs `act` and returns the events it added to the tenant's trail. */
async function added(tenantId: string, act: () => Promise<unknown>): Promise<AuditEvent[]> {
  const before = (await trail(tenantId)).length;
  await act();
  return (await trail(tenantId)).slice(before);
}

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0 });
  const [tenantsTable, cacheTable] = await Promise.all([createTenantsTable(), createTokenCacheTable()]);
  auditTable = await createAuditTable();
  clock = new ManualClock(Date.now());
  audit = new DynamoDbAuditLog({ tableName: auditTable, clock });
  const config = loadAuthorizerConfig({ ISSUER: idp.issuer, AUDIENCE: idp.audience, TOKEN_AUDIENCE_PARAM: 'resource', TOKEN_CACHE_TABLE: cacheTable });
  const verifier = new JwtVerifier({ config: config.jwt, clock });
  const shared = new DynamoDbTokenCache({ tableName: cacheTable });
  const exchange = new ApiKeyExchange({ config: config.apiKey, jwtConfig: config.jwt, clock, verifier, tokenEndpoint: new OAuthTokenEndpoint(config.apiKey), shared, log: silentLog });
  const state = new PrincipalStateSnapshot({ feed: shared, clock, log: silentLog, maxAgeMs: config.apiKey.revocationCheckS * 1000, retryAfterS: 5 });
  revocationCheckS = config.apiKey.revocationCheckS;
  security = new SecurityEventAggregator({
    clock,
    log: silentLog,
    write: async (events) => {
      for (const e of events) await audit.append(e);
    },
  });
  const authorizer = createAuthorizerHandler({
    authenticator: new Authenticator({ verifier, state, keyPrefix: 'lk', apiKeys: async () => exchange }),
    log: silentLog,
    security: { events: security, keyPrefix: 'lk' },
  });
  const store = new DynamoDbTenantStore({ tableName: tenantsTable });
  const local = new LocalIdentityProvider({ baseUrl: idp.origin, adminToken: idp.adminToken, registrationToken: idp.initialAccessToken });
  const keys = new KeyLifecycle({ store, idp: async () => local, states: shared, tokens: shared, clock, log: silentLog, audience: idp.audience, keyScopes: DEFAULT_KEY_SCOPES.split(' ') });
  const tenantRoutes = createTenantRoutes({ store, keys, clock, keyPrefix: 'lk' });
  const userRoutes = createUserRoutes({ store, idp: async () => local, states: shared, clock, log: silentLog });
  apiWith = (log: AuditLog) => {
    const routes = [...tenantRoutes, ...createAuditRoutes({ audit: log })];
    return createHarness({
      authorizer,
      routes: [
        { name: 'tenants', resources: routes.map((r) => r.resource), handler: createApiHandler({ routes, log: silentLog, audit: { log } }) },
        { name: 'users', resources: userRoutes.map((r) => r.resource), handler: createApiHandler({ routes: userRoutes, log: silentLog, audit: { log } }) },
      ],
    });
  };
  api = apiWith(audit);
  const people = {
    platform: { roles: ['platform:admin'] },
    acmeAdmin: { tenantId: 'acme', roles: ['tenant:admin'] },
    acmeMember: { tenantId: 'acme', roles: ['tenant:member'] },
    globexAdmin: { tenantId: 'globex', roles: ['tenant:admin'] },
  };
  for (const [who, p] of Object.entries(people)) {
    const user = idp.addUser({ email: `${who.toLowerCase()}@example.test`, password: 'correct horse battery', ...p });
    subjects[who] = user.userId;
    tokens[who] = await idp.issueUserToken({ userId: user.userId });
  }
  for (const t of ['acme', 'globex']) expect((await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: t, name: t } })).status).toBe(201);
});
afterAll(async () => {
  await idp?.stop();
});

describe('one event per change', () => {
  it('records tenant create with the actor, target and request context', async () => {
    const events = await added('initech', async () => {
      expect((await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'initech', name: 'Initech' } })).status).toBe(201);
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      tenantId: 'initech',
      action: 'tenant.create',
      outcome: 'success',
      status: 201,
      target: { type: 'tenant', id: 'initech' },
      actor: { principalId: subjects.platform, authMethod: 'jwt', userId: subjects.platform },
      request: { sourceIp: '198.51.100.7', userAgent: 'test-agent/platform', requestId: expect.any(String) },
    });
  });

  it('records each tenant change once: rename, disable, enable, delete', async () => {
    await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'hooli', name: 'Hooli' } });
    const steps: [string, unknown, string][] = [
      ['PATCH', { name: 'Hooli XYZ' }, 'tenant.update'],
      ['PATCH', { status: 'disabled' }, 'tenant.disable'],
      ['PATCH', { status: 'active' }, 'tenant.enable'],
      ['DELETE', undefined, 'tenant.delete'],
    ];
    for (const [method, body, action] of steps) {
      const events = await added('hooli', async () => expect((await api.call(method, '/tenants/hooli', { headers: bearer('platform'), body })).status).toBeLessThan(300));
      expect(events.map((e) => [e.action, e.outcome, e.target.id, e.actor.principalId])).toEqual([[action, 'success', 'hooli', subjects.platform]]);
    }
  });

  it('names the plan a tenant was to move to (this deployment has no plans: 400, recorded as failed)', async () => {
    await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'pied-piper', name: 'Pied Piper' } });
    const events = await added('pied-piper', async () => expect((await api.call('PATCH', '/tenants/pied-piper', { headers: bearer('platform'), body: { plan: 'enterprise' } })).status).toBe(400));
    expect(events.map((e) => [e.action, e.outcome, e.status, e.details])).toEqual([['tenant.update', 'failed', 400, { fields: ['plan'], plan: 'enterprise' }]]);
  });

  it('records key issue, rotate and revoke once each, never with the secret', async () => {
    let key = { keyId: '', apiKey: '', clientSecret: '' };
    const issued = await added('acme', async () => {
      const res = await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeAdmin'), body: { name: 'sync', scopes: ['users:read'] } });
      expect(res.status).toBe(201);
      key = res.body as typeof key;
    });
    expect(issued.map((e) => [e.action, e.target, e.actor.principalId, e.actor.tenantId])).toEqual([['key.issue', { type: 'key', id: key.keyId }, subjects.acmeAdmin, 'acme']]);
    expect(issued[0]!.details).toEqual({ scopes: ['users:read'] });
    let rotated = { apiKey: '', clientSecret: '' };
    const rot = await added('acme', async () => {
      const res = await api.call('POST', `/tenants/acme/api-keys/${key.keyId}/rotate`, { headers: bearer('acmeAdmin'), body: { graceSeconds: 60 } });
      rotated = res.body as typeof rotated;
    });
    expect(rot.map((e) => [e.action, e.target.id, e.outcome])).toEqual([['key.rotate', key.keyId, 'success']]);
    const rev = await added('acme', () => api.call('DELETE', `/tenants/acme/api-keys/${key.keyId}`, { headers: bearer('acmeAdmin') }));
    expect(rev.map((e) => [e.action, e.target.id, e.outcome, e.status])).toEqual([['key.revoke', key.keyId, 'success', 204]]);
    const stored = JSON.stringify(await trail('acme'));
    for (const secret of [key.apiKey, key.clientSecret, rotated.apiKey, rotated.clientSecret, tokens.acmeAdmin!]) expect(stored).not.toContain(secret);
  });

  it('records user create, update, role change, block, unblock and delete once each, never the password', async () => {
    let userId = '';
    const created = await added('acme', async () => {
      const res = await api.call('POST', '/users', { headers: bearer('acmeAdmin'), body: { email: 'new@example.test', password: 'hunter2hunter2', roles: ['tenant:member'] } });
      expect(res.status).toBe(201);
      userId = (res.body as { userId: string }).userId;
    });
    expect(created.map((e) => [e.action, e.target, e.details])).toEqual([['user.create', { type: 'user', id: userId }, { roles: ['tenant:member'] }]]);
    const steps: [string, unknown, string][] = [
      ['PATCH', { name: 'New Name' }, 'user.update'],
      ['PATCH', { roles: ['tenant:admin'] }, 'user.roles'],
      ['PATCH', { blocked: true }, 'user.block'],
      ['PATCH', { blocked: false }, 'user.unblock'],
      ['DELETE', undefined, 'user.delete'],
    ];
    for (const [method, body, action] of steps) {
      const events = await added('acme', async () => expect((await api.call(method, `/users/${encodeURIComponent(userId)}`, { headers: bearer('acmeAdmin'), body })).status).toBeLessThan(300));
      expect(events.map((e) => [e.action, e.outcome, e.target.id, e.actor.principalId])).toEqual([[action, 'success', userId, subjects.acmeAdmin]]);
    }
    expect(JSON.stringify(await trail('acme'))).not.toContain('hunter2hunter2');
  });

  it('records a change that fails as failed, and a replay-free retry as its own event', async () => {
    const events = await added('acme', () => api.call('POST', '/tenants/acme/api-keys/key_nope/rotate', { headers: bearer('acmeAdmin') }));
    expect(events.map((e) => [e.action, e.outcome, e.status])).toEqual([['key.rotate', 'failed', 404]]);
  });
});

describe('refusals', () => {
  it('records a refused change in the trail of the tenant it aimed at', async () => {
    const events = await added('acme', async () => {
      expect((await api.call('POST', '/tenants/acme/api-keys', { headers: bearer('acmeMember'), body: { name: 'x', scopes: ['users:read'] } })).status).toBe(403);
    });
    expect(events.map((e) => [e.action, e.outcome, e.status, e.actor.principalId])).toEqual([['key.issue', 'refused', 403, subjects.acmeMember]]);
  });

  it('records a refused read of another tenant in that tenant\'s trail', async () => {
    const events = await added('globex', async () => expect((await api.call('GET', '/tenants/globex', { headers: bearer('acmeAdmin') })).status).toBe(403));
    expect(events.map((e) => [e.action, e.outcome, e.target, e.actor.tenantId])).toEqual([['access', 'refused', { type: 'route', id: 'GET /tenants/{tenantId}' }, 'acme']]);
  });
});

describe('reading the trail', () => {
  it('lets a tenant admin read its own trail, filtered and paged, and nobody else\'s', async () => {
    expect((await api.call('GET', '/tenants/acme/audit', { headers: bearer('globexAdmin') })).status).toBe(403);
    expect((await api.call('GET', '/tenants/acme/audit/verify', { headers: bearer('globexAdmin') })).status).toBe(403);
    expect((await api.call('GET', '/tenants/acme/audit', { headers: bearer('acmeMember') })).status).toBe(403);
    expect((await api.call('GET', '/audit', { headers: bearer('acmeAdmin') })).status).toBe(403);
    const own = await api.call('GET', '/tenants/acme/audit', { headers: bearer('acmeAdmin'), query: { action: 'key.issue', limit: '100' } });
    expect(own.status).toBe(200);
    const items = (own.body as { items: AuditEvent[] }).items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((e) => e.action === 'key.issue' && e.tenantId === 'acme')).toBe(true);
    const byActor = (await api.call('GET', '/tenants/acme/audit', { headers: bearer('acmeAdmin'), query: { actor: subjects.acmeMember!, limit: '100' } })).body as { items: AuditEvent[] };
    expect(byActor.items.length).toBeGreaterThan(0);
    expect(byActor.items.every((e) => e.actor.principalId === subjects.acmeMember)).toBe(true);
    // Paging: newest first, two at a time, no event twice.
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = (await api.call('GET', '/tenants/acme/audit', { headers: bearer('acmeAdmin'), query: { limit: '2', ...(cursor ? { cursor } : {}) } })).body as { items: AuditEvent[]; nextCursor: string | null };
      seen.push(...page.items.map((e) => e.seq));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual((await trail('acme')).map((e) => e.seq).reverse());
    // A cursor of another tenant's trail is refused, not followed.
    const globexPage = (await api.call('GET', '/tenants/globex/audit', { headers: bearer('globexAdmin'), query: { limit: '1' } })).body as { nextCursor: string | null };
    if (globexPage.nextCursor) expect((await api.call('GET', '/tenants/acme/audit', { headers: bearer('acmeAdmin'), query: { cursor: globexPage.nextCursor } })).status).toBe(400);
  });

  it('lets operators read every tenant\'s trail and any tenant\'s', async () => {
    const res = await api.call('GET', '/audit', { headers: bearer('platform'), query: { limit: '100' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const all = res.body as { items: AuditEvent[] };
    expect(all.items.some((e) => e.tenantId === 'acme') && all.items.some((e) => e.tenantId === 'globex')).toBe(true);
    expect((await api.call('GET', '/tenants/globex/audit', { headers: bearer('platform') })).status).toBe(200);
  });
});

describe('tamper evidence', () => {
  it('verifies an untouched chain, and names the edited event after an item is changed in DynamoDB', async () => {
    await api.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'tamper', name: 'T' } });
    for (const name of ['a', 'b', 'c']) await api.call('PATCH', '/tenants/tamper', { headers: bearer('platform'), body: { name } });
    const ok = await api.call('GET', '/tenants/tamper/audit/verify', { headers: bearer('platform') });
    expect(ok.body).toMatchObject({ ok: true, checked: 4, firstSeq: 1, lastSeq: 4 });
    const events = await trail('tamper');
    const victim = events[2]!;
    const db = createDocumentClient({ maxAttempts: 1 });
    // Someone with table access rewrites who did it.
    await db.send(
      new UpdateCommand({
        TableName: auditTable,
        Key: { pk: 'tenant#tamper', sk: `e#${victim.at}#${String(victim.seq).padStart(12, '0')}` },
        UpdateExpression: 'SET actor.principalId = :x',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':x': 'someone-else' },
      }),
    );
    const broken = await api.call('GET', '/tenants/tamper/audit/verify', { headers: bearer('platform') });
    expect(broken.body).toMatchObject({ ok: false, firstBreak: { seq: victim.seq, eventId: victim.eventId, reason: 'hash-mismatch' } });
    // Re-hashing the edited event does not help: the next one still names the old hash.
    const { eventHash } = await import('../../functions/core/audit.js');
    const forged = { ...victim, actor: { ...victim.actor, principalId: 'someone-else' } };
    await db.send(
      new UpdateCommand({
        TableName: auditTable,
        Key: { pk: 'tenant#tamper', sk: `e#${victim.at}#${String(victim.seq).padStart(12, '0')}` },
        UpdateExpression: 'SET #h = :h',
        ExpressionAttributeNames: { '#h': 'hash' },
        ExpressionAttributeValues: { ':h': eventHash(forged) },
      }),
    );
    expect((await audit.verify('tamper')).firstBreak).toMatchObject({ seq: victim.seq + 1, reason: 'prev-hash-mismatch' });
    db.destroy();
  });

  it('does not fork the chain under concurrent appends', async () => {
    const actor = { principalId: 'p', authMethod: 'jwt' as const };
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        audit.append({ tenantId: 'busy', action: 'access', target: { type: 'route', id: `r${i}` }, actor, request: { requestId: `q${i}` }, outcome: 'refused', status: 403 }),
      ),
    );
    const events = await trail('busy');
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await audit.verify('busy')).toMatchObject({ ok: true, checked: 8 });
  });
});

describe('security events from the authorizer', () => {
  it('writes one event per key and window for a revoked key used again and again', async () => {
    const key = (await api.call('POST', '/tenants/globex/api-keys', { headers: bearer('globexAdmin'), body: { name: 'leaked', scopes: ['users:read'] } })).body as { keyId: string; apiKey: string };
    expect((await api.call('GET', '/me', { headers: { 'X-Api-Key': key.apiKey } })).status).toBe(200);
    await api.call('DELETE', `/tenants/globex/api-keys/${key.keyId}`, { headers: bearer('globexAdmin') });
    clock.advance(revocationCheckS * 1000);
    await security.flush();
    const events = await added('globex', async () => {
      for (let i = 0; i < 12; i++) expect((await api.call('GET', '/me', { headers: { 'X-Api-Key': key.apiKey } })).status).toBe(401);
      await security.flush();
    });
    expect(events.map((e) => [e.action, e.target, e.outcome, e.details?.count])).toEqual([['security.key-revoked-used', { type: 'key', id: key.keyId }, 'refused', 12]]);
    expect(JSON.stringify(events)).not.toContain(key.apiKey.slice(-20));
  });

  it('writes one event for a flood of rejected secrets for one client, not one per attempt', async () => {
    const key = (await api.call('POST', '/tenants/globex/api-keys', { headers: bearer('globexAdmin'), body: { name: 'target', scopes: ['users:read'] } })).body as { clientId: string };
    // Past the window in which a new key's refusal means "not accepted yet" (503), not "wrong".
    clock.advance(CREDENTIAL_PROPAGATION_MS + 1);
    await security.flush();
    const basic = (secret: string) => ({ Authorization: `Basic ${Buffer.from(`${key.clientId}:${secret}`).toString('base64')}` });
    const before = (await audit.query({ limit: 100, action: 'security.secret-rejected' })).items.length;
    // The same stolen-and-wrong guess, again and again (the negative cache answers after the first).
    for (let i = 0; i < 25; i++) expect((await api.call('GET', '/me', { headers: basic('wrong-secret-guess') })).status).toBe(401);
    await security.flush();
    const after = (await audit.query({ limit: 100, action: 'security.secret-rejected' })).items;
    expect(after.length - before).toBe(1);
    expect(after[0]).toMatchObject({ target: { type: 'client', id: key.clientId }, details: { count: 25 } });
    expect(JSON.stringify(after[0])).not.toContain('wrong-secret');
  });
});

describe('a change and its event: neither or both', () => {
  it('makes no change when the event cannot be written ahead (audit table missing)', async () => {
    const broken = apiWith(new DynamoDbAuditLog({ tableName: 'no-such-audit-table', clock }));
    const res = await broken.call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'ghost', name: 'Ghost' } });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect((await api.call('GET', '/tenants/ghost', { headers: bearer('platform') })).status).toBe(404);
    expect(await trail('ghost')).toEqual([]);
  });

  it('keeps the event when the process fails after the change: sealed as unconfirmed, exactly once', async () => {
    // The seal's transport fails (as a dropped connection would) after the change was made.
    const faulty: AuditLog = {
      append: (i) => audit.append(i),
      begin: (i) => audit.begin(i),
      seal: async () => {
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      },
      query: (q) => audit.query(q),
      verify: (t) => audit.verify(t),
    };
    const res = await apiWith(faulty).call('POST', '/tenants', { headers: bearer('platform'), body: { tenantId: 'halfway', name: 'Halfway' } });
    expect(res.status).toBe(201);
    expect((await api.call('GET', '/tenants/halfway', { headers: bearer('platform') })).status).toBe(200);
    // Not yet stale: the request might still be running, so nothing is sealed for it.
    expect(await trail('halfway')).toEqual([]);
    clock.advance(DEFAULT_PENDING_STALE_MS);
    const events = await trail('halfway');
    expect(events.map((e) => [e.action, e.outcome, e.target.id, e.actor.principalId])).toEqual([['tenant.create', 'unconfirmed', 'halfway', subjects.platform]]);
    expect(await trail('halfway')).toHaveLength(1);
    expect(await audit.verify('halfway')).toMatchObject({ ok: true, checked: 1 });
  });
});
