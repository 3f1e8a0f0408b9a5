/**
 * End to end over what `npm start` runs: the synthesized stack served by the local API
 * Gateway, the bundled Lambda code in child processes, DynamoDB Local and the local identity
 * provider, called through the typed client and with plain HTTP. Every answer is validated
 * against the committed OpenAPI document.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../functions/http/api-handler.js';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { seedDemo, type DemoCredentials } from '../../infra/local/seed.js';
import { createLatchkeyClient, data, type LatchkeyAuth, type LatchkeyClient, type LatchkeyProblem } from '../../packages/client/src/index.js';
import { launchChromium } from '../support/browser.js';
import { OPENAPI_DOCUMENT, responseErrors, schemaErrors } from '../support/openapi.js';
import { keyHolderToken, loginWithPkce } from '../support/servers.js';

const REVOCATION_CHECK_S = 2;
/**
 * The default tiers plus `tiny`: a burst of 3, a rate so low that no token comes back in real
 * time during the run (one per 1,000 s), and a quota of 5 a day. The gateway's usage clock is
 * real time plus `usageSkewMs`, which a test moves forward to refill the bucket.
 */
const USAGE_PLANS = {
  free: { rateLimit: 5, burstLimit: 10, quota: { limit: 10_000, period: 'DAY' } },
  standard: { rateLimit: 50, burstLimit: 100 },
  enterprise: { rateLimit: 500, burstLimit: 1000 },
  tiny: { rateLimit: 0.001, burstLimit: 3, quota: { limit: 5, period: 'DAY' } },
  platform: { rateLimit: 100, burstLimit: 200 },
};
let usageSkewMs = 0;
let stack: LocalStack;
let demo: DemoCredentials;
const pids: number[] = [];
const accessLog: Record<string, unknown>[] = [];
let validated = 0;

/** The typed client, with every answer checked against the OpenAPI document before it is used. */
function client(auth: LatchkeyAuth, opts: { maxRetries?: number } = {}): LatchkeyClient {
  const lk = createLatchkeyClient({ baseUrl: stack.apiUrl, auth, maxRetries: opts.maxRetries ?? 0 });
  lk.use({
    async onResponse({ request, response, schemaPath }) {
      const text = await response.clone().text();
      const errors = responseErrors(request.method, schemaPath, response.status, response.headers.get('content-type'), text ? JSON.parse(text) : undefined);
      expect(errors, `${request.method} ${schemaPath} → ${response.status}: ${text.slice(0, 300)}`).toEqual([]);
      validated++;
      return undefined;
    },
  });
  return lk;
}

/** A raw call (for what the client would not send), its answer checked against the document for `template`. */
async function raw(method: string, path: string, headers: Record<string, string>, o: { template?: string; body?: string } = {}) {
  const res = await fetch(`${stack.apiUrl}${path}`, { method, headers, body: o.body });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  if (o.template) {
    expect(responseErrors(method, o.template, res.status, res.headers.get('content-type'), body), `${method} ${path} → ${res.status}`).toEqual([]);
    validated++;
  }
  return { status: res.status, headers: res.headers, body };
}

