/**
 * PROTOTYPE entry for the cold-start benchmark only: functions/authorizer/handler.ts with one
 * change, the key set fetched with node:http(s) instead of global fetch (see node-http-fetch.ts).
 * Everything else, the lazily loaded API-key path included, is as in the real entry.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { systemClock } from '../../functions/core/clock.js';
import { loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { nodeHttpFetch } from './node-http-fetch.js';

const config = loadAuthorizerConfig(process.env);
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-authorizer', logLevel: config.logLevel as 'INFO' });
const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: nodeHttpFetch });

async function loadApiKeys() {
  const [{ ApiKeyExchange }, { OAuthTokenEndpoint }, shared] = await Promise.all([
    import('../../functions/core/api-key-exchange.js'),
    import('../../functions/adapters/oauth-token-endpoint.js'),
    config.apiKey.tokenCacheTable
      ? import('../../functions/adapters/dynamodb-token-cache.js').then(({ DynamoDbTokenCache }) => new DynamoDbTokenCache({ tableName: config.apiKey.tokenCacheTable! }))
      : undefined,
  ]);
  return new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock: systemClock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey),
    shared,
    log,
  });
}

export const handler = createAuthorizerHandler({
  authenticator: new Authenticator({ verifier, keyPrefix: config.apiKey.keyPrefix, apiKeys: loadApiKeys }),
  log,
});
