/**
 * The Latchkey app as `infra/app.ts` builds it (bundling skipped), synthesized once with
 * cdk-nag's AwsSolutions checks and shared by every test here.
 */
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildLatchkeyApp, configFromContext, type LatchkeyApp } from '../../infra/latchkey-app.js';

type Json = Record<string, unknown>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

interface NagMetadata {
  rules_to_suppress?: { id: string; reason: string }[];
}

const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

function build(context: Record<string, unknown> = {}): LatchkeyApp {
  const app = new App({ context: { ...NO_BUNDLING, ...context } });
  const built = buildLatchkeyApp(app, configFromContext(app.node));
  app.synth();
  return built;
}

/** `METHOD /path` of every REST method, rebuilt from the resource tree. */
function routes(t: Template): Map<string, Json> {
  const resources = t.findResources('AWS::ApiGateway::Resource');
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    const r = id === undefined ? undefined : resources[id];
    if (!r) return '';
    const p = r.Properties as { PathPart: string; ParentId: unknown };
    return `${pathOf(p.ParentId)}/${p.PathPart}`;
  };
  const out = new Map<string, Json>();
  for (const m of Object.values(t.findResources('AWS::ApiGateway::Method'))) {
    const p = m.Properties as Json;
    out.set(`${String(p.HttpMethod)} ${pathOf(p.ResourceId)}`, p);
  }
  return out;
}

function statementsOfRole(t: Template, rolePrefix: string): Statement[] {
  const out: Statement[] = [];
  for (const p of Object.values(t.findResources('AWS::IAM::Policy'))) {
    const props = p.Properties as { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
    if (props.Roles.some((r) => r.Ref.startsWith(rolePrefix))) out.push(...props.PolicyDocument.Statement);
  }
  return out;
}

const actions = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const allActions = (ss: Statement[]): string[] => ss.flatMap(actions);
const onResource = (ss: Statement[], logicalIdPrefix: string) => ss.filter((s) => JSON.stringify(s.Resource).includes(`"${logicalIdPrefix}`));

function logicalId(t: Template, type: string, prefix: string): string {
  const ids = Object.keys(t.findResources(type)).filter((id) => id.startsWith(prefix));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

function nagFindings(stack: Stack) {
  const a = Annotations.fromStack(stack);
  const nag = Match.stringLikeRegexp('AwsSolutions-.*');
  return [...a.findError('*', nag), ...a.findWarning('*', nag)].map((m) => `${m.id}: ${String(m.entry.data).slice(0, 160)}`);
}

function suppressions(scope: IConstruct): { path: string; id: string; reason: string }[] {
  const out: { path: string; id: string; reason: string }[] = [];
  for (const node of scope.node.findAll()) {
    let meta: unknown;
    if (node instanceof Stack) meta = node.templateOptions.metadata?.cdk_nag;
    else if (node instanceof CfnResource) meta = node.getMetadata('cdk_nag');
    for (const r of (meta as NagMetadata | undefined)?.rules_to_suppress ?? []) out.push({ path: node.node.path, id: r.id, reason: r.reason });
  }
  return out;
}

const EXPECTED_ROUTES: [string, 'Tenants' | 'Users' | 'Public'][] = [
  ['POST /tenants', 'Tenants'],
  ['GET /tenants', 'Tenants'],
  ['GET /tenants/{tenantId}', 'Tenants'],
  ['PATCH /tenants/{tenantId}', 'Tenants'],
  ['DELETE /tenants/{tenantId}', 'Tenants'],
  ['GET /tenants/{tenantId}/usage', 'Tenants'],
  ['POST /tenants/{tenantId}/api-keys', 'Tenants'],
  ['GET /tenants/{tenantId}/api-keys', 'Tenants'],
  ['POST /tenants/{tenantId}/api-keys/{keyId}/rotate', 'Tenants'],
  ['DELETE /tenants/{tenantId}/api-keys/{keyId}', 'Tenants'],
  ['GET /tenants/{tenantId}/audit', 'Tenants'],
  ['GET /tenants/{tenantId}/audit/verify', 'Tenants'],
  ['GET /audit', 'Tenants'],
  ['POST /users', 'Users'],
  ['GET /users', 'Users'],
  ['GET /users/{userId}', 'Users'],
  ['PATCH /users/{userId}', 'Users'],
  ['DELETE /users/{userId}', 'Users'],
  ['GET /me', 'Users'],
  ['GET /openapi.json', 'Public'],
];
/** Every resource also has ANY, without the authorizer: preflight and 405 by the public function. */
const RESOURCES = [
  '/tenants',
  '/tenants/{tenantId}',
  '/tenants/{tenantId}/usage',
  '/tenants/{tenantId}/api-keys',
  '/tenants/{tenantId}/api-keys/{keyId}',
  '/tenants/{tenantId}/api-keys/{keyId}/rotate',
  '/tenants/{tenantId}/audit',
  '/tenants/{tenantId}/audit/verify',
  '/audit',
  '/users',
  '/users/{userId}',
  '/me',
  '/openapi.json',
];
const ALL_ROUTES: [string, 'Tenants' | 'Users' | 'Public'][] = [...EXPECTED_ROUTES, ...RESOURCES.map((r): [string, 'Public'] => [`ANY ${r}`, 'Public'])];
const isPublic = (key: string) => ALL_ROUTES.find(([k]) => k === key)?.[1] === 'Public';

let built: LatchkeyApp;
let t: Template;
let ex: Template;

beforeAll(() => {
  built = build();
  t = Template.fromStack(built.latchkey);
  ex = Template.fromStack(built.example!);
});

describe('LatchkeyStack routes', () => {
  it('has exactly the management routes, each a Lambda proxy to its function', () => {
    const r = routes(t);
    expect([...r.keys()].sort()).toEqual(ALL_ROUTES.map(([k]) => k).sort());
    for (const [key, fn] of ALL_ROUTES) {
      const integration = r.get(key)!.Integration as { Type: string; Uri: unknown };
      expect(integration.Type, key).toBe('AWS_PROXY');
      expect(JSON.stringify(integration.Uri), key).toContain(`"${fn}Function`);
    }
  });

  it('puts every method behind the Latchkey REQUEST authorizer, except the public function\'s', () => {
    const authorizerId = logicalId(t, 'AWS::ApiGateway::Authorizer', 'RestAuthorizer');
    for (const [key, m] of routes(t)) {
      if (isPublic(key)) {
        expect(m.AuthorizationType, key).toBe('NONE');
        expect(m.AuthorizerId, key).toBeUndefined();
        continue;
      }
      expect(m.AuthorizationType, key).toBe('CUSTOM');
      expect(m.AuthorizerId, key).toEqual({ Ref: authorizerId });
    }
  });

  it('defaults to caching off with no identity source, so callers may send either credential header', () => {
    const authorizer = Object.values(t.findResources('AWS::ApiGateway::Authorizer'))[0]!.Properties as Json;
    expect(authorizer).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    expect(authorizer).not.toHaveProperty('IdentitySource');
  });

  it('logs access as JSON with the authorizer context, traces and emits metrics', () => {
    const stage = Object.values(t.findResources('AWS::ApiGateway::Stage'))[0]!.Properties as Json;
    expect(stage.StageName).toBe('v1');
    expect(stage.TracingEnabled).toBe(true);
    expect(stage.MethodSettings).toEqual([expect.objectContaining({ MetricsEnabled: true, HttpMethod: '*', ResourcePath: '/*' })]);
    const format = JSON.parse((stage.AccessLogSetting as { Format: string }).Format) as Record<string, string>;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      httpMethod: '$context.httpMethod',
      resourcePath: '$context.resourcePath',
      status: '$context.status',
      responseLatency: '$context.responseLatency',
      tenantId: '$context.authorizer.tenantId',
      clientId: '$context.authorizer.clientId',
      authMethod: '$context.authorizer.authMethod',
      authorizerError: '$context.authorizer.error',
    });
  });
});

