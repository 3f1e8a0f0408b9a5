/**
 * The point read of principal state under network faults, through the real authorizer handler.
 * The token-cache table holds more state than one page of the feed, so a new container's first
 * sync spans pages and its first decisions read the caller's states with one strongly
 * consistent BatchGetItem (`statesOf`). DynamoDB Local sits behind the fault proxy, which lets
 * the sync's Query pages through and faults only that BatchGetItem: it hangs, is reset, or is
 * delayed past the decision budget. Every decision then answers 503 with Retry-After (never
 * 401, never Allow on state it could not read) and does not hang; once the proxy heals, the
 * same credentials are decided correctly, in that container and in a new one. Outcomes are
 * asserted; wall-clock bounds are only generous hang detectors.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbStateFeed } from '../../functions/adapters/dynamodb-state-feed.js';
import { DynamoDbTokenCache } from '../../functions/adapters/dynamodb-token-cache.js';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { createAuthorizerHandler } from '../../functions/authorizer/create-handler.js';
import { Authenticator } from '../../functions/core/authenticate.js';
import { systemClock } from '../../functions/core/clock.js';
import { DECISION_BUDGET_MS, loadAuthorizerConfig } from '../../functions/core/config.js';
import { JwtVerifier } from '../../functions/core/jwt-verifier.js';
import { PrincipalStateSnapshot, type PrincipalState, type PrincipalStateFeed } from '../../functions/core/principal-state.js';
import { startLocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { countingFeed } from '../support/counting.js';
import { restEvent } from '../support/events.js';
import { reasonLog } from '../support/reasons.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { outcomeOf, tally, type Outcome } from '../support/outcomes.js';
import { pastMs, untilDone } from '../support/hang.js';
import { keyHolderToken, localAuthorizerEnv } from '../support/servers.js';
import { addBulkStates, createTokenCacheTable, localLightDynamoDb } from '../support/tables.js';

type Idp = Awaited<ReturnType<typeof startLocalIdentityProvider>>;
const BUDGET_MS = DECISION_BUDGET_MS.default;
/** The point read and nothing else: the feed's sync is a Query. */
const POINT_READ = { match: 'DynamoDB_20120810.BatchGetItem' };

let idp: Idp;
let table: string;
let dynamo: FaultProxy;
/** Why decisions answered 503 or failed (the handler's `unavailable` and `authorizer failure` lines). */
const { log, reasons } = reasonLog();


/** A credential and how it must be decided once the state can be read. */
interface Credential {
  name: string;
  token: string;
  expected: Outcome;
}
let credentials: Credential[];

beforeAll(async () => {
  idp = await startLocalIdentityProvider({ port: 0, apiScopes: ['read:things'] });
  table = await createTokenCacheTable();
  dynamo = await startFaultProxy({ port: Number(new URL(inject('dynamoDbEndpoint')).port) });
  await addBulkStates(table);
  // States as the management API writes them (straight to DynamoDB Local, not through the proxy).
  const writer = new DynamoDbTokenCache({ tableName: table });
  const now = Date.now();
  const key = async (tenantId: string, status: 'active' | 'revoked') => {
    const keyId = randomUUID();
    const client = await idp.registerClient({ tenantId, scopes: ['read:things'], keyId });
    const state: PrincipalState = { kind: 'client', id: client.clientId, status, revokedAt: status === 'revoked' ? now : 0, notBefore: 0, changedAt: now, tenantId, keyId };
    await writer.putState(state);
    return keyHolderToken(idp, client);
  };
  await writer.putState({ kind: 'tenant', id: 'frozen', status: 'disabled', revokedAt: 0, notBefore: 0, changedAt: now });
  const member = idp.addUser({ email: `m-${randomUUID().slice(0, 8)}@acme.test`, password: 'correct horse battery', tenantId: 'acme', roles: ['tenant:member'] });
  credentials = [
    { name: "a live key's own token", token: await key('acme', 'active'), expected: 'allow' },
    { name: "a revoked key's own token", token: await key('acme', 'revoked'), expected: 'unauthorized' },
    { name: 'a user token', token: await idp.issueUserToken({ userId: member.userId }), expected: 'allow' },
    { name: "a key's own token, its tenant disabled", token: await key('frozen', 'active'), expected: 'deny' },
  ];
});
afterAll(async () => {
  await dynamo?.stop();
  await idp?.stop();
});
afterEach(() => {
  dynamo.pass();
  reasons.length = 0;
});

/**
 * A new Lambda container, as `functions/authorizer/handler.ts` builds it: the state feed over
 * the small DynamoDB client, through the proxy. Its verifier has seen every test token (the key
 * set is not what is tested), so its decisions reach the state check at once; its first sync
 * starts with its first decision. `onFirstPage` times a fault to the middle of that sync.
 */
async function container(env: Record<string, string> = {}, opts: { onFirstPage?: () => void } = {}) {
  const config = loadAuthorizerConfig(localAuthorizerEnv(idp, table, { AWS_ENDPOINT_URL_DYNAMODB: dynamo.url, ...env }));
  const state = config.state!;
  const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: nodeHttpClient });
  for (const c of credentials) await verifier.verify(c.token);
  const light = localLightDynamoDb(state.table, state);
  const inner = new DynamoDbStateFeed(light);
  let onFirstPage = opts.onFirstPage;
  // Called once, when the first page of the first sync has arrived and before anything else is sent.
  const timed: PrincipalStateFeed = {
    changesSince: (since, onMorePages) =>
      inner.changesSince(since, () => {
        onFirstPage?.();
        onFirstPage = undefined;
        onMorePages?.();
      }),
    statesOf: (keys) => inner.statesOf(keys),
  };
  const { feed, reads } = countingFeed(opts.onFirstPage ? timed : inner);
  const snapshot = new PrincipalStateSnapshot({ feed, clock: systemClock, log, maxAgeMs: state.maxAgeMs, retryAfterS: config.apiKey.defaultRetryAfterS, singleFlightMs: config.decisionBudgetMs });
  const handler = createAuthorizerHandler({ authenticator: new Authenticator({ verifier, state: snapshot, keyPrefix: 'lk' }), log, decisionBudgetMs: config.decisionBudgetMs });
  return { handler, reads, snapshot };
}
type Handler = Awaited<ReturnType<typeof container>>['handler'];

