/**
 * Ports of the API-key path: the identity provider's token endpoint and the shared
 * (level-2) token cache. Adapters: `OAuthTokenEndpoint`, `DynamoDbTokenCache`.
 */
import type { ClientCredentials } from './api-key.js';

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

/** The provider rejected exactly these credentials; epoch ms until which to believe it. */
export interface SharedNegativeEntry {
  kind: 'invalid';
  clientId: string;
  until: number;
}

/** Revocation state of a client, written by the management API. */
export interface ClientState {
  revoked: boolean;
  /** Tokens whose exchange started before this (epoch ms) are no longer accepted (rotation). */
  notBefore: number;
}

export const ACTIVE_CLIENT: ClientState = { revoked: false, notBefore: 0 };

export function isStale(state: ClientState, exchangedAt: number): boolean {
  return state.revoked || exchangedAt < state.notBefore;
}

export interface SharedTokenCache {
  /** Reads the entry and the client's state in one round trip. */
  read(cacheKey: string, clientId: string): Promise<{ entry: SharedTokenEntry | SharedNegativeEntry | undefined; client: ClientState }>;
  /** Reads the client's state and records that the key was used at `now` (one write). */
  checkIn(clientId: string, now: number): Promise<ClientState>;
  putToken(cacheKey: string, entry: SharedTokenEntry): Promise<void>;
  putNegative(cacheKey: string, entry: SharedNegativeEntry): Promise<void>;
  /** Conditional write: true when this caller now holds the exchange lease for `cacheKey`. */
  acquireLease(cacheKey: string, holder: string, now: number, leaseMs: number): Promise<boolean>;
  releaseLease(cacheKey: string, holder: string): Promise<void>;
}

/** Written by the management API when a key is revoked or rotated. */
export interface ClientRevocations {
  revokeClient(clientId: string, at: number): Promise<void>;
  /** Rotation: tokens exchanged before `at` stop being accepted. */
  setNotBefore(clientId: string, at: number): Promise<void>;
  /** Removes cached tokens of credentials the caller knows (hygiene; revocation does not depend on it). */
  purge(cacheKeys: string[]): Promise<void>;
  /** When each client last authenticated through the authorizer, epoch ms. */
  lastUsed(clientIds: string[]): Promise<Map<string, number>>;
}
