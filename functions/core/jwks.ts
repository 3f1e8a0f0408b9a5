/**
 * The issuer's key set, fetched once per container and kept.
 *
 * - Concurrent requests share one in-flight fetch.
 * - An unknown `kid` is judged by when the key set was fetched. A set fetched after the token
 *   reached us, or after its `iat` plus the clock tolerance (the issuer's clock may be behind
 *   ours), had the key if it exists: 401. An older set may predate a key that is new: refetch
 *   if the cooldown allows, else 503 + Retry-After (the rest of the cooldown), never 401. So a
 *   flood of made-up `kid`s cannot hammer the JWKS endpoint (the "penalty box" of
 *   aws-jwt-verify), nor make a genuinely new `kid` look invalid during a rotation.
 * - A failed fetch is retried no sooner than the failure back-off, before the first
 *   successful load too; until then the answer is 503.
 * - When the endpoint is down or slow, the last good key set keeps serving the `kid`s it has;
 *   a token whose `kid` we cannot resolve then gets 503, not 401, because the key may exist.
 * - Keys are imported once per (kid, alg) and reused.
 */
import { importJWK, type JWK } from 'jose';
import type { Clock } from './clock.js';
import type { HttpClient } from './http-client.js';
import { CredentialsError, UpstreamUnavailableError } from './errors.js';

export interface JwksOptions {
  uri: string;
  timeoutMs: number;
  /** Minimum interval between fetches caused by unknown `kid`s. */
  cooldownMs: number;
  /** After this age the set is refreshed in the background while the old one keeps serving. */
  maxAgeMs: number;
  clock: Clock;
  /** How far the issuer's clock may be behind ours, for judging a token's `iat`. */
  clockToleranceMs?: number;
  /** Defaults to the global `fetch`. */
  fetch?: HttpClient;
  /** Called with the `kid`s that a refresh removed, so caches of tokens they signed can go. */
  onKeysRemoved?: (kids: string[]) => void;
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

/** Interval between retries after a failed fetch, whatever the cooldown. */
const FAILURE_BACKOFF_MS = 5000;
const MAX_JWKS_BYTES = 256 * 1024;

export class JwksCache {
  readonly #opts: JwksOptions;
  readonly #fetch: HttpClient;
  /** The key set by `kid` (keys without one get an internal id). */
  #jwks = new Map<string, JWK>();
  /** Imported keys by `<set id>\0<alg>`: the pending import, and the key once it is done (for the fast path). */
  readonly #imported = new Map<string, { pending: Promise<VerifyKey>; key?: VerifyKey }>();
  #loadedAt = -Infinity;
  /** When the fetch that produced the current key set started, and its number (see `fetches`). */
  #loadedFrom = -Infinity;
  #loadedFetch = 0;
  #lastAttemptAt = -Infinity;
  #lastFailureAt = -Infinity;
  /** Whether the most recent completed fetch failed: only a fresh key set may say a kid does not exist. */
  #lastFetchFailed = false;
  /** When an unknown kid last caused a fetch: the start of the cooldown. */
  #lastUnknownKidFetchAt = -Infinity;
  #inFlight: Promise<void> | undefined;
  /** Number of HTTP fetches made; exposed for tests and benchmarks. */
  fetches = 0;

  constructor(opts: JwksOptions) {
    this.#opts = opts;
    this.#fetch = opts.fetch ?? fetch;
  }

