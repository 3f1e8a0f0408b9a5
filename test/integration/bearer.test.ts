/**
 * The bearer path against the real local authorization server: tokens it issues (user tokens
 * and client-credentials tokens) go through the authorizer handler, including a signing-key
 * rotation at the issuer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { loadJwtConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { silentLog } from '../../functions/core/log.js';
import { ROLE_GRANTS } from '../../functions/core/permissions.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { ManualClock } from '../support/clock.js';
import { restEvent } from '../support/events.js';
import { clientCredentials } from '../support/servers.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
let idp: Idp;
let clock: ManualClock;
let handler: ReturnType<typeof createAuthorizerHandler>;
let verifier: JwtVerifier;
let userId: string;

const call = (token: string) => handler(restEvent({ Authorization: `Bearer ${token}` }));

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, rolePermissions: ROLE_GRANTS });
  clock = new ManualClock(Date.now());
  // The node:http client, as the deployed authorizer uses.
  verifier = new JwtVerifier({ config: loadJwtConfig({ ISSUER: idp.issuer, AUDIENCE: idp.audience }), clock, fetch: nodeHttpClient });
  handler = createAuthorizerHandler({ authenticator: new Authenticator({ verifier, keyPrefix: 'lk' }), log: silentLog });
  userId = idp.addUser({ email: 'u@acme.test', password: 'a long enough password', tenantId: 'acme', roles: ['tenant:member'] }).userId;
});
afterAll(() => idp?.stop());

describe('tokens from the real authorization server', () => {
  it('allows a user token with tenant, user and roles from namespaced claims', async () => {
    const result = await call(await idp.issueUserToken({ userId, scopes: ['users:read'] }));
    expect(result).toMatchObject({ principalId: userId, context: { tenantId: 'acme', userId, roles: 'tenant:member', scopes: 'users:read', authMethod: 'jwt' } });
  });

  it('gives a user only the permissions of their roles, whatever scope they asked for (RBAC)', async () => {
    const result = await call(await idp.issueUserToken({ userId, scopes: ['tenants:admin', 'keys:write', 'users:read'] }));
    expect(result).toMatchObject({ context: { scopes: 'users:read' } });
  });

  it('allows a service’s client-credentials token as a machine caller', async () => {
    const client = await idp.registerClient({ tenantId: 'acme', scopes: ['users:read'] });
    const { body } = await clientCredentials(idp, client, { audience: idp.audience });
    const result = await call(String(body.access_token));
    expect(result).toMatchObject({ context: { clientId: client.clientId, userId: '', tenantId: 'acme', authMethod: 'jwt' } });
  });

  it('follows a signing-key rotation: new kid fetched once, old tokens valid while the old key is published, refused once it is dropped', async () => {
    const before = await idp.issueUserToken({ userId });
    await call(before);
    const fetches = verifier.jwks.fetches;
    await idp.rotateSigningKey();
    const after = await idp.issueUserToken({ userId });
    await expect(call(after)).resolves.toMatchObject({ principalId: userId });
    expect(verifier.jwks.fetches).toBe(fetches + 1);
    await expect(call(before)).resolves.toMatchObject({ principalId: userId });
    // The issuer drops the old keys: once the verifier sees the new key set, tokens they signed are refused.
    await idp.rotateSigningKey({ dropOld: true });
    const newest = await idp.issueUserToken({ userId });
    clock.advance(11_000); // past the unknown-kid cooldown
    await expect(call(newest)).resolves.toMatchObject({ principalId: userId });
    await expect(call(before)).rejects.toThrow(/^Unauthorized$/);
    await expect(call(after)).rejects.toThrow(/^Unauthorized$/);
  });
});
