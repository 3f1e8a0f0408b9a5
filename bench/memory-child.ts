/**
 * Case 6, run by bench/run.ts as `node --expose-gc --import tsx bench/memory-child.ts`:
 * heap bytes per entry of the verified-token cache and of the API-key level-1 cache, each
 * filled to its configured bound. Prints one JSON line; no network (fake fetch and token
 * endpoint), tokens signed here and never printed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ClientCredentials } from '../functions/core/api-key.js';
import { ApiKeyExchange } from '../functions/core/api-key-exchange.js';
import { principalFromClaims } from '../functions/core/claims.js';
import { systemClock } from '../functions/core/clock.js';
import { loadAuthorizerConfig } from '../functions/core/config.js';
import { JwtVerifier } from '../functions/core/jwt-verifier.js';
import { silentLog } from '../functions/core/log.js';
import type { TokenEndpoint } from '../functions/core/token-cache.js';
import { AUDIENCE, ISSUER, makeKey, ROLES_CLAIM, signToken, TENANT_CLAIM } from './lib/tokens.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collect = gc;

function heapUsed(): number {
  for (let i = 0; i < 3; i++) collect();
  return process.memoryUsage().heapUsed;
}

const key = makeKey('ec1', 'ES256');
const jwksBody = JSON.stringify({ keys: [key.publicJwk] });
const fakeFetch: typeof fetch = async () => new Response(jwksBody, { status: 200, headers: { 'content-type': 'application/json' } });
const config = loadAuthorizerConfig({
  ISSUER,
  AUDIENCE,
  JWKS_URI: 'http://127.0.0.1:9/.well-known/jwks.json',
  TOKEN_ENDPOINT: 'http://127.0.0.1:9/oauth/token',
  ALGORITHMS: 'ES256',
  // Fills level 1 with a thousand keys on purpose, with no provider: not a flood to refuse.
  EXCHANGE_BUDGET_PER_MIN: '100000',
});

// --- verified-token cache -----------------------------------------------------------------
const vBound = config.jwt.verifiedCacheSize;
const userTokens = Array.from({ length: vBound }, (_, i) => signToken(key, { sub: `auth0|mem-user-${i}`, jti: `m${i}` }));
const extra = Array.from({ length: Math.ceil(vBound / 10) }, (_, i) => signToken(key, { sub: `auth0|mem-extra-${i}`, jti: `x${i}` }));
const warm = new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: fakeFetch });
await warm.verify(signToken(key, { sub: 'auth0|warm' }));
const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock, jwks: warm.jwks });
const v0 = heapUsed();
for (const t of userTokens) await verifier.verify(t);
const v1 = heapUsed();
const vEntries = verifier.cachedTokens;
for (const t of extra) await verifier.verify(t);
const vAfterOverflow = verifier.cachedTokens;

// What the same cache would hold if entries kept only what is read on a hit (principal, kid, expiry).
const slim = new Map<string, { principal: unknown; kid: string; notAfter: number }>();
const s0 = heapUsed();
for (const t of userTokens) {
  const payload = decodeJwt(t);
  slim.set(createHash('sha256').update(t).digest('base64'), { principal: principalFromClaims(payload, config.jwt, 'jwt'), kid: 'ec1', notAfter: (payload.exp! + 5) * 1000 });
}
const s1 = heapUsed();

// --- API-key level-1 cache -------------------------------------------------------------------
const kBound = config.apiKey.memoryCacheSize;
const creds: ClientCredentials[] = Array.from({ length: kBound + 1 }, () => ({
  clientId: randomBytes(24).toString('base64url').slice(0, 32),
  clientSecret: randomBytes(48).toString('base64url'),
}));
const minted = new Map<string, string>(
  creds.map((c) => [
    c.clientId,
    signToken(key, { sub: `${c.clientId}@clients`, azp: c.clientId, gty: 'client-credentials', aud: AUDIENCE, scope: 'read:things write:things', [ROLES_CLAIM]: undefined, [TENANT_CLAIM]: 'acme' }, 86_400),
  ]),
);
const endpoint: TokenEndpoint = { exchange: async (c) => ({ accessToken: minted.get(c.clientId)!, expiresIn: 86_400 }) };
const exchangeDeps = { config: config.apiKey, jwtConfig: config.jwt, clock: systemClock, verifier, tokenEndpoint: endpoint, shared: undefined, log: silentLog };
await new ApiKeyExchange(exchangeDeps).authenticate(creds[kBound]!); // warm the path
const exchange = new ApiKeyExchange(exchangeDeps);
const k0 = heapUsed();
for (const c of creds.slice(0, kBound)) await exchange.authenticate(c);
const k1 = heapUsed();
const kEntries = exchange.memoryEntries;

// Keep the inputs alive through both measurements so they cancel out.
if (userTokens.length + extra.length + minted.size + slim.size < 0) console.log('unreachable');

process.stdout.write(
  `${JSON.stringify({
    verifiedTokenCache: { bound: vBound, entries: vEntries, entriesAfterOverflow: vAfterOverflow, heapDeltaBytes: v1 - v0, bytesPerEntry: (v1 - v0) / vEntries },
    'verifiedTokenCache, principal-only entries (proposal)': { bound: vBound, entries: slim.size, heapDeltaBytes: s1 - s0, bytesPerEntry: (s1 - s0) / slim.size },
    apiKeyL1Cache: { bound: kBound, entries: kEntries, heapDeltaBytes: k1 - k0, bytesPerEntry: (k1 - k0) / kEntries },
  })}\n`,
);
