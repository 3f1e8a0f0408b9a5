/**
 * Brings what the previous version of Latchkey left in its tables into the principal-state
 * model, so an upgrade keeps every deployed key and revocation meaning what it meant:
 * - every key in the registry gets its client's state item (`active` with its tenant and key id,
 *   or `revoked` from its `revokedAt`), which the authorizer now requires before any exchange;
 * - every revocation marker or not-before the previous version wrote on a `client#` item joins
 *   the state feed, so the authorizer refuses that key's own bearer tokens too.
 * Idempotent: an item that is already in the model is left alone. Run by the stack on every
 * deployment, before the new authorizer code (a CDK trigger), and callable from tests.
 */
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { PrincipalState } from '../core/principal-state.js';
import { toPrincipalState } from './dynamodb-state-items.js';
import { MANAGEMENT_DYNAMODB_DEADLINE } from './dynamodb-deadline.js';
import { createDocumentClient, type DynamoDbTokenCache } from './dynamodb-token-cache.js';

export interface StateMigrationDeps {
  tenantsTable: string;
  tokenCacheTable: string;
  states: DynamoDbTokenCache;
  clock: Clock;
  log: Log;
  client?: DynamoDBDocumentClient;
}

export interface MigrationReport {
  keysRecorded: number;
  markersJoined: number;
}

async function* scan(db: DynamoDBDocumentClient, input: ConstructorParameters<typeof ScanCommand>[0]): AsyncGenerator<Record<string, unknown>> {
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db.send(new ScanCommand({ ...input, ExclusiveStartKey: start }));
    for (const item of out.Items ?? []) yield item;
    start = out.LastEvaluatedKey;
  } while (start);
}

export async function migrateToStateModel(d: StateMigrationDeps): Promise<MigrationReport> {
  // A deploy-time job: the management functions' deadlines, not the authorizer's.
  const db = d.client ?? createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE);
  const report: MigrationReport = { keysRecorded: 0, markersJoined: 0 };
  const now = d.clock.now();

  for await (const k of scan(db, {
    TableName: d.tenantsTable,
    FilterExpression: 'begins_with(sk, :key)',
    ExpressionAttributeValues: { ':key': 'key#' },
  })) {
    if (typeof k.clientId !== 'string' || typeof k.tenantId !== 'string' || typeof k.keyId !== 'string') continue;
    const existing = await d.states.getState('client', k.clientId);
    if (existing?.keyId !== undefined && existing.changedAt > 0) continue;
    const revoked = k.status === 'revoked';
    const revokedAt = typeof k.revokedAt === 'string' ? Date.parse(k.revokedAt) : NaN;
    const state: PrincipalState = {
      kind: 'client',
      id: k.clientId,
      status: revoked || existing?.status === 'revoked' ? 'revoked' : 'active',
      revokedAt: revoked ? (Number.isFinite(revokedAt) ? revokedAt : (existing?.revokedAt ?? 0)) : (existing?.revokedAt ?? 0),
      notBefore: existing?.notBefore ?? 0,
      changedAt: existing?.changedAt || now,
      tenantId: k.tenantId,
      keyId: k.keyId,
    };
    await d.states.putState(state);
    report.keysRecorded++;
  }

  for await (const item of scan(db, {
    TableName: d.tokenCacheTable,
    FilterExpression: 'begins_with(pk, :client) AND attribute_not_exists(feed)',
    ExpressionAttributeValues: { ':client': 'client#' },
  })) {
    const state = toPrincipalState(item);
    if (!state) continue;
    await d.states.putState({ ...state, changedAt: state.changedAt || now });
    report.markersJoined++;
  }
  d.log.info('state migration done', { ...report });
  return report;
}
