/**
 * Extracts the caller's credentials from request headers. Accepted forms:
 * - `Authorization: Bearer <JWT>`;
 * - `Authorization: Basic base64(client_id:client_secret)` (RFC 7617, RFC 6749 §2.3.1);
 * - a single-string API key (`lk_…`) in `X-Api-Key`, in `Authorization: Bearer`, or in
 *   `Authorization: Basic` as the user name (empty password) or the password (empty user).
 * Tokens in the query string are never read. Anything ambiguous is refused.
 */
import { looksLikeApiKey, parseApiKey, type ClientCredentials } from './api-key.js';
import { CredentialsError } from './errors.js';

export type Credentials =
  | { kind: 'bearer'; token: string }
  | ({ kind: 'client_credentials'; form: 'basic' | 'api_key' } & ClientCredentials);

/** Header values as API Gateway hands them over: single, multi-valued, any name case. */
export interface HeaderSource {
  headers?: Record<string, string | undefined> | null;
  multiValueHeaders?: Record<string, (string | undefined)[] | undefined> | null;
}

/** `<scheme> <token68>` (RFC 7235) in one pass: this runs on every request. */
const AUTHORIZATION = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*) *$/;
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_HEADER_LEN = 16 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const malformed = (code: string, message: string) => new CredentialsError(code, message, 'invalid_request');

/** All values of one header, whatever the case of its name and however API Gateway split them. */
export function headerValues(source: HeaderSource, name: string): string[] {
  const lower = name.toLowerCase();
  const multi = source.multiValueHeaders;
  const out: string[] = [];
  if (multi) {
    for (const key of Object.keys(multi)) {
      if (key.toLowerCase() !== lower) continue;
      for (const v of multi[key] ?? []) if (v !== undefined) out.push(v);
    }
    if (out.length > 0) return out;
  }
  const single = source.headers;
  if (single) {
    for (const key of Object.keys(single)) {
      const v = single[key];
      if (key.toLowerCase() === lower && v !== undefined) out.push(v);
    }
  }
  return out;
}

function oneHeader(source: HeaderSource, name: string): string | undefined {
  const values = headerValues(source, name);
  if (values.length > 1) throw malformed('ERR_DUPLICATE_HEADER', `more than one ${name} header`);
  const v = values[0];
  if (v === undefined) return undefined;
  if (v.length > MAX_HEADER_LEN) throw malformed('ERR_HEADER_TOO_LARGE', `${name} header is too large`);
  return v;
}

function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function apiKeyCredentials(prefix: string, key: string): Credentials {
  const parsed = parseApiKey(prefix, key);
  if (!parsed) throw new CredentialsError('ERR_API_KEY_MALFORMED', 'the API key is malformed', 'invalid_token');
  return { kind: 'client_credentials', form: 'api_key', ...parsed };
}

function basicCredentials(prefix: string, token: string): Credentials {
  if (!STRICT_BASE64.test(token)) throw malformed('ERR_BASIC_MALFORMED', 'Basic credentials are not valid base64');
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    throw malformed('ERR_BASIC_MALFORMED', 'Basic credentials are not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) throw malformed('ERR_BASIC_MALFORMED', 'Basic credentials have no colon');
  const user = formDecode(decoded.slice(0, colon));
  const pass = formDecode(decoded.slice(colon + 1));
  if (user === undefined || pass === undefined) throw malformed('ERR_BASIC_MALFORMED', 'Basic credentials are not form-url-encoded');
  if (pass === '' && looksLikeApiKey(prefix, user)) return apiKeyCredentials(prefix, user);
  if (user === '' && looksLikeApiKey(prefix, pass)) return apiKeyCredentials(prefix, pass);
  // A key in a field where it would be taken for a client id (and logged or stored as one): refuse before any lookup.
  if (looksLikeApiKey(prefix, user) || looksLikeApiKey(prefix, pass)) {
    throw malformed('ERR_BASIC_MALFORMED', 'send an API key alone, as the Basic user name with an empty password');
  }
  if (user === '' || pass === '') throw new CredentialsError('ERR_BASIC_EMPTY', 'Basic credentials need a client id and a secret', 'invalid_token');
  return { kind: 'client_credentials', form: 'basic', clientId: user, clientSecret: pass };
}

/**
 * Returns the request's credentials. Throws `CredentialsError` without an RFC 6750 code when
 * none were sent, and with one when they are malformed.
 */
export function extractCredentials(source: HeaderSource, keyPrefix: string): Credentials {
  const authorization = oneHeader(source, 'authorization');
  const apiKey = oneHeader(source, 'x-api-key');
  if (authorization !== undefined && apiKey !== undefined) {
    throw malformed('ERR_AMBIGUOUS_CREDENTIALS', 'send either Authorization or X-Api-Key, not both');
  }
  if (apiKey !== undefined) return apiKeyCredentials(keyPrefix, apiKey.trim());
  if (authorization === undefined || authorization.trim() === '') {
    throw new CredentialsError('ERR_NO_CREDENTIALS', 'no credentials were sent', null);
  }
  const match = AUTHORIZATION.exec(authorization.trim());
  if (!match) throw malformed('ERR_AUTHORIZATION_MALFORMED', 'Authorization must be "<scheme> <token68 credentials>"');
  const scheme = match[1]!.toLowerCase();
  const value = match[2]!;
  if (scheme === 'bearer') {
    if (looksLikeApiKey(keyPrefix, value)) return apiKeyCredentials(keyPrefix, value);
    return { kind: 'bearer', token: value };
  }
  if (scheme === 'basic') return basicCredentials(keyPrefix, value);
  throw malformed('ERR_UNSUPPORTED_SCHEME', `the ${scheme} scheme is not supported`);
}
