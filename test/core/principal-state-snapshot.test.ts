/**
 * A container's principal state before its first sync: the sync reads every state item (many
 * pages at scale), so until it lands a decision reads the states it needs by point reads (one
 * request), with the same rule and the same trust bound; afterwards the copy serves. The feed
 * here is in memory; its first sync is held for as long as a test needs.
 */
import { describe, expect, it } from 'vitest';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import { silentLog } from '../../functions/core/log.js';
import type { Principal } from '../../functions/core/principal.js';
import {
  applyPrincipalState,
  FEED_PROPAGATION_MARGIN_MS,
  PrincipalStateSnapshot,
  TenantDisabledError,
  type PrincipalRef,
  type PrincipalState,
  type PrincipalStateFeed,
} from '../../functions/core/principal-state.js';
import { ManualClock } from '../support/clock.js';

const BOUND_MS = 30_000;

function state(kind: PrincipalState['kind'], id: string, status: PrincipalState['status'], extra: Partial<PrincipalState> = {}): PrincipalState {
  return { kind, id, status, revokedAt: 0, notBefore: 0, changedAt: 1, ...extra };
}

/** Many states (a large deployment), the interesting ones among them; the first sync waits for `release`. */
function bigFeed(clock: ManualClock, opts: { pointReads?: boolean; failPointReads?: boolean; onePage?: boolean } = {}) {
  const states = new Map<string, PrincipalState>();
  const put = (s: PrincipalState) => states.set(`${s.kind}#${s.id}`, s);
  for (let i = 0; i < 5000; i++) put(state('client', `bulk-${i}`, 'active', { tenantId: `t${i % 50}`, keyId: `k${i}` }));
  put(state('client', 'revoked-key', 'revoked', { tenantId: 'acme', keyId: 'k-r', revokedAt: clock.now() - 1000 }));
  put(state('client', 'live-key', 'active', { tenantId: 'acme', keyId: 'k-l' }));
  put(state('client', 'key-of-disabled', 'active', { tenantId: 'frozen', keyId: 'k-f' }));
  put(state('tenant', 'frozen', 'disabled'));
  put(state('user', 'auth0|blocked', 'blocked'));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const calls = { changesSince: 0, statesOf: 0, keysRead: [] as string[][] };
  const feed: PrincipalStateFeed = {
    changesSince: async (_since, onMorePages) => {
      calls.changesSince++;
      // Five pages: the first has arrived and says more are coming.
      if (opts.onePage !== true) onMorePages?.();
      await released;
      return [...states.values()];
    },
  };
  if (opts.pointReads !== false) {
    feed.statesOf = async (keys: readonly PrincipalRef[]) => {
      calls.statesOf++;
      calls.keysRead.push(keys.map((k) => `${k.kind}#${k.id}`));
      if (opts.failPointReads) throw new Error('DynamoDB unavailable');
      return keys.map((k) => states.get(`${k.kind}#${k.id}`)).filter((s): s is PrincipalState => s !== undefined);
    };
  }
  return { feed, calls, release, put };
}

function snapshotOver(feed: PrincipalStateFeed, clock: ManualClock) {
  return new PrincipalStateSnapshot({ feed, clock, log: silentLog, maxAgeMs: BOUND_MS, retryAfterS: 5 });
}

function keyToken(clientId: string, tenantId?: string): Principal {
  return { subject: `${clientId}@clients`, tenantId, userId: undefined, clientId, roles: [], scopes: ['read:things'], authMethod: 'jwt', expiresAt: 2e9, issuedAtMs: 1 };
}
function userToken(userId: string, tenantId = 'acme'): Principal {
  return { subject: userId, tenantId, userId, clientId: 'spa', roles: ['tenant:member'], scopes: [], authMethod: 'jwt', expiresAt: 2e9, issuedAtMs: 1 };
}

/** Lets every pending callback run (no real time): a decision that could settle has. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** The decision's outcome (`check` throws synchronously when the copy serves). */
const codeOf = async (decide: () => Principal | Promise<Principal>) => {
  try {
    await decide();
    return 'allow';
  } catch (err) {
    return err instanceof TenantDisabledError ? 'tenant-disabled' : ((err as { code?: string }).code ?? String(err));
  }
};

