/**
 * Reads what `cdk synth` produced (a cloud assembly directory) into the model the local
 * gateway serves: Lambda functions with their bundled code and environment, DynamoDB tables,
 * and the REST API's resources, methods, authorizers and gateway responses. Nothing here is a
 * second copy of the route table: every route, setting and response comes from the template.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = Record<string, unknown>;

export interface FunctionModel {
  logicalId: string;
  /** Directory of the bundled asset in the assembly. */
  codeDir: string;
  /** `file.export`, e.g. `index.handler`. */
  handler: string;
  /** Environment as in the template; values may be intrinsic functions. */
  environment: Record<string, unknown>;
  timeoutS: number;
  memoryMb: number;
  runtime: string;
}

export interface TableModel {
  logicalId: string;
  properties: Json;
}

export interface AuthorizerModel {
  logicalId: string;
  type: 'REQUEST' | 'TOKEN' | 'COGNITO_USER_POOLS';
  functionLogicalId: string;
  /** e.g. `method.request.header.Authorization` */
  identitySources: string[];
  ttlS: number;
}

export interface MethodModel {
  httpMethod: string;
  /** Resource path template, e.g. `/tenants/{tenantId}`. */
  resourcePath: string;
  authorizationType: string;
  authorizerLogicalId: string | undefined;
  integration: { type: string; functionLogicalId: string | undefined };
  /** The method needs an API key in a usage plan of the stage (from the header or the authorizer). */
  apiKeyRequired?: boolean;
}

export interface UsagePlanModel {
  logicalId: string;
  name: string;
  /** Steady rate (requests/s) and bucket size; absent: not throttled by the plan. */
  throttle: { rateLimit: number; burstLimit: number } | undefined;
  quota: { limit: number; period: 'DAY' | 'WEEK' | 'MONTH' } | undefined;
}

export interface ApiKeyModel {
  logicalId: string;
  name: string;
  /** As in the template: a string or an intrinsic (a dynamic reference to a secret). */
  value: unknown;
  enabled: boolean;
  /** Logical ids of the usage plans the template attaches it to. */
  planLogicalIds: string[];
}

export interface GatewayResponseModel {
  statusCode: number | undefined;
  /** Static header values. */
  headers: Record<string, string>;
  /** Headers mapped from the request (`method.request.header.Origin`): header name → request header name. */
  requestHeaders: Record<string, string>;
  template: string | undefined;
}

export interface RestApiModel {
  logicalId: string;
  name: string;
  stageName: string;
  methods: MethodModel[];
  authorizers: Map<string, AuthorizerModel>;
  gatewayResponses: Map<string, GatewayResponseModel>;
  /** Where usage plans read the API key: the `X-API-Key` header or the authorizer's `usageIdentifierKey`. */
  apiKeySource?: 'HEADER' | 'AUTHORIZER';
  usagePlans?: UsagePlanModel[];
  apiKeys?: ApiKeyModel[];
}

export interface StackModel {
  stackName: string;
  functions: Map<string, FunctionModel>;
  tables: Map<string, TableModel>;
  restApis: RestApiModel[];
  /** Logical ids of the Secrets Manager secrets (given local values by the local stack). */
  secrets: string[];
}

function ref(v: unknown): string | undefined {
  if (v && typeof v === 'object' && 'Ref' in v) return String((v as Json).Ref);
  return undefined;
}

function getAttTarget(v: unknown): string | undefined {
  if (v && typeof v === 'object' && 'Fn::GetAtt' in v) {
    const g = (v as Json)['Fn::GetAtt'];
    return Array.isArray(g) ? String(g[0]) : String(g).split('.')[0];
  }
  return undefined;
}

/** Finds the Lambda function a `Fn::Join`ed invocation URI points at. */
function functionInUri(uri: unknown, functions: Map<string, FunctionModel>): string | undefined {
  const seen: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const target = getAttTarget(v);
      if (target && functions.has(target)) seen.push(target);
      else Object.values(v as Json).forEach(walk);
    }
  };
  walk(uri);
  return seen[0];
}

/** Strips the single quotes that mark a static value in API Gateway mappings. */
function staticValue(v: unknown): string {
  const s = String(v);
  return s.startsWith("'") && s.endsWith("'") ? s.slice(1, -1) : s;
}

