/**
 * The local API Gateway's REQUEST authorizer rules, as AWS documents them: an authorizer that
 * lists identity sources is invoked only when every one is present and non-empty, cached or
 * not; one that lists none (only possible uncached) is invoked on every request. The functions
 * are real local Lambda environments running two tiny handlers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthorizerModel, FunctionModel, RestApiModel } from '../../infra/local/cloud-assembly.js';
import { LambdaPool } from '../../infra/local/lambda-pool.js';
import { startRestGateway, type RestGateway } from '../../infra/local/rest-gateway.js';

/** Allows the whole stage unless a credential is "bad"; the context counts its invocations. */
const AUTHORIZER = `
let calls = 0;
export const handler = async (event) => {
  calls += 1;
  const h = event.headers || {};
  if (h.authorization === 'bad' || h['x-api-key'] === 'bad') throw new Error('Unauthorized');
  const stage = event.methodArn.split('/').slice(0, 2).join('/');
  return {
    principalId: 'caller',
    policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: stage + '/*' }] },
    context: { calls },
  };
};`;
const ECHO = `export const handler = async (event) => ({ statusCode: 200, body: JSON.stringify(event.requestContext.authorizer) });`;

const tmp = mkdtempSync(join(tmpdir(), 'latchkey-rest-gateway-'));
const pools: LambdaPool[] = [];
const gateways: RestGateway[] = [];

function fn(logicalId: string, code: string): FunctionModel {
  const codeDir = join(tmp, logicalId);
  mkdirSync(codeDir, { recursive: true });
  writeFileSync(join(codeDir, 'index.mjs'), code);
  return { logicalId, codeDir, handler: 'index.handler', environment: {}, timeoutS: 10, memoryMb: 128, runtime: 'nodejs22.x' };
}

/** A gateway with GET /things behind a REQUEST authorizer with these identity sources and TTL. */
async function gatewayWith(identitySources: string[], ttlS: number): Promise<(headers?: Record<string, string>) => Promise<{ status: number; calls?: number }>> {
  const n = pools.length;
  const authorizer = new LambdaPool({ fn: fn(`Authorizer${n}`, AUTHORIZER), name: `authorizer-${n}`, env: {}, maxConcurrency: 1 });
  const echo = new LambdaPool({ fn: fn(`Echo${n}`, ECHO), name: `echo-${n}`, env: {}, maxConcurrency: 1 });
  pools.push(authorizer, echo);
  const authz: AuthorizerModel = { logicalId: 'Authz', type: 'REQUEST', functionLogicalId: 'Authorizer', identitySources, ttlS };
  const api: RestApiModel = {
    logicalId: 'Api',
    name: 'api',
    stageName: 'v1',
    methods: [{ httpMethod: 'GET', resourcePath: '/things', authorizationType: 'CUSTOM', authorizerLogicalId: 'Authz', integration: { type: 'AWS_PROXY', functionLogicalId: 'Echo' } }],
    authorizers: new Map([['Authz', authz]]),
    gatewayResponses: new Map(),
  };
  const gateway = await startRestGateway({ api, apiId: 'local', pools: new Map([['Authorizer', authorizer], ['Echo', echo]]) });
  gateways.push(gateway);
  return async (headers = {}) => {
    const res = await fetch(`${gateway.url}/things`, { headers });
    const body = (await res.json()) as { calls?: string };
    return { status: res.status, calls: body.calls === undefined ? undefined : Number(body.calls) };
  };
}

