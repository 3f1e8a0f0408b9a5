/**
 * End to end over what `npm start` runs: the synthesized stack served by the local API
 * Gateway, the bundled Lambda code in child processes, DynamoDB Local and the local identity
 * provider, called with plain HTTP like any client would.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { seedDemo, type DemoCredentials } from '../../infra/local/seed.js';
import { loginWithPkce } from '../support/servers.js';

const REVOCATION_CHECK_S = 2;
let stack: LocalStack;
let demo: DemoCredentials;
const pids: number[] = [];

async function get(path: string, headers: Record<string, string>) {
  const res = await fetch(`${stack.apiUrl}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function post(path: string, headers: Record<string, string>, body: unknown) {
  const res = await fetch(`${stack.apiUrl}${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

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
    context: { revocationCheckSeconds: String(REVOCATION_CHECK_S) },
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

  it('lets a tenant back-end create a user with its API key', async () => {
    const created = await post('/users', { 'X-Api-Key': demo.apiKey }, { email: 'from.backend@demo.local' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenantId: 'demo', email: 'from.backend@demo.local' });
    const basic = Buffer.from(`${demo.clientId}:${demo.clientSecret}`).toString('base64');
    const list = await get('/users', { Authorization: `Basic ${basic}` });
    expect((list.body?.items as { email: string }[]).map((u) => u.email)).toContain('from.backend@demo.local');
  });

  it('answers 401 with WWW-Authenticate and problem+json as the gateway responses say', async () => {
    const res = await get('/me', {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="latchkey", error="invalid_token", Basic realm="latchkey"/);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ status: 401, type: 'https://latchkey.dev/problems/unauthorized' });
  });

  it('stops a revoked key within the revocation bound', async () => {
    const key = await post('/tenants/demo/api-keys', { Authorization: `Bearer ${demo.userToken}` }, { name: 'to revoke', scopes: ['users:read'] });
    const apiKey = String(key.body.apiKey);
    expect((await get('/me', { 'X-Api-Key': apiKey })).status).toBe(200);
    const revoked = await fetch(`${stack.apiUrl}/tenants/demo/api-keys/${String(key.body.keyId)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${demo.userToken}` } });
    expect(revoked.status).toBe(204);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < (REVOCATION_CHECK_S + 10) * 1000) {
      status = (await get('/me', { 'X-Api-Key': apiKey })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
    // The bound plus slack for request latency on a loaded machine.
    expect(Date.now() - started).toBeLessThanOrEqual((REVOCATION_CHECK_S + 4) * 1000);
  });

  it('answers 503 with Retry-After for new keys while the identity provider is down, and keeps cached keys working', async () => {
    const fresh = await post('/tenants/demo/api-keys', { Authorization: `Bearer ${demo.userToken}` }, { name: 'never used', scopes: ['users:read'] });
    expect((await get('/me', { 'X-Api-Key': demo.apiKey })).status).toBe(200);
    await stack.idp.pause();
    try {
      const down = await get('/me', { 'X-Api-Key': String(fresh.body.apiKey) });
      expect(down.status).toBe(503);
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(down.body).toMatchObject({ type: 'https://latchkey.dev/problems/unavailable' });
      expect((await get('/me', { 'X-Api-Key': demo.apiKey })).status).toBe(200);
      expect((await get('/me', { Authorization: `Bearer ${demo.userToken}` })).status).toBe(200);
    } finally {
      await stack.idp.resume();
    }
    expect((await get('/me', { 'X-Api-Key': String(fresh.body.apiKey) })).status).toBe(200);
  });
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
