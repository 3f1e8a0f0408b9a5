/**
 * Bearer decisions (cases 1, 2, 7): Latchkey's handler against the signature-check floor,
 * a minimal authorizer on aws-jwt-verify and bare jose.jwtVerify, on the same tokens.
 */
import { verify as cryptoVerify } from 'node:crypto';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { JwtVerifier as AwsJwtVerifier } from 'aws-jwt-verify';
import { importJWK, jwtVerify } from 'jose';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { countedState, syntheticStates } from '../lib/state.js';
import { extractCredentials } from '../../functions/core/credentials.js';
import { restAllow } from '../../functions/core/decision.js';
import type { Principal } from '../../functions/core/principal.js';
import { systemClock } from '../../functions/core/clock.js';
import { loadJwtConfig, type JwtConfig } from '../../functions/core/config.js';
import { silentLog } from '../../functions/core/log.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import type { JwksCache } from '../../functions/core/jwks.js';
import { assertAllow, bearerEvent } from '../lib/events.js';
import { awsJwtVerifyAuthorizer } from '../peers/aws-jwt-verify-authorizer.js';
import { SyncJwtVerifierPrototype } from '../prototypes/sync-verifier.js';
import type { BenchCase } from '../lib/stats.js';
import { rng } from '../lib/stats.js';
import { AUDIENCE, ISSUER, makeKey, ROLES_CLAIM, splitToken, startJwksServer, TENANT_CLAIM, tokenPool, type BenchKey, type JwksServer, type SplitToken } from '../lib/tokens.js';

type Handler = (event: APIGatewayRequestAuthorizerEvent) => Promise<unknown>;

export interface BearerFixture {
  rsa: BenchKey;
  ec: BenchKey;
  jwks: JwksServer;
  config: JwtConfig;
  /** Distinct RS256 / ES256 tokens, and their events, built once. */
  rsTokens: string[];
  rsEvents: APIGatewayRequestAuthorizerEvent[];
  rsSplit: SplitToken[];
  esEvents: APIGatewayRequestAuthorizerEvent[];
  esSplit: SplitToken[];
  /** Warm key set shared by every fresh handler (no fetch in timed loops). */
  sharedJwks: JwksCache;
  /** Fresh handler (empty verified-token cache) over the warm key set. */
  freshHandler(): Handler;
  /** PROTOTYPE of the proposed change: same bearer path, signature checked with sync node:crypto. */
  freshProtoHandler(): Handler;
  awsJwtVerifyHandler: (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;
  /** Key-set fetches made by Latchkey's verifiers (must stay at 1). */
  jwksFetches(): number;
  /** Principal-state feed reads (one per half bound per container; none per decision). */
  stateFeedCalls(): number;
}

export async function bearerFixture(sizes: { rs: number; es: number }): Promise<BearerFixture> {
  const rsa = makeKey('rs1', 'RS256');
  const ec = makeKey('ec1', 'ES256');
  const jwks = await startJwksServer([rsa.publicJwk, ec.publicJwk]);
  const config = loadJwtConfig({ ISSUER, AUDIENCE, JWKS_URI: jwks.uri, ALGORITHMS: 'RS256,ES256' });
  const rsTokens = tokenPool(rsa, sizes.rs, 'rs');
  const esTokens = tokenPool(ec, sizes.es, 'es');
  const first = new JwtVerifier({ config, clock: systemClock });
  const sharedJwks = first.jwks;
  // As deployed: every decision checks principal state (1,000 entries here) from the container's snapshot.
  const state = await countedState(syntheticStates(1000));
  const freshHandler = () =>
    createAuthorizerHandler({
      authenticator: new Authenticator({ verifier: new JwtVerifier({ config, clock: systemClock, jwks: sharedJwks }), state: state.snapshot, keyPrefix: 'lk' }),
      log: silentLog,
    });
  // Warm the key set (fetch + both key imports) outside any timed loop.
  const warm = freshHandler();
  assertAllow(await warm(bearerEvent(rsTokens[0]!)));
  assertAllow(await warm(bearerEvent(esTokens[0]!)));

  const freshProtoHandler = (): Handler => {
    const v = new SyncJwtVerifierPrototype(config, systemClock, [rsa.publicJwk, ec.publicJwk]);
    return async (event) => {
      let principal: Principal;
      try {
        const creds = extractCredentials(event, 'lk');
        if (creds.kind !== 'bearer') throw new Error('not a bearer token');
        principal = v.verify(creds.token);
      } catch {
        throw new Error('Unauthorized');
      }
      return restAllow(event.methodArn, principal);
    };
  };
  assertAllow(await freshProtoHandler()(bearerEvent(rsTokens[0]!)));
  assertAllow(await freshProtoHandler()(bearerEvent(esTokens[0]!)));

  const aws = AwsJwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.uri });
  aws.cacheJwks({ keys: [rsa.publicJwk as never] });
  const awsJwtVerifyHandler = awsJwtVerifyAuthorizer(aws, { tenantClaim: TENANT_CLAIM, rolesClaim: ROLES_CLAIM });
  assertAllow(await awsJwtVerifyHandler(bearerEvent(rsTokens[0]!)));

  return {
    rsa,
    ec,
    jwks,
    config,
    rsTokens,
    rsEvents: rsTokens.map(bearerEvent),
    rsSplit: rsTokens.map(splitToken),
    esEvents: esTokens.map(bearerEvent),
    esSplit: esTokens.map(splitToken),
    sharedJwks,
    freshHandler,
    freshProtoHandler,
    awsJwtVerifyHandler,
    jwksFetches: () => sharedJwks.fetches,
    stateFeedCalls: () => state.feedCalls.n,
  };
}

