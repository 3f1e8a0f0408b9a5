import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import type { HttpClient } from '../../functions/core/http-client.js';
import { CredentialsError, UpstreamUnavailableError } from '../../functions/core/errors.js';
import { json, startScriptedServer, type ScriptedServer } from '../support/http-server.js';

let server: ScriptedServer;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
let client: HttpClient = fetch;
const endpoint = (overrides: Partial<ConstructorParameters<typeof OAuthTokenEndpoint>[0]> = {}) =>
  new OAuthTokenEndpoint(
    {
      tokenEndpoint: `${server.url}/oauth/token`,
      audience: 'https://api.test',
      audienceParam: 'audience',
      clientAuth: 'client_secret_post',
      // Generous: a loaded machine must never turn a good answer into a timeout.
      exchangeTimeoutMs: 30_000,
      defaultRetryAfterS: 5,
      ...overrides,
    },
    { now: () => NOW, fetch: client },
  );
const creds = { clientId: 'client one', clientSecret: 's3cret+/=:' };

beforeAll(async () => {
  server = await startScriptedServer((_req, res) => json(res, 200, { access_token: 'a.b.c', token_type: 'Bearer', expires_in: 86400 }));
});
afterAll(() => server.close());

async function failure(respond: ScriptedServer['respond'], overrides: Parameters<typeof endpoint>[0] = {}) {
  server.respond = respond;
  return endpoint(overrides)
    .exchange(creds)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

describe.each([
  ['global fetch', fetch as HttpClient],
  ['node:http client', nodeHttpClient],
])('OAuthTokenEndpoint over %s', (_name, httpClient) => {
  beforeEach(() => {
    client = httpClient;
  });

  it('posts a client-credentials form with client_secret_post and the audience', async () => {
    server.respond = (_req, res) => json(res, 200, { access_token: 'a.b.c', token_type: 'Bearer', expires_in: 86400 });
    expect(await endpoint().exchange(creds)).toEqual({ accessToken: 'a.b.c', expiresIn: 86400 });
    const req = server.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(req.body))).toEqual({
      grant_type: 'client_credentials',
      audience: 'https://api.test',
      client_id: 'client one',
      client_secret: 's3cret+/=:',
    });
  });

  it('uses client_secret_basic with form-encoded parts and resource= when configured', async () => {
    server.respond = (_req, res) => json(res, 200, { access_token: 'a.b.c', token_type: 'Bearer', expires_in: 60 });
    await endpoint({ clientAuth: 'client_secret_basic', audienceParam: 'resource' }).exchange(creds);
    const req = server.requests.at(-1)!;
    const decoded = Buffer.from(req.headers.authorization!.replace(/^Basic /, ''), 'base64').toString();
    expect(decoded).toBe('client+one:s3cret%2B%2F%3D%3A');
    expect(Object.fromEntries(new URLSearchParams(req.body))).toEqual({ grant_type: 'client_credentials', resource: 'https://api.test' });
  });

  it.each([
    [401, { error: 'access_denied', error_description: 'Unauthorized' }],
    [401, { error: 'invalid_client' }],
    [400, { error: 'invalid_client' }],
    [403, { error: 'unauthorized_client', error_description: 'Client is not authorized to access the API' }],
  ])('treats %i %j as rejected credentials', async (status, body) => {
    const err = await failure((_req, res) => json(res, status, body));
    expect(err).toBeInstanceOf(CredentialsError);
  });

  it('never blames the caller for a request the provider finds malformed (our configuration)', async () => {
    const err = await failure((_req, res) => json(res, 400, { error: 'invalid_request', error_description: 'Service not found: https://api.test' }));
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).code).toBe('ERR_TOKEN_REQUEST_REFUSED');
  });

  it('honours Auth0 rate-limit headers on 429', async () => {
    const reset = String(Math.floor(NOW / 1000) + 17);
    const err = await failure((_req, res) => json(res, 429, { error: 'too_many_requests' }, { 'x-ratelimit-limit': '30', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }));
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).retryAfterS).toBe(17);
    const err2 = await failure((_req, res) => json(res, 429, {}, { 'retry-after': '9' }));
    expect((err2 as UpstreamUnavailableError).retryAfterS).toBe(9);
  });

  it('answers unavailable for 5xx, timeouts, and answers without a token', async () => {
    expect(await failure((_req, res) => res.writeHead(502).end('bad gateway'))).toBeInstanceOf(UpstreamUnavailableError);
    // A server that never answers times out whatever the load, so a short timeout is safe here.
    const hang = await failure(() => undefined, { exchangeTimeoutMs: 300 });
    expect(hang).toBeInstanceOf(UpstreamUnavailableError);
    expect((hang as UpstreamUnavailableError).code).toBe('ERR_TOKEN_ENDPOINT_UNREACHABLE');
    expect(await failure((_req, res) => json(res, 200, { token_type: 'Bearer' }))).toBeInstanceOf(UpstreamUnavailableError);
    expect(await failure((_req, res) => res.writeHead(200).end('<html>'))).toBeInstanceOf(UpstreamUnavailableError);
  });
});
