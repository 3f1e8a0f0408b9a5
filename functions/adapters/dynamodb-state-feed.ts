/**
 * The principal-state feed read by the authorizer on every path, the JWT path included: one
 * DynamoDB `Query` on the state index, signed with SigV4 (`sigv4.ts`, on `node:crypto`) and
 * sent with the authorizer's `node:http` client. The AWS SDK's DynamoDB
 * client, and even Smithy's own signer (which brings `@smithy/core`), would add tens of
 * milliseconds to every cold start of the JWT path; the SDK stays a lazy chunk of the API-key
 * path. The few attribute types of a state item are unmarshalled here.
 */
import type { HttpClient } from '../core/http-client.js';
import type { PrincipalRef, PrincipalState, PrincipalStateFeed } from '../core/principal-state.js';
import { signRequest } from './sigv4.js';
import { STATE_FEED_PAGE, STATE_FEED_QUERY, statesByKeys, toPrincipalState } from './dynamodb-state-items.js';

export interface DynamoDbStateFeedOptions {
  tableName: string;
  region: string;
  /** `AWS_ENDPOINT_URL_DYNAMODB` locally; the regional endpoint by default. */
  endpoint?: string | undefined;
  credentials: () => { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
  http: HttpClient;
  timeoutMs: number;
  /** Signing time (epoch ms); the system clock by default. */
  now?: () => number;
}

/** Credentials as Lambda provides them to every function, in its environment. */
export function credentialsFromEnv(env: Record<string, string | undefined>) {
  return () => {
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) throw new Error('AWS credentials are not in the environment');
    return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
  };
}

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
  readonly #url: URL;

  constructor(opts: DynamoDbStateFeedOptions) {
    this.#o = opts;
    this.#url = new URL(opts.endpoint ?? `https://dynamodb.${opts.region}.amazonaws.com/`);
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

  #call(operation: string, input: Record<string, unknown>): Promise<unknown> {
    return signedDynamoDbCall(this.#o, this.#url, operation, input);
  }
}

/** A DynamoDB error answer: a 4xx refused the request (nothing applied); after a 5xx a write may or may not have been applied. */
export class DynamoDbAnswerError extends Error {
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly type: string,
  ) {
    super(`DynamoDB ${operation} answered ${status} (${type})`);
    this.name = 'DynamoDbAnswerError';
  }
}

/** One DynamoDB JSON-protocol call, SigV4-signed (`sigv4.ts`) and sent over the given `node:http` client. */
export async function signedDynamoDbCall(
  o: Pick<DynamoDbStateFeedOptions, 'region' | 'credentials' | 'http' | 'timeoutMs' | 'now'>,
  url: URL,
  operation: string,
  input: Record<string, unknown>,
): Promise<unknown> {
  const body = JSON.stringify(input);
  const headers = signRequest({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
    body,
    service: 'dynamodb',
    region: o.region,
    credentials: o.credentials(),
    now: o.now?.() ?? Date.now(),
  });
  const res = await o.http(url.href, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(o.timeoutMs),
    redirect: 'error',
  });
  const text = await res.text();
  if (!res.ok) {
    let type = 'unknown';
    try {
      type = String((JSON.parse(text) as { __type?: string }).__type ?? type);
    } catch {
      // not JSON: keep 'unknown'
    }
    throw new DynamoDbAnswerError(operation, res.status, type.slice(type.lastIndexOf('#') + 1));
  }
  return JSON.parse(text) as unknown;
}
