/**
 * Lambda entry point of the state migration (`functions/adapters/state-migration.ts`), run by a
 * CDK trigger on every deployment before the authorizer's new code goes live.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../adapters/dynamodb-token-cache.js';
import { migrateToStateModel } from '../adapters/state-migration.js';
import { systemClock } from '../core/clock.js';
import { loadMigrationConfig } from '../core/config.js';

const config = loadMigrationConfig(process.env);
const log = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-migrate', logLevel: config.logLevel as 'INFO' });

export const handler = async () =>
  migrateToStateModel({
    tenantsTable: config.tenantsTable,
    tokenCacheTable: config.tokenCacheTable,
    states: new DynamoDbTokenCache({ tableName: config.tokenCacheTable, client: createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE) }),
    clock: systemClock,
    log,
  });
