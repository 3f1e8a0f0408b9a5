/** The `LatchkeyAuthorizer` construct on its own, in small stacks (bundling skipped unless stated). */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpUrlIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { LatchkeyAuthorizer, type LatchkeyAuthorizerProps } from '../../infra/constructs/latchkey-authorizer.js';
import { REPO_ROOT } from '../../infra/constructs/latchkey-function.js';

const BASE: LatchkeyAuthorizerProps = { issuer: 'https://tenant.eu.auth0.com/', audiences: ['https://api.example.com'] };

function stackWith(props: Partial<LatchkeyAuthorizerProps> = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'S');
  const authorizer = new LatchkeyAuthorizer(stack, 'Authz', { ...BASE, ...props });
  return { app, stack, authorizer };
}

/** A REST API with one GET /things route behind the construct's REST authorizer. */
function withRestApi(stack: Stack, authorizer: { restAuthorizer: LatchkeyAuthorizer['restAuthorizer'] }) {
  const api = new apigateway.RestApi(stack, 'Api', { cloudWatchRole: false });
  api.root.addResource('things').addMethod('GET', new apigateway.MockIntegration(), { authorizer: authorizer.restAuthorizer(stack, 'Rest') });
  return api;
}

function withHttpApi(stack: Stack, authorizer: { httpAuthorizer: LatchkeyAuthorizer['httpAuthorizer'] }) {
  const api = new apigwv2.HttpApi(stack, 'HttpApi');
  api.addRoutes({ path: '/things', methods: [apigwv2.HttpMethod.GET], integration: new HttpUrlIntegration('Url', 'https://example.com'), authorizer: authorizer.httpAuthorizer('Http') });
  return api;
}

describe('identity sources and cache TTL', () => {
  it('acceptApiKeyHeader (default): Authorization and X-Api-Key, caching off, HTTP without identity sources', () => {
    const { stack, authorizer } = stackWith();
    expect(authorizer.acceptApiKeyHeader).toBe(true);
    withRestApi(stack, authorizer);
    withHttpApi(stack, authorizer);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization,method.request.header.X-Api-Key',
      AuthorizerResultTtlInSeconds: 0,
    });
    const http = Object.values(t.findResources('AWS::ApiGatewayV2::Authorizer'))[0]!.Properties as Record<string, unknown>;
    expect(http).toMatchObject({ AuthorizerType: 'REQUEST', EnableSimpleResponses: true, AuthorizerPayloadFormatVersion: '2.0', AuthorizerResultTtlInSeconds: 0 });
    expect(http.IdentitySource).toBeUndefined();
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

  it('takes a custom TTL up to 60 s, and 0 with X-Api-Key', () => {
    const a = stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(60) });
    withRestApi(a.stack, a.authorizer);
    Template.fromStack(a.stack).hasResourceProperties('AWS::ApiGateway::Authorizer', { AuthorizerResultTtlInSeconds: 60 });
    expect(stackWith({ resultsCacheTtl: Duration.seconds(0) }).authorizer.resultsCacheTtl.toSeconds()).toBe(0);
  });

  it('rejects a TTL above the 60 s revocation bound', () => {
    expect(() => stackWith({ acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(61) })).toThrow(/at most 60 s/);
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

describe('bundling', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latchkey-authz-bundle-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A two-file handler: the answer comes from a dynamically imported module. */
  function writeEntry(name: string, answer: string): string {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'lazy.ts'), `export const answer: string = ${JSON.stringify(answer)};\n`);
    writeFileSync(join(dir, 'entry.ts'), "export const handler = async (): Promise<string> => (await import('./lazy.js')).answer;\n");
    return join(dir, 'entry.ts');
  }

  const codeAsset = (authorizer: LatchkeyAuthorizer) => authorizer.function.node.findChild('Code') as s3assets.Asset;

  function synthWith(entries: Record<string, string>) {
    const outdir = mkdtempSync(join(tmp, 'out-'));
    const app = new App({ outdir });
    const stack = new Stack(app, 'S');
    const authorizers = Object.entries(entries).map(([id, entry]) => new LatchkeyAuthorizer(stack, id, { ...BASE, entry }));
    app.synth();
    return authorizers.map((a) => ({ hash: codeAsset(a).assetHash, dir: join(outdir, codeAsset(a).assetPath) }));
  }

  it('is skipped when the stack is excluded by aws:cdk:bundling-stacks; runs index.handler without source maps', () => {
    const { stack, authorizer } = stackWith({ entry: join(tmp, 'does-not-exist.ts') });
    // Not bundled: the asset is the unstaged source directory (esbuild would have failed on the entry).
    expect(codeAsset(authorizer).assetPath.replace(/\/$/, '')).toBe(REPO_ROOT.replace(/\/$/, ''));
    const fn = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))[0]!.Properties as Record<string, unknown>;
    expect(fn).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x', Architectures: ['arm64'] });
    expect((fn.Environment as { Variables: Record<string, unknown> }).Variables.NODE_OPTIONS).toBeUndefined();
  });

  it('splits dynamic imports into chunks, and the asset hash follows the sources', async () => {
    const [v1] = synthWith({ A: writeEntry('v1', 'one') });
    const files = (readdirSync(v1!.dir, { recursive: true }) as string[]).filter((f) => statSync(join(v1!.dir, f)).isFile()).sort();
    expect(files).toEqual([expect.stringMatching(/^chunks\/lazy-\w+\.mjs$/), expect.stringMatching(/^chunks\/lazy-\w+\.mjs\.map$/), 'index.mjs', 'index.mjs.map']);
    const { handler } = (await import(pathToFileURL(join(v1!.dir, 'index.mjs')).href)) as { handler: () => Promise<string> };
    await expect(handler()).resolves.toBe('one');

    // A change in a lazily imported source changes the hash; the same sources give the same one.
    const entry = writeEntry('v1', 'uno');
    const [changed, other] = synthWith({ A: entry, B: writeEntry('v2', 'two') });
    expect(changed!.hash).not.toBe(v1!.hash);
    expect(synthWith({ A: entry })[0]!.hash).toBe(changed!.hash);
    // Two authorizers with different entries in one app each get their own bundle.
    expect(other!.hash).not.toBe(changed!.hash);
  });
});

describe('attaching', () => {
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

  it('fromFunctionArn attaches an existing function to another API with the invoke permission in that stack', () => {
    const app = new App();
    const stack = new Stack(app, 'Consumer', { env: { account: '111111111111', region: 'eu-west-1' } });
    const arn = 'arn:aws:lambda:eu-west-1:111111111111:function:latchkey-authorizer';
    const imported = LatchkeyAuthorizer.fromFunctionArn(stack, 'Latchkey', { functionArn: arn, acceptApiKeyHeader: false, resultsCacheTtl: Duration.seconds(20) });
    withRestApi(stack, imported);
    withHttpApi(stack, imported);
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Function', 0);
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', { IdentitySource: 'method.request.header.Authorization', AuthorizerResultTtlInSeconds: 20 });
    t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerResultTtlInSeconds: 20 });
    const perms = Object.values(t.findResources('AWS::Lambda::Permission', { Properties: { FunctionName: arn } }));
    expect(perms).toHaveLength(2);
    expect(() => LatchkeyAuthorizer.fromFunctionArn(stack, 'Bad', { functionArn: arn, resultsCacheTtl: Duration.seconds(30) })).toThrow(/acceptApiKeyHeader/);
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