/** Retry-After of every 503 answered. */
const retryAfters: number[] = [];

function decide(handler: Handler, token: string): Promise<Outcome> {
  return outcomeOf(handler(restEvent({ Authorization: `Bearer ${token}` })), retryAfters);
}

/**
 * Decides each credential until it is no longer 503 (at most three times: on a loaded machine
 * the first decision after the heal may still run out of budget) and returns the outcomes.
 */
async function decidedOnceHealed(handler: Handler): Promise<Record<string, Outcome[]>> {
  const out: Record<string, Outcome[]> = {};
  for (const c of credentials) out[c.name] = await untilDone(() => decide(handler, c.token), (o) => o !== 'unavailable');
  return out;
}

function expectDecidedCorrectly(outcomes: Record<string, Outcome[]>) {
  for (const c of credentials) {
    const o = outcomes[c.name]!;
    expect({ [c.name]: o.at(-1) }).toEqual({ [c.name]: c.expected });
    expect(o.slice(0, -1).filter((x) => x !== 'unavailable')).toEqual([]);
  }
}


interface Fault {
  name: string;
  set: () => void;
  env: Record<string, string>;
}

const FAULTS: Fault[] = [
  // The state read's own timeout (STATE_TIMEOUT_MS, 1 s) is shorter than the budget: it usually
  // ends the read first, but on a loaded machine the budget may, so either reason will do.
  { name: 'hangs (the state timeout shorter than the budget)', set: () => dynamo.hang(POINT_READ), env: {} },
  // A state timeout set longer than the budget is taken as the budget (config.ts): the read's
  // abort and the budget end together, so either reason will do here too.
  { name: 'hangs (a state timeout set longer than the budget)', set: () => dynamo.hang(POINT_READ), env: { STATE_TIMEOUT_MS: '10000' } },
  { name: 'is reset', set: () => dynamo.reset(POINT_READ), env: {} },
  // Each way is held this long: the answer cannot come before the budget's end (nor the read's timeout, the budget too).
  { name: 'is delayed past the decision budget', set: () => dynamo.delay(BUDGET_MS + 1000, POINT_READ), env: { STATE_TIMEOUT_MS: '10000' } },
];

describe('the point read of a container whose first sync spans pages', () => {
  it.each(FAULTS)('$name: every decision answers 503 with Retry-After, none hangs; once healed, each credential is decided correctly', async (fault) => {
    const c = await container(fault.env);
    fault.set();
    retryAfters.length = 0;
    const perCredential = 3;
    const outcomes = await Promise.all(credentials.flatMap((cred) => Array.from({ length: perCredential }, () => decide(c.handler, cred.token))));
    expect(tally(outcomes)).toEqual({ unavailable: credentials.length * perCredential });
    expect(retryAfters.every((s) => s > 0)).toBe(true);
    // The decisions were made on point reads, and those met the fault (the sync's pages did not).
    expect(c.reads.pointReads).toBeGreaterThanOrEqual(1);
    expect(dynamo.matched).toBeGreaterThanOrEqual(1);
    for (const r of reasons) expect(['ERR_STATE_UNAVAILABLE', 'ERR_DECISION_BUDGET']).toContain(r);

    dynamo.pass();
    // The same container decides by whatever it has by now (its first sync, or new point reads)…
    expectDecidedCorrectly(await decidedOnceHealed(c.handler));
    // …and a new one, whose first decisions are point reads through the healed proxy.
    const fresh = await container(fault.env);
    expectDecidedCorrectly(await decidedOnceHealed(fresh.handler));
    expect(fresh.reads.pointReads).toBeGreaterThanOrEqual(1);
  });
});

describe('a point read stuck since before the heal', () => {
  it('is not joined past the decision budget: once DynamoDB answers again, the next decisions read afresh', async () => {
    // DynamoDB hangs as soon as the first page of the sync has arrived: the rest of the sync
    // and every point read are stuck for the state timeout (asked for ten times the budget, and
    // held to the budget by the configuration).
    const budgetMs = 1000;
    const c = await container({ DECISION_BUDGET_MS: String(budgetMs), STATE_TIMEOUT_MS: '10000' }, { onFirstPage: () => dynamo.hang() });
    const outcomes = await Promise.all(credentials.map((cred) => decide(c.handler, cred.token)));
    expect(tally(outcomes)).toEqual({ unavailable: credentials.length });
    for (const r of reasons) expect(['ERR_STATE_UNAVAILABLE', 'ERR_DECISION_BUDGET']).toContain(r);
    const stuck = c.reads.pointReads;
    expect(stuck).toBeGreaterThanOrEqual(1);
    dynamo.pass();
    // The stuck reads are now older than the budget (they started before the decisions answered).
    await pastMs(Date.now(), budgetMs);
    expectDecidedCorrectly(await decidedOnceHealed(c.handler));
    // Decided on new point reads, not on reads (or a sync) stuck since before the heal.
    expect(c.reads.pointReads).toBeGreaterThan(stuck);
  });
});