const AUTHORIZATION = 'method.request.header.Authorization';
const API_KEY = 'method.request.header.X-Api-Key';

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(pools.map((p) => p.close()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('no identity source, caching off (what Latchkey deploys by default)', () => {
  let call: Awaited<ReturnType<typeof gatewayWith>>;
  beforeAll(async () => {
    call = await gatewayWith([], 0);
  });

  it('invokes the authorizer on every request, whichever credential header comes, or none', async () => {
    expect(await call({ authorization: 'Bearer t' })).toEqual({ status: 200, calls: 1 });
    expect(await call({ 'x-api-key': 'lk_key' })).toEqual({ status: 200, calls: 2 });
    expect(await call()).toEqual({ status: 200, calls: 3 });
    expect(await call({ authorization: 'Bearer t' })).toEqual({ status: 200, calls: 4 });
    expect((await call({ authorization: 'bad' })).status).toBe(401);
  });
});

describe('identity sources listed, caching off', () => {
  let call: Awaited<ReturnType<typeof gatewayWith>>;
  beforeAll(async () => {
    call = await gatewayWith([AUTHORIZATION, API_KEY], 0);
  });

  it('answers 401 without invoking the authorizer unless every source is present and non-empty', async () => {
    expect((await call({ authorization: 'Bearer t' })).status).toBe(401);
    expect((await call({ 'x-api-key': 'lk_key' })).status).toBe(401);
    expect((await call({ authorization: 'Bearer t', 'x-api-key': '' })).status).toBe(401);
    expect((await call({ authorization: ' ', 'x-api-key': 'lk_key' })).status).toBe(401);
    expect((await call()).status).toBe(401);
    // The first invocation: none of the refused requests reached the function.
    expect(await call({ authorization: 'Bearer t', 'x-api-key': 'lk_key' })).toEqual({ status: 200, calls: 1 });
    expect(await call({ authorization: 'Bearer t', 'x-api-key': 'lk_key' })).toEqual({ status: 200, calls: 2 });
  });
});

describe('Authorization as identity source, caching on', () => {
  let call: Awaited<ReturnType<typeof gatewayWith>>;
  beforeAll(async () => {
    call = await gatewayWith([AUTHORIZATION], 300);
  });

  it('refuses a request without it, then caches the answer by its value', async () => {
    expect((await call({ 'x-api-key': 'lk_key' })).status).toBe(401);
    expect(await call({ authorization: 'Bearer a' })).toEqual({ status: 200, calls: 1 });
    expect(await call({ authorization: 'Bearer a' })).toEqual({ status: 200, calls: 1 });
    expect(await call({ authorization: 'Bearer b' })).toEqual({ status: 200, calls: 2 });
  });
});

describe('caching without identity sources', () => {
  it('is a configuration error (API Gateway refuses it at deployment)', async () => {
    const call = await gatewayWith([], 300);
    expect((await call({ authorization: 'Bearer t' })).status).toBe(500);
  });
});

describe('usage plans, keyed by the authorizer (apiKeySource AUTHORIZER)', () => {
  /** Names the usage key the request asks for in `x-usage`; `none` names no key. */
  const USAGE_AUTHORIZER = `
export const handler = async (event) => {
  const stage = event.methodArn.split('/').slice(0, 2).join('/');
  const usage = (event.headers || {})['x-usage'];
  return {
    principalId: 'caller',
    policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: stage + '/*' }] },
    ...(usage && usage !== 'none' ? { usageIdentifierKey: usage } : {}),
    context: {},
  };
};`;
  const TINY = 'tinyTenantUsageKeyValue000';
  const OTHER = 'otherTenantUsageKeyValue00';
  let now = Date.UTC(2026, 10, 30, 12, 0, 0);
  let gateway: RestGateway;
  const call = async (usage: string, path = '/things') => {
    const res = await fetch(`${gateway.url}${path}`, { headers: { 'x-usage': usage } });
    return { status: res.status, type: res.headers.get('x-amzn-errortype') };
  };

  beforeAll(async () => {
    const authorizer = new LambdaPool({ fn: fn('UsageAuthorizer', USAGE_AUTHORIZER), name: 'usage-authorizer', env: {}, maxConcurrency: 1 });
    const echo = new LambdaPool({ fn: fn('UsageEcho', ECHO), name: 'usage-echo', env: {}, maxConcurrency: 1 });
    pools.push(authorizer, echo);
    const method = (resourcePath: string, apiKeyRequired: boolean) => ({
      httpMethod: 'GET',
      resourcePath,
      authorizationType: 'CUSTOM',
      authorizerLogicalId: 'Authz',
      integration: { type: 'AWS_PROXY', functionLogicalId: 'Echo' },
      apiKeyRequired,
    });
    const api: RestApiModel = {
      logicalId: 'Api',
      name: 'api',
      stageName: 'v1',
      methods: [method('/things', true), method('/free', false)],
      authorizers: new Map([['Authz', { logicalId: 'Authz', type: 'REQUEST', functionLogicalId: 'Authorizer', identitySources: [], ttlS: 0 }]]),
      gatewayResponses: new Map(),
      apiKeySource: 'AUTHORIZER',
      usagePlans: [
        { logicalId: 'PlanTiny', name: 'stack-tiny', throttle: { rateLimit: 1, burstLimit: 2 }, quota: { limit: 5, period: 'DAY' } },
        { logicalId: 'PlanOther', name: 'stack-other', throttle: { rateLimit: 100, burstLimit: 100 }, quota: undefined },
      ],
      apiKeys: [{ logicalId: 'KeyOther', name: 'other', value: OTHER, enabled: true, planLogicalIds: ['PlanOther'] }],
    };
    gateway = await startRestGateway({ api, apiId: 'local', pools: new Map([['Authorizer', authorizer], ['Echo', echo]]), now: () => now });
    gateways.push(gateway);
  });

  it('refuses a method that needs a key when the authorizer names none, or an unknown one (403 INVALID_API_KEY); others pass', async () => {
    expect(await call('none')).toEqual({ status: 403, type: 'INVALID_API_KEY' });
    expect(await call(TINY)).toEqual({ status: 403, type: 'INVALID_API_KEY' });
    expect((await call('none', '/free')).status).toBe(200);
  });

  it('creates a key and attaches it through the control plane, as the SDK calls it', async () => {
    const base = gateway.url.replace(/\/v1$/, '');
    const plans = (await (await fetch(`${base}/usageplans`)).json()) as { item: { id: string; name: string }[] };
    const tiny = plans.item.find((p) => p.name === 'stack-tiny')!.id;
    const created = await fetch(`${base}/apikeys`, { method: 'POST', body: JSON.stringify({ name: 'tiny', value: TINY, enabled: true }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await fetch(`${base}/apikeys`, { method: 'POST', body: JSON.stringify({ name: 'again', value: TINY, enabled: true }) })).headers.get('x-amzn-errortype')).toBe('ConflictException');
    // API Gateway takes only alphanumeric values of 20 to 128 characters.
    for (const bad of ['short1234', 'has-a-dash-in-it-0000', 'has_an_underscore_000', 'x'.repeat(129)]) {
      const refused = await fetch(`${base}/apikeys`, { method: 'POST', body: JSON.stringify({ name: 'bad', value: bad, enabled: true }) });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('x-amzn-errortype')).toBe('BadRequestException');
    }
    expect((await fetch(`${base}/usageplans/${tiny}/keys`, { method: 'POST', body: JSON.stringify({ keyId: id, keyType: 'API_KEY' }) })).status).toBe(201);
    const other = plans.item.find((p) => p.name === 'stack-other')!.id;
    // One plan per stage for a key.
    expect((await fetch(`${base}/usageplans/${other}/keys`, { method: 'POST', body: JSON.stringify({ keyId: id, keyType: 'API_KEY' }) })).status).toBe(409);
  });

  it('throttles past the burst until the rate refills the bucket (429 THROTTLED), and stops at the quota (429 QUOTA_EXCEEDED) until the next day', async () => {
    expect((await call(TINY)).status).toBe(200);
    expect((await call(TINY)).status).toBe(200);
    expect(await call(TINY)).toEqual({ status: 429, type: 'THROTTLED' });
    // Another tenant's key on another plan is not touched by the first one's limits.
    for (let i = 0; i < 20; i++) expect((await call(OTHER)).status).toBe(200);
    now += 1000; // one token back
    expect((await call(TINY)).status).toBe(200);
    expect(await call(TINY)).toEqual({ status: 429, type: 'THROTTLED' });
    now += 10_000; // the bucket is full again (2), the quota has 2 left of 5
    expect((await call(TINY)).status).toBe(200);
    expect((await call(TINY)).status).toBe(200);
    now += 10_000;
    expect(await call(TINY)).toEqual({ status: 429, type: 'QUOTA_EXCEEDED' });
    expect((await call(OTHER)).status).toBe(200);
    now = Date.UTC(2026, 11, 1, 0, 0, 1); // the next UTC day: a new quota period
    expect((await call(TINY)).status).toBe(200);
  });

  it('reports what each key used per day (GetUsage)', async () => {
    const base = gateway.url.replace(/\/v1$/, '');
    const usage = (await (await fetch(`${base}/usageplans/PlanTiny/usage?startDate=2026-11-30&endDate=2026-12-01`)).json()) as { values: Record<string, [number, number][]> };
    expect(Object.values(usage.values)).toEqual([[[5, 0], [1, 4]]]);
  });
});