describe('usage plans (per-tenant limits)', () => {
  it('keys usage on the authorizer and requires a key on every authorized method, none on the public ones', () => {
    t.hasResourceProperties('AWS::ApiGateway::RestApi', { ApiKeySourceType: 'AUTHORIZER' });
    for (const [key, m] of routes(t)) expect(m.ApiKeyRequired ?? false, key).toBe(!isPublic(key));
  });

  it('configures free, standard, enterprise and platform plans with rate, burst and quota on the stage', () => {
    const plans = Object.values(t.findResources('AWS::ApiGateway::UsagePlan')).map((r) => r.Properties as Json);
    expect(plans.map((p) => p.UsagePlanName).sort()).toEqual(['Latchkey-enterprise', 'Latchkey-free', 'Latchkey-platform', 'Latchkey-standard']);
    const free = plans.find((p) => p.UsagePlanName === 'Latchkey-free')!;
    expect(free).toMatchObject({ Throttle: { RateLimit: 5, BurstLimit: 10 }, Quota: { Limit: 10000, Period: 'DAY' } });
    expect(plans.find((p) => p.UsagePlanName === 'Latchkey-enterprise')).not.toHaveProperty('Quota');
    const apiId = logicalId(t, 'AWS::ApiGateway::RestApi', 'Api');
    for (const p of plans) {
      expect(p.ApiStages, String(p.UsagePlanName)).toHaveLength(1);
      expect((p.ApiStages as Json[])[0], String(p.UsagePlanName)).toMatchObject({ ApiId: { Ref: apiId }, Stage: { Ref: expect.stringMatching(/^ApiDeploymentStage/) } });
    }
  });

  it('creates the platform key from a generated secret and attaches it to the platform plan only', () => {
    const keys = t.findResources('AWS::ApiGateway::ApiKey');
    expect(Object.keys(keys)).toHaveLength(1);
    const [keyId, key] = Object.entries(keys)[0]!;
    expect(JSON.stringify((key.Properties as Json).Value)).toMatch(/resolve:secretsmanager:.*PlatformUsageKeyValue|PlatformUsageKeyValue.*resolve:secretsmanager/);
    const links = Object.values(t.findResources('AWS::ApiGateway::UsagePlanKey')).map((r) => r.Properties as Json);
    expect(links).toEqual([{ KeyId: { Ref: keyId }, KeyType: 'API_KEY', UsagePlanId: { Ref: logicalId(t, 'AWS::ApiGateway::UsagePlan', 'ApiUsagePlanplatform') } }]);
    for (const id of Object.keys(t.findResources('AWS::SecretsManager::Secret')).filter((i) => /^(UsageKeySecret|PlatformUsageKeyValue)/.test(i))) {
      t.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain', Properties: { GenerateSecretString: { ExcludePunctuation: true, PasswordLength: 64 } } });
      expect(id).toBeTruthy();
    }
  });

  it('tells the tenants function its plans by name, the default plan and the derivation secret; lets it create keys and attach them', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          USAGE_PLANS: 'free,standard,enterprise',
          DEFAULT_USAGE_PLAN: 'free',
          USAGE_NAME_PREFIX: 'Latchkey',
          USAGE_KEY_SECRET: Match.anyValue(),
          POWERTOOLS_SERVICE_NAME: 'latchkey-tenants',
        }),
      },
    });
    const ss = statementsOfRole(t, 'TenantsFunctionRole').filter((s) => actions(s).some((a) => a.startsWith('apigateway:')));
    const text = JSON.stringify(ss);
    expect(text).toContain('::/apikeys"');
    expect(text).toContain('::/usageplans"');
    expect(text).toContain('::/usageplans/*/keys"');
    // The authorizer and the users function touch no key or plan.
    for (const role of ['AuthorizerFunctionRole', 'UsersFunctionRole']) expect(JSON.stringify(statementsOfRole(t, role))).not.toMatch(/apikeys|usageplans/);
  });

  it('lets the tenants function make every control-plane call the usage-key adapter makes (API Gateway IAM resources are paths)', () => {
    const ss = statementsOfRole(t, 'TenantsFunctionRole').filter((s) => s.Effect === 'Allow' && actions(s).some((a) => a.startsWith('apigateway:')));
    /** The path of an `arn:…:apigateway:<region>::<path>` resource, as a pattern. */
    const paths = (s: Statement) =>
      (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map((r) => {
        const text = typeof r === 'string' ? r : ((r as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1].at(-1) as string);
        const path = text.slice(text.lastIndexOf('::') + 2);
        return new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]+')}$`);
      });
    const allowed = (action: string, path: string) => ss.some((s) => actions(s).includes(action) && paths(s).some((re) => re.test(path)));
    // `functions/adapters/api-gateway-usage-keys.ts`, call by call.
    const calls: [string, string, string][] = [
      ['GetApiKeys', 'apigateway:GET', '/apikeys'],
      ['CreateApiKey', 'apigateway:POST', '/apikeys'],
      ['DeleteApiKey', 'apigateway:DELETE', '/apikeys/a1b2c3d4e5'],
      ['GetUsagePlans', 'apigateway:GET', '/usageplans'],
      ['CreateUsagePlanKey', 'apigateway:POST', '/usageplans/p1q2r3/keys'],
      ['GetUsagePlanKey', 'apigateway:GET', '/usageplans/p1q2r3/keys/a1b2c3d4e5'],
      ['DeleteUsagePlanKey', 'apigateway:DELETE', '/usageplans/p1q2r3/keys/a1b2c3d4e5'],
      ['GetUsage', 'apigateway:GET', '/usageplans/p1q2r3/usage'],
    ];
    for (const [call, action, path] of calls) expect(allowed(action, path), call).toBe(true);
    // And nothing on other resources' paths (stages, the API itself, usage plans' settings).
    expect(allowed('apigateway:DELETE', '/usageplans/p1q2r3')).toBe(false);
    expect(allowed('apigateway:PATCH', '/usageplans/p1q2r3')).toBe(false);
  });

  it('takes plans from context and refuses a configuration without a platform plan', () => {
    const ct = Template.fromStack(
      build({ 'latchkey:example': 'false', 'latchkey:usagePlans': JSON.stringify({ tiny: { rateLimit: 1, burstLimit: 1, quota: { limit: 3, period: 'DAY' } }, platform: { rateLimit: 10, burstLimit: 10 } }) }).latchkey,
    );
    ct.hasResourceProperties('AWS::ApiGateway::UsagePlan', { UsagePlanName: 'Latchkey-tiny', Throttle: { RateLimit: 1, BurstLimit: 1 }, Quota: { Limit: 3, Period: 'DAY' } });
    ct.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ USAGE_PLANS: 'tiny', DEFAULT_USAGE_PLAN: 'tiny' }) } });
    expect(() => build({ 'latchkey:example': 'false', 'latchkey:usagePlans': JSON.stringify({ free: { rateLimit: 1, burstLimit: 1 } }) })).toThrow(/platform/);
  });
});

