/**
 * RS256 signing keys, generated in memory at start (never written anywhere). The key id is
 * the RFC 7638 thumbprint, so it changes exactly when the key does.
 */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';

const generate = promisify(generateKeyPair);

export interface SigningKey {
  kid: string;
  /** Private JWK as oidc-provider's `jwks` setting wants it. */
  privateJwk: JWK;
}

export async function newSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generate('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint({ kty: 'RSA', e: jwk.e, n: jwk.n });
  return { kid, privateJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}
