/**
 * The state of the principals behind a credential, and the one rule that turns it into a
 * decision. The identity provider cannot revoke the tokens it has issued, so whether a key is
 * revoked, a user blocked or a tenant disabled is Latchkey's to know: the management API
 * writes it (`PrincipalStateWriter`), the authorizer reads it on every path (API key, a key's
 * own bearer token, user tokens, service tokens) through a per-container snapshot that is
 * never older than the revocation bound (`PrincipalStateSnapshot`).
 *
 * Adapter: `DynamoDbTokenCache` (items `client#…`, `user#…`, `tenant#…` of the token-cache
 * table, with a sparse index over the time of their last change, the feed the snapshot syncs).
 */
import type { Clock } from './clock.js';
import { DECISION_BUDGET_MS } from './config.js';
import { CredentialsError, LatchkeyError, UpstreamUnavailableError } from './errors.js';
import type { Log } from './log.js';
import { SingleFlight } from './once.js';
import { PLATFORM_ADMIN } from './permissions.js';
import type { Principal } from './principal.js';

export type PrincipalKind = 'client' | 'user' | 'tenant';

/**
 * `active`; a client `revoked` (from `revokedAt` on, which a rotation grace puts in the future);
 * a user `blocked` or `deleted`; a tenant `disabled` or `deleted`.
 */
export type PrincipalStatus = 'active' | 'revoked' | 'blocked' | 'deleted' | 'disabled';

export interface PrincipalState {
  kind: PrincipalKind;
  id: string;
  status: PrincipalStatus;
  /** Epoch ms from which a `revoked` status applies; 0 for "at once". */
  revokedAt: number;
  /** Tokens issued (or, for API keys, exchanged) before this epoch ms are refused; 0 for none. */
  notBefore: number;
  /** Epoch ms of the change that wrote this state; the feed is ordered by it. */
  changedAt: number;
  /** Clients of Latchkey keys: the key's tenant and id, and when its credentials were created. */
  tenantId?: string | undefined;
  keyId?: string | undefined;
  createdAt?: number | undefined;
}

const stateKey = (kind: PrincipalKind, id: string) => `${kind}#${id}`;

/**
 * Auth0 documents that new client credentials may take up to 30 s to be accepted: a rejection
 * inside this window is not proof that the key is wrong.
 */
export const CREDENTIAL_PROPAGATION_MS = 30_000;

/** A principal's tenant is disabled or deleted: answered 403 `tenant-disabled`, never 401. */
export class TenantDisabledError extends LatchkeyError {
  constructor(readonly tenantId: string) {
    super('ERR_TENANT_DISABLED', 'the tenant is disabled');
  }
}

/** A credential refused by the state (revoked or rotated key, blocked, deleted or superseded user): says whose, for the security events. */
export class PrincipalRefusedError extends CredentialsError {
  constructor(
    code: string,
    message: string,
    readonly who: { tenantId: string | undefined; clientId?: string | undefined; keyId?: string | undefined; userId?: string | undefined },
  ) {
    super(code, message);
  }
}

/** Deleted by `DELETE /tenants/{id}`: for good (its registry record only says disabled). */
export function isTenantDeleted(state: PrincipalState | undefined): boolean {
  return state?.kind === 'tenant' && state.status === 'deleted';
}

/** The client is revoked for `now` (a rotation grace keeps it usable until `revokedAt`). */
export function isRevokedAt(state: PrincipalState | undefined, now: number): boolean {
  if (state === undefined || state.status !== 'revoked') return false;
  // A revocation without grace (`revokedAt` at the change itself) holds at once, whatever this
  // clock says: a writer whose clock runs ahead would otherwise delay it by the difference.
  return state.revokedAt <= state.changedAt || now >= state.revokedAt;
}

/** State that only matters for tokens issued before it outlives them (Auth0's longest M2M lifetime is 30 days). */
const TOKEN_RETENTION_MS = 31 * 24 * 3600 * 1000;

/**
 * Until when (epoch s) a state must be kept, or `undefined` for as long as it holds: a block and
 * a disabled or deleted tenant hold until undone (a deleted tenant's users still exist at the
 * identity provider); everything else only concerns tokens issued before it.
 */
