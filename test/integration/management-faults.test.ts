/**
 * The management API when DynamoDB is slow, hung or throttling: 503 + Retry-After, never 500,
 * and back to normal after recovery. The real tenants handler and its real store, with a fault
 * proxy in front of DynamoDB Local, and a local server answering DynamoDB's throttling errors.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../../functions/adapters/dynamodb-deadline.js';
import { DynamoDbTenantStore } from '../../functions/adapters/dynamodb-tenant-store.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import type { IdentityProvider } from '../../functions/core/identity-provider.js';
import { KeyLifecycle } from '../../functions/core/key-lifecycle.js';
import { silentLog } from '../../functions/core/log.js';
import { createApiHandler } from '../../functions/http/api-handler.js';
import { createTenantRoutes } from '../../functions/tenants/routes.js';
import { lambdaContext } from '../support/api-harness.js';
import { ManualClock } from '../support/clock.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { orHang, untilDone } from '../support/hang.js';
import { json, startScriptedServer, type ScriptedServer } from '../support/http-server.js';
import { createTenantsTable, createTokenCacheTable } from '../support/tables.js';

let proxy: FaultProxy;
let throttling: ScriptedServer;
let viaProxy: ReturnType<typeof createApiHandler>;
let viaThrottling: ReturnType<typeof createApiHandler>;

function handlerOn(endpoint: string, tenantsTable: string, cacheTable: string) {
  const client = createDocumentClient({ endpoint }, MANAGEMENT_DYNAMODB_DEADLINE);
  const store = new DynamoDbTenantStore({ tableName: tenantsTable, client });
  const cache = new DynamoDbTokenCache({ tableName: cacheTable, client });
  const clock = new ManualClock();
  const keys = new KeyLifecycle({
    store,
    idp: () => Promise.reject(new Error('the identity provider is not part of these cases')),
    states: cache,
    tokens: cache,
    clock,
    log: silentLog,
    audience: 'https://api.test',
    keyScopes: ['users:read'],
  });
  const routes = createTenantRoutes({ store, keys, clock, keyPrefix: 'lk' });
  return createApiHandler({ routes, log: silentLog });
}

/** A proxy event as API Gateway hands it over after the authorizer allowed a platform operator. */
function event(method: string, resource: string, path: string, pathParameters: Record<string, string> | null, body?: unknown): APIGatewayProxyEvent {
  return {
    resource,
    path,
    httpMethod: method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters,
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      requestId: 'r1',
      authorizer: { principalId: 'auth0|ops', userId: 'auth0|ops', clientId: 'spa', tenantId: '', roles: 'platform:admin', scopes: '', authMethod: 'jwt' },
    },
  } as unknown as APIGatewayProxyEvent;
}

async function call(handler: ReturnType<typeof createApiHandler>, e: APIGatewayProxyEvent) {
  const res = await orHang(handler(e, lambdaContext('tenants')));
  return { status: res.statusCode, headers: res.headers ?? {}, body: res.body ? (JSON.parse(res.body) as Record<string, unknown>) : undefined };
}

const getTenant = (id: string) => event('GET', '/tenants/{tenantId}', `/tenants/${id}`, { tenantId: id });
const createTenant = (id: string) => event('POST', '/tenants', '/tenants', null, { tenantId: id, name: 'Faulty' });

let throttleName = 'ThrottlingException';
let tenantsTableName: string;
let cacheTableName: string;
beforeAll(async () => {
  const [tenantsTable, cacheTable] = await Promise.all([createTenantsTable(), createTokenCacheTable()]);
  tenantsTableName = tenantsTable;
  cacheTableName = cacheTable;
  proxy = await startFaultProxy({ port: Number(new URL(inject('dynamoDbEndpoint')).port) });
  throttling = await startScriptedServer((_req, res) => json(res, 400, { __type: `com.amazonaws.dynamodb.v20120810#${throttleName}`, message: 'Rate exceeded' }));
  viaProxy = handlerOn(proxy.url, tenantsTable, cacheTable);
  viaThrottling = handlerOn(throttling.url, tenantsTable, cacheTable);
});
afterAll(async () => {
  await proxy.stop();
  await throttling.close();
});
afterEach(() => proxy.pass());

