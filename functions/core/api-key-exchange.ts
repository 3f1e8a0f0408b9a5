/**
 * The API-key path: client credentials in, Principal out, asking the identity provider
 * about once per token lifetime.
 *
 * Level 1 is this container's memory (bounded, keyed by a hash of the credentials). Level 2
 * is the shared cache (DynamoDB), holding the token sealed with a key derived from the
 * secret. Concurrency: one exchange per key per container (single-flight) and, across
 * containers, a conditional-write lease so a cold-start stampede costs about one exchange.
 *
 * Revocation: with level 2, the principal's state is Latchkey's (`principal-state.ts`): level 2
 * reads the client's state with the token in one consistent round trip, and every decision,
 * level-1 hits included, is checked by the caller (`Authenticator`) against the container's
 * state snapshot, which is never older than the bound. The principal carries the time its
 * exchange *started* (`issuedAtMs`), so an exchange in flight across a revocation or rotation is
 * judged by when it began. Without level 2 (not the deployed configuration), a level-1 entry is
 * trusted for `revocationCheckS` at most and then exchanged again, so the provider decides.
 *
 * Failures that are not the caller's fault (provider 5xx/429/timeouts, an unreadable cache)
 * never become a 401 or a negative entry; a cached token that is still valid keeps serving.
 *
 * Abuse: with level 2, a client id that is not a Latchkey key (no client state, written when a
 * key is issued) is refused after one read, before any exchange and with no write, so random
 * credentials never reach the provider. Exchanges of credentials not cached yet are limited per
 * container (`exchangeBudgetPerMin`), and after the provider asks for a pause (429/503 with a
 * reset time) no container calls it before the reset (a marker in level 2 tells the others).
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ClientCredentials } from './api-key.js';
import type { ApiKeyAuthenticator } from './authenticate.js';
import { principalFromClaims } from './claims.js';
import { realSleep, type Clock, type Sleep } from './clock.js';
import { DECISION_BUDGET_MS, type ApiKeyConfig, type JwtConfig } from './config.js';
import { CredentialsError, UpstreamUnavailableError } from './errors.js';
import { CREDENTIAL_PROPAGATION_MS, isRevokedAt, type PrincipalState } from './principal-state.js';
import type { JwtVerifier } from './jwt-verifier.js';
import type { Log } from './log.js';
import { LruCache } from './lru.js';
import { SingleFlight } from './once.js';
import type { Principal } from './principal.js';
import { credentialsCacheKey, openToken, sealToken } from './token-crypto.js';
import type { LeaseFailure, SharedLease, SharedTokenCache, SharedTokenEntry, TokenEndpoint } from './token-cache.js';

interface MemoryToken {
  kind: 'token';
  principal: Principal;
  exchangedAt: number;
  /** Epoch ms. */
  expiresAtMs: number;
  refreshAtMs: number;
  /** Without level 2: when the provider last confirmed the key. With it: when its use was last recorded. */
  checkedAt: number;
}

/** What a level-2 read found: a usable token (as a principal), the client's state, and the lease if asked. */
interface SharedRead {
  principal?: Principal;
  client: PrincipalState | undefined;
  lease?: SharedLease | undefined;
}

interface MemoryInvalid {
  kind: 'invalid';
  until: number;
}

export interface ApiKeyExchangeDeps {
  config: ApiKeyConfig;
  jwtConfig: JwtConfig;
  clock: Clock;
  verifier: JwtVerifier;
  tokenEndpoint: TokenEndpoint;
  /** Level 2; without it only level 1 runs and revalidation asks the provider. */
  shared?: SharedTokenCache | undefined;
  /** The client's state if the container's state snapshot knows it as a key (used only when level 2 is down). */
  keys?: ((clientId: string) => PrincipalState | undefined) | undefined;
  log: Log;
  /** How long a shared in-flight lookup may be joined (the decision budget); older ones are not. */
  singleFlightMs?: number;
  /** The decision budget: waiting on another container's exchange ends within it. Default `singleFlightMs`, else `DECISION_BUDGET_MS.default`. */
  decisionBudgetMs?: number;
  /** Sleeps between lease reads; tests pass one that steps their clock. */
  sleep?: Sleep;
}

