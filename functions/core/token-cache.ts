/**
 * Ports of the API-key path: the identity provider's token endpoint and the shared
 * (level-2) token cache. Adapters: `OAuthTokenEndpoint`, `DynamoDbTokenCache`.
 */
import type { ClientCredentials } from './api-key.js';
import type { PrincipalState } from './principal-state.js';

export interface ExchangedToken {
  accessToken: string;
  /** Seconds, as the token endpoint said. */
  expiresIn: number;
}

/**
 * Client-credentials grant. Throws `CredentialsError` when the provider rejects the
 * credentials and `UpstreamUnavailableError` for anything that is not the caller's fault.
 */
export interface TokenEndpoint {
  exchange(creds: ClientCredentials): Promise<ExchangedToken>;
}

/** A token as the shared cache holds it: sealed with a key derived from the secret. */
export interface SharedTokenEntry {
  kind: 'token';
  clientId: string;
  sealed: string;
  /** Epoch ms at which the exchange that produced the token started. */
  exchangedAt: number;
  /** Token expiry, epoch seconds. */
  expiresAt: number;
}

/** The provider rejected exactly these credentials; epoch ms until which to believe it. Holds no client id or secret. */
export interface SharedNegativeEntry {
  kind: 'invalid';
  until: number;
}

/** The cross-container exchange lease of one set of credentials, as a waiter reads it. */
export interface SharedLease {
  holder: string;
  /** Epoch ms after which the lease may be taken over (its holder is presumed dead). */
  leaseUntil: number;
  /** The holder's exchange failed for a reason not the caller's: epoch ms until which nobody retries it. */
  failedUntil?: number;
  /** The failure's code (an `UpstreamUnavailableError` code), for the waiters' answer and logs. */
  failureCode?: string;
}

/** The holder's exchange failed: waiters answer 503 until `until` (epoch ms). */
export interface LeaseFailure {
  until: number;
  code: string;
}

export interface SharedTokenCache {
  /**
   * Reads the entry, the client's state and the provider's back-off in one strongly consistent
   * round trip. `providerBackoffUntil`: epoch ms before which no container should call the token endpoint.
   * With `withLease`, the exchange lease too (for a container waiting on another's exchange).
   */
  read(
    cacheKey: string,
    clientId: string,
    opts?: { withLease?: boolean },
  ): Promise<{
    entry: SharedTokenEntry | SharedNegativeEntry | undefined;
    client: PrincipalState | undefined;
    providerBackoffUntil: number | undefined;
    lease?: SharedLease | undefined;
  }>;
  /** Tells the other containers to leave the token endpoint alone until `until` (epoch ms). */
  putProviderBackoff(until: number): Promise<void>;
  /** Records that the key was used at `now`; never after the client's revocation took effect. */
  recordUse(clientId: string, now: number): Promise<void>;
  putToken(cacheKey: string, entry: SharedTokenEntry): Promise<void>;
  putNegative(cacheKey: string, entry: SharedNegativeEntry): Promise<void>;
  /**
   * Conditional write: true when this caller now holds the exchange lease for `cacheKey`. Not
   * while another holder's lease runs, nor while a failure marker (`releaseLease` with a
   * failure) is younger than its `until`.
   */
  acquireLease(cacheKey: string, holder: string, now: number, leaseMs: number): Promise<boolean>;
  /** Lets go of the lease; with `failure`, leaves a marker that tells waiters to answer 503 at once. */
  releaseLease(cacheKey: string, holder: string, failure?: LeaseFailure): Promise<void>;
}

/** What key management needs of the token cache besides the principal state. */
export interface TokenCacheMaintenance {
  /** Removes cached tokens of credentials the caller knows (hygiene; revocation does not depend on it). */
  purge(cacheKeys: string[]): Promise<void>;
  /** When each client last authenticated through the authorizer, epoch ms. */
  lastUsed(clientIds: string[]): Promise<Map<string, number>>;
}