function expectUnavailable(res: Awaited<ReturnType<typeof call>>) {
  expect(res.status).toBe(503);
  expect(Number(res.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
  expect(res.headers['Content-Type']).toBe('application/problem+json');
  expect(res.body).toMatchObject({ type: 'https://latchkey.dev/problems/unavailable', status: 503 });
}

describe('management API with DynamoDB failing', () => {
  it.each([
    ['hung', () => proxy.hang()],
    ['slow', () => proxy.delay(5_000)],
    ['resetting connections', () => proxy.reset()],
  ])('answers 503 + Retry-After for reads and writes when DynamoDB is %s, then recovers', async (_name, fault) => {
    const id = `t${Date.now().toString(36)}`;
    fault();
    const results = await Promise.all([call(viaProxy, getTenant('acme')), call(viaProxy, createTenant(id))]);
    for (const res of results) expectUnavailable(res);
    proxy.pass();
    const passing = (res: Awaited<ReturnType<typeof call>>) => res.status !== 503;
    expect((await untilDone(() => call(viaProxy, getTenant('nobody')), passing)).map((r) => r.status).at(-1)).toBe(404);
    const created = (await untilDone(() => call(viaProxy, createTenant(`${id}b`)), passing)).map((r) => r.status);
    // After a 503 the write may have landed before the deadline cut the answer: then a retry finds it.
    expect(created.length === 1 ? [201] : [201, 409]).toContain(created.at(-1));
  });

  it.each(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded'])(
    'answers 503 + Retry-After when DynamoDB throttles with %s, after the SDK retried',
    async (name) => {
      throttleName = name;
      const before = throttling.requests.length;
      const res = await call(viaThrottling, getTenant('acme'));
      expectUnavailable(res);
      expect(res.headers['Retry-After']).toBe('2');
      expect(throttling.requests.length - before).toBe(MANAGEMENT_DYNAMODB_DEADLINE.maxAttempts);
    },
  );

  it.each(['ThrottlingException', 'RequestLimitExceeded'])(
    'key lifecycle: issue, rotate and revoke answer 503 when the principal state write throttles (%s) mid-way; no client is left behind',
    async (name) => {
      throttleName = name;
      const clients = new Map<string, string>();
      const provider = {
        createMachineClient: async (input: { tenantId: string; keyId: string }) => {
          const clientId = `c${clients.size + 1}-${Date.now().toString(36)}`;
          clients.set(clientId, input.keyId);
          return { clientId, clientSecret: 's'.repeat(40) };
        },
        deleteMachineClient: async (clientId: string) => void clients.delete(clientId),
        listMachineClients: async () => [...clients].map(([clientId, keyId]) => ({ clientId, tenantId: 'acme', keyId })),
        rotateClientSecret: async (clientId: string) => ({ clientId, clientSecret: 'r'.repeat(40) }),
      } as unknown as IdentityProvider;
      // The registry answers; the principal state (token cache) throttles.
      const store = new DynamoDbTenantStore({ tableName: tenantsTableName });
      const throttled = new DynamoDbTokenCache({ tableName: cacheTableName, client: createDocumentClient({ endpoint: throttling.url }, MANAGEMENT_DYNAMODB_DEADLINE) });
      const clock = new ManualClock(Date.now());
      const keys = new KeyLifecycle({ store, idp: async () => provider, states: throttled, tokens: throttled, clock, log: silentLog, audience: 'https://api.test', keyScopes: ['users:read'] });
      const handler = createApiHandler({ routes: createTenantRoutes({ store, keys, clock, keyPrefix: 'lk' }), log: silentLog });
      const tenantId = `k${Date.now().toString(36)}`;
      const at = new Date().toISOString();
      await store.createTenant({ tenantId, name: 'Keys', status: 'active', createdAt: at, updatedAt: at });
      const path = `/tenants/${tenantId}/api-keys`;
      expectUnavailable(await call(handler, event('POST', '/tenants/{tenantId}/api-keys', path, { tenantId }, { name: 'ci', scopes: ['users:read'] })));
      // The client made before the state write failed was deleted again; the record stays pending, unlisted.
      expect(clients.size).toBe(0);
      expect((await store.listKeys(tenantId)).map((k) => k.status)).toEqual(['pending']);
      // An active key, as a healthy issue leaves it, then rotate and revoke while the state throttles.
      await store.putKey({ tenantId, keyId: 'key_a', name: 'a', clientId: 'c-old', scopes: ['users:read'], status: 'active', createdAt: at, createdBy: 'x', cacheKeys: [], retiring: [] });
      clients.set('c-old', 'key_a');
      const keyPath = `${path}/key_a`;
      expectUnavailable(await call(handler, event('POST', '/tenants/{tenantId}/api-keys/{keyId}/rotate', `${keyPath}/rotate`, { tenantId, keyId: 'key_a' }, { graceSeconds: 0 })));
      expect([...clients.keys()]).toEqual(['c-old']);
      expectUnavailable(await call(handler, event('DELETE', '/tenants/{tenantId}/api-keys/{keyId}', keyPath, { tenantId, keyId: 'key_a' })));
      expect((await store.getKey(tenantId, 'key_a'))?.status).toBe('active');
    },
  );

  it('still answers 500 for a fault that is not passing (a table that does not exist)', async () => {
    const broken = handlerOn(proxy.url, 'no-such-table', 'no-such-cache');
    const res = await call(broken, getTenant('acme'));
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ type: 'https://latchkey.dev/problems/internal' });
  });
});
