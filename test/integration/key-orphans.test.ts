/**
 * Key creation never orphans a provider client (issue 12): a pending record before the provider
 * call, made active after; a retried creation (same Idempotency-Key, its record long gone) finds
 * the client by key id instead of making another; the reconciler deletes clients whose key has no
 * active record and revokes them in the principal state first. Real DynamoDB Local, the local
 * identity provider over HTTP.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { LocalIdentityProvider } from '../../functions/adapters/local-identity-provider.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import type { IdentityProvider } from '../../functions/core/identity-provider.js';
import { KeyLifecycle, ManagementError, PENDING_KEY_GRACE_MS } from '../../functions/core/key-lifecycle.js';
import type { Log } from '../../functions/core/log.js';
import type { Principal } from '../../functions/core/principal.js';
import type { TenantStore } from '../../functions/core/tenant-store.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { ManualClock } from '../support/clock.js';
import { createTenantsTable, createTokenCacheTable } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;

let idp: Idp;
let store: DynamoDbTenantStore;
let states: DynamoDbTokenCache;
let local: LocalIdentityProvider;
let clock: ManualClock;
let tenantId: string;
const logged: { message: string; fields: Record<string, unknown> | undefined }[] = [];
const record = (message: string, fields?: Record<string, unknown>) => void logged.push({ message, fields });
const log: Log = { debug: () => undefined, info: record, warn: record, error: record };

const admin: Principal = {
  subject: 'user|admin',
  tenantId: undefined,
  userId: 'user|admin',
  clientId: undefined,
  roles: ['platform:admin'],
  scopes: [],
  authMethod: 'jwt',
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
  issuedAtMs: Date.now(),
} as Principal;

function lifecycle(opts: { store?: TenantStore; idp?: IdentityProvider } = {}) {
  return new KeyLifecycle({
    store: opts.store ?? store,
    idp: async () => opts.idp ?? local,
    states,
    tokens: states,
    clock,
    log,
    audience: idp.audience,
    keyScopes: ['read:things', 'write:things'],
  });
}

/** The registry, except that making a key active fails `times` times (a crash after the provider call). */
function failingActivation(times = 1): TenantStore {
  let left = times;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'activateKey' && left > 0) {
        return () => {
          left--;
          return Promise.reject(new Error('registry write lost'));
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function tokenStatus(c: { clientId: string; clientSecret: string }): Promise<number> {
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: idp.audience, client_id: c.clientId, client_secret: c.clientSecret }),
  });
  await res.arrayBuffer();
  return res.status;
}

const keyClients = (keyId?: string) => local.listMachineClients({ tenantId, ...(keyId !== undefined ? { keyId } : {}) });
const input = { name: 'ci', scopes: ['read:things'] };

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things', 'write:things'] });
  const [tenantsTable, cacheTable] = await Promise.all([createTenantsTable(), createTokenCacheTable()]);
  store = new DynamoDbTenantStore({ tableName: tenantsTable });
  states = new DynamoDbTokenCache({ tableName: cacheTable });
  local = new LocalIdentityProvider({ baseUrl: idp.origin, adminToken: idp.adminToken, registrationToken: idp.initialAccessToken });
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async () => {
  clock = new ManualClock(Date.now());
  logged.length = 0;
  tenantId = `t-${Math.random().toString(36).slice(2, 10)}`;
  const at = new Date(clock.now()).toISOString();
  await store.createTenant({ tenantId, name: tenantId, status: 'active', createdAt: at, updatedAt: at });
});

