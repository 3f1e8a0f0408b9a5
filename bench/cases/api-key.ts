/**
 * API-key decisions (cases 3 and 4) against DynamoDB Local and the local oidc-provider:
 * level-1 hit, level-2 hit, miss (exchange), a cross-container stampede, and decisions under faults
 * (DynamoDB hung, the lease holder killed) against the decision budget.
 */
import { randomUUID } from 'node:crypto';
import { BatchGetCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { MANAGEMENT_DYNAMODB_DEADLINE } from '../../functions/adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { UsageCounter } from '../../functions/core/usage-counter.js';
import { formatApiKey, type ClientCredentials } from '../../functions/core/api-key.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { PrincipalStateSnapshot } from '../../functions/core/principal-state.js';
import { systemClock } from '../../functions/core/clock.js';
import { loadAuthorizerConfig, type AuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { silentLog } from '../../functions/core/log.js';
import { credentialsCacheKey } from '../../functions/core/token-crypto.js';
import { counting, type Counter } from '../../test/support/counting.js';
import type { SharedTokenCache, TokenEndpoint } from '../../functions/core/token-cache.js';
import { startFaultProxy } from '../../test/support/fault-proxy.js';
import { localAuthorizerEnv } from '../../test/support/servers.js';
import { assertAllow, basicEvent, restEvent } from '../lib/events.js';
import type { BenchIdp } from '../lib/idp-process.js';
import type { BenchCase } from '../lib/stats.js';

export interface Container {
  handler: ReturnType<typeof createAuthorizerHandler>;
  authenticator: Authenticator;
  exchange: ApiKeyExchange;
  verifier: JwtVerifier;
  dynamoCalls: Counter;
}

export interface ApiKeyFixture {
  idp: BenchIdp;
  table: string;
  config: AuthorizerConfig;
  /** HTTP requests made through Latchkey's fetch (token endpoint and key set). */
  fetches: Counter;
  /** A simulated Lambda container: its own level 1; by default its own DynamoDB client and verifier. */
  container(opts?: { shared?: { shared: DynamoDbTokenCache; calls: Counter }; verifier?: JwtVerifier }): Container;
  newKeys(n: number): Promise<ClientCredentials[]>;
}

export function apiKeyFixture(idp: BenchIdp, table: string): ApiKeyFixture {
  const config = loadAuthorizerConfig(localAuthorizerEnv(idp, table));
  const fetches: Counter = { n: 0 };
  const countingFetch: typeof fetch = (input, init) => {
    fetches.n++;
    return fetch(input, init);
  };
  return {
    idp,
    table,
    config,
    fetches,
    container(opts = {}) {
      const verifier = opts.verifier ?? new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: countingFetch });
      const counted = opts.shared ?? counting(new DynamoDbTokenCache({ tableName: table }));
      // As deployed: the principal-state snapshot of the container, synced from the same table; its feed reads count as DynamoDB calls.
      const state = new PrincipalStateSnapshot({ feed: counted.shared, clock: systemClock, log: silentLog, maxAgeMs: 30_000, retryAfterS: 5 });
      const exchange = new ApiKeyExchange({
        config: config.apiKey,
        jwtConfig: config.jwt,
        clock: systemClock,
        verifier,
        tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { fetch: countingFetch }),
        shared: counted.shared,
        keys: (id) => state.knownKey(id),
        log: silentLog,
      });
      const authenticator = new Authenticator({ verifier, state, keyPrefix: config.apiKey.keyPrefix, apiKeys: async () => exchange });
      const handler = createAuthorizerHandler({ authenticator, log: silentLog });
      return { handler, authenticator, exchange, verifier, dynamoCalls: counted.calls };
    },
    async newKeys(n) {
      const out: ClientCredentials[] = [];
      // With the management API's deadlines, as it writes them (a cold DynamoDB Local is slow at first).
      const states = new DynamoDbTokenCache({ tableName: table, client: createDocumentClient({}, MANAGEMENT_DYNAMODB_DEADLINE) });
      // As the management API issues a key: a client at the provider and its state record (the authorizer refuses clients without one).
      const issue = async () => {
        const keyId = randomUUID();
        const client = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId });
        await states.putState({ kind: 'client', id: client.clientId, status: 'active', revokedAt: 0, notBefore: 0, changedAt: Date.now(), tenantId: 'acme', keyId });
        return client;
      };
      for (let i = 0; i < n; i += 8) {
        const batch = await Promise.all(Array.from({ length: Math.min(8, n - i) }, issue));
        out.push(...batch.map((k) => ({ clientId: k.clientId, clientSecret: k.clientSecret })));
      }
      return out;
    },
  };
}

