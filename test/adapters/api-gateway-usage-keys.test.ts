/**
 * The API Gateway adapter of usage keys, through the real SDK, against the local gateway's
 * control plane (`infra/local/usage-plans.ts`), which answers as API Gateway documents it: keys
 * listed a page at a time (`limit` 25 by default, 500 at most, then `position`), a key value
 * held once, a key in one plan per stage.
 */
import { createServer, type Server } from 'node:http';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiGatewayUsageKeys } from '../../functions/adapters/api-gateway-usage-keys.js';
import { GatewayThrottledError, KeyInOtherPlanError, UsageKeyExistsError } from '../../functions/core/usage-plans.js';
import { LocalUsagePlans } from '../../infra/local/usage-plans.js';

let server: Server;
let plans: LocalUsagePlans;
let keys: ApiGatewayUsageKeys;

beforeAll(async () => {
  plans = new LocalUsagePlans(
    [
      { logicalId: 'PlanFree', name: 'stack-free', throttle: { rateLimit: 5, burstLimit: 10 }, quota: undefined },
      { logicalId: 'PlanStandard', name: 'stack-standard', throttle: { rateLimit: 50, burstLimit: 100 }, quota: undefined },
    ],
    [],
    (v) => (typeof v === 'string' ? v : undefined),
    Date.now,
  );
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = plans.control(req.method ?? 'GET', new URL(req.url ?? '/', 'http://local'), Buffer.concat(chunks));
      if (!answer) return res.writeHead(404).end();
      res.writeHead(answer.status, { 'Content-Type': 'application/json', ...(answer.errorType ? { 'x-amzn-ErrorType': answer.errorType } : {}) });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  keys = new ApiGatewayUsageKeys(
    new APIGatewayClient({ endpoint: `http://127.0.0.1:${port}`, region: 'eu-west-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 }),
  );
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const value = (n: number) => `valueOfKeyNumber${String(n).padStart(6, '0')}`;

describe('ApiGatewayUsageKeys', () => {
  it("finds a tenant's key by its exact name among more keys sharing that prefix than one page holds", async () => {
    // Tenant "1"'s key name is a prefix of tenants 10…1999's: GetApiKeys' nameQuery matches them all.
    const create = (name: string, v: string) => plans.control('POST', new URL('http://local/apikeys'), Buffer.from(JSON.stringify({ name, value: v, enabled: true })));
    for (let i = 2000; i >= 1; i--) expect(create(`stack-tenant-${i}`, value(i))?.status).toBe(201);
    const key = await keys.findKey('stack-tenant-1', value(1));
    expect(key?.name).toBe('stack-tenant-1');
    expect(await keys.findKey('stack-tenant-1999', value(1999))).toMatchObject({ name: 'stack-tenant-1999' });
    expect(await keys.findKey('stack-tenant-2001', value(2001))).toBeUndefined();
  });

  it("never takes another deployment's key of the same name (names are not unique; values are)", async () => {
    const create = (name: string, v: string) => plans.control('POST', new URL('http://local/apikeys'), Buffer.from(JSON.stringify({ name, value: v, enabled: true })));
    expect(create('shared-name-tenant-x', 'anotherStacksValue00000001')?.status).toBe(201);
    expect(await keys.findKey('shared-name-tenant-x', 'thisStacksValue000000000001')).toBeUndefined();
    expect(create('shared-name-tenant-x', 'thisStacksValue000000000001')?.status).toBe(201);
    const ours = await keys.findKey('shared-name-tenant-x', 'thisStacksValue000000000001');
    expect(ours).toBeDefined();
    await keys.deleteKey(ours!.id);
    expect(await keys.findKey('shared-name-tenant-x', 'anotherStacksValue00000001')).toBeDefined();
  });

  it('reports a value held by another key as UsageKeyExistsError', async () => {
    await expect(keys.createKey('stack-tenant-again', value(1))).rejects.toBeInstanceOf(UsageKeyExistsError);
  });

  it("reads what a plan served with a key, per day (GetUsage)", async () => {
    const key = (await keys.findKey('stack-tenant-9', value(9)))!;
    const free = (await keys.findPlan('stack-free'))!;
    await keys.attachKey(free, key.id);
    for (let i = 0; i < 3; i++) expect(plans.admit(value(9))).toMatchObject({ ok: true });
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    expect(await keys.usage(free, key.id, yesterday, today)).toEqual(new Map([[yesterday, 0], [today, 3]]));
    await keys.detachKey(free, key.id);
  });

  it('attaches a key once (again is success), and never reports a key on another plan of the stage as attached', async () => {
    const key = (await keys.findKey('stack-tenant-7', value(7)))!;
    const free = (await keys.findPlan('stack-free'))!;
    const standard = (await keys.findPlan('stack-standard'))!;
    await keys.attachKey(free, key.id);
    await keys.attachKey(free, key.id);
    await expect(keys.attachKey(standard, key.id)).rejects.toBeInstanceOf(KeyInOtherPlanError);
    await keys.detachKey(free, key.id);
    await keys.attachKey(standard, key.id);
    expect(plans.admit(value(7))).toMatchObject({ ok: true, planId: 'PlanStandard' });
  });

  it('reports throttling (TooManyRequestsException, 429) as GatewayThrottledError with the Retry-After API Gateway gave, for the provisioner to back off', async () => {
    const throttling = createServer((_req, res) => {
      res.writeHead(429, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': 'TooManyRequestsException', 'Retry-After': '7' });
      res.end(JSON.stringify({ message: 'Too Many Requests' }));
    });
    await new Promise<void>((resolve) => throttling.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = throttling.address() as { port: number };
      const throttled = new ApiGatewayUsageKeys(
        new APIGatewayClient({ endpoint: `http://127.0.0.1:${port}`, region: 'eu-west-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 }),
      );
      for (const call of [() => throttled.findPlan('stack-free'), () => throttled.createKey('stack-tenant-t', value(4242)), () => throttled.attachKey('p', 'k')]) {
        const err = await call().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GatewayThrottledError);
        expect((err as GatewayThrottledError).retryAfterS).toBe(7);
      }
    } finally {
      await new Promise((resolve) => throttling.close(resolve));
    }
  });
});
