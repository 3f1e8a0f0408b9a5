/**
 * API Gateway's own answers (401 before the function runs, 503 when the authorizer fails, …)
 * as RFC 9457 problem details with the same `type` URIs the management handlers use, so a
 * client parses one error shape whoever produced it.
 */
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import { CORS_EXPOSE_HEADERS, parseOrigins } from './contract/cors.js';
import { PROBLEM_BASE } from './contract/problem-types.js';

/** `WWW-Authenticate` for a missing or invalid credential: both schemes Latchkey accepts. */
export const UNAUTHORIZED_CHALLENGE = 'Bearer realm="latchkey", error="invalid_token", Basic realm="latchkey", charset="UTF-8"';
/** Seconds a client should wait after the authorizer could not reach a dependency. */
export const AUTHORIZER_RETRY_AFTER_S = 5;

/** A header value in gateway-response syntax: a single-quoted static string. */
const header = (value: string): string => {
  if (value.includes("'")) throw new Error(`gateway response header values cannot contain a single quote: ${value}`);
  return `'${value}'`;
};

const JSON_TEMPLATE_TYPE = 'application/json';

interface ProblemTemplate {
  type: string;
  title: string;
  status?: number;
  /** A JSON string literal, or a VTL expression that renders one (`$context.error.messageString`). */
  detailJson: string;
}

/** VTL mapping template of a problem body; `$context.requestId` ties it to the access log. */
function problemTemplate(p: ProblemTemplate): string {
  const status = p.status === undefined ? '' : `"status":${p.status},`;
  return `{"type":"${p.type}","title":"${p.title}",${status}"detail":${p.detailJson},"instance":"$context.requestId"}`;
}

interface ResponseSpec {
  id: string;
  type: apigateway.ResponseType;
  statusCode?: string;
  headers?: Record<string, string>;
  problem: ProblemTemplate;
}

const PROBLEM_HEADERS = { 'Content-Type': 'application/problem+json' };

function unavailable(id: string, type: apigateway.ResponseType): ResponseSpec {
  return {
    id,
    type,
    statusCode: '503',
    headers: { 'Retry-After': String(AUTHORIZER_RETRY_AFTER_S) },
    problem: {
      type: `${PROBLEM_BASE}unavailable`,
      title: 'Service unavailable',
      status: 503,
      detailJson: '"Credentials could not be verified right now; retry later."',
    },
  };
}

function badRequest(id: string, type: apigateway.ResponseType): ResponseSpec {
  return {
    id,
    type,
    statusCode: '400',
    problem: { type: `${PROBLEM_BASE}validation-error`, title: 'Your request is not valid', status: 400, detailJson: '$context.error.messageString' },
  };
}

function tooMany(id: string, type: apigateway.ResponseType, retryAfterS: number, detail: string): ResponseSpec {
  return {
    id,
    type,
    statusCode: '429',
    headers: { 'Retry-After': String(retryAfterS) },
    problem: { type: `${PROBLEM_BASE}too-many-requests`, title: 'Too many requests', status: 429, detailJson: JSON.stringify(detail) },
  };
}

