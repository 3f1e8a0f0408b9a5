/** Keys and tokens made in the test, never committed. */
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

type CryptoKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export async function makeKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export interface SignOptions {
  header?: Record<string, unknown>;
  /** Seconds since epoch used for iat/exp defaults. */
  now?: number;
  lifetimeS?: number;
}

export const ISSUER = 'https://issuer.test/';
export const AUDIENCE = 'https://api.test';
export const TENANT_CLAIM = 'https://latchkey.dev/tenant_id';
export const ROLES_CLAIM = 'https://latchkey.dev/roles';

export async function signToken(key: TestKey, claims: JWTPayload = {}, opts: SignOptions = {}): Promise<string> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: [AUDIENCE, 'https://issuer.test/userinfo'],
    sub: 'auth0|user-1',
    azp: 'spa-client',
    iat: now,
    exp: now + (opts.lifetimeS ?? 3600),
    scope: 'openid read:things',
    [TENANT_CLAIM]: 'acme',
    [ROLES_CLAIM]: ['tenant:admin'],
    ...claims,
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...opts.header } as { alg: string })
    .sign(key.privateKey);
}

/** base64url of a JSON value, for hand-built malicious tokens. */
export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