export interface CallCounts {
  requests: number;
  dynamoCalls: number;
  tokenRequests: number;
  httpFetches: number;
}

/** Snapshot of every network counter; `diff()` gives what happened since. */
export async function networkSnapshot(f: ApiKeyFixture, dynamo: () => number): Promise<() => Promise<Omit<CallCounts, 'requests'>>> {
  const d0 = dynamo();
  const t0 = await f.idp.tokenRequests();
  const h0 = f.fetches.n;
  return async () => ({ dynamoCalls: dynamo() - d0, tokenRequests: (await f.idp.tokenRequests()) - t0, httpFetches: f.fetches.n - h0 });
}

/** Level-1 cases: one warm container, one key, Basic and single-string (`lk_…`) forms. */
export async function l1Cases(f: ApiKeyFixture): Promise<{ cases: BenchCase[]; counts: () => Promise<CallCounts>; revalidations: () => number; usage: () => { requests: number; writes: number } }> {
  const [key] = await f.newKeys(1);
  const c = f.container();
  // The same container's authenticator, with the authorizer's usage counter in front of an
  // in-memory sink (default flush, USAGE_FLUSH_DEFAULTS), so the difference is the counting alone.
  const counter = new UsageCounter({ sink: { add: async () => undefined }, clock: systemClock, log: silentLog });
  const counted = createAuthorizerHandler({ authenticator: c.authenticator, log: silentLog, usage: counter });
  let countedRequests = 0;
  const basic = basicEvent(key!.clientId, key!.clientSecret);
  const single = restEvent({ 'X-Api-Key': formatApiKey(f.config.apiKey.keyPrefix, key!) });
  assertAllow(await c.handler(basic));
  const snap = await networkSnapshot(f, () => c.dynamoCalls.n);
  const checkIns0 = c.exchange.stats.useRecords;
  let requests = 0;
  return {
    cases: [
      {
        name: 'apikey.l1.basic',
        run: async () => {
          requests++;
          assertAllow(await c.handler(basic));
        },
      },
      {
        name: 'apikey.l1.basic.counted',
        run: async () => {
          countedRequests++;
          assertAllow(await counted(basic));
        },
      },
      {
        name: 'apikey.l1.lkKey',
        run: async () => {
          requests++;
          assertAllow(await c.handler(single));
        },
      },
    ],
    counts: async () => ({ requests, ...(await snap()) }),
    revalidations: () => c.exchange.stats.useRecords - checkIns0,
    usage: () => ({ requests: countedRequests, writes: counter.writes }),
  };
}

/** Level-2 hit: a new container (empty level 1) per iteration, sharing a warm DynamoDB client. */
export async function l2Cases(f: ApiKeyFixture): Promise<{ cases: BenchCase[]; counts: () => Promise<CallCounts> }> {
  const [key] = await f.newKeys(1);
  const seed = f.container();
  assertAllow(await seed.handler(basicEvent(key!.clientId, key!.clientSecret)));
  const shared = counting(new DynamoDbTokenCache({ tableName: f.table }));
  const verifier = seed.verifier;
  const event = basicEvent(key!.clientId, key!.clientSecret);
  const doc = createDocumentClient();
  const pk = `tok#${credentialsCacheKey(key!)}`;
  let c = f.container({ shared, verifier });
  const snap = await networkSnapshot(f, () => shared.calls.n);
  let requests = 0;
  return {
    cases: [
      {
        name: 'dynamodb.getItem',
        run: async () => {
          const out = await doc.send(new GetCommand({ TableName: f.table, Key: { pk }, ConsistentRead: true }));
          if (!out.Item) throw new Error('item missing');
        },
      },
      {
        name: 'apikey.l2',
        prepare: () => {
          c = f.container({ shared, verifier });
        },
        run: async () => {
          requests++;
          assertAllow(await c.handler(event));
        },
      },
    ],
    counts: async () => ({ requests, ...(await snap()) }),
  };
}

