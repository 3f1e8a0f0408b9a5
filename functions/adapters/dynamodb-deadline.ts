/**
 * Hard deadlines on DynamoDB calls. Two layers, because each covers what the other cannot:
 * - per HTTP attempt, a connection and a request timeout that throw (`@smithy/node-http-handler`
 *   only logs a warning on `requestTimeout` unless `throwOnRequestTimeout` is set: a hung
 *   DynamoDB call then never fails);
 * - per operation, an abort signal, so retries and their back-off cannot add up past the
 *   operation's budget. Its expiry is reported as `UpstreamUnavailableError` (503 where it
 *   reaches a caller; the authorizer falls back to what it can do without the table).
 */
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { UpstreamUnavailableError } from '../core/errors.js';

export interface DynamoDbDeadline {
  /** Time to establish a connection, per attempt. */
  connectionTimeoutMs: number;
  /** Time from sending a request to its full answer, per attempt. */
  requestTimeoutMs: number;
  maxAttempts: number;
  /** The whole operation, retries and back-off included. */
  operationMs: number;
}

/** The authorizer's calls: short, because every caller has a fallback and the decision has a budget. */
export const AUTHORIZER_DYNAMODB_DEADLINE: DynamoDbDeadline = { connectionTimeoutMs: 500, requestTimeoutMs: 1000, maxAttempts: 2, operationMs: 1500 };

/** The management functions' calls: longer (writes that matter, 10 s function timeout, several calls a request). */
export const MANAGEMENT_DYNAMODB_DEADLINE: DynamoDbDeadline = { connectionTimeoutMs: 1000, requestTimeoutMs: 2000, maxAttempts: 3, operationMs: 3000 };

/** Retry-After when a DynamoDB operation ran out of time. */
const DEADLINE_RETRY_AFTER_S = 2;

/** Client configuration with the per-attempt timeouts of `d`; explicit settings in `config` win. */
export function dynamoDbClientConfig(d: DynamoDbDeadline, config: DynamoDBClientConfig = {}): DynamoDBClientConfig {
  return {
    maxAttempts: d.maxAttempts,
    requestHandler: { connectionTimeout: d.connectionTimeoutMs, requestTimeout: d.requestTimeoutMs, throwOnRequestTimeout: true },
    ...config,
  };
}

type SendOptions = { abortSignal?: AbortSignal } | undefined;
interface Sender {
  send(command: never, options?: never): Promise<unknown>;
}

/**
 * Gives every `send` of `client` an abort signal that fires after `operationMs` (combined with
 * the caller's own signal, if any). Returns the same client.
 */
export function withOperationDeadline<C extends Sender>(client: C, operationMs: number): C {
  const send = client.send.bind(client) as (command: unknown, options?: SendOptions) => Promise<unknown>;
  const bounded = async (command: unknown, options?: SendOptions): Promise<unknown> => {
    const deadline = AbortSignal.timeout(operationMs);
    const abortSignal = options?.abortSignal ? AbortSignal.any([options.abortSignal, deadline]) : deadline;
    try {
      return await send(command, { ...options, abortSignal });
    } catch (err) {
      if (!deadline.aborted) throw err;
      const name = (command as { constructor?: { name?: string } })?.constructor?.name ?? 'command';
      throw new UpstreamUnavailableError('ERR_DYNAMODB_DEADLINE', `DynamoDB ${name} did not complete within ${operationMs} ms`, DEADLINE_RETRY_AFTER_S, { cause: err });
    }
  };
  (client as { send: unknown }).send = bounded;
  return client;
}