describe('gateway responses', () => {
  it('answers 401 with both challenges and a problem body', () => {
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '401',
      ResponseParameters: {
        'gatewayresponse.header.WWW-Authenticate': `'Bearer realm="latchkey", error="invalid_token", Basic realm="latchkey", charset="UTF-8"'`,
        'gatewayresponse.header.Content-Type': "'application/problem+json'",
      },
    });
    const r = Object.values(t.findResources('AWS::ApiGateway::GatewayResponse', { Properties: { ResponseType: 'UNAUTHORIZED' } }))[0]!;
    const body = (r.Properties as { ResponseTemplates: Record<string, string> }).ResponseTemplates['application/json']!;
    expect(JSON.parse(body)).toEqual({
      type: 'https://latchkey.dev/problems/unauthorized',
      title: 'Unauthorized',
      status: 401,
      detail: 'Missing or invalid credentials.',
      instance: '$context.requestId',
    });
  });

  it.each(['AUTHORIZER_FAILURE', 'AUTHORIZER_CONFIGURATION_ERROR'])('maps %s to 503 with Retry-After', (type) => {
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: type,
      StatusCode: '503',
      ResponseParameters: Match.objectLike({ 'gatewayresponse.header.Retry-After': "'5'" }),
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('problems/unavailable') },
    });
  });

  it('covers 403 (tenant-disabled), 400 and the defaults with problem+json', () => {
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'ACCESS_DENIED',
      StatusCode: '403',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"type":"https://latchkey.dev/problems/tenant-disabled"') },
    });
    for (const type of ['BAD_REQUEST_BODY', 'BAD_REQUEST_PARAMETERS']) {
      t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', { ResponseType: type, StatusCode: '400' });
    }
    for (const r of Object.values(t.findResources('AWS::ApiGateway::GatewayResponse'))) {
      const p = r.Properties as { ResponseParameters: Record<string, string>; ResponseTemplates: Record<string, string> };
      expect(p.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
      expect(p.ResponseTemplates['application/json']).toMatch(/^\{"type":"[^"]+","title":"[^"]+",/);
    }
    expect(Object.values(t.findResources('AWS::ApiGateway::GatewayResponse')).map((r) => (r.Properties as Json).ResponseType)).toEqual(
      expect.arrayContaining(['DEFAULT_4XX', 'DEFAULT_5XX']),
    );
  });
});

