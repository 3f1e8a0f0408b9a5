/** API Gateway REST `REQUEST` authorizer events and answer checks. */
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent } from 'aws-lambda';

export { METHOD_ARN, restEvent } from '../../test/support/events.js';
import { restEvent } from '../../test/support/events.js';

export const bearerEvent = (token: string) => restEvent({ Authorization: `Bearer ${token}` });
export const basicEvent = (clientId: string, clientSecret: string) =>
  restEvent({ Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` });

/** Throws unless the answer is an Allow policy (so a timed path that fails is noticed). */
export function assertAllow(result: unknown): void {
  const r = result as APIGatewayAuthorizerResult | undefined;
  if (r?.policyDocument?.Statement?.[0]?.Effect !== 'Allow') throw new Error('expected an Allow policy');
}

/** A REST proxy event as a management function receives it after the authorizer allowed it. */
export function managementEvent(method: string, resource: string, context: Record<string, string>, body?: unknown): APIGatewayProxyEvent {
  const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' };
  return {
    resource,
    path: resource,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { requestId: 'bench', resourcePath: resource, httpMethod: method, stage: 'v1', authorizer: { principalId: context.userId || context.clientId, ...context } },
  } as unknown as APIGatewayProxyEvent;
}
