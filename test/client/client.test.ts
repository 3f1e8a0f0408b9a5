/**
 * The typed client against a real local HTTP server that answers what each test scripts:
 * auth headers, Idempotency-Key on POST (the same on every retry), retries on 429/503 with
 * Retry-After and back-off (sleep injected, so nothing waits), and problems as typed errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderOpenApiDocument } from '../../functions/http/openapi.js';
import { ROOT } from '../../infra/local/local-stack.js';
import { renderClientSchema } from '../../packages/client/generate.js';
import { basicAuthorization, createLatchkeyClient, data, LatchkeyProblem, retryAfterSeconds, type LatchkeyClientOptions } from '../../packages/client/src/index.js';
import { json, startScriptedServer, type RecordedRequest, type ScriptedServer } from '../support/http-server.js';

let server: ScriptedServer;
let answers: ((req: RecordedRequest) => { status: number; body?: unknown; headers?: Record<string, string> })[];
let slept: number[];

beforeAll(async () => {
  server = await startScriptedServer((req, res) => {
    const next = answers.length > 1 ? answers.shift()! : answers[0]!;
    const a = next(req);
    if (a.body === undefined) res.writeHead(a.status, a.headers ?? {}).end();
    else if (typeof a.body === 'string') res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers }).end(a.body);
    else json(res, a.status, a.body, { 'content-type': a.status >= 400 ? 'application/problem+json' : 'application/json', ...a.headers });
  });
});
afterAll(() => server?.close());
beforeEach(() => {
  server.requests.length = 0;
  slept = [];
  answers = [() => ({ status: 200, body: { subject: 's', tenantId: 'acme', userId: null, clientId: 'c', roles: [], scopes: [], authMethod: 'api_key' } })];
});

const client = (o: Partial<LatchkeyClientOptions> = {}) =>
  createLatchkeyClient({ baseUrl: `${server.url}/v1/`, auth: { apiKey: 'lk_test' }, sleep: async (ms) => void slept.push(ms), random: () => 0.5, ...o });
const unavailable = (retryAfter?: string) => () => ({ status: 503, body: { type: 'https://latchkey.dev/problems/unavailable', title: 'Service unavailable', status: 503 }, headers: (retryAfter === undefined ? {} : { 'retry-after': retryAfter }) as Record<string, string> });
const created = () => ({ status: 201, body: { tenantId: 'acme', name: 'Acme', status: 'active', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' } });

describe('auth', () => {
  it('sends an API key in X-Api-Key only', async () => {
    const me = await data(client().GET('/me'));
    expect(me.tenantId).toBe('acme');
    expect(server.requests[0]).toMatchObject({ method: 'GET', url: '/v1/me' });
    expect(server.requests[0]!.headers['x-api-key']).toBe('lk_test');
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('asks a bearer function for the token on every call', async () => {
    let n = 0;
    const lk = client({ auth: { bearer: async () => `t${++n}` } });
    await lk.GET('/me');
    await lk.GET('/me');
    expect(server.requests.map((r) => r.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
  });

  it('form-url-encodes client id and secret before Basic, so a ":" in either survives', async () => {
    await client({ auth: { clientId: 'id:1', clientSecret: 's3cr:t é' } }).GET('/me');
    const header = String(server.requests[0]!.headers.authorization);
    expect(header).toBe(basicAuthorization('id:1', 's3cr:t é'));
    const [id, secret] = Buffer.from(header.slice(6), 'base64').toString().split(':').map((p) => decodeURIComponent(p.replace(/\+/g, ' ')));
    expect([id, secret]).toEqual(['id:1', 's3cr:t é']);
  });
});

describe('Idempotency-Key', () => {
  it('puts a fresh key on each POST and none on other methods', async () => {
    answers = [created];
    let n = 0;
    const lk = client({ idempotencyKey: () => `key-${++n}` });
    await lk.POST('/tenants', { body: { tenantId: 'acme', name: 'Acme' } });
    await lk.POST('/tenants', { body: { tenantId: 'acme', name: 'Acme' } });
    await lk.DELETE('/tenants/{tenantId}', { params: { path: { tenantId: 'acme' } } });
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual(['key-1', 'key-2', undefined]);
  });

  it('keeps the same key and the same body on every retry of one call', async () => {
    answers = [unavailable('1'), unavailable(), created];
    const t = await data(client().POST('/tenants', { body: { tenantId: 'acme', name: 'Acme' } }));
    expect(t.tenantId).toBe('acme');
    expect(server.requests).toHaveLength(3);
    expect(new Set(server.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(server.requests.map((r) => r.body)).toEqual(Array(3).fill('{"tenantId":"acme","name":"Acme"}'));
  });

  it('keeps a key the caller gave', async () => {
    answers = [created];
    await client().POST('/tenants', { body: { tenantId: 'acme', name: 'Acme' }, params: { header: { 'Idempotency-Key': 'mine' } } });
    expect(server.requests[0]!.headers['idempotency-key']).toBe('mine');
  });
});

describe('retries', () => {
  it('waits Retry-After seconds on 503 and 429, else backs off exponentially with jitter', async () => {
    answers = [unavailable('2'), () => ({ status: 429, body: { type: 'https://latchkey.dev/problems/too-many-requests', title: 'Too many requests', status: 429 } }), unavailable(), answers[0]!];
    await client().GET('/me');
    // random() = 0.5: 0.5 × 250 × 2^1 and 0.5 × 250 × 2^2
    expect(slept).toEqual([2000, 250, 500]);
    expect(server.requests).toHaveLength(4);
  });

  it('gives up after maxRetries and throws the last problem with its Retry-After', async () => {
    answers = [unavailable('1')];
    const err = await client({ maxRetries: 2 }).GET('/me').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LatchkeyProblem);
    expect(err).toMatchObject({ status: 503, retryAfterS: 1, type: 'https://latchkey.dev/problems/unavailable' });
    expect((err as LatchkeyProblem).is('unavailable')).toBe(true);
    expect(server.requests).toHaveLength(3);
    expect(slept).toEqual([1000, 1000]);
  });

  it('does not wait for a Retry-After longer than maxRetryAfterS', async () => {
    answers = [unavailable('3600')];
    await expect(client().GET('/me')).rejects.toMatchObject({ status: 503, retryAfterS: 3600 });
    expect(server.requests).toHaveLength(1);
    expect(slept).toEqual([]);
  });

  it.each([400, 401, 403, 404, 409, 500, 502])('does not retry %i', async (status) => {
    answers = [() => ({ status, body: { type: 'https://latchkey.dev/problems/x', title: 'X', status } })];
    await expect(client().GET('/me')).rejects.toMatchObject({ status });
    expect(server.requests).toHaveLength(1);
  });

  it('reads Retry-After as seconds or as an HTTP date, and ignores nonsense', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterSeconds('7', now)).toBe(7);
    expect(retryAfterSeconds('Thu, 01 Jan 2026 00:00:09 GMT', now)).toBe(9);
    expect(retryAfterSeconds('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('-1', now)).toBeUndefined();
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds(null, now)).toBeUndefined();
  });
});

describe('problems', () => {
  it('throws problem+json answers as LatchkeyProblem with the body\'s fields', async () => {
    answers = [() => ({ status: 400, body: { type: 'https://latchkey.dev/problems/validation-error', title: 'Your request is not valid', status: 400, detail: 'the request body is not valid', errors: [{ path: 'name', message: 'Required' }] } })];
    const err = (await client().POST('/tenants', { body: { tenantId: 'acme', name: '' } }).catch((e: unknown) => e)) as LatchkeyProblem;
    expect(err).toBeInstanceOf(LatchkeyProblem);
    expect(err.is('validation-error')).toBe(true);
    expect(err.detail).toBe('the request body is not valid');
    expect(err.body.errors).toEqual([{ path: 'name', message: 'Required' }]);
    expect(err.message).toBe('Your request is not valid: the request body is not valid');
  });

  it('turns a non-JSON error body into a problem too', async () => {
    answers = [() => ({ status: 502, body: 'Bad Gateway' })];
    await expect(client().GET('/me')).rejects.toMatchObject({ status: 502, type: 'about:blank', detail: 'Bad Gateway' });
  });

  it('returns undefined data for 204 answers and throws from data() for them', async () => {
    answers = [() => ({ status: 204 })];
    const r = await client().DELETE('/users/{userId}', { params: { path: { userId: 'u|1' } } });
    expect(r.response.status).toBe(204);
    expect(server.requests[0]!.url).toBe('/v1/users/u%7C1');
    await expect(data(client().GET('/me'))).rejects.toThrow(/without a body/);
  });
});

describe('generated types', () => {
  it('are current with openapi.json (run `npm run openapi`)', async () => {
    expect(readFileSync(join(ROOT, 'packages/client/src/schema.ts'), 'utf8')).toBe(await renderClientSchema(renderOpenApiDocument()));
  });
});
