/**
 * The one place that decides how Latchkey's Lambda functions are built and run, so the
 * authorizer and the management functions cannot drift apart.
 */
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, Duration, RemovalPolicy, type ILocalBundling } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { buildSync, type BuildOptions } from 'esbuild';

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

/** Directory, inside a split bundle, of the chunks esbuild makes of dynamic imports and shared code. */
export const CHUNK_DIR = 'chunks';

/** esbuild settings every function is bundled with, whichever way it is built. */
const BUNDLE = {
  target: 'node22',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  tsconfig: repoPath('tsconfig.json'),
} as const;

export interface LatchkeyFunctionProps {
  /** Entry file, absolute or relative to the repository root. */
  readonly entry: string;
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
   * Bundle with esbuild code splitting: `index.mjs` plus chunk files in `chunks/`, each dynamic
   * `import()` its own chunk, read and parsed only when first imported. Code behind a lazy
   * import then costs nothing at cold start; in one file (all `NodejsFunction` can emit) it
   * is parsed on every cold start even though it never runs.
   * @default false
   */
  readonly splitting?: boolean;
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
 * Local-only bundling of a split ESM bundle through esbuild's API. A class rather than an
 * object literal: the asset cache key is the JSON of the bundling options, so the esbuild
 * options must be in it, or two functions with different entries would share one bundle.
 */
class SplitBundling implements ILocalBundling {
  constructor(readonly options: BuildOptions) {}

  tryBundle(outputDir: string): boolean {
    buildSync({ ...this.options, outdir: outputDir });
    return true;
  }
}

/**
 * Code of a function bundled by esbuild with code splitting: `index.mjs` (export `handler`) in
 * the asset root, chunks under `chunks/`, a source map next to each. Hashed by its output, so
 * any change to what it bundles changes the asset. Bundling is skipped like any other asset's
 * when the stack is excluded (context `aws:cdk:bundling-stacks`); it never falls back to Docker.
 */
function splitBundleCode(entry: string): lambda.Code {
  const options: BuildOptions = {
    entryPoints: { index: entry },
    absWorkingDir: REPO_ROOT,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: BUNDLE.target,
    mainFields: [...BUNDLE.mainFields],
    banner: { js: BUNDLE.banner },
    minify: BUNDLE.minify,
    sourcemap: BUNDLE.sourcemap,
    sourcesContent: BUNDLE.sourcesContent,
    tsconfig: BUNDLE.tsconfig,
    outExtension: { '.js': '.mjs' },
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    logLevel: 'warning',
  };
  return lambda.Code.fromAsset(REPO_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Only used if local bundling declined, which it never does: there is no Docker here.
      image: DockerImage.fromRegistry('local-esbuild-only'),
      local: new SplitBundling(options),
    },
  });
}

/**
 * A Node.js 22 arm64 function bundled locally by esbuild (never Docker) as minified ESM with
 * source maps. It gets its own log group with a retention and its own role that may write only
 * to that group, instead of the `AWSLambdaBasicExecutionRole` managed policy.
 *
 * The AWS SDK is bundled too: the functions then run exactly the SDK versions the lockfile
 * pins and the tests ran against, not whatever the runtime ships that month.
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

  const entry = props.entry.startsWith('/') ? props.entry : repoPath(props.entry);
  const common: Omit<lambda.FunctionProps, 'code' | 'handler'> = {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize ?? 256,
    timeout: props.timeout ?? Duration.seconds(10),
    description: props.description,
    role,
    logGroup,
    environment: props.enableSourceMaps === false ? { ...props.environment } : { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    ...(props.applicationLogLevel ? { loggingFormat: lambda.LoggingFormat.JSON, applicationLogLevelV2: props.applicationLogLevel } : {}),
  };

  if (props.splitting) {
    return new lambda.Function(scope, id, { ...common, handler: 'index.handler', code: splitBundleCode(entry) });
  }
  return new NodejsFunction(scope, id, {
    ...common,
    entry,
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: repoPath('package-lock.json'),
    bundling: {
      format: OutputFormat.ESM,
      target: BUNDLE.target,
      mainFields: [...BUNDLE.mainFields],
      banner: BUNDLE.banner,
      minify: BUNDLE.minify,
      sourceMap: BUNDLE.sourcemap,
      sourcesContent: BUNDLE.sourcesContent,
      bundleAwsSDK: true,
      forceDockerBundling: false,
      tsconfig: BUNDLE.tsconfig,
    },
  });
}
