import { describe, expect, it } from 'vitest';
import { consoleLog } from '../../functions/adapters/console-log.js';
import type { Env } from '../../functions/core/config.js';
import { ManualClock } from '../support/clock.js';

/** A console that records what each method was given. */
function recorder() {
  const calls: { method: string; arg: unknown }[] = [];
  const at = (method: string) => (arg: unknown) => void calls.push({ method, arg });
  return { calls, console: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

function logWith(env: Env) {
  const r = recorder();
  const clock = new ManualClock(Date.parse('2026-01-02T03:04:05.678Z'));
  return { ...r, log: consoleLog({ service: 'latchkey-authorizer', env, clock, console: r.console }) };
}

describe('consoleLog', () => {
  it('writes one JSON line per call outside Lambda JSON format, with time, level, service and fields', () => {
    const { log, calls } = logWith({});
    log.info('deny', { reason: 'ERR_JWT_EXPIRED', bearerError: 'invalid_token' });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe('info');
    expect(typeof calls[0]!.arg).toBe('string');
    expect(JSON.parse(calls[0]!.arg as string)).toEqual({
      timestamp: '2026-01-02T03:04:05.678Z',
      level: 'INFO',
      service: 'latchkey-authorizer',
      message: 'deny',
      reason: 'ERR_JWT_EXPIRED',
      bearerError: 'invalid_token',
    });
  });

  it('under Lambda JSON format passes one object, which Lambda writes as the message next to its own time, level and request id', () => {
    const { log, calls } = logWith({ AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' });
    log.warn('unavailable', { reason: 'ERR_JWKS_UNAVAILABLE', retryAfterS: 5 });
    log.debug('allow', { authMethod: 'jwt', tenantId: 'acme' });
    expect(calls).toEqual([
      { method: 'warn', arg: { service: 'latchkey-authorizer', message: 'unavailable', reason: 'ERR_JWKS_UNAVAILABLE', retryAfterS: 5 } },
      { method: 'debug', arg: { service: 'latchkey-authorizer', message: 'allow', authMethod: 'jwt', tenantId: 'acme' } },
    ]);
  });

  it('drops levels below the threshold: INFO by default, LOG_LEVEL, and Lambda application log level first', () => {
    const levels = (env: Env) => {
      const { log, calls } = logWith(env);
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      return calls.map((c) => c.method);
    };
    expect(levels({})).toEqual(['info', 'warn', 'error']);
    expect(levels({ LOG_LEVEL: 'debug' })).toEqual(['debug', 'info', 'warn', 'error']);
    expect(levels({ LOG_LEVEL: 'ERROR' })).toEqual(['error']);
    expect(levels({ LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'WARN' })).toEqual(['warn', 'error']);
    expect(levels({ AWS_LAMBDA_LOG_LEVEL: 'TRACE' })).toEqual(['debug', 'info', 'warn', 'error']);
    expect(levels({ AWS_LAMBDA_LOG_LEVEL: 'FATAL' })).toEqual(['error']);
    expect(levels({ LOG_LEVEL: 'nonsense' })).toEqual(['info', 'warn', 'error']);
  });

  it('never writes a field whose name says it may hold a credential, and fields cannot overwrite the line', () => {
    const secret = 'eyJhbGciOiJSUzI1NiJ9.secret-looking.value';
    for (const env of [{}, { AWS_LAMBDA_LOG_FORMAT: 'JSON' }] as Env[]) {
      const { log, calls } = logWith(env);
      log.error(
        'authorizer failure',
        { authorization: `Bearer ${secret}`, Token: secret, accessToken: secret, clientSecret: secret, api_key: secret, apiKey: secret },
        { Cookie: secret, password: secret, credentials: secret, reason: 'ERR_INTERNAL', message: 'overwritten?', level: 'DEBUG' },
      );
      const line = typeof calls[0]!.arg === 'string' ? (calls[0]!.arg as string) : JSON.stringify(calls[0]!.arg);
      expect(line).not.toContain(secret);
      const fields = JSON.parse(line) as Record<string, unknown>;
      expect(fields).toMatchObject({ message: 'authorizer failure', reason: 'ERR_INTERNAL', authorization: '[redacted]', clientSecret: '[redacted]', Cookie: '[redacted]' });
      if (!('AWS_LAMBDA_LOG_FORMAT' in env)) expect(fields.level).toBe('ERROR');
    }
  });
});
