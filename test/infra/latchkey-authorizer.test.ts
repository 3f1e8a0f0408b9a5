/** The `LatchkeyAuthorizer` construct on its own, in small stacks (bundling skipped unless stated). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpUrlIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { LatchkeyAuthorizer, type ILatchkeyAuthorizer, type LatchkeyAuthorizerProps } from '../../packages/cdk/src/index.js';
import { AUTHORIZER_ASSET_DIR } from '../../packages/cdk/src/latchkey-function.js';

const BASE: LatchkeyAuthorizerProps = { issuer: 'https://tenant.eu.auth0.com/', audiences: ['https://api.example.com'] };

function stackWith(props: Partial<LatchkeyAuthorizerProps> = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'S');
  const authorizer = new LatchkeyAuthorizer(stack, 'Authz', { ...BASE, ...props });
  return { app, stack, authorizer };
}

/** A REST API with one GET /things route behind the construct's REST authorizer. */
function withRestApi(stack: Stack, authorizer: ILatchkeyAuthorizer) {
  const api = new apigateway.RestApi(stack, 'Api', { cloudWatchRole: false });
  api.root.addResource('things').addMethod('GET', new apigateway.MockIntegration(), { authorizer: authorizer.restAuthorizer(stack, 'Rest') });
  return api;
}

function withHttpApi(stack: Stack, authorizer: ILatchkeyAuthorizer) {
  const api = new apigwv2.HttpApi(stack, 'HttpApi');
  api.addRoutes({ path: '/things', methods: [apigwv2.HttpMethod.GET], integration: new HttpUrlIntegration('Url', 'https://example.com'), authorizer: authorizer.httpAuthorizer(stack, 'Http') });
  return api;
}

// aws-cdk-lib loads each module on first use, which takes seconds on a loaded machine: do it
// once here, under the hook timeout, rather than inside the first test's budget.
beforeAll(() => {
  const { app, stack, authorizer } = stackWith();
  withRestApi(stack, authorizer);
  withHttpApi(stack, authorizer);
  app.synth();
});

describe('identity sources and cache TTL', () => {
  const restProps = (t: Template) => Object.values(t.findResources('AWS::ApiGateway::Authorizer'))[0]!.Properties as Record<string, unknown>;
  const httpProps = (t: Template) => Object.values(t.findResources('AWS::ApiGatewayV2::Authorizer'))[0]!.Properties as Record<string, unknown>;

  it('acceptApiKeyHeader (default): caching off and no identity source at all, REST and HTTP', () => {
    const { stack, authorizer } = stackWith();
    expect(authorizer.acceptApiKeyHeader).toBe(true);
    withRestApi(stack, authorizer);
    withHttpApi(stack, authorizer);
    const t = Template.fromStack(stack);
    const rest = restProps(t);
    expect(rest).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    expect(rest).not.toHaveProperty('IdentitySource');
    const http = httpProps(t);
    expect(http).toMatchObject({ AuthorizerType: 'REQUEST', EnableSimpleResponses: true, AuthorizerPayloadFormatVersion: '2.0', AuthorizerResultTtlInSeconds: 0 });
    expect(http).not.toHaveProperty('IdentitySource');
  });

  it('no identity source whenever uncached, also without X-Api-Key', () => {
    const { stack, authorizer } = stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(0) });
    withRestApi(stack, authorizer);
    withHttpApi(stack, authorizer);
    const t = Template.fromStack(stack);
    expect(restProps(t)).not.toHaveProperty('IdentitySource');
    expect(httpProps(t)).not.toHaveProperty('IdentitySource');
  });

  it('acceptApiKeyHeader: false caches 30 s on Authorization; HTTP adds the route key', () => {
    const { stack, authorizer } = stackWith({ acceptApiKeyHeader: false });
    withRestApi(stack, authorizer);
    withHttpApi(stack, authorizer);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', { IdentitySource: 'method.request.header.Authorization', AuthorizerResultTtlInSeconds: 30 });
    t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      IdentitySource: ['$request.header.Authorization', '$context.routeKey'],
      AuthorizerResultTtlInSeconds: 30,
    });
  });

  it('TTL plus the revocation recheck may reach the 60 s bound, not pass it', () => {
    const a = stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(45), revocationCheckInterval: Duration.seconds(15) });
    withRestApi(a.stack, a.authorizer);
    Template.fromStack(a.stack).hasResourceProperties('AWS::ApiGateway::Authorizer', { AuthorizerResultTtlInSeconds: 45 });
    expect(stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(60), revocationCheckInterval: Duration.seconds(0) }).authorizer.resultsCacheTtl.toSeconds()).toBe(60);
    // The old rule (TTL <= 60 alone) let TTL 31 + the default 30 s recheck through: 61 s.
    expect(() => stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(31) })).toThrow(/plus revocationCheckInterval \(30 s\) must be at most 60 s/);
    expect(() => stackWith({ acceptApiKeyHeader: false, revocationCheckInterval: Duration.seconds(31) })).toThrow(/revocation bound/);
    expect(() => stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(61), revocationCheckInterval: Duration.seconds(0) })).toThrow(/at most 60 s/);
    expect(() => stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.minutes(5) })).toThrow(/revocation bound/);
  });

  it('rejects caching together with X-Api-Key', () => {
    expect(() => stackWith({ resultsCacheTtl: Duration.seconds(10) })).toThrow(/must be 0 when acceptApiKeyHeader is true/);
    expect(() => stackWith({ acceptApiKeyHeader: true, resultsCacheTtl: Duration.seconds(1) })).toThrow(Error);
  });

  it('rejects other bad props at synth time', () => {
    expect(() => stackWith({ revocationCheckInterval: Duration.seconds(90) })).toThrow(/revocationCheckInterval/);
    expect(() => stackWith({ audiences: [] })).toThrow(/audience/);
    expect(() => stackWith({ issuer: 'http://tenant.eu.auth0.com/' })).toThrow(/https/);
  });
});

