import type { Log } from '../../functions/core/log.js';

/**
 * A log that records why the authorizer handler did not decide: the reason code of each
 * `unavailable` line (a 503 with Retry-After) and of each `authorizer failure` (its message when
 * it has no code). Other lines (a snapshot's own warnings, say) are not reasons and are ignored,
 * so a test can require every recorded reason to be one it expects.
 */
export function reasonLog(): { log: Log; reasons: string[] } {
  const reasons: string[] = [];
  const reasonOf = (message: string, extra: unknown[]) => String((Object.assign({}, ...extra) as { reason?: unknown }).reason ?? message);
  const log: Log = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message, ...extra) => {
      if (message === 'unavailable') reasons.push(reasonOf(message, extra));
    },
    error: (message, ...extra) => void reasons.push(reasonOf(message, extra)),
  };
  return { log, reasons };
}
