import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientCredentials, startTestIdp, type LocalIdentityProvider } from '../support/servers.js';

const TENANT = 'https://latchkey.dev/tenant_id';

let idp: LocalIdentityProvider;

beforeAll(async () => {
  idp = await startTestIdp();
});
afterAll(() => idp.stop());
beforeEach(() => {
  idp.setFailure('none');
  idp.resetStats();
});

async function jwks(p: LocalIdentityProvider): Promise<string[]> {
  const body = (await (await fetch(p.jwksUri)).json()) as { keys: { kid: string; d?: string }[] };
  expect(body.keys.every((k) => k.d === undefined)).toBe(true); // public parts only
  return body.keys.map((k) => k.kid);
}

describe('local identity provider: machine clients', () => {
  it('publishes discovery with Auth0-style endpoints and an issuer equal to iss', async () => {
    const meta = (await (await fetch(idp.discoveryUrl)).json()) as Record<string, unknown>;
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(meta).toMatchObject({
      issuer: idp.issuer,
      token_endpoint: idp.tokenEndpoint,
      jwks_uri: idp.jwksUri,
      registration_endpoint: idp.registrationEndpoint,
      authorization_endpoint: idp.authorizationEndpoint,
    });
    expect(idp.tokenEndpoint).toBe(`${idp.issuer}oauth/token`);
    expect(idp.jwksUri).toBe(`${idp.issuer}.well-known/jwks.json`);
  });

  it('issues an RS256 client-credentials JWT that verifies against the JWKS, with tenant and scopes', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read', 'users:read'], keyId: 'key-1' });
    const res = await clientCredentials(idp, c, { audience: idp.audience });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 86_400, scope: 'keys:read users:read' });
    const token = res.body['access_token'] as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: idp.currentKid });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(idp.jwksUri)), { issuer: idp.issuer, audience: idp.audience, algorithms: ['RS256'] });
    expect(payload).toMatchObject({
      iss: idp.issuer,
      aud: idp.audience,
      [TENANT]: 'acme',
      scope: 'keys:read users:read',
      sub: `${c.clientId}@clients`,
      azp: c.clientId,
      gty: 'client-credentials',
    });
  });

  it('takes resource= (RFC 8707) as well, narrows to requested scopes, and refuses others', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read', 'users:read'] });
    const narrowed = await clientCredentials(idp, c, { resource: idp.audience, scope: 'users:read' });
    expect(narrowed.body['scope']).toBe('users:read');
    expect((await clientCredentials(idp, c, { scope: 'keys:write' })).body['error']).toBe('invalid_scope');
    const wrongApi = await clientCredentials(idp, c, { audience: 'https://other.example' });
    expect(wrongApi.status).toBe(400);
    expect(wrongApi.body['error']).toBe('invalid_target');
    await expect(idp.registerClient({ tenantId: 'acme', scopes: ['read:things'] })).rejects.toMatchObject({ code: 'unknown_scope' });
    const badSecret = await clientCredentials(idp, { clientId: c.clientId, clientSecret: 'nope' });
    expect([badSecret.status, badSecret.body['error']]).toEqual([401, 'invalid_client']);
  });

  it('registers, reads and deletes clients over RFC 7591/7592; a deleted client gets invalid_client', async () => {
    const denied = await fetch(idp.registrationEndpoint, { method: 'POST', headers: { authorization: 'Bearer wrong', 'content-type': 'application/json' }, body: '{}' });
    expect(denied.status).toBe(401);

    const reg = await fetch(idp.registrationEndpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${idp.initialAccessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'keys:read',
        tenant_id: 'globex',
        key_id: 'k-9',
      }),
    });
    expect(reg.status).toBe(201);
    const client = (await reg.json()) as Record<string, string>;
    expect(client).toMatchObject({ tenant_id: 'globex', key_id: 'k-9', scope: 'keys:read' });
    const creds = { clientId: client['client_id']!, clientSecret: client['client_secret']! };
    const manage = { authorization: `Bearer ${client['registration_access_token']}` };

    // Basic auth although the client registered client_secret_basic; post works too (oidc-provider 9 accepts both).
    const basic = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(creds.clientId)}:${encodeURIComponent(creds.clientSecret)}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(basic.status).toBe(200);
    expect((await clientCredentials(idp, creds)).status).toBe(200);

    const read = await fetch(client['registration_client_uri']!, { headers: manage });
    expect(await read.json()).toMatchObject({ client_id: creds.clientId, tenant_id: 'globex' });

    const del = await fetch(client['registration_client_uri']!, { method: 'DELETE', headers: manage });
    expect(del.status).toBe(204);
    const after = await clientCredentials(idp, creds);
    expect([after.status, after.body['error']]).toEqual([401, 'invalid_client']);
  });

  it('deleteClient() stops a client from getting tokens', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    expect((await clientCredentials(idp, c)).status).toBe(200);
    expect(await idp.deleteClient(c.clientId)).toBe(true);
    expect((await clientCredentials(idp, c)).body['error']).toBe('invalid_client');
    expect(await idp.deleteClient(c.clientId)).toBe(false);
  });

  it('rotates a secret under the same client id; RFC 7592 PUT cannot', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    const put = await fetch(c.registrationClientUri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${c.registrationAccessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: c.clientId, client_secret: 'a-new-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post', scope: 'keys:read', tenant_id: 'acme' }),
    });
    expect(put.status).toBe(400);
    expect(((await put.json()) as Record<string, string>)['error_description']).toMatch(/client_secret does not match/);

    const rotated = await idp.rotateClientSecret(c.clientId);
    expect(rotated.clientId).toBe(c.clientId);
    expect(rotated.clientSecret).not.toBe(c.clientSecret);
    expect((await clientCredentials(idp, c)).body['error']).toBe('invalid_client');
    const res = await clientCredentials(idp, rotated);
    expect(res.status).toBe(200);
  });

  it('answers 503 when unavailable and 429 with Auth0 rate-limit headers, counting every request', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    idp.setFailure('unavailable');
    const down = await clientCredentials(idp, c);
    expect(down.status).toBe(503);

    idp.setFailure('rate-limited', { retryAfterS: 7 });
    const limited = await clientCredentials(idp, c);
    const now = Math.floor(Date.now() / 1000);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(limited.headers.get('x-ratelimit-limit')).toBe('30');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(limited.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(now + 6);
    expect(limited.body['error']).toBe('too_many_requests');

    idp.setFailure('none');
    expect((await clientCredentials(idp, c)).status).toBe(200);
    expect(idp.stats.tokenRequests).toBe(3);
    idp.resetStats();
    expect(idp.stats.tokenRequests).toBe(0);
  });

  it('hangs token requests in slow mode, then answers', async () => {
    const c = await idp.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    idp.setFailure('slow', { delayMs: 300 });
    const started = Date.now();
    const res = await clientCredentials(idp, c);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const timedOut = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }),
      signal: AbortSignal.timeout(50),
    }).catch((e: unknown) => e);
    expect((timedOut as Error).name).toBe('TimeoutError');
  });
});