/** A case that walks a pool; every time the pool is used up, a fresh handler starts over. */
function firstSeen(name: string, fresh: () => Handler, events: APIGatewayRequestAuthorizerEvent[]): BenchCase & { handlersUsed(): number } {
  let handler = fresh();
  let i = 0;
  let handlers = 1;
  let ev = events[0]!;
  return {
    name,
    prepare() {
      if (i >= events.length) {
        handler = fresh();
        handlers++;
        i = 0;
      }
      ev = events[i++]!;
    },
    run: async () => assertAllow(await handler(ev)),
    handlersUsed: () => handlers,
  };
}

function cycling<T>(items: readonly T[]): () => T {
  let i = 0;
  return () => {
    const x = items[i]!;
    i = (i + 1) % items.length;
    return x;
  };
}

export async function bearerCases(f: BearerFixture): Promise<BenchCase[]> {
  const rsKey = f.rsa.publicKey;
  const esKey = { key: f.ec.publicKey, dsaEncoding: 'ieee-p1363' as const };
  const nextRsSplit = cycling(f.rsSplit);
  const nextEsSplit = cycling(f.esSplit);
  const nextRsEvent = cycling(f.rsEvents);
  const nextRsToken = cycling(f.rsTokens);
  const joseKey = await importJWK(f.rsa.publicJwk, 'RS256');
  const hitHandler = f.freshHandler();
  const hitEvent = f.rsEvents[0]!;
  assertAllow(await hitHandler(hitEvent));

  return [
    {
      name: 'floor.rs256',
      sync: true,
      run: () => {
        const t = nextRsSplit();
        if (!cryptoVerify('sha256', t.input, rsKey, t.signature)) throw new Error('bad signature');
      },
    },
    {
      name: 'floor.es256',
      sync: true,
      run: () => {
        const t = nextEsSplit();
        if (!cryptoVerify('sha256', t.input, esKey, t.signature)) throw new Error('bad signature');
      },
    },
    firstSeen('handler.firstSeen.rs256', f.freshHandler, f.rsEvents),
    firstSeen('handler.firstSeen.es256', f.freshHandler, f.esEvents),
    firstSeen('proposal.syncVerify.firstSeen.rs256', f.freshProtoHandler, f.rsEvents),
    { name: 'awsJwtVerify.rs256', run: async () => assertAllow(await f.awsJwtVerifyHandler(nextRsEvent())) },
    {
      name: 'jose.jwtVerify.rs256',
      run: async () => {
        const { payload } = await jwtVerify(nextRsToken(), joseKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] });
        if (typeof payload.sub !== 'string') throw new Error('no sub');
      },
    },
    { name: 'handler.cacheHit.rs256', run: async () => assertAllow(await hitHandler(hitEvent)) },
  ];
}

export interface MixResult {
  requests: number;
  users: number;
  distinctTokens: number;
  firstSeen: number;
  reps: number;
  handler: { meanUs: number; medianUs: number; p99Us: number };
  awsJwtVerify: { meanUs: number; medianUs: number; p99Us: number };
}

/**
 * Case 7: `users` users reuse their token for its lifetime; each request, with probability
 * `newRate`, the user's token is replaced by a new one (a refresh). Same sequence for both.
 */
export function mixSequence(f: BearerFixture, opts: { requests: number; users: number; newRate: number }): { seq: number[]; distinct: number } {
  const rand = rng(20251123);
  const current = Array.from({ length: opts.users }, (_, u) => u);
  let nextToken = opts.users;
  const seq: number[] = [];
  for (let i = 0; i < opts.requests; i++) {
    const u = Math.floor(rand() * opts.users);
    if (rand() < opts.newRate && nextToken < f.rsEvents.length) current[u] = nextToken++;
    seq.push(current[u]!);
  }
  return { seq, distinct: nextToken };
}

/**
 * Replays the sequence through each contender (a fresh instance per rep, so every token is
 * first seen once), rotating the order from rep to rep. Samples in µs per request.
 */
export async function runMix(f: BearerFixture, seq: readonly number[], reps: number, contenders: Record<string, () => Handler>): Promise<{ samples: Map<string, number[]>; firstSeen: number }> {
  const names = Object.keys(contenders);
  const samples = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length]!;
      const h = contenders[name]!();
      const out = samples.get(name)!;
      for (const idx of seq) {
        const ev = f.rsEvents[idx]!;
        const t0 = process.hrtime.bigint();
        assertAllow(await h(ev));
        out.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  }
  return { samples, firstSeen: new Set(seq).size };
}