  /**
   * Starts loading the key set without waiting: called during a Lambda's init phase, so the
   * fetch overlaps the runtime's wait for the first event. A failure is retried by the first
   * request (a set that was never loaded is always fetched again).
   */
  prefetch(): Promise<void> {
    if (this.#loadedAt === -Infinity && !this.#inFlight) return this.#refresh().catch(() => undefined);
    return Promise.resolve();
  }

  /**
   * The key for a token header when it is known and imported, without a promise; `undefined`
   * sends the caller to `getKey`. Saves an await on the hot path.
   */
  readyKey(kid: string | undefined, alg: string): VerifyKey | undefined {
    if (kid === undefined || this.#opts.clock.now() - this.#loadedAt > this.#opts.maxAgeMs) return undefined;
    const id = this.#find(kid, alg);
    return id === undefined ? undefined : this.#imported.get(`${id}\u0000${alg}`)?.key;
  }

  /**
   * Resolves the key for a token header; throws CredentialsError or UpstreamUnavailableError.
   * `issuedAtS` is the token's `iat`, unverified: it only decides between 401 and a refetch
   * (bounded by the cooldown) or 503 for a `kid` the key set does not hold.
   */
  async getKey(kid: string | undefined, alg: string, issuedAtS?: number): Promise<VerifyKey> {
    const now = this.#opts.clock.now();
    const arrival = this.fetches;
    if (this.#jwks.size > 0 && now - this.#loadedAt > this.#opts.maxAgeMs && now - this.#lastAttemptAt > FAILURE_BACKOFF_MS) {
      // Stale but usable: refresh without making this request wait or fail.
      this.#refresh().catch(() => undefined);
    }
    // Rounds: join a fetch in flight (it may predate the key), then fetch for this request.
    for (let round = 0; round < 3; round++) {
      const id = this.#find(kid, alg);
      if (id !== undefined) return this.#import(id, alg);
      if (!this.#mayPredate(arrival, issuedAtS)) break;
      if (this.#inFlight) {
        await this.#inFlight.catch(() => undefined);
      } else {
        const waitMs = this.#fetchWaitMs(now);
        if (waitMs > 0) throw unavailable(waitMs);
        if (this.#loadedAt > -Infinity) this.#lastUnknownKidFetchAt = now;
        await this.#refresh().catch(() => undefined);
      }
      if (this.#lastFetchFailed) throw unavailable(FAILURE_BACKOFF_MS - (this.#opts.clock.now() - this.#lastFailureAt));
    }
    const id = this.#find(kid, alg);
    if (id !== undefined) return this.#import(id, alg);
    if (this.#mayPredate(arrival, issuedAtS)) throw unavailable(this.#fetchWaitMs(this.#opts.clock.now()));
    throw new CredentialsError('ERR_JWKS_NO_MATCHING_KEY', 'no key in the issuer key set matches the token');
  }

  /**
   * Whether the key set may predate the token's key. A set fetched after the token reached us
   * (`arrival`: the fetch count then) or after `iat` plus the tolerance holds the key if it
   * exists, since a key is published before it signs. Without `iat`, only the former counts.
   */
  #mayPredate(arrival: number, issuedAtS: number | undefined): boolean {
    if (this.#loadedFetch > arrival) return false;
    if (issuedAtS === undefined || !Number.isFinite(issuedAtS)) return true;
    return this.#loadedFrom < issuedAtS * 1000 + (this.#opts.clockToleranceMs ?? 0);
  }

  /** How long until a fetch for an unknown kid is allowed: the back-off after a failure, and (once loaded) the cooldown. */
  #fetchWaitMs(now: number): number {
    const backoff = this.#lastFetchFailed ? FAILURE_BACKOFF_MS - (now - this.#lastFailureAt) : 0;
    const cooldown = this.#loadedAt > -Infinity ? this.#opts.cooldownMs - (now - this.#lastUnknownKidFetchAt) : 0;
    return Math.max(0, backoff, cooldown);
  }

  /** The set id of the key that can verify this header, if any. */
  #find(kid: string | undefined, alg: string): string | undefined {
    if (kid !== undefined) {
      const jwk = this.#jwks.get(kid);
      return jwk && usable(jwk, alg) ? kid : undefined;
    }
    // No kid: acceptable only when exactly one key could have signed it.
    const candidates = [...this.#jwks].filter(([, k]) => usable(k, alg));
    return candidates.length === 1 ? candidates[0]![0] : undefined;
  }

  #import(id: string, alg: string): Promise<VerifyKey> {
    const importId = `${id}\u0000${alg}`;
    let entry = this.#imported.get(importId);
    if (!entry) {
      const imported: { pending: Promise<VerifyKey>; key?: VerifyKey } = { pending: importJWK(this.#jwks.get(id)!, alg) };
      imported.pending.then(
        (k) => (imported.key = k),
        () => this.#imported.delete(importId),
      );
      this.#imported.set(importId, imported);
      entry = imported;
    }
    return entry.pending;
  }

  #refresh(): Promise<void> {
    if (!this.#inFlight) {
      this.#inFlight = this.#load().finally(() => {
        this.#inFlight = undefined;
      });
    }
    return this.#inFlight;
  }

  async #load(): Promise<void> {
    const startedAt = this.#opts.clock.now();
    this.#lastAttemptAt = startedAt;
    const fetch = ++this.fetches;
    try {
      const res = await this.#fetch(this.#opts.uri, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
        redirect: 'error',
      });
      if (!res.ok) throw new Error(`JWKS endpoint answered ${res.status}`);
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error('JWKS document is too large');
      const body: unknown = JSON.parse(text);
      const keys = (body as { keys?: unknown }).keys;
      if (!Array.isArray(keys)) throw new Error('JWKS document has no keys array');
      const next = new Map<string, JWK>();
      let anonymous = 0;
      for (const k of keys as unknown[]) {
        if (typeof k !== 'object' || k === null || typeof (k as JWK).kty !== 'string') continue;
        const jwk = k as JWK;
        if ('d' in jwk) continue; // never accept private material as a verification key
        next.set(typeof jwk.kid === 'string' ? jwk.kid : `\u0000anon${anonymous++}`, jwk);
      }
      const previous = this.#jwks;
      const removed = [...previous.keys()].filter((kid) => !next.has(kid));
      this.#jwks = next;
      // An import stays valid only while its id still names the same key.
      for (const importId of [...this.#imported.keys()]) {
        const id = importId.slice(0, importId.lastIndexOf('\u0000'));
        if (!next.has(id) || JSON.stringify(next.get(id)) !== JSON.stringify(previous.get(id))) this.#imported.delete(importId);
      }
      this.#loadedAt = this.#opts.clock.now();
      this.#loadedFrom = startedAt;
      this.#loadedFetch = fetch;
      this.#lastFetchFailed = false;
      if (removed.length > 0) this.#opts.onKeysRemoved?.(removed);
    } catch (err) {
      this.#lastFailureAt = this.#opts.clock.now();
      this.#lastFetchFailed = true;
      throw err;
    }
  }
}

/** The key may exist but cannot be confirmed now: 503, retry after `waitMs`. */
function unavailable(waitMs: number): UpstreamUnavailableError {
  return new UpstreamUnavailableError('ERR_JWKS_UNAVAILABLE', 'the issuer key set cannot confirm this key right now', Math.max(1, waitMs / 1000));
}

function usable(jwk: JWK, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) return false;
  const kty = alg.startsWith('RS') || alg.startsWith('PS') ? 'RSA' : alg.startsWith('ES') ? 'EC' : alg === 'EdDSA' ? 'OKP' : '';
  return jwk.kty === kty;
}
