/**
 * The authorizer's answers. A REST policy always allows the whole API
 * (`arn:…:apiId/stage/*\/*`): API Gateway's result cache reuses a policy for every route the
 * same credentials call, so a policy naming one method would break the others. Per-route
 * rules belong to the handlers, which receive the context.
 */
import type { APIGatewayAuthorizerResult, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { toAuthorizerContext, type AuthorizerContext, type Principal } from './principal.js';

/** `arn:aws:execute-api:region:account:apiId/stage/*\/*` from a method or route ARN. */
export function wholeApiResource(methodArn: string): string {
  const colon = methodArn.lastIndexOf(':');
  const [apiId, stage] = methodArn.slice(colon + 1).split('/');
  if (colon < 0 || !apiId || !stage) throw new Error('unexpected methodArn shape');
  return `${methodArn.slice(0, colon)}:${apiId}/${stage}/*/*`;
}

/**
 * `usageKey`: the API Gateway key value of the caller's tenant (`usageIdentifierKey`, REST only),
 * which makes API Gateway apply that tenant's usage plan; see `functions/core/usage-plans.ts`.
 */
export function restAllow(methodArn: string, principal: Principal, usageKey?: string): APIGatewayAuthorizerResult {
  return {
    principalId: principal.subject,
    ...(usageKey !== undefined ? { usageIdentifierKey: usageKey } : {}),
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: wholeApiResource(methodArn) }],
    },
    context: toAuthorizerContext(principal),
  };
}

export function httpAllow(principal: Principal): APIGatewaySimpleAuthorizerWithContextResult<AuthorizerContext> {
  return { isAuthorized: true, context: toAuthorizerContext(principal) };
}

/**
 * A Deny for the whole API, used only for a disabled tenant: a state that lasts, so API
 * Gateway's caching of Deny results is harmless (never used for a transient failure).
 */
export function restDeny(methodArn: string, tenantId: string): APIGatewayAuthorizerResult {
  return {
    principalId: `tenant:${tenantId}`,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: wholeApiResource(methodArn) }],
    },
    context: { tenantId, reason: 'tenant-disabled' },
  };
}
