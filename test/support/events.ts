/** Genuine API Gateway event shapes for authorizer tests. */
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

export const METHOD_ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/GET/tenants/acme';

/** A REST API REQUEST authorizer event for GET /tenants/acme with these headers. */
export function restEvent(headers: Record<string, string>): APIGatewayRequestAuthorizerEvent {
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/tenants/{tenantId}',
    path: '/tenants/acme',
    httpMethod: 'GET',
    headers,
    multiValueHeaders,
    pathParameters: { tenantId: 'acme' },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