export function stateRetentionUntilS(state: PrincipalState): number | undefined {
  if (state.status === 'blocked' || state.status === 'disabled' || (state.kind === 'tenant' && state.status === 'deleted')) return undefined;
  if (state.kind === 'client' && state.status === 'active') return undefined;
  const from = Math.max(state.changedAt, state.revokedAt, state.notBefore);
  return Math.ceil((from + TOKEN_RETENTION_MS) / 1000);
}

/** Read-only view of the states the snapshot holds. */
export interface StateView {
  get(kind: PrincipalKind, id: string): PrincipalState | undefined;
}

/**
 * The rule, in one place: may `p`, whose credential was issued at `issuedAtMs`, act now?
 * Returns the principal, with the tenant and key of a Latchkey key's client filled in from the
 * state (so a key's own bearer token counts as that key everywhere), or throws:
 * `CredentialsError` (401) for a revoked key, a blocked or deleted user, a credential issued
 * before a not-before; `TenantDisabledError` (403) for a disabled or deleted tenant.
 */
export function applyPrincipalState(p: Principal, view: StateView, now: number): Principal {
  let principal = p;
  if (p.clientId !== undefined && p.userId === undefined) {
    const client = view.get('client', p.clientId);
    if (client) {
      const who = { tenantId: client.tenantId ?? p.tenantId, clientId: p.clientId, keyId: client.keyId };
      if (isRevokedAt(client, now)) throw new PrincipalRefusedError('ERR_API_KEY_REVOKED', 'the API key is revoked', who);
      if (p.issuedAtMs < client.notBefore) throw new PrincipalRefusedError('ERR_API_KEY_ROTATED', 'the credential predates the key rotation', who);
      if (client.keyId !== undefined) {
        // A token whose tenant claim names another tenant than the key's was not issued for it.
        if (p.tenantId !== undefined && client.tenantId !== undefined && p.tenantId !== client.tenantId) {
          throw new CredentialsError('ERR_API_KEY_TENANT_MISMATCH', 'the token does not match its key');
        }
        principal = { ...p, tenantId: p.tenantId ?? client.tenantId, keyId: client.keyId };
      }
    }
  }
  if (p.userId !== undefined) {
    const user = view.get('user', p.userId);
    if (user) {
      const who = { tenantId: p.tenantId, userId: p.userId, clientId: p.clientId };
      if (user.status === 'blocked') throw new PrincipalRefusedError('ERR_USER_BLOCKED', 'the user is blocked', who);
      if (user.status === 'deleted') throw new PrincipalRefusedError('ERR_USER_DELETED', 'the user no longer exists', who);
      if (p.issuedAtMs < user.notBefore) throw new PrincipalRefusedError('ERR_TOKEN_SUPERSEDED', 'the token predates a change of the user; sign in again', who);
    }
  }
  if (principal.tenantId !== undefined && !principal.roles.includes(PLATFORM_ADMIN)) {
    const tenant = view.get('tenant', principal.tenantId);
    if (tenant && (tenant.status === 'disabled' || tenant.status === 'deleted')) throw new TenantDisabledError(principal.tenantId);
  }
  return principal;
}

/**
 * A user's state after a change made through the users API: a block or a deletion refuses every
 * token of the user; a change of roles refuses the tokens issued before it (from the start of
 * that second: `iat` has whole seconds, and the user's next sign-in must not be refused).
 */
export function userStateAfter(
  previous: PrincipalState | undefined,
  userId: string,
  change: { blocked?: boolean | undefined; rolesChanged?: boolean | undefined; deleted?: boolean | undefined },
  now: number,
): PrincipalState {
  const status: PrincipalStatus = change.deleted ? 'deleted' : change.blocked === true ? 'blocked' : change.blocked === false ? 'active' : (previous?.status ?? 'active');
  const notBefore = change.rolesChanged ? Math.floor(now / 1000) * 1000 : (previous?.notBefore ?? 0);
  return { kind: 'user', id: userId, status, revokedAt: 0, notBefore, changedAt: now };
}

