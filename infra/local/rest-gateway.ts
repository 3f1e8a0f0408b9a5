/**
 * A local API Gateway for one REST API of a synthesized stack. It behaves as API Gateway does
 * for what the stack uses:
 * - routes are the template's resources and methods, served under `/<stage>`; literal path
 *   parts win over `{parameters}`; an unknown route is MISSING_AUTHENTICATION_TOKEN (403);
 * - a REQUEST authorizer gets a genuine REQUEST event, as AWS documents it: when it lists identity
 *   sources, it is invoked only if every one is present and non-empty (else 401 without calling
 *   the function), cached or not; with none (allowed only uncached) it is invoked on every
 *   request; with a result TTL above 0 results are cached by identity-source values;
 *   `Error('Unauthorized')` is 401, any other failure is AUTHORIZER_FAILURE; the returned
 *   policy is evaluated against the method ARN;
 * - AWS_PROXY integrations get a REST proxy event whose `requestContext.authorizer` holds the
 *   principal id and context; a `WWW-Authenticate` from an integration is renamed
 *   `x-amzn-Remapped-WWW-Authenticate`;
 * - error answers come from the template's gateway responses (falling back to DEFAULT_4XX /
 *   DEFAULT_5XX and then API Gateway's defaults), with their static headers and those mapped
 *   from the request (`method.request.header.Origin`, left out when the request has none);
 * - `DELETE /restapis/{id}/stages/{stage}/cache/authorizers` (FlushStageAuthorizersCache) clears
 *   the authorizer cache, so the SDK can be pointed here with AWS_ENDPOINT_URL_API_GATEWAY;
 * - usage plans (`infra/local/usage-plans.ts`): methods with `apiKeyRequired` are admitted by
 *   the key the authorizer names in `usageIdentifierKey` (or `X-API-Key`), its plan's quota and
 *   throttle; the control-plane calls that create keys and attach them to plans are served too.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthorizerModel, GatewayResponseModel, MethodModel, RestApiModel } from './cloud-assembly.js';
import type { LambdaPool } from './lambda-pool.js';
import { LocalUsagePlans } from './usage-plans.js';

export interface RestGatewayOptions {
  api: RestApiModel;
  /** Local API id used in ARNs and the flush endpoint. */
  apiId: string;
  pools: Map<string, LambdaPool>;
  host?: string;
  port?: number;
  /** One line per request, like the stage's access log. */
  onAccessLog?: (entry: Record<string, unknown>) => void;
  /** Local values of template values (an API key's dynamic reference to a secret). */
  resolveValue?: (v: unknown) => string | undefined;
  /** Clock of usage-plan throttles and quotas (epoch ms). @default Date.now */
  now?: () => number;
}

export interface RestGateway {
  url: string;
  port: number;
  /** The usage plans' keys, associations and counters. */
  usage: LocalUsagePlans;
  close(): Promise<void>;
}

const DEFAULT_STATUS: Record<string, number> = {
  UNAUTHORIZED: 401,
  ACCESS_DENIED: 403,
  MISSING_AUTHENTICATION_TOKEN: 403,
  AUTHORIZER_FAILURE: 500,
  AUTHORIZER_CONFIGURATION_ERROR: 500,
  INTEGRATION_FAILURE: 504,
  INTEGRATION_TIMEOUT: 504,
  REQUEST_TOO_LARGE: 413,
  INVALID_API_KEY: 403,
  THROTTLED: 429,
  QUOTA_EXCEEDED: 429,
};
const DEFAULT_MESSAGE: Record<string, string> = {
  UNAUTHORIZED: 'Unauthorized',
  ACCESS_DENIED: 'User is not authorized to access this resource',
  MISSING_AUTHENTICATION_TOKEN: 'Missing Authentication Token',
  AUTHORIZER_FAILURE: 'Internal server error',
  AUTHORIZER_CONFIGURATION_ERROR: 'Internal server error',
  INTEGRATION_FAILURE: 'Internal server error',
  INTEGRATION_TIMEOUT: 'Endpoint request timed out',
  REQUEST_TOO_LARGE: 'Request Too Long',
  INVALID_API_KEY: 'Forbidden',
  THROTTLED: 'Too Many Requests',
  QUOTA_EXCEEDED: 'Limit Exceeded',
};
const MAX_BODY = 10 * 1024 * 1024;

