import { createHmac, createPrivateKey, createPublicKey, sign as cryptoSign } from 'node:crypto';
import { CompactEncrypt, SignJWT, exportJWK, exportSPKI } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadJwtConfig, type JwtConfig } from '../../functions/core/config.js';
import { CredentialsError, UpstreamUnavailableError } from '../../functions/core/errors.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { ManualClock } from '../support/clock.js';
import { startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { AUDIENCE, ISSUER, ROLES_CLAIM, TENANT_CLAIM, b64, makeKey, signToken, type TestKey } from '../support/keys.js';

let key: TestKey;
let other: TestKey;
let ec: TestKey;
let jwks: JwksServer;
let attackerJwks: JwksServer;
let clock: ManualClock;
let config: JwtConfig;
let verifier: JwtVerifier;

const sign = (claims = {}, opts: Parameters<typeof signToken>[2] = {}) => signToken(key, claims, { now: clock.seconds, ...opts });

async function refused(token: string, code?: string | RegExp): Promise<CredentialsError> {
  const err = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CredentialsError);
  if (code instanceof RegExp) expect((err as CredentialsError).code).toMatch(code);
  else if (code) expect((err as CredentialsError).code).toBe(code);
  return err as CredentialsError;
}

beforeAll(async () => {
  key = await makeKey('k1');
  other = await makeKey('attacker');
  ec = await makeKey('e1', 'ES256');
  jwks = await startJwksServer([key.publicJwk, ec.publicJwk]);
  attackerJwks = await startJwksServer([other.publicJwk]);
});
afterAll(async () => {
  await jwks.close();
  await attackerJwks.close();
});
beforeEach(() => {
  jwks.keys = [key.publicJwk, ec.publicJwk];
  jwks.mode = 'ok';
  jwks.requests = 0;
  attackerJwks.requests = 0;
  clock = new ManualClock();
  config = loadJwtConfig({ ISSUER, AUDIENCE: `${AUDIENCE},https://other-accepted.test`, JWKS_URI: jwks.uri, ALGORITHMS: 'RS256,ES256', JWKS_COOLDOWN_MS: '30000', CLOCK_TOLERANCE_S: '5' });
  verifier = new JwtVerifier({ config, clock });
});

describe('valid tokens', () => {
  it('verifies an Auth0-shaped user token and maps its claims', async () => {
    const { principal } = await verifier.verify(await sign({ permissions: ['write:things'] }));
    expect(principal).toEqual({
      subject: 'auth0|user-1',
      tenantId: 'acme',
      userId: 'auth0|user-1',
      clientId: 'spa-client',
      roles: ['tenant:admin'],
      // A user's `scope` does not count (USER_SCOPES=ignore); Auth0 RBAC `permissions` does.
      scopes: ['write:things'],
      authMethod: 'jwt',
      expiresAt: clock.seconds + 3600,
      issuedAtMs: clock.seconds * 1000,
    });
  });

  it("counts a user's scope only with USER_SCOPES=trust; a machine's scope always; roles may not carry the list separator", async () => {
    const token = await sign({ permissions: ['write:things'] });
    const trusting = new JwtVerifier({ config: { ...config, userScopes: 'trust' }, clock, jwks: verifier.jwks });
    expect((await trusting.verify(token)).principal.scopes).toEqual(['openid', 'read:things', 'write:things']);
    expect((await verifier.verify(token)).principal.scopes).toEqual(['write:things']);
    const machine = await sign({ sub: 'svc@clients', azp: 'svc', gty: 'client-credentials', scope: 'users:read' });
    expect((await verifier.verify(machine)).principal.scopes).toEqual(['users:read']);
    for (const role of ['tenant:member,platform:admin', 'tenant:member platform:admin']) {
      await expect(verifier.verify(await sign({ [config.rolesClaim]: [role] }))).rejects.toMatchObject({ code: 'ERR_CLAIM_INVALID' });
    }
  });

  it('accepts ES256 when configured, and an aud string naming a second accepted audience', async () => {
    const token = await signToken(ec, { aud: 'https://other-accepted.test' }, { now: clock.seconds });
    expect((await verifier.verify(token)).principal.subject).toBe('auth0|user-1');
  });

  it('accepts a token just past exp within the clock tolerance', async () => {
    const token = await sign({}, { lifetimeS: 60 });
    clock.advance(63_000);
    await expect(verifier.verify(token)).resolves.toBeDefined();
  });

  it('treats client-credentials tokens as machine callers without a user', async () => {
    const auth0 = await sign({ sub: 'm2m-client@clients', azp: 'm2m-client', gty: 'client-credentials' });
    expect((await verifier.verify(auth0)).principal).toMatchObject({ userId: undefined, clientId: 'm2m-client' });
    const rfc9068 = await sign({ sub: 'svc', client_id: 'svc', azp: undefined });
    expect((await verifier.verify(rfc9068)).principal).toMatchObject({ userId: undefined, clientId: 'svc' });
  });

  it('fetches the key set once for many tokens', async () => {
    for (let i = 0; i < 5; i++) await verifier.verify(await sign({ sub: `auth0|u${i}` }));
    expect(jwks.requests).toBe(1);
  });
});

