/**
 * The principal-state feed read by the authorizer on every path, the JWT path included: one
 * DynamoDB `Query` on the state index (and point reads before a long first sync), over the
 * authorizer's small DynamoDB client (`dynamodb-light.ts`, no AWS SDK). The few attribute
 * types of a state item are unmarshalled here.
 */
import type { PrincipalRef, PrincipalState, PrincipalStateFeed } from '../core/principal-state.js';
import { lightDynamoDb, type LightDynamoDbCall, type LightDynamoDbOptions } from './dynamodb-light.js';
import { STATE_FEED_PAGE, STATE_FEED_QUERY, statesByKeys, toPrincipalState } from './dynamodb-state-items.js';

export type DynamoDbStateFeedOptions = LightDynamoDbOptions;

type AttributeValue = { S?: string; N?: string; BOOL?: boolean; NULL?: boolean; L?: AttributeValue[]; M?: Record<string, AttributeValue> };

/** DynamoDB JSON to plain values, for the types state items use (strings, numbers, booleans, lists, maps). */
function fromAttribute(v: AttributeValue): unknown {
  if (v.S !== undefined) return v.S;
  if (v.N !== undefined) return Number(v.N);
  if (v.BOOL !== undefined) return v.BOOL;
  if (v.L !== undefined) return v.L.map(fromAttribute);
  if (v.M !== undefined) return unmarshallItem(v.M);
  return undefined;
}

function unmarshallItem(item: Record<string, AttributeValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) out[k] = fromAttribute(v);
  return out;
}

export class DynamoDbStateFeed implements PrincipalStateFeed {
  readonly #o: DynamoDbStateFeedOptions;
  readonly #call: LightDynamoDbCall;

  constructor(opts: DynamoDbStateFeedOptions) {
    this.#o = opts;
    this.#call = lightDynamoDb(opts);
  }

  async changesSince(sinceMs: number | undefined, onMorePages?: () => void): Promise<PrincipalState[]> {
    const states: PrincipalState[] = [];
    let start: unknown;
    do {
      const out = (await this.#call('Query', {
        TableName: this.#o.tableName,
        ...STATE_FEED_QUERY(sinceMs, 'wire'),
        Limit: STATE_FEED_PAGE,
        ...(start ? { ExclusiveStartKey: start } : {}),
      })) as { Items?: Record<string, AttributeValue>[]; LastEvaluatedKey?: unknown };
      for (const item of out.Items ?? []) {
        const state = toPrincipalState(unmarshallItem(item));
        if (state) states.push(state);
      }
      start = out.LastEvaluatedKey;
      if (start) onMorePages?.();
    } while (start);
    return states;
  }

  statesOf(keys: readonly PrincipalRef[]): Promise<PrincipalState[]> {
    type Key = { pk: { S: string } };
    return statesByKeys(keys, (pk): Key => ({ pk: { S: pk } }), async (request) => {
      const out = (await this.#call('BatchGetItem', { RequestItems: { [this.#o.tableName]: { Keys: request, ConsistentRead: true } } })) as {
        Responses?: Record<string, Record<string, AttributeValue>[]>;
        UnprocessedKeys?: Record<string, { Keys?: Key[] }>;
      };
      return { items: (out.Responses?.[this.#o.tableName] ?? []).map(unmarshallItem), unprocessed: out.UnprocessedKeys?.[this.#o.tableName]?.Keys ?? [] };
    });
  }
}
