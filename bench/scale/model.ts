/**
 * From counts to money and limits.
 *
 * A measured point is a simulation run (`simulate.ts`): its counts are used as they are. A
 * derived point (a workload too large to simulate here) uses the same mechanisms written as
 * rates — each one a rule of the authorizer's code — with the unit sizes (request units per
 * call, state item bytes, CPU per decision kind) taken from a measured run; `checkModel` puts
 * both side by side for the measured workloads, so the rates can be judged against the real code.
 */
import type { DecisionKind, SimResult } from './simulate.js';
import { LAMBDA_GB_SECOND, LIMITS, PRICES } from './prices.js';
import type { Workload } from './workload.js';

/** Assumptions of the duration estimate; stated in the report. */
export const DURATION = {
  /** Lambda gives a whole vCPU at 1,769 MB and a proportional share below; this machine's core is taken as one vCPU. */
  fullVcpuMb: 1769,
  /** Time waiting on DynamoDB per call on a decision's path (AWS in-region, not DynamoDB Local). */
  dynamoMs: 5,
  /** Time waiting on the identity provider's token endpoint (Auth0 over the internet). */
  tokenEndpointMs: 150,
  /** aws-jwt-verify minimal authorizer, CPU µs per decision (bench/README.md case 1b, first-seen). */
  awsJwtVerifyCpuUs: 54,
} as const;

/** The authorizer's mechanisms, per hour, for a workload. */
export interface Rates {
  requests: number;
  decisions: Record<DecisionKind, number>;
  waitedForSync: number;
  exchanges: number;
  l2Reads: number;
  useRecords: number;
  feedQueries: number;
  /** Request units. */
  rru: number;
  wru: number;
  gsiRru: number;
  gsiWru: number;
  /** Index read units of one cold container's first sync (the whole feed, in about a second). */
  fullReadRru: number;
}

/** Unit sizes read from a measured run. */
export interface Units {
  cpuUs: Record<DecisionKind, number>;
  rruPerL2Read: number;
  wruPerPut: number;
  /** Table write units of one "last used" update. */
  wruPerUpdate: number;
  /** State-feed index write units of one "last used" update (0 with the INCLUDE projection, which leaves `lastUsedAt` out). */
  gsiWruPerUpdate: number;
  wruPerDelete: number;
  stateItemBytes: number;
}

export function unitsFrom(r: SimResult): Units {
  const per = (op: string, dflt: number) => {
    const n = r.authorizer.calls[op] ?? 0;
    return n > 0 ? (r.authorizer.units[op] ?? 0) / n : dflt;
  };
  // The authorizer's only writes to items on the index are its "last used" updates (token and
  // lease items carry no `feed`): all the index units it consumed are theirs.
  const updates = r.authorizer.calls.UpdateItemCommand ?? 0;
  const gsiWruPerUpdate = updates > 0 ? r.authorizer.gsiWru / updates : 0;
  return {
    cpuUs: r.cpuUs,
    rruPerL2Read: per('BatchGetItemCommand', 2),
    wruPerPut: per('PutItemCommand', 1.5),
    wruPerUpdate: per('UpdateItemCommand', 1) - gsiWruPerUpdate,
    gsiWruPerUpdate,
    wruPerDelete: per('DeleteItemCommand', 1),
    stateItemBytes: r.stateItemBytes || 200,
  };
}


/** The rates a simulation measured, per hour. */
export function measuredRates(r: SimResult): Rates {
  const h = r.measuredS / 3600;
  const a = r.authorizer;
  const m = r.management;
  const per = (x: number) => x / h;
  return {
    requests: per(r.requests),
    decisions: Object.fromEntries(Object.entries(r.decisions).map(([k, v]) => [k, per(v)])) as Record<DecisionKind, number>,
    waitedForSync: per(r.waitedForSync),
    exchanges: per(r.tokenExchanges),
    // Point reads of principal state are BatchGetItems too, but no level-2 reads.
    l2Reads: per((a.calls.BatchGetItemCommand ?? 0) - r.pointReads),
    useRecords: per(a.calls.UpdateItemCommand ?? 0),
    feedQueries: per(r.feedQueries),
    rru: per(a.rru),
    gsiRru: per(a.gsiRru),
    wru: per(a.wru + m.wru),
    gsiWru: per(a.gsiWru + m.gsiWru),
    fullReadRru: 0.5 * Math.ceil((r.stateItems * r.stateItemBytes) / 4096),
  };
}