/** Miss: a fresh key per iteration (level 1 and level 2 empty), exchanged at the local IdP. */
export async function missCases(f: ApiKeyFixture, iterations: number): Promise<{ cases: BenchCase[]; counts: () => Promise<CallCounts> }> {
  const keys = await f.newKeys(iterations);
  const [baselineKey] = await f.newKeys(1);
  const shared = counting(new DynamoDbTokenCache({ tableName: f.table }));
  const warm = f.container({ shared });
  const verifier = warm.verifier;
  // Warm the IdP key set in the shared verifier with one exchange of the baseline key.
  assertAllow(await warm.handler(basicEvent(baselineKey!.clientId, baselineKey!.clientSecret)));
  const snap = await networkSnapshot(f, () => shared.calls.n);
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: baselineKey!.clientId,
    client_secret: baselineKey!.clientSecret,
    resource: f.idp.audience,
  }).toString();
  let next = 0;
  let c = warm;
  let event = basicEvent(keys[0]!.clientId, keys[0]!.clientSecret);
  let requests = 0;
  let bare = 0;
  return {
    cases: [
      {
        name: 'tokenEndpoint.post',
        run: async () => {
          bare++;
          const res = await fetch(f.idp.tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
          const json = (await res.json()) as { access_token?: unknown };
          if (res.status !== 200 || typeof json.access_token !== 'string') throw new Error(`token endpoint answered ${res.status}`);
        },
      },
      {
        name: 'apikey.miss',
        prepare: () => {
          const k = keys[next++];
          if (!k) throw new Error('out of fresh keys');
          c = f.container({ shared, verifier });
          event = basicEvent(k.clientId, k.clientSecret);
        },
        run: async () => {
          requests++;
          assertAllow(await c.handler(event));
        },
      },
    ],
    counts: async () => {
      const s = await snap();
      // The bare POSTs hit the same IdP counter; they are not Latchkey's.
      return { requests, ...s, tokenRequests: s.tokenRequests - bare };
    },
  };
}

export interface StampedeRun {
  tokenRequests: number;
  dynamoCalls: number;
  wallMs: number;
  allowed: number;
}

/** Case 4: `concurrency` concurrent first uses of one fresh key over `containers` containers. */
export async function stampede(f: ApiKeyFixture, opts: { concurrency: number; containers: number }): Promise<StampedeRun> {
  const [key] = await f.newKeys(1);
  const cs = Array.from({ length: opts.containers }, () => f.container());
  // Each container has loaded its code already (warm Lambda environments, first use of this key).
  const event = basicEvent(key!.clientId, key!.clientSecret);
  const t0 = await f.idp.tokenRequests();
  const start = process.hrtime.bigint();
  const results = await Promise.allSettled(Array.from({ length: opts.concurrency }, (_, i) => cs[i % opts.containers]!.handler(event)));
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  await new Promise((r) => setTimeout(r, 100)); // let fire-and-forget lease releases land
  let allowed = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') {
      try {
        assertAllow(r.value);
        allowed++;
      } catch {
        // counted as not allowed
      }
    }
  }
  return { tokenRequests: (await f.idp.tokenRequests()) - t0, dynamoCalls: cs.reduce((s, c) => s + c.dynamoCalls.n, 0), wallMs, allowed };
}

/**
 * DynamoDB Local is a JVM: its latency falls several-fold over the first few thousand
 * requests as the JIT warms up. Run that before any DynamoDB case is timed.
 */