/** Written by the management API; each write records the time of the change for the feed. */
export interface PrincipalStateWriter {
  /** Replaces the state of one principal (last writer wins); other attributes of the item stay. */
  putState(state: PrincipalState): Promise<void>;
  getState(kind: PrincipalKind, id: string): Promise<PrincipalState | undefined>;
}

/** The feed of state changes the snapshot syncs from. */
export interface PrincipalStateFeed {
  /**
   * Every state whose `changedAt` is at or after `sinceMs` (all of them when undefined).
   * `onMorePages` is called when a page arrives that is not the last (a long read).
   */
  changesSince(sinceMs: number | undefined, onMorePages?: () => void): Promise<PrincipalState[]>;
  /**
   * The current state of these principals, by strongly consistent point reads (one request,
   * whatever the size of the feed). Lets a container that has never synced decide before its
   * first sync, which reads every state item, is done.
   */
  statesOf?(keys: readonly PrincipalRef[]): Promise<PrincipalState[]>;
}

export interface PrincipalRef {
  kind: PrincipalKind;
  id: string;
}

export interface PrincipalStateSnapshotOptions {
  feed: PrincipalStateFeed;
  clock: Clock;
  log: Log;
  /** The revocation bound: no decision uses state older than this. */
  maxAgeMs: number;
  /** Default Retry-After when the feed cannot be read. */
  retryAfterS: number;
  /**
   * How long an in-flight point read may be joined by other decisions (the decision budget);
   * an older one is not: it may be stuck on a dependency that has since recovered. Default
   * `DECISION_BUDGET_MS.default`.
   */
  singleFlightMs?: number;
}

/**
 * Writers' clocks and the feed's index may lag a little: each sync re-reads the changes of
 * this long before the newest one it has seen (or its own clock, if earlier), so a change that
 * was late to appear, or written by a clock up to this much behind, is still picked up.
 */
const RESYNC_OVERLAP_MS = 60_000;
/** Syncs start in the background once the state is this share of the bound old. */
const REFRESH_SHARE = 0.5;
/**
 * The feed's index is eventually consistent (AWS: usually well under a second); state is
 * trusted for the bound less this margin, so a change is seen within the bound itself.
 */
export const FEED_PROPAGATION_MARGIN_MS = 5_000;

/** Point reads held before the first sync, at most (a few hundred bytes each). */
const MAX_POINT_READS = 10_000;

/**
 * This container's copy of every principal state, kept no older than the bound: a request that
 * finds it older than half the bound starts a sync in the background; one that finds it older
 * than the bound waits for the sync. One sync at a time; a failed one is forgotten, so the next
 * request tries afresh. State older than the bound is never used: if the feed cannot be read,
 * decisions answer 503 (never 401, never a decision on stale state).
 */
export class PrincipalStateSnapshot implements StateView {
  readonly #o: PrincipalStateSnapshotOptions;
  readonly #states = new Map<string, PrincipalState>();
  /** Epoch ms at which the last successful sync started. */
  #syncedAt: number | undefined;
  #newestChange: number | undefined;
  #inFlight: Promise<void> | undefined;
  /** Point reads made before the first sync (`statesOf`), by state key; dropped once it lands. */
  readonly #pointReads = new Map<string, { state: PrincipalState | undefined; readAt: number }>();
  /** Point reads in flight by set of keys, joined for the decision budget at most. */
  readonly #pointReadsInFlight: SingleFlight<void>;
  /** Settles when the first sync turns out to span pages. */
  readonly #longFirstSync: Promise<void>;
  #markLongFirstSync!: () => void;
  /** How long synced or point-read state is trusted: the bound, less the index's propagation margin. */
  readonly #trustMs: number;
  /** Syncs made, for benchmarks and tests. */
  syncs = 0;

  constructor(opts: PrincipalStateSnapshotOptions) {
    this.#o = opts;
    this.#trustMs = Math.max(0, opts.maxAgeMs - FEED_PROPAGATION_MARGIN_MS);
    this.#longFirstSync = new Promise<void>((r) => (this.#markLongFirstSync = r));
    this.#pointReadsInFlight = new SingleFlight(opts.clock, opts.singleFlightMs ?? DECISION_BUDGET_MS.default);
  }

