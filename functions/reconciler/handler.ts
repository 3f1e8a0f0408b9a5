/**
 * Scheduled (EventBridge, hourly): deletes identity-provider clients whose API key has no active
 * record (`KeyLifecycle.reconcileOrphans`), so a crash between the provider call and the registry
 * write never leaves a working client that nothing lists or revokes. Logs each deletion.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDbTenantStore } from '../adapters/dynamodb-tenant-store.js';
import { DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { identityProviderFrom } from '../adapters/identity-provider-factory.js';
import { systemClock } from '../core/clock.js';
import { loadManagementConfig } from '../core/config.js';
import { KeyLifecycle, type ReconcileReport } from '../core/key-lifecycle.js';

const config = loadManagementConfig(process.env, { issuesKeys: true });
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-reconciler', logLevel: config.logLevel as 'INFO' });
const store = new DynamoDbTenantStore({ tableName: config.tenantsTable });
const tokenCache = new DynamoDbTokenCache({ tableName: config.tokenCacheTable });

const keys = new KeyLifecycle({
  store,
  idp: identityProviderFrom(config, log),
  states: tokenCache,
  tokens: tokenCache,
  clock: systemClock,
  log,
  audience: config.audience,
  keyScopes: config.keyScopes,
});

export const handler = async (): Promise<ReconcileReport> => keys.reconcileOrphans();