describe('tables and secret', () => {
  it('token cache: pk, the state-feed index, TTL, PITR, on-demand, AWS-managed encryption, retained', () => {
    const id = logicalId(t, 'AWS::DynamoDB::Table', 'AuthorizerTokenCache');
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectEquals({
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'feed', AttributeType: 'S' },
          { AttributeName: 'changedAt', AttributeType: 'N' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'state-feed',
            KeySchema: [
              { AttributeName: 'feed', KeyType: 'HASH' },
              { AttributeName: 'changedAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['stateKind', 'status', 'revokedAt', 'notBefore', 'tenantId', 'keyId', 'createdAt', 'revoked'] },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      }),
    });
    expect(id).toMatch(/^AuthorizerTokenCache/);
  });

  it('tenants table has pk/sk and gsi1; idempotency table keys on id with TTL expiration', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
        }),
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('creates the management secret under a name scoped to the stack and to its creation, from a template naming no setting', () => {
    const secret = Object.entries(t.findResources('AWS::SecretsManager::Secret')).find(([id]) => id.startsWith('Auth0ManagementSecret'))![1];
    expect(secret).toMatchObject({ DeletionPolicy: 'Retain' });
    const props = secret.Properties as Json;
    expect(props.GenerateSecretString).toEqual({
      SecretStringTemplate: JSON.stringify({ domain: '', clientId: '' }),
      GenerateStringKey: 'clientSecret',
      ExcludePunctuation: true,
      PasswordLength: 64,
    });
    // `Latchkey/auth0-management-<first group of the stack's UUID>`: a new name for each
    // creation of the stack, so a redeploy after destroy does not meet the retained secret.
    const name = JSON.stringify(props.Name);
    expect(name).toContain('"Latchkey/auth0-management-"');
    expect(name).toContain('"Ref":"AWS::StackId"');
    expect(props).not.toHaveProperty('KmsKeyId');
  });

  it('keeps the secret template identical when the issuer or audience changes (no regenerated value)', () => {
    const other = Template.fromStack(build({ 'latchkey:issuer': 'https://other.us.auth0.com/', 'latchkey:audience': 'https://x.example', 'latchkey:example': 'false' }).latchkey);
    expect(other.findResources('AWS::SecretsManager::Secret')).toEqual(t.findResources('AWS::SecretsManager::Secret'));
  });

  it('encrypts the created secret with a customer key and lets both functions decrypt with it', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const kt = Template.fromStack(build({ 'latchkey:managementSecretKeyArn': keyArn, 'latchkey:example': 'false' }).latchkey);
    kt.hasResourceProperties('AWS::SecretsManager::Secret', { KmsKeyId: keyArn });
    for (const role of ['TenantsFunctionRole', 'UsersFunctionRole']) {
      const decrypt = statementsOfRole(kt, role).filter((st) => actions(st).includes('kms:Decrypt'));
      expect(decrypt.map((st) => st.Resource), role).toEqual([keyArn]);
    }
  });

  it('an existing secret with a customer key: read by name, kms:Decrypt on that key', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const kt = Template.fromStack(
      build({ 'latchkey:managementSecretName': 'prod/auth0-management', 'latchkey:managementSecretKeyArn': keyArn, 'latchkey:example': 'false' }).latchkey,
    );
    expect(Object.keys(kt.findResources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('Auth0ManagementSecret'))).toEqual([]);
    for (const role of ['TenantsFunctionRole', 'UsersFunctionRole']) {
      const ss = statementsOfRole(kt, role);
      expect(ss.filter((st) => actions(st).includes('kms:Decrypt')).map((st) => st.Resource), role).toEqual([keyArn]);
      expect(JSON.stringify(ss.filter((st) => actions(st).includes('secretsmanager:GetSecretValue')).map((st) => st.Resource))).toContain(':secret:prod/auth0-management-??????');
    }
  });
});

describe('functions', () => {
  it('authorizer: Node 22 arm64, 1024 MB, 5 s (the 3 s decision budget plus margin), own log group in JSON at INFO, configured from props, no source maps at runtime', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 1024,
      Timeout: 5,
      LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('^AuthorizerFunctionLogs') }, LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
      Environment: {
        Variables: Match.objectEquals({
          ISSUER: 'https://example.eu.auth0.com/',
          AUDIENCE: 'https://api.example.com',
          TOKEN_CACHE_TABLE: { Ref: Match.stringLikeRegexp('^AuthorizerTokenCache') },
          REVOCATION_CHECK_S: '30',
          DECISION_BUDGET_MS: '3000',
          LOG_LEVEL: 'INFO',
          POWERTOOLS_SERVICE_NAME: 'latchkey-authorizer',
          // Dynamic references to the generated usage-key secrets, resolved at deployment.
          USAGE_KEY_SECRET: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([Match.objectLike({ Ref: Match.stringLikeRegexp('^UsageKeySecret') })])]) }),
          USAGE_PLATFORM_KEY: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([Match.objectLike({ Ref: Match.stringLikeRegexp('^PlatformUsageKeyValue') })])]) }),
          AUDIT_TABLE: { Ref: Match.stringLikeRegexp('^AuditTable') },
          AUDIT_RETENTION_DAYS: '400',
        }),
      },
    });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('management functions get the environment their config loader requires', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'latchkey-tenants',
          NODE_OPTIONS: '--enable-source-maps',
          TENANTS_TABLE: { Ref: Match.stringLikeRegexp('^TenantsTable') },
          TOKEN_CACHE_TABLE: { Ref: Match.stringLikeRegexp('^AuthorizerTokenCache') },
          IDEMPOTENCY_TABLE: { Ref: Match.stringLikeRegexp('^IdempotencyTable') },
          AUDIT_TABLE: { Ref: Match.stringLikeRegexp('^AuditTable') },
          AUDIT_RETENTION_DAYS: '400',
          AUTH0_SECRET_ID: { Ref: Match.stringLikeRegexp('^Auth0ManagementSecret') },
          AUDIENCE: 'https://api.example.com',
          IDP: 'auth0',
          REST_API_ID: { Ref: Match.stringLikeRegexp('^Api') },
          STAGE_NAME: 'v1',
        }),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectEquals({
          POWERTOOLS_SERVICE_NAME: 'latchkey-users',
          TENANTS_TABLE: { Ref: Match.stringLikeRegexp('^TenantsTable') },
          TOKEN_CACHE_TABLE: { Ref: Match.stringLikeRegexp('^AuthorizerTokenCache') },
          IDEMPOTENCY_TABLE: { Ref: Match.stringLikeRegexp('^IdempotencyTable') },
          AUDIT_TABLE: { Ref: Match.stringLikeRegexp('^AuditTable') },
          AUDIT_RETENTION_DAYS: '400',
          AUTH0_SECRET_ID: { Ref: Match.stringLikeRegexp('^Auth0ManagementSecret') },
          IDP: 'auth0',
          NODE_OPTIONS: '--enable-source-maps',
        }),
      },
    });
  });

  it('uses no AWS-managed policy on function roles and no wildcard resources anywhere', () => {
    for (const [id, role] of Object.entries(t.findResources('AWS::IAM::Role'))) {
      // CDK's own providers: API Gateway's CloudWatch role, and the trigger provider (basic execution only).
      if (id.startsWith('ApiCloudWatchRole') || id.startsWith('AWSCDKTriggerCustomResourceProvider')) continue;
      expect((role.Properties as Json).ManagedPolicyArns, id).toBeUndefined();
    }
    for (const s of Object.values(t.findResources('AWS::IAM::Policy')).flatMap((p) => (p.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement)) {
      // The exceptions: a tenant's usage key attached to a plan, whose id the function cannot name
      // (a cycle), and a deleted tenant's usage key, named in IAM by its generated id only (DELETE alone).
      if (JSON.stringify(s.Resource).includes('::/apikeys/*"')) expect(actions(s)).toEqual(['apigateway:DELETE']);
      const resource = JSON.stringify(s.Resource).replaceAll('::/usageplans/*/keys/*"', '::/usageplans/{plan}/keys/{key}"').replaceAll('::/apikeys/*"', '::/apikeys/{key}"');
      expect(resource).not.toMatch(/"\*"|\/\*"/);
      expect(s.Effect).toBe('Allow');
    }
  });
});

