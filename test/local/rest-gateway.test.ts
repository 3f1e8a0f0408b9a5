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
