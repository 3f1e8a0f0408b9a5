/** The tenants function's side of the usage counts (`dynamodb-usage.ts`): a range of days of one tenant. */
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { realSleep, type Sleep } from '../core/clock.js';
import { UpstreamUnavailableError } from '../core/errors.js';
import type { UsageDay, UsageReader } from '../core/usage-counter.js';
import { SUBJECT_PREFIX, usagePk } from './dynamodb-usage.js';

/** Reads a tenant's days with `BatchGetItem` (100 keys a call), through the SDK's document client. */
export class DynamoDbUsageReader implements UsageReader {
  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBDocumentClient,
    private readonly sleep: Sleep = realSleep,
  ) {}

  async days(tenantId: string, days: readonly string[]): Promise<UsageDay[]> {
    const out: UsageDay[] = [];
    for (let i = 0; i < days.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = days.slice(i, i + 100).map((d) => ({ pk: usagePk(tenantId, d) }));
      for (let attempt = 0; keys && keys.length > 0 && attempt < 5; attempt++) {
        // Keys left unprocessed mean throttling: back off (25, 50, 100, 200 ms) before asking again.
        if (attempt > 0) await this.sleep(25 * 2 ** (attempt - 1));
        const res = await this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of res.Responses?.[this.tableName] ?? []) {
          const subjects = new Map<string, number>();
          for (const [k, v] of Object.entries(item)) if (k.startsWith(SUBJECT_PREFIX) && typeof v === 'number') subjects.set(k.slice(SUBJECT_PREFIX.length), v);
          out.push({ day: String(item.day), total: Number(item.total ?? 0), subjects });
        }
        keys = res.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
      if (keys && keys.length > 0) throw new UpstreamUnavailableError('ERR_DYNAMODB_THROTTLED', 'DynamoDB left usage days unprocessed (throttling)', 2);
    }
    return out.sort((a, b) => a.day.localeCompare(b.day));
  }
}
