/**
 * The consumer example as another team would use it: `npm pack` of `packages/cdk`, the tarball
 * installed into a temporary copy of `examples/orders-api` (a CommonJS `cdk init app` shape),
 * type-checked with the example's own tsconfig and synthesized. aws-cdk-lib, constructs and
 * @types/node are linked from this repository's node_modules (`file:`), so nothing is
 * downloaded; the tarball brings everything else.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples', 'orders-api');
const STATE_TABLE_ARN = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Latchkey-AuthorizerTokenCache-EXAMPLE';
const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:111111111111:function:Latchkey-AuthorizerFunction-EXAMPLE';

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

const tmp = mkdtempSync(join(tmpdir(), 'latchkey-consumer-'));
const app = join(tmp, 'app');
const out = join(tmp, 'cdk.out');
let resources: Record<string, Resource>;
let typecheck: { stdout: string; stderr: string };
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

beforeAll(async () => {
  const env = { ...process.env, npm_config_update_notifier: 'false' };
  // `npm pack` runs the package's prepack build: the CommonJS lib, the .d.ts and the asset.
  await run('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: join(ROOT, 'packages', 'cdk'), env, maxBuffer: 16 * 1024 * 1024 });
  const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;

  cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/[/\\](node_modules|cdk\.out)$/.test(src) });
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
  expect(pkg.dependencies['@latchkey/cdk']).toMatch(/^file:.*\.tgz$/);
  const link = (name: string) => `file:${join(ROOT, 'node_modules', name)}`;
  pkg.dependencies = {
    '@latchkey/cdk': `file:${join(tmp, tarball)}`,
    'aws-cdk-lib': link('aws-cdk-lib'),
    constructs: link('constructs'),
    '@types/node': link('@types/node'),
  };
  delete pkg.devDependencies; // typescript, tsx and the CLI come from this repository
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, env });

  const context = (JSON.parse(readFileSync(join(app, 'cdk.json'), 'utf8')) as { context: Record<string, string> }).context;
  const [checked] = await Promise.all([
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app }),
    // What `cdk synth` runs (cdk.json: `npx tsx bin/orders-api.ts`), with the CLI's context and output directory.
    run(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/orders-api.ts'], {
      cwd: app,
      env: { ...process.env, CDK_OUTDIR: out, CDK_CONTEXT_JSON: JSON.stringify(context) },
    }),
  ]);
  typecheck = checked;
  resources = (JSON.parse(readFileSync(join(out, 'OrdersApi.template.json'), 'utf8')) as { Resources: Record<string, Resource> }).Resources;
}, 170_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the consumer example, installed from the packed tarball', () => {
  it('installs compiled CommonJS with declarations and the pre-built authorizer; no sources, no esbuild', async () => {
    const installed = join(app, 'node_modules', '@latchkey', 'cdk');
    const files = (readdirSync(installed, { recursive: true }) as string[]).map((f) => f.replaceAll('\\', '/'));
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['lib/index.js', 'lib/index.d.ts', 'assets/authorizer/index.mjs', 'README.md']));
    expect(files.some((f) => f.startsWith('assets/authorizer/chunks/'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'esbuild'))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    expect(Object.keys(manifest.peerDependencies!).sort()).toEqual(['aws-cdk-lib', 'constructs']);
    expect(manifest.dependencies).toBeUndefined();
    // Plain `require` from the CommonJS app, without any loader.
    const { stdout } = await run(process.execPath, ['-e', "const m = require('@latchkey/cdk'); process.stdout.write(Object.keys(m).sort().join(','))"], { cwd: app });
    expect(stdout.split(',')).toEqual(expect.arrayContaining(['LatchkeyAuthorizer', 'MAX_REVOCATION_DELAY', 'addProblemGatewayResponses']));
    expect(typecheck.stderr + typecheck.stdout).toBe('');
  });

  it('REST API: the shared Latchkey function as authorizer, uncached, no identity source, invoke permission in this stack', () => {
    const [[authorizerId, rest]] = ofType('AWS::ApiGateway::Authorizer') as [[string, Resource]];
    expect(rest.Properties).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    expect(rest.Properties).not.toHaveProperty('IdentitySource');
    expect(JSON.stringify(rest.Properties.AuthorizerUri)).toContain(FUNCTION_ARN);
    const permissions = ofType('AWS::Lambda::Permission').filter(([, r]) => r.Properties.FunctionName === FUNCTION_ARN);
    expect(permissions).toHaveLength(1);
    expect(permissions[0]![1].Properties.Principal).toBe('apigateway.amazonaws.com');
    expect(JSON.stringify(permissions[0]![1].Properties.SourceArn)).toContain(`"/authorizers/",{"Ref":"${authorizerId}"}`);
    expect(ofType('AWS::ApiGateway::Method')[0]![1].Properties).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
    const responses = ofType('AWS::ApiGateway::GatewayResponse').map(([, r]) => r.Properties.ResponseType);
    expect(responses).toEqual(expect.arrayContaining(['UNAUTHORIZED', 'AUTHORIZER_FAILURE']));
  });

  it("HTTP API: its own authorizer function, from the packaged asset, reading Latchkey's state table (no table of its own)", () => {
    const functions = ofType('AWS::Lambda::Function').filter(
      ([, r]) => (r.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables?.POWERTOOLS_SERVICE_NAME === 'latchkey-authorizer',
    );
    expect(functions).toHaveLength(1);
    const [fnId, fn] = functions[0]!;
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], MemorySize: 512 });
    const vars = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(vars).toMatchObject({ TOKEN_CACHE_TABLE: 'Latchkey-AuthorizerTokenCache-EXAMPLE', ISSUER: 'https://example.eu.auth0.com/', REVOCATION_CHECK_S: '30' });
    const hash = String((fn.Properties.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
    const assets = JSON.parse(readFileSync(join(out, 'OrdersApi.assets.json'), 'utf8')) as { files: Record<string, { source: { path: string } }> };
    const asset = join(out, assets.files[hash]!.source.path);
    expect(readdirSync(asset)).toEqual(expect.arrayContaining(['index.mjs', 'chunks']));
    expect(ofType('AWS::DynamoDB::Table')).toEqual([]);

    const [[httpAuthorizerId, http]] = ofType('AWS::ApiGatewayV2::Authorizer') as [[string, Resource]];
    expect(http.Properties).toMatchObject({ AuthorizerType: 'REQUEST', EnableSimpleResponses: true, AuthorizerResultTtlInSeconds: 0 });
    expect(http.Properties).not.toHaveProperty('IdentitySource');
    expect(JSON.stringify(http.Properties.AuthorizerUri)).toContain(`"Fn::GetAtt":["${fnId}","Arn"]`);
    const invoke = ofType('AWS::Lambda::Permission').filter(([, r]) => JSON.stringify(r.Properties.FunctionName) === JSON.stringify({ 'Fn::GetAtt': [fnId, 'Arn'] }));
    expect(invoke).toHaveLength(1);
    expect(JSON.stringify(invoke[0]![1].Properties.SourceArn)).toContain(`"/authorizers/",{"Ref":"${httpAuthorizerId}"}`);

    // The shared state table: item access only, on exactly Latchkey's table.
    const statements = ofType('AWS::IAM::Policy').flatMap(([, r]) => (r.Properties.PolicyDocument as { Statement: { Action: string[]; Resource: unknown }[] }).Statement);
    const onTable = statements.filter((s) => s.Resource === STATE_TABLE_ARN);
    expect(onTable).toHaveLength(1);
    expect([...onTable[0]!.Action].sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
  });

  it('synthesizes without the isolated-state-table warning', () => {
    const metadata = readFileSync(join(out, 'manifest.json'), 'utf8');
    expect(metadata).not.toContain('isolatedStateTable');
    expect(metadata).not.toContain('created its own state table');
  });
});
