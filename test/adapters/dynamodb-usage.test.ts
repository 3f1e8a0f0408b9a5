/**
 * The usage sink's one call: an `UpdateItem … ADD` that stays within DynamoDB's expression limit
 * for the largest batch the counter makes, and which answers count as "nothing applied" (retried
 * with the next flush) and which do not (dropped: a 5xx may follow an applied write).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbUsageSink } from '../../functions/adapters/dynamodb-usage.js';
import { DynamoDbUsageReader } from '../../functions/adapters/dynamodb-usage-reader.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import type { HttpClient } from '../../functions/core/http-client.js';
import { USAGE_SUBJECTS_PER_WRITE, UsageNotAppliedError, type UsageBatch } from '../../functions/core/usage-counter.js';

function sinkAnswering(status: number, body: unknown) {
  const sent: Record<string, unknown>[] = [];
  const http: HttpClient = async (_url, init) => {
    sent.push(JSON.parse(init!.body!) as Record<string, unknown>);
    const text = JSON.stringify(body);
    return { status, ok: status >= 200 && status < 300, headers: { get: () => null }, text: async () => text };
  };
  const sink = new DynamoDbUsageSink({
    tableName: 'cache',
    region: 'eu-west-1',
    credentials: () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' }),
    http,
    timeoutMs: 1000,
  });
  return { sink, sent };
}

const batch = (subjects: number): UsageBatch => ({
  tenantId: 'acme',
  day: '2026-11-30',
  total: subjects,
  subjects: new Map(Array.from({ length: subjects }, (_, i) => [`client-${String(i).padStart(58, 'x')}`, 1])),
  lastAt: Date.UTC(2026, 10, 30, 12),
});

describe('DynamoDbUsageSink', () => {
  it('keeps the update expression of the largest batch within 4 KB', async () => {
    const { sink, sent } = sinkAnswering(200, {});
    await sink.add(batch(USAGE_SUBJECTS_PER_WRITE));
    expect(Buffer.byteLength(String(sent[0]!.UpdateExpression))).toBeLessThan(4096);
  });

  it('retries what DynamoDB refused with a 4xx answer, and drops what a 5xx answer leaves unknown', async () => {
    const refused = await sinkAnswering(400, { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException' })
      .sink.add(batch(1))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UsageNotAppliedError);
    // DynamoDB's request router answers 500 when its storage node did not answer in time: the
    // write may have been applied, so adding it again could count it twice.
    for (const status of [500, 503]) {
      const unknown = await sinkAnswering(status, { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError' })
        .sink.add(batch(1))
        .catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(Error);
      expect(unknown).not.toBeInstanceOf(UsageNotAppliedError);
    }
  });
});

describe('DynamoDbUsageReader', () => {
  it('answers 503 (UpstreamUnavailableError), not 500, when DynamoDB keeps leaving days unprocessed (throttling)', async () => {
    let calls = 0;
    const client = {
      async send(command: { input: { RequestItems: Record<string, { Keys: unknown[] }> } }) {
        calls++;
        return { Responses: { cache: [] }, UnprocessedKeys: command.input.RequestItems };
      },
    } as unknown as DynamoDBDocumentClient;
    // The back-off is stepped, not slept: no real time passes.
    const sleeps: number[] = [];
    const err = await new DynamoDbUsageReader('cache', client, async (ms) => void sleeps.push(ms)).days('acme', ['2026-11-29', '2026-11-30']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect(calls).toBeGreaterThan(1);
    expect(sleeps).toEqual([25, 50, 100, 200]);
  });
});