describe('least privilege', () => {
  it('authorizer: item operations on the token cache, Query on the state feed only; no Scan or secret', () => {
    const ss = statementsOfRole(t, 'AuthorizerFunctionRole');
    const cache = onResource(ss, 'AuthorizerTokenCache');
    expect(allActions(cache).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(allActions(ss)).not.toContain('dynamodb:Scan');
    // Besides the audit table (security events), Query only on the state feed.
    const queries = ss.filter((s) => actions(s).includes('dynamodb:Query') && !JSON.stringify(s.Resource).includes('"AuditTable'));
    expect(queries).toHaveLength(1);
    expect(actions(queries[0]!)).toEqual(['dynamodb:Query']);
    expect(JSON.stringify(queries[0]!.Resource)).toContain('/index/state-feed');
    expect(allActions(ss).filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
    expect(onResource(ss, 'TenantsTable')).toEqual([]);
  });

  it('tenants function: tenants table without Scan, gsi1 only, revoke on the cache, flush scoped to the stage', () => {
    const ss = statementsOfRole(t, 'TenantsFunctionRole');
    expect(allActions(ss)).not.toContain('dynamodb:Scan');
    const tenants = onResource(ss, 'TenantsTable');
    expect(allActions(tenants).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(JSON.stringify(tenants.map((s) => s.Resource))).toContain('/index/gsi1');
    expect(allActions(onResource(ss, 'AuthorizerTokenCache'))).toEqual(expect.arrayContaining(['dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem']));
    expect(allActions(onResource(ss, 'Auth0ManagementSecret')).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);

    const flush = ss.filter((s) => actions(s).includes('apigateway:DELETE') && JSON.stringify(s.Resource).includes('cache/authorizers'));
    expect(flush).toHaveLength(1);
    expect(actions(flush[0]!)).toEqual(['apigateway:DELETE']);
    const apiId = logicalId(t, 'AWS::ApiGateway::RestApi', 'Api');
    expect(flush[0]!.Resource).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':apigateway:', { Ref: 'AWS::Region' }, '::/restapis/', { Ref: apiId }, '/stages/v1/cache/authorizers']],
    });
  });

  it("users function: GetItem on tenants, users' state items only on the token cache, no flush", () => {
    const ss = statementsOfRole(t, 'UsersFunctionRole');
    expect(allActions(onResource(ss, 'TenantsTable'))).toEqual(['dynamodb:GetItem']);
    const cache = onResource(ss, 'AuthorizerTokenCache');
    expect(allActions(cache).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect((cache[0] as { Condition?: unknown }).Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['user#*'] } });
    expect(allActions(ss)).not.toContain('apigateway:DELETE');
    expect(allActions(onResource(ss, 'IdempotencyTable')).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(allActions(onResource(ss, 'Auth0ManagementSecret')).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
  });
});

describe('audit trail', () => {
  it('audit table: pk/sk, gsi1 across tenants, TTL expiresAt, PITR, a new-image stream, retained', () => {
    t.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'gsi1', KeySchema: [{ AttributeName: 'gsi1pk', KeyType: 'HASH' }, { AttributeName: 'gsi1sk', KeyType: 'RANGE' }] })],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
        BillingMode: 'PAY_PER_REQUEST',
      }),
      DeletionPolicy: 'Retain',
    });
  });

  it('the management functions and the authorizer append and read without Scan or UpdateItem; only the tenants function reads across tenants', () => {
    const appendAndRead = ['dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'];
    const tenants = onResource(statementsOfRole(t, 'TenantsFunctionRole'), 'AuditTable');
    expect(allActions(tenants).sort()).toEqual([...appendAndRead, 'dynamodb:Query'].sort());
    expect(JSON.stringify(tenants.map((s) => s.Resource))).toContain('/index/gsi1');
    const users = onResource(statementsOfRole(t, 'UsersFunctionRole'), 'AuditTable');
    expect(allActions(users).sort()).toEqual(appendAndRead);
    expect(JSON.stringify(users.map((s) => s.Resource))).not.toContain('/index/');
    const authorizer = onResource(statementsOfRole(t, 'AuthorizerFunctionRole'), 'AuditTable');
    expect(allActions(authorizer).sort()).toEqual(appendAndRead);
    expect(JSON.stringify(authorizer.map((s) => s.Resource))).not.toContain('/index/');
  });

  it('sends new events to the default bus with source latchkey through a pipe that may read only that stream', () => {
    t.hasResourceProperties('AWS::Pipes::Pipe', {
      Source: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AuditTable'), 'StreamArn'] },
      Target: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':event-bus/default'])] }),
      TargetParameters: { EventBridgeEventBusParameters: { Source: 'latchkey', DetailType: 'Latchkey audit event' } },
      SourceParameters: Match.objectLike({ FilterCriteria: { Filters: [{ Pattern: Match.stringLikeRegexp('INSERT') }] } }),
    });
    const ss = statementsOfRole(t, 'AuditEventsPipeRole');
    expect(allActions(ss).sort()).toEqual(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams', 'events:PutEvents']);
  });

  it('takes the retention from auditRetentionDays', () => {
    const other = Template.fromStack(build({ 'latchkey:auditRetentionDays': '30' }).latchkey);
    other.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ AUDIT_RETENTION_DAYS: '30' }) } });
  });
});

