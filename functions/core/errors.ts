/**
 * Errors of the core. Every error carries a stable `code` that callers can switch on;
 * the HTTP layer (authorizer decision, problem+json) maps codes to answers in one place.
 */
export class LatchkeyError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** RFC 6750 error codes used in `WWW-Authenticate`. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * The caller's credentials are missing, malformed or not valid. Answered with 401
 * (`WWW-Authenticate`); never used for failures that are not the caller's fault.
 */
export class CredentialsError extends LatchkeyError {
  /** RFC 6750 code; `undefined` when no credentials were sent at all. */
  readonly bearerError: BearerErrorCode | undefined;
  /** Pass `null` when no credentials were sent (RFC 6750 §3.1: no error code then). */
  constructor(code: string, message: string, bearerError: BearerErrorCode | null = 'invalid_token', options?: { cause?: unknown }) {
    super(code, message, options);
    this.bearerError = bearerError ?? undefined;
  }
}

/**
 * A dependency (identity provider, JWKS endpoint, cache) failed or refused for a while.
 * Answered with 503 and `Retry-After`; never turned into a 401 or a negative cache entry.
 */
export class UpstreamUnavailableError extends LatchkeyError {
  /** Seconds after which a retry is sensible. */
  readonly retryAfterS: number;
  /** The dependency itself asked for the pause (a 429 or 503 with a reset time): honour it everywhere. */
  readonly fromProvider: boolean;
  constructor(code: string, message: string, retryAfterS: number, options?: { cause?: unknown; fromProvider?: boolean }) {
    super(code, message, options);
    this.retryAfterS = Math.max(1, Math.ceil(retryAfterS));
    this.fromProvider = options?.fromProvider ?? false;
  }
}

/** Configuration is missing or invalid; thrown at start, never per request. */
export class ConfigError extends LatchkeyError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}
