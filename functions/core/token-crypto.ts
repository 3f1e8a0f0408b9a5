/**
 * What makes the shared token cache safe to dump: items are found by a hash of the
 * credentials and hold the token encrypted with a key derived from the secret, so a copy of
 * the table yields neither the secret nor a usable token. The secrets are high-entropy
 * machine secrets, so a fast hash is the right tool (a slow password hash would add
 * milliseconds per request and no security).
 */
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto';
import type { ClientCredentials } from './api-key.js';

/** Hex SHA-256 of the credentials, domain-separated from every other use of the secret. */
export function credentialsCacheKey(creds: ClientCredentials): string {
  return hash('sha256', `latchkey/cache-key/v1\u0000${creds.clientId}\u0000${creds.clientSecret}`, 'hex');
}

function encryptionKey(creds: ClientCredentials): Buffer {
  return Buffer.from(hkdfSync('sha256', creds.clientSecret, creds.clientId, 'latchkey/token-encryption/v1', 32));
}

/** AES-256-GCM; the cache key is bound as additional data so a sealed token cannot be moved to another item. */
export function sealToken(creds: ClientCredentials, cacheKey: string, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(creds), iv);
  cipher.setAAD(Buffer.from(cacheKey));
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** `undefined` when the blob was not sealed with these credentials for this key, or was altered. */
export function openToken(creds: ClientCredentials, cacheKey: string, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 12 + 16 + 1) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey(creds), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(cacheKey));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
