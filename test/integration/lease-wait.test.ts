/**
 * Waiting on another container's exchange lease (issue 12): bounded by the lease's expiry and
 * the decision budget on the injected clock, with back-off between reads; a holder's failure
 * marker answers waiters 503 at once; a lease let go without a token is taken over. Several
 * in-process containers share real DynamoDB Local and the local identity provider; sleeps step
 * the manual clock, so nothing here rests on real time but the hang detector.
 */
import { randomUUID } from 'node:crypto';
import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import type { Sleep } from '../../functions/core/clock.js';
import { loadAuthorizerConfig, type AuthorizerConfig } from '../../functions/core/config.js';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { silentLog } from '../../functions/core/log.js';
import type { Principal } from '../../functions/core/principal.js';
import type { SharedTokenCache, SharedTokenEntry, TokenEndpoint } from '../../functions/core/token-cache.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { ManualClock } from '../support/clock.js';
import { counting } from '../support/counting.js';
import { orHang } from '../support/hang.js';
import { createTokenCacheTable, localDynamoClient } from '../support/tables.js';
import { localAuthorizerEnv } from '../support/servers.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
type Key = { clientId: string; clientSecret: string };

const BUDGET_MS = 3000;

let idp: Idp;
let table: string;
let clock: ManualClock;

function configWith(env: Record<string, string> = {}): AuthorizerConfig {
  return loadAuthorizerConfig(localAuthorizerEnv(idp, table, { EXCHANGE_TIMEOUT_MS: '10000', DECISION_BUDGET_MS: String(BUDGET_MS), ...env }));
}

/** A sleeper that steps the test's clock instead of waiting (after `gate`, when given). */
function steppingSleep(gate?: Promise<unknown>, idle?: () => Promise<void>): Sleep & { slept: number[] } {
  const slept: number[] = [];
  const sleep = async (ms: number) => {
    await gate;
    await idle?.();
    slept.push(ms);
    clock.advance(ms);
  };
  return Object.assign(sleep, { slept });
}

/** One simulated Lambda container: its own memory, the shared table. */
function container(opts: { config?: AuthorizerConfig; tokenEndpoint?: TokenEndpoint; sleep?: Sleep; shared?: (s: SharedTokenCache) => SharedTokenCache } = {}) {
  const config = opts.config ?? configWith();
  const counted = counting(new DynamoDbTokenCache({ tableName: table }));
  const exchange = new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock,
    verifier: new JwtVerifier({ config: config.jwt, clock }),
    tokenEndpoint: opts.tokenEndpoint ?? new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() }),
    shared: opts.shared ? opts.shared(counted.shared) : counted.shared,
    log: silentLog,
    decisionBudgetMs: config.decisionBudgetMs,
    sleep: opts.sleep ?? steppingSleep(),
  });
  return { exchange, dynamoCalls: counted.calls };
}

/**
 * The real token endpoint, and `idle()`: settles once no take-over is between its call to the
 * provider and its token landing in the shared table.
 */
function exchangesInFlight(config: AuthorizerConfig) {
  const real = new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() });
  let busy = 0;
  const wake: (() => void)[] = [];
  const done = () => {
    busy -= 1;
    if (busy === 0) for (const w of wake.splice(0)) w();
  };
  const endpoint: TokenEndpoint = {
    exchange: async (c) => {
      busy += 1;
      try {
        return await real.exchange(c);
      } catch (err) {
        done();
        throw err;
      }
    },
  };
  const shared = (s: SharedTokenCache): SharedTokenCache =>
    Object.assign(Object.create(s) as SharedTokenCache, {
      putToken: (k: string, e: SharedTokenEntry) => s.putToken(k, e).finally(done),
    });
  const idle = () => (busy === 0 ? Promise.resolve() : new Promise<void>((r) => wake.push(r)));
  return { endpoint, shared, idle };
}

/** A token endpoint that says when it was called and goes on only when `release` is called (or never). */
function heldEndpoint(config: AuthorizerConfig) {
  const real = new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() });
  let entered!: () => void;
  let release!: () => void;
  const called = new Promise<void>((r) => (entered = r));
  const released = new Promise<void>((r) => (release = r));
  const endpoint: TokenEndpoint = {
    exchange: async (c) => {
      entered();
      await released;
      return real.exchange(c);
    },
  };
  return { endpoint, called, release };
}

