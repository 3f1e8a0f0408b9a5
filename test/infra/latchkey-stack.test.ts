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

const EXPECTED_ROUTES: [string, 'Tenants' | 'Users'][] = [
  ['POST /tenants', 'Tenants'],
  ['GET /tenants', 'Tenants'],
  ['GET /tenants/{tenantId}', 'Tenants'],
  ['PATCH /tenants/{tenantId}', 'Tenants'],
  ['DELETE /tenants/{tenantId}', 'Tenants'],
  ['POST /tenants/{tenantId}/api-keys', 'Tenants'],
  ['GET /tenants/{tenantId}/api-keys', 'Tenants'],
  ['POST /tenants/{tenantId}/api-keys/{keyId}/rotate', 'Tenants'],
  ['DELETE /tenants/{tenantId}/api-keys/{keyId}', 'Tenants'],
  ['POST /users', 'Users'],
  ['GET /users', 'Users'],
  ['GET /users/{userId}', 'Users'],
  ['PATCH /users/{userId}', 'Users'],
  ['DELETE /users/{userId}', 'Users'],
  ['GET /me', 'Users'],
];

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
    expect([...r.keys()].sort()).toEqual(EXPECTED_ROUTES.map(([k]) => k).sort());
    for (const [key, fn] of EXPECTED_ROUTES) {
      const integration = r.get(key)!.Integration as { Type: string; Uri: unknown };
      expect(integration.Type, key).toBe('AWS_PROXY');
      expect(JSON.stringify(integration.Uri), key).toContain(`"${fn}Function`);
    }
  });

  it('puts every method behind the Latchkey REQUEST authorizer', () => {
    const authorizerId = logicalId(t, 'AWS::ApiGateway::Authorizer', 'RestAuthorizer');
    for (const [key, m] of routes(t)) {
      expect(m.AuthorizationType, key).toBe('CUSTOM');
      expect(m.AuthorizerId, key).toEqual({ Ref: authorizerId });
    }
  });

  it('defaults to caching off with Authorization and X-Api-Key as identity sources', () => {
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization,method.request.header.X-Api-Key',
      AuthorizerResultTtlInSeconds: 0,
    });
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

  it('covers 403, 400 and the defaults with problem+json', () => {
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'ACCESS_DENIED',
      StatusCode: '403',
      ResponseParameters: Match.objectLike({ 'gatewayresponse.header.WWW-Authenticate': `'Bearer realm="latchkey", error="insufficient_scope"'` }),
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
  it('token cache: pk only, TTL, PITR, on-demand, AWS-managed encryption, retained', () => {
    const id = logicalId(t, 'AWS::DynamoDB::Table', 'AuthorizerTokenCache');
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectEquals({
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
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

  it('creates latchkey/auth0-management from a template with a generated clientSecret placeholder', () => {
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'latchkey/auth0-management',
      GenerateSecretString: Match.objectLike({
        SecretStringTemplate: JSON.stringify({ domain: 'example.eu.auth0.com', clientId: '' }),
        GenerateStringKey: 'clientSecret',
      }),
    });
  });
});

describe('functions', () => {
  it('authorizer: Node 22 arm64, 256 MB, 5 s (the 3 s decision budget plus margin), own log group, configured from props, no source maps at runtime', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 5,
      LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('^AuthorizerFunctionLogs') } },
      Environment: {
        Variables: Match.objectEquals({
          ISSUER: 'https://example.eu.auth0.com/',
          AUDIENCE: 'https://api.example.com',
          ALGORITHMS: 'RS256',
          TENANT_CLAIM: 'https://latchkey.dev/tenant_id',
          ROLES_CLAIM: 'https://latchkey.dev/roles',
          TOKEN_CACHE_TABLE: { Ref: Match.stringLikeRegexp('^AuthorizerTokenCache') },
          REVOCATION_CHECK_S: '30',
          DECISION_BUDGET_MS: '3000',
          LOG_LEVEL: 'INFO',
          POWERTOOLS_SERVICE_NAME: 'latchkey-authorizer',
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
          IDEMPOTENCY_TABLE: { Ref: Match.stringLikeRegexp('^IdempotencyTable') },
          AUTH0_SECRET_ID: { Ref: Match.stringLikeRegexp('^Auth0ManagementSecret') },
          IDP: 'auth0',
          NODE_OPTIONS: '--enable-source-maps',
        }),
      },
    });
  });

  it('uses no AWS-managed policy on function roles and no wildcard resources anywhere', () => {
    for (const [id, role] of Object.entries(t.findResources('AWS::IAM::Role'))) {
      if (id.startsWith('ApiCloudWatchRole')) continue;
      expect((role.Properties as Json).ManagedPolicyArns, id).toBeUndefined();
    }
    for (const s of Object.values(t.findResources('AWS::IAM::Policy')).flatMap((p) => (p.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement)) {
      expect(JSON.stringify(s.Resource)).not.toMatch(/"\*"|\/\*"/);
      expect(s.Effect).toBe('Allow');
    }
  });
});