const get = (path: string, headers: Record<string, string>, template = path) => raw('GET', path, headers, { template });
const problemOf = (p: Promise<unknown>) => p.then(() => expect.fail('expected a problem'), (e: unknown) => e as LatchkeyProblem);

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  stack = await startLocalStack({
    apiPort: 0,
    idpPort: 0,
    assemblyDir: mkdtempSync(join(tmpdir(), 'latchkey-e2e-')),
    context: { revocationCheckSeconds: String(REVOCATION_CHECK_S), usagePlans: JSON.stringify(USAGE_PLANS), usageFlushRequests: '1' },
    gatewayNow: () => Date.now() + usageSkewMs,
    log: (source, line) => {
      if (source === 'api') accessLog.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  pids.push(stack.dynamo.pid);
  demo = await seedDemo(stack);
}, 300_000); // a hang detector: this file took 164 s on a loaded 2-core machine

afterAll(async () => {
  await stack?.stop();
});

describe('the local stack', () => {
  it('lets a user who logged in with authorization code + PKCE call /me', async () => {
    const login = await loginWithPkce(stack.idp, { email: demo.adminEmail, password: demo.adminPassword });
    expect(login.accessToken).toBeDefined();
    const me = await get('/me', { Authorization: `Bearer ${login.accessToken}` });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ tenantId: 'demo', authMethod: 'jwt', roles: ['tenant:admin'] });
  });

  it('lets a tenant back-end create, read, page through and delete users with its API key', async () => {
    const lk = client({ apiKey: demo.apiKey });
    const created = await data(lk.POST('/users', { body: { email: 'from.backend@demo.local', name: 'From Backend' } }));
    expect(created).toMatchObject({ tenantId: 'demo', email: 'from.backend@demo.local' });
    const basic = client({ clientId: demo.clientId, clientSecret: demo.clientSecret });
    const list = await data(basic.GET('/users', { params: { query: { per_page: 10 } } }));
    expect(list.items.map((u) => u.email)).toContain('from.backend@demo.local');
    const one = await data(lk.GET('/users/{userId}', { params: { path: { userId: created.userId } } }));
    expect(one.userId).toBe(created.userId);
    const patched = await data(lk.PATCH('/users/{userId}', { params: { path: { userId: created.userId } }, body: { name: 'Renamed' } }));
    expect(patched.name).toBe('Renamed');
    expect((await lk.DELETE('/users/{userId}', { params: { path: { userId: created.userId } } })).response.status).toBe(204);
    const gone = await problemOf(lk.GET('/users/{userId}', { params: { path: { userId: created.userId } } }));
    expect(gone.is('not-found')).toBe(true);
    const invalid = await problemOf(lk.POST('/users', { body: { email: 'not an email' } }));
    expect(invalid).toMatchObject({ status: 400, type: 'https://latchkey.dev/problems/validation-error' });
  });

  it('lets operators and tenant admins manage tenants and keys through the client, answers matching the document', async () => {
    const ops = client({ bearer: demo.opsToken });
    const t = await data(ops.POST('/tenants', { body: { tenantId: 'e2e-co', name: 'E2E Co' } }));
    expect(t.status).toBe('active');
    expect((await problemOf(ops.POST('/tenants', { body: { tenantId: 'e2e-co', name: 'again' } }))).is('conflict')).toBe(true);
    const page = await data(ops.GET('/tenants', { params: { query: { limit: 1 } } }));
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).not.toBeNull();
    expect((await data(ops.GET('/tenants/{tenantId}', { params: { path: { tenantId: 'e2e-co' } } }))).name).toBe('E2E Co');
    expect((await data(ops.PATCH('/tenants/{tenantId}', { params: { path: { tenantId: 'e2e-co' } }, body: { name: 'E2E Corp' } }))).name).toBe('E2E Corp');
    const admin = client({ bearer: demo.userToken });
    const path = { tenantId: 'demo' };
    const key = await data(admin.POST('/tenants/{tenantId}/api-keys', { params: { path }, body: { name: 'rotated', scopes: ['users:read'] } }));
    const rotated = await data(admin.POST('/tenants/{tenantId}/api-keys/{keyId}/rotate', { params: { path: { ...path, keyId: key.keyId } } }));
    expect(rotated.clientSecret).not.toBe(key.clientSecret);
    const keys = await data(admin.GET('/tenants/{tenantId}/api-keys', { params: { path } }));
    expect(keys.items.map((k) => k.keyId)).toContain(key.keyId);
    expect((await admin.DELETE('/tenants/{tenantId}/api-keys/{keyId}', { params: { path: { ...path, keyId: key.keyId } } })).response.status).toBe(204);
    const denied = await problemOf(admin.GET('/tenants'));
    expect(denied).toMatchObject({ status: 403, type: 'https://latchkey.dev/problems/insufficient-scope' });
    // The tenant's API Gateway usage key goes with it (the account holds at most 10,000).
    const usageKeys = async () => ((await (await fetch(`${new URL(stack.apiUrl).origin}/apikeys?name=&limit=500`)).json()) as { item: { name: string }[] }).item.map((k) => k.name).filter((n) => n.endsWith('-tenant-e2e-co'));
    expect(await usageKeys()).toHaveLength(1);
    expect((await ops.DELETE('/tenants/{tenantId}', { params: { path: { tenantId: 'e2e-co' } } })).response.status).toBe(204);
    expect(await usageKeys()).toEqual([]);
  });

  it('answers 401 with WWW-Authenticate and problem+json as the gateway responses say', async () => {
    const res = await get('/me', {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="latchkey", error="invalid_token", Basic realm="latchkey"/);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ status: 401, type: 'https://latchkey.dev/problems/unauthorized' });
  });



  /** Polls until every form is refused with `status`; returns the ms it took. */
  async function untilRefused(forms: Record<string, string>[], status: number): Promise<number> {
    const started = Date.now();
    let statuses = forms.map(() => 200);
    while (statuses.some((s) => s !== status) && Date.now() - started < (REVOCATION_CHECK_S + 10) * 1000) {
      statuses = await Promise.all(forms.map(async (h) => (await get('/me', h)).status));
      for (const s of statuses) expect([200, status]).toContain(s);
      if (statuses.some((s) => s !== status)) await new Promise((r) => setTimeout(r, 250));
    }
    expect(statuses).toEqual(forms.map(() => status));
    return Date.now() - started;
  }

  it('stops a revoked key within the revocation bound on every path: X-Api-Key, Basic, and its own token as Bearer', async () => {
    const admin = client({ bearer: demo.userToken });
    const key = await data(admin.POST('/tenants/{tenantId}/api-keys', { params: { path: { tenantId: 'demo' } }, body: { name: 'to revoke', scopes: ['users:read'] } }));
    const forms: Record<string, string>[] = [
      { 'X-Api-Key': String(key.apiKey) },
      { Authorization: `Basic ${Buffer.from(`${key.clientId}:${String(key.clientSecret)}`).toString('base64')}` },
      { Authorization: `Bearer ${await keyHolderToken(stack.idp, { clientId: key.clientId, clientSecret: String(key.clientSecret) })}` },
    ];
    for (const h of forms) expect((await get('/me', h)).status).toBe(200);
    const revoked = await admin.DELETE('/tenants/{tenantId}/api-keys/{keyId}', { params: { path: { tenantId: 'demo', keyId: key.keyId } } });
    expect(revoked.response.status).toBe(204);
    // The bound plus slack for request latency on a loaded machine.
    expect(await untilRefused(forms, 401)).toBeLessThanOrEqual((REVOCATION_CHECK_S + 4) * 1000);
  });

  it("refuses a disabled tenant's keys and users with 403 tenant-disabled within the bound; re-enabling restores them", async () => {
    const ops = client({ bearer: demo.opsToken });
    await data(ops.POST('/tenants', { body: { tenantId: 'paused', name: 'Paused' } }));
    const key = await data(ops.POST('/tenants/{tenantId}/api-keys', { params: { path: { tenantId: 'paused' } }, body: { name: 'k', scopes: ['users:read'] } }));
    const forms: Record<string, string>[] = [{ 'X-Api-Key': String(key.apiKey) }, { Authorization: `Bearer ${await keyHolderToken(stack.idp, { clientId: key.clientId, clientSecret: String(key.clientSecret) })}` }];
    for (const h of forms) expect((await get('/me', h)).status).toBe(200);
    await data(ops.PATCH('/tenants/{tenantId}', { params: { path: { tenantId: 'paused' } }, body: { status: 'disabled' } }));
    expect(await untilRefused(forms, 403)).toBeLessThanOrEqual((REVOCATION_CHECK_S + 4) * 1000);
    const refused = await get('/me', forms[0]!);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.body).toMatchObject({ type: 'https://latchkey.dev/problems/tenant-disabled', status: 403 });
    await data(ops.PATCH('/tenants/{tenantId}', { params: { path: { tenantId: 'paused' } }, body: { status: 'active' } }));
    expect(await untilRefused(forms, 200)).toBeLessThanOrEqual((REVOCATION_CHECK_S + 4) * 1000);
  });

  it('answers 503 with Retry-After for new keys while the identity provider is down, and keeps cached keys working', async () => {
    const fresh = { body: await data(client({ bearer: demo.userToken }).POST('/tenants/{tenantId}/api-keys', { params: { path: { tenantId: 'demo' } }, body: { name: 'never used', scopes: ['users:read'] } })) };
    expect((await get('/me', { 'X-Api-Key': demo.apiKey })).status).toBe(200);
    await stack.idp.pause();
    try {
      const down = await get('/me', { 'X-Api-Key': String(fresh.body.apiKey) });
      expect(down.status).toBe(503);
      // The client retries after Retry-After (sleep injected), then throws the typed problem.
      const slept: number[] = [];
      const retrying = createLatchkeyClient({ baseUrl: stack.apiUrl, auth: { apiKey: String(fresh.body.apiKey) }, maxRetries: 2, sleep: async (ms) => void slept.push(ms) });
      const problem = await problemOf(retrying.GET('/me'));
      expect(problem).toMatchObject({ status: 503, type: 'https://latchkey.dev/problems/unavailable' });
      expect(slept).toEqual([problem.retryAfterS! * 1000, problem.retryAfterS! * 1000]);
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(down.body).toMatchObject({ type: 'https://latchkey.dev/problems/unavailable' });
      expect((await get('/me', { 'X-Api-Key': demo.apiKey })).status).toBe(200);
      expect((await get('/me', { Authorization: `Bearer ${demo.userToken}` })).status).toBe(200);
    } finally {
      await stack.idp.resume();
    }
    // The failed exchange left a marker that turns other attempts into 503 for up to one lease
    // (EXCHANGE_LEASE_MS, 5 s), so no container hammers a provider that just failed; then it works.
    const resumed = Date.now();
    let status = 0;
    while (status !== 200 && Date.now() - resumed < 30_000) {
      status = (await get('/me', { 'X-Api-Key': String(fresh.body.apiKey) })).status;
      expect([200, 503]).toContain(status);
      if (status !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe(200);
  });
});

