/**
 * The scale simulation: a workload (`workload.ts`) served by the real authorizer code in several
 * in-process containers — each its own JwtVerifier, ApiKeyExchange, PrincipalStateSnapshot and
 * Authenticator behind the real handler, each its own DynamoDB client — against DynamoDB Local
 * (every call counted, with the capacity DynamoDB Local reports) and the local identity
 * provider (its own token-endpoint counter).
 *
 * Time is the injected clock's. `stepMs` says how it moves:
 * - `stepMs: 1`: each event is served at its own millisecond (the exact run);
 * - `stepMs: n`: the clock moves in steps of n ms and each event is served at the end of its step
 *   (the compressed run `npm run bench:scale` uses);
 * - `realTime: true`: nothing is compressed: the clock is the wall clock (shifted) and the run
 *   sleeps until each event is due.
 * The simulated clock runs behind real time by more than the simulated span, so tokens the
 * provider issues (with real `iat`/`exp`) are never from the future of a decision; their
 * simulated lifetime is the provider's `expires_in` counted on the simulated clock (how the
 * exchange computes a token's expiry), and users replace their tokens after their simulated
 * lifetime.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { STATE_FEED_ATTRIBUTES, STATE_FEED_INDEX } from '../../functions/adapters/dynamodb-state-items.js';
import { createDocumentClient as createProductionClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import type { Clock } from '../../functions/core/clock.js';
import { loadAuthorizerConfig, type AuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { silentLog } from '../../functions/core/log.js';
import { PrincipalStateSnapshot, userStateAfter } from '../../functions/core/principal-state.js';
import type { LocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { basicEvent, bearerEvent } from '../lib/events.js';
import { schedule, type Workload } from './workload.js';
import { countingFeed, noFeedReads } from '../../test/support/counting.js';
import { localAuthorizerEnv } from '../../test/support/servers.js';

/** What a decision did, judged from the counters around it. */
export type DecisionKind = 'bearer.cached' | 'bearer.firstSeen' | 'key.level1' | 'key.level2' | 'key.exchange';
export const DECISION_KINDS: readonly DecisionKind[] = ['bearer.cached', 'bearer.firstSeen', 'key.level1', 'key.level2', 'key.exchange'];

/** DynamoDB traffic as on-demand request units. */
export interface DynamoUsage {
  calls: Record<string, number>;
  /** Request units by command: table and index units together. */
  units: Record<string, number>;
  /** Read request units of the table (strongly consistent: 1 per 4 KB per item). */
  rru: number;
  /** Read request units of the state-feed index (eventually consistent: 0.5 per 4 KB). */
  gsiRru: number;
  wru: number;
  /** Write units the state-feed index consumed (one partition key, `state`). */
  gsiWru: number;
}

export interface SimResult {
  workload: Workload;
  stepMs: number;
  realTime: boolean;
  /** Simulated seconds counted (the span less the warm-up). */
  measuredS: number;
  requests: number;
  allowed: number;
  refused: number;
  decisions: Record<DecisionKind, number>;
  /** Mean CPU µs (user + system, this process) and wall µs per decision kind; includes the in-process IdP's work for exchanges. */
  cpuUs: Record<DecisionKind, number>;
  wallUs: Record<DecisionKind, number>;
  /** Decisions that waited for a state-feed sync (cold or past the bound). */
  waitedForSync: number;
  /** Client-credentials exchanges at the token endpoint (the provider's own counter). */
  tokenExchanges: number;
  /** Users' sign-ins (tokens minted for users; not machine-to-machine). */
  userSignIns: number;
  /** Authorizer's DynamoDB traffic (all containers). */
  authorizer: DynamoUsage;
  /** Management API's writes of the state changes. */
  management: DynamoUsage;
  feedQueries: number;
  /** Point reads of principal state (one BatchGetItem each) by cold containers whose first sync spans pages. */
  pointReads: number;
  coldStarts: number;
  stateChanges: number;
  /** State items in the feed at the end, and their mean size in bytes (a cold container reads them all). */
  stateItems: number;
  stateItemBytes: number;
  wallMs: number;
}

export interface SimEnv {
  idp: LocalIdentityProvider;
  /** A fresh token-cache table in DynamoDB Local (`createScaleTable`). */
  newTable: () => Promise<string>;
}

export interface SimOptions {
  stepMs?: number;
  realTime?: boolean;
  /** Counters start after this much simulated time (the caches' first fill is not the steady state). */
  warmupS?: number;
  /** Called now and then with the share done. */
  progress?: (done: number) => void;
}

const emptyUsage = (): DynamoUsage => ({ calls: {}, units: {}, rru: 0, gsiRru: 0, wru: 0, gsiWru: 0 });
/** The document client's commands reach this middleware as the low-level ones they wrap. */
const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand']);