describe('least privilege', () => {
  it('authorizer: item operations on the token cache only; no Scan, Query or secret', () => {
    const ss = statementsOfRole(t, 'AuthorizerFunctionRole');
    const cache = onResource(ss, 'AuthorizerTokenCache');
    expect(allActions(cache).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(allActions(ss)).not.toContain('dynamodb:Scan');
    expect(allActions(ss)).not.toContain('dynamodb:Query');
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

    const flush = ss.filter((s) => actions(s).includes('apigateway:DELETE'));
    expect(flush).toHaveLength(1);
    expect(actions(flush[0]!)).toEqual(['apigateway:DELETE']);
    const apiId = logicalId(t, 'AWS::ApiGateway::RestApi', 'Api');
    expect(flush[0]!.Resource).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':apigateway:', { Ref: 'AWS::Region' }, '::/restapis/', { Ref: apiId }, '/stages/v1/cache/authorizers']],
    });
  });

  it('users function: GetItem on tenants, nothing on the token cache, no flush', () => {
    const ss = statementsOfRole(t, 'UsersFunctionRole');
    expect(allActions(onResource(ss, 'TenantsTable'))).toEqual(['dynamodb:GetItem']);
    expect(onResource(ss, 'AuthorizerTokenCache')).toEqual([]);
    expect(allActions(ss)).not.toContain('apigateway:DELETE');
    expect(allActions(onResource(ss, 'IdempotencyTable')).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(allActions(onResource(ss, 'Auth0ManagementSecret')).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
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

  it('outputs the API URL, authorizer ARN, token-cache table and secret name', () => {
    for (const o of ['ApiUrl', 'AuthorizerFunctionArn', 'TokenCacheTableName', 'Auth0SecretName']) t.hasOutput(o, {});
    t.hasOutput('Auth0SecretName', { Value: 'latchkey/auth0-management' });
  });
});

describe('example stack', () => {
  it('attaches the same authorizer function to a second REST API and to an HTTP API', () => {
    const importedArn = { 'Fn::ImportValue': Match.stringLikeRegexp('AuthorizerFunction') };
    ex.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization,method.request.header.X-Api-Key',
      AuthorizerResultTtlInSeconds: 0,
    });
    const restAuthorizer = Object.values(ex.findResources('AWS::ApiGateway::Authorizer'))[0]!;
    expect(JSON.stringify(restAuthorizer.Properties)).toContain('AuthorizerFunction');
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
    const perms = Object.values(ex.findResources('AWS::Lambda::Permission', { Properties: { FunctionName: importedArn } }));
    expect(perms).toHaveLength(2);
    for (const p of perms) expect(JSON.stringify((p.Properties as Json).SourceArn)).toContain('/authorizers/');
    t.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
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
    expect(new Set(all.map((s) => s.id))).toEqual(new Set(['AwsSolutions-L1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG3', 'AwsSolutions-COG4', 'AwsSolutions-IAM4', 'AwsSolutions-SMG4']));
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
    at.resourceCountIs('AWS::SecretsManager::Secret', 0);
    at.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AUTH0_SECRET_ID: 'prod/auth0-management', AUDIENCE: 'https://api.example.com,https://admin.example.com' }) },
    });
    at.hasOutput('Auth0SecretName', { Value: 'prod/auth0-management' });
    expect(nagFindings(alt.latchkey)).toEqual([]);
    expect(suppressions(alt.latchkey).map((s) => s.id)).toContain('AwsSolutions-IAM5');
  });
});
