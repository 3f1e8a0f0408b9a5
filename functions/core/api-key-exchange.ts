/**
 * The API-key path: client credentials in, Principal out, asking the identity provider
 * about once per token lifetime.
 *
 * Level 1 is this container's memory (bounded, keyed by a hash of the credentials). Level 2
 * is the shared cache (DynamoDB), holding the token sealed with a key derived from the
 * secret. Concurrency: one exchange per key per container (single-flight) and, across
 * containers, a conditional-write lease so a cold-start stampede costs about one exchange.
 *
 * Revocation: a level-1 entry is trusted for `revocationCheckS` at most; then the client's
 * state is read again from level 2 (or, with level 2 unreachable, the provider is asked), so a
 * revoked or rotated key stops working within that bound even though the provider cannot
 * revoke tokens it has issued.
 *
 * Failures that are not the caller's fault (provider 5xx/429/timeouts, an unreadable cache)
 * never become a 401 or a negative entry; a cached token that is still valid keeps serving.
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ClientCredentials } from './api-key.js';
import type { ApiKeyAuthenticator } from './authenticate.js';
import { principalFromClaims } from './claims.js';
import type { Clock } from './clock.js';
import { DECISION_BUDGET_MS, type ApiKeyConfig, type JwtConfig } from './config.js';
import { CredentialsError, UpstreamUnavailableError } from './errors.js';
import type { JwtVerifier } from './jwt-verifier.js';
import type { Log } from './log.js';
import { LruCache } from './lru.js';
import type { Principal } from './principal.js';
import { credentialsCacheKey, openToken, sealToken } from './token-crypto.js';
import { isStale, type ClientState, type SharedTokenCache, type SharedTokenEntry, type TokenEndpoint } from './token-cache.js';

interface MemoryToken {
  kind: 'token';
  principal: Principal;
  exchangedAt: number;
  /** Epoch ms. */
  expiresAtMs: number;
  refreshAtMs: number;
  /** When the client's revocation state was last confirmed, epoch ms. */
  checkedAt: number;
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
  log: Log;
  /** How long a shared in-flight lookup may be joined (the decision budget); older ones are not. */
  singleFlightMs?: number;
}

/** Counters for benchmarks. */
export interface ApiKeyStats {
  /** Level-1 entries re-confirmed against the client's revocation state. */
  checkIns: number;
}

const POLL_MS = 50;
const NEGATIVE_AFTER_REVOCATION_MS = 10_000;

const rejected = (code = 'ERR_API_KEY_REJECTED') => new CredentialsError(code, 'the API key is not valid');

export class ApiKeyExchange implements ApiKeyAuthenticator {
  readonly #d: ApiKeyExchangeDeps;
  readonly #memory: LruCache<string, MemoryToken | MemoryInvalid>;
  readonly #inFlight = new Map<string, { promise: Promise<Principal>; startedAt: number }>();
  readonly stats: ApiKeyStats = { checkIns: 0 };

