import { describe, expect, it } from 'vitest';
import { formatApiKey, parseApiKey } from '../../functions/core/api-key.js';
import { extractCredentials, type HeaderSource } from '../../functions/core/credentials.js';
import { CredentialsError } from '../../functions/core/errors.js';

const creds = (headers: Record<string, string>) => extractCredentials({ headers }, 'lk');
const basic = (s: string) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;

function refused(source: HeaderSource, code: string, bearerError: string | null = 'invalid_request') {
  try {
    extractCredentials(source, 'lk');
  } catch (err) {
    expect(err).toBeInstanceOf(CredentialsError);
    expect((err as CredentialsError).code).toBe(code);
    expect((err as CredentialsError).bearerError).toBe(bearerError ?? undefined);
    return;
  }
  throw new Error('expected a CredentialsError');
}

describe('API key format', () => {
  const key = formatApiKey('lk', { clientId: 'AbC123xyz', clientSecret: 's3cr3t-_/+:with colon' });

  it('round-trips client id and secret (the secret may contain colons)', () => {
    expect(key).toMatch(/^lk_[A-Za-z0-9_-]+$/);
    expect(parseApiKey('lk', key)).toEqual({ clientId: 'AbC123xyz', clientSecret: 's3cr3t-_/+:with colon' });
  });

  it('detects a typo through the checksum', () => {
    const i = 10;
    const typo = key.slice(0, i) + (key[i] === 'A' ? 'B' : 'A') + key.slice(i + 1);
    expect(parseApiKey('lk', typo)).toBeUndefined();
    expect(parseApiKey('lk', key.slice(0, -1))).toBeUndefined();
    expect(parseApiKey('xx', key)).toBeUndefined();
  });
});

describe('extractCredentials', () => {
  it('reads a bearer token whatever the case of header name and scheme', () => {
    expect(creds({ authorization: 'bearer abc.def.ghi' })).toEqual({ kind: 'bearer', token: 'abc.def.ghi' });
    expect(creds({ AUTHORIZATION: 'BEARER abc.def.ghi' })).toEqual({ kind: 'bearer', token: 'abc.def.ghi' });
  });

  it('reads Basic client credentials, form-url-decoding both parts', () => {
    expect(creds({ Authorization: basic('my%20client:p%40ss+word%3A') })).toEqual({
      kind: 'client_credentials',
      form: 'basic',
      clientId: 'my client',
      clientSecret: 'p@ss word:',
    });
    expect(creds({ Authorization: basic('id:sec:ret') })).toMatchObject({ clientId: 'id', clientSecret: 'sec:ret' });
  });

  it('reads a single-string key from X-Api-Key, Bearer and Basic (user or password)', () => {
    const key = formatApiKey('lk', { clientId: 'cid', clientSecret: 'secret' });
    const expected = { kind: 'client_credentials', form: 'api_key', clientId: 'cid', clientSecret: 'secret' };
    expect(creds({ 'x-api-key': key })).toEqual(expected);
    expect(creds({ Authorization: `Bearer ${key}` })).toEqual(expected);
    expect(creds({ Authorization: basic(`${key}:`) })).toEqual(expected);
    expect(creds({ Authorization: basic(`:${key}`) })).toEqual(expected);
  });

  it('says no error code when nothing was sent, and ignores the query string', () => {
    refused({ headers: {} }, 'ERR_NO_CREDENTIALS', null);
    refused({ headers: null }, 'ERR_NO_CREDENTIALS', null);
    refused({ headers: { authorization: '  ' } }, 'ERR_NO_CREDENTIALS', null);
    const withQuery = { headers: {}, queryStringParameters: { access_token: 'abc.def.ghi' } } as HeaderSource;
    refused(withQuery, 'ERR_NO_CREDENTIALS', null);
  });

  it('refuses two Authorization values, in any form API Gateway delivers them', () => {
    refused({ multiValueHeaders: { Authorization: ['Bearer a.b.c', 'Bearer d.e.f'] } }, 'ERR_DUPLICATE_HEADER');
    refused({ headers: { Authorization: 'Bearer a.b.c', authorization: 'Bearer d.e.f' } }, 'ERR_DUPLICATE_HEADER');
    // HTTP APIs join repeated headers with a comma.
    refused({ headers: { authorization: 'Bearer a.b.c,Bearer d.e.f' } }, 'ERR_AUTHORIZATION_MALFORMED');
  });

  it('refuses both headers at once, empty tokens and unknown schemes', () => {
    refused({ headers: { authorization: 'Bearer a.b.c', 'x-api-key': 'lk_x' } }, 'ERR_AMBIGUOUS_CREDENTIALS');
    refused({ headers: { authorization: 'Bearer' } }, 'ERR_AUTHORIZATION_MALFORMED');
    refused({ headers: { authorization: 'Bearer ' } }, 'ERR_AUTHORIZATION_MALFORMED');
    refused({ headers: { authorization: 'Digest abc' } }, 'ERR_UNSUPPORTED_SCHEME');
    refused({ headers: { authorization: 'Bearer a b' } }, 'ERR_AUTHORIZATION_MALFORMED');
  });

  it('refuses malformed Basic credentials without guessing', () => {
    refused({ headers: { authorization: 'Basic !!!' } }, 'ERR_AUTHORIZATION_MALFORMED');
    refused({ headers: { authorization: 'Basic Zm9v' } }, 'ERR_BASIC_MALFORMED'); // "foo": no colon
    refused({ headers: { authorization: 'Basic Zm9vOmJhcg' } }, 'ERR_BASIC_MALFORMED'); // missing padding
    refused({ headers: { authorization: `Basic ${Buffer.from([0x66, 0x3a, 0xff]).toString('base64')}` } }, 'ERR_BASIC_MALFORMED'); // not UTF-8
    refused({ headers: { authorization: basic('id:%zz') } }, 'ERR_BASIC_MALFORMED');
    refused({ headers: { authorization: basic(':secret') } }, 'ERR_BASIC_EMPTY', 'invalid_token');
    refused({ headers: { authorization: basic('id:') } }, 'ERR_BASIC_EMPTY', 'invalid_token');
  });

  it('refuses a malformed single-string key as an invalid token', () => {
    refused({ headers: { 'x-api-key': 'lk_notavalidkey' } }, 'ERR_API_KEY_MALFORMED', 'invalid_token');
  });
});