describe('resources', () => {
  it('passes optional settings to the function and can use an existing table', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S');
    const table = new dynamodb.Table(stack, 'Existing', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    const authorizer = new LatchkeyAuthorizer(stack, 'Authz', {
      ...BASE,
      audiences: ['https://a.example.com', 'https://b.example.com'],
      algorithms: ['RS256', 'ES256'],
      tenantClaim: 'https://acme.example/tenant',
      rolesClaim: 'https://acme.example/roles',
      tokenEndpoint: 'https://tenant.eu.auth0.com/oauth/token',
      jwksUri: 'https://tenant.eu.auth0.com/.well-known/jwks.json',
      revocationCheckInterval: Duration.seconds(15),
      logLevel: 'DEBUG',
      memorySize: 512,
      tokenCacheTable: table,
    });
    expect(authorizer.tokenCacheTable).toBe(table);
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::DynamoDB::Table', 1);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          AUDIENCE: 'https://a.example.com,https://b.example.com',
          ALGORITHMS: 'RS256,ES256',
          TENANT_CLAIM: 'https://acme.example/tenant',
          ROLES_CLAIM: 'https://acme.example/roles',
          TOKEN_ENDPOINT: 'https://tenant.eu.auth0.com/oauth/token',
          JWKS_URI: 'https://tenant.eu.auth0.com/.well-known/jwks.json',
          TOKEN_CACHE_TABLE: { Ref: Match.stringLikeRegexp('^Existing') },
          REVOCATION_CHECK_S: '15',
          LOG_LEVEL: 'DEBUG',
        }),
      },
      MemorySize: 512,
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'DEBUG' },
    });
  });

  it.each([
    [undefined, '3000', 5],
    [Duration.millis(2500), '2500', 5],
    [Duration.seconds(8), '8000', 10],
    [Duration.millis(250), '250', 3],
    [Duration.seconds(20), '20000', 22],
  ])('derives the function timeout from the decision budget %s with margin', (decisionBudget, env, timeoutS) => {
    const t = Template.fromStack(stackWith(decisionBudget ? { decisionBudget } : {}).stack);
    t.hasResourceProperties('AWS::Lambda::Function', { Timeout: timeoutS, Environment: { Variables: Match.objectLike({ DECISION_BUDGET_MS: env }) } });
  });

  it.each([Duration.millis(249), Duration.seconds(21), Duration.millis(0)])('refuses a decision budget of %s', (decisionBudget) => {
    expect(() => stackWith({ decisionBudget })).toThrow(/decisionBudget must be between 250 and 20000 ms/);
  });

  it('logs through Lambda: JSON format at INFO and 1024 MB by default; refuses an unknown level', () => {
    Template.fromStack(stackWith().stack).hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024,
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
      Environment: { Variables: Match.objectLike({ LOG_LEVEL: 'INFO' }) },
    });
    expect(() => stackWith({ logLevel: 'verbose' })).toThrow(/logLevel must be one of DEBUG, INFO, WARN, ERROR/);
  });

  it('leaves unset settings to the function and passes memory, timeout, concurrency, tracing and log retention', () => {
    const { stack } = stackWith({
      memorySize: 512,
      timeout: Duration.seconds(6),
      reservedConcurrentExecutions: 50,
      tracing: lambda.Tracing.ACTIVE,
      logRetention: logs.RetentionDays.ONE_WEEK,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 512, Timeout: 6, ReservedConcurrentExecutions: 50, TracingConfig: { Mode: 'Active' } });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    const vars = (Object.values(t.findResources('AWS::Lambda::Function'))[0]!.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(Object.keys(vars).sort()).toEqual(['AUDIENCE', 'DECISION_BUDGET_MS', 'ISSUER', 'LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME', 'REVOCATION_CHECK_S', 'TOKEN_CACHE_TABLE']);
    expect(vars.REVOCATION_CHECK_S).toBe('30');
  });

  it('defaults: 1024 MB, 5 s (the 3 s decision budget plus margin), no reserved concurrency, no tracing, a month of logs', () => {
    const t = Template.fromStack(stackWith().stack);
    const fn = Object.values(t.findResources('AWS::Lambda::Function'))[0]!.Properties as Record<string, unknown>;
    expect(fn).toMatchObject({ MemorySize: 1024, Timeout: 5 });
    expect(fn).not.toHaveProperty('ReservedConcurrentExecutions');
    expect(fn).not.toHaveProperty('TracingConfig');
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('removal policy of the table it creates is configurable (RETAIN by default)', () => {
    Template.fromStack(stackWith().stack).hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    Template.fromStack(stackWith({ removalPolicy: RemovalPolicy.DESTROY }).stack).hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });

  it('grantRevoke gives item writes and batch operations on the cache, never Scan', () => {
    const { stack, authorizer } = stackWith();
    const role = new iam.Role(stack, 'Mgmt', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    authorizer.grantRevoke(role);
    const t = Template.fromStack(stack);
    const policies = Object.values(t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^Mgmt') }] } }));
    expect(policies).toHaveLength(1);
    const statements = (policies[0]!.Properties as { PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] } }).PolicyDocument.Statement;
    expect(statements).toHaveLength(1);
    expect([...statements[0]!.Action].sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    expect(JSON.stringify(statements[0]!.Resource)).toMatch(/AuthzTokenCache/);
  });
});

describe('code', () => {
  it('is the pre-built authorizer shipped in the package: index.handler, no source maps at runtime', () => {
    const { app, stack, authorizer } = stackWith();
    const asset = authorizer.function.node.findChild('Code') as s3assets.Asset;
    const staged = join(app.outdir, asset.assetPath);
    const files = (dir: string) => (readdirSync(dir, { recursive: true }) as string[]).sort();
    expect(files(staged)).toEqual(files(AUTHORIZER_ASSET_DIR));
    expect(readFileSync(join(staged, 'index.mjs'))).toEqual(readFileSync(join(AUTHORIZER_ASSET_DIR, 'index.mjs')));
    const fn = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))[0]!.Properties as Record<string, unknown>;
    expect(fn).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x', Architectures: ['arm64'] });
    expect((fn.Environment as { Variables: Record<string, unknown> }).Variables.NODE_OPTIONS).toBeUndefined();
  });
});