  get size(): number {
    return this.#states.size;
  }

  /** Point reads held (before the first sync), for tests: never more than the bound's worth. */
  get pointReadsHeld(): number {
    return this.#pointReads.size;
  }

  get(kind: PrincipalKind, id: string): PrincipalState | undefined {
    return this.#states.get(stateKey(kind, id));
  }

  /** The state of a client this copy knows as an active (or still graced) Latchkey key. */
  knownKey(clientId: string): PrincipalState | undefined {
    const s = this.get('client', clientId);
    return s?.keyId !== undefined && !isRevokedAt(s, this.#o.clock.now()) ? s : undefined;
  }

  /** Starts the first sync during init, so the first request rarely waits for it. */
  prefetch(): void {
    this.#sync().catch(() => undefined);
  }

  /** The state, no older than the bound; throws `UpstreamUnavailableError` when it cannot be had. */
  async current(): Promise<StateView> {
    if (this.#usable(this.#o.clock.now())) return this;
    try {
      await this.#sync();
    } catch (err) {
      throw this.#unavailable(err);
    }
    return this;
  }

  /**
   * True when the copy may be used now (starting a background sync once it is half the trusted
   * age old); false when a decision must wait for a sync.
   */
  #usable(now: number): boolean {
    if (this.#syncedAt === undefined) return false;
    if (!this.#fresh(this.#syncedAt, now)) {
      // A clock that went backwards makes the state's age unknown: stale until a sync.
      if (now < this.#syncedAt) this.#syncedAt = undefined;
      return false;
    }
    if (now - this.#syncedAt >= this.#trustMs * REFRESH_SHARE) this.#sync().catch(() => undefined);
    return true;
  }

  /**
   * Applies the rule of `applyPrincipalState` with state no older than the bound. Synchronous
   * while the copy is usable (the hot path: no promise); a promise only when a sync must come first.
   */
  check(p: Principal): Principal | Promise<Principal> {
    const now = this.#o.clock.now();
    if (this.#usable(now)) return applyPrincipalState(p, this, now);
    if (this.#syncedAt === undefined && this.#o.feed.statesOf) return this.#firstDecision(p);
    return this.#afterSync(p);
  }

  /** The rule applied once a sync has made the copy current (503 if it cannot). */
  async #afterSync(p: Principal): Promise<Principal> {
    await this.current();
    return applyPrincipalState(p, this, this.#o.clock.now());
  }

  /**
   * A decision in a container that has never synced: it waits for the first sync while that is
   * one page (a small deployment: no extra read), and turns to point reads as soon as the sync
   * turns out to span pages, or fails.
   */
  async #firstDecision(p: Principal): Promise<Principal> {
    const sync = this.#sync();
    const first = await Promise.race([sync.then(() => 'synced' as const, () => 'failed' as const), this.#longFirstSync.then(() => 'long' as const)]);
    if (first === 'synced') return applyPrincipalState(p, this, this.#o.clock.now());
    return this.#checkByPointReads(p);
  }

  /**
   * While this container's first sync spans many pages (it reads every state item), a decision
   * reads the states it needs by point reads instead, and the sync goes on in the background.
   * Which states the rule needs is found by running the rule itself on what has been read: a
   * key's tenant may only be known from its client's state, so up to three rounds. Point reads
   * are trusted like a sync, from when they started, and only until the first sync.
   */
  async #checkByPointReads(p: Principal): Promise<Principal> {
    this.#sync().catch(() => undefined);
    for (let round = 0; ; round++) {
      const now = this.#o.clock.now();
      if (this.#usable(now)) return applyPrincipalState(p, this, now);
      // The first sync landed meanwhile but is already past the bound (it ran long, or the
      // container was frozen under it): point reads are over, so wait for a fresh sync.
      if (this.#syncedAt !== undefined) return this.#afterSync(p);
      const missing: PrincipalRef[] = [];
      const view: StateView = {
        get: (kind, id) => {
          const read = this.#pointReads.get(stateKey(kind, id));
          if (read && this.#fresh(read.readAt, now)) return read.state;
          missing.push({ kind, id });
          return undefined;
        },
      };
      let principal: Principal | undefined;
      let refusal: unknown;
      try {
        principal = applyPrincipalState(p, view, now);
      } catch (err) {
        refusal = err;
      }
      if (missing.length === 0) {
        if (refusal !== undefined) throw refusal;
        return principal!;
      }
      if (round >= 3) throw this.#unavailable();
      await this.#pointRead(missing);
    }
  }

  /**
   * One point read of `keys`, shared by the decisions that need the same states while it is
   * younger than the decision budget (`SingleFlight`): an older one may be stuck on a
   * dependency that has since recovered.
   */
  async #pointRead(keys: PrincipalRef[]): Promise<void> {
    const id = keys.map((k) => stateKey(k.kind, k.id)).sort().join('\u0000');
    const read = this.#pointReadsInFlight.run(id, (startedAt) =>
      this.#o.feed.statesOf!(keys).then((states) => {
        const found = new Map(states.map((st) => [stateKey(st.kind, st.id), st]));
        if (this.#syncedAt !== undefined) return; // the sync landed meanwhile: it has them
        for (const k of keys) {
          const key = stateKey(k.kind, k.id);
          // A read that was overtaken (stuck, then made afresh) never replaces the later one's result.
          if ((this.#pointReads.get(key)?.readAt ?? -Infinity) > startedAt) continue;
          // Delete first, so the map stays in the order reads landed and pruning can stop early.
          this.#pointReads.delete(key);
          this.#pointReads.set(key, { state: found.get(key), readAt: startedAt });
        }
        this.#prunePointReads();
      }),
    );
    try {
      await read;
    } catch (err) {
      this.#o.log.warn('principal state could not be read', { error: String(err) });
      throw this.#unavailable(err);
    }
  }

  /**
   * Point reads past the bound are of no use: dropped from the oldest, so a flood of distinct
   * first-seen principals before the first sync (or a first sync that keeps failing) holds at
   * most the bound's worth of reads, and never more than `MAX_POINT_READS`.
   */
  #prunePointReads(): void {
    const now = this.#o.clock.now();
    for (const [key, read] of this.#pointReads) {
      if (this.#pointReads.size <= MAX_POINT_READS && this.#fresh(read.readAt, now)) break;
      this.#pointReads.delete(key);
    }
  }

  /** State read at `readAt` may still be trusted at `now` (never across a clock that went backwards). */
  #fresh(readAt: number, now: number): boolean {
    const age = now - readAt;
    return age >= 0 && age < this.#trustMs;
  }

  /** 503 + Retry-After: the state could not be had (never 401, never a decision on stale state). */
  #unavailable(cause?: unknown): UpstreamUnavailableError {
    return new UpstreamUnavailableError('ERR_STATE_UNAVAILABLE', 'principal state could not be read', this.#o.retryAfterS, cause === undefined ? undefined : { cause });
  }

  #sync(): Promise<void> {
    this.#inFlight ??= this.#load().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #load(): Promise<void> {
    const startedAt = this.#o.clock.now();
    const since = this.#newestChange === undefined ? undefined : this.#newestChange - RESYNC_OVERLAP_MS;
    let changes: PrincipalState[];
    try {
      changes = await this.#o.feed.changesSince(since, this.#syncedAt === undefined ? this.#markLongFirstSync : undefined);
    } catch (err) {
      this.#o.log.warn('principal state could not be synced', { error: String(err) });
      throw err;
    }
    this.syncs++;
    for (const s of changes) {
      const k = stateKey(s.kind, s.id);
      const known = this.#states.get(k);
      if (!known || known.changedAt <= s.changedAt) this.#states.set(k, s);
      if (this.#newestChange === undefined || s.changedAt > this.#newestChange) this.#newestChange = s.changedAt;
    }
    // The cursor never runs ahead of this container's clock: a writer whose clock is fast must
    // not hide the changes of the others (theirs are re-read until this clock catches up).
    this.#newestChange = Math.min(this.#newestChange ?? startedAt, startedAt);
    this.#syncedAt = startedAt;
    this.#pointReads.clear();
  }
}