export function readStack(assemblyDir: string, stackName: string): StackModel {
  const templatePath = join(assemblyDir, `${stackName}.template.json`);
  if (!existsSync(templatePath)) throw new Error(`no template for stack ${stackName} in ${assemblyDir}: run cdk synth first`);
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as { Resources: Record<string, { Type: string; Properties?: Json; Metadata?: Json }> };
  const resources = template.Resources;
  const functions = new Map<string, FunctionModel>();
  const tables = new Map<string, TableModel>();

  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::Lambda::Function') {
      const assetPath = r.Metadata?.['aws:asset:path'];
      const s3Key = (p.Code as Json | undefined)?.S3Key;
      const dir = typeof assetPath === 'string' ? join(assemblyDir, assetPath) : typeof s3Key === 'string' ? join(assemblyDir, `asset.${s3Key.replace(/\.zip$/, '')}`) : undefined;
      if (!dir || !existsSync(dir)) continue; // inline code or an asset not in this assembly
      functions.set(id, {
        logicalId: id,
        codeDir: dir,
        handler: String(p.Handler ?? 'index.handler'),
        environment: ((p.Environment as Json | undefined)?.Variables as Record<string, unknown>) ?? {},
        timeoutS: Number(p.Timeout ?? 3),
        memoryMb: Number(p.MemorySize ?? 128),
        runtime: String(p.Runtime ?? ''),
      });
    } else if (r.Type === 'AWS::DynamoDB::Table') {
      tables.set(id, { logicalId: id, properties: p });
    }
  }

  const restApis: RestApiModel[] = [];
  for (const [apiId, api] of Object.entries(resources)) {
    if (api.Type !== 'AWS::ApiGateway::RestApi') continue;
    const belongs = (p: Json) => ref(p.RestApiId) === apiId;
    const paths = new Map<string, string>();
    const resolvePath = (resourceId: string): string => {
      const known = paths.get(resourceId);
      if (known !== undefined) return known;
      const r = resources[resourceId];
      if (!r || r.Type !== 'AWS::ApiGateway::Resource') throw new Error(`unknown API resource ${resourceId}`);
      const parent = r.Properties!.ParentId;
      const parentPath = getAttTarget(parent) === apiId ? '' : resolvePath(ref(parent)!);
      const path = `${parentPath}/${String(r.Properties!.PathPart)}`;
      paths.set(resourceId, path);
      return path;
    };
    const authorizers = new Map<string, AuthorizerModel>();
    const gatewayResponses = new Map<string, GatewayResponseModel>();
    const methods: MethodModel[] = [];
    let stageName = 'prod';
    for (const [id, r] of Object.entries(resources)) {
      const p = r.Properties ?? {};
      if (!belongs(p)) continue;
      if (r.Type === 'AWS::ApiGateway::Authorizer') {
        authorizers.set(id, {
          logicalId: id,
          type: p.Type as AuthorizerModel['type'],
          functionLogicalId: functionInUri(p.AuthorizerUri, functions) ?? '',
          identitySources: String(p.IdentitySource ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          ttlS: p.AuthorizerResultTtlInSeconds === undefined ? 300 : Number(p.AuthorizerResultTtlInSeconds),
        });
      } else if (r.Type === 'AWS::ApiGateway::GatewayResponse') {
        const headers: Record<string, string> = {};
        const requestHeaders: Record<string, string> = {};
        for (const [k, v] of Object.entries((p.ResponseParameters as Json | undefined) ?? {})) {
          if (!k.startsWith('gatewayresponse.header.')) continue;
          const name = k.slice('gatewayresponse.header.'.length);
          const fromRequest = /^method\.request\.header\.(.+)$/.exec(String(v))?.[1];
          if (fromRequest) requestHeaders[name] = fromRequest;
          else headers[name] = staticValue(v);
        }
        const templates = (p.ResponseTemplates as Record<string, string> | undefined) ?? {};
        gatewayResponses.set(String(p.ResponseType), {
          statusCode: p.StatusCode === undefined ? undefined : Number(p.StatusCode),
          headers,
          requestHeaders,
          template: templates['application/json'] ?? Object.values(templates)[0],
        });
      } else if (r.Type === 'AWS::ApiGateway::Stage') {
        stageName = String(p.StageName);
      } else if (r.Type === 'AWS::ApiGateway::Method') {
        const resourceId = p.ResourceId;
        const resourcePath = getAttTarget(resourceId) === apiId ? '/' : resolvePath(ref(resourceId)!);
        const integration = (p.Integration as Json | undefined) ?? {};
        methods.push({
          httpMethod: String(p.HttpMethod),
          resourcePath,
          authorizationType: String(p.AuthorizationType ?? 'NONE'),
          authorizerLogicalId: ref(p.AuthorizerId),
          integration: { type: String(integration.Type ?? 'MOCK'), functionLogicalId: functionInUri(integration.Uri, functions) },
          apiKeyRequired: p.ApiKeyRequired === true || p.ApiKeyRequired === 'true',
        });
      }
    }
    const usagePlans: UsagePlanModel[] = [];
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::ApiGateway::UsagePlan') continue;
      const p = r.Properties ?? {};
      const stages = (p.ApiStages as Json[] | undefined) ?? [];
      if (!stages.some((st) => ref(st.ApiId) === apiId)) continue;
      const throttle = p.Throttle as Json | undefined;
      const quota = p.Quota as Json | undefined;
      usagePlans.push({
        logicalId: id,
        name: String(p.UsagePlanName ?? id),
        throttle: throttle ? { rateLimit: Number(throttle.RateLimit ?? 0), burstLimit: Number(throttle.BurstLimit ?? 0) } : undefined,
        quota: quota ? { limit: Number(quota.Limit), period: String(quota.Period) as 'DAY' | 'WEEK' | 'MONTH' } : undefined,
      });
    }
    const planIds = new Set(usagePlans.map((u) => u.logicalId));
    const apiKeys: ApiKeyModel[] = [];
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::ApiGateway::ApiKey') continue;
      const p = r.Properties ?? {};
      const planLogicalIds = Object.values(resources)
        .filter((l) => l.Type === 'AWS::ApiGateway::UsagePlanKey' && ref(l.Properties?.KeyId) === id)
        .map((l) => ref(l.Properties?.UsagePlanId)!)
        .filter((planId) => planIds.has(planId));
      if (planLogicalIds.length === 0) continue;
      apiKeys.push({ logicalId: id, name: String(p.Name ?? id), value: p.Value, enabled: p.Enabled !== false, planLogicalIds });
    }
    restApis.push({
      logicalId: apiId,
      name: String(api.Properties?.Name ?? apiId),
      stageName,
      methods,
      authorizers,
      gatewayResponses,
      apiKeySource: api.Properties?.ApiKeySourceType === 'AUTHORIZER' ? 'AUTHORIZER' : 'HEADER',
      usagePlans,
      apiKeys,
    });
  }
  const secrets = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::SecretsManager::Secret')
    .map(([id]) => id);
  return { stackName, functions, tables, restApis, secrets };
}
