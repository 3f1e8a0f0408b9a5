import {
  ConditionalCheckFailedException,
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ResourceNotFoundException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { THROTTLED_RETRY_AFTER_S, TRANSIENT_RETRY_AFTER_S, transientRetryAfterS } from '../../functions/http/transient-errors.js';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

describe('transientRetryAfterS', () => {
  it.each([
    ['ThrottlingException', new ThrottlingException({ message: 'slow down', ...meta(400) })],
    ['ProvisionedThroughputExceededException', new ProvisionedThroughputExceededException({ message: 'x', ...meta(400) })],
    ['RequestLimitExceeded', new RequestLimitExceeded({ message: 'x', ...meta(400) })],
    ['an error the SDK marked as throttling', Object.assign(new Error('x'), { name: 'SomethingNew', $retryable: { throttling: true } })],
    ['a 429 of any name', Object.assign(new Error('x'), { name: 'Whatever', ...meta(429) })],
  ])('recognises throttling: %s', (_name, err) => {
    expect(transientRetryAfterS(err)).toBe(THROTTLED_RETRY_AFTER_S);
  });

  it.each([
    ['InternalServerError', new InternalServerError({ message: 'x', ...meta(500) })],
    ['a request timeout', Object.assign(new Error('exceeded the configured 1000 ms requestTimeout'), { name: 'TimeoutError', code: 'ETIMEDOUT' })],
    ['an abort', Object.assign(new Error('Request aborted'), { name: 'AbortError' })],
    ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['a retryable error', Object.assign(new Error('x'), { name: 'TransactionConflict', $retryable: {} })],
    ['a 503 of any name', Object.assign(new Error('x'), { name: 'Unknown', ...meta(503) })],
    ['a timeout wrapped by a library', new Error('Failed to update record', { cause: Object.assign(new Error('t'), { name: 'TimeoutError' }) })],
  ])('recognises a passing failure: %s', (_name, err) => {
    expect(transientRetryAfterS(err)).toBe(TRANSIENT_RETRY_AFTER_S);
  });

  it.each([
    ['ConditionalCheckFailedException', new ConditionalCheckFailedException({ message: 'x', ...meta(400) })],
    ['ResourceNotFoundException (a wiring fault)', new ResourceNotFoundException({ message: 'x', ...meta(400) })],
    ['ValidationException', new DynamoDBServiceException({ name: 'ValidationException', $fault: 'client', message: 'x', ...meta(400) })],
    ['501 Not Implemented', Object.assign(new Error('x'), meta(501))],
    ['a plain Error', new Error('bug')],
    ['a TypeError', new TypeError('undefined is not a function')],
    ['null', null],
    ['a string', 'ThrottlingException'],
    ['an object whose name is not a string', { name: 42, code: { x: 1 } }],
  ])('leaves everything else to 500: %s', (_name, err) => {
    expect(transientRetryAfterS(err)).toBeUndefined();
  });

  it('stops on a cause cycle', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(transientRetryAfterS(a)).toBeUndefined();
  });
});
