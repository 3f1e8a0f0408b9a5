/**
 * The decision budget through the real authorizer handler: API-key decisions with DynamoDB
 * Local and the local identity provider behind fault proxies. Every decision answers, within
 * its budget, 503 when a dependency is too slow and never 401 for that; after recovery the
 * same key works. Outcomes are asserted; wall-clock bounds are only generous hang detectors.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DynamoDbDeadline } from '../../functions/adapters/dynamodb-deadline.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { formatApiKey, type ClientCredentials } from '../../functions/core/api-key.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { systemClock } from '../../functions/core/clock.js';
import { DECISION_BUDGET_MS, loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { restEvent } from '../support/events.js';
import { reasonLog } from '../support/reasons.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { outcomeOf, tally, type Outcome } from '../support/outcomes.js';
import { pastMs, untilDone } from '../support/hang.js';
import { createTokenCacheTable } from '../support/tables.js';
import { localAuthorizerEnv } from '../support/servers.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
const DEFAULT_BUDGET_MS = DECISION_BUDGET_MS.default;
/** DynamoDB calls that hang for 20 s before failing: longer than any decision budget. */
const SLOW_DYNAMODB_DEADLINE: DynamoDbDeadline = { connectionTimeoutMs: 500, requestTimeoutMs: 20_000, maxAttempts: 1, operationMs: 20_000 };

let idp: Idp;
let table: string;
let dynamo: FaultProxy;
let tokenEndpoint: FaultProxy;
/** Why decisions answered 503 or failed (the handler's `unavailable` and `authorizer failure` lines). */
const { log, reasons } = reasonLog();

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things'] });
  table = await createTokenCacheTable();
  dynamo = await startFaultProxy({ port: Number(new URL(inject('dynamoDbEndpoint')).port) });
  tokenEndpoint = await startFaultProxy({ port: Number(new URL(idp.tokenEndpoint).port) });
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), tokenEndpoint?.stop()]);
  await idp?.stop();
});
afterEach(() => {
  dynamo.pass();
  tokenEndpoint.pass();
});

/**
 * One Lambda container: the real handler over the real exchange, DynamoDB and token endpoint
 * behind the proxies. `dynamoDeadline` replaces the authorizer's DynamoDB deadline, to model
 * a dependency that hangs for longer than the budget.
 */
function container(env: Record<string, string> = {}, dynamoDeadline?: DynamoDbDeadline) {
  const endpoint = new URL(idp.tokenEndpoint);
  endpoint.port = String(tokenEndpoint.port);
  const config = loadAuthorizerConfig(localAuthorizerEnv(idp, table, { TOKEN_ENDPOINT: endpoint.href, ...env }));
  const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock });
  const exchange = new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock: systemClock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey),
    shared: new DynamoDbTokenCache({ tableName: table, client: createDocumentClient({ endpoint: dynamo.url }, dynamoDeadline) }),
    log,
    singleFlightMs: config.decisionBudgetMs,
  });
  const authenticator = new Authenticator({ verifier, keyPrefix: 'lk', apiKeys: () => Promise.resolve(exchange) });
  return createAuthorizerHandler({ authenticator, log, decisionBudgetMs: config.decisionBudgetMs });
}

function decide(handler: ReturnType<typeof createAuthorizerHandler>, key: ClientCredentials): Promise<Outcome> {
  return outcomeOf(handler(restEvent({ 'X-Api-Key': formatApiKey('lk', key) })));
}

/**
 * Decides until allowed, at most `attempts` times, and returns every outcome. On a loaded
 * machine the first decision after a recovery may itself run out of budget (503) while its
 * work goes on and fills the cache; a lookup stuck on the old fault would keep every attempt
 * waiting far longer than these few.
 */
function untilAllowed(handler: ReturnType<typeof createAuthorizerHandler>, key: ClientCredentials): Promise<Outcome[]> {
  return untilDone(() => decide(handler, key), (o) => o === 'allow');
}

function expectAllowed(outcomes: Outcome[]) {
  expect(outcomes.at(-1)).toBe('allow');
  expect(outcomes.filter((o) => o !== 'allow' && o !== 'unavailable')).toEqual([]);
}

/** A key as the management API issues it: the client at the provider and its state record (written past the proxy). */
async function newKey() {
  const keyId = randomUUID();
  const key = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId });
  await new DynamoDbTokenCache({ tableName: table }).putState({ kind: 'client', id: key.clientId, status: 'active', revokedAt: 0, notBefore: 0, changedAt: Date.now(), tenantId: 'acme', keyId });
  return key;
}

describe('decision budget', () => {
  it('with DynamoDB hung for longer than the budget: new keys answer 503, cached keys keep working, the same keys work after recovery', async () => {
    const handler = container({}, SLOW_DYNAMODB_DEADLINE);
    const cached = await newKey();
    expectAllowed(await untilAllowed(handler, cached));
    const [a, b] = await Promise.all([newKey(), newKey()]);
    reasons.length = 0;
    dynamo.hang();
    const started = Date.now();
    const outcomes = await Promise.all([...Array.from({ length: 16 }, () => decide(handler, a)), ...Array.from({ length: 8 }, () => decide(handler, b))]);
    expect(tally(outcomes)).toEqual({ unavailable: 24 });
    expect(reasons).toContain('ERR_DECISION_BUDGET');
    expect(await decide(handler, cached)).toBe('allow');
    dynamo.pass();
    // The lookups made during the hang still hang (20 s), but past the budget none is joined.
    await pastMs(started, DEFAULT_BUDGET_MS);
    expectAllowed(await untilAllowed(handler, a));
    expectAllowed(await untilAllowed(handler, b));
    // A fresh container (no level 1) reads the recovered table.
    expectAllowed(await untilAllowed(container(), a));
  });

  it('with DynamoDB hung and the default budget: decisions go on without the table, and none is ever 401 or a hang', async () => {
    const handler = container();
    const key = await newKey();
    dynamo.hang();
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => decide(handler, key)));
    expect(outcomes.filter((o) => o !== 'allow' && o !== 'unavailable')).toEqual([]);
    dynamo.pass();
    expectAllowed(await untilAllowed(handler, key));
  });

  it('with the token endpoint hung: 503 within the budget; once it recovers the same key works although the first exchange still hangs', async () => {
    // The exchange's own timeout is far longer than the budget: only the budget and the
    // single-flight bound can keep the first, hung exchange from holding up everyone after it.
    const handler = container({ EXCHANGE_TIMEOUT_MS: '30000', EXCHANGE_LEASE_MS: '100' });
    const key = await newKey();
    tokenEndpoint.hang();
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => decide(handler, key)));
    expect(tally(outcomes)).toEqual({ unavailable: 8 });
    tokenEndpoint.pass();
    await pastMs(started, DEFAULT_BUDGET_MS);
    expectAllowed(await untilAllowed(handler, key));
  });

  it('after a failed exchange the next request tries afresh', async () => {
    const handler = container({ EXCHANGE_LEASE_MS: '100' });
    const key = await newKey();
    tokenEndpoint.reset();
    expect(await decide(handler, key)).toBe('unavailable');
    tokenEndpoint.pass();
    expectAllowed(await untilAllowed(handler, key));
  });
});