export async function warmDynamo(table: string, requests: number, concurrency = 4): Promise<void> {
  const doc = createDocumentClient();
  await doc.send(new PutCommand({ TableName: table, Item: { pk: 'warm#1', v: 'x'.repeat(600) } }));
  let left = requests;
  const worker = async () => {
    for (let i = 0; left-- > 0; i++) {
      if (i % 3 === 0) await doc.send(new GetCommand({ TableName: table, Key: { pk: 'warm#1' }, ConsistentRead: true }));
      else if (i % 3 === 1) await doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: [{ pk: 'warm#1' }, { pk: 'warm#2' }], ConsistentRead: true } } }));
      else await doc.send(new PutCommand({ TableName: table, Item: { pk: `warm#lease${i % 50}`, leaseUntil: i }, ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :n', ExpressionAttributeValues: { ':n': i } })).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  doc.destroy();
}

/** Decision latency under a fault, as a ratio to the decision budget. */
export interface FaultRun {
  name: string;
  decisions: number;
  budgetMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** p99 / budget: at most 1 means every decision answered within the budget. */
  p99OfBudget: number;
  outcomes: Record<string, number>;
}

type Decision = 'allow' | 'unauthorized' | 'unavailable' | 'error';

async function timedDecision(handler: Container['handler'], key: ClientCredentials): Promise<{ ms: number; outcome: Decision }> {
  const start = process.hrtime.bigint();
  let outcome: Decision;
  try {
    assertAllow(await handler(basicEvent(key.clientId, key.clientSecret)));
    outcome = 'allow';
  } catch (err) {
    outcome = (err as Error).message === 'Unauthorized' ? 'unauthorized' : (err as Error).name === 'AuthorizerUnavailableError' ? 'unavailable' : 'error';
  }
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, outcome };
}

function faultRun(name: string, budgetMs: number, runs: { ms: number; outcome: Decision }[]): FaultRun {
  const sorted = runs.map((r) => r.ms).sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  const outcomes: Record<string, number> = {};
  for (const r of runs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  return { name, decisions: runs.length, budgetMs, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1)!, p99OfBudget: at(0.99) / budgetMs, outcomes };
}

/**
 * Decisions with DynamoDB hung (a fault proxy in front of DynamoDB Local that stops answering)
 * and with the lease holder killed mid-exchange (a container whose token endpoint never answers
 * holds the lease; other containers decide on the same key). `n` decisions each, concurrently.
 */
export async function faultCases(f: ApiKeyFixture, dynamoPort: number, n: number): Promise<FaultRun[]> {
  const budgetMs = f.config.decisionBudgetMs;
  const make = (shared: SharedTokenCache, tokenEndpoint?: TokenEndpoint) => {
    const verifier = new JwtVerifier({ config: f.config.jwt, clock: systemClock });
    const exchange = new ApiKeyExchange({
      config: f.config.apiKey,
      jwtConfig: f.config.jwt,
      clock: systemClock,
      verifier,
      tokenEndpoint: tokenEndpoint ?? new OAuthTokenEndpoint(f.config.apiKey),
      shared,
      log: silentLog,
      decisionBudgetMs: budgetMs,
    });
    return createAuthorizerHandler({ authenticator: new Authenticator({ verifier, keyPrefix: f.config.apiKey.keyPrefix, apiKeys: async () => exchange }), log: silentLog, decisionBudgetMs: budgetMs });
  };
  const out: FaultRun[] = [];

  const proxy = await startFaultProxy({ port: dynamoPort });
  try {
    const keys = await f.newKeys(n);
    const containers = Array.from({ length: 4 }, () => make(new DynamoDbTokenCache({ tableName: f.table, client: createDocumentClient({ endpoint: proxy.url }) })));
    proxy.hang();
    out.push(faultRun('DynamoDB hung (new keys, 4 containers)', budgetMs, await Promise.all(keys.map((k, i) => timedDecision(containers[i % 4]!, k)))));
  } finally {
    await proxy.stop();
  }

  const holders = Math.max(1, Math.ceil(n / 4));
  const keys = await f.newKeys(holders);
  const runs = await Promise.all(
    keys.map(async (key) => {
      let called!: () => void;
      const entered = new Promise<void>((r) => (called = r));
      // The holder's container dies mid-exchange: its token endpoint never answers.
      const killed = make(new DynamoDbTokenCache({ tableName: f.table }), { exchange: () => (called(), new Promise<never>(() => undefined)) });
      void killed(basicEvent(key.clientId, key.clientSecret)).catch(() => undefined);
      await entered;
      return Promise.all(Array.from({ length: 4 }, () => timedDecision(make(new DynamoDbTokenCache({ tableName: f.table })), key)));
    }),
  );
  out.push(faultRun('lease holder killed (4 waiting containers per key)', budgetMs, runs.flat()));
  return out;
}
