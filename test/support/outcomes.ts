import { AuthorizerUnavailableError } from '../../functions/authorizer/create-handler.js';
import { orHang } from './hang.js';

/** What the authorizer handler answered one request. */
export type Outcome = 'allow' | 'deny' | 'unauthorized' | 'unavailable' | 'error' | 'hang';

/**
 * The outcome of one handler call: its Allow or Deny (REST policy), its 401, its 503 (the
 * Retry-After pushed to `retryAfters` when given), another error, or `hang` when it has not
 * answered within `orHang`'s bound.
 */
export function outcomeOf(decision: Promise<unknown>, retryAfters?: number[]): Promise<Outcome> {
  const outcome = decision.then(
    (r): Outcome => ((r as { policyDocument?: { Statement: { Effect: string }[] } }).policyDocument?.Statement[0]?.Effect === 'Allow' ? 'allow' : 'deny'),
    (err: unknown): Outcome => {
      if (err instanceof AuthorizerUnavailableError) {
        retryAfters?.push(err.retryAfterS);
        return 'unavailable';
      }
      return (err as Error).message === 'Unauthorized' ? 'unauthorized' : 'error';
    },
  );
  return orHang(outcome).catch((): Outcome => 'hang');
}

/** How many of each outcome. */
export const tally = (outcomes: Outcome[]) => outcomes.reduce<Record<string, number>>((t, o) => ({ ...t, [o]: (t[o] ?? 0) + 1 }), {});
