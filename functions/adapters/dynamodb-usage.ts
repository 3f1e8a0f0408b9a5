/**
 * Usage counts in the token-cache table: one item per tenant and UTC day,
 * `pk = usage#<tenant>#<yyyy-mm-dd>`, holding `total` and one number attribute per key or
 * client (`k#<key id or client id>`), all raised by one atomic `UpdateItem … ADD` per flush, with
 * `lastUsedAt` and a TTL of 400 days. No `feed` attribute, so the items stay out of the
 * state-feed index. The authorizer writes them with the same light SigV4 call as the state feed
 * (no AWS SDK on its JWT path); the tenants function reads them (`dynamodb-usage-reader.ts`).
 */
import { UsageNotAppliedError, type UsageBatch, type UsageSink } from '../core/usage-counter.js';
import { DynamoDbAnswerError, lightDynamoDb, type LightDynamoDbCall, type LightDynamoDbOptions } from './dynamodb-light.js';

export const USAGE_TTL_S = 400 * 86_400;
export const usagePk = (tenantId: string, day: string) => `usage#${tenantId}#${day}`;
/** Attribute of one key's (or client's) count. */
export const SUBJECT_PREFIX = 'k#';

export type DynamoDbUsageSinkOptions = LightDynamoDbOptions;

export class DynamoDbUsageSink implements UsageSink {
  readonly #tableName: string;
  readonly #call: LightDynamoDbCall;
  constructor(o: DynamoDbUsageSinkOptions) {
    this.#tableName = o.tableName;
    this.#call = lightDynamoDb(o);
  }

  async add(b: UsageBatch): Promise<void> {
    const names: Record<string, string> = { '#t': 'total', '#l': 'lastUsedAt', '#ttl': 'ttl', '#tn': 'tenantId', '#d': 'day' };
    const values: Record<string, unknown> = {
      ':t': { N: String(b.total) },
      ':l': { N: String(b.lastAt) },
      ':ttl': { N: String(Math.floor(b.lastAt / 1000) + USAGE_TTL_S) },
      ':tn': { S: b.tenantId },
      ':d': { S: b.day },
    };
    const adds = ['#t :t'];
    let i = 0;
    for (const [subject, n] of b.subjects) {
      names[`#s${i}`] = `${SUBJECT_PREFIX}${subject}`;
      values[`:s${i}`] = { N: String(n) };
      adds.push(`#s${i} :s${i}`);
      i++;
    }
    try {
      await this.#call('UpdateItem', {
        TableName: this.#tableName,
        Key: { pk: { S: usagePk(b.tenantId, b.day) } },
        UpdateExpression: `ADD ${adds.join(', ')} SET #l = :l, #ttl = :ttl, #tn = :tn, #d = :d`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
    } catch (err) {
      // A 4xx answer refused the write before applying it; after a 5xx (the request router's
      // own timeout among them) the ADD may have been applied, so it is not retried.
      if (err instanceof DynamoDbAnswerError && err.status < 500) throw new UsageNotAppliedError(err.message, { cause: err });
      throw err;
    }
  }
}
