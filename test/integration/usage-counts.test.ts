/**
 * Usage counts against DynamoDB Local: the authorizer's sink (`UpdateItem … ADD` over the light
 * SigV4 client) and the tenants function's reader (SDK `BatchGetItem`) on the real table, where
 * `test/adapters/dynamodb-usage.test.ts` only sees the request the sink would send. The largest
 * batch the counter makes is accepted, two flushes add up, and the items stay out of the
 * principal-state feed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LightDynamoDbOptions } from '../../functions/adapters/dynamodb-light.js';
import { DynamoDbStateFeed } from '../../functions/adapters/dynamodb-state-feed.js';
import { createDocumentClient } from '../../functions/adapters/dynamodb-token-cache.js';
import { DynamoDbUsageSink } from '../../functions/adapters/dynamodb-usage.js';
import { DynamoDbUsageReader } from '../../functions/adapters/dynamodb-usage-reader.js';
import { USAGE_SUBJECTS_PER_WRITE, type UsageBatch } from '../../functions/core/usage-counter.js';
import { createTokenCacheTable, localLightDynamoDb } from '../support/tables.js';

let table: string;
let light: LightDynamoDbOptions;

beforeAll(async () => {
  table = await createTokenCacheTable('usage');
  light = localLightDynamoDb(table);
});

/** A batch of `subjects` keys with ids as long as Auth0 client ids get, one request each (or `n`). */
const batch = (tenantId: string, day: string, subjects: number, n = 1): UsageBatch => ({
  tenantId,
  day,
  total: subjects * n,
  subjects: new Map(Array.from({ length: subjects }, (_, i) => [`client-${String(i).padStart(58, 'x')}`, n])),
  lastAt: Date.parse(`${day}T12:00:00Z`),
});

describe('usage counts in the token-cache table', () => {
  it('takes the largest batch in one write; two flushes add up per key and in total; the reader reads them back by day', async () => {
    const sink = new DynamoDbUsageSink(light);
    const reader = new DynamoDbUsageReader(table, createDocumentClient());
    await sink.add(batch('acme', '2026-11-30', USAGE_SUBJECTS_PER_WRITE));
    await sink.add(batch('acme', '2026-11-30', USAGE_SUBJECTS_PER_WRITE, 2));
    await sink.add(batch('acme', '2026-12-01', 1, 5));
    await sink.add(batch('globex', '2026-11-30', 1, 7));
    const days = await reader.days('acme', ['2026-11-29', '2026-11-30', '2026-12-01']);
    expect(days.map((d) => [d.day, d.total, d.subjects.size])).toEqual([
      ['2026-11-30', 3 * USAGE_SUBJECTS_PER_WRITE, USAGE_SUBJECTS_PER_WRITE],
      ['2026-12-01', 5, 1],
    ]);
    expect([...days[0]!.subjects.values()].every((n) => n === 3)).toBe(true);
  });

  it('stays out of the state feed: a full sync reads no usage item', async () => {
    await new DynamoDbUsageSink(light).add(batch('initech', '2026-11-30', 3));
    const states = await new DynamoDbStateFeed(light).changesSince(undefined);
    expect(states).toEqual([]);
  });
});
