/**
 * Bearer-token verification as a short pipeline: cheap structural checks, key lookup, the
 * signature and registered claims (jose), then the mapping to a Principal. A cache of tokens
 * already verified (keyed by a hash of the token, bounded, honouring `exp`) makes a repeated
 * token cost a hash and a map lookup instead of a signature check.
 */
import { hash } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { principalFromClaims } from './claims.js';
import type { Clock } from './clock.js';
import type { JwtConfig } from './config.js';
import type { HttpClient } from './http-client.js';
import { CredentialsError, LatchkeyError } from './errors.js';
import { JwksCache } from './jwks.js';
import { LruCache } from './lru.js';
import type { AuthMethod, Principal } from './principal.js';

export interface VerifiedToken {
  principal: Principal;
  kid: string | undefined;
}

interface CacheEntry {
  token: VerifiedToken;
  /** Epoch ms after which the entry must not be used. */
  notAfter: number;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'];

export interface JwtVerifierOptions {
  config: JwtConfig;
  clock: Clock;
  jwks?: JwksCache;
  fetch?: HttpClient;
}

export class JwtVerifier {
  readonly #cfg: JwtConfig;
  readonly #clock: Clock;
  readonly jwks: JwksCache;
  readonly #verified: LruCache<string, CacheEntry>;

  constructor(opts: JwtVerifierOptions) {
    this.#cfg = opts.config;
    this.#clock = opts.clock;
    this.#verified = new LruCache(opts.config.verifiedCacheSize);
    this.jwks =
      opts.jwks ??
      new JwksCache({
        uri: opts.config.jwksUri,
        timeoutMs: opts.config.jwksTimeoutMs,
        cooldownMs: opts.config.jwksCooldownMs,
        maxAgeMs: opts.config.jwksMaxAgeMs,
        clock: opts.clock,
        clockToleranceMs: opts.config.clockToleranceS * 1000,
        fetch: opts.fetch,
        // A key that left the issuer's set may have been compromised: forget what it vouched for.
        onKeysRemoved: (kids) => this.#verified.prune((e) => e.token.kid !== undefined && kids.includes(e.token.kid)),
      });
  }

  /** Number of tokens held by the verified-token cache. */
  get cachedTokens(): number {
    return this.#verified.size;
  }

  /** Verifies a compact JWS access token; throws CredentialsError or UpstreamUnavailableError. */
  async verify(token: string, authMethod: AuthMethod = 'jwt'): Promise<VerifiedToken> {
    if (token.length > this.#cfg.maxTokenBytes) throw invalid('ERR_JWT_TOO_LARGE', 'token is too large');
    const cacheKey = authMethod === 'jwt' ? hash('sha256', token, 'base64') : undefined;
    if (cacheKey !== undefined) {
      const hit = this.#verified.get(cacheKey);
      if (hit) {
        if (this.#clock.now() < hit.notAfter) return hit.token;
        this.#verified.delete(cacheKey);
      }
    }
    const header = this.#checkStructure(token);
    const key = this.jwks.readyKey(header.kid, header.alg) ?? (await this.jwks.getKey(header.kid, header.alg, unverifiedIssuedAt(token)));
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: this.#cfg.algorithms,
        issuer: this.#cfg.issuer,
        audience: this.#cfg.audiences,
        clockTolerance: this.#cfg.clockToleranceS,
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['exp'],
        ...(this.#cfg.requiredTyp ? { typ: this.#cfg.requiredTyp } : {}),
      }));
    } catch (err) {
      throw mapJoseError(err);
    }
    // Only what a cache hit needs is kept: the payload would double an entry's memory.
    const verified: VerifiedToken = { principal: principalFromClaims(payload, this.#cfg, authMethod), kid: header.kid };
    if (cacheKey !== undefined) {
      this.#verified.set(cacheKey, { token: verified, notAfter: (payload.exp! + this.#cfg.clockToleranceS) * 1000 });
    }
    return verified;
  }

  /**
   * Refuses what should never reach signature verification (RFC 8725). Only the header is
   * decoded here; jose checks the encoding of payload and signature itself.
   */
  #checkStructure(token: string): { alg: string; kid: string | undefined } {
    const first = token.indexOf('.');
    const second = first < 0 ? -1 : token.indexOf('.', first + 1);
    const third = second < 0 ? -1 : token.indexOf('.', second + 1);
    if (third >= 0 && token.split('.').length === 5) throw invalid('ERR_JWE_NOT_ACCEPTED', 'encrypted tokens (JWE) are not accepted');
    if (first <= 0 || second <= first + 1 || third >= 0 || second === token.length - 1) throw invalid('ERR_JWT_MALFORMED', 'token is not a compact JWS');
    const encodedHeader = token.slice(0, first);
    if (!SEGMENT.test(encodedHeader)) throw invalid('ERR_JWT_MALFORMED', 'token header is not base64url');
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalid('ERR_JWT_MALFORMED', 'token header is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw invalid('ERR_JWT_MALFORMED', 'token header is not an object');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(this.#cfg.algorithms as string[]).includes(alg)) {
      throw invalid('ERR_JWT_ALG_NOT_ALLOWED', 'token algorithm is not allowed');
    }
    for (const h of FORBIDDEN_HEADERS) if (Object.hasOwn(header, h)) throw invalid('ERR_JWT_FORBIDDEN_HEADER', `header ${h} is not accepted`);
    const kid = header.kid;
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) throw invalid('ERR_JWT_MALFORMED', 'kid must be a string');
    return { alg, kid };
  }
}

/**
 * The `iat` of a token whose signature is not checked yet. Used only to tell a key set that
 * may predate the token's key from one that cannot; a forged value can at most turn a 401 into
 * a 503 for its sender, or cause a fetch the cooldown allows anyway.
 */
function unverifiedIssuedAt(token: string): number | undefined {
  try {
    const iat = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat?: unknown }).iat;
    return typeof iat === 'number' && Number.isFinite(iat) ? iat : undefined;
  } catch {
    return undefined;
  }
}

function invalid(code: string, message: string): CredentialsError {
  return new CredentialsError(code, message, 'invalid_token');
}

function mapJoseError(err: unknown): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  if (err instanceof joseErrors.JWTExpired) return invalid('ERR_JWT_EXPIRED', 'token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return invalid(`ERR_JWT_CLAIM_${err.claim.toUpperCase()}`, `claim ${err.claim} ${err.reason}`);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('ERR_JWT_SIGNATURE', 'token signature is invalid');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalid('ERR_JWT_ALG_NOT_ALLOWED', 'token algorithm is not allowed');
  if (err instanceof joseErrors.JOSENotSupported) return invalid('ERR_JWT_NOT_SUPPORTED', 'token uses an unsupported feature');
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return invalid('ERR_JWT_MALFORMED', 'token is malformed');
  return invalid('ERR_JWT_INVALID', 'token is invalid');
}
