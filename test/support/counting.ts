import type { PrincipalStateFeed } from '../../functions/core/principal-state.js';

/** Counts calls made through an object (e.g. a shared cache: each call is one DynamoDB request). */
export interface Counter {
  n: number;
}

export function counting<T extends object>(inner: T): { shared: T; calls: Counter } {
  const calls: Counter = { n: 0 };
  const shared = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { shared, calls };
}

/** Reads a principal-state snapshot made of its feed. */
export interface FeedReads {
  /** Syncs (`changesSince`: one Query per page of the feed). */
  syncs: number;
  /** Point reads (`statesOf`: one BatchGetItem), made while a container's first sync spans pages. */
  pointReads: number;
  /** Every read, syncs and point reads together: what the state check cost in network calls. */
  readonly n: number;
}

/** Counts at zero, to share between feeds (every container of a simulation, say). */
export function noFeedReads(): FeedReads {
  return {
    syncs: 0,
    pointReads: 0,
    get n() {
      return this.syncs + this.pointReads;
    },
  };
}

/**
 * The feed of `inner` alone (not its other methods, such as a token cache's), with its reads
 * counted in `reads`. Everything is forwarded, the sync's `onMorePages` included, and `statesOf`
 * exactly when `inner` has it: a snapshot over this feed takes the same paths as over `inner`
 * (a long first sync turns to point reads), so a count never hides one of them.
 */
export function countingFeed(inner: PrincipalStateFeed, reads: FeedReads = noFeedReads()): { feed: PrincipalStateFeed; reads: FeedReads } {
  const feed: PrincipalStateFeed = {
    changesSince: (sinceMs, onMorePages) => {
      reads.syncs++;
      return inner.changesSince(sinceMs, onMorePages);
    },
  };
  const statesOf = inner.statesOf?.bind(inner);
  if (statesOf) {
    feed.statesOf = (keys) => {
      reads.pointReads++;
      return statesOf(keys);
    };
  }
  return { feed, reads };
}
