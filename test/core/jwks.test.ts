/**
 * Unknown `kid`s, judged by when the key set was fetched relative to the token's `iat`: a real
 * JWKS server, tokens signed in the test, and a clock the test moves.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadJwtConfig, type JwtConfig } from '../../functions/core/config.js';
import { CredentialsError, UpstreamUnavailableError } from '../../functions/core/errors.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { ManualClock } from '../support/clock.js';
import { startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { AUDIENCE, ISSUER, makeKey, signToken, type TestKey } from '../support/keys.js';

const COOLDOWN_MS = 10_000;
const TOLERANCE_S = 5;
let current: TestKey;
let next: TestKey;
let attacker: TestKey;
let jwks: JwksServer;
let clock: ManualClock;
let config: JwtConfig;
let verifier: JwtVerifier;

type Outcome = 'ok' | '401' | '503';
async function outcome(token: string): Promise<{ outcome: Outcome; retryAfterS?: number }> {
  try {
    await verifier.verify(token);
    return { outcome: 'ok' };
  } catch (err) {
    if (err instanceof CredentialsError) return { outcome: '401' };
    if (err instanceof UpstreamUnavailableError) return { outcome: '503', retryAfterS: err.retryAfterS };
    throw err;
  }
}

const signAt = (key: TestKey, iatS: number, kid = key.kid) => signToken({ ...key, kid }, {}, { now: iatS });

beforeAll(async () => {
  [current, next, attacker] = await Promise.all([makeKey('current'), makeKey('next'), makeKey('attacker')]);
  jwks = await startJwksServer([current.publicJwk]);
});
afterAll(() => jwks.close());
beforeEach(async () => {
  jwks.keys = [current.publicJwk];
  jwks.mode = 'ok';
  jwks.requests = 0;
  clock = new ManualClock();
  config = loadJwtConfig({ ISSUER, AUDIENCE, JWKS_URI: jwks.uri, JWKS_COOLDOWN_MS: String(COOLDOWN_MS), CLOCK_TOLERANCE_S: String(TOLERANCE_S) });
  verifier = new JwtVerifier({ config, clock });
  expect((await outcome(await signAt(current, clock.seconds))).outcome).toBe('ok');
  expect(jwks.requests).toBe(1);
});

describe('a kid the key set does not hold', () => {
  it('issued after the set was fetched: refetched, and verified once the key is published', async () => {
    clock.advance(20_000);
    jwks.keys = [current.publicJwk, next.publicJwk];
    expect(await outcome(await signAt(next, clock.seconds))).toEqual({ outcome: 'ok' });
    expect(jwks.requests).toBe(2);
  });

  it('new during the cooldown: 503 with the rest of the cooldown as Retry-After, never 401; verified when the cooldown allows', async () => {
    clock.advance(20_000);
    // Someone's unknown kid starts the cooldown.
    expect((await outcome(await signAt(attacker, clock.seconds, 'made-up'))).outcome).toBe('401');
    expect(jwks.requests).toBe(2);
    clock.advance(3_000);
    jwks.keys = [current.publicJwk, next.publicJwk];
    const genuine = await signAt(next, clock.seconds);
    expect(await outcome(genuine)).toEqual({ outcome: '503', retryAfterS: 7 });
    clock.advance(6_500);
    expect(await outcome(genuine)).toEqual({ outcome: '503', retryAfterS: 1 });
    expect(jwks.requests).toBe(2);
    clock.advance(500);
    expect(await outcome(genuine)).toEqual({ outcome: 'ok' });
    expect(jwks.requests).toBe(3);
  });

  it('issued before the set was fetched (beyond the tolerance): 401 at once, without a fetch', async () => {
    const issued = clock.seconds - TOLERANCE_S - 1;
    clock.advance(20_000);
    for (let i = 0; i < 10; i++) expect((await outcome(await signAt(attacker, issued, `old-${i}`))).outcome).toBe('401');
    expect(jwks.requests).toBe(1);
  });

  it('issued up to the tolerance before the fetch: the issuer clock may be behind ours, so the key may be new', async () => {
    const issued = clock.seconds - TOLERANCE_S + 1;
    clock.advance(20_000);
    jwks.keys = [current.publicJwk, next.publicJwk];
    expect(await outcome(await signAt(next, issued))).toEqual({ outcome: 'ok' });
    expect(jwks.requests).toBe(2);
  });

  it('after a fetch made for this very token: 401, whatever its iat says', async () => {
    clock.advance(20_000);
    const farFuture = clock.seconds + 3600;
    expect((await outcome(await signAt(attacker, farFuture, 'forged-iat'))).outcome).toBe('401');
    expect(jwks.requests).toBe(2);
    // Within the cooldown a forged iat earns its sender a 503, and no fetch.
    expect((await outcome(await signAt(attacker, farFuture, 'forged-iat-2'))).outcome).toBe('503');
    expect(jwks.requests).toBe(2);
  });

  it('a flood of random kids during a real rotation never gives the genuine new kid a 401, and fetches stay bounded by the cooldown', async () => {
    const durationMs = 60_000;
    const stepMs = 100;
    const rotateAtMs = 23_450;
    const genuine: Outcome[] = [];
    const flood: Outcome[] = [];
    for (let t = 0; t < durationMs; t += stepMs) {
      clock.advance(stepMs);
      if (t === rotateAtMs - (rotateAtMs % stepMs)) jwks.keys = [current.publicJwk, next.publicJwk];
      // Two made-up kids a step, as fresh as the attacker can make them.
      for (let i = 0; i < 2; i++) flood.push((await outcome(await signAt(attacker, clock.seconds, randomUUID()))).outcome);
      // Genuine callers: the issuer signs with the new key from the rotation on.
      if (t % 1000 === 0) {
        const token = t >= rotateAtMs ? await signAt(next, clock.seconds) : await signAt(current, clock.seconds);
        genuine.push((await outcome(token)).outcome);
      }
    }
    expect(genuine.filter((o) => o === '401')).toEqual([]);
    expect(flood.filter((o) => o === 'ok')).toEqual([]);
    // The genuine new kid is verified at the latest one cooldown after the rotation.
    const firstNew = Math.ceil(rotateAtMs / 1000);
    expect(genuine.slice(firstNew + COOLDOWN_MS / 1000 + 1).every((o) => o === 'ok')).toBe(true);
    expect(jwks.requests).toBeLessThanOrEqual(1 + Math.ceil(durationMs / COOLDOWN_MS) + 1);
  });
});

describe('back-off', () => {
  it('before the first successful load: 503 for every request, at most one fetch per back-off', async () => {
    jwks.mode = 'down';
    verifier = new JwtVerifier({ config, clock });
    jwks.requests = 0;
    const outcomes: Outcome[] = [];
    // 300 requests over 3 s of clock time.
    for (let i = 0; i < 300; i++) {
      outcomes.push((await outcome(await signAt(current, clock.seconds))).outcome);
      clock.advance(10);
    }
    expect(new Set(outcomes)).toEqual(new Set(['503']));
    expect(jwks.requests).toBe(1);
    clock.advance(2_000);
    jwks.mode = 'ok';
    expect((await outcome(await signAt(current, clock.seconds))).outcome).toBe('ok');
    expect(jwks.requests).toBe(2);
  });

  it('after a failed refetch, unknown kids answer 503 with the rest of the back-off and known kids keep working', async () => {
    clock.advance(20_000);
    jwks.mode = 'down';
    expect(await outcome(await signAt(next, clock.seconds))).toMatchObject({ outcome: '503', retryAfterS: 5 });
    expect(jwks.requests).toBe(2);
    clock.advance(COOLDOWN_MS + 1_000);
    jwks.mode = 'ok';
    expect((await outcome(await signAt(current, clock.seconds))).outcome).toBe('ok');
  });
});
