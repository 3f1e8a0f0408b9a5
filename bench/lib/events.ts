/** API Gateway REST `REQUEST` authorizer events and answer checks. */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

export const METHOD_ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/GET/tenants/acme';

export function restEvent(headers: Record<string, string>): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/tenants/{tenantId}',
    path: '/tenants/acme',
    httpMethod: 'GET',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    pathParameters: { tenantId: 'acme' },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

export const bearerEvent = (token: string) => restEvent({ Authorization: `Bearer ${token}` });
export const basicEvent = (clientId: string, clientSecret: string) =>
  restEvent({ Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` });

/** Throws unless the answer is an Allow policy (so a timed path that fails is noticed). */
export function assertAllow(result: unknown): void {
  const r = result as APIGatewayAuthorizerResult | undefined;
  if (r?.policyDocument?.Statement?.[0]?.Effect !== 'Allow') throw new Error('expected an Allow policy');
}