async function newKey(tenantId = 'acme'): Promise<Key> {
  const keyId = randomUUID();
  const client = await idp.registerClient({ tenantId, scopes: ['read:things'], keyId });
  await new DynamoDbTokenCache({ tableName: table }).putState({ kind: 'client', id: client.clientId, status: 'active', revokedAt: 0, notBefore: 0, changedAt: Date.now(), tenantId, keyId });
  return client;
}

/** The decision as a value: a principal, or the error's code and Retry-After. */
async function outcome(p: Promise<Principal>): Promise<{ ok: true; clientId: string | undefined } | { ok: false; code: string; retryAfterS?: number }> {
  try {
    const principal = await orHang(p);
    return { ok: true, clientId: principal.clientId };
  } catch (err) {
    if (err instanceof UpstreamUnavailableError) return { ok: false, code: err.code, retryAfterS: err.retryAfterS };
    return { ok: false, code: (err as { code?: string }).code ?? String(err) };
  }
}

const exchanges = () => idp.stats.tokenRequests;

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things'] });
  table = await createTokenCacheTable();
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async () => {
  // A pause the provider asked for is honoured by every container: start each test without one.
  const db = localDynamoClient();
  await db.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'backoff#token-endpoint' } } }));
  db.destroy();
  idp.setFailure('none');
  idp.resetStats();
  clock = new ManualClock(Date.now());
});

