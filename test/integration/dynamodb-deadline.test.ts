/**
 * Hard deadlines on DynamoDB calls, with a fault proxy between the real adapters and DynamoDB
 * Local. Outcomes are asserted, not timings: the only wall-clock bound is a generous hang
 * detector (without deadlines these calls never return at all).
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { MANAGEMENT_DYNAMODB_DEADLINE, type DynamoDbDeadline } from '../../functions/adapters/dynamodb-deadline.js';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { orHang, untilDone } from '../support/hang.js';
import { createTenantsTable, createTokenCacheTable } from '../support/tables.js';

let proxy: FaultProxy;
let cache: DynamoDbTokenCache;
/** The same table reached directly, with room for a loaded machine: for setting up, not under test. */
let direct: DynamoDbTokenCache;
let store: DynamoDbTenantStore;
const warnings: string[] = [];
const SETUP_DEADLINE: DynamoDbDeadline = { connectionTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxAttempts: 3, operationMs: 60_000 };
const originalWarn = console.warn;

beforeAll(async () => {
  proxy = await startFaultProxy({ port: Number(new URL(inject('dynamoDbEndpoint')).port) });
  const [cacheTable, tenantsTable] = await Promise.all([createTokenCacheTable(), createTenantsTable()]);
  cache = new DynamoDbTokenCache({ tableName: cacheTable, client: createDocumentClient({ endpoint: proxy.url }) });
  direct = new DynamoDbTokenCache({ tableName: cacheTable, client: createDocumentClient({}, SETUP_DEADLINE) });
  store = new DynamoDbTenantStore({ tableName: tenantsTable, client: createDocumentClient({ endpoint: proxy.url }, MANAGEMENT_DYNAMODB_DEADLINE) });
  // The SDK's "requestTimeout exceeded" warning is what a non-throwing timeout looks like.
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
});
afterAll(async () => {
  console.warn = originalWarn;
  await proxy.stop();
});
afterEach(() => proxy.pass());

/** Settles `p` and says how: 'ok', or the error. Fails the test if it hangs. */
function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return orHang(p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })));
}

describe.each([
  ['hung', (p: FaultProxy) => p.hang()],
  ['slow (5 s a chunk)', (p: FaultProxy) => p.delay(5_000)],
  ['resetting', (p: FaultProxy) => p.reset()],
])('DynamoDB %s', (_name, fault) => {
  it('fails every token-cache call, concurrent ones included, and the next call after recovery succeeds', async () => {
    await direct.putToken('k1', { kind: 'token', clientId: 'c1', sealed: 'x', exchangedAt: 1, expiresAt: 4_000_000_000 });
    fault(proxy);
    const results = await Promise.all([
      outcome(cache.read('k1', 'c1')),
      outcome(cache.read('k1', 'c1')),
      outcome(cache.recordUse('c1', Date.now())),
      outcome(cache.changesSince(undefined)),
      outcome(cache.acquireLease('k1', 'me', Date.now(), 5000)),
      outcome(cache.putNegative('k2', { kind: 'invalid', until: Date.now() + 1000 })),
    ]);
    expect(results.filter((r) => r.ok)).toEqual([]);
    proxy.pass();
    const after = await untilDone(() => outcome(cache.read('k1', 'c1')), (r) => r.ok);
    expect(after.at(-1)).toMatchObject({ ok: true, value: { entry: { kind: 'token', clientId: 'c1' } } });
  });

  it('fails the management store within its deadline, then recovers', async () => {
    fault(proxy);
    const [get, put] = await Promise.all([
      outcome(store.getTenant('acme')),
      outcome(store.createTenant({ tenantId: `t-${Date.now()}`, name: 'T', status: 'active', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() })),
    ]);
    expect(get.ok).toBe(false);
    expect(put.ok).toBe(false);
    proxy.pass();
    const after = await untilDone(() => outcome(store.getTenant('acme')), (r) => r.ok);
    expect(after.at(-1)).toEqual({ ok: true, value: undefined });
  });
});

describe('the operation deadline', () => {
  it('reports a hung operation as unavailable, with a Retry-After', async () => {
    proxy.hang();
    const r = await outcome(cache.read('k1', 'c1'));
    expect(r.ok).toBe(false);
    const err = (r as { error: unknown }).error;
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).code).toBe('ERR_DYNAMODB_DEADLINE');
    expect((err as UpstreamUnavailableError).retryAfterS).toBeGreaterThanOrEqual(1);
  });

  it('turns a request timeout into an error, never only a warning', () => {
    expect(warnings.filter((w) => /requestTimeout/.test(w) && /WARN/.test(w))).toEqual([]);
  });
});
