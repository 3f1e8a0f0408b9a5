/** Lambda entry point of tenant management; dependencies are built once per container. */
import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { authorizerCacheFlusher } from '../adapters/authorizer-cache-flusher.js';
import { DynamoDbAuditLog } from '../adapters/dynamodb-audit-log.js';
import { createAuditRoutes } from '../audit/routes.js';
import { DynamoDbTenantStore } from '../adapters/dynamodb-tenant-store.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { idempotencyMiddleware } from '../adapters/idempotency.js';
import { identityProviderFrom } from '../adapters/identity-provider-factory.js';
import { systemClock } from '../core/clock.js';
import { KeyLifecycle } from '../core/key-lifecycle.js';
import { onFirstUse } from '../core/once.js';
import { loadManagementConfig } from '../core/config.js';
import { createApiHandler } from '../http/api-handler.js';
import { deployedProvisioner, type UsageKeyGateway } from '../core/usage-plans.js';
import type { UsageReader } from '../core/usage-counter.js';
import { createTenantRoutes } from './routes.js';

const config = loadManagementConfig(process.env, { issuesKeys: true });
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-tenants', logLevel: config.logLevel as 'INFO' });

const store = new DynamoDbTenantStore({ tableName: config.tenantsTable });
const db = createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE);
const tokenCache = new DynamoDbTokenCache({ tableName: config.tokenCacheTable, client: db });
const audit = config.auditTable ? new DynamoDbAuditLog({ tableName: config.auditTable, clock: systemClock, retentionDays: config.auditRetentionDays }) : undefined;

export const handler = createApiHandler({
  log,
  allowedOrigins: config.allowedOrigins,
  idempotency: config.idempotencyTable ? idempotencyMiddleware(config.idempotencyTable) : undefined,
  audit: audit ? { log: audit } : undefined,
  routes: createTenantRoutes({
    store,
    keys: new KeyLifecycle({
      store,
      idp: identityProviderFrom(config, log),
      states: tokenCache,
      tokens: tokenCache,
      flushAuthorizerCache: config.restApiId && config.stageName ? authorizerCacheFlusher(config.restApiId, config.stageName) : undefined,
      clock: systemClock,
      log,
      audience: config.audience,
      keyScopes: config.keyScopes,
    }),
    clock: systemClock,
    keyPrefix: config.keyPrefix,
    usageCounts: lazyUsageReader(config.tokenCacheTable, db),
    usage: config.usagePlans
      ? {
          provisioner: deployedProvisioner(config.usagePlans, lazyUsageKeys()),
          defaultPlan: config.usagePlans.defaultPlan,
        }
      : undefined,
  }).concat(audit ? createAuditRoutes({ audit }) : []),
});

/** The API Gateway SDK is loaded on the first key change, not at cold start. */
function lazyUsageKeys(): UsageKeyGateway {
  const gateway = onFirstUse(() => import('../adapters/api-gateway-usage-keys.js').then(({ ApiGatewayUsageKeys }) => new ApiGatewayUsageKeys()));
  return {
    findPlan: async (name) => (await gateway()).findPlan(name),
    findKey: async (name, value) => (await gateway()).findKey(name, value),
    createKey: async (name, value) => (await gateway()).createKey(name, value),
    attachKey: async (planId, keyId) => (await gateway()).attachKey(planId, keyId),
    detachKey: async (planId, keyId) => (await gateway()).detachKey(planId, keyId),
    deleteKey: async (keyId) => (await gateway()).deleteKey(keyId),
    usage: async (planId, keyId, from, to) => (await gateway()).usage(planId, keyId, from, to),
  };
}

/** The usage reader is loaded on the first usage request; it shares the token cache's client (same table). */
function lazyUsageReader(tableName: string, client: DynamoDBDocumentClient): UsageReader {
  const reader = onFirstUse(() => import('../adapters/dynamodb-usage-reader.js').then(({ DynamoDbUsageReader }) => new DynamoDbUsageReader(tableName, client)));
  return { days: async (tenantId, days) => (await reader()).days(tenantId, days) };
}
