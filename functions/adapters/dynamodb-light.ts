/**
 * The authorizer's small DynamoDB client: DynamoDB's JSON protocol over its `node:http` client,
 * signed with SigV4 (`sigv4.ts`, on `node:crypto`). The AWS SDK's DynamoDB client, and even
 * Smithy's own signer (which brings `@smithy/core`), would add tens of milliseconds to every
 * cold start of the JWT path; the state feed and the usage counts use this instead, and the SDK
 * stays a lazy chunk of the API-key path.
 */
import type { HttpClient } from '../core/http-client.js';
import { signRequest } from './sigv4.js';

export interface LightDynamoDbOptions {
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

/** A DynamoDB JSON-protocol call (operation, input) → parsed answer. */
export type LightDynamoDbCall = (operation: string, input: Record<string, unknown>) => Promise<unknown>;

/**
 * DynamoDB JSON-protocol calls with these options: each SigV4-signed (`sigv4.ts`) and sent over
 * the given `node:http` client, to the override endpoint or the region's (resolved once).
 */
export function lightDynamoDb(o: Pick<LightDynamoDbOptions, 'region' | 'endpoint' | 'credentials' | 'http' | 'timeoutMs' | 'now'>): LightDynamoDbCall {
  const url = new URL(o.endpoint ?? `https://dynamodb.${o.region}.amazonaws.com/`);
  return async (operation, input) => {
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
  };
}
