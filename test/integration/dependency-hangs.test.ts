/**
 * The dependencies of a decision that point-read-faults and decision-budget do not hang: the
 * state feed's Query (a container's sync: its first one, of one page, and a warm container's
 * sync once its copy is past the bound) and the issuer's JWKS. Each sits behind the fault proxy
 * in front of a real local server (DynamoDB Local, the local identity provider), and the
 * container is built as `functions/authorizer/handler.ts` builds it. Every credential form
 * (user token, service token, a key's own token, the key as `X-Api-Key`, `Bearer lk_…` and
 * Basic, a revoked key's own token) must answer 503 with Retry-After when its path needs the
 * hung dependency, never 401 and never hang; once the proxy heals, each is decided correctly.
 * Time that the code measures goes through a `ManualClock`; wall-clock bounds are only
 * generous hang detectors.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbStateFeed } from '../../functions/adapters/dynamodb-state-feed.js';
import { createDocumentClient, DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { OAuthTokenEndpoint } from '../../functions/adapters/oauth-token-endpoint.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { formatApiKey } from '../../functions/core/api-key.js';
import { ApiKeyExchange } from '../../functions/core/api-key-exchange.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { PrincipalStateSnapshot, type PrincipalState } from '../../functions/core/principal-state.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { ManualClock } from '../support/clock.js';
import { countingFeed } from '../support/counting.js';
import { restEvent } from '../support/events.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { outcomeOf, type Outcome } from '../support/outcomes.js';
import { untilDone } from '../support/hang.js';
import { reasonLog } from '../support/reasons.js';
import { keyHolderToken, localAuthorizerEnv } from '../support/servers.js';
import { createTokenCacheTable, localLightDynamoDb } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
/** The sync and nothing else: point reads are a BatchGetItem, the API-key cache a GetItem. */
const SYNC = { match: 'DynamoDB_20120810.Query' };

let idp: Idp;
let table: string;
let dynamo: FaultProxy;
let jwks: FaultProxy;
const { log, reasons } = reasonLog();

interface Credential {
  name: string;
  headers: Record<string, string>;
  expected: Outcome;
}
let credentials: Credential[];

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things'] });
  table = await createTokenCacheTable('hangs');
  [dynamo, jwks] = await Promise.all([startFaultProxy({ port: Number(new URL(inject('dynamoDbEndpoint')).port) }), startFaultProxy({ port: Number(new URL(idp.jwksUri).port) })]);
  // States as the management API writes them (straight to DynamoDB Local): a few, so a first sync is one page.
  const writer = new DynamoDbTokenCache({ tableName: table });
  const now = Date.now();
  const key = async (status: 'active' | 'revoked') => {
    const keyId = randomUUID();
    const client = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'], keyId });
    const state: PrincipalState = { kind: 'client', id: client.clientId, status, revokedAt: status === 'revoked' ? now : 0, notBefore: 0, changedAt: now, tenantId: 'acme', keyId };
    await writer.putState(state);
    return client;
  };
  const live = await key('active');
  const revoked = await key('revoked');
  const service = await idp.registerClient({ tenantId: 'acme', scopes: ['read:things'] });
  const member = idp.addUser({ email: `m-${randomUUID().slice(0, 8)}@acme.test`, password: 'correct horse battery', tenantId: 'acme', roles: ['tenant:member'] });
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  credentials = [
    { name: 'a user token', headers: bearer(await idp.issueUserToken({ userId: member.userId })), expected: 'allow' },
    { name: 'a service token', headers: bearer(await keyHolderToken(idp, service)), expected: 'allow' },
    { name: "a live key's own token", headers: bearer(await keyHolderToken(idp, live)), expected: 'allow' },
    { name: 'a live key in X-Api-Key', headers: { 'X-Api-Key': formatApiKey('lk', live) }, expected: 'allow' },
    { name: 'a live key as Bearer lk_…', headers: bearer(formatApiKey('lk', live)), expected: 'allow' },
    { name: 'a live key as Basic client id and secret', headers: { Authorization: `Basic ${Buffer.from(`${encodeURIComponent(live.clientId)}:${encodeURIComponent(live.clientSecret)}`).toString('base64')}` }, expected: 'allow' },
    { name: "a revoked key's own token", headers: bearer(await keyHolderToken(idp, revoked)), expected: 'unauthorized' },
  ];
});
afterAll(async () => {
  await Promise.all([dynamo?.stop(), jwks?.stop()]);
  await idp?.stop();
});
afterEach(() => {
  dynamo.pass();
  jwks.pass();
  reasons.length = 0;
});