/** Counters for benchmarks. */
export interface ApiKeyStats {
  /** "Last used" writes (at most one per key per `revocationCheckS` per container). */
  useRecords: number;
}

/** First pause before reading another container's lease; doubled after each read, up to `MAX_WAIT_STEP_MS`. */
const FIRST_WAIT_STEP_MS = 25;
const MAX_WAIT_STEP_MS = 400;
/**
 * The share of the decision budget a container spends waiting on another's exchange: the rest
 * covers a lease read still in flight and the answer itself, so the decision is a 503 of ours and
 * not the budget's cut-off.
 */
const WAIT_SHARE_OF_BUDGET = 0.8;
/** Times a waiter tries to take over a lease that came free before it answers 503. */
const MAX_TAKEOVERS = 3;
/** Failures of this container alone: no marker, other containers may well succeed. */
const LOCAL_REFUSALS = new Set(['ERR_EXCHANGE_BUDGET']);
const NEGATIVE_AFTER_REVOCATION_MS = 10_000;

const rejected = (code = 'ERR_API_KEY_REJECTED') => new CredentialsError(code, 'the API key is not valid');

export class ApiKeyExchange implements ApiKeyAuthenticator {
  readonly #d: ApiKeyExchangeDeps;
  readonly #memory: LruCache<string, MemoryToken | MemoryInvalid>;
  /** One exchange or lookup per key at a time, joined for the decision budget at most. */
  readonly #inFlight: SingleFlight<Principal>;
  readonly stats: ApiKeyStats = { useRecords: 0 };
  /** Epoch ms before which the token endpoint is not called (the provider asked for a pause). */
  #backoffUntil = 0;
  #budgetWindowStart = 0;
  #budgetUsed = 0;

  constructor(deps: ApiKeyExchangeDeps) {
    this.#d = deps;
    this.#memory = new LruCache(deps.config.memoryCacheSize);
    this.#inFlight = new SingleFlight(deps.clock, deps.singleFlightMs ?? DECISION_BUDGET_MS.default);
  }

  /** Entries in level 1 (tokens and negative entries). */
  get memoryEntries(): number {
    return this.#memory.size;
  }

  async authenticate(creds: ClientCredentials): Promise<Principal> {
    const key = credentialsCacheKey(creds);
    const now = this.#d.clock.now();
    const hit = this.#memory.get(key);
    let current: MemoryToken | undefined;
    if (hit?.kind === 'invalid') {
      if (now < hit.until) throw rejected();
      this.#memory.delete(key);
    } else if (hit) {
      if (now < hit.refreshAtMs) {
        if (now - hit.checkedAt < this.#d.config.revocationCheckS * 1000) return hit.principal;
        if (this.#d.shared) {
          this.#recordUse(creds.clientId, hit, now);
          return hit.principal;
        }
        // No shared state: the provider is the only one who knows; ask it again.
        return this.#inFlight.run(key, () => this.#exchange(key, creds, undefined, hit, undefined));
      }
      if (now < hit.expiresAtMs) current = hit;
      else this.#memory.delete(key);
    }
    return this.#inFlight.run(key, () => this.#slowPath(key, creds, current, now));
  }

  get #budgetMs(): number {
    return this.#d.decisionBudgetMs ?? this.#d.singleFlightMs ?? DECISION_BUDGET_MS.default;
  }

