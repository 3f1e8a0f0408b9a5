/** Lambda entry point of user management; dependencies are built once per container. */
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDbAuditLog } from '../adapters/dynamodb-audit-log.js';
import { DynamoDbTenantStore } from '../adapters/dynamodb-tenant-store.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { systemClock } from '../core/clock.js';
import { idempotencyMiddleware } from '../adapters/idempotency.js';
import { identityProviderFrom } from '../adapters/identity-provider-factory.js';
import { loadManagementConfig } from '../core/config.js';
import { createApiHandler } from '../http/api-handler.js';
import { createUserRoutes } from './routes.js';

const config = loadManagementConfig(process.env, { issuesKeys: false });
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-users', logLevel: config.logLevel as 'INFO' });

export const handler = createApiHandler({
  log,
  allowedOrigins: config.allowedOrigins,
  idempotency: config.idempotencyTable ? idempotencyMiddleware(config.idempotencyTable) : undefined,
  audit: config.auditTable ? { log: new DynamoDbAuditLog({ tableName: config.auditTable, clock: systemClock, retentionDays: config.auditRetentionDays }) } : undefined,
  routes: createUserRoutes({
    store: new DynamoDbTenantStore({ tableName: config.tenantsTable }),
    idp: identityProviderFrom(config, log),
    states: new DynamoDbTokenCache({ tableName: config.tokenCacheTable, client: createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE) }),
    clock: systemClock,
    log,
  }),
});