interface Policy {
  principalId: string;
  usageIdentifierKey: string | undefined;
  context: Record<string, unknown>;
  statements: { effect: string; actions: string[]; resources: string[] }[];
}

interface Request {
  requestId: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  query: Record<string, string> | null;
  multiQuery: Record<string, string[]> | null;
  body: Buffer;
  sourceIp: string;
  startedAt: number;
}

/**
 * Matches a request path against a resource template (`/users/{userId}`): the decoded path
 * parameters and a score (literal parts count double), or undefined.
 */
export function matchTemplate(template: string, path: string): { params: Record<string, string>; score: number } | undefined {
  const parts = path.split('/').filter(Boolean);
  const tpl = template.split('/').filter(Boolean);
  if (tpl.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  let score = 0;
  for (let i = 0; i < tpl.length; i++) {
    const t = tpl[i]!;
    const part = parts[i]!;
    if (t.startsWith('{') && t.endsWith('}')) {
      try {
        params[t.slice(1, -1)] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    } else if (t === part) score += 2;
    else return undefined;
  }
  return { params, score };
}

/** The method for a request: literal path parts win over parameters, an exact method over ANY. */
function matchRoute(methods: MethodModel[], method: string, path: string): { m: MethodModel; params: Record<string, string> } | undefined {
  let best: { m: MethodModel; params: Record<string, string>; score: number } | undefined;
  for (const m of methods) {
    if (m.httpMethod !== method && m.httpMethod !== 'ANY') continue;
    const match = matchTemplate(m.resourcePath, path);
    if (!match) continue;
    const score = match.score + (m.httpMethod === method ? 1 : 0);
    if (!best || score > best.score) best = { m, params: match.params, score };
  }
  return best && { m: best.m, params: best.params };
}

/** IAM-style wildcard match (`*` any run of characters, `?` one character). */
function arnMatches(pattern: string, arn: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(arn);
}

function parsePolicy(result: unknown): Policy | undefined {
  const r = result as { principalId?: unknown; policyDocument?: { Statement?: unknown }; context?: unknown; usageIdentifierKey?: unknown } | null;
  if (!r || typeof r.principalId !== 'string' || !r.policyDocument) return undefined;
  const raw = Array.isArray(r.policyDocument.Statement) ? r.policyDocument.Statement : [r.policyDocument.Statement];
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
  const statements = raw.map((s: { Effect?: unknown; Action?: unknown; Resource?: unknown }) => ({ effect: String(s?.Effect), actions: list(s?.Action), resources: list(s?.Resource) }));
  const context = r.context && typeof r.context === 'object' ? (r.context as Record<string, unknown>) : {};
  for (const v of Object.values(context)) if (v !== null && typeof v === 'object') return undefined; // only scalars are allowed
  return { principalId: r.principalId, context, statements, usageIdentifierKey: typeof r.usageIdentifierKey === 'string' ? r.usageIdentifierKey : undefined };
}

function allows(policy: Policy, methodArn: string): boolean {
  const applies = (s: Policy['statements'][number]) =>
    s.actions.some((a) => a === '*' || arnMatches(a, 'execute-api:Invoke')) && s.resources.some((res) => arnMatches(res, methodArn));
  if (policy.statements.some((s) => s.effect === 'Deny' && applies(s))) return false;
  return policy.statements.some((s) => s.effect === 'Allow' && applies(s));
}

export async function startRestGateway(o: RestGatewayOptions): Promise<RestGateway> {
  const { api } = o;
  const cache = new Map<string, { policy: Policy; until: number }>();
  const accountId = '000000000000';
  const region = 'us-east-1';
  const usage = new LocalUsagePlans(api.usagePlans ?? [], api.apiKeys ?? [], o.resolveValue ?? ((v) => (typeof v === 'string' ? v : undefined)), o.now ?? Date.now);

  function gatewayResponse(res: ServerResponse, req: Request, type: string, message?: string, extraHeaders: Record<string, string> = {}): number {
    const defaultStatus = DEFAULT_STATUS[type] ?? 400;
    const own = api.gatewayResponses.get(type);
    const fallback = api.gatewayResponses.get(defaultStatus >= 500 ? 'DEFAULT_5XX' : 'DEFAULT_4XX');
    const chosen: GatewayResponseModel | undefined = own ?? fallback;
    const status = own?.statusCode ?? defaultStatus;
    const msg = message ?? DEFAULT_MESSAGE[type] ?? 'Error';
    const body = chosen?.template
      ? chosen.template
          .replaceAll('$context.error.messageString', JSON.stringify(msg))
          .replaceAll('$context.error.message', msg)
          .replaceAll('$context.requestId', req.requestId)
          .replaceAll('$context.error.responseType', type)
      : JSON.stringify({ message: msg });
    const mapped: Record<string, string> = {};
    for (const [name, from] of Object.entries(chosen?.requestHeaders ?? {})) {
      const v = req.headers[from.toLowerCase()];
      if (v !== undefined) mapped[name] = v;
    }
    res.writeHead(status, { 'Content-Type': 'application/json', ...(chosen?.headers ?? {}), ...mapped, ...extraHeaders, 'x-amzn-RequestId': req.requestId, 'x-amzn-ErrorType': type });
    res.end(body);
    return status;
  }

  async function authorize(req: Request, m: MethodModel, authz: AuthorizerModel, methodArn: string, params: Record<string, string>): Promise<{ policy?: Policy; error?: string }> {
    const values: string[] = [];
    for (const source of authz.identitySources) {
      const header = /^method\.request\.header\.(.+)$/i.exec(source)?.[1];
      const query = /^method\.request\.querystring\.(.+)$/i.exec(source)?.[1];
      const v = header ? req.headers[header.toLowerCase()] : query ? req.query?.[query] : undefined;
      values.push(v ?? '');
    }
    // API Gateway calls a REQUEST authorizer only when every identity source it lists is present
    // and non-empty, whether results are cached or not; caching without any is refused at deploy.
    if (values.some((v) => v.trim() === '')) return { error: 'UNAUTHORIZED' };
    if (authz.ttlS > 0 && values.length === 0) return { error: 'AUTHORIZER_CONFIGURATION_ERROR' };
    const cacheKey = `${authz.logicalId}\u0000${values.join('\u0000')}`;
    if (authz.ttlS > 0) {
      const hit = cache.get(cacheKey);
      if (hit && hit.until > Date.now()) return { policy: hit.policy };
    }
    const pool = o.pools.get(authz.functionLogicalId);
    if (!pool) return { error: 'AUTHORIZER_CONFIGURATION_ERROR' };
    const outcome = await pool.invoke({
      type: 'REQUEST',
      methodArn,
      resource: m.resourcePath,
      path: req.path,
      httpMethod: req.method,
      headers: req.headers,
      multiValueHeaders: req.multiValueHeaders,
      queryStringParameters: req.query ?? {},
      multiValueQueryStringParameters: req.multiQuery ?? {},
      pathParameters: params,
      stageVariables: {},
      requestContext: requestContext(req, m, undefined),
    });
    if (!outcome.ok) return { error: outcome.errorMessage === 'Unauthorized' ? 'UNAUTHORIZED' : 'AUTHORIZER_FAILURE' };
    const policy = parsePolicy(outcome.result);
    if (!policy) return { error: 'AUTHORIZER_CONFIGURATION_ERROR' };
    if (authz.ttlS > 0) cache.set(cacheKey, { policy, until: Date.now() + authz.ttlS * 1000 });
    return { policy };
  }

  function requestContext(req: Request, m: MethodModel, authorizer: Record<string, unknown> | undefined) {
    return {
      accountId,
      apiId: o.apiId,
      authorizer,
      domainName: req.headers.host ?? 'localhost',
      httpMethod: req.method,
      identity: { sourceIp: req.sourceIp, userAgent: req.headers['user-agent'] ?? null },
      path: `/${api.stageName}${req.path}`,
      protocol: 'HTTP/1.1',
      requestId: req.requestId,
      requestTime: new Date(req.startedAt).toUTCString(),
      requestTimeEpoch: req.startedAt,
      resourceId: m.resourcePath,
      resourcePath: m.resourcePath,
      stage: api.stageName,
    };
  }

  async function handle(inc: IncomingMessage, res: ServerResponse, body: Buffer): Promise<Record<string, unknown>> {
    const url = new URL(inc.url ?? '/', 'http://local');
    const headers: Record<string, string> = {};
    const multiValueHeaders: Record<string, string[]> = {};
    for (let i = 0; i < inc.rawHeaders.length; i += 2) {
      const name = inc.rawHeaders[i]!;
      const value = inc.rawHeaders[i + 1]!;
      (multiValueHeaders[name] ??= []).push(value);
      headers[name] = value;
    }
    const lower: Record<string, string> = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const multiQuery: Record<string, string[]> = {};
    for (const [k, v] of url.searchParams) (multiQuery[k] ??= []).push(v);
    const query = Object.keys(multiQuery).length ? Object.fromEntries(Object.entries(multiQuery).map(([k, v]) => [k, v[v.length - 1]!])) : null;
    const req: Request = {
      requestId: randomUUID(),
      method: inc.method ?? 'GET',
      path: '',
      headers: lower,
      multiValueHeaders,
      query,
      multiQuery: query ? multiQuery : null,
      body,
      sourceIp: inc.socket.remoteAddress ?? '127.0.0.1',
      startedAt: Date.now(),
    };
    const log: Record<string, unknown> = { requestId: req.requestId, httpMethod: req.method, path: url.pathname };

    const flush = /^\/restapis\/([^/]+)\/stages\/([^/]+)\/cache\/authorizers$/.exec(url.pathname);
    if (flush && req.method === 'DELETE') {
      if (flush[1] === o.apiId && flush[2] === api.stageName) cache.clear();
      res.writeHead(202, { 'Content-Type': 'application/json' }).end('{}');
      return { ...log, status: 202, flushed: true };
    }

    const control = usage.control(req.method, url, body);
    if (control) {
      res.writeHead(control.status, { 'Content-Type': 'application/json', ...(control.errorType ? { 'x-amzn-ErrorType': control.errorType } : {}) });
      res.end(JSON.stringify(control.body));
      return { ...log, status: control.status, controlPlane: true };
    }

    const prefix = `/${api.stageName}`;
    if (!(url.pathname === prefix || url.pathname.startsWith(`${prefix}/`))) {
      return { ...log, status: gatewayResponse(res, req, 'MISSING_AUTHENTICATION_TOKEN') };
    }
    req.path = url.pathname.slice(prefix.length) || '/';
    if (body.length > MAX_BODY) return { ...log, status: gatewayResponse(res, req, 'REQUEST_TOO_LARGE') };
    const route = matchRoute(api.methods, req.method, req.path);
    if (!route) return { ...log, status: gatewayResponse(res, req, 'MISSING_AUTHENTICATION_TOKEN') };
    const { m, params } = route;
    log.resourcePath = m.resourcePath;
    const methodArn = `arn:aws:execute-api:${region}:${accountId}:${o.apiId}/${api.stageName}/${req.method}${req.path}`;

    let authorizerContext: Record<string, unknown> | undefined;
    if (m.authorizationType === 'CUSTOM') {
      const authz = m.authorizerLogicalId ? api.authorizers.get(m.authorizerLogicalId) : undefined;
      if (!authz || authz.type !== 'REQUEST') return { ...log, status: gatewayResponse(res, req, 'AUTHORIZER_CONFIGURATION_ERROR') };
      const started = Date.now();
      const { policy, error } = await authorize(req, m, authz, methodArn, params);
      log.authorizerLatency = Date.now() - started;
      if (error) return { ...log, status: gatewayResponse(res, req, error) };
      if (!allows(policy!, methodArn)) return { ...log, status: gatewayResponse(res, req, 'ACCESS_DENIED') };
      authorizerContext = { ...Object.fromEntries(Object.entries(policy!.context).map(([k, v]) => [k, String(v)])), principalId: policy!.principalId, integrationLatency: log.authorizerLatency };
      Object.assign(log, { tenantId: authorizerContext.tenantId ?? '', clientId: authorizerContext.clientId ?? '', authMethod: authorizerContext.authMethod ?? '' });
      if (m.apiKeyRequired && api.apiKeySource === 'AUTHORIZER') {
        const verdict = usage.admit(policy!.usageIdentifierKey);
        if (!verdict.ok) return { ...log, status: gatewayResponse(res, req, verdict.type) };
        log.apiKeyId = verdict.keyId;
      }
    }
    if (m.apiKeyRequired && api.apiKeySource !== 'AUTHORIZER') {
      const verdict = usage.admit(req.headers['x-api-key']);
      if (!verdict.ok) return { ...log, status: gatewayResponse(res, req, verdict.type) };
      log.apiKeyId = verdict.keyId;
    }

    if (m.integration.type !== 'AWS_PROXY' || !m.integration.functionLogicalId) {
      return { ...log, status: gatewayResponse(res, req, 'INTEGRATION_FAILURE', 'only Lambda proxy integrations run locally') };
    }
    const pool = o.pools.get(m.integration.functionLogicalId)!;
    const text = body.length > 0 ? body.toString('utf8') : null;
    const binary = text !== null && Buffer.from(text, 'utf8').length !== body.length;
    const outcome = await pool.invoke({
      resource: m.resourcePath,
      path: req.path,
      httpMethod: req.method,
      headers: Object.keys(headers).length ? headers : null,
      multiValueHeaders: Object.keys(multiValueHeaders).length ? multiValueHeaders : null,
      queryStringParameters: req.query,
      multiValueQueryStringParameters: req.multiQuery,
      pathParameters: Object.keys(params).length ? params : null,
      stageVariables: null,
      requestContext: requestContext(req, m, authorizerContext),
      body: binary ? body.toString('base64') : text,
      isBase64Encoded: binary,
    });
    const result = outcome.ok ? (outcome.result as { statusCode?: unknown; headers?: Record<string, unknown>; multiValueHeaders?: Record<string, unknown[]>; body?: unknown; isBase64Encoded?: boolean } | null) : null;
    if (!outcome.ok || !result || typeof result.statusCode !== 'number') {
      if (!outcome.ok && outcome.errorType === 'Sandbox.Timedout') return { ...log, status: gatewayResponse(res, req, 'INTEGRATION_TIMEOUT') };
      res.writeHead(502, { 'Content-Type': 'application/json', 'x-amzn-RequestId': req.requestId, 'x-amzn-ErrorType': 'InternalServerErrorException' });
      res.end(JSON.stringify({ message: 'Internal server error' }));
      return { ...log, status: 502 };
    }
    const out: Record<string, string | string[]> = {};
    const put = (k: string, v: unknown) => {
      const name = k.toLowerCase() === 'www-authenticate' ? 'x-amzn-Remapped-WWW-Authenticate' : k;
      const existing = out[name];
      out[name] = existing === undefined ? String(v) : [...(Array.isArray(existing) ? existing : [existing]), String(v)];
    };
    for (const [k, v] of Object.entries(result.headers ?? {})) put(k, v);
    for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) for (const v of vs) put(k, v);
    out['x-amzn-RequestId'] = req.requestId;
    res.writeHead(result.statusCode, out);
    const payload = typeof result.body === 'string' ? result.body : '';
    res.end(result.isBase64Encoded ? Buffer.from(payload, 'base64') : payload);
    return { ...log, status: result.statusCode };
  }

  const server: Server = createServer((inc, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    inc.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY + 1) chunks.push(c);
    });
    inc.on('end', () => {
      handle(inc, res, Buffer.concat(chunks))
        .then((entry) => o.onAccessLog?.(entry))
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'Internal server error' }));
          o.onAccessLog?.({ status: 500, error: String(err) });
        });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host ?? '127.0.0.1'}:${port}/${api.stageName}`,
    port,
    usage,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
