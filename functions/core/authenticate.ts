/**
 * From request headers to a Principal: bearer tokens go to the JWT verifier, client
 * credentials (Basic or a single-string key) to the API-key exchange.
 */
import type { ClientCredentials } from './api-key.js';
import { extractCredentials, type HeaderSource } from './credentials.js';
import { CredentialsError } from './errors.js';
import type { JwtVerifier } from './jwt-verifier.js';
import type { Principal } from './principal.js';

/** The API-key path; implemented by `ApiKeyExchange`. */
export interface ApiKeyAuthenticator {
  authenticate(creds: ClientCredentials): Promise<Principal>;
}

/** The principal-state rule applied to every decision (`PrincipalStateSnapshot`). */
export interface PrincipalCheck {
  /** Synchronous on the hot path; a promise only when the state must be read first. */
  check(p: Principal): Principal | Promise<Principal>;
}

export interface AuthenticatorDeps {
  verifier: JwtVerifier;
  /** Revoked keys, blocked users, disabled tenants: checked on every path. Absent only without a state table. */
  state?: PrincipalCheck | undefined;
  /** Loaded on first use, so the JWT path never pays for the API-key path's dependencies. */
  apiKeys?: () => Promise<ApiKeyAuthenticator>;
  keyPrefix: string;
}

export class Authenticator {
  readonly #deps: AuthenticatorDeps;
  #apiKeys: Promise<ApiKeyAuthenticator> | undefined;

  constructor(deps: AuthenticatorDeps) {
    this.#deps = deps;
  }

  async authenticate(source: HeaderSource): Promise<Principal> {
    const principal = await this.#identify(source);
    return this.#deps.state ? this.#deps.state.check(principal) : principal;
  }

  async #identify(source: HeaderSource): Promise<Principal> {
    const creds = extractCredentials(source, this.#deps.keyPrefix);
    if (creds.kind === 'bearer') return (await this.#deps.verifier.verify(creds.token)).principal;
    const load = this.#deps.apiKeys;
    if (!load) throw new CredentialsError('ERR_API_KEYS_DISABLED', 'API keys are not accepted by this API');
    if (!this.#apiKeys) {
      this.#apiKeys = load();
      this.#apiKeys.catch(() => (this.#apiKeys = undefined));
    }
    return (await this.#apiKeys).authenticate({ clientId: creds.clientId, clientSecret: creds.clientSecret });
  }
}