describe('state table', () => {
  const ISOLATED = Match.stringLikeRegexp('created its own state table');

  it('warns at synth when it creates a table nobody revokes keys in', () => {
    const { app, stack } = stackWith();
    app.synth();
    expect(Annotations.fromStack(stack).findWarning('*', ISOLATED)).toHaveLength(1);
  });

  it('does not warn for the table of the stack that revokes keys (grantRevoke)', () => {
    const { app, stack, authorizer } = stackWith();
    authorizer.grantRevoke(new iam.Role(stack, 'Mgmt', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }));
    app.synth();
    expect(Annotations.fromStack(stack).findWarning('*', ISOLATED)).toEqual([]);
  });

  it("reads Latchkey's table imported by ARN: no table of its own, item grants on that ARN, no warning", () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Consumer');
    const arn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Latchkey-AuthorizerTokenCache-ABC';
    const authorizer = new LatchkeyAuthorizer(stack, 'Authz', { ...BASE, tokenCacheTable: dynamodb.Table.fromTableArn(stack, 'State', arn) });
    app.synth();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::DynamoDB::Table', 0);
    t.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ TOKEN_CACHE_TABLE: 'Latchkey-AuthorizerTokenCache-ABC' }) } });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['dynamodb:GetItem', 'dynamodb:PutItem']), Resource: arn })]) },
    });
    expect(Annotations.fromStack(stack).findWarning('*', ISOLATED)).toEqual([]);
    expect(authorizer.tokenCacheTable.tableArn).toBe(arn);
  });
});

