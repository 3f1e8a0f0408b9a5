/**
 * What the API answers without credentials, on the methods the stack routes here without the
 * authorizer: the CORS preflight (`OPTIONS`), 405 for a method a route does not have (API
 * Gateway alone would say 403 "Missing Authentication Token"), and `GET /openapi.json`.
 * The routes and their methods are read from the OpenAPI document, the one the stack is
 * tested against.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { corsHeaders, preflightHeaders } from '../../packages/cdk/src/contract/cors.js';
import { canonicalMethods, methodNotAllowed, notFound, type HttpProblem } from './problem.js';

export const OPENAPI_PATH = '/openapi.json';

export interface PublicHandlerOptions {
  /** The OpenAPI document; its `paths` are the API's resources and methods. */
  document: { paths: Record<string, Record<string, unknown>> };
  allowedOrigins: readonly string[];
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Each resource's methods, upper-case, from the document's paths. */
export function methodsByResource(document: PublicHandlerOptions['document']): Map<string, string[]> {
  return new Map(Object.entries(document.paths).map(([path, item]) => [path, canonicalMethods(Object.keys(item).filter((k) => HTTP_METHODS.includes(k)).map((m) => m.toUpperCase()))]));
}

export function createPublicHandler(o: PublicHandlerOptions) {
  const methods = methodsByResource(o.document);
  const body = JSON.stringify(o.document);

  const problem = (p: HttpProblem, event: APIGatewayProxyEvent): APIGatewayProxyResult => ({
    statusCode: p.status,
    headers: { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...p.headers, ...corsHeaders(o.allowedOrigins, event.headers) },
    body: JSON.stringify(p.body(event.requestContext?.requestId)),
  });

  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const allow = methods.get(event.resource);
    if (!allow) return problem(notFound(event.resource), event);
    const withOptions = canonicalMethods([...allow, 'OPTIONS']);
    if (event.httpMethod === 'OPTIONS') {
      // A browser's preflight: for an origin not allowed, no CORS headers, and the browser stops.
      return { statusCode: 204, headers: { Allow: withOptions.join(', '), Vary: 'Origin', ...preflightHeaders(o.allowedOrigins, event.headers, allow) }, body: '' };
    }
    if (event.resource === OPENAPI_PATH && event.httpMethod === 'GET') {
      return {
        statusCode: 200,
        headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300', ...corsHeaders(o.allowedOrigins, event.headers) },
        body,
      };
    }
    return problem(methodNotAllowed(withOptions), event);
  };
}