describe('orphan reconciler', () => {
  it('runs hourly from an EventBridge rule, one at a time, with the management environment', () => {
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'latchkey-reconciler' }) } } });
    const [id, fn] = Object.entries(fns)[0]!;
    expect(Object.keys(fns)).toHaveLength(1);
    expect((fn.Properties as Json).ReservedConcurrentExecutions).toBe(1);
    // What loadManagementConfig({ issuesKeys: true }) and the Auth0 adapter need; no idempotency table, no API to flush.
    const vars = Object.keys((fn.Properties as { Environment: { Variables: Json } }).Environment.Variables);
    expect(vars).toEqual(expect.arrayContaining(['AUDIENCE', 'AUTH0_SECRET_ID', 'IDP', 'TENANTS_TABLE', 'TOKEN_CACHE_TABLE']));
    expect(vars).not.toContain('IDEMPOTENCY_TABLE');
    expect(vars).not.toContain('REST_API_ID');
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [id, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
  });

  it("least privilege: reads keys and deletes stale pending ones, revokes clients' state items only, reads the secret", () => {
    const ss = statementsOfRole(t, 'OrphanReconcilerFunctionRole');
    expect(allActions(onResource(ss, 'TenantsTable')).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem']);
    const cache = onResource(ss, 'AuthorizerTokenCache');
    expect(allActions(cache)).toEqual(['dynamodb:UpdateItem']);
    expect((cache[0] as { Condition?: unknown }).Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['client#*'] } });
    expect(allActions(onResource(ss, 'Auth0ManagementSecret')).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(allActions(ss)).not.toContain('dynamodb:Scan');
    expect(allActions(ss)).not.toContain('apigateway:DELETE');
  });
});

describe('usage-key backfill at deployment', () => {
  it('runs once the usage plans exist, with the tenants function\'s usage settings, and may not delete keys', () => {
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'latchkey-usage-keys' }) } } });
    expect(Object.keys(fns)).toHaveLength(1);
    const fn = Object.values(fns)[0]!;
    const vars = (fn.Properties as { Environment: { Variables: Json } }).Environment.Variables;
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(['TENANTS_TABLE', 'TOKEN_CACHE_TABLE', 'USAGE_PLANS', 'DEFAULT_USAGE_PLAN', 'USAGE_NAME_PREFIX', 'USAGE_KEY_SECRET']));
    const tenantsFn = Object.values(t.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'latchkey-tenants' }) } } }))[0]!;
    const tenantsVars = (tenantsFn.Properties as { Environment: { Variables: Json } }).Environment.Variables;
    for (const k of ['USAGE_PLANS', 'DEFAULT_USAGE_PLAN', 'USAGE_NAME_PREFIX', 'USAGE_KEY_SECRET']) expect(vars[k], k).toEqual(tenantsVars[k]);
    // The trigger invokes it after every usage plan has been created.
    const triggers = Object.values(t.findResources('Custom::Trigger')).filter((r) => JSON.stringify(r.Properties).includes('UsageKeyBackfillFunctionCurrentVersion'));
    expect(triggers).toHaveLength(1);
    const plans = Object.keys(t.findResources('AWS::ApiGateway::UsagePlan'));
    expect(plans.length).toBeGreaterThanOrEqual(4);
    for (const plan of plans) expect(triggers[0]!.DependsOn as string[]).toContain(plan);
    // And hourly, to go on where a run stopped (a trigger runs only when its function changes).
    const backfillId = Object.keys(fns)[0]!;
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [backfillId, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    const ss = statementsOfRole(t, 'UsageKeyBackfillFunctionRole');
    expect(allActions(ss)).not.toContain('dynamodb:Scan');
    expect(JSON.stringify(ss.filter((st) => allActions([st]).includes('apigateway:DELETE')))).not.toContain('/apikeys/*');
  });
});

describe('dependencies', () => {
  it('has no circular dependency although the tenants function names the API it serves', () => {
    // Template.fromStack (in beforeAll) refuses templates with a cycle, as CloudFormation would.
    expect(() => Template.fromStack(built.latchkey)).not.toThrow();
    const cyclic = { Resources: { A: { Type: 'X', Properties: { P: { 'Fn::GetAtt': ['B', 'Arn'] } } }, B: { Type: 'X', DependsOn: 'A' } } };
    expect(() => Template.fromJSON(cyclic)).toThrow(/dependency cycle/);
  });
});