describe('a lease holder killed mid-exchange', () => {
  it('answers the waiter 503 within the budget when the lease outlasts it, with back-off between reads', async () => {
    const key = await newKey();
    const config = configWith({ EXCHANGE_LEASE_MS: '5000' });
    const killed = heldEndpoint(config);
    const holder = container({ config, tokenEndpoint: killed.endpoint });
    void holder.exchange.authenticate(key).catch(() => undefined); // never completes: the container died
    await orHang(killed.called);

    const sleep = steppingSleep();
    const waiter = container({ config, sleep });
    const start = clock.now();
    const result = await outcome(waiter.exchange.authenticate(key));
    expect(result).toMatchObject({ ok: false, code: 'ERR_EXCHANGE_IN_PROGRESS' });
    expect(clock.now() - start).toBeLessThanOrEqual(BUDGET_MS);
    // Retry-After: what is left of the dead holder's lease.
    expect((result as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(2);
    expect((result as { retryAfterS: number }).retryAfterS).toBeLessThanOrEqual(5);
    // Back-off, not a 50 ms poll: a handful of reads for the whole wait.
    expect(sleep.slept.length).toBeLessThanOrEqual(10);
    expect(sleep.slept.slice(0, 4)).toEqual([25, 50, 100, 200]);
    expect(exchanges()).toBe(0);

    // Once the lease has run out, the next request takes it over and answers.
    clock.advance(5000);
    expect(await outcome(container({ config }).exchange.authenticate(key))).toEqual({ ok: true, clientId: key.clientId });
    expect(exchanges()).toBe(1);
  });

  it('takes the lease over at its expiry when that comes within the budget, and answers with a token', async () => {
    const key = await newKey();
    const config = configWith({ EXCHANGE_LEASE_MS: '1000' });
    const killed = heldEndpoint(config);
    void container({ config, tokenEndpoint: killed.endpoint }).exchange.authenticate(key).catch(() => undefined);
    await orHang(killed.called);

    // Simulated time moves only while no exchange is on the wire: an exchange takes far less than
    // a lease here, as it does deployed. (A sleep that stepped the clock while the take-over's real
    // exchange was still in flight let the other waiter see that lease expire on a loaded machine.)
    const wire = exchangesInFlight(config);
    const sleep = steppingSleep(undefined, wire.idle);
    const waiters = [container({ config, sleep, tokenEndpoint: wire.endpoint, shared: wire.shared }), container({ config, sleep, tokenEndpoint: wire.endpoint, shared: wire.shared })];
    const start = clock.now();
    const results = await Promise.all(waiters.map((w) => outcome(w.exchange.authenticate(key))));
    for (const r of results) expect(r).toEqual({ ok: true, clientId: key.clientId });
    expect(clock.now() - start).toBeLessThanOrEqual(BUDGET_MS);
    // The two waiters share one take-over: one exchange, the other waits on it.
    expect(exchanges()).toBe(1);
  });
});

describe('a lease holder whose exchange fails', () => {
  it('leaves a marker: waiters answer 503 at once, and nobody calls the provider again until it ends', async () => {
    const key = await newKey();
    const config = configWith();
    const held = heldEndpoint(config);
    const holderResult = outcome(container({ config, tokenEndpoint: held.endpoint }).exchange.authenticate(key));
    await orHang(held.called);
    idp.setFailure('unavailable');

    // The waiter's first sleep ends only after the holder has failed.
    const settled = holderResult.then(() => undefined);
    const sleep = steppingSleep(settled);
    const waiter = container({ config, sleep });
    const waiting = outcome(waiter.exchange.authenticate(key));
    held.release();
    expect((await holderResult).ok).toBe(false);
    expect(exchanges()).toBe(1);

    const start = clock.now();
    const result = await waiting;
    expect(result).toMatchObject({ ok: false, code: 'ERR_PEER_EXCHANGE_FAILED' });
    // At once: the reads after the holder failed, not the lease's remaining time.
    expect(sleep.slept.length).toBeLessThanOrEqual(4);
    expect(clock.now() - start).toBeLessThan(500);

    // A container arriving while the marker holds: 503 too, without a call to the provider.
    idp.setFailure('none');
    expect(await outcome(container({ config }).exchange.authenticate(key))).toMatchObject({ ok: false, code: 'ERR_PEER_EXCHANGE_FAILED' });
    expect(exchanges()).toBe(1);

    // The marker is short (a lease at most): after it, the key works.
    clock.advance(config.apiKey.leaseMs);
    expect(await outcome(container({ config }).exchange.authenticate(key))).toEqual({ ok: true, clientId: key.clientId });
    expect(exchanges()).toBe(2);
  });
});

describe('a lease holder that succeeds or lets go', () => {
  it('gives the waiters its token: one exchange for three containers', async () => {
    const key = await newKey();
    const config = configWith();
    const held = heldEndpoint(config);
    const holderResult = outcome(container({ config, tokenEndpoint: held.endpoint }).exchange.authenticate(key));
    await orHang(held.called);
    const settled = holderResult.then(() => undefined);
    const waiters = [container({ config, sleep: steppingSleep(settled) }), container({ config, sleep: steppingSleep(settled) })];
    const waiting = waiters.map((w) => outcome(w.exchange.authenticate(key)));
    held.release();
    expect(await holderResult).toEqual({ ok: true, clientId: key.clientId });
    for (const r of await Promise.all(waiting)) expect(r).toEqual({ ok: true, clientId: key.clientId });
    expect(exchanges()).toBe(1);
  });

  it('is taken over when the holder let go without a token (its cache write failed)', async () => {
    const key = await newKey();
    const config = configWith();
    const held = heldEndpoint(config);
    const failingWrites = (s: SharedTokenCache): SharedTokenCache =>
      new Proxy(s, { get: (t, p, r) => (p === 'putToken' ? () => Promise.reject(new Error('write failed')) : (Reflect.get(t, p, r) as unknown)) });
    const holderResult = outcome(container({ config, tokenEndpoint: held.endpoint, shared: failingWrites }).exchange.authenticate(key));
    await orHang(held.called);
    const settled = holderResult.then(() => undefined);
    const waiting = outcome(container({ config, sleep: steppingSleep(settled) }).exchange.authenticate(key));
    held.release();
    expect(await holderResult).toEqual({ ok: true, clientId: key.clientId });
    const start = clock.now();
    expect(await waiting).toEqual({ ok: true, clientId: key.clientId });
    expect(clock.now() - start).toBeLessThan(BUDGET_MS);
    expect(exchanges()).toBe(2);
  });
});
