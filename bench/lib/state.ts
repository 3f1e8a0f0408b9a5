/**
 * Principal state for the bench's authorizers, as deployed: a per-container snapshot that every
 * decision consults, synced from a feed whose calls are counted (the only network calls the
 * state check makes: one sync per half bound per container, none per decision).
 */
import { systemClock } from '../../functions/core/clock.js';
import { silentLog } from '../../functions/core/log.js';
import { PrincipalStateSnapshot, type PrincipalState, type PrincipalStateFeed } from '../../functions/core/principal-state.js';
import { countingFeed, type FeedReads } from '../../test/support/counting.js';

export interface CountedState {
  snapshot: PrincipalStateSnapshot;
  /** Feed reads: syncs (each one DynamoDB Query per page when deployed) and point reads. */
  feedCalls: FeedReads;
}

/** A snapshot over `feed` with the default 30 s bound, its feed calls counted, synced once before any timing. */
export async function countedState(feed: PrincipalStateFeed): Promise<CountedState> {
  const { feed: counted, reads: feedCalls } = countingFeed(feed);
  const snapshot = new PrincipalStateSnapshot({
    feed: counted,
    clock: systemClock,
    log: silentLog,
    maxAgeMs: 30_000,
    retryAfterS: 5,
  });
  await snapshot.current();
  return { snapshot, feedCalls };
}

/** A realistic amount of state for the bearer cases: blocked and re-roled users, revoked keys, disabled tenants. */
export function syntheticStates(n: number): PrincipalStateFeed {
  const now = Date.now();
  const states: PrincipalState[] = Array.from({ length: n }, (_, i) => {
    const kind = (['user', 'client', 'tenant'] as const)[i % 3]!;
    const status = kind === 'user' ? 'blocked' : kind === 'client' ? 'revoked' : 'disabled';
    return { kind, id: `bench-${kind}-${i}`, status, revokedAt: 0, notBefore: 0, changedAt: now - i };
  });
  return { changesSince: (since) => Promise.resolve(since === undefined ? states : states.filter((s) => s.changedAt >= since)) };
}
