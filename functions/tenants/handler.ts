/** Lambda entry point of tenant management; dependencies are built once per container. */
import { Logger } from '@aws-lambda-powertools/logger';
import { authorizerCacheFlusher } from '../adapters/authorizer-cache-flusher.js';
import { DynamoDbTenantStore } from '../adapters/dynamodb-tenant-store.js';
import { DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { idempotencyMiddleware } from '../adapters/idempotency.js';
import { identityProviderFrom } from '../adapters/identity-provider-factory.js';
import { systemClock } from '../core/clock.js';
import { KeyLifecycle } from '../core/key-lifecycle.js';
import { loadManagementConfig } from '../core/config.js';
import { createApiHandler } from '../http/api-handler.js';
import { UsageKeyProvisioner } from '../core/usage-plans.js';
import { ApiGatewayUsageKeys } from '../adapters/api-gateway-usage-keys.js';
import { DynamoDbUsageReader } from '../adapters/dynamodb-usage-reader.js';
import { createDocumentClient } from '../adapters/dynamodb-token-cache.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../adapters/dynamodb-deadline.js';
import { createTenantRoutes } from './routes.js';

const config = loadManagementConfig(process.env, { issuesKeys: true });
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-tenants', logLevel: config.logLevel as 'INFO' });

const store = new DynamoDbTenantStore({ tableName: config.tenantsTable });
const tokenCache = new DynamoDbTokenCache({ tableName: config.tokenCacheTable });

export const handler = createApiHandler({
  log,
  allowedOrigins: config.allowedOrigins,
  idempotency: config.idempotencyTable ? idempotencyMiddleware(config.idempotencyTable) : undefined,
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
    usageCounts: new DynamoDbUsageReader(config.tokenCacheTable, createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE)),
    usage: config.usagePlans
      ? {
          provisioner: new UsageKeyProvisioner({
            gateway: new ApiGatewayUsageKeys(),
            clock: systemClock,
            sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
            secret: config.usagePlans.secret,
            plans: config.usagePlans.plans,
            namePrefix: config.usagePlans.namePrefix,
          }),
          defaultPlan: config.usagePlans.defaultPlan,
        }
      : undefined,
  }),
});
