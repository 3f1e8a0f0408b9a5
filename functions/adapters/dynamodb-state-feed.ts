/**
 * The principal-state feed read by the authorizer on every path, the JWT path included: one
 * DynamoDB `Query` on the state index, signed with SigV4 (`@smithy/signature-v4`) and sent with
 * the authorizer's `node:http` client. The full DynamoDB client would add tens of milliseconds
 * to every cold start of the JWT path (it stays a lazy chunk of the API-key path); this adapter
 * needs the signer and the unmarshaller only.
 */
import { createHash, createHmac } from 'node:crypto';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpClient } from '../core/http-client.js';
import type { PrincipalState, PrincipalStateFeed } from '../core/principal-state.js';
import { STATE_FEED_PAGE, STATE_FEED_QUERY, toPrincipalState } from './dynamodb-state-items.js';

/** SHA-256 and HMAC-SHA-256 from node:crypto, in the shape the signer asks for. */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData) => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));

class NodeSha256 {
  readonly #h;
  constructor(secret?: SourceData) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.#h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#h.digest());
  }
}

export interface DynamoDbStateFeedOptions {
  tableName: string;
  region: string;
  /** `AWS_ENDPOINT_URL_DYNAMODB` locally; the regional endpoint by default. */
  endpoint?: string | undefined;
  credentials: () => { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
  http: HttpClient;
  timeoutMs: number;
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

export class DynamoDbStateFeed implements PrincipalStateFeed {
  readonly #o: DynamoDbStateFeedOptions;
  readonly #url: URL;

  constructor(opts: DynamoDbStateFeedOptions) {
    this.#o = opts;
    this.#url = new URL(opts.endpoint ?? `https://dynamodb.${opts.region}.amazonaws.com/`);
  }

  async changesSince(sinceMs: number | undefined): Promise<PrincipalState[]> {
    const states: PrincipalState[] = [];
    let start: unknown;
    do {
      const out = (await this.#call('Query', {
        TableName: this.#o.tableName,
        ...STATE_FEED_QUERY(sinceMs, 'wire'),
        Limit: STATE_FEED_PAGE,
        ...(start ? { ExclusiveStartKey: start } : {}),
      })) as { Items?: Record<string, never>[]; LastEvaluatedKey?: unknown };
      for (const item of out.Items ?? []) {
        const state = toPrincipalState(unmarshall(item));
        if (state) states.push(state);
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return states;
  }

  async #call(operation: string, input: Record<string, unknown>): Promise<unknown> {
    const body = JSON.stringify(input);
    const signer = new SignatureV4({ service: 'dynamodb', region: this.#o.region, credentials: this.#o.credentials(), sha256: NodeSha256 });
    const signed = await signer.sign({
      method: 'POST',
      protocol: this.#url.protocol,
      hostname: this.#url.hostname,
      port: this.#url.port ? Number(this.#url.port) : undefined,
      path: this.#url.pathname,
      headers: {
        host: this.#url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
      },
      body,
    });
    const res = await this.#o.http(this.#url.href, {
      method: 'POST',
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(this.#o.timeoutMs),
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
      throw new Error(`DynamoDB ${operation} answered ${res.status} (${type.slice(type.lastIndexOf('#') + 1)})`);
    }
    return JSON.parse(text) as unknown;
  }
}
