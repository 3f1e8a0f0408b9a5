/**
 * `Log` on plain `console`, for the authorizer: importing Powertools Logger costs about 7 ms of
 * every cold start, and Lambda formats and filters log lines itself when the function's log
 * format is JSON (`loggingFormat: JSON` with an application log level).
 *
 * - Under Lambda's JSON format each call passes one object to `console`; Lambda writes it as
 *   the line's `message`, next to its own `timestamp`, `level` and `requestId`.
 * - Anywhere else (text format, the local stack's child processes, a terminal) each call
 *   writes one JSON line with `timestamp`, `level`, `service` and `message`.
 *
 * Levels below the threshold are dropped before anything is built: Lambda's application log
 * level (`AWS_LAMBDA_LOG_LEVEL`) when it set one, else `LOG_LEVEL`, else INFO. Fields whose
 * name says they may hold a credential are written as `[redacted]`, whatever the caller passed.
 */
import type { Clock } from '../core/clock.js';
import type { Env } from '../core/config.js';
import type { Log } from '../core/log.js';

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
type Level = (typeof LEVELS)[number];

/** Lambda's names for levels we do not have map to the nearest one we do. */
const ALIASES: Record<string, Level> = { TRACE: 'DEBUG', DEBUG: 'DEBUG', INFO: 'INFO', WARN: 'WARN', WARNING: 'WARN', ERROR: 'ERROR', FATAL: 'ERROR', CRITICAL: 'ERROR' };

/** Field names that may carry a token, a secret or a header value; matched case-insensitively. */
const SECRET_FIELD = /authorization|cookie|token|secret|password|api_?key|credential/i;
/** Fields the line itself owns: extra fields cannot overwrite them. */
const RESERVED = new Set(['timestamp', 'level', 'service', 'message', 'requestId']);

export interface ConsoleLogOptions {
  /** Written as `service` on each line. */
  service: string;
  /** Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and `LOG_LEVEL`. */
  env: Env;
  clock: Clock;
  /** Where lines go; the global `console` by default. */
  console?: Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
}

function levelOf(value: string | undefined): Level | undefined {
  return value === undefined ? undefined : ALIASES[value.trim().toUpperCase()];
}

function fieldsOf(extra: Record<string, unknown>[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const e of extra) {
    for (const [k, v] of Object.entries(e)) {
      if (RESERVED.has(k)) continue;
      fields[k] = SECRET_FIELD.test(k) ? '[redacted]' : v;
    }
  }
  return fields;
}

export function consoleLog(opts: ConsoleLogOptions): Log {
  const out = opts.console ?? console;
  const threshold = LEVELS.indexOf(levelOf(opts.env.AWS_LAMBDA_LOG_LEVEL) ?? levelOf(opts.env.LOG_LEVEL) ?? 'INFO');
  const lambdaJson = opts.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const method = { DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

  const write = (level: Level, message: string, extra: Record<string, unknown>[]) => {
    if (LEVELS.indexOf(level) < threshold) return;
    const fields = fieldsOf(extra);
    if (lambdaJson) out[method[level]]({ service: opts.service, message, ...fields });
    else out[method[level]](JSON.stringify({ timestamp: new Date(opts.clock.now()).toISOString(), level, service: opts.service, message, ...fields }));
  };
  return {
    debug: (message, ...extra) => write('DEBUG', message, extra),
    info: (message, ...extra) => write('INFO', message, extra),
    warn: (message, ...extra) => write('WARN', message, extra),
    error: (message, ...extra) => write('ERROR', message, extra),
  };
}