describe('RFC 8725 attack classes are refused', () => {
  it.each(['none', 'None', 'NONE', 'nOnE'])('alg %s', async (alg) => {
    const token = `${b64({ alg, typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: clock.seconds + 60 })}.`;
    await refused(token);
    await refused(`${token}AAAA`, 'ERR_JWT_ALG_NOT_ALLOWED');
  });

  it('HS256 signed with the issuer public key', async () => {
    const pem = await exportSPKI(key.publicKey);
    const head = `${b64({ alg: 'HS256', kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: clock.seconds + 60 })}`;
    const sig = createHmac('sha256', pem).update(head).digest('base64url');
    await refused(`${head}.${sig}`, 'ERR_JWT_ALG_NOT_ALLOWED');
  });

  it('an embedded jwk header', async () => {
    const token = await signToken(other, {}, { now: clock.seconds, header: { jwk: other.publicJwk } });
    await refused(token, 'ERR_JWT_FORBIDDEN_HEADER');
    expect(jwks.requests).toBe(0);
  });

  it('jku pointing elsewhere, without requesting it', async () => {
    const token = await signToken(other, {}, { now: clock.seconds, header: { jku: attackerJwks.uri } });
    await refused(token, 'ERR_JWT_FORBIDDEN_HEADER');
    expect(attackerJwks.requests).toBe(0);
  });

  it('x5u and x5c headers', async () => {
    await refused(await sign({}, { header: { x5u: attackerJwks.uri } }), 'ERR_JWT_FORBIDDEN_HEADER');
    await refused(await sign({}, { header: { x5c: ['MIIB'] } }), 'ERR_JWT_FORBIDDEN_HEADER');
  });

  it('a key from another issuer under a known kid', async () => {
    await refused(await signToken({ ...other, kid: 'k1' }, {}, { now: clock.seconds }), 'ERR_JWT_SIGNATURE');
  });

  it('an unknown crit header', async () => {
    // jose will not sign an unknown crit, so sign by hand.
    const head = `${b64({ alg: 'RS256', kid: 'k1', crit: ['urn:x-unknown'], 'urn:x-unknown': 1 })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: clock.seconds + 60 })}`;
    const privateKey = createPrivateKey({ key: (await exportJWK(key.privateKey)) as never, format: 'jwk' });
    const token = `${head}.${cryptoSign('sha256', Buffer.from(head), privateKey).toString('base64url')}`;
    await refused(token, 'ERR_JWT_NOT_SUPPORTED');
    // The same token without crit verifies, so the refusal is about crit alone.
    const plain = `${b64({ alg: 'RS256', kid: 'k1' })}.${head.split('.')[1]}`;
    await expect(verifier.verify(`${plain}.${cryptoSign('sha256', Buffer.from(plain), privateKey).toString('base64url')}`)).resolves.toBeDefined();
  });

  it('a JWE', async () => {
    const jwe = await new CompactEncrypt(new TextEncoder().encode('{"sub":"x"}'))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(createPublicKey({ key: key.publicJwk as never, format: 'jwk' }));
    await refused(jwe, 'ERR_JWE_NOT_ACCEPTED');
  });

  it('expired and not-yet-valid tokens', async () => {
    const expired = await sign({}, { lifetimeS: 60 });
    clock.advance(66_000);
    await refused(expired, 'ERR_JWT_EXPIRED');
    await refused(await sign({ nbf: clock.seconds + 120 }), 'ERR_JWT_CLAIM_NBF');
  });

  it('a token without exp', async () => {
    await refused(await sign({ exp: undefined }), /ERR_JWT_CLAIM_EXP|ERR_JWT_INVALID/);
  });

  it('wrong issuer, including a missing trailing slash', async () => {
    await refused(await sign({ iss: 'https://evil.test/' }), 'ERR_JWT_CLAIM_ISS');
    await refused(await sign({ iss: 'https://issuer.test' }), 'ERR_JWT_CLAIM_ISS');
  });

  it('an ID token (aud = client id) and a token for another API', async () => {
    await refused(await sign({ aud: 'spa-client' }), 'ERR_JWT_CLAIM_AUD');
    await refused(await sign({ aud: ['https://billing.test', 'https://issuer.test/userinfo'] }), 'ERR_JWT_CLAIM_AUD');
  });

  it('the RFC 9068 typ when it is required', async () => {
    verifier = new JwtVerifier({ config: { ...config, requiredTyp: 'at+jwt' }, clock });
    await refused(await sign(), 'ERR_JWT_CLAIM_TYP');
    await expect(verifier.verify(await sign({}, { header: { typ: 'at+jwt' } }))).resolves.toBeDefined();
  });

  it.each([
    ['two segments', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0'],
    ['empty signature', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.'],
    ['non-base64url characters', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.ab+c/d=='],
    ['header not JSON', `${b64('not json')}.${b64({})}.AAAA`],
    ['header an array', `${b64([1])}.${b64({})}.AAAA`],
    ['four segments', 'a.b.c.d'],
    ['empty string', ''],
  ])('a malformed compact string: %s', async (_name, token) => {
    await refused(token, /ERR_JWT_MALFORMED|ERR_JWT_ALG_NOT_ALLOWED/);
  });

  it('an oversized token, before any key lookup', async () => {
    await refused(await sign({ padding: 'x'.repeat(9000) }), 'ERR_JWT_TOO_LARGE');
    expect(jwks.requests).toBe(0);
  });

  it('claims of the wrong shape', async () => {
    await refused(await sign({ [TENANT_CLAIM]: ['acme'] }), 'ERR_CLAIM_INVALID');
    await refused(await sign({ [TENANT_CLAIM]: 'acme/../other' }), 'ERR_CLAIM_INVALID');
    await refused(await sign({ [ROLES_CLAIM]: 'tenant:admin' }), 'ERR_CLAIM_INVALID');
    await refused(await sign({ [ROLES_CLAIM]: [{ role: 'x' }] }), 'ERR_CLAIM_INVALID');
    await refused(await sign({ scope: ['read'] }), 'ERR_CLAIM_INVALID');
    await refused(await sign({ sub: 42 }), /ERR_CLAIM_INVALID|ERR_JWT_CLAIM_SUB|ERR_JWT_INVALID/);
  });

  it('never reads inherited properties as claims', async () => {
    const { principal } = await verifier.verify(await sign({ [TENANT_CLAIM]: undefined, [ROLES_CLAIM]: undefined }));
    expect(principal.tenantId).toBeUndefined();
    expect(principal.roles).toEqual([]);
    const protoConfig = { ...config, tenantClaim: 'toString' };
    const v2 = new JwtVerifier({ config: protoConfig, clock });
    expect((await v2.verify(await sign())).principal.tenantId).toBeUndefined();
  });
});

describe('key set handling', () => {
  it('refetches once for an unknown kid and then respects the cooldown', async () => {
    await verifier.verify(await sign());
    const rotated = await makeKey('k2');
    jwks.keys = [key.publicJwk, rotated.publicJwk];
    await expect(verifier.verify(await signToken(rotated, {}, { now: clock.seconds }))).resolves.toBeDefined();
    expect(jwks.requests).toBe(2);
    // A flood of made-up kids within the cooldown causes no further fetches; as their key may
    // be new, they get 503 until the cooldown allows a refetch, never 401.
    for (let i = 0; i < 20; i++) {
      const err = await verifier.verify(await signToken({ ...other, kid: `bogus-${i}` }, {}, { now: clock.seconds })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
    }
    expect(jwks.requests).toBe(2);
    clock.advance(31_000);
    await refused(await signToken({ ...other, kid: 'bogus-late' }, {}, { now: clock.seconds }), 'ERR_JWKS_NO_MATCHING_KEY');
    expect(jwks.requests).toBe(3);
  });

  it('shares one in-flight fetch between concurrent first requests', async () => {
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => sign({ sub: `auth0|c${i}` })));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    expect(jwks.requests).toBe(1);
  });

  it('keeps serving known kids when the endpoint is down, and answers 503 for unknown ones', async () => {
    await verifier.verify(await sign());
    jwks.mode = 'down';
    clock.advance(config.jwksMaxAgeMs + 60_000);
    await expect(verifier.verify(await sign({ sub: 'auth0|later' }))).resolves.toBeDefined();
    const fresh = await makeKey('k3');
    const err = await verifier.verify(await signToken(fresh, {}, { now: clock.seconds })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
  });

  it('prefetches once; after a failed prefetch the first request backs off (503), then fetches', async () => {
    await Promise.all([verifier.jwks.prefetch(), verifier.jwks.prefetch()]);
    await expect(verifier.verify(await sign())).resolves.toBeDefined();
    expect(jwks.requests).toBe(1);
    jwks.mode = 'down';
    const v2 = new JwtVerifier({ config, clock });
    await v2.jwks.prefetch();
    jwks.mode = 'ok';
    const err = await v2.verify(await sign()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect(jwks.requests).toBe(2);
    clock.advance(5_000);
    await expect(v2.verify(await sign())).resolves.toBeDefined();
    expect(jwks.requests).toBe(3);
  });

  it('answers 503, not 401, when the key set was never reachable', async () => {
    jwks.mode = 'hang';
    verifier = new JwtVerifier({ config: { ...config, jwksTimeoutMs: 200 }, clock });
    const err = await verifier.verify(await sign()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).retryAfterS).toBeGreaterThanOrEqual(1);
  });

  it('refuses a token without kid when several keys could have signed it', async () => {
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: clock.seconds + 60 })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(key.privateKey);
    jwks.keys = [key.publicJwk, (await makeKey('k9')).publicJwk];
    await refused(token, 'ERR_JWKS_NO_MATCHING_KEY');
    jwks.keys = [key.publicJwk];
    verifier = new JwtVerifier({ config, clock });
    await expect(verifier.verify(token)).resolves.toBeDefined();
  });
});

describe('verified-token cache', () => {
  it('answers a repeated token from the cache until it expires', async () => {
    const token = await sign({}, { lifetimeS: 120 });
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    expect(verifier.cachedTokens).toBe(1);
    clock.advance((120 + config.clockToleranceS + 1) * 1000);
    await refused(token, 'ERR_JWT_EXPIRED');
    expect(verifier.cachedTokens).toBe(0);
  });

  it('is bounded', async () => {
    verifier = new JwtVerifier({ config: { ...config, verifiedCacheSize: 3 }, clock });
    for (let i = 0; i < 6; i++) await verifier.verify(await sign({ sub: `auth0|b${i}` }));
    expect(verifier.cachedTokens).toBe(3);
  });

  it('forgets tokens signed by a key that left the key set', async () => {
    const rotated = await makeKey('k2');
    const token = await sign();
    await verifier.verify(token);
    jwks.keys = [rotated.publicJwk];
    clock.advance(31_000);
    await verifier.verify(await signToken(rotated, {}, { now: clock.seconds }));
    expect(verifier.cachedTokens).toBe(1);
    await refused(token, 'ERR_JWKS_NO_MATCHING_KEY');
  });
});
