/**
 * Lambda entry point: builds the real dependencies once per container, so warm invocations
 * reuse the key set, the verified-token cache and the API-key caches.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Authenticator } from '../core/authenticate.js';
import { systemClock } from '../core/clock.js';
import { loadAuthorizerConfig } from '../core/config.js';
import { JwtVerifier } from '../core/jwt-verifier.js';
import { createAuthorizerHandler } from './create-handler.js';

const config = loadAuthorizerConfig(process.env);
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-authorizer', logLevel: config.logLevel as 'INFO' });
const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock });

export const handler = createAuthorizerHandler({
  authenticator: new Authenticator({ verifier, keyPrefix: config.apiKey.keyPrefix }),
  log,
});