describe('alarms and outputs', () => {
  it('alarms on authorizer failures, authorizer throttles and API 5XX', () => {
    t.resourceCountIs('AWS::CloudWatch::Alarm', 3);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'AuthorizerFailures', Namespace: 'Latchkey/Latchkey' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Throttles', Namespace: 'AWS/Lambda' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: '5XXError', Namespace: 'AWS/ApiGateway' });
    t.hasResourceProperties('AWS::Logs::MetricFilter', { FilterPattern: '{ ($.message = "authorizer failure") || ($.message = "unavailable") }' });
  });

  it('outputs the API URL, authorizer ARN, state table ARN and secret name; publishes the two ARNs in SSM', () => {
    for (const o of ['ApiUrl', 'AuthorizerFunctionArn', 'TokenCacheTableArn', 'Auth0SecretName']) t.hasOutput(o, {});
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: '/Latchkey/authorizer-function-arn', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AuthorizerFunction'), 'Arn'] } });
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: '/Latchkey/token-cache-table-arn', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AuthorizerTokenCache'), 'Arn'] } });
    expect(Object.values(t.toJSON().Outputs as Record<string, Json>).filter((o) => o.Export !== undefined)).toEqual([]);
  });

  it('outputs what `npm run smoke --stack` reads: issuer, audience, the revocation bound, the allowed origins', () => {
    const built = build({ 'latchkey:revocationCheckSeconds': 7, 'latchkey:allowedOrigins': 'https://app.example.com' });
    const own = Template.fromStack(built.latchkey);
    own.hasOutput('Issuer', { Value: Match.stringLikeRegexp('^https://') });
    own.hasOutput('Audience', { Value: Match.anyValue() });
    own.hasOutput('RevocationCheckSeconds', { Value: '7' });
    own.hasOutput('AllowedOrigins', { Value: 'https://app.example.com' });
    t.hasOutput('RevocationCheckSeconds', { Value: '30' });
    expect(Object.keys(t.toJSON().Outputs as Record<string, Json>)).not.toContain('AllowedOrigins');
  });
});

describe('example stack', () => {
  it('attaches the deployed authorizer, found through SSM at deployment, to a second REST API and to an HTTP API', () => {
    const parameters = ex.toJSON().Parameters as Record<string, { Type: string; Default: string }>;
    const ssm = (name: string) => Object.entries(parameters).find(([, p]) => p.Default === name);
    const [functionParam, fp] = ssm('/Latchkey/authorizer-function-arn')!;
    expect(fp.Type).toBe('AWS::SSM::Parameter::Value<String>');

    const restAuthorizer = Object.values(ex.findResources('AWS::ApiGateway::Authorizer'))[0]!.Properties as Json;
    expect(restAuthorizer).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    expect(restAuthorizer).not.toHaveProperty('IdentitySource');
    expect(JSON.stringify(restAuthorizer.AuthorizerUri)).toContain(`"Ref":"${functionParam}"`);
    ex.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'GET',
      AuthorizationType: 'CUSTOM',
      AuthorizerId: { Ref: logicalId(ex, 'AWS::ApiGateway::Authorizer', 'OrdersRestAuthorizer') },
    });

    const http = Object.values(ex.findResources('AWS::ApiGatewayV2::Authorizer'))[0]!.Properties as Json;
    expect(http).toMatchObject({ AuthorizerType: 'REQUEST', EnableSimpleResponses: true, AuthorizerPayloadFormatVersion: '2.0', AuthorizerResultTtlInSeconds: 0 });
    expect(http.IdentitySource).toBeUndefined();
    ex.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /orders', AuthorizationType: 'CUSTOM' });

    // One invoke permission per API, each scoped to that API's authorizer and kept in this stack.
    const perms = Object.values(ex.findResources('AWS::Lambda::Permission', { Properties: { FunctionName: { Ref: functionParam } } }));
    expect(perms).toHaveLength(2);
    for (const p of perms) expect(JSON.stringify((p.Properties as Json).SourceArn)).toContain('/authorizers/');
    t.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
  });

  it('holds no cross-stack reference: no export, no import, so Latchkey can be redeployed under it', () => {
    expect(JSON.stringify(ex.toJSON())).not.toContain('Fn::ImportValue');
    expect(JSON.stringify(t.toJSON())).not.toContain('"Export"');
    expect(built.example!.dependencies.map((d) => d.stackName)).toEqual(['Latchkey']);
  });
});

describe('cross-account attachment', () => {
  it('latchkey:allowInvokeFrom lets the listed accounts (or one API of theirs) invoke the authorizer', () => {
    const xt = Template.fromStack(build({ 'latchkey:allowInvokeFrom': '222222222222/a1b2c3d4e5, 333333333333', 'latchkey:example': 'false' }).latchkey);
    const perms = Object.values(xt.findResources('AWS::Lambda::Permission', { Properties: { Principal: 'apigateway.amazonaws.com', SourceAccount: Match.anyValue() } }));
    expect(perms.map((p) => (p.Properties as Json).SourceAccount).sort()).toEqual(['222222222222', '333333333333']);
    expect(JSON.stringify(perms.map((p) => (p.Properties as Json).SourceArn))).toContain(':222222222222:a1b2c3d4e5/authorizers/*');
    expect(() => build({ 'latchkey:allowInvokeFrom': '222222222222/a1b2c3d4e5/x', 'latchkey:example': 'false' })).toThrow(/account or account\/apiId/);
    expect(() => build({ 'latchkey:allowInvokeFrom': 'acme', 'latchkey:example': 'false' })).toThrow(/12-digit/);
  });
});

