/**
 * `@latchkey/cdk`: attach the Latchkey authorizer (user JWTs, API keys, service tokens) to
 * REST and HTTP APIs. What this package exports is listed here and nowhere else.
 */
export {
  DEFAULT_REVOCATION_CHECK_INTERVAL,
  LatchkeyAuthorizer,
  MAX_REVOCATION_DELAY,
  STATE_FEED_ATTRIBUTES,
  STATE_FEED_INDEX,
  type ILatchkeyAuthorizer,
  type LatchkeyAuthorizerAttributes,
  type LatchkeyAuthorizerCacheOptions,
  type LatchkeyAuthorizerFunctionOptions,
  type LatchkeyAuthorizerProps,
} from './latchkey-authorizer.js';
export { addProblemGatewayResponses, AUTHORIZER_RETRY_AFTER_S, UNAUTHORIZED_CHALLENGE } from './gateway-responses.js';
