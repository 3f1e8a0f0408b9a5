/**
 * Client-credentials grant against an OAuth 2.0 token endpoint (Auth0's `/oauth/token`, or
 * any RFC 6749 server). Decides what the answer means for the caller:
 * - the provider rejected the credentials → CredentialsError (401, negative cache);
 * - rate limited (429) → UpstreamUnavailableError with the provider's reset time;
 * - anything else (5xx, timeouts, garbage, a request the provider finds malformed, which is
 *   our configuration's fault) → UpstreamUnavailableError. Never a 401 for those.
 */
import type { ClientCredentials } from '../core/api-key.js';
import type { ApiKeyConfig } from '../core/config.js';
import { CredentialsError, UpstreamUnavailableError } from '../core/errors.js';
import type { HttpClient, HttpResponse } from '../core/http-client.js';
import type { ExchangedToken, TokenEndpoint } from '../core/token-cache.js';

/** OAuth error codes that mean "these credentials are not good" (RFC 6749 §5.2, Auth0). */
const CREDENTIAL_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'access_denied', 'invalid_grant']);
const MAX_RETRY_AFTER_S = 3600;

type EndpointConfig = Pick<ApiKeyConfig, 'tokenEndpoint' | 'audience' | 'audienceParam' | 'clientAuth' | 'exchangeTimeoutMs' | 'defaultRetryAfterS'>;

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

export class OAuthTokenEndpoint implements TokenEndpoint {
  readonly #cfg: EndpointConfig;
  readonly #fetch: HttpClient;
  readonly #now: () => number;

  constructor(cfg: EndpointConfig, opts: { fetch?: HttpClient; now?: () => number } = {}) {
    this.#cfg = cfg;
    this.#fetch = opts.fetch ?? fetch;
    this.#now = opts.now ?? Date.now;
  }

  async exchange(creds: ClientCredentials): Promise<ExchangedToken> {
    const body = new URLSearchParams({ grant_type: 'client_credentials', [this.#cfg.audienceParam]: this.#cfg.audience });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (this.#cfg.clientAuth === 'client_secret_basic') {
      headers.authorization = `Basic ${Buffer.from(`${formEncode(creds.clientId)}:${formEncode(creds.clientSecret)}`).toString('base64')}`;
    } else {
      body.set('client_id', creds.clientId);
      body.set('client_secret', creds.clientSecret);
    }
    let res: HttpResponse;
    let text: string;
    try {
      res = await this.#fetch(this.#cfg.tokenEndpoint, {
        method: 'POST',
        headers,
        body: body.toString(),
        signal: AbortSignal.timeout(this.#cfg.exchangeTimeoutMs),
        redirect: 'error',
      });
      text = await res.text();
    } catch (err) {
      throw new UpstreamUnavailableError('ERR_TOKEN_ENDPOINT_UNREACHABLE', 'the identity provider did not answer', this.#cfg.defaultRetryAfterS, { cause: err });
    }
    const json = parseJson(text);
    if (res.ok) return this.#token(json);
    // A 429, or a 503 that says when to come back: the provider asked for a pause, which every container honours.
    const pause = res.status === 429 || (res.status === 503 && (res.headers.get('retry-after') !== null || res.headers.get('x-ratelimit-reset') !== null));
    if (res.status === 429) {
      throw new UpstreamUnavailableError('ERR_TOKEN_ENDPOINT_RATE_LIMITED', 'the identity provider is rate limiting', this.#retryAfter(res), { fromProvider: true });
    }
    const error = typeof json?.error === 'string' ? json.error : undefined;
    if (res.status === 401 || ((res.status === 400 || res.status === 403) && error !== undefined && CREDENTIAL_ERRORS.has(error))) {
      throw new CredentialsError('ERR_API_KEY_REJECTED', 'the identity provider rejected the API key');
    }
    const code = res.status >= 500 ? 'ERR_TOKEN_ENDPOINT_FAILED' : 'ERR_TOKEN_REQUEST_REFUSED';
    throw new UpstreamUnavailableError(code, `the token endpoint answered ${res.status}${error ? ` ${error}` : ''}`, this.#retryAfter(res), { fromProvider: pause });
  }

  #token(json: Record<string, unknown> | undefined): ExchangedToken {
    const accessToken = json?.access_token;
    const expiresIn = json?.expires_in;
    const tokenType = json?.token_type;
    if (typeof accessToken !== 'string' || typeof expiresIn !== 'number' || !(expiresIn > 0) || (typeof tokenType === 'string' && tokenType.toLowerCase() !== 'bearer')) {
      throw new UpstreamUnavailableError('ERR_TOKEN_RESPONSE_INVALID', 'the token endpoint answered without a usable token', this.#cfg.defaultRetryAfterS);
    }
    return { accessToken, expiresIn };
  }

  /** Retry-After (seconds or HTTP date), else Auth0's x-ratelimit-reset (epoch seconds). */
  #retryAfter(res: HttpResponse): number {
    const nowS = this.#now() / 1000;
    const ra = res.headers.get('retry-after');
    let seconds: number | undefined;
    if (ra !== null) {
      seconds = /^\d+$/.test(ra.trim()) ? Number(ra) : (Date.parse(ra) / 1000 - nowS) || undefined;
    }
    const reset = res.headers.get('x-ratelimit-reset');
    if (seconds === undefined && reset !== null && /^\d+$/.test(reset.trim())) seconds = Number(reset) - nowS;
    if (seconds === undefined || !Number.isFinite(seconds) || seconds < 1) seconds = this.#cfg.defaultRetryAfterS;
    return Math.min(seconds, MAX_RETRY_AFTER_S);
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
