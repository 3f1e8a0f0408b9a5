/**
 * The scale simulation (`npm run bench:scale`) compresses time: its injected clock moves in
 * steps of a second and serves every event of a step at the step's end. These tests run the
 * same small workloads exactly — each request at its own millisecond — and, for a shorter one,
 * in real time (the wall clock, sleeping until each request is due), and compare what the real
 * authorizer code did: token-endpoint exchanges (the local IdP's counter), DynamoDB calls and
 * request units (DynamoDB Local's reported capacity).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScaleTable, simulate, type SimResult } from '../../bench/scale/simulate.js';
import { DEFAULT_WORKLOAD, schedule, type Workload } from '../../bench/scale/workload.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { addBulkStates } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
let idp: Idp;
let fastIdp: Idp;

const SMALL: Workload = {
  ...DEFAULT_WORKLOAD,
  tenants: 3,
  keysPerTenant: 2,
  usersPerTenant: 3,
  tokenLifetimeS: 120,
  userTokenLifetimeS: 120,
  requestsPerS: 5,
  containers: 3,
  coldStartsPerHour: 60,
  stateChangesPerHour: 120,
  durationS: 300,
};

beforeAll(async () => {
  [idp, fastIdp] = await Promise.all([
    startLocalIdentityProvider({ port: 0, accessTokenTtlS: SMALL.tokenLifetimeS, apiScopes: ['users:read'] }),
    startLocalIdentityProvider({ port: 0, accessTokenTtlS: 10, apiScopes: ['users:read'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([idp?.stop(), fastIdp?.stop()]);
});

const run = (p: Idp, w: Workload, opts: Parameters<typeof simulate>[2]) => simulate({ idp: p, newTable: createScaleTable }, w, opts);
const calls = (r: SimResult, op: string) => r.authorizer.calls[op] ?? 0;

describe('the schedule', () => {
  it('is the same sequence for the same workload, and has the configured rate', () => {
    const a = [...schedule(SMALL)];
    expect([...schedule(SMALL)]).toEqual(a);
    expect(a.filter((e) => e.kind === 'request')).toHaveLength(SMALL.requestsPerS * SMALL.durationS);
  });
});

describe('compressed stepping against an exact run', () => {
  it('counts the same exchanges and DynamoDB calls as serving each request at its own millisecond', { timeout: 60_000 }, async () => {
    const exact = await run(idp, SMALL, { stepMs: 1 });
    const stepped = await run(idp, SMALL, { stepMs: 1000 });
    const keys = SMALL.tenants * SMALL.keysPerTenant;
    for (const r of [exact, stepped]) {
      expect(r.requests).toBe(SMALL.requestsPerS * SMALL.durationS);
      expect(r.refused).toBe(0);
      // Every key is exchanged at least once per refresh interval (60 s of a 120 s token) it is used in.
      expect(r.tokenExchanges).toBeGreaterThanOrEqual(keys * Math.floor(SMALL.durationS / 60));
    }
    // What depends on token lifetimes and cold starts, not on sub-second timing: equal.
    expect(stepped.tokenExchanges).toBe(exact.tokenExchanges);
    expect(calls(stepped, 'BatchGetItemCommand')).toBe(calls(exact, 'BatchGetItemCommand'));
    expect(calls(stepped, 'PutItemCommand')).toBe(calls(exact, 'PutItemCommand'));
    expect(stepped.decisions).toEqual(exact.decisions);
    expect(stepped.coldStarts).toBe(exact.coldStarts);
    expect(stepped.stateChanges).toBe(exact.stateChanges);
    // Periodic mechanisms of 12.5 s (feed sync) and 30 s ("last used", per key and container):
    // a step of 1 s delays the request that starts one by less than 1 s, so a run has at most
    // one more or one fewer per period of 12.5 s per container (≤ 1/12.5 = 8 %), and "last used"
    // at most 1/30 per key and container; both plus one for the end of the run.
    const within = (a: number, b: number, share: number, actors: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.ceil(b * share) + actors);
    within(stepped.feedQueries, exact.feedQueries, 1 / 12.5, SMALL.containers);
    within(calls(stepped, 'UpdateItemCommand'), calls(exact, 'UpdateItemCommand'), 1 / 30, keys * SMALL.containers);
    within(stepped.authorizer.wru + stepped.authorizer.gsiWru, exact.authorizer.wru + exact.authorizer.gsiWru, 1 / 30, 2 * keys * SMALL.containers);
    within(stepped.authorizer.rru + stepped.authorizer.gsiRru, exact.authorizer.rru + exact.authorizer.gsiRru, 1 / 12.5, SMALL.containers);
  });
});

describe('compressed stepping against real time', () => {
  // 10 s tokens refresh every 5 s: several exchanges per key in 24 s of wall time.
  const REAL: Workload = { ...SMALL, tenants: 2, keysPerTenant: 1, usersPerTenant: 2, tokenLifetimeS: 10, userTokenLifetimeS: 10, requestsPerS: 10, containers: 2, coldStartsPerHour: 300, stateChangesPerHour: 300, durationS: 24 };

  it('counts the same exchanges, within one per key for timer lateness', { timeout: 60_000 }, async () => {
    const real = await run(fastIdp, REAL, { realTime: true });
    const stepped = await run(fastIdp, REAL, { stepMs: 1000 });
    const keys = REAL.tenants * REAL.keysPerTenant;
    expect(real.requests).toBe(stepped.requests);
    expect(real.refused).toBe(0);
    // Real time serves a request when its timer fires (a few ms late on a loaded machine) and a
    // 1 s step up to 1 s late: the request that finds a token past its refresh point may differ,
    // so each key may see its last exchange of the run fall inside or outside it.
    expect(Math.abs(real.tokenExchanges - stepped.tokenExchanges)).toBeLessThanOrEqual(keys);
    expect(Math.abs(calls(real, 'BatchGetItemCommand') - calls(stepped, 'BatchGetItemCommand'))).toBeLessThanOrEqual(keys * REAL.containers);
    expect(Math.abs(real.feedQueries - stepped.feedQueries)).toBeLessThanOrEqual(REAL.containers + 2);
  });
});

describe('a state feed that spans pages', () => {
  it('cold containers decide on point reads, counted apart from level-2 reads: the same decisions as over a small feed', { timeout: 60_000 }, async () => {
    const w: Workload = { ...SMALL, durationS: 120 };
    const small = await run(idp, w, { stepMs: 1000 });
    const largeTable = async () => {
      const table = await createScaleTable();
      // Older than anything the run writes, so later syncs (changes since the last one) skip them.
      await addBulkStates(table, { changedAt: Date.now() - 30 * 86_400_000 });
      return table;
    };
    const large = await simulate({ idp, newTable: largeTable }, w, { stepMs: 1000 });
    expect(small.pointReads).toBe(0);
    // At least the first decision of each container took them (its first sync spans two pages).
    expect(large.pointReads).toBeGreaterThanOrEqual(w.containers);
    expect(large.refused).toBe(0);
    // The size of the state changes no decision's kind, and every BatchGetItem beyond the small
    // run's is a counted point read (the model's level-2 reads leave them out).
    expect(large.decisions).toEqual(small.decisions);
    expect(calls(large, 'BatchGetItemCommand') - large.pointReads).toBe(calls(small, 'BatchGetItemCommand'));
  });
});
