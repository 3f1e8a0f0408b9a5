/**
 * The one place that decides how Latchkey's Lambda functions run (runtime, architecture, log
 * group, role), so the authorizer and the management functions cannot drift apart. How their
 * code is built is not decided here: the authorizer ships pre-bundled in this package, and the
 * Latchkey repository bundles its management functions itself (`infra/bundling.ts`).
 */
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface LatchkeyFunctionProps {
  /** Bundled code: `index.mjs` exporting `handler` at the root of the asset. */
  readonly code: lambda.Code;
  /** Environment variables; `NODE_OPTIONS=--enable-source-maps` is added unless `enableSourceMaps` is false. */
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
   * Reserved concurrency.
   * @default - none: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * X-Ray tracing.
   * @default lambda.Tracing.DISABLED
   */
  readonly tracing?: lambda.Tracing;
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
  /**
   * Run with `NODE_OPTIONS=--enable-source-maps`, so stack traces point into the sources. It
   * parses the source maps when the bundle is imported, which lengthens every cold start; the
   * maps are shipped either way and can be applied to a trace afterwards.
   * @default true
   */
  readonly enableSourceMaps?: boolean;
  /**
   * Let Lambda format and filter the function's logs: JSON log format with this application
   * log level (`AWS_LAMBDA_LOG_LEVEL` inside the function), for code that logs with plain
   * `console` instead of a logger library.
   * @default - text format, no level filter (the function's logger filters)
   */
  readonly applicationLogLevel?: lambda.ApplicationLogLevel;
}

/**
 * A Node.js 22 arm64 function running a bundle whose entry is `index.mjs`. It gets its own log
 * group with a retention and its own role that may write only to that group, instead of the
 * `AWSLambdaBasicExecutionRole` managed policy.
 */
export function latchkeyFunction(scope: Construct, id: string, props: LatchkeyFunctionProps): lambda.Function {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of ${id}; writes only to its own log group`,
  });
  logGroup.grantWrite(role);
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    handler: 'index.handler',
    code: props.code,
    memorySize: props.memorySize ?? 256,
    timeout: props.timeout ?? Duration.seconds(10),
    reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    tracing: props.tracing,
    description: props.description,
    role,
    logGroup,
    environment: props.enableSourceMaps === false ? { ...props.environment } : { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    ...(props.applicationLogLevel ? { loggingFormat: lambda.LoggingFormat.JSON, applicationLogLevelV2: props.applicationLogLevel } : {}),
  });
}

/**
 * The pre-built authorizer shipped in this package: `index.mjs` and its chunks, bundled from
 * Latchkey's `functions/authorizer` by the package build. The same path from the compiled
 * package (`lib/index.js`, where the build maps `import.meta.url` to the file's URL) and from
 * its sources (`src/`).
 */
export const AUTHORIZER_ASSET_DIR = fileURLToPath(new URL('../assets/authorizer', import.meta.url));