/** Refresh point of a token of lifetime L (seconds): `ApiKeyExchange.#refreshAt`. */
const refreshIntervalS = (lifetimeS: number, refreshBeforeS = 60) => Math.max(lifetimeS / 2, lifetimeS - refreshBeforeS);
const REVOCATION_CHECK_S = 30;
/** `PrincipalStateSnapshot`: a background sync once the state is half of (bound − 5 s) old. */
const SYNC_AFTER_S = (REVOCATION_CHECK_S - 5) / 2;
/** Share of (credential, container) pairs used at least once in a window of `s` seconds at rate `lambda`. */
const used = (lambda: number, s: number) => 1 - Math.exp(-lambda * s);

/** The same mechanisms as rates (per hour), for a workload too large to simulate. */
export function derivedRates(w: Workload, u: Units): Rates {
  const keys = w.tenants * w.keysPerTenant;
  const users = w.tenants * w.usersPerTenant;
  const C = w.containers;
  const R = w.requestsPerS;
  const Rk = keys > 0 ? (users > 0 ? R * w.apiKeyShare : R) : 0;
  const Ru = R - Rk;
  const lk = keys > 0 ? Rk / keys : 0;
  const lkc = lk / C;
  const rI = refreshIntervalS(w.tokenLifetimeS);
  // One exchange per key per refresh interval (level 2 is shared), once a request comes after it.
  const exchanges = lk > 0 ? Math.min((keys * 3600) / (rI + 1 / lk), Rk * 3600) : 0;
  // Each container reads level 2 once per key per refresh interval in which it sees the key, and after each cold start.
  const l2Reads = Math.min((keys * C * used(lkc, rI) * 3600) / rI + w.coldStartsPerHour * keys * used(lkc, rI), Rk * 3600);
  // "Last used": at most once per key per container per revocation bound, plus one per exchange.
  const useRecords = (lkc > 0 ? Math.min((keys * C * 3600) / (REVOCATION_CHECK_S + 1 / lkc), Rk * 3600) : 0) + exchanges;
  // Each container syncs once the state is 12.5 s old and a request arrives; a cold one reads the whole feed.
  const feedQueries = (C * 3600) / (SYNC_AFTER_S + C / R) + w.coldStartsPerHour;
  const stateItems = keys + Math.min(users, w.stateChangesPerHour * 24 * 31);
  const fullReadRru = 0.5 * Math.ceil((stateItems * u.stateItemBytes) / 4096);
  const lu = users > 0 ? Ru / users : 0;
  const luc = lu / C;
  const firstSeen = lu > 0 ? Math.min(users * (3600 / w.userTokenLifetimeS) * C * used(luc, w.userTokenLifetimeS), Ru * 3600) : 0;
  const decisions: Record<DecisionKind, number> = {
    'key.exchange': exchanges,
    'key.level2': Math.max(0, l2Reads - exchanges),
    'key.level1': Math.max(0, Rk * 3600 - l2Reads),
    'bearer.firstSeen': firstSeen,
    'bearer.cached': Math.max(0, Ru * 3600 - firstSeen),
  };
  return {
    requests: R * 3600,
    decisions,
    waitedForSync: w.coldStartsPerHour,
    exchanges,
    l2Reads,
    useRecords,
    feedQueries,
    rru: l2Reads * u.rruPerL2Read,
    gsiRru: (feedQueries - w.coldStartsPerHour) * 0.5 + w.coldStartsPerHour * Math.max(0.5, fullReadRru),
    // Per exchange: token and lease puts, the lease's delete; "last used" updates write the table (and the index as measured).
    wru: exchanges * (2 * u.wruPerPut + u.wruPerDelete) + useRecords * u.wruPerUpdate + w.stateChangesPerHour,
    gsiWru: useRecords * u.gsiWruPerUpdate + w.stateChangesPerHour,
    fullReadRru,
  };
}

