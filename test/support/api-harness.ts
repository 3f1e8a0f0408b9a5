/**
 * Plays API Gateway in-process for handler tests: runs the real authorizer on a REST REQUEST
 * event, then (if allowed) the route's handler with a proxy event whose
 * `requestContext.authorizer` holds exactly what the authorizer returned, as strings.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AuthorizerEvent, AuthorizerResult } from '../../functions/authorizer/create-handler.js';
import { matchTemplate } from '../../infra/local/rest-gateway.js';

type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

export interface HarnessResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export interface Harness {
  call(method: string, path: string, opts?: { headers?: Record<string, string>; body?: unknown; query?: Record<string, string> }): Promise<HarnessResponse>;
}

function matchResource(resources: string[], path: string): { resource: string; params: Record<string, string> } | undefined {
  for (const resource of resources) {
    const match = matchTemplate(resource, path);
    if (match) return { resource, params: match.params };
  }
  return undefined;
}

export const lambdaContext = (name: string): Context =>
  ({
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${name}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

export function createHarness(opts: {
  authorizer: (event: AuthorizerEvent) => Promise<AuthorizerResult>;
  /** resource template → handler */
  routes: { resources: string[]; handler: ProxyHandler; name: string }[];
}): Harness {
  return {
    async call(method, path, { headers = {}, body, query } = {}) {
      const target = opts.routes.map((r) => ({ r, m: matchResource(r.resources, path) })).find((x) => x.m);
      if (!target?.m) return { status: 404, headers: {}, body: undefined };
      const { resource, params } = target.m;
      const allHeaders = { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers };
      const multiValueHeaders = Object.fromEntries(Object.entries(allHeaders).map(([k, v]) => [k, [v]]));
      const methodArn = `arn:aws:execute-api:eu-west-1:123456789012:api1/v1/${method}${path}`;
      let auth: APIGatewayAuthorizerResult;
      try {
        auth = (await opts.authorizer({
          type: 'REQUEST',
          methodArn,
          resource,
          path,
          httpMethod: method,
          headers: allHeaders,
          multiValueHeaders,
          pathParameters: params,
          queryStringParameters: query ?? null,
          multiValueQueryStringParameters: null,
          stageVariables: null,
          requestContext: {} as never,
        })) as APIGatewayAuthorizerResult;
      } catch (err) {
        if ((err as Error).message === 'Unauthorized') return { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="latchkey"' }, body: undefined };
        return { status: 503, headers: { 'Retry-After': '5' }, body: undefined };
      }
      const allowed = auth.policyDocument.Statement.some((s) => 'Effect' in s && s.Effect === 'Allow');
      if (!allowed) return { status: 403, headers: {}, body: undefined };
      const authorizer = { principalId: auth.principalId, integrationLatency: 1, ...Object.fromEntries(Object.entries(auth.context ?? {}).map(([k, v]) => [k, String(v)])) };
      const event = {
        resource,
        path,
        httpMethod: method,
        headers: allHeaders,
        multiValueHeaders,
        queryStringParameters: query ?? null,
        multiValueQueryStringParameters: null,
        pathParameters: Object.keys(params).length > 0 ? params : null,
        stageVariables: null,
        body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
        isBase64Encoded: false,
        requestContext: {
          requestId: randomUUID(),
          authorizer,
          resourcePath: resource,
          httpMethod: method,
          path: `/v1${path}`,
          stage: 'v1',
          identity: { sourceIp: '198.51.100.7', userAgent: (allHeaders as Record<string, string>)['User-Agent'] ?? null },
        },
      } as unknown as APIGatewayProxyEvent;
      const res = await target.r.handler(event, lambdaContext(target.r.name));
      const text = res.body ?? '';
      return {
        status: res.statusCode,
        headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k, String(v)])),
        body: text === '' ? undefined : (JSON.parse(text) as unknown),
      };
    },
  };
}
