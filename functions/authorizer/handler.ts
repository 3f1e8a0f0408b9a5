/**
 * Lambda entry point: builds the real dependencies once per container, so warm invocations
 * reuse the key set, the verified-token cache and the API-key caches. The API-key path (and
 * with it the AWS SDK) is loaded on the first API-key request, so the JWT path's cold start
 * never pays for it.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { nodeHttpClient } from '../adapters/node-http-client.js';
import { Authenticator } from '../core/authenticate.js';
import { systemClock } from '../core/clock.js';
import { loadAuthorizerConfig } from '../core/config.js';
import { JwtVerifier } from '../core/jwt-verifier.js';
import { createAuthorizerHandler } from './create-handler.js';

const config = loadAuthorizerConfig(process.env);
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-authorizer', logLevel: config.logLevel as 'INFO' });
const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: nodeHttpClient });
verifier.jwks.prefetch();

async function loadApiKeys() {
  const [{ ApiKeyExchange }, { OAuthTokenEndpoint }, shared] = await Promise.all([
    import('../core/api-key-exchange.js'),
    import('../adapters/oauth-token-endpoint.js'),
    config.apiKey.tokenCacheTable
      ? import('../adapters/dynamodb-token-cache.js').then(({ DynamoDbTokenCache }) => new DynamoDbTokenCache({ tableName: config.apiKey.tokenCacheTable! }))
      : undefined,
  ]);
  return new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock: systemClock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { fetch: nodeHttpClient }),
    shared,
    log,
    singleFlightMs: config.decisionBudgetMs,
  });
}

export const handler = createAuthorizerHandler({
  authenticator: new Authenticator({ verifier, keyPrefix: config.apiKey.keyPrefix, apiKeys: loadApiKeys }),
  log,
  decisionBudgetMs: config.decisionBudgetMs,
});
