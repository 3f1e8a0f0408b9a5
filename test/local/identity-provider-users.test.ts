import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalIdpError } from '../../infra/local/identity-provider.js';
import { loginWithPkce, startTestIdp, type LocalIdentityProvider } from '../support/servers.js';

const TENANT = 'https://latchkey.dev/tenant_id';
const ROLES = 'https://latchkey.dev/roles';

let idp: LocalIdentityProvider;
let keys: JWTVerifyGetKey;

beforeAll(async () => {
  idp = await startTestIdp({ rolePermissions: { 'tenant:admin': ['users:read', 'users:write'], 'tenant:member': ['users:read'] } });
  keys = createRemoteJWKSet(new URL(idp.jwksUri));
});
afterAll(() => idp.stop());

const verify = (token: string) => jwtVerify(token, keys, { issuer: idp.issuer, audience: idp.audience, algorithms: ['RS256'] });

function admin(path: string, init: RequestInit = {}, token = idp.adminToken): Promise<Response> {
  return fetch(new URL(path, idp.adminUrl), {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
  });
}

describe('local identity provider: users', () => {
  it('runs authorization code + PKCE end to end and yields a token with the user tenant and roles', async () => {
    const user = idp.addUser({ email: 'Ann@Acme.test', password: 'correct horse', tenantId: 'acme', roles: ['tenant:admin'], name: 'Ann' });
    const r = await loginWithPkce(idp, { email: 'ann@acme.test', password: 'correct horse', scope: 'openid profile email users:read' });
    expect(r.error).toBeUndefined();
    expect(r.code).toBeTruthy();
    expect(r.accessToken).toBeTruthy();
    expect(r.idToken).toBeTruthy();

    const { payload } = await verify(r.accessToken!);
    expect(payload).toMatchObject({
      iss: idp.issuer,
      sub: user.userId,
      azp: idp.spaClientId,
      [TENANT]: 'acme',
      [ROLES]: ['tenant:admin'],
      permissions: ['users:read', 'users:write'],
      scope: 'users:read',
    });
    // As Auth0 does when openid is requested, aud also names the userinfo endpoint.
    expect(payload.aud).toEqual([idp.audience, `${idp.issuer}userinfo`]);
    expect(decodeProtectedHeader(r.accessToken!).typ).toBe('JWT');
  });

  it('refuses a wrong password and a blocked user at the login form', async () => {
    const user = idp.addUser({ email: 'bob@acme.test', password: 'pw-bob', tenantId: 'acme', roles: ['tenant:member'] });
    const wrong = await loginWithPkce(idp, { email: 'bob@acme.test', password: 'nope' });
    expect(wrong.loginStatus).toBe(401);
    expect(wrong.code).toBeUndefined();

    idp.updateUser(user.userId, { blocked: true });
    const blocked = await loginWithPkce(idp, { email: 'bob@acme.test', password: 'pw-bob' });
    expect(blocked.loginStatus).toBe(403);
    expect(blocked.code).toBeUndefined();
  });

  it('serves the browser start and callback pages', async () => {
    const start = await fetch(idp.origin + '/');
    expect(start.status).toBe(200);
    expect(await start.text()).toContain(idp.spaClientId);
    const cb = await fetch(`${idp.spaRedirectUris[0]}?code=abc&state=xyz`);
    expect(cb.status).toBe(200);
    expect(cb.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('issueUserToken mints a genuine token for a user, and refuses unknown scopes and blocked users', async () => {
    const user = idp.addUser({ email: 'cy@globex.test', password: 'pw', tenantId: 'globex', roles: ['tenant:member'] });
    const token = await idp.issueUserToken({ userId: user.userId, scopes: ['users:read'] });
    const { payload } = await verify(token);
    expect(payload).toMatchObject({ sub: user.userId, aud: idp.audience, [TENANT]: 'globex', [ROLES]: ['tenant:member'], permissions: ['users:read'], scope: 'users:read' });

    const bare = (await verify(await idp.issueUserToken({ userId: user.userId }))).payload;
    expect(bare.scope).toBeUndefined();

    await expect(idp.issueUserToken({ userId: user.userId, scopes: ['root'] })).rejects.toMatchObject({ code: 'unknown_scope' });
    await expect(idp.issueUserToken({ userId: 'auth0|nobody' })).rejects.toBeInstanceOf(LocalIdpError);
    idp.updateUser(user.userId, { blocked: true });
    await expect(idp.issueUserToken({ userId: user.userId })).rejects.toMatchObject({ code: 'user_blocked' });
  });

  it('has a platform operator without a tenant: no tenant claim', async () => {
    const op = idp.addUser({ email: 'ops@latchkey.test', password: 'pw', roles: ['platform:admin'] });
    const { payload } = await verify(await idp.issueUserToken({ userId: op.userId }));
    expect(payload[TENANT]).toBeUndefined();
    expect(payload[ROLES]).toEqual(['platform:admin']);
  });
});

describe('local identity provider: admin API', () => {
  it('requires the admin bearer token', async () => {
    expect((await admin('users', {}, 'wrong')).status).toBe(401);
    expect((await fetch(new URL('users', idp.adminUrl))).status).toBe(401);
  });

  it('creates, lists (by tenant and email, paginated), reads, updates and deletes users', async () => {
    const created = [];
    for (const n of [1, 2, 3]) {
      const res = await admin('users', { method: 'POST', body: JSON.stringify({ email: `u${n}@initech.test`, password: 'pw', tenant_id: 'initech', roles: ['tenant:member'] }) });
      expect(res.status).toBe(201);
      created.push((await res.json()) as Record<string, unknown>);
    }
    expect(created[0]).toMatchObject({ email: 'u1@initech.test', tenant_id: 'initech', roles: ['tenant:member'], blocked: false });
    expect(created[0]).not.toHaveProperty('password');
    const dup = await admin('users', { method: 'POST', body: JSON.stringify({ email: 'U1@initech.test', password: 'pw', tenant_id: 'initech' }) });
    expect(dup.status).toBe(409);
    expect((await admin('users', { method: 'POST', body: '{"email":"nope"}' })).status).toBe(400);

    const page0 = (await (await admin('users?tenant_id=initech&per_page=2&page=0')).json()) as { users: { email: string }[]; total: number };
    const page1 = (await (await admin('users?tenant_id=initech&per_page=2&page=1')).json()) as { users: { email: string }[]; total: number };
    expect(page0.total).toBe(3);
    expect([...page0.users, ...page1.users].map((u) => u.email)).toEqual(['u1@initech.test', 'u2@initech.test', 'u3@initech.test']);
    const byEmail = (await (await admin('users?email=U2%40initech.test')).json()) as { users: { email: string }[] };
    expect(byEmail.users.map((u) => u.email)).toEqual(['u2@initech.test']);

    const id = encodeURIComponent(String(created[0]!['user_id']));
    expect((await admin(`users/${id}`)).status).toBe(200);
    const patched = await admin(`users/${id}`, { method: 'PATCH', body: JSON.stringify({ roles: ['tenant:admin'], name: 'U One', blocked: true }) });
    expect(await patched.json()).toMatchObject({ roles: ['tenant:admin'], name: 'U One', blocked: true });
    expect((await admin(`users/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await admin(`users/${id}`)).status).toBe(404);
    expect((await admin(`users/${id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('mints a user token for scripts at POST /local-admin/token', async () => {
    const user = idp.addUser({ email: 'script@initech.test', password: 'pw', tenantId: 'initech', roles: ['tenant:admin'] });
    // RBAC on, as Auth0 with it enabled: scopes the user's roles do not grant (keys:read here) are dropped.
    const res = await admin('token', { method: 'POST', body: JSON.stringify({ user_id: user.userId, scope: 'users:read keys:read' }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe('Bearer');
    const { payload } = await verify(body.access_token);
    expect(payload).toMatchObject({ sub: user.userId, scope: 'users:read', [TENANT]: 'initech' });
    expect((await admin('token', { method: 'POST', body: JSON.stringify({ user_id: 'auth0|none' }) })).status).toBe(404);
  });

  it('rotates and deletes machine clients', async () => {
    const c = await idp.registerClient({ tenantId: 'initech', scopes: ['keys:read'] });
    const rot = await admin(`clients/${encodeURIComponent(c.clientId)}/rotate-secret`, { method: 'POST' });
    const body = (await rot.json()) as { client_id: string; client_secret: string };
    expect(body.client_id).toBe(c.clientId);
    expect(body.client_secret).not.toBe(c.clientSecret);
    expect((await admin(`clients/${encodeURIComponent(c.clientId)}`, { method: 'DELETE' })).status).toBe(204);
    expect((await admin(`clients/${encodeURIComponent(c.clientId)}/rotate-secret`, { method: 'POST' })).status).toBe(404);
  });
});
