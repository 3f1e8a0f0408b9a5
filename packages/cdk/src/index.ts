/**
 * `@latchkey/cdk`: attach the Latchkey authorizer (user JWTs, API keys, service tokens) to
 * REST and HTTP APIs. What this package exports is listed here and nowhere else.
 */
export {
  DEFAULT_REVOCATION_CHECK_INTERVAL,
  LatchkeyAuthorizer,
  MAX_REVOCATION_DELAY,
  type ILatchkeyAuthorizer,
  type LatchkeyAuthorizerAttributes,
  type LatchkeyAuthorizerCacheOptions,
  type LatchkeyAuthorizerFunctionOptions,
  type LatchkeyAuthorizerProps,
} from './latchkey-authorizer.js';
export { addProblemGatewayResponses, AUTHORIZER_RETRY_AFTER_S, FORBIDDEN_CHALLENGE, UNAUTHORIZED_CHALLENGE } from './gateway-responses.js';
