/**
 * Recognises failures of AWS SDK calls (DynamoDB, API Gateway, Secrets Manager) that are
 * nobody's fault and pass: throttling, timeouts, aborted or reset connections, 5xx. They are
 * answered 503 + Retry-After, not 500. Recognised by the shape the SDK gives every error
 * (`name`, `$retryable`, `$metadata.httpStatusCode`, Node's `code`), so no SDK is imported
 * here, and by the `cause` chain, since wrappers (Powertools idempotency) keep the original.
 */

/** Throttling error names across the AWS services we call. */
const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'SlowDown',
]);
const TRANSIENT = new Set(['TimeoutError', 'AbortError', 'RequestTimeout', 'RequestTimeoutException', 'InternalServerError', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/** Retry-After for throttling: the SDK already backed off before giving up. */
export const THROTTLED_RETRY_AFTER_S = 2;
export const TRANSIENT_RETRY_AFTER_S = 1;

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $retryable?: { throttling?: boolean } | undefined;
  $metadata?: { httpStatusCode?: number } | undefined;
}

/** Seconds to answer in Retry-After when `err` (or what it wraps) is a passing AWS failure; else undefined. */
export function transientRetryAfterS(err: unknown): number | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const s = e as SdkErrorShape;
    const name = typeof s.name === 'string' ? s.name : '';
    const status = s.$metadata?.httpStatusCode;
    if (s.$retryable?.throttling === true || THROTTLING.has(name) || status === 429) return THROTTLED_RETRY_AFTER_S;
    if (s.$retryable !== undefined || TRANSIENT.has(name) || (typeof s.code === 'string' && NETWORK_CODES.has(s.code))) return TRANSIENT_RETRY_AFTER_S;
    if (typeof status === 'number' && status >= 500 && status !== 501) return TRANSIENT_RETRY_AFTER_S;
    e = s.cause;
  }
  return undefined;
}
