/**
 * Keys and tokens made by the benchmark (never committed, never printed). Signing uses
 * node:crypto synchronously: thousands of distinct tokens are needed for first-seen cases.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

export const ISSUER = 'https://issuer.bench/';
export const AUDIENCE = 'https://api.bench';
export const TENANT_CLAIM = 'https://latchkey.dev/tenant_id';
export const ROLES_CLAIM = 'https://latchkey.dev/roles';

export interface BenchKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
}

export function makeKey(kid: string, alg: 'RS256' | 'ES256'): BenchKey {
  const { privateKey, publicKey } = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk: JWK = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** An Auth0-shaped user access token. */
export function signToken(key: BenchKey, claims: Record<string, unknown> = {}, lifetimeS = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: ISSUER,
    aud: [AUDIENCE, `${ISSUER}userinfo`],
    sub: 'auth0|user-1',
    azp: 'spa-client',
    iat: now,
    exp: now + lifetimeS,
    scope: 'openid profile read:things write:things',
    [TENANT_CLAIM]: 'acme',
    [ROLES_CLAIM]: ['tenant:admin'],
    ...claims,
  };
  const input = `${b64({ alg: key.alg, typ: 'JWT', kid: key.kid })}.${b64(payload)}`;
  const sig = key.alg === 'RS256' ? sign('sha256', Buffer.from(input), key.privateKey) : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** `n` distinct user tokens (distinct `sub` and `jti`). */
export function tokenPool(key: BenchKey, n: number, tag: string): string[] {
  return Array.from({ length: n }, (_, i) => signToken(key, { sub: `auth0|${tag}-${i}`, jti: `${tag}-${i}` }));
}

/** The parts a bare signature check needs, split once outside any timed loop. */
export interface SplitToken {
  input: Buffer;
  signature: Buffer;
}

export function splitToken(token: string): SplitToken {
  const dot = token.lastIndexOf('.');
  return { input: Buffer.from(token.slice(0, dot)), signature: Buffer.from(token.slice(dot + 1), 'base64url') };
}

export { startJwksServer, type JwksServer } from '../../test/support/jwks-server.js';