/** A new Lambda container as `handler.ts` builds it, DynamoDB and the JWKS through the proxies. */
function container(clock: ManualClock) {
  const jwksUri = new URL(idp.jwksUri);
  jwksUri.port = String(jwks.port);
  const config = loadAuthorizerConfig(localAuthorizerEnv(idp, table, { AWS_ENDPOINT_URL_DYNAMODB: dynamo.url, JWKS_URI: jwksUri.href }));
  const state = config.state!;
  const verifier = new JwtVerifier({ config: config.jwt, clock, fetch: nodeHttpClient });
  const light = localLightDynamoDb(state.table, state);
  const { feed, reads } = countingFeed(new DynamoDbStateFeed(light));
  const snapshot = new PrincipalStateSnapshot({ feed, clock, log, maxAgeMs: state.maxAgeMs, retryAfterS: config.apiKey.defaultRetryAfterS, singleFlightMs: config.decisionBudgetMs });
  const exchange = new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { fetch: nodeHttpClient }),
    shared: new DynamoDbTokenCache({ tableName: table, client: createDocumentClient({ endpoint: dynamo.url }) }),
    keys: (clientId) => snapshot.knownKey(clientId),
    log,
    singleFlightMs: config.decisionBudgetMs,
  });
  const handler = createAuthorizerHandler({
    authenticator: new Authenticator({ verifier, state: snapshot, keyPrefix: 'lk', apiKeys: () => Promise.resolve(exchange) }),
    log,
    decisionBudgetMs: config.decisionBudgetMs,
  });
  return { handler, reads, boundMs: state.maxAgeMs };
}
type Handler = ReturnType<typeof container>['handler'];

const retryAfters: number[] = [];

function decide(handler: Handler, headers: Record<string, string>): Promise<Outcome> {
  return outcomeOf(handler(restEvent(headers)), retryAfters);
}

/**
 * Every credential at once while the fault holds. Each answers 503 with Retry-After, or is
 * decided as it must be when its path does not need the hung dependency (a new container whose
 * first sync fails decides on point reads; a key's token cached in the table was verified
 * before it was stored, so the key needs no JWKS): never 401 for a valid credential, never
 * Allow for a revoked one, never a hang. Those named by `mustWait` need the hung dependency:
 * 503 only.
 */
async function expectNeverWrong(handler: Handler, mustWait: (c: Credential) => boolean) {
  retryAfters.length = 0;
  const outcomes = await Promise.all(credentials.map((c) => decide(handler, c.headers)));
  const got = Object.fromEntries(credentials.map((c, i) => [c.name, outcomes[i]]));
  const allowed = Object.fromEntries(credentials.map((c, i) => [c.name, mustWait(c) ? 'unavailable' : outcomes[i] === 'unavailable' ? 'unavailable' : c.expected]));
  expect(got).toEqual(allowed);
  expect(retryAfters.length).toBe(outcomes.filter((o) => o === 'unavailable').length);
  expect(retryAfters.every((s) => s > 0)).toBe(true);
  return outcomes;
}
const all = () => true;
/** Bearer tokens (not `Bearer lk_…`, an API key): verified against the key set on every decision of a new container. */
const bearerOnly = (c: Credential) => c.headers.Authorization?.startsWith('Bearer ') === true && !c.headers.Authorization.startsWith('Bearer lk_');

/** Once healed, each credential is decided as it must be (at most a few 503 first, on a loaded machine). */
async function expectDecidedCorrectly(handler: Handler) {
  for (const c of credentials) {
    const o = await untilDone(() => decide(handler, c.headers), (x) => x !== 'unavailable');
    expect({ [c.name]: o.at(-1) }).toEqual({ [c.name]: c.expected });
  }
}

describe('the state sync (Query) hung', () => {
  it('a new container whose first sync is one page: no credential form is answered 401 or Allow wrongly, nor hangs; healed, each is decided correctly', async () => {
    const clock = new ManualClock(Date.now());
    const c = container(clock);
    dynamo.hang(SYNC);
    // The first sync fails (its timeout, or the budget); decisions still waiting then turn to point reads.
    await expectNeverWrong(c.handler, () => false);
    expect(dynamo.matched).toBeGreaterThanOrEqual(1);
    for (const r of reasons) expect(['ERR_STATE_UNAVAILABLE', 'ERR_DECISION_BUDGET']).toContain(r);
    dynamo.pass();
    await expectDecidedCorrectly(c.handler);
  });

  it('a warm container whose copy is past the bound: every credential form answers 503, never on the stale copy; healed, each is decided correctly', async () => {
    const clock = new ManualClock(Date.now());
    const c = container(clock);
    await expectDecidedCorrectly(c.handler);
    const syncs = c.reads.syncs;
    dynamo.hang(SYNC);
    clock.advance(c.boundMs);
    await expectNeverWrong(c.handler, all);
    expect(c.reads.syncs).toBeGreaterThan(syncs);
    expect(c.reads.pointReads).toBe(0);
    for (const r of reasons) expect(['ERR_STATE_UNAVAILABLE', 'ERR_DECISION_BUDGET']).toContain(r);
    dynamo.pass();
    await expectDecidedCorrectly(c.handler);
  });
});

describe('the JWKS hung', () => {
  it('a new container: every bearer form answers 503 (the key by its cached token at most), none 401 or a hang; healed, each is decided correctly', async () => {
    const clock = new ManualClock(Date.now());
    const c = container(clock);
    jwks.hang();
    await expectNeverWrong(c.handler, bearerOnly);
    expect(jwks.connections).toBeGreaterThanOrEqual(1);
    jwks.pass();
    // A failed key-set fetch holds the next one back (5 s, on the clock): step past it.
    clock.advance(10_000);
    await expectDecidedCorrectly(c.handler);
  });
});
