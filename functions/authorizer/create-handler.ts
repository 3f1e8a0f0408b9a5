/**
 * The authorizer for REST `REQUEST` events (IAM policy + context) and HTTP API payload 2.0
 * events (simple response). Answers:
 * - valid credentials: Allow for the whole API, with the caller in the context;
 * - missing or invalid credentials (a revoked key, a blocked user): REST `Error('Unauthorized')`
 *   (401), HTTP `isAuthorized: false`;
 * - valid credentials of a disabled tenant: REST Deny for the whole API (403 `tenant-disabled`),
 *   HTTP `isAuthorized: false` (403);
 * - a dependency down, or no decision within the budget: an error that is not `Unauthorized`,
 *   which API Gateway reports as an authorizer failure (mapped to 503 + Retry-After by the gateway responses). Never Deny for
 *   that: Deny results are cached and would lock out a valid caller.
 */
import type {
  APIGatewayAuthorizerResult,
  APIGatewayRequestAuthorizerEvent,
  APIGatewayRequestAuthorizerEventV2,
  APIGatewaySimpleAuthorizerWithContextResult,
} from 'aws-lambda';
import type { Authenticator } from '../core/authenticate.js';
import { DECISION_BUDGET_MS } from '../core/config.js';
import { withDeadline } from '../core/deadline.js';
import { extractCredentials } from '../core/credentials.js';
import { httpAllow, restAllow, restDeny } from '../core/decision.js';
import { CredentialsError, LatchkeyError, UpstreamUnavailableError } from '../core/errors.js';
import type { Log } from '../core/log.js';
import { PrincipalRefusedError, TenantDisabledError } from '../core/principal-state.js';
import { SECURITY_CODES, type SecurityEventAggregator, type SecurityWho } from '../core/security-events.js';
import type { AuthorizerContext, Principal } from '../core/principal.js';

export type AuthorizerEvent = APIGatewayRequestAuthorizerEvent | APIGatewayRequestAuthorizerEventV2;
export type AuthorizerResult = APIGatewayAuthorizerResult | APIGatewaySimpleAuthorizerWithContextResult<AuthorizerContext | Record<string, never>>;

export interface AuthorizerHandlerDeps {
  authenticator: Authenticator;
  log: Log;
  /** Every decision answers within this many ms (503 when a dependency is too slow). */
  decisionBudgetMs?: number;
  /** REST only: the API Gateway usage key of a caller's tenant (`usageIdentifierKey`); absent, none is returned. */
  usageKey?: ((tenantId: string | undefined) => string) | undefined;
  /** Counts allowed requests per tenant, key (or client) and day; see `functions/core/usage-counter.ts`. */
  usage?: { record(tenantId: string | undefined, subject: string | undefined): void } | undefined;
  /** Counts refusals worth a security event; written in the background, never awaited here. */
  security?: { events: SecurityEventAggregator; keyPrefix: string } | undefined;
}

/** Thrown to make API Gateway answer 503 rather than 401. */
export class AuthorizerUnavailableError extends Error {
  constructor(readonly retryAfterS: number) {
    super('Service Unavailable');
    this.name = 'AuthorizerUnavailableError';
  }
}

function isHttpApiEvent(event: AuthorizerEvent): event is APIGatewayRequestAuthorizerEventV2 {
  return (event as APIGatewayRequestAuthorizerEventV2).version === '2.0';
}

/** Whose credential was refused: from the state's answer, else the client id the request named (never its secret). */
function whoOf(err: CredentialsError, event: AuthorizerEvent, keyPrefix: string): SecurityWho {
  if (err instanceof PrincipalRefusedError) return err.who;
  try {
    const creds = extractCredentials({ headers: event.headers as Record<string, string | undefined> | null }, keyPrefix);
    return creds.kind === 'client_credentials' ? { clientId: creds.clientId } : {};
  } catch {
    return {};
  }
}

export function createAuthorizerHandler(deps: AuthorizerHandlerDeps) {
  const { authenticator, log } = deps;
  const budgetMs = deps.decisionBudgetMs ?? DECISION_BUDGET_MS.default;
  const overBudget = () => new UpstreamUnavailableError('ERR_DECISION_BUDGET', `no decision within ${budgetMs} ms`, budgetMs / 1000);
  return async function handler(event: AuthorizerEvent): Promise<AuthorizerResult> {
    const http = isHttpApiEvent(event);
    let principal: Principal;
    try {
      const decision = authenticator.authenticate({
        headers: event.headers as Record<string, string | undefined> | null,
        multiValueHeaders: http ? undefined : (event as APIGatewayRequestAuthorizerEvent).multiValueHeaders,
      });
      principal = await withDeadline(decision, budgetMs, overBudget);
    } catch (err) {
      if (err instanceof CredentialsError) {
        log.info('deny', { reason: err.code, bearerError: err.bearerError ?? null });
        if (deps.security && SECURITY_CODES[err.code]) deps.security.events.record(err.code, whoOf(err, event, deps.security.keyPrefix));
        if (http) return { isAuthorized: false, context: {} };
        throw new Error('Unauthorized');
      }
      if (err instanceof TenantDisabledError) {
        // Valid credentials of a disabled tenant: 403 (the gateway's ACCESS_DENIED response says
        // `tenant-disabled`), not 401, so the caller keeps its key for when the tenant returns.
        log.info('deny', { reason: err.code, tenantId: err.tenantId });
        if (http) return { isAuthorized: false, context: {} };
        return restDeny((event as APIGatewayRequestAuthorizerEvent).methodArn, err.tenantId);
      }
      if (err instanceof UpstreamUnavailableError) {
        log.warn('unavailable', { reason: err.code, retryAfterS: err.retryAfterS });
        throw new AuthorizerUnavailableError(err.retryAfterS);
      }
      log.error('authorizer failure', { reason: err instanceof LatchkeyError ? err.code : 'ERR_INTERNAL', error: String(err) });
      throw new AuthorizerUnavailableError(5);
    }
    deps.usage?.record(principal.tenantId, principal.keyId ?? principal.clientId);
    log.debug('allow', { authMethod: principal.authMethod, tenantId: principal.tenantId ?? null, clientId: principal.clientId ?? null });
    return http ? httpAllow(principal) : restAllow((event as APIGatewayRequestAuthorizerEvent).methodArn, principal, deps.usageKey?.(principal.tenantId));
  };
}