interface Consumed {
  CapacityUnits?: number;
  Table?: { CapacityUnits?: number };
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
}

/**
 * Counts every command sent through `db`, and adds up the capacity DynamoDB Local reports for it
 * (ReturnConsumedCapacity INDEXES). AWS bills a failed conditional write one WRU, which comes
 * back as an error without capacity, and bills each item a BatchGet names at least one unit
 * (strongly consistent) whether or not it exists: both are added here.
 */
export function countDynamo(db: DynamoDBDocumentClient, usage: DynamoUsage): void {
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      usage.calls[name] = (usage.calls[name] ?? 0) + 1;
      const input = args.input as Record<string, unknown>;
      input.ReturnConsumedCapacity = 'INDEXES';
      const read = READS.has(name);
      try {
        const out = await next(args);
        const cc = (out.output as { ConsumedCapacity?: Consumed | Consumed[] }).ConsumedCapacity;
        const all = Array.isArray(cc) ? cc : cc ? [cc] : [];
        let table = 0;
        let gsi = 0;
        for (const c of all) {
          table += c.Table?.CapacityUnits ?? (c.GlobalSecondaryIndexes ? 0 : (c.CapacityUnits ?? 0));
          for (const g of Object.values(c.GlobalSecondaryIndexes ?? {})) gsi += g.CapacityUnits ?? 0;
        }
        if (name === 'BatchGetItemCommand') {
          const items = Object.values((input.RequestItems ?? {}) as Record<string, { Keys?: unknown[] }>).reduce((n, r) => n + (r.Keys?.length ?? 0), 0);
          table = Math.max(table, items);
        }
        usage.units[name] = (usage.units[name] ?? 0) + table + gsi;
        if (read) {
          usage.rru += table;
          usage.gsiRru += gsi;
        } else {
          usage.wru += table;
          usage.gsiWru += gsi;
        }
        return out;
      } catch (err) {
        if ((err as { name?: string }).name === 'ConditionalCheckFailedException') {
          usage.wru += 1;
          usage.units[name] = (usage.units[name] ?? 0) + 1;
        }
        throw err;
      }
    },
    { step: 'initialize', name: 'latchkeyScaleCounter' },
  );
}

/** A clock the simulation sets; in real time it follows the wall clock, shifted. */
class SimClock implements Clock {
  ms = 0;
  constructor(private readonly realOffsetMs: number | undefined) {}
  now(): number {
    return this.realOffsetMs === undefined ? this.ms : Date.now() - this.realOffsetMs;
  }
}

interface Container {
  handler: ReturnType<typeof createAuthorizerHandler>;
  state: PrincipalStateSnapshot;
}

/**
 * The production client, with longer timeouts: on a loaded machine DynamoDB Local sometimes takes
 * over a second, which would only print the SDK's warning (it does not retry or fail), not change a count.
 */
const createDocumentClient = () => createProductionClient({ maxAttempts: 2, requestHandler: { requestTimeout: 15_000, connectionTimeout: 5_000 } });

/**
 * The token-cache table (key `pk`, the state-feed index) WITHOUT time to live: the simulated clock
 * runs behind real time, so DynamoDB Local would delete items at once whose `ttl` is past in real
 * time. AWS deletes expired items lazily (up to days later) and every read checks expiry itself,
 * so no count depends on the deletion.
 */