describe('usage plans: per-tenant limits at the gateway', () => {
  it('gives a tenant on a tiny plan 429 past its rate and past its quota, while another tenant is unaffected; a plan change lifts it', async () => {
    const ops = client({ bearer: demo.opsToken });
    const t = await data(ops.POST('/tenants', { body: { tenantId: 'tiny-co', name: 'Tiny Co', plan: 'tiny' } }));
    expect(t.plan).toBe('tiny');
    expect((await data(ops.GET('/tenants/{tenantId}', { params: { path: { tenantId: 'demo' } } }))).plan).toBe('free');
    expect((await problemOf(ops.POST('/tenants', { body: { tenantId: 'no-such-plan', name: 'X', plan: 'gold' } }))).status).toBe(400);
    const tinyUser = stack.idp.addUser({ email: 'admin@tiny-co.local', password: 'tiny-co-password', tenantId: 'tiny-co', roles: ['tenant:admin'] });
    const tiny = { Authorization: `Bearer ${await stack.idp.issueUserToken({ userId: tinyUser.userId })}` };
    const other = { Authorization: `Bearer ${demo.userToken}` };

    // The burst (3) passes, the 4th is throttled; the other tenant keeps going meanwhile.
    for (let i = 0; i < 3; i++) expect((await get('/me', tiny)).status).toBe(200);
    const throttled = await get('/me', tiny);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('content-type')).toBe('application/problem+json');
    expect(throttled.headers.get('retry-after')).toBe('1');
    expect(throttled.body).toMatchObject({ type: 'https://latchkey.dev/problems/too-many-requests', status: 429 });
    for (let i = 0; i < 5; i++) expect((await get('/me', other)).status).toBe(200);

    // 3,000 s later the bucket is full again; the quota (5 a day) has 2 left.
    usageSkewMs += 3_000_000;
    for (let i = 0; i < 2; i++) expect((await get('/me', tiny)).status).toBe(200);
    const exhausted = await get('/me', tiny);
    expect(exhausted.status).toBe(429);
    expect(exhausted.headers.get('retry-after')).toBe('3600');
    expect(String(exhausted.body?.detail)).toMatch(/quota/);
    expect((await get('/me', other)).status).toBe(200);
    expect(accessLog.filter((e) => e.tenantId === 'tiny-co' && e.status === 429).length).toBe(2);

    // Moving the tenant to another plan moves its key: the new plan's limits apply at once.
    const moved = await data(ops.PATCH('/tenants/{tenantId}', { params: { path: { tenantId: 'tiny-co' } }, body: { plan: 'standard' } }));
    expect(moved.plan).toBe('standard');
    expect((await get('/me', tiny)).status).toBe(200);
    expect((await data(ops.GET('/tenants/{tenantId}', { params: { path: { tenantId: 'tiny-co' } } }))).plan).toBe('standard');
  });

  it('refuses the callers of a tenant that has no usage key (403 forbidden), and lets platform callers through on the platform plan', async () => {
    const ghost = stack.idp.addUser({ email: 'someone@ghost.local', password: 'ghost-password', tenantId: 'ghost', roles: ['tenant:admin'] });
    const res = await get('/me', { Authorization: `Bearer ${await stack.idp.issueUserToken({ userId: ghost.userId })}` });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: 'https://latchkey.dev/problems/forbidden' });
    expect((await get('/me', { Authorization: `Bearer ${demo.opsToken}` })).status).toBe(200);
  });
});

