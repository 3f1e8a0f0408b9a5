/**
 * The answers of the HTTP frame itself, whatever the route: CORS on every answer (for allowed
 * origins only), 405 with `Allow`, 413 for bodies over the limit, and the public function's
 * preflight, 405 and `/openapi.json`.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { loadPublicConfig, parseAllowedOrigins } from '../../functions/core/config.js';
import { ConfigError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import { createApiHandler, MAX_BODY_BYTES, type Route } from '../../functions/http/api-handler.js';
import { CORS_ALLOW_HEADERS } from '../../packages/cdk/src/contract/cors.js';
import { buildOpenApiDocument } from '../../functions/http/openapi.js';
import { createPublicHandler } from '../../functions/http/public-handler.js';
import { lambdaContext } from '../support/api-harness.js';

const APP = 'https://app.example.com';
const OTHER = 'http://localhost:5173';
const ORIGINS = [APP, OTHER];

const routes: Route[] = [
  { method: 'GET', resource: '/things', handle: async () => ({ status: 200, body: { ok: true } }) },
  { method: 'POST', resource: '/things', handle: async (req) => ({ status: 201, body: { got: req.body } }) },
  { method: 'DELETE', resource: '/things/{id}', handle: async () => ({ status: 204 }) },
];
const handler = createApiHandler({ routes, log: silentLog, allowedOrigins: ORIGINS });

function event(method: string, resource: string, o: { headers?: Record<string, string>; body?: string; base64?: boolean; caller?: boolean } = {}): APIGatewayProxyEvent {
  return {
    resource,
    path: resource,
    httpMethod: method,
    headers: o.headers ?? {},
    multiValueHeaders: Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: o.body ?? null,
    isBase64Encoded: o.base64 ?? false,
    requestContext: {
      requestId: 'req-1',
      authorizer: o.caller === false ? null : { principalId: 'user|1', tenantId: 'acme', userId: 'user|1', clientId: 'spa', roles: 'tenant:admin', scopes: '', authMethod: 'jwt' },
    },
  } as unknown as APIGatewayProxyEvent;
}

const call = (e: APIGatewayProxyEvent) => handler(e, lambdaContext('test')) as Promise<APIGatewayProxyResult>;
const body = (r: APIGatewayProxyResult) => JSON.parse(r.body) as Record<string, unknown>;

describe('CORS on the management answers', () => {
  it('names an allowed Origin, says Vary: Origin and exposes the headers a client reads', async () => {
    const r = await call(event('GET', '/things', { headers: { Origin: APP } }));
    expect(r.statusCode).toBe(200);
    expect(r.headers).toMatchObject({ 'Access-Control-Allow-Origin': APP, Vary: 'Origin' });
    expect(String(r.headers!['Access-Control-Expose-Headers'])).toMatch(/Location.*Retry-After.*WWW-Authenticate/);
    expect((await call(event('GET', '/things', { headers: { origin: OTHER } }))).headers!['Access-Control-Allow-Origin']).toBe(OTHER);
  });

  it.each([['https://evil.example.com'], ['HTTPS://APP.EXAMPLE.COM'], [`${APP}.evil.test`], [`${APP}/`], ['null'], [''], [`${APP}:443`]])('names no origin for %j, and still says Vary: Origin', async (origin) => {
    const r = await call(event('GET', '/things', { headers: { Origin: origin } }));
    expect(r.headers!['Access-Control-Allow-Origin']).toBeUndefined();
    expect(r.headers!['Access-Control-Expose-Headers']).toBeUndefined();
    expect(r.headers!.Vary).toBe('Origin');
  });

  it('puts the headers on problems too: 401, 404, 405, 413, 415 and 400', async () => {
    const h = { Origin: APP, 'Content-Type': 'application/json' };
    const answers = [
      await call(event('GET', '/things', { headers: h, caller: false })),
      await call(event('GET', '/nothing', { headers: h })),
      await call(event('PUT', '/things', { headers: h })),
      await call(event('POST', '/things', { headers: h, body: 'x'.repeat(MAX_BODY_BYTES + 1) })),
      await call(event('POST', '/things', { headers: { Origin: APP, 'Content-Type': 'text/plain' }, body: 'hi' })),
      await call(event('POST', '/things', { headers: h, body: '{' })),
    ];
    expect(answers.map((a) => a.statusCode)).toEqual([401, 404, 405, 413, 415, 400]);
    for (const a of answers) {
      expect(a.headers!['Content-Type']).toBe('application/problem+json');
      expect(a.headers!['Access-Control-Allow-Origin']).toBe(APP);
    }
  });

  it('adds nothing but Vary when no origin is configured', async () => {
    const bare = createApiHandler({ routes, log: silentLog });
    const r = (await bare(event('GET', '/things', { headers: { Origin: APP } }), lambdaContext('t'))) as APIGatewayProxyResult;
    expect(r.headers).not.toHaveProperty('Access-Control-Allow-Origin');
    expect(r.headers!.Vary).toBe('Origin');
  });
});

describe('405 and 413 from the frame', () => {
  it('answers a method the route does not have with 405 and Allow listing the ones it has', async () => {
    const r = await call(event('PATCH', '/things'));
    expect(r.statusCode).toBe(405);
    expect(r.headers!.Allow).toBe('GET, POST');
    expect(body(r)).toMatchObject({ type: 'https://latchkey.dev/problems/method-not-allowed', status: 405 });
    expect((await call(event('GET', '/things/{id}'))).headers!.Allow).toBe('DELETE');
  });

  it('takes a body of exactly the limit and refuses one byte more, before reading the media type', async () => {
    const json = (n: number) => `"${'a'.repeat(n - 2)}"`;
    const h = { 'Content-Type': 'application/json' };
    expect((await call(event('POST', '/things', { headers: h, body: json(MAX_BODY_BYTES) }))).statusCode).toBe(201);
    const over = await call(event('POST', '/things', { headers: h, body: json(MAX_BODY_BYTES + 1) }));
    expect(over.statusCode).toBe(413);
    expect(body(over)).toMatchObject({ type: 'https://latchkey.dev/problems/payload-too-large', status: 413, limitBytes: MAX_BODY_BYTES });
    expect((await call(event('POST', '/things', { headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(MAX_BODY_BYTES + 1) }))).statusCode).toBe(413);
  });

  it('counts bytes, not characters, and decodes base64 bodies before counting', async () => {
    const h = { 'Content-Type': 'application/json' };
    // 2 bytes per character: under the limit in characters, over it in bytes.
    const wide = `"${'é'.repeat(MAX_BODY_BYTES / 2)}"`;
    expect(wide.length).toBeLessThan(MAX_BODY_BYTES);
    expect((await call(event('POST', '/things', { headers: h, body: wide }))).statusCode).toBe(413);
    const b64 = Buffer.from(`"${'a'.repeat(MAX_BODY_BYTES)}"`).toString('base64');
    expect((await call(event('POST', '/things', { headers: h, body: b64, base64: true }))).statusCode).toBe(413);
    const small = Buffer.from('{"a":1}').toString('base64');
    expect(body(await call(event('POST', '/things', { headers: h, body: small, base64: true })))).toEqual({ got: { a: 1 } });
  });
});

describe('the public function', () => {
  const document = buildOpenApiDocument();
  const pub = createPublicHandler({ document, allowedOrigins: ORIGINS });

  it('answers an allowed preflight with the route\'s methods, the request headers Latchkey reads and a max age', async () => {
    const r = await pub(event('OPTIONS', '/users/{userId}', { headers: { Origin: APP, 'Access-Control-Request-Method': 'PATCH' }, caller: false }));
    expect(r.statusCode).toBe(204);
    expect(r.headers).toMatchObject({
      'Access-Control-Allow-Origin': APP,
      'Access-Control-Allow-Methods': 'GET, PATCH, DELETE',
      'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS.join(', '),
      Vary: 'Origin',
    });
    expect(Number(r.headers!['Access-Control-Max-Age'])).toBeGreaterThan(0);
    expect(String(r.headers!['Access-Control-Allow-Headers'])).toMatch(/Authorization.*X-Api-Key.*Content-Type.*Idempotency-Key/);
  });

  it('gives a preflight from another origin no CORS header, so the browser stops', async () => {
    const r = await pub(event('OPTIONS', '/me', { headers: { Origin: 'https://evil.example.com' }, caller: false }));
    expect(r.statusCode).toBe(204);
    expect(Object.keys(r.headers!).filter((k) => k.startsWith('Access-Control'))).toEqual([]);
    expect(r.headers!.Allow).toBe('GET, OPTIONS');
  });

  it('answers a wrong method on a known route 405 with Allow, and an unknown resource 404', async () => {
    const r = await pub(event('POST', '/me', { headers: { Origin: APP }, caller: false }));
    expect(r.statusCode).toBe(405);
    expect(r.headers).toMatchObject({ Allow: 'GET, OPTIONS', 'Content-Type': 'application/problem+json', 'Access-Control-Allow-Origin': APP });
    expect(body(r)).toMatchObject({ type: 'https://latchkey.dev/problems/method-not-allowed', status: 405, instance: 'req-1' });
    expect((await pub(event('PUT', '/tenants/{tenantId}/api-keys/{keyId}/rotate', { caller: false }))).headers!.Allow).toBe('POST, OPTIONS');
    expect((await pub(event('GET', '/nowhere', { caller: false }))).statusCode).toBe(404);
  });

  it('serves the document at GET /openapi.json without credentials', async () => {
    const r = await pub(event('GET', '/openapi.json', { headers: { Origin: OTHER }, caller: false }));
    expect(r.statusCode).toBe(200);
    expect(r.headers).toMatchObject({ 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': OTHER });
    expect(JSON.parse(r.body)).toEqual(document);
    expect((await pub(event('DELETE', '/openapi.json', { caller: false }))).statusCode).toBe(405);
  });
});

describe('allowed origins configuration', () => {
  it('normalises a trailing slash and case of the host, drops duplicates', () => {
    expect(parseAllowedOrigins(' https://App.Example.com/ , http://localhost:5173,https://app.example.com')).toEqual([APP, OTHER]);
    expect(loadPublicConfig({}).allowedOrigins).toEqual([]);
  });

  it.each(['*', 'https://*.example.com', 'https://app.example.com/path', 'https://user@app.example.com', 'null', 'file:///x', 'https://app.example.com?x', 'https://app.example.com#x'])(
    'refuses %s naming ALLOWED_ORIGINS',
    (bad) => {
      expect(() => loadPublicConfig({ ALLOWED_ORIGINS: bad })).toThrow(ConfigError);
      expect(() => loadPublicConfig({ ALLOWED_ORIGINS: bad })).toThrow(/ALLOWED_ORIGINS/);
    },
  );
});