describe('before the first sync lands', () => {
  it('decides every kind of principal on point reads, refusing what the state refuses, without waiting for the sync', async () => {
    const clock = new ManualClock();
    const { feed, calls } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    snapshot.prefetch();

    expect(await codeOf(() => snapshot.check(keyToken('revoked-key')))).toBe('ERR_API_KEY_REVOKED');
    expect(await codeOf(() => snapshot.check(userToken('auth0|blocked')))).toBe('ERR_USER_BLOCKED');
    expect(await codeOf(() => snapshot.check(userToken('auth0|someone')))).toBe('allow');
    // A key token naming no tenant: its tenant is known from its client's state, then read too.
    expect(await codeOf(() => snapshot.check(keyToken('key-of-disabled')))).toBe('tenant-disabled');
    const live = await snapshot.check(keyToken('live-key'));
    expect(live).toMatchObject({ tenantId: 'acme', keyId: 'k-l' });

    expect(calls.changesSince).toBe(1); // the sync is still in flight, and was started once
    expect(calls.keysRead).toContainEqual(['client#key-of-disabled']);
    expect(calls.keysRead).toContainEqual(['tenant#frozen']);
    expect(calls.keysRead.every((ks) => ks.length <= 3)).toBe(true);
  });

  it('reads a principal once per bound: repeated and concurrent decisions share the read', async () => {
    const clock = new ManualClock();
    const { feed, calls } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    await Promise.all(Array.from({ length: 20 }, () => snapshot.check(userToken('auth0|someone'))));
    const afterFirst = calls.statesOf;
    expect(afterFirst).toBe(1);
    await snapshot.check(userToken('auth0|someone'));
    expect(calls.statesOf).toBe(1);
    // Trusted for the bound less the index margin, as the copy is; then read again.
    clock.advance(BOUND_MS - FEED_PROPAGATION_MARGIN_MS);
    await snapshot.check(userToken('auth0|someone'));
    expect(calls.statesOf).toBe(2);
  });

  it('sees a change made after an earlier point read once that read is past the bound', async () => {
    const clock = new ManualClock();
    const { feed, put } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    expect(await codeOf(() => snapshot.check(keyToken('live-key')))).toBe('allow');
    put(state('client', 'live-key', 'revoked', { tenantId: 'acme', keyId: 'k-l', revokedAt: clock.now() }));
    clock.advance(BOUND_MS - FEED_PROPAGATION_MARGIN_MS);
    expect(await codeOf(() => snapshot.check(keyToken('live-key')))).toBe('ERR_API_KEY_REVOKED');
  });

  it('answers 503 when the point read fails, never 401', async () => {
    const clock = new ManualClock();
    const { feed } = bigFeed(clock, { failPointReads: true });
    const snapshot = snapshotOver(feed, clock);
    const err = await Promise.resolve(snapshot.check(userToken('auth0|someone'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).code).toBe('ERR_STATE_UNAVAILABLE');
  });

  it('does not join a point read older than the decision budget (it may be stuck), and its late answer never replaces a newer one', async () => {
    const clock = new ManualClock();
    const budgetMs = 3000;
    let current = state('client', 'k', 'active', { tenantId: 'acme', keyId: 'k1' });
    let answerStuck!: (states: PrincipalState[]) => void;
    let statesOf = 0;
    const feed: PrincipalStateFeed = {
      changesSince: async (_since, onMorePages) => {
        onMorePages?.(); // a long first sync, still running
        return new Promise<PrincipalState[]>(() => undefined);
      },
      statesOf: (keys) => {
        statesOf++;
        // The first read is stuck (on a dependency that recovers meanwhile); later ones answer.
        if (statesOf === 1) return new Promise((r) => (answerStuck = r));
        return Promise.resolve(keys.flatMap((k) => (k.kind === current.kind && k.id === current.id ? [current] : [])));
      },
    };
    const snapshot = new PrincipalStateSnapshot({ feed, clock, log: silentLog, maxAgeMs: BOUND_MS, retryAfterS: 5, singleFlightMs: budgetMs });
    const stuckActive = current;
    const early = [codeOf(() => snapshot.check(keyToken('k', 'acme')))];
    await settle();
    clock.advance(budgetMs - 1);
    early.push(codeOf(() => snapshot.check(keyToken('k', 'acme'))));
    await settle();
    expect(statesOf).toBe(1); // joined while younger than the budget
    current = state('client', 'k', 'revoked', { tenantId: 'acme', keyId: 'k1', changedAt: clock.now(), revokedAt: clock.now() });
    clock.advance(1);
    const late = codeOf(() => snapshot.check(keyToken('k', 'acme')));
    await settle();
    expect(statesOf).toBe(2); // read afresh, not joined
    expect(await late).toBe('ERR_API_KEY_REVOKED');
    // The stuck read answers at last, with the state of before the revocation: the later read's
    // answer stands, for the decisions that waited on the stuck read and for the next ones.
    answerStuck([stuckActive]);
    expect(await Promise.all(early)).toEqual(['ERR_API_KEY_REVOKED', 'ERR_API_KEY_REVOKED']);
    expect(await codeOf(() => snapshot.check(keyToken('k', 'acme')))).toBe('ERR_API_KEY_REVOKED');
    expect(statesOf).toBe(2);
  });

  it.each([
    { name: 'a first sync of one page (a small deployment): no point read', opts: { onePage: true }, pointReads: 0 },
    { name: 'the sync as before, without point reads (a feed that has none)', opts: { pointReads: false }, pointReads: 0 },
  ])('waits for $name', async ({ opts, pointReads }) => {
    const clock = new ManualClock();
    const { feed, calls, release } = bigFeed(clock, opts);
    const snapshot = snapshotOver(feed, clock);
    let settled = false;
    const decision = Promise.resolve(snapshot.check(keyToken('revoked-key'))).finally(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    release();
    expect(await codeOf(() => decision)).toBe('ERR_API_KEY_REVOKED');
    expect(calls.changesSince).toBe(1);
    expect(calls.statesOf).toBe(pointReads);
  });
});

describe('once the first sync has landed', () => {
  it('serves from the copy: no more point reads', async () => {
    const clock = new ManualClock();
    const { feed, calls, release } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    expect(await codeOf(() => snapshot.check(keyToken('revoked-key')))).toBe('ERR_API_KEY_REVOKED');
    release();
    await snapshot.current();
    const reads = calls.statesOf;
    expect(await codeOf(() => snapshot.check(keyToken('revoked-key')))).toBe('ERR_API_KEY_REVOKED');
    expect(await codeOf(() => snapshot.check(userToken('auth0|new-user')))).toBe('allow');
    expect(calls.statesOf).toBe(reads);
    expect(snapshot.size).toBeGreaterThan(5000);
  });
});

describe('point reads under attack (review attack-2)', () => {
  it('never trusts a point read across a clock that went backwards', async () => {
    const clock = new ManualClock();
    const { feed, put } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    expect(await codeOf(() => snapshot.check(keyToken('live-key')))).toBe('allow');
    put(state('client', 'live-key', 'revoked', { tenantId: 'acme', keyId: 'k-l', revokedAt: 0 }));
    // The clock is stepped back ten minutes, then runs on for nine: far past the bound since the
    // read, yet `now - readAt` is negative.
    clock.advance(-10 * 60_000);
    clock.advance(9 * 60_000);
    expect(await codeOf(() => snapshot.check(keyToken('live-key')))).toBe('ERR_API_KEY_REVOKED');
  });

  it('holds a bounded number of point reads under a flood of distinct first-seen principals', async () => {
    const clock = new ManualClock();
    const { feed } = bigFeed(clock);
    const snapshot = snapshotOver(feed, clock);
    for (let i = 0; i < 3000; i++) {
      await snapshot.check(userToken(`auth0|flood-${i}`, `t-${i}`));
      clock.advance(100); // 3000 decisions over 300 s: most reads are long past the bound
    }
    // Each decision reads a user and a tenant; what is past the bound is of no use any more.
    expect(snapshot.pointReadsHeld).toBeLessThanOrEqual(2 * ((BOUND_MS - FEED_PROPAGATION_MARGIN_MS) / 100 + 1));
  });

  it('a decision on point reads when a stale first sync lands waits for a fresh sync instead of answering 503', async () => {
    const clock = new ManualClock();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let syncs = 0;
    let holdPointRead: (() => void) | undefined;
    const feed: PrincipalStateFeed = {
      changesSince: async (_since, onMorePages) => {
        syncs++;
        if (syncs === 1) {
          onMorePages?.();
          await released;
        }
        return [];
      },
      statesOf: async () => {
        // The first point read of the decision below is slow: the first sync lands meanwhile.
        if (holdPointRead === undefined) await new Promise<void>((r) => (holdPointRead = r));
        return [];
      },
    };
    const snapshot = snapshotOver(feed, clock);
    snapshot.prefetch();
    // The first sync runs past the bound (a frozen or throttled container).
    clock.advance(BOUND_MS);
    const decision = Promise.resolve(snapshot.check(userToken('auth0|someone')));
    // No real time: every pending callback runs, so the point read is held by now…
    await settle();
    expect(holdPointRead).toBeDefined();
    // …and the stale first sync has landed before the point read answers.
    release();
    await settle();
    expect(syncs).toBe(1);
    holdPointRead!();
    expect(await codeOf(() => decision)).toBe('allow');
    expect(syncs).toBe(2);
  });
});

describe('revocations and clocks', () => {
  const now = Date.UTC(2026, 10, 30, 12);
  const view = (st: PrincipalState) => ({ get: (kind: string, id: string) => (kind === st.kind && id === st.id ? st : undefined) });

  it("refuses a key revoked by a writer whose clock runs ahead of the authorizer's, at once", () => {
    const ahead = now + 10 * 60_000;
    const revoked = state('client', 'live-key', 'revoked', { tenantId: 'acme', keyId: 'k', revokedAt: ahead, changedAt: ahead });
    expect(() => applyPrincipalState(keyToken('live-key'), view(revoked), now)).toThrow(expect.objectContaining({ code: 'ERR_API_KEY_REVOKED' }));
  });

  it('keeps a rotation grace until its end by this clock', () => {
    const graced = state('client', 'old-key', 'revoked', { tenantId: 'acme', keyId: 'k', revokedAt: now + 600_000, changedAt: now });
    expect(applyPrincipalState(keyToken('old-key'), view(graced), now + 599_000)).toMatchObject({ keyId: 'k' });
    expect(() => applyPrincipalState(keyToken('old-key'), view(graced), now + 600_000)).toThrow(expect.objectContaining({ code: 'ERR_API_KEY_REVOKED' }));
  });
});