export async function createScaleTable(): Promise<string> {
  const name = `scale-${randomUUID().slice(0, 8)}`;
  const db = new DynamoDBClient({});
  try {
    await db.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'feed', AttributeType: 'S' },
          { AttributeName: 'changedAt', AttributeType: 'N' },
        ],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [
          {
            IndexName: STATE_FEED_INDEX,
            KeySchema: [
              { AttributeName: 'feed', KeyType: 'HASH' },
              { AttributeName: 'changedAt', KeyType: 'RANGE' },
            ],
            // As deployed: only the state attributes, so "last used" writes cost no index write.
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...STATE_FEED_ATTRIBUTES] },
          },
        ],
      }),
    );
  } finally {
    db.destroy();
  }
  return name;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function simulate(env: SimEnv, w: Workload, opts: SimOptions = {}): Promise<SimResult> {
  const stepMs = opts.realTime ? 1 : Math.max(1, opts.stepMs ?? 1000);
  const { idp } = env;
  const table = await env.newTable();
  const config: AuthorizerConfig = loadAuthorizerConfig(localAuthorizerEnv(idp, table));
  // Behind real time by more than the span (see the file comment).
  const startMs = Date.now() - (w.durationS * 1000 + 3_600_000);
  const clock = new SimClock(opts.realTime ? Date.now() - startMs : undefined);
  clock.ms = startMs;

  // Tenants' keys as the management API creates them: a client at the provider and its state item.
  const mgmtUsage = emptyUsage();
  const mgmtDb = createDocumentClient();
  const writer = new DynamoDbTokenCache({ tableName: table, client: mgmtDb });
  const keys: { clientId: string; clientSecret: string }[] = [];
  for (let t = 0; t < w.tenants; t++) {
    const tenantId = `t${t}`;
    const batch = await Promise.all(
      Array.from({ length: w.keysPerTenant }, () => idp.registerClient({ tenantId, scopes: ['users:read'], keyId: randomUUID() })),
    );
    for (const k of batch) {
      keys.push({ clientId: k.clientId, clientSecret: k.clientSecret });
      const at = startMs - 86_400_000;
      await writer.putState({ kind: 'client', id: k.clientId, status: 'active', revokedAt: 0, notBefore: 0, changedAt: at, tenantId, keyId: randomUUID(), createdAt: at });
    }
  }
  countDynamo(mgmtDb, mgmtUsage);
  const users = Array.from({ length: w.tenants * w.usersPerTenant }, (_, i) => {
    const u = idp.addUser({ email: `u${i}-${randomUUID().slice(0, 8)}@example.test`, password: 'correct horse battery', tenantId: `t${Math.floor(i / w.usersPerTenant)}`, roles: ['member'] });
    return { userId: u.userId, token: undefined as string | undefined, until: 0 };
  });

  const usage = emptyUsage();
  /** Every container's feed reads together, those replaced by a cold start included. */
  const feedReads = noFeedReads();
  const dbs: DynamoDBDocumentClient[] = [];
  const build = (): Container => {
    const db = createDocumentClient();
    dbs.push(db);
    countDynamo(db, usage);
    const shared = new DynamoDbTokenCache({ tableName: table, client: db });
    const verifier = new JwtVerifier({ config: config.jwt, clock });
    const exchange = new ApiKeyExchange({
      config: config.apiKey,
      jwtConfig: config.jwt,
      clock,
      verifier,
      tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { now: () => clock.now() }),
      shared,
      log: silentLog,
    });
    // The whole feed, point reads too: a cold container whose first sync spans pages decides on them.
    const { feed } = countingFeed(shared, feedReads);
    const state = new PrincipalStateSnapshot({
      feed,
      clock,
      log: silentLog,
      maxAgeMs: config.apiKey.revocationCheckS * 1000,
      retryAfterS: 5,
    });
    const authenticator = new Authenticator({ verifier, state, keyPrefix: config.apiKey.keyPrefix, apiKeys: async () => exchange });
    return { handler: createAuthorizerHandler({ authenticator, log: silentLog }), state };
  };
  const containers = Array.from({ length: w.containers }, build);

  const decisions = Object.fromEntries(DECISION_KINDS.map((k) => [k, 0])) as Record<DecisionKind, number>;
  const cpu = Object.fromEntries(DECISION_KINDS.map((k) => [k, 0])) as Record<DecisionKind, number>;
  const wall = Object.fromEntries(DECISION_KINDS.map((k) => [k, 0])) as Record<DecisionKind, number>;
  const seenTokens = containers.map(() => new Set<string>());
  let requests = 0;
  let allowed = 0;
  let refused = 0;
  let waited = 0;
  let userSignIns = 0;
  let coldStarts = 0;
  let stateChanges = 0;
  const wall0 = performance.now();
  const total = w.durationS * w.requestsPerS;

  const warmupMs = (opts.warmupS ?? 0) * 1000;
  const counters = () => ({ decisions, cpu, wall, requests, allowed, refused, waited, userSignIns, coldStarts, stateChanges, feedQueries: feedReads.syncs, pointReads: feedReads.pointReads, tokens: idp.stats.tokenRequests, usage, mgmtUsage });
  let snap: ReturnType<typeof counters> | undefined = warmupMs > 0 ? undefined : structuredClone(counters());
  for (const ev of schedule(w)) {
    if (snap === undefined && ev.atMs >= warmupMs) snap = structuredClone(counters());
    const due = startMs + Math.ceil((ev.atMs + 1) / stepMs) * stepMs - 1;
    if (opts.realTime) {
      const wait = due - clock.now();
      if (wait > 0) await sleep(wait);
    } else clock.ms = Math.max(clock.ms, due);
    if (ev.kind === 'coldStart') {
      containers[ev.slot] = build();
      seenTokens[ev.slot] = new Set();
      coldStarts++;
      continue;
    }
    if (ev.kind === 'stateChange') {
      const u = users[ev.user]!;
      await writer.putState(userStateAfter(undefined, u.userId, { rolesChanged: true }, clock.now()));
      stateChanges++;
      continue;
    }
    const c = containers[ev.slot]!;
    let event;
    let kind: DecisionKind;
    if (ev.credential === 'key') {
      const k = keys[ev.index]!;
      event = basicEvent(k.clientId, k.clientSecret);
      kind = 'key.level1';
    } else {
      const u = users[ev.index]!;
      if (u.token === undefined || clock.now() >= u.until) {
        u.token = await idp.issueUserToken({ userId: u.userId });
        u.until = clock.now() + w.userTokenLifetimeS * 1000;
        userSignIns++;
      }
      event = bearerEvent(u.token);
      const seen = seenTokens[ev.slot]!;
      kind = seen.has(u.token) ? 'bearer.cached' : 'bearer.firstSeen';
      seen.add(u.token);
    }
    const ex0 = idp.stats.tokenRequests;
    const bg0 = usage.calls.BatchGetItemCommand ?? 0;
    const p0 = feedReads.pointReads;
    const q0 = feedReads.syncs;
    const syncs0 = c.state.syncs;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let ok = false;
    try {
      const out = (await c.handler(event)) as { policyDocument?: { Statement?: { Effect?: string }[] } };
      ok = out.policyDocument?.Statement?.[0]?.Effect === 'Allow';
    } catch {
      ok = false;
    }
    const dt = performance.now() - t0;
    const dc = process.cpuUsage(cpu0);
    if (kind === 'key.level1') {
      if (idp.stats.tokenRequests > ex0) kind = 'key.exchange';
      // A point read of principal state is a BatchGetItem too, not a level-2 read.
      else if ((usage.calls.BatchGetItemCommand ?? 0) - bg0 > feedReads.pointReads - p0) kind = 'key.level2';
    }
    // A sync that completed inside the decision was waited for (one started in the background finishes later).
    if (feedReads.syncs > q0 && c.state.syncs > syncs0) waited++;
    decisions[kind]++;
    cpu[kind] += dc.user + dc.system;
    wall[kind] += dt * 1000;
    requests++;
    if (ok) allowed++;
    else refused++;
    if (opts.progress && requests % 20_000 === 0) opts.progress(requests / total);
  }
  // Let background work (feed syncs, "last used" writes) finish before reading the counters.
  await sleep(300);
  const management = structuredClone(mgmtUsage);
  const states = await writer.changesSince(undefined);
  const stateItems = states.length;
  // DynamoDB's item size: attribute names plus values (numbers counted as their digits), plus the key and index attributes.
  const stateItemBytes = stateItems === 0 ? 0 : states.reduce((n, st) => n + Object.entries(st).reduce((m, [k, v]) => m + k.length + String(v).length, 0) + 40, 0) / stateItems;
  mgmtDb.destroy();
  for (const db of dbs) db.destroy();
  const s0 = snap ?? structuredClone(counters());
  const minus = (a: DynamoUsage, b: DynamoUsage): DynamoUsage => {
    const rec = (x: Record<string, number>, y: Record<string, number>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v - (y[k] ?? 0)]));
    return { calls: rec(a.calls, b.calls), units: rec(a.units, b.units), rru: a.rru - b.rru, gsiRru: a.gsiRru - b.gsiRru, wru: a.wru - b.wru, gsiWru: a.gsiWru - b.gsiWru };
  };
  const counted = Object.fromEntries(DECISION_KINDS.map((k) => [k, decisions[k] - s0.decisions[k]])) as Record<DecisionKind, number>;
  for (const k of DECISION_KINDS) {
    cpu[k] = counted[k] > 0 ? (cpu[k] - s0.cpu[k]) / counted[k] : 0;
    wall[k] = counted[k] > 0 ? (wall[k] - s0.wall[k]) / counted[k] : 0;
  }
  return {
    workload: w,
    stepMs,
    realTime: opts.realTime === true,
    measuredS: w.durationS - warmupMs / 1000,
    requests: requests - s0.requests,
    allowed: allowed - s0.allowed,
    refused: refused - s0.refused,
    decisions: counted,
    cpuUs: cpu,
    wallUs: wall,
    waitedForSync: waited - s0.waited,
    tokenExchanges: idp.stats.tokenRequests - s0.tokens,
    userSignIns: userSignIns - s0.userSignIns,
    authorizer: minus(usage, s0.usage),
    management: minus(management, s0.mgmtUsage),
    feedQueries: feedReads.syncs - s0.feedQueries,
    pointReads: feedReads.pointReads - s0.pointReads,
    coldStarts: coldStarts - s0.coldStarts,
    stateChanges: stateChanges - s0.stateChanges,
    stateItems,
    stateItemBytes,
    wallMs: performance.now() - wall0,
  };
}
