import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuthorizerHandler, AuthorizerUnavailableError } from '../../functions/authorizer/create-handler.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { loadJwtConfig } from '../../functions/core/config.js';
import type { Log } from '../../functions/core/log.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { ManualClock } from '../support/clock.js';
import { restEvent } from '../support/events.js';
import { startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { AUDIENCE, ISSUER, makeKey, signToken, type TestKey } from '../support/keys.js';


function httpEvent(headers: Record<string, string>): APIGatewayRequestAuthorizerEventV2 {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:eu-west-1:123456789012:xyz789/$default/GET/orders',
    identitySource: [],
    routeKey: 'GET /orders',
    rawPath: '/orders',
    rawQueryString: '',
    cookies: [],
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    requestContext: {} as APIGatewayRequestAuthorizerEventV2['requestContext'],
  };
}

let key: TestKey;
let jwks: JwksServer;
let clock: ManualClock;
const lines: { message: string; attrs: Record<string, unknown> }[] = [];
const log: Log = {
  debug: (message, ...a) => lines.push({ message, attrs: Object.assign({}, ...a) }),
  info: (message, ...a) => lines.push({ message, attrs: Object.assign({}, ...a) }),
  warn: (message, ...a) => lines.push({ message, attrs: Object.assign({}, ...a) }),
  error: (message, ...a) => lines.push({ message, attrs: Object.assign({}, ...a) }),
};
let handler: ReturnType<typeof createAuthorizerHandler>;

beforeAll(async () => {
  key = await makeKey('k1');
  jwks = await startJwksServer([key.publicJwk]);
});
afterAll(() => jwks.close());
// A fresh container for each case: no key set, cooldown or cache carried from one case to the next.
beforeEach(() => {
  jwks.mode = 'ok';
  clock = new ManualClock();
  const config = loadJwtConfig({ ISSUER, AUDIENCE, JWKS_URI: jwks.uri });
  handler = createAuthorizerHandler({ authenticator: new Authenticator({ verifier: new JwtVerifier({ config, clock }), keyPrefix: 'lk' }), log });
});

describe('REST REQUEST authorizer', () => {
  it('allows the whole API and hands the caller to the handlers as context', async () => {
    const token = await signToken(key, {}, { now: clock.seconds });
    const result = await handler(restEvent({ Authorization: `Bearer ${token}` }));
    expect(result).toEqual({
      principalId: 'auth0|user-1',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/*/*' }],
      },
      context: { tenantId: 'acme', userId: 'auth0|user-1', clientId: 'spa-client', roles: 'tenant:admin', scopes: '', authMethod: 'jwt', keyId: '' },
    });
  });

  it('answers 401 (Unauthorized) for missing and invalid credentials, and never logs them', async () => {
    await expect(handler(restEvent({}))).rejects.toThrow(/^Unauthorized$/);
    const bad = await signToken(key, { aud: 'https://elsewhere.test' }, { now: clock.seconds });
    await expect(handler(restEvent({ authorization: `Bearer ${bad}` }))).rejects.toThrow(/^Unauthorized$/);
    const logged = JSON.stringify(lines);
    expect(logged).toContain('ERR_JWT_CLAIM_AUD');
    expect(logged).not.toContain(bad.split('.')[2]);
  });

  it('answers an authorizer failure, not 401, when the key set cannot be fetched', async () => {
    const other = await makeKey('k-new');
    jwks.mode = 'down';
    try {
      const token = await signToken(other, {}, { now: clock.seconds });
      await expect(handler(restEvent({ Authorization: `Bearer ${token}` }))).rejects.toBeInstanceOf(AuthorizerUnavailableError);
    } finally {
      jwks.mode = 'ok';
    }
  });
});

describe('HTTP API (payload 2.0) authorizer', () => {
  it('returns a simple response with the same context', async () => {
    const token = await signToken(key, {}, { now: clock.seconds });
    const result = await handler(httpEvent({ Authorization: `Bearer ${token}` }));
    expect(result).toEqual({
      isAuthorized: true,
      context: { tenantId: 'acme', userId: 'auth0|user-1', clientId: 'spa-client', roles: 'tenant:admin', scopes: '', authMethod: 'jwt', keyId: '' },
    });
  });

  it('refuses invalid credentials with isAuthorized false', async () => {
    expect(await handler(httpEvent({ authorization: 'Bearer x.y.z' }))).toEqual({ isAuthorized: false, context: {} });
  });
});