  constructor(deps: ApiKeyExchangeDeps) {
    this.#d = deps;
    this.#memory = new LruCache(deps.config.memoryCacheSize);
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
        return this.#once(`check:${key}`, () => this.#revalidate(key, creds, hit));
      }
      if (now < hit.expiresAtMs) current = hit;
      else this.#memory.delete(key);
    }
    return this.#once(key, () => this.#slowPath(key, creds, current));
  }

  /**
   * Single-flight per id. A failure is forgotten at once, so the next request tries afresh; an
   * entry older than the decision budget is no longer joined (it may be stuck on a dependency
   * that has since recovered): the next request starts its own.
   */
  #once(id: string, work: () => Promise<Principal>): Promise<Principal> {
    const now = this.#d.clock.now();
    const current = this.#inFlight.get(id);
    if (current && now - current.startedAt < (this.#d.singleFlightMs ?? DECISION_BUDGET_MS.default)) return current.promise;
    const entry = {
      startedAt: now,
      promise: work().finally(() => {
        if (this.#inFlight.get(id) === entry) this.#inFlight.delete(id);
      }),
    };
    this.#inFlight.set(id, entry);
    return entry.promise;
  }

  /** A level-1 entry has been trusted for the revocation bound: confirm the client's state. */
  async #revalidate(key: string, creds: ClientCredentials, hit: MemoryToken): Promise<Principal> {
    const shared = this.#d.shared;
    let state: ClientState | undefined;
    if (shared) {
      try {
        this.stats.checkIns++;
        state = await shared.checkIn(creds.clientId, this.#d.clock.now());
      } catch (err) {
        this.#d.log.warn('token cache unreachable; asking the identity provider instead', { clientId: creds.clientId, error: String(err) });
      }
    }
    if (state === undefined) return this.#exchange(key, creds, undefined, hit);
    if (state.revoked) this.#refuseRevoked(key);
    if (isStale(state, hit.exchangedAt)) {
      this.#memory.delete(key);
      return this.#slowPath(key, creds, undefined);
    }
    hit.checkedAt = this.#d.clock.now();
    return hit.principal;
  }

  async #slowPath(key: string, creds: ClientCredentials, current: MemoryToken | undefined): Promise<Principal> {
    const shared = this.#d.shared;
    if (!shared) return this.#exchange(key, creds, undefined, current);
    try {
      const cached = await this.#readShared(key, creds);
      if (cached) return cached;
    } catch (err) {
      if (err instanceof CredentialsError) throw err;
      this.#d.log.warn('token cache unreachable; exchanging directly', { clientId: creds.clientId, error: String(err) });
      return this.#exchange(key, creds, undefined, current);
    }
    const holder = randomUUID();
    for (let round = 0; round < 2; round++) {
      let acquired: boolean;
      try {
        acquired = await shared.acquireLease(key, holder, this.#d.clock.now(), this.#d.config.leaseMs);
      } catch {
        return this.#exchange(key, creds, undefined, current);
      }
      if (acquired) {
        try {
          return await this.#exchange(key, creds, shared, current);
        } finally {
          shared.releaseLease(key, holder).catch(() => undefined);
        }
      }
      // Another container is exchanging these credentials: wait for its result.
      const peer = await this.#awaitPeer(key, creds);
      if (peer) return peer;
    }
    // The peer neither finished nor let go within two lease periods: do not wait forever.
    return this.#exchange(key, creds, shared, current);
  }

  /** Level 2: a usable token becomes a level-1 entry; a negative entry or a revoked client refuses. */
  async #readShared(key: string, creds: ClientCredentials): Promise<Principal | undefined> {
    const { entry, client } = await this.#d.shared!.read(key, creds.clientId);
    if (client.revoked) this.#refuseRevoked(key);
    const now = this.#d.clock.now();
    if (entry?.kind === 'invalid' && now < entry.until) {
      this.#memory.set(key, { kind: 'invalid', until: entry.until });
      throw rejected();
    }
    if (entry?.kind === 'token' && !isStale(client, entry.exchangedAt) && now < this.#refreshAt(entry.exchangedAt, entry.expiresAt * 1000)) {
      const token = openToken(creds, key, entry.sealed);
      if (token !== undefined) {
        const principal = principalFromClaims(decodeJwt(token), this.#d.jwtConfig, 'api_key');
        this.#remember(key, principal, entry.exchangedAt, entry.expiresAt * 1000);
        return principal;
      }
    }
    return undefined;
  }

  /** A revoked client: refuse, and remember it briefly so a burst of retries stays local. */
  #refuseRevoked(key: string): never {
    this.#memory.set(key, { kind: 'invalid', until: this.#d.clock.now() + NEGATIVE_AFTER_REVOCATION_MS });
    throw rejected('ERR_API_KEY_REVOKED');
  }

  async #awaitPeer(key: string, creds: ClientCredentials): Promise<Principal | undefined> {
    const polls = Math.ceil(this.#d.config.leaseMs / POLL_MS);
    for (let i = 0; i < polls; i++) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        const cached = await this.#readShared(key, creds);
        if (cached) return cached;
      } catch (err) {
        if (err instanceof CredentialsError) throw err;
        return undefined;
      }
    }
    return undefined;
  }

  async #exchange(key: string, creds: ClientCredentials, shared: SharedTokenCache | undefined, current: MemoryToken | undefined): Promise<Principal> {
    const startedAt = this.#d.clock.now();
    let exchanged;
    try {
      exchanged = await this.#d.tokenEndpoint.exchange(creds);
    } catch (err) {
      if (err instanceof CredentialsError) {
        const until = this.#d.clock.now() + this.#d.config.negativeCacheS * 1000;
        this.#memory.set(key, { kind: 'invalid', until });
        await shared?.putNegative(key, { kind: 'invalid', clientId: creds.clientId, until }).catch(() => undefined);
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
      // Record the use beside the write; "last used" is otherwise refreshed at each revalidation.
      await Promise.all([
        shared.putToken(key, entry).catch((e: unknown) => this.#d.log.warn('could not write the token cache', { error: String(e) })),
        shared.checkIn(creds.clientId, this.#d.clock.now()).catch(() => undefined),
      ]);
    }
    this.#remember(key, principal, startedAt, exp * 1000);
    return principal;
  }

  #remember(key: string, principal: Principal, exchangedAt: number, expiresAtMs: number): void {
    this.#memory.set(key, {
      kind: 'token',
      principal,
      exchangedAt,
      expiresAtMs,
      refreshAtMs: this.#refreshAt(exchangedAt, expiresAtMs),
      checkedAt: this.#d.clock.now(),
    });
  }

  /** Refresh shortly before expiry, but never in the first half of a short-lived token's life. */
  #refreshAt(exchangedAt: number, expiresAtMs: number): number {
    return Math.max(exchangedAt + (expiresAtMs - exchangedAt) / 2, expiresAtMs - this.#d.config.refreshBeforeS * 1000);
  }
}