describe('issuing a key', () => {
  it('writes a pending record before the provider call and makes it active after', async () => {
    const issued = await lifecycle().issue(admin, tenantId, input);
    const record = await store.getKey(tenantId, issued.record.keyId);
    expect(record).toMatchObject({ status: 'active', clientId: issued.credentials.clientId });
    expect(record?.cacheKeys).toHaveLength(1);
    expect((await keyClients(issued.record.keyId)).map((c) => c.clientId)).toEqual([issued.credentials.clientId]);
    expect(await states.getState('client', issued.credentials.clientId)).toMatchObject({ status: 'active', keyId: issued.record.keyId });
  });

  it('after a crash past the provider call, a retry with the same Idempotency-Key reuses the client: one client, a working secret', async () => {
    const err = await lifecycle({ store: failingActivation() })
      .issue(admin, tenantId, input, { idempotencyKey: 'idem-1' })
      .catch((e: unknown) => e);
    expect(String(err)).toMatch(/registry write lost/);
    const [orphan] = await keyClients();
    expect(orphan).toBeDefined();
    expect((await store.getKey(tenantId, orphan!.keyId!))?.status).toBe('pending');
    // The pending key is not the caller's yet: not listed, not found by rotate or revoke.
    expect(await lifecycle().list(tenantId)).toEqual([]);
    for (const attempt of [() => lifecycle().rotate(admin, tenantId, orphan!.keyId!, 0), () => lifecycle().revoke(admin, tenantId, orphan!.keyId!)]) {
      expect(await attempt().catch((e: unknown) => (e as ManagementError).code)).toBe('ERR_NOT_FOUND');
    }

    // The idempotency record has expired meanwhile: the same request again.
    const retried = await lifecycle().issue(admin, tenantId, input, { idempotencyKey: 'idem-1' });
    expect(retried.record.keyId).toBe(orphan!.keyId);
    expect(retried.credentials.clientId).toBe(orphan!.clientId);
    expect(await keyClients()).toHaveLength(1);
    expect(await tokenStatus(retried.credentials)).toBe(200);
    expect(await store.getKey(tenantId, orphan!.keyId!)).toMatchObject({ status: 'active', clientId: orphan!.clientId });
    expect(await states.getState('client', orphan!.clientId)).toMatchObject({ status: 'active', notBefore: clock.now() });
    expect((await lifecycle().list(tenantId)).map((k) => k.key.keyId)).toEqual([orphan!.keyId]);
  });

  it('a retry after the key was issued makes nothing: 409, still one client', async () => {
    await lifecycle().issue(admin, tenantId, input, { idempotencyKey: 'idem-2' });
    const err = await lifecycle()
      .issue(admin, tenantId, input, { idempotencyKey: 'idem-2' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManagementError);
    expect((err as ManagementError).code).toBe('ERR_CONFLICT');
    expect(await keyClients()).toHaveLength(1);
  });

  it('the same Idempotency-Key for a different key is refused, with no client made', async () => {
    await lifecycle({ store: failingActivation() })
      .issue(admin, tenantId, input, { idempotencyKey: 'idem-3' })
      .catch(() => undefined);
    const err = await lifecycle()
      .issue(admin, tenantId, { name: 'other', scopes: ['read:things'] }, { idempotencyKey: 'idem-3' })
      .catch((e: unknown) => e);
    expect((err as ManagementError).code).toBe('ERR_CONFLICT');
    expect(await keyClients()).toHaveLength(1);
  });

  it('when the provider call fails, the record stays pending with no client; the retry makes exactly one', async () => {
    const down: IdentityProvider = new Proxy(local, {
      get(target, prop, receiver) {
        if (prop === 'createMachineClient') return () => Promise.reject(new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', 'down', 5));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await expect(lifecycle({ idp: down }).issue(admin, tenantId, input, { idempotencyKey: 'idem-4' })).rejects.toBeInstanceOf(UpstreamUnavailableError);
    expect(await keyClients()).toHaveLength(0);
    const retried = await lifecycle().issue(admin, tenantId, input, { idempotencyKey: 'idem-4' });
    expect((await keyClients()).map((c) => c.clientId)).toEqual([retried.credentials.clientId]);
    expect(await tokenStatus(retried.credentials)).toBe(200);
  });
});

describe('the orphan reconciler', () => {
  it('deletes clients with no record, pending too long or of revoked keys; leaves active and young pending ones; logs what it did', async () => {
    const keys = lifecycle();
    const active = await keys.issue(admin, tenantId, input);
    // Pending too long: a creation that crashed past the provider call and was never retried.
    await lifecycle({ store: failingActivation() })
      .issue(admin, tenantId, input, { idempotencyKey: 'stale' })
      .catch(() => undefined);
    const stale = (await keyClients()).find((c) => c.clientId !== active.credentials.clientId)!;
    clock.advance(PENDING_KEY_GRACE_MS + 1000);
    // Young pending: a creation in progress right now (crashed a moment ago).
    await lifecycle({ store: failingActivation() })
      .issue(admin, tenantId, input, { idempotencyKey: 'young' })
      .catch(() => undefined);
    const young = (await keyClients()).find((c) => ![active.credentials.clientId, stale.clientId].includes(c.clientId))!;
    // No record at all (e.g. a record deleted by hand), and a client that is not a key.
    const noRecord = await idp.registerClient({ tenantId, scopes: ['read:things'], keyId: 'key_unknown' });
    const notAKey = await idp.registerClient({ tenantId, scopes: ['read:things'] });
    // A key revoked while its client's deletion failed.
    const revoked = await keys.issue(admin, tenantId, input);
    await store.markRevoked(tenantId, revoked.record.keyId, new Date(clock.now()).toISOString());

    const report = await keys.reconcileOrphans({ tenantId });
    expect(report.deleted.map((d) => [d.clientId, d.reason]).sort()).toEqual(
      [
        [stale.clientId, 'pending-too-long'],
        [noRecord.clientId, 'no-record'],
        [revoked.credentials.clientId, 'key-revoked'],
      ].sort(),
    );
    const left = (await keyClients()).map((c) => c.clientId).sort();
    expect(left).toEqual([active.credentials.clientId, young.clientId].sort());
    expect(await tokenStatus(active.credentials)).toBe(200);
    expect(await tokenStatus(noRecord)).toBe(401);
    expect(await tokenStatus(notAKey)).toBe(200);
    // Revoked in the state first, so the authorizer refuses it on every path.
    for (const id of [stale.clientId, noRecord.clientId, revoked.credentials.clientId]) expect(await states.getState('client', id)).toMatchObject({ status: 'revoked' });
    expect(await store.getKey(tenantId, stale.keyId!)).toBeUndefined();
    expect(logged.filter((l) => l.message === 'orphaned provider client deleted')).toHaveLength(3);
    // Nothing left to do: a second run deletes nothing.
    expect((await keys.reconcileOrphans({ tenantId })).deleted).toEqual([]);
  });

  it('looks at one tenant only when asked', async () => {
    const other = `t-${Math.random().toString(36).slice(2, 10)}`;
    const theirs = await idp.registerClient({ tenantId: other, scopes: ['read:things'], keyId: 'key_theirs' });
    const report = await lifecycle().reconcileOrphans({ tenantId });
    expect(report.deleted).toEqual([]);
    expect(await tokenStatus(theirs)).toBe(200);
    expect((await lifecycle().reconcileOrphans({ tenantId: other })).deleted.map((d) => d.clientId)).toEqual([theirs.clientId]);
  });
});
