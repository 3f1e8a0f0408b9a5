/**
 * PROTOTYPE of a proposed change to functions/core/jwt-verifier.ts, for measurement only:
 * the same pipeline (verified-token cache, structural checks, claims, Principal) but the
 * signature checked with node:crypto's synchronous `verify` on a KeyObject imported once,
 * instead of jose's WebCrypto `jwtVerify` (a libuv threadpool round trip per token). Claims
 * are checked as jose checks them for Latchkey's options (iss, aud, exp, nbf, typ). Not wired
 * into anything but the benchmark; errors are collapsed to a single CredentialsError.
 */
import { constants, createHash, createPublicKey, verify as cryptoVerify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import type { JWK } from 'jose';
import { principalFromClaims } from '../../functions/core/claims.js';
import type { Clock } from '../../functions/core/clock.js';
import type { JwtConfig } from '../../functions/core/config.js';
import { CredentialsError } from '../../functions/core/errors.js';
import { LruCache } from '../../functions/core/lru.js';
import type { Principal } from '../../functions/core/principal.js';

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'];
const HASH: Record<string, string> = { RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', PS256: 'sha256', PS384: 'sha384', PS512: 'sha512', ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' };
const invalid = (why: string) => new CredentialsError('ERR_JWT_INVALID', why, 'invalid_token');
const normalizeTyp = (v: string) => (v.includes('/') ? v.toLowerCase() : `application/${v.toLowerCase()}`);

export class SyncJwtVerifierPrototype {
  readonly #cfg: JwtConfig;
  readonly #clock: Clock;
  readonly #keys = new Map<string, { jwk: JWK; key: KeyObject }>();
  readonly #verified: LruCache<string, { principal: Principal; notAfter: number }>;

  constructor(cfg: JwtConfig, clock: Clock, jwks: JWK[]) {
    this.#cfg = cfg;
    this.#clock = clock;
    this.#verified = new LruCache(cfg.verifiedCacheSize);
    for (const jwk of jwks) if (jwk.kid) this.#keys.set(jwk.kid, { jwk, key: createPublicKey({ key: jwk as never, format: 'jwk' }) });
  }

  verify(token: string): Principal {
    const cacheKey = createHash('sha256').update(token).digest('base64');
    const hit = this.#verified.get(cacheKey);
    const now = this.#clock.now();
    if (hit) {
      if (now < hit.notAfter) return hit.principal;
      this.#verified.delete(cacheKey);
    }
    if (token.length > this.#cfg.maxTokenBytes) throw invalid('token is too large');
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) throw invalid('token is not a compact JWS');
    const [h, p, s] = parts as [string, string, string];
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
      payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalid('token is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw invalid('header is not an object');
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('claims are not an object');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(this.#cfg.algorithms as string[]).includes(alg) || !HASH[alg]) throw invalid('algorithm not allowed');
    for (const f of FORBIDDEN_HEADERS) if (Object.hasOwn(header, f)) throw invalid(`header ${f} is not accepted`);
    const found = typeof header.kid === 'string' ? this.#keys.get(header.kid) : undefined;
    if (!found || (found.jwk.alg !== undefined && found.jwk.alg !== alg)) throw invalid('no matching key');
    const key: VerifyKeyObjectInput | KeyObject = alg.startsWith('ES')
      ? { key: found.key, dsaEncoding: 'ieee-p1363' }
      : alg.startsWith('PS')
        ? { key: found.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : found.key;
    if (!cryptoVerify(HASH[alg], Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) throw invalid('bad signature');
    if (this.#cfg.requiredTyp && (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(this.#cfg.requiredTyp))) throw invalid('typ');
    if (payload.iss !== this.#cfg.issuer) throw invalid('iss');
    const aud = payload.aud;
    if (!(typeof aud === 'string' ? this.#cfg.audiences.includes(aud) : Array.isArray(aud) && this.#cfg.audiences.some((a) => aud.includes(a)))) throw invalid('aud');
    const nowS = Math.floor(now / 1000);
    const tol = this.#cfg.clockToleranceS;
    if (typeof payload.exp !== 'number' || payload.exp <= nowS - tol) throw invalid('exp');
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > nowS + tol)) throw invalid('nbf');
    if (payload.iat !== undefined && typeof payload.iat !== 'number') throw invalid('iat');
    const principal = principalFromClaims(payload, this.#cfg, 'jwt');
    this.#verified.set(cacheKey, { principal, notAfter: (payload.exp + tol) * 1000 });
    return principal;
  }
}
