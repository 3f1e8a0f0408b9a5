/**
 * Everything the authorizer loads only when needed (the API-key path with the AWS SDK, and the
 * audit adapter), behind one dynamic import: a bundle split at one point keeps the JWT path's
 * eager code in two files, where one `import()` per module made seven (each file read, compiled
 * and linked at every cold start).
 */
export { ApiKeyExchange } from '../core/api-key-exchange.js';
export { OAuthTokenEndpoint } from '../adapters/oauth-token-endpoint.js';
export { DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
export { DynamoDbAuditLog } from '../adapters/dynamodb-audit-log.js';