/** Estimated billed ms of one decision of each kind, at the workload's memory. */
export function billedMs(kind: DecisionKind, cpuUs: number, memoryMb: number): number {
  const cpuMs = (cpuUs / 1000) * Math.max(1, DURATION.fullVcpuMb / memoryMb);
  const io = kind === 'key.level2' ? DURATION.dynamoMs : kind === 'key.exchange' ? 3 * DURATION.dynamoMs + DURATION.tokenEndpointMs : 0;
  return Math.max(1, Math.ceil(cpuMs + io));
}

export interface Cost {
  label: string;
  /** Per million requests. */
  tokenExchanges: number;
  rru: number;
  wru: number;
  invocations: number;
  gbSeconds: number;
  gatewayRequests: number;
  dollars: { gateway: number; lambda: number; dynamo: number; total: number };
  note: string;
}

function dollars(gateway: 'rest' | 'http', invocations: number, gbSeconds: number, rru: number, wru: number) {
  const g = gateway === 'rest' ? PRICES.restApiPerMillion : PRICES.httpApiPerMillion;
  const lambda = (invocations / 1e6) * PRICES.lambdaRequestsPerMillion + gbSeconds * LAMBDA_GB_SECOND;
  const dynamo = (rru / 1e6) * PRICES.dynamoRruPerMillion + (wru / 1e6) * PRICES.dynamoWruPerMillion;
  return { gateway: g, lambda, dynamo, total: g + lambda + dynamo };
}

/** Hit ratio of the REST authorizer result cache for credentials each seen at `lambda`/s, TTL `ttlS`: one miss per TTL window. */
export const cacheHitRatio = (lambda: number, ttlS: number) => (lambda > 0 ? 1 - 1 / (1 + lambda * ttlS) : 0);

/** Tokens key holders fetch themselves when the gateway takes only JWTs: one per key per lifetime (a well-behaved client). */
const selfServedTokensPerHour = (w: Workload) => {
  const keys = w.tenants * w.keysPerTenant;
  const lk = keys > 0 ? (w.requestsPerS * w.apiKeyShare) / keys : 0;
  return lk > 0 ? Math.min((keys * 3600) / (w.tokenLifetimeS + 1 / lk), w.requestsPerS * w.apiKeyShare * 3600) : 0;
};

/** Latchkey and the alternatives, per million requests, for one workload's rates. */
export function costs(w: Workload, rates: Rates, cpuUs: Record<DecisionKind, number>, cacheTtlS = 300): Cost[] {
  const perM = 1e6 / rates.requests;
  const gb = w.memoryMb / 1024;
  let ms = 0;
  for (const [k, n] of Object.entries(rates.decisions) as [DecisionKind, number][]) ms += n * billedMs(k, cpuUs[k], w.memoryMb);
  ms += rates.waitedForSync * DURATION.dynamoMs;
  const gbs = (ms / 1000) * gb * perM;
  const rru = (rates.rru + rates.gsiRru) * perM;
  const wru = (rates.wru + rates.gsiWru) * perM;
  const x = rates.exchanges * perM;
  const out: Cost[] = [];
  out.push({ label: 'Latchkey, REST, cache off', tokenExchanges: x, rru, wru, invocations: 1e6, gbSeconds: gbs, gatewayRequests: 1e6, dollars: dollars('rest', 1e6, gbs, rru, wru), note: 'every request invokes the authorizer' });
  const keys = w.tenants * w.keysPerTenant;
  const users = w.tenants * w.usersPerTenant;
  const Rk = w.requestsPerS * (users > 0 ? w.apiKeyShare : 1);
  const Ru = w.requestsPerS - Rk;
  const hit = (Rk * cacheHitRatio(keys > 0 ? Rk / keys : 0, cacheTtlS) + Ru * cacheHitRatio(users > 0 ? Ru / users : 0, Math.min(cacheTtlS, w.userTokenLifetimeS))) / w.requestsPerS;
  const inv = 1e6 * (1 - hit);
  out.push({
    label: `Latchkey, REST, cache ${cacheTtlS} s`,
    tokenExchanges: x,
    rru,
    wru,
    invocations: inv,
    gbSeconds: gbs * (1 - hit),
    gatewayRequests: 1e6,
    dollars: dollars('rest', inv, gbs * (1 - hit), rru, wru),
    note: `hit ratio ${(hit * 100).toFixed(1)} % (one miss per credential per TTL); DynamoDB and exchanges kept as with the cache off (an upper bound)`,
  });
  const selfX = selfServedTokensPerHour(w) * perM;
  const verifyMs = Math.max(1, Math.ceil((DURATION.awsJwtVerifyCpuUs / 1000) * Math.max(1, DURATION.fullVcpuMb / w.memoryMb)));
  const vGbs = (verifyMs / 1000) * gb * 1e6;
  out.push({ label: 'aws-jwt-verify authorizer, REST, cache off', tokenExchanges: selfX, rru: 0, wru: 0, invocations: 1e6, gbSeconds: vGbs, gatewayRequests: 1e6, dollars: dollars('rest', 1e6, vGbs, 0, 0), note: 'modelled: one invocation per request, no DynamoDB, no revocation; key holders fetch their own tokens' });
  out.push({ label: `aws-jwt-verify authorizer, REST, cache ${cacheTtlS} s`, tokenExchanges: selfX, rru: 0, wru: 0, invocations: inv, gbSeconds: vGbs * (1 - hit), gatewayRequests: 1e6, dollars: dollars('rest', inv, vGbs * (1 - hit), 0, 0), note: 'modelled, same hit ratio' });
  out.push({ label: 'HTTP API, native JWT authorizer', tokenExchanges: selfX, rru: 0, wru: 0, invocations: 0, gbSeconds: 0, gatewayRequests: 1e6, dollars: dollars('http', 0, 0, 0, 0), note: 'no Lambda; no API keys (holders fetch tokens themselves), no revocation before expiry' });
  return out;
}

