/**
 * The one place that decides how Latchkey's Lambda functions are built and run, so the
 * authorizer and the management functions cannot drift apart.
 */
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Repository root: entries, `package-lock.json` and `tsconfig.json` are resolved from it. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of a file in the repository, e.g. `functions/users/handler.ts`. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(relative, new URL('../../', import.meta.url)));
}

/**
 * ESM bundles have no `require`; a few CommonJS dependencies still call it for Node built-ins.
 * The alias keeps the banner from clashing with a bundled module's own `createRequire` import.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __latchkeyCreateRequire } from 'node:module'; const require = __latchkeyCreateRequire(import.meta.url);";

export interface LatchkeyFunctionProps {
  /** Entry file, absolute or relative to the repository root. */
  readonly entry: string;
  /** Environment variables; `NODE_OPTIONS=--enable-source-maps` is always added. */
  readonly environment?: Record<string, string>;
  /**
   * Memory size in MB.
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Timeout.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the function's log group.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Description shown in the Lambda console. */
  readonly description?: string;
}

/**
 * A Node.js 22 arm64 function bundled locally by esbuild (never Docker) as minified ESM with
 * source maps. It gets its own log group with a retention and its own role that may write only
 * to that group, instead of the `AWSLambdaBasicExecutionRole` managed policy.
 *
 * The AWS SDK is bundled too: the functions then run exactly the SDK versions the lockfile
 * pins and the tests ran against, not whatever the runtime ships that month.
 */
export function latchkeyFunction(scope: Construct, id: string, props: LatchkeyFunctionProps): NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of ${id}; writes only to its own log group`,
  });
  logGroup.grantWrite(role);

  return new NodejsFunction(scope, id, {
    entry: props.entry.startsWith('/') ? props.entry : repoPath(props.entry),
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: repoPath('package-lock.json'),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize ?? 256,
    timeout: props.timeout ?? Duration.seconds(10),
    description: props.description,
    role,
    logGroup,
    environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    bundling: {
      format: OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: ESM_REQUIRE_BANNER,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      bundleAwsSDK: true,
      forceDockerBundling: false,
      tsconfig: repoPath('tsconfig.json'),
    },
  });
}