describe('two copies', () => {
  /** Properties holding the name a resource is known by in the account and region, per type. */
  const PHYSICAL_NAME: Record<string, string[]> = {
    'AWS::SecretsManager::Secret': ['Name'],
    'AWS::SSM::Parameter': ['Name'],
    'AWS::ApiGateway::RestApi': ['Name'],
    'AWS::ApiGatewayV2::Api': ['Name'],
    'AWS::DynamoDB::Table': ['TableName'],
    'AWS::Lambda::Function': ['FunctionName'],
    'AWS::IAM::Role': ['RoleName'],
    'AWS::IAM::ManagedPolicy': ['ManagedPolicyName'],
    'AWS::Logs::LogGroup': ['LogGroupName'],
    'AWS::CloudWatch::Alarm': ['AlarmName'],
    'AWS::KMS::Alias': ['AliasName'],
    'AWS::S3::Bucket': ['BucketName'],
    'AWS::SNS::Topic': ['TopicName'],
    'AWS::SQS::Queue': ['QueueName'],
  };

  /** Physical names that are literals: the same in any copy of the stack. */
  function fixedNames(stack: Stack): Set<string> {
    const out = new Set<string>();
    const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties?: Json }> };
    for (const [id, r] of Object.entries(template.Resources)) {
      for (const key of PHYSICAL_NAME[r.Type] ?? []) {
        const value = r.Properties?.[key];
        if (value === undefined) continue; // generated by CloudFormation: unique
        // An expression must depend on the stack (its name or id), not only on literals.
        if (typeof value === 'string') out.add(`${r.Type} ${key}=${value}`);
        else expect(JSON.stringify(value), `${id}.${key}`).toMatch(/AWS::Stack(Name|Id)/);
      }
    }
    return out;
  }

  it('two stacks with different names share no fixed physical name (secret, SSM parameters, APIs, …)', () => {
    const a = build({ 'latchkey:stackName': 'Latchkey' });
    const b = build({ 'latchkey:stackName': 'LatchkeyStaging' });
    expect(b.latchkey.stackName).toBe('LatchkeyStaging');
    expect(b.example!.stackName).toBe('LatchkeyStagingExample');
    const namesA = new Set([...fixedNames(a.latchkey), ...fixedNames(a.example!)]);
    const namesB = new Set([...fixedNames(b.latchkey), ...fixedNames(b.example!)]);
    // The check sees names: each copy has some (three API names, the SSM parameters).
    expect(namesA.size).toBeGreaterThanOrEqual(5);
    expect([...namesA].filter((n) => namesB.has(n))).toEqual([]);
    // The copy's example reads the copy's parameters.
    const params = Object.values(Template.fromStack(b.example!).toJSON().Parameters as Record<string, { Default?: string }>).map((p) => p.Default);
    expect(params).toContain('/LatchkeyStaging/authorizer-function-arn');
    expect(params).not.toContain('/Latchkey/authorizer-function-arn');
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unsuppressed errors or warnings in either stack', () => {
    for (const stack of [built.latchkey, built.example!]) {
      const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
      expect(errors).toEqual([]);
      expect(nagFindings(stack)).toEqual([]);
    }
  });

  it('gives every suppression a specific reason', () => {
    const all = [...suppressions(built.latchkey), ...suppressions(built.example!)];
    expect(all.length).toBeGreaterThan(0);
    for (const s of all) {
      expect(s.reason.trim().length, `${s.path} ${s.id}`).toBeGreaterThan(40);
      expect(s.reason, `${s.path} ${s.id}`).toMatch(/Latchkey|Auth0|orders/);
    }
    expect(new Set(all.map((s) => s.id))).toEqual(new Set(['AwsSolutions-L1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG3', 'AwsSolutions-APIG4', 'AwsSolutions-COG4', 'AwsSolutions-IAM4', 'AwsSolutions-IAM5', 'AwsSolutions-SMG4']));
  });
});

describe('alternative configuration', () => {
  it('caches on Authorization only, imports the secret by name and still passes cdk-nag', () => {
    const alt = build({
      'latchkey:acceptApiKeyHeader': 'false',
      'latchkey:managementSecretName': 'prod/auth0-management',
      'latchkey:audience': 'https://api.example.com,https://admin.example.com',
      'latchkey:example': 'false',
    });
    expect(alt.example).toBeUndefined();
    const at = Template.fromStack(alt.latchkey);
    at.hasResourceProperties('AWS::ApiGateway::Authorizer', { IdentitySource: 'method.request.header.Authorization', AuthorizerResultTtlInSeconds: 30 });
    expect(Object.keys(at.findResources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('Auth0ManagementSecret'))).toEqual([]);
    at.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AUTH0_SECRET_ID: 'prod/auth0-management', AUDIENCE: 'https://api.example.com,https://admin.example.com' }) },
    });
    at.hasOutput('Auth0SecretName', { Value: 'prod/auth0-management' });
    expect(nagFindings(alt.latchkey)).toEqual([]);
    expect(suppressions(alt.latchkey).map((s) => s.id)).toContain('AwsSolutions-IAM5');
  });
});

describe('the construct package and the functions agree', () => {
  it('names the same principal-state index and projects what the feed reads', async () => {
    const pkg = await import('../../packages/cdk/src/index.js');
    const fns = await import('../../functions/adapters/dynamodb-state-items.js');
    expect(pkg.STATE_FEED_INDEX).toBe(fns.STATE_FEED_INDEX);
    expect([...pkg.STATE_FEED_ATTRIBUTES]).toEqual([...fns.STATE_FEED_ATTRIBUTES]);
  });
});

describe('usage plan configuration', () => {
  /** Builds the app from context only: the refusals come from the stack's constructor, before any synth. */
  const attempt = (context: Record<string, unknown>) => () => {
    const app = new App({ context: { ...NO_BUNDLING, 'latchkey:example': 'false', ...context } });
    buildLatchkeyApp(app, configFromContext(app.node));
  };
  const plan = { rateLimit: 5, burstLimit: 10 };

  it.each([
    ['no platform plan', { 'latchkey:usagePlans': JSON.stringify({ free: plan }) }, /platform/],
    ['only the platform plan', { 'latchkey:usagePlans': JSON.stringify({ platform: plan }) }, /at least one plan for tenants/],
    ['a plan name API Gateway names would not carry', { 'latchkey:usagePlans': JSON.stringify({ Gold: plan, platform: plan }) }, /not a plan name/],
    ['a default plan that is not a tenant plan', { 'latchkey:defaultUsagePlan': 'platform' }, /defaultUsagePlan platform is not one of the tenant plans/],
    ['a quota period API Gateway has not', { 'latchkey:usagePlans': JSON.stringify({ free: { ...plan, quota: { limit: 1, period: 'YEAR' } }, platform: plan }) }, /DAY, WEEK or MONTH/],
    ['a negative rate', { 'latchkey:usagePlans': JSON.stringify({ free: { ...plan, rateLimit: -1 }, platform: plan }) }, /free\.rateLimit must be a number ≥ 0/],
    ['plans that are not an object', { 'latchkey:usagePlans': '["free"]' }, /JSON object of plans/],
  ])('refuses %s at synth', (_what, context, message) => {
    expect(attempt(context)).toThrow(message);
  });
});
