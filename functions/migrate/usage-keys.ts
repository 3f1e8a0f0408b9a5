/**
 * Lambda entry point of the usage-key backfill (`backfillUsageKeys` in functions/core/usage-plans.ts),
 * run by a CDK trigger once the usage plans exist (at creation, and whenever this function changes:
 * CDK triggers do not run on deployments that leave their function unchanged) and hourly by an
 * EventBridge rule: tenants created before usage plans get their API Gateway key on the default
 * plan without a call per tenant, each run going on from where the last stopped.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ApiGatewayUsageKeys } from '../adapters/api-gateway-usage-keys.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../adapters/dynamodb-deadline.js';
import { DynamoDbTenantStore } from '../adapters/dynamodb-tenant-store.js';
import { createDocumentClient, DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { systemClock } from '../core/clock.js';
import { loadUsageKeyBackfillConfig } from '../core/config.js';
import { isTenantDeleted } from '../core/principal-state.js';
import { backfillUsageKeys, deployedProvisioner } from '../core/usage-plans.js';

const config = loadUsageKeyBackfillConfig(process.env);
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-usage-keys', logLevel: config.logLevel as 'INFO' });
/** The trigger's timeout is 15 minutes; new tenants stop being started 2 minutes before it. */
const BUDGET_MS = 13 * 60_000;

export const handler = async () => {
  const db = createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE);
  const states = new DynamoDbTokenCache({ tableName: config.tokenCacheTable, client: db });
  const report = await backfillUsageKeys({
    tenants: new DynamoDbTenantStore({ tableName: config.tenantsTable, client: db }),
    provisioner: deployedProvisioner(config.usagePlans, new ApiGatewayUsageKeys()),
    defaultPlan: config.usagePlans.defaultPlan,
    isDeleted: async (tenantId) => isTenantDeleted(await states.getState('tenant', tenantId)),
    clock: systemClock,
    log,
    budgetMs: BUDGET_MS,
  });
  // A tenant that failed is left for the next deployment (or PATCH {plan}): the deployment goes on.
  return { examined: report.examined, provisioned: report.provisioned, failed: report.failed.length, complete: report.complete };
};