describe('attaching', () => {
  const ARN = 'arn:aws:lambda:eu-west-1:111111111111:function:latchkey-authorizer';
  const permissionsOn = (t: Template, fn: unknown) => Object.values(t.findResources('AWS::Lambda::Permission', { Properties: { FunctionName: fn } }));

  function consumer(env?: { account: string; region: string }) {
    const app = new App();
    return { app, stack: new Stack(app, 'Consumer', { env }) };
  }

  it('one function serves two REST APIs, each with its own authorizer and invoke permission', () => {
    const { stack, authorizer } = stackWith();
    withRestApi(stack, authorizer);
    const second = new apigateway.RestApi(stack, 'Second', { cloudWatchRole: false });
    second.root.addMethod('GET', new apigateway.MockIntegration(), { authorizer: authorizer.restAuthorizer(stack, 'SecondAuthorizer') });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::ApiGateway::Authorizer', 2);
    const perms = Object.values(t.findResources('AWS::Lambda::Permission')).map((p) => JSON.stringify((p.Properties as { SourceArn: unknown }).SourceArn));
    expect(perms.filter((arn) => arn.includes('/authorizers/'))).toHaveLength(2);
  });

  it('fromAuthorizerAttributes, same account: the invoke permissions live in the consumer stack', () => {
    const { stack } = consumer({ account: '111111111111', region: 'eu-west-1' });
    const imported = LatchkeyAuthorizer.fromAuthorizerAttributes(stack, 'Latchkey', { functionArn: ARN, acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(20) });
    withRestApi(stack, imported);
    withHttpApi(stack, imported);
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Function', 0);
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', { IdentitySource: 'method.request.header.Authorization', AuthorizerResultTtlInSeconds: 20 });
    t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerResultTtlInSeconds: 20 });
    expect(permissionsOn(t, ARN)).toHaveLength(2);
    expect(imported.tokenCacheTable).toBeUndefined();
  });

  it('fromAuthorizerAttributes checks the bound against the deployed recheck interval', () => {
    const { stack } = consumer();
    expect(() => LatchkeyAuthorizer.fromAuthorizerAttributes(stack, 'A', { functionArn: ARN, resultsCacheTtl: Duration.seconds(30) })).toThrow(/acceptApiKeyHeader/);
    expect(() => LatchkeyAuthorizer.fromAuthorizerAttributes(stack, 'B', { functionArn: ARN, acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(40) })).toThrow(/revocation bound/);
    const ok = LatchkeyAuthorizer.fromAuthorizerAttributes(stack, 'C', {
      functionArn: ARN,
      acceptApiKeyHeader: false,
      resultsCacheTtl: Duration.seconds(40),
      revocationCheckInterval: Duration.seconds(20),
    });
    expect(ok.resultsCacheTtl.toSeconds()).toBe(40);
  });

  it('another account: no permission on a function CloudFormation cannot reach, and no warning', () => {
    const { app, stack } = consumer({ account: '222222222222', region: 'eu-west-1' });
    const imported = LatchkeyAuthorizer.fromAuthorizerAttributes(stack, 'Latchkey', { functionArn: ARN });
    withRestApi(stack, imported);
    withHttpApi(stack, imported);
    app.synth();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Permission', 0);
    expect(JSON.stringify(t.findResources('AWS::ApiGateway::Authorizer'))).toContain(ARN);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  it('another region, or sameEnvironment: false, is another environment too', () => {
    const other = consumer({ account: '111111111111', region: 'us-east-1' });
    withRestApi(other.stack, LatchkeyAuthorizer.fromAuthorizerAttributes(other.stack, 'Latchkey', { functionArn: ARN }));
    Template.fromStack(other.stack).resourceCountIs('AWS::Lambda::Permission', 0);
    const forced = consumer({ account: '111111111111', region: 'eu-west-1' });
    withRestApi(forced.stack, LatchkeyAuthorizer.fromAuthorizerAttributes(forced.stack, 'Latchkey', { functionArn: ARN, sameEnvironment: false }));
    Template.fromStack(forced.stack).resourceCountIs('AWS::Lambda::Permission', 0);
  });

  it('an environment-agnostic stack, or an ARN only known at deployment, is taken as the same environment', () => {
    const agnostic = consumer();
    withRestApi(agnostic.stack, LatchkeyAuthorizer.fromAuthorizerAttributes(agnostic.stack, 'Latchkey', { functionArn: ARN }));
    expect(permissionsOn(Template.fromStack(agnostic.stack), ARN)).toHaveLength(1);
    const deployTime = consumer({ account: '111111111111', region: 'eu-west-1' });
    const functionArn = new cdk.CfnParameter(deployTime.stack, 'Arn').valueAsString;
    withRestApi(deployTime.stack, LatchkeyAuthorizer.fromAuthorizerAttributes(deployTime.stack, 'Latchkey', { functionArn }));
    Template.fromStack(deployTime.stack).resourceCountIs('AWS::Lambda::Permission', 1);
  });

  it("allowInvokeFrom: the owner lets another account's APIs invoke the function, scoped to an API or to any", () => {
    const { stack, authorizer } = stackWith();
    authorizer.allowInvokeFrom('222222222222', 'a1b2c3d4e5');
    authorizer.allowInvokeFrom('333333333333');
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      SourceAccount: '222222222222',
      SourceArn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:', { Ref: 'AWS::Region' }, ':222222222222:a1b2c3d4e5/authorizers/*']] },
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      SourceAccount: '333333333333',
      SourceArn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:', { Ref: 'AWS::Region' }, ':333333333333:*/authorizers/*']] },
    });
    expect(() => authorizer.allowInvokeFrom('12345')).toThrow(/12-digit/);
    expect(() => authorizer.allowInvokeFrom('*')).toThrow(/12-digit/);
    expect(() => authorizer.allowInvokeFrom('222222222222', '*')).toThrow(/apiId/);
    expect(() => authorizer.allowInvokeFrom('222222222222', 'abc/def')).toThrow(/apiId/);
  });

  it('an API in another stack of the same app gets the permission in its own stack', () => {
    const { app, stack, authorizer } = stackWith();
    const other = new Stack(app, 'Other');
    withRestApi(other, authorizer);
    withHttpApi(other, authorizer);
    Template.fromStack(other).resourceCountIs('AWS::Lambda::Permission', 2);
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::Permission', 0);
  });

  it('metric helpers: invocations and throttles summed, duration p99, over 5 minutes', () => {
    const { authorizer } = stackWith();
    expect(authorizer.metricInvocations()).toMatchObject({ namespace: 'AWS/Lambda', metricName: 'Invocations', statistic: 'Sum' });
    expect(authorizer.metricThrottles()).toMatchObject({ metricName: 'Throttles', statistic: 'Sum' });
    expect(authorizer.metricDuration()).toMatchObject({ metricName: 'Duration', statistic: 'p99' });
    expect(authorizer.metricDuration({ statistic: 'p50' }).statistic).toBe('p50');
    expect(authorizer.metricInvocations().period.toMinutes()).toBe(5);
    expect(authorizer.metricFailures()).toMatchObject({ namespace: 'Latchkey/S', metricName: 'AuthorizerFailures' });
  });
});

describe('cdk-nag', () => {
  it('reports unsuppressed findings (control for the stack-level assertion)', () => {
    const { app, stack } = stackWith();
    Aspects.of(app).add(new AwsSolutionsChecks());
    app.synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    // Without the stack's suppression, the pinned Node.js 22 runtime is reported; nothing else is.
    expect(errors.map((e) => String(e.entry.data).split(':')[0])).toEqual(['AwsSolutions-L1']);
  });
});