const RESPONSES: ResponseSpec[] = [
  {
    id: 'Unauthorized',
    type: apigateway.ResponseType.UNAUTHORIZED,
    statusCode: '401',
    headers: { 'WWW-Authenticate': UNAUTHORIZED_CHALLENGE },
    problem: { type: `${PROBLEM_BASE}unauthorized`, title: 'Unauthorized', status: 401, detailJson: '"Missing or invalid credentials."' },
  },
  // The authorizer denies only the valid credentials of a disabled or deleted tenant
  // (functions/core/principal-state.ts); every other refusal is a 401 or a handler's 403.
  {
    id: 'AccessDenied',
    type: apigateway.ResponseType.ACCESS_DENIED,
    statusCode: '403',
    problem: { type: `${PROBLEM_BASE}tenant-disabled`, title: 'Tenant disabled', status: 403, detailJson: '"The tenant of these credentials is disabled."' },
  },
  // A timeout or an error other than `Unauthorized` in the authorizer: a dependency (JWKS,
  // token endpoint, DynamoDB) is down. 503 + Retry-After tells clients to retry, not to re-login.
  unavailable('AuthorizerFailure', apigateway.ResponseType.AUTHORIZER_FAILURE),
  unavailable('AuthorizerConfigurationError', apigateway.ResponseType.AUTHORIZER_CONFIGURATION_ERROR),
  badRequest('BadRequestBody', apigateway.ResponseType.BAD_REQUEST_BODY),
  badRequest('BadRequestParameters', apigateway.ResponseType.BAD_REQUEST_PARAMETERS),
  // On REST APIs "Missing Authentication Token" means no such resource or method: a 404. Wrong
  // methods on known resources never get here: the stack routes them to a function answering 405.
  {
    id: 'MissingAuthenticationToken',
    type: apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '404',
    problem: { type: `${PROBLEM_BASE}not-found`, title: 'Not found', status: 404, detailJson: '"There is no such route."' },
  },
  {
    id: 'ResourceNotFound',
    type: apigateway.ResponseType.RESOURCE_NOT_FOUND,
    statusCode: '404',
    problem: { type: `${PROBLEM_BASE}not-found`, title: 'Not found', status: 404, detailJson: '"There is no such route."' },
  },
  {
    id: 'RequestTooLarge',
    type: apigateway.ResponseType.REQUEST_TOO_LARGE,
    statusCode: '413',
    problem: { type: `${PROBLEM_BASE}payload-too-large`, title: 'Payload too large', status: 413, detailJson: '"The body is over API Gateway\'s limit."' },
  },
  // Over the rate of the tenant's usage plan (or of the stage or account): a second is enough.
  tooMany('Throttled', apigateway.ResponseType.THROTTLED, 1, 'Slow down and retry after Retry-After seconds.'),
  // Over the quota of the tenant's usage plan: it resets at the start of the next period (UTC),
  // which a gateway response cannot compute, so clients are told to look again in an hour.
  tooMany('QuotaExceeded', apigateway.ResponseType.QUOTA_EXCEEDED, 3600, "Your tenant's usage-plan quota for this period is used up; it resets at the start of the next period (UTC)."),
  // A method that needs a usage key, for a caller whose tenant has none in a plan of the stage
  // (a tenant created outside the management API, or one whose plan change is under way).
  {
    id: 'InvalidApiKey',
    type: apigateway.ResponseType.INVALID_API_KEY,
    statusCode: '403',
    problem: { type: `${PROBLEM_BASE}forbidden`, title: 'Forbidden', status: 403, detailJson: '"No usage plan admits the tenant of these credentials."' },
  },
  // The defaults keep API Gateway's status code, which a template cannot read; `status` is
  // optional in RFC 9457 and the HTTP status line carries it.
  {
    id: 'Default4XX',
    type: apigateway.ResponseType.DEFAULT_4XX,
    problem: { type: `${PROBLEM_BASE}client-error`, title: 'Client error', detailJson: '$context.error.messageString' },
  },
  {
    id: 'Default5XX',
    type: apigateway.ResponseType.DEFAULT_5XX,
    problem: { type: `${PROBLEM_BASE}internal`, title: 'Internal error', detailJson: '$context.error.messageString' },
  },
];

export interface GatewayResponsesOptions {
  /**
   * Browser origins whose scripts may read these answers. One origin is named as it is; with
   * several, API Gateway cannot choose among them in a gateway response, so the caller's
   * `Origin` is echoed: these bodies are fixed error texts and no cookies are involved, so
   * nothing is disclosed that a non-browser client could not read. The management answers
   * and the preflight name only configured origins.
   * @default - no CORS headers
   */
  readonly allowedOrigins?: readonly string[];
}

/** The CORS headers of every gateway response, as gateway-response parameter values. */
export function gatewayCorsParameters(allowedOrigins: readonly string[]): Record<string, string> {
  const origins = parseOrigins(allowedOrigins, 'allowedOrigins');
  if (origins.length === 0) return {};
  return {
    'Access-Control-Allow-Origin': origins.length === 1 ? header(origins[0]!) : 'method.request.header.Origin',
    'Access-Control-Expose-Headers': header(CORS_EXPOSE_HEADERS.join(', ')),
    Vary: header('Origin'),
  };
}

/** Adds Latchkey's problem+json gateway responses to a REST API (as children of the API). */
export function addProblemGatewayResponses(api: apigateway.IRestApi, options: GatewayResponsesOptions = {}): apigateway.GatewayResponse[] {
  const cors = gatewayCorsParameters(options.allowedOrigins ?? []);
  return RESPONSES.map(
    (r) =>
      new apigateway.GatewayResponse(api, `LatchkeyResponse${r.id}`, {
        restApi: api,
        type: r.type,
        statusCode: r.statusCode,
        responseHeaders: { ...Object.fromEntries(Object.entries({ ...PROBLEM_HEADERS, ...r.headers }).map(([k, v]) => [k, header(v)])), ...cors },
        templates: { [JSON_TEMPLATE_TYPE]: problemTemplate(r.problem) },
      }),
  );
}
