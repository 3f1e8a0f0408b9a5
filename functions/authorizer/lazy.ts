/**
 * Everything the authorizer loads only when needed (the API-key path with the AWS SDK, and the
 * audit adapter), behind one dynamic import: one `import()` per module made seven files of the
 * JWT path's eager code (each read, compiled and linked at every cold start); with one split point
 * and the shared chunks merged into the entry (`infra/bundling.ts`), it is one.
 */
export { ApiKeyExchange } from '../core/api-key-exchange.js';
export { OAuthTokenEndpoint } from '../adapters/oauth-token-endpoint.js';
export { DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
export { DynamoDbAuditLog } from '../adapters/dynamodb-audit-log.js';