describe('usage counts', () => {
  it("counts per tenant, key and day what the authorizer allowed, beside the gateway's count of the tenant's key, read back as JSON and CSV once flushed", async () => {
    const ops = client({ bearer: demo.opsToken });
    await data(ops.POST('/tenants', { body: { tenantId: 'count-co', name: 'Count Co', plan: 'standard' } }));
    const admin = stack.idp.addUser({ email: 'admin@count-co.local', password: 'count-co-password', tenantId: 'count-co', roles: ['tenant:admin'] });
    const adminAuth = { bearer: await stack.idp.issueUserToken({ userId: admin.userId }) };
    const key = await data(client(adminAuth).POST('/tenants/{tenantId}/api-keys', { params: { path: { tenantId: 'count-co' } }, body: { name: 'counted', scopes: ['users:read'] } }));
    const withKey = client({ apiKey: String(key.apiKey) });
    for (let i = 0; i < 3; i++) await data(withKey.GET('/me'));
    for (let i = 0; i < 2; i++) await data(client(adminAuth).GET('/me'));
    // 6 requests of the tenant: 1 key issue + 2 /me by the admin's client, 3 /me with the key.
    // The stack flushes after every request (usageFlushRequests 1); the documented bound is the
    // flush interval, here the time a background write takes. Polled with a hang detector only.
    const today = new Date().toISOString().slice(0, 10);
    const query = { params: { path: { tenantId: 'count-co' }, query: { from: today, to: today } } };
    interface Usage {
      tenantId: string;
      source: string;
      requests: number;
      keys: { id: string; requests: number }[];
      days: { day: string; requests: number; counted: number; keys: { id: string; requests: number }[] }[];
    }
    const read = async () => (await data(ops.GET('/tenants/{tenantId}/usage', query))) as Usage;
    let usage = await read();
    for (const until = Date.now() + 60_000; (usage.days[0]?.counted ?? 0) < 6 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 200));
      usage = await read();
    }
    // The day's total is what the gateway served with the tenant's key (GetUsage); the authorizer's count agrees.
    expect(usage.source).toBe('gateway');
    expect(usage.requests).toBe(6);
    expect(usage.days).toEqual([{ day: today, requests: 6, counted: 6, keys: expect.arrayContaining([{ id: key.keyId, requests: 3 }]) }]);
    expect(usage.keys.reduce((n, k) => n + k.requests, 0)).toBe(6);
    const csv = await fetch(`${stack.apiUrl}/tenants/count-co/usage?from=${today}&to=${today}`, { headers: { Authorization: `Bearer ${demo.opsToken}`, Accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toBe('day,tenant_id,key_id,requests');
    expect(rows).toContain(`${today},count-co,*,6`);
    expect(rows).toContain(`${today},count-co,${key.keyId},3`);
    // The tenant's own admin may read it; another tenant's may not.
    expect(((await data(client(adminAuth).GET('/tenants/{tenantId}/usage', query))) as Usage).tenantId).toBe('count-co');
    expect((await problemOf(client({ bearer: demo.userToken }).GET('/tenants/{tenantId}/usage', query))).status).toBe(403);
    expect((await problemOf(ops.GET('/tenants/{tenantId}/usage', { params: { path: { tenantId: 'count-co' }, query: { from: today, to: '2020-01-01' } } }))).status).toBe(400);
  });
});

describe('browsers, unknown routes and the document', () => {
  const origin = () => stack.spa.origin;

  it('answers a preflight for the SPA\'s origin without calling the authorizer', async () => {
    const before = accessLog.length;
    const res = await raw('OPTIONS', '/users', { Origin: origin(), 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,idempotency-key,x-api-key' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin());
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST');
    expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, X-Api-Key, Content-Type, Idempotency-Key');
    expect(res.headers.get('vary')).toBe('Origin');
    const entry = accessLog.slice(before).find((e) => e.httpMethod === 'OPTIONS');
    expect(entry).toMatchObject({ status: 204, resourcePath: '/users' });
    expect(entry).not.toHaveProperty('authorizerLatency');
    const evil = await raw('OPTIONS', '/users', { Origin: 'https://evil.example.com', 'Access-Control-Request-Method': 'GET' });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('names the SPA\'s origin on answers of the functions and on every gateway response, and no other origin', async () => {
    const ok = await get('/me', { Origin: origin(), 'X-Api-Key': demo.apiKey });
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin());
    expect(ok.headers.get('access-control-expose-headers')).toContain('Retry-After');
    const other = await get('/me', { Origin: 'http://localhost:1', 'X-Api-Key': demo.apiKey });
    expect(other.status).toBe(200);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const unauthorized = await get('/me', { Origin: origin() });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(origin());
    expect(unauthorized.headers.get('access-control-expose-headers')).toContain('WWW-Authenticate');
    const forbidden = await get('/tenants', { Origin: origin(), Authorization: `Bearer ${demo.userToken}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('access-control-allow-origin')).toBe(origin());
  });

  it('answers an unknown route 404 problem+json, not 403 "Missing Authentication Token", with CORS', async () => {
    for (const path of ['/nope', '/users/u1/extra', '/']) {
      const res = await raw('GET', path, { Origin: origin(), 'X-Api-Key': demo.apiKey });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('access-control-allow-origin')).toBe(origin());
      expect(schemaErrors('#/components/schemas/NotFoundProblem', res.body), path).toEqual([]);
    }
  });

  it('answers a wrong method on a known route 405 with Allow, with or without credentials', async () => {
    for (const headers of [{}, { 'X-Api-Key': demo.apiKey }] as Record<string, string>[]) {
      const res = await raw('PUT', '/users', { Origin: origin(), ...headers });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, POST, OPTIONS');
      expect(res.headers.get('access-control-allow-origin')).toBe(origin());
      expect(schemaErrors('#/components/schemas/MethodNotAllowedProblem', res.body)).toEqual([]);
    }
    expect((await raw('POST', '/me', {})).headers.get('allow')).toBe('GET, OPTIONS');
    expect((await raw('DELETE', '/tenants/demo/api-keys/k/rotate', {})).headers.get('allow')).toBe('POST, OPTIONS');
  });

  it('answers 413 for a 1 MB body (the function) and for one over 10 MB (the gateway)', async () => {
    const headers = { 'X-Api-Key': demo.apiKey, 'Content-Type': 'application/json', Origin: origin() };
    const mb = await raw('POST', '/users', headers, { template: '/users', body: JSON.stringify({ email: 'big@demo.local', name: 'x'.repeat(1024 * 1024) }) });
    expect(mb.status).toBe(413);
    expect(mb.body).toMatchObject({ type: 'https://latchkey.dev/problems/payload-too-large', limitBytes: MAX_BODY_BYTES });
    expect(mb.headers.get('access-control-allow-origin')).toBe(origin());
    const huge = await raw('POST', '/users', headers, { template: '/users', body: 'x'.repeat(10 * 1024 * 1024 + 1) });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('x-amzn-errortype')).toBe('REQUEST_TOO_LARGE');
    expect(huge.headers.get('access-control-allow-origin')).toBe(origin());
  });

  it('serves the committed OpenAPI document at /openapi.json without credentials', async () => {
    const doc = await data(createLatchkeyClient({ baseUrl: stack.apiUrl }).GET('/openapi.json'));
    expect(doc).toEqual(OPENAPI_DOCUMENT);
  });

  it('checked every answer above against the document', () => {
    expect(validated).toBeGreaterThan(30);
  });
});

describe('a browser SPA on another origin', () => {
  it('logs in with authorization code + PKCE at the local identity provider and shows /me and /users from the API', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const calls: Promise<{ method: string; url: string; origin: string | undefined }>[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(stack.apiUrl)) calls.push(r.allHeaders().then((h) => ({ method: r.method(), url: r.url(), origin: h.origin })));
      });
      const before = accessLog.length;
      await page.goto(`${stack.spa.origin}/`);
      await page.click('#login');
      await page.waitForURL((u) => u.origin === stack.idp.origin);
      await page.fill('input[name=email]', demo.adminEmail);
      await page.fill('input[name=password]', demo.adminPassword);
      await page.click('button[type=submit]');
      await page.waitForURL((u) => u.origin === stack.spa.origin);
      await page.locator('#status', { hasText: /^(done|error)/ }).waitFor({ timeout: 30_000 });
      expect(await page.textContent('#status')).toBe('done');
      const me = (await page.textContent('#me')) ?? '';
      expect(me.startsWith('200 ')).toBe(true);
      expect(JSON.parse(me.slice(4))).toMatchObject({ tenantId: 'demo', authMethod: 'jwt', roles: ['tenant:admin'] });
      const users = (await page.textContent('#users')) ?? '';
      expect(users.startsWith('200 ')).toBe(true);
      expect((JSON.parse(users.slice(4)) as { items: { email: string }[] }).items.map((u) => u.email)).toContain(demo.adminEmail);
      // Cross-origin for real: the page's origin went with each call, and Chromium asked first.
      const apiCalls = await Promise.all(calls);
      expect(apiCalls.filter((c) => c.method === 'GET').map((c) => [new URL(c.url).pathname, c.origin])).toEqual([
        [new URL(`${stack.apiUrl}/me`).pathname, stack.spa.origin],
        [new URL(`${stack.apiUrl}/users`).pathname, stack.spa.origin],
      ]);
      expect(accessLog.slice(before).filter((e) => e.httpMethod === 'OPTIONS').map((e) => [e.resourcePath, e.status])).toEqual([
        ['/me', 204],
        ['/users', 204],
      ]);
    } finally {
      await browser.close();
    }
  }, 90_000);

  it('does not let a page on an origin that is not allowed read the API', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${stack.idp.origin}/`);
      const outcome = await page.evaluate(
        async ([api, token]) => fetch(`${api}/me`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => `read ${r.status}`, (e: Error) => `refused: ${e.name}`),
        [stack.apiUrl, demo.userToken] as const,
      );
      expect(outcome).toBe('refused: TypeError');
      // Even a simple request without a preflight is not readable.
      const simple = await page.evaluate(async (api) => fetch(`${api}/openapi.json`).then((r) => `read ${r.status}`, (e: Error) => `refused: ${e.name}`), stack.apiUrl);
      expect(simple).toBe('refused: TypeError');
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('shutdown', () => {
  it('leaves no process behind', async () => {
    for (const pool of stack.pools.values()) pids.push(...pool.pids);
    expect(pids.length).toBeGreaterThan(3);
    await stack.stop();
    await new Promise((r) => setTimeout(r, 500));
    expect(pids.filter(isAlive)).toEqual([]);
    const res = await fetch(`${stack.apiUrl}/me`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(res).toBe('refused');
  });
});