export interface LimitHit {
  limit: string;
  /** Value per second (or per month) the workload reaches, and the limit. */
  value: number;
  max: number;
}

/** Every limit a workload reaches (value ≥ limit), for Latchkey (`who: latchkey`) or a JWT-only alternative. */
export function limitsReached(w: Workload, rates: Rates, cpuUs: Record<DecisionKind, number>, who: 'latchkey' | 'jwt-only'): LimitHit[] {
  const keys = w.tenants * w.keysPerTenant;
  const exchangesPerS = who === 'latchkey' ? rates.exchanges / 3600 : selfServedTokensPerHour(w) / 3600;
  const out: LimitHit[] = [];
  const check = (limit: string, value: number, max: number) => {
    if (value >= max) out.push({ limit, value, max });
  };
  check('Auth0 applications (free plan: 10; a client per key)', keys, LIMITS.auth0Applications.free);
  check('Auth0 applications (self-service: 100; a client per key)', keys, LIMITS.auth0Applications.selfService);
  check('Auth0 M2M tokens a month (free plan: 1,000)', exchangesPerS * 3600 * 24 * 30, LIMITS.auth0M2mTokensPerMonthFree);
  check('Auth0 token endpoint (self-service: 25/s)', exchangesPerS, LIMITS.auth0TokenRatePerS.selfService);
  check('Auth0 token endpoint (enterprise: 100/s)', exchangesPerS, LIMITS.auth0TokenRatePerS.enterprise);
  check('API Gateway account throttle (10,000 requests/s)', w.requestsPerS, LIMITS.apiGatewayRps);
  if (who === 'latchkey') {
    check('DynamoDB: state-feed index partition writes (1,000 WRU/s)', rates.gsiWru / 3600, LIMITS.dynamoPartitionWruPerS);
    check('DynamoDB: state-feed index partition reads (3,000 RRU/s)', rates.gsiRru / 3600, LIMITS.dynamoPartitionRruPerS);
    check('DynamoDB: one cold start reads the whole feed (RRU in ~1 s vs 3,000/s)', rates.fullReadRru, LIMITS.dynamoPartitionRruPerS);
    let ms = 0;
    for (const [k, n] of Object.entries(rates.decisions) as [DecisionKind, number][]) ms += n * billedMs(k, cpuUs[k], w.memoryMb);
    check('Lambda concurrency (1,000)', ms / 1000 / 3600, LIMITS.lambdaConcurrency);
  }
  return out;
}
