/**
 * Lambda entry point: builds the real dependencies once per container, so warm invocations
 * reuse the key set, the verified-token cache and the API-key caches. The API-key path (and
 * with it the AWS SDK) is loaded on the first API-key request, so the JWT path's cold start
 * never pays for it.
 */
import { consoleLog } from '../adapters/console-log.js';
import { nodeHttpClient } from '../adapters/node-http-client.js';
import type { AuditLog } from '../core/audit.js';
import { Authenticator } from '../core/authenticate.js';
import { systemClock } from '../core/clock.js';
import { loadAuthorizerConfig } from '../core/config.js';
import { JwtVerifier } from '../core/jwt-verifier.js';
import { PrincipalStateSnapshot } from '../core/principal-state.js';
import { UsageKeyDeriver } from '../core/usage-plans.js';
import { UsageCounter } from '../core/usage-counter.js';
import { DynamoDbUsageSink } from '../adapters/dynamodb-usage.js';
import { SecurityEventAggregator } from '../core/security-events.js';
import { credentialsFromEnv } from '../adapters/dynamodb-light.js';
import { DynamoDbStateFeed } from '../adapters/dynamodb-state-feed.js';
import { createAuthorizerHandler } from './create-handler.js';
import type * as Lazy from './lazy.js';

const config = loadAuthorizerConfig(process.env);
const log = consoleLog({ service: process.env.POWERTOOLS_SERVICE_NAME ?? 'latchkey-authorizer', env: process.env, clock: systemClock });
const verifier = new JwtVerifier({ config: config.jwt, clock: systemClock, fetch: nodeHttpClient });
verifier.jwks.prefetch();
/** The small DynamoDB client's settings (no AWS SDK on the JWT path): the state feed and the usage counts. */
const light = config.state ? { ...config.state, tableName: config.state.table, credentials: credentialsFromEnv(process.env), http: nodeHttpClient } : undefined;
const state = light
  ? new PrincipalStateSnapshot({
      feed: new DynamoDbStateFeed(light),
      clock: systemClock,
      log,
      maxAgeMs: light.maxAgeMs,
      retryAfterS: config.apiKey.defaultRetryAfterS,
      singleFlightMs: config.decisionBudgetMs,
    })
  : undefined;
state?.prefetch();
const usage =
  light && config.usageCounts
    ? new UsageCounter({
        sink: new DynamoDbUsageSink(light),
        clock: systemClock,
        log,
        ...config.usageCounts,
      })
    : undefined;

/** `usageIdentifierKey` of REST decisions: the caller's tenant's API Gateway key value. */
const usageKeys = config.usage ? new UsageKeyDeriver(config.usage.secret, config.usage.platformKey) : undefined;

/** The API-key path and the audit adapter: one chunk, loaded on first use. */
let lazy: Promise<typeof Lazy> | undefined;
const loadLazy = () => (lazy ??= import('./lazy.js'));

async function loadApiKeys() {
  const { ApiKeyExchange, OAuthTokenEndpoint, DynamoDbTokenCache } = await loadLazy();
  const shared = config.apiKey.tokenCacheTable ? new DynamoDbTokenCache({ tableName: config.apiKey.tokenCacheTable }) : undefined;
  return new ApiKeyExchange({
    config: config.apiKey,
    jwtConfig: config.jwt,
    clock: systemClock,
    verifier,
    tokenEndpoint: new OAuthTokenEndpoint(config.apiKey, { fetch: nodeHttpClient }),
    shared,
    keys: state ? (clientId: string) => state.knownKey(clientId) : undefined,
    log,
    singleFlightMs: config.decisionBudgetMs,
  });
}

/** Security events: the audit adapter (and the SDK) are loaded at the first write, never at cold start. */
const auditTable = config.auditTable;
let auditLog: Promise<AuditLog> | undefined;
const security = auditTable
  ? new SecurityEventAggregator({
      clock: systemClock,
      log,
      write: async (events) => {
        auditLog ??= loadLazy().then(({ DynamoDbAuditLog }) => new DynamoDbAuditLog({ tableName: auditTable, clock: systemClock, retentionDays: config.auditRetentionDays }));
        const audit = await auditLog;
        for (const e of events) await audit.append(e);
      },
    })
  : undefined;

export const handler = createAuthorizerHandler({
  authenticator: new Authenticator({ verifier, state, keyPrefix: config.apiKey.keyPrefix, apiKeys: loadApiKeys }),
  log,
  decisionBudgetMs: config.decisionBudgetMs,
  usage,
  usageKey: usageKeys && ((tenantId) => usageKeys.keyFor(tenantId)),
  security: security ? { events: security, keyPrefix: config.apiKey.keyPrefix } : undefined,
});
