/**
 * Single-string API keys: `<prefix>_<payload><checksum>`.
 *
 * The payload is base64url(`client_id:client_secret`) so one string carries both halves of
 * the client credentials; the checksum (CRC32 of everything before it, 6 base62 characters)
 * lets secret scanners and our own parser tell a real key from a typo without any lookup,
 * in the manner of GitHub's token format.
 */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const CHECKSUM_LEN = 6;
const MAX_KEY_LEN = 1024;
const B64URL = /^[A-Za-z0-9_-]+$/;

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function checksum(body: string): string {
  // node:zlib is loaded on the first key, not at import: a bearer token's cold start never needs it.
  return base62(process.getBuiltinModule('node:zlib').crc32(body), CHECKSUM_LEN);
}

/** Builds the single-string form of a client's credentials. */
export function formatApiKey(prefix: string, creds: ClientCredentials): string {
  if (creds.clientId.includes(':')) throw new Error('client id must not contain ":"');
  const payload = Buffer.from(`${creds.clientId}:${creds.clientSecret}`, 'utf8').toString('base64url');
  const body = `${prefix}_${payload}`;
  return body + checksum(body);
}

/** True when the string claims to be a key of this prefix (it may still be malformed). */
export function looksLikeApiKey(prefix: string, value: string): boolean {
  return value.startsWith(`${prefix}_`);
}

/** Parses a single-string key; `undefined` for anything malformed or with a wrong checksum. */
export function parseApiKey(prefix: string, key: string): ClientCredentials | undefined {
  if (key.length > MAX_KEY_LEN || !looksLikeApiKey(prefix, key)) return undefined;
  const rest = key.slice(prefix.length + 1);
  if (rest.length <= CHECKSUM_LEN) return undefined;
  const payload = rest.slice(0, -CHECKSUM_LEN);
  const sum = rest.slice(-CHECKSUM_LEN);
  if (!B64URL.test(payload) || checksum(`${prefix}_${payload}`) !== sum) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(payload, 'base64url'));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return undefined;
  return { clientId: decoded.slice(0, colon), clientSecret: decoded.slice(colon + 1) };
}