describe('local identity provider: keys and availability', () => {
  let own: LocalIdentityProvider;
  beforeAll(async () => {
    own = await startTestIdp();
  });
  afterAll(() => own.stop());

  it('rotates the signing key: new kid signs, the old kid stays published unless dropped', async () => {
    const c = await own.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    const before = (await clientCredentials(own, c)).body['access_token'] as string;
    const oldKid = own.currentKid;
    expect(decodeProtectedHeader(before).kid).toBe(oldKid);

    const { kid, previousKid } = await own.rotateSigningKey();
    expect(previousKid).toBe(oldKid);
    expect(kid).not.toBe(oldKid);
    expect(own.currentKid).toBe(kid);
    expect(await jwks(own)).toEqual([kid, oldKid]);

    // Clients registered before the rotation still work; new tokens carry the new kid.
    const after = (await clientCredentials(own, c)).body['access_token'] as string;
    expect(decodeProtectedHeader(after).kid).toBe(kid);
    const keySet = createRemoteJWKSet(new URL(own.jwksUri));
    for (const t of [before, after]) await expect(jwtVerify(t, keySet, { issuer: own.issuer, audience: own.audience })).resolves.toBeDefined();

    const third = await own.rotateSigningKey({ dropOld: true });
    expect(await jwks(own)).toEqual([third.kid]);
  });

  it('pauses and resumes on the same port: refused while down, same issuer and state after', async () => {
    const c = await own.registerClient({ tenantId: 'acme', scopes: ['keys:read'] });
    const issuer = own.issuer;
    // A request hanging in slow mode must not hold pause() up.
    own.setFailure('slow', { delayMs: 30_000 });
    const hanging = clientCredentials(own, c).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await own.pause();
    // A hang detector, not a timing: the request it must not wait for is held for 30 s.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await hanging).toBeInstanceOf(Error);
    expect(own.running).toBe(false);
    await expect(fetch(own.discoveryUrl)).rejects.toThrow();

    own.setFailure('none');
    await own.resume();
    expect(own.issuer).toBe(issuer);
    const res = await clientCredentials(own, c);
    expect(res.status).toBe(200);
    const { payload } = await jwtVerify(res.body['access_token'] as string, createRemoteJWKSet(new URL(own.jwksUri)), { issuer, audience: own.audience });
    expect(payload[TENANT]).toBe('acme');
  });
});