  /** "Last used", written in the background at most once per interval per key and container. */
  #recordUse(clientId: string, hit: MemoryToken, now: number): void {
    hit.checkedAt = now;
    this.stats.useRecords++;
    this.#d.shared!.recordUse(clientId, now).catch((err: unknown) => this.#d.log.warn('could not record key use', { clientId, error: String(err) }));
  }

  async #slowPath(key: string, creds: ClientCredentials, current: MemoryToken | undefined, decisionStartedAt: number): Promise<Principal> {
    const shared = this.#d.shared;
    if (!shared) return this.#exchange(key, creds, undefined, current, undefined);
    let client: PrincipalState | undefined;
    try {
      const read = await this.#readShared(key, creds);
      if (read.principal) return read.principal;
      client = read.client;
      // Not a Latchkey key: refused here, before any exchange, lease or write.
      if (client?.keyId === undefined) {
        this.#memory.set(key, { kind: 'invalid', until: this.#d.clock.now() + this.#d.config.negativeCacheS * 1000 });
        throw rejected('ERR_API_KEY_UNKNOWN');
      }
    } catch (err) {
      if (err instanceof CredentialsError) throw err;
      // Level 2 is down: only a client the state snapshot knows as a key goes on to the provider
      // (its id is known, so it may be logged); anything else waits (503), never a 401.
      const known = this.#d.keys?.(creds.clientId);
      if (!known) throw new UpstreamUnavailableError('ERR_TOKEN_CACHE_UNAVAILABLE', 'the key could not be checked right now', this.#d.config.defaultRetryAfterS, { cause: err });
      this.#d.log.warn('token cache unreachable; exchanging directly', { clientId: creds.clientId, error: String(err) });
      return this.#exchange(key, creds, undefined, current, known);
    }
    // Waiting on another container ends at its lease's expiry or within the decision budget,
    // whichever comes first; then a 503 with Retry-After, never a hang.
    const waitUntil = decisionStartedAt + this.#budgetMs * WAIT_SHARE_OF_BUDGET;
    const holder = randomUUID();
    for (let takeovers = 0; ; takeovers++) {
      // Each round follows a lease that came free and went to someone else; a few such races, then 503.
      if (takeovers > MAX_TAKEOVERS) throw new UpstreamUnavailableError('ERR_EXCHANGE_IN_PROGRESS', 'another request is exchanging this API key; retry shortly', 1);
      let acquired: boolean;
      try {
        acquired = await shared.acquireLease(key, holder, this.#d.clock.now(), this.#d.config.leaseMs);
      } catch {
        return this.#exchange(key, creds, undefined, current, client);
      }
      if (acquired) return this.#exchangeHolding(key, holder, creds, shared, current, client);
      // Another container is refreshing a token this one still holds: keep serving it meanwhile.
      if (current && this.#d.clock.now() < current.expiresAtMs) return current.principal;
      const peer = await this.#awaitPeer(key, creds, waitUntil);
      if (peer === 'unreadable') return this.#exchange(key, creds, undefined, current, client);
      if (peer !== 'free') return peer;
      // Let go without a token, or its holder is presumed dead: take the lease (or wait on whoever did).
    }
  }

  /** Exchanges under the lease; a failure that is not the caller's leaves a marker that waiters answer 503 from. */
  async #exchangeHolding(
    key: string,
    holder: string,
    creds: ClientCredentials,
    shared: SharedTokenCache,
    current: MemoryToken | undefined,
    client: PrincipalState | undefined,
  ): Promise<Principal> {
    let failure: LeaseFailure | undefined;
    try {
      return await this.#exchange(key, creds, shared, current, client);
    } catch (err) {
      if (err instanceof UpstreamUnavailableError && !LOCAL_REFUSALS.has(err.code)) {
        // Short: never longer than a lease, so the marker holds off retries no longer than a dead holder would.
        failure = { until: this.#d.clock.now() + Math.min(err.retryAfterS * 1000, this.#d.config.leaseMs), code: err.code };
      }
      throw err;
    } finally {
      shared.releaseLease(key, holder, failure).catch(() => undefined);
    }
  }

  /**
   * Level 2: a usable token becomes a level-1 entry; a negative entry or a revoked client
   * refuses; a token exchanged before the client's not-before is not used.
   */
  async #readShared(key: string, creds: ClientCredentials, withLease = false): Promise<SharedRead> {
    const { entry, client, providerBackoffUntil, lease } = await this.#d.shared!.read(key, creds.clientId, withLease ? { withLease } : undefined);
    const now = this.#d.clock.now();
    if (providerBackoffUntil !== undefined && providerBackoffUntil > this.#backoffUntil) this.#backoffUntil = providerBackoffUntil;
    if (isRevokedAt(client, now)) this.#refuseRevoked(key);
    if (entry?.kind === 'invalid' && now < entry.until) {
      this.#memory.set(key, { kind: 'invalid', until: entry.until });
      throw rejected();
    }
    if (entry?.kind === 'token' && entry.exchangedAt >= (client?.notBefore ?? 0) && now < this.#refreshAt(entry.exchangedAt, entry.expiresAt * 1000)) {
      const token = openToken(creds, key, entry.sealed);
      if (token !== undefined) {
        const principal = this.#remember(key, principalFromClaims(decodeJwt(token), this.#d.jwtConfig, 'api_key'), entry.exchangedAt, entry.expiresAt * 1000);
        return { principal, client };
      }
    }
    return { client, lease };
  }

  /** A revoked client: refuse, and remember it briefly so a burst of retries stays local. */
  #refuseRevoked(key: string): never {
    this.#memory.set(key, { kind: 'invalid', until: this.#d.clock.now() + NEGATIVE_AFTER_REVOCATION_MS });
    throw rejected('ERR_API_KEY_REVOKED');
  }

  /**
   * Waits on the lease holder's result: reads (token and lease in one round trip) with back-off
   * on the injected clock, until a token appears (the principal), the holder marked a failure
   * (503 at once), the lease is free again ('free': released without a token, or expired), or
   * `waitUntil` passes (503 with the lease's remaining time). 'unreadable': level 2 failed.
   */
  async #awaitPeer(key: string, creds: ClientCredentials, waitUntil: number): Promise<Principal | 'free' | 'unreadable'> {
    const sleep = this.#d.sleep ?? realSleep;
    let step = FIRST_WAIT_STEP_MS;
    let leaseUntil: number | undefined;
    for (;;) {
      const before = this.#d.clock.now();
      if (before >= waitUntil) {
        const retryAfterS = leaseUntil !== undefined && leaseUntil > before ? (leaseUntil - before) / 1000 : 1;
        throw new UpstreamUnavailableError('ERR_EXCHANGE_IN_PROGRESS', 'another request is exchanging this API key; retry shortly', retryAfterS);
      }
      await sleep(Math.min(step, waitUntil - before));
      step = Math.min(step * 2, MAX_WAIT_STEP_MS);
      let read: SharedRead;
      try {
        read = await this.#readShared(key, creds, true);
      } catch (err) {
        if (err instanceof CredentialsError) throw err;
        return 'unreadable';
      }
      if (read.principal) return read.principal;
      const now = this.#d.clock.now();
      const lease = read.lease;
      if (lease?.failedUntil !== undefined && now < lease.failedUntil) {
        throw new UpstreamUnavailableError('ERR_PEER_EXCHANGE_FAILED', `the identity provider failed this key's exchange just now (${lease.failureCode ?? 'unknown'})`, (lease.failedUntil - now) / 1000);
      }
      // Free on the same terms as `acquireLease` takes it.
      if (!lease || now >= Math.max(lease.leaseUntil, lease.failedUntil ?? 0)) return 'free';
      leaseUntil = lease.leaseUntil;
    }
  }

  async #exchange(
    key: string,
    creds: ClientCredentials,
    shared: SharedTokenCache | undefined,
    current: MemoryToken | undefined,
    client: PrincipalState | undefined,
  ): Promise<Principal> {
    const startedAt = this.#d.clock.now();
    this.#admitExchange(startedAt, current);
    let exchanged;
    try {
      exchanged = await this.#d.tokenEndpoint.exchange(creds);
    } catch (err) {
      if (err instanceof UpstreamUnavailableError && err.fromProvider) this.#pause(err.retryAfterS, shared);
      const propagating = client?.createdAt !== undefined ? client.createdAt + CREDENTIAL_PROPAGATION_MS - this.#d.clock.now() : 0;
      if (err instanceof CredentialsError && propagating > 0) {
        // New credentials the provider may not accept yet: not proof of a wrong key, and never a negative entry.
        this.#d.log.info('API key not yet accepted by the identity provider', { clientId: creds.clientId });
        throw new UpstreamUnavailableError('ERR_API_KEY_PROPAGATING', 'the API key is not active yet', propagating / 1000, { cause: err });
      }
      if (err instanceof CredentialsError) {
        const until = this.#d.clock.now() + this.#d.config.negativeCacheS * 1000;
        this.#memory.set(key, { kind: 'invalid', until });
        await shared?.putNegative(key, { kind: 'invalid', until }).catch(() => undefined);
        this.#d.log.info('API key rejected by the identity provider', { clientId: creds.clientId, reason: err.code });
        throw err;
      }
      if (err instanceof UpstreamUnavailableError && current && this.#d.clock.now() < current.expiresAtMs) {
        this.#d.log.warn('identity provider unavailable; serving the cached token until it expires', { clientId: creds.clientId, reason: err.code });
        return current.principal;
      }
      throw err;
    }
    let principal: Principal;
    let exp: number;
    try {
      const verified = await this.#d.verifier.verify(exchanged.accessToken, 'api_key');
      principal = verified.principal;
      exp = Math.min(verified.principal.expiresAt, Math.floor(startedAt / 1000) + exchanged.expiresIn);
    } catch (err) {
      if (!(err instanceof CredentialsError)) throw err;
      // The provider accepted the key but issued a token we do not accept: our configuration
      // is wrong, not the caller's key. Say so without telling the caller to discard the key.
      this.#d.log.error('the identity provider issued a token the verifier refuses', { clientId: creds.clientId, reason: err.code });
      throw new UpstreamUnavailableError('ERR_EXCHANGED_TOKEN_REFUSED', 'the exchanged token was refused', this.#d.config.defaultRetryAfterS);
    }
    this.#d.log.info('API key exchanged', { clientId: creds.clientId, tenantId: principal.tenantId ?? null });
    const entry: SharedTokenEntry = { kind: 'token', clientId: creds.clientId, sealed: sealToken(creds, key, exchanged.accessToken), exchangedAt: startedAt, expiresAt: exp };
    if (shared) {
      // Record the use beside the write; "last used" is otherwise refreshed from level-1 hits.
      await Promise.all([
        shared.putToken(key, entry).catch((e: unknown) => this.#d.log.warn('could not write the token cache', { error: String(e) })),
        shared.recordUse(creds.clientId, this.#d.clock.now()).catch(() => undefined),
      ]);
    }
    return this.#remember(key, principal, startedAt, exp * 1000);
  }

  /**
   * May this container call the token endpoint now? Not while the provider asked for a pause, and
   * not past the per-minute budget for credentials it has no token for. 503, never 401.
   */
  #admitExchange(now: number, current: MemoryToken | undefined): void {
    if (now < this.#backoffUntil) {
      if (current && now < current.expiresAtMs) return;
      throw new UpstreamUnavailableError('ERR_TOKEN_ENDPOINT_BACKING_OFF', 'the identity provider asked for a pause', (this.#backoffUntil - now) / 1000);
    }
    if (current) return;
    if (now - this.#budgetWindowStart >= 60_000) {
      this.#budgetWindowStart = now;
      this.#budgetUsed = 0;
    }
    if (this.#budgetUsed >= this.#d.config.exchangeBudgetPerMin) {
      throw new UpstreamUnavailableError('ERR_EXCHANGE_BUDGET', 'too many new API keys at once; retry shortly', (this.#budgetWindowStart + 60_000 - now) / 1000);
    }
    this.#budgetUsed++;
  }

  /** The provider asked for a pause: no call from here before it ends, and the other containers are told. */
  #pause(retryAfterS: number, shared: SharedTokenCache | undefined): void {
    const until = this.#d.clock.now() + retryAfterS * 1000;
    if (until <= this.#backoffUntil) return;
    this.#backoffUntil = until;
    (shared ?? this.#d.shared)?.putProviderBackoff(until).catch(() => undefined);
  }

  /** Keeps the principal in level 1, stamped with the start of the exchange that vouched for it. */
  #remember(key: string, verified: Principal, exchangedAt: number, expiresAtMs: number): Principal {
    const principal: Principal = { ...verified, issuedAtMs: exchangedAt };
    this.#memory.set(key, {
      kind: 'token',
      principal,
      exchangedAt,
      expiresAtMs,
      refreshAtMs: this.#refreshAt(exchangedAt, expiresAtMs),
      checkedAt: this.#d.clock.now(),
    });
    return principal;
  }

  /** Refresh shortly before expiry, but never in the first half of a short-lived token's life. */
  #refreshAt(exchangedAt: number, expiresAtMs: number): number {
    return Math.max(exchangedAt + (expiresAtMs - exchangedAt) / 2, expiresAtMs - this.#d.config.refreshBeforeS * 1000);
  }
}
